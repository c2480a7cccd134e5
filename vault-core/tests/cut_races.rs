//! `truncate_back` and `reset`: edge cases of readers and appends racing a cut.

mod common;

use common::record;
use vault_core::{Error, IoMode, SyncPolicy};
use vault_segment::sim::{CrashChoice, FaultError, OpKind, SimStorage};

common::both_io_paths!(sim durable_lsn_is_not_raised_before_the_cut_segments_rename_is_durable);
/// A cut of the first segment raises `durable` to the cut (its kept records were synced in
/// the `-pre` copy), but that copy only holds the log once its rename is durable. If the
/// directory `fsync` after the rename fails (or while it has not returned yet: the fast path
/// of `sync`/`wait_durable` and the committer read `durable` without the leader's turn),
/// `durable_lsn()` must not claim records that a power cut now loses.
fn durable_lsn_is_not_raised_before_the_cut_segments_rename_is_durable(io: IoMode) {
    let sim = SimStorage::new();
    let wal = common::open_sim(&sim, 4096, SyncPolicy::Manual, io);
    for lsn in 1..=5 {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
    }
    assert_eq!(wal.durable_lsn(), 0, "Manual: nothing synced yet");
    // Let the worker finish its spare, so that the next directory fsync is the cut's.
    // (The worker keeps several spares: wait for all of them.)
    let spares = common::on_sim(&sim, 4096, SyncPolicy::Manual, io).spares() as u64;
    while wal.stats().segments_prepared < wal.stats().segments as u64 + spares {
        std::thread::yield_now();
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    // Segment 1 is the only (and tail) segment: the cut's first directory fsync is the one
    // after the rename.
    sim.fail_nth(
        OpKind::SyncDir,
        sim.calls(OpKind::SyncDir) + 1,
        FaultError::Io,
    );
    let r = wal.truncate_back(4);
    assert!(matches!(r, Err(Error::Poisoned { .. })), "{r:?}");
    let claimed = wal.durable_lsn();

    // Power fails now: only what is durable survives.
    let crashed = sim.crash(&CrashChoice::none());
    drop(wal);
    let reopened = common::open_sim(&crashed, 4096, SyncPolicy::Manual, io);
    let kept = reopened.last_lsn();
    assert!(
        claimed <= kept,
        "durable_lsn() said {claimed} after the failed cut, but a power cut keeps only up \
         to {kept}"
    );
}

common::both_io_paths!(sim an_iterator_made_before_a_cut_below_first_lsn_yields_no_record_at_or_past_the_cut);
/// `truncate_back` (like `reset`) may move the log's end below its first LSN, so LSNs get
/// reused. An iterator made before the cut must stop before the cut's LSN; here it still holds
/// a segment `truncate_front` removed earlier (a removed segment keeps its mapping for the
/// readers that hold it), and that handle is not marked by the cut, which marks only the
/// segments still in the list. The iterator then yields the old bytes of LSNs the cut reuses.
fn an_iterator_made_before_a_cut_below_first_lsn_yields_no_record_at_or_past_the_cut(io: IoMode) {
    let sim = SimStorage::new();
    let wal = common::open_sim(&sim, 4096, SyncPolicy::Manual, io);
    for lsn in 1..=60 {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
    }
    wal.sync().unwrap();
    let mut it = wal.iter_from(1);
    assert_eq!(it.next().unwrap().lsn(), 1);
    assert!(wal.truncate_front(40).unwrap() > 0);
    assert!(wal.first_lsn() > 5, "segment 1 was removed");
    wal.truncate_back(5).unwrap();
    assert_eq!(wal.last_lsn(), 4);
    assert_eq!(wal.append(b"new five").unwrap(), 5);
    let late: Vec<u64> = it.map(|r| r.lsn()).filter(|&l| l >= 5).collect();
    assert!(
        late.is_empty(),
        "after truncate_back(5) returned, an iterator made before it yielded the old \
         records {late:?} (LSN 5 now holds other bytes)"
    );
}

common::both_io_paths!(sim followers_after_truncate_back_are_truncated_or_continue_at_the_cut);
/// A follower that returned records a cut then discards gets `Truncated`; one positioned exactly
/// at the cut goes on with the records appended after it.
fn followers_after_truncate_back_are_truncated_or_continue_at_the_cut(io: IoMode) {
    let sim = SimStorage::new();
    let wal = common::open_sim(&sim, 4096, SyncPolicy::Manual, io);
    for lsn in 1..=40 {
        wal.append(&record(lsn)).unwrap();
    }
    let mut past = wal.follow(1);
    for lsn in 1..=30 {
        assert_eq!(past.try_next().unwrap().unwrap().lsn(), lsn);
    }
    let mut at = wal.follow(1);
    for lsn in 1..=19 {
        assert_eq!(at.try_next().unwrap().unwrap().lsn(), lsn);
    }
    wal.truncate_back(20).unwrap();
    for _ in 0..15 {
        wal.append(b"after the cut").unwrap();
    }
    assert!(
        matches!(past.try_next(), Err(Error::Truncated { .. })),
        "returned 20..=30, which the cut discarded"
    );
    for lsn in 20..=34 {
        let r = at.try_next().unwrap().unwrap();
        assert_eq!((r.lsn(), r.data()), (lsn, &b"after the cut"[..]));
    }
    assert!(at.try_next().unwrap().is_none());
}

common::both_io_paths!(sim a_follower_waiting_at_the_lsn_a_reset_continues_at_gets_the_new_records);
/// A follower waiting past the end of the log at the very LSN a `reset` continues at has
/// returned nothing the reset discarded: it must go on with the records appended at that LSN
/// ("a follower positioned exactly at a cut goes on"), not fail with `Truncated`.
fn a_follower_waiting_at_the_lsn_a_reset_continues_at_gets_the_new_records(io: IoMode) {
    let sim = SimStorage::new();
    let wal = common::open_sim(&sim, 4096, SyncPolicy::Manual, io);
    for lsn in 1..=50 {
        wal.append(&record(lsn)).unwrap();
    }
    let mut f = wal.follow(100);
    assert!(f.try_next().unwrap().is_none(), "LSN 100 not appended yet");
    wal.reset(100).unwrap();
    assert_eq!(wal.append(b"hundred").unwrap(), 100);
    let got = f.try_next();
    assert!(
        matches!(&got, Ok(Some(r)) if r.lsn() == 100 && r.data() == b"hundred"),
        "a follower at 100 returned nothing reset(100) discarded, yet: {got:?}"
    );
}
