//! Many threads appending: contiguous LSNs, nothing lost or duplicated, group commit.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::small;
use vault_core::{IoMode, SyncPolicy, Wal};

fn payload(thread: u64, seq: u64) -> Vec<u8> {
    let mut v = format!("t{thread}-s{seq}-").into_bytes();
    v.resize(
        20 + ((thread * 131 + seq * 17) % 200) as usize,
        (seq % 251) as u8,
    );
    v
}

fn hammer(
    wal: &Arc<Wal>,
    threads: u64,
    per_thread: u64,
    batch_every: u64,
    durable_on_return: bool,
) -> Vec<Vec<u64>> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let wal = Arc::clone(wal);
            std::thread::spawn(move || {
                let mut lsns = Vec::new();
                let mut seq = 0;
                while seq < per_thread {
                    if batch_every > 0 && seq % batch_every == 0 && seq + 3 <= per_thread {
                        let batch = [payload(t, seq), payload(t, seq + 1), payload(t, seq + 2)];
                        let first = wal.append_batch(&batch).unwrap();
                        lsns.extend([first, first + 1, first + 2]);
                        seq += 3;
                    } else {
                        let lsn = wal.append(&payload(t, seq)).unwrap();
                        if durable_on_return {
                            assert!(
                                wal.durable_lsn() >= lsn,
                                "append {lsn} returned before durable"
                            );
                        }
                        lsns.push(lsn);
                        seq += 1;
                    }
                }
                lsns
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn check(wal: &Wal, per_thread_lsns: &[Vec<u64>], per_thread: u64) {
    let total = per_thread_lsns.len() as u64 * per_thread;
    let mut owner: HashMap<u64, (u64, u64)> = HashMap::new();
    for (t, lsns) in per_thread_lsns.iter().enumerate() {
        assert_eq!(lsns.len() as u64, per_thread);
        assert!(
            lsns.windows(2).all(|w| w[0] < w[1]),
            "a thread's LSNs increase"
        );
        for (seq, &lsn) in lsns.iter().enumerate() {
            assert!(
                owner.insert(lsn, (t as u64, seq as u64)).is_none(),
                "LSN {lsn} twice"
            );
        }
    }
    assert_eq!(owner.len() as u64, total);
    let mut n = 0;
    for r in wal.iter_from(1) {
        n += 1;
        assert_eq!(r.lsn(), n, "contiguous LSNs from 1");
        let (t, seq) = owner[&r.lsn()];
        assert_eq!(
            r.data(),
            &payload(t, seq)[..],
            "record {} holds its bytes",
            r.lsn()
        );
    }
    assert_eq!(n, total, "every record is there");
}

common::both_io_paths!(many_threads_get_contiguous_unique_lsns_across_rotations);
fn many_threads_get_contiguous_unique_lsns_across_rotations(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(16 * 1024, SyncPolicy::Manual, io);
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    let wal = Arc::new(wal);
    let lsns = hammer(&wal, 8, 2000, 10, false);
    check(&wal, &lsns, 2000);
    assert!(wal.stats().rotations > 50);
    Arc::try_unwrap(wal).unwrap().close().unwrap();

    let wal = Wal::open(dir.path(), opts).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.records, 16_000);
    check(&wal, &lsns, 2000);
}

common::both_io_paths!(group_commit_makes_every_returned_append_durable);
fn group_commit_makes_every_returned_append_durable(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(64 * 1024, SyncPolicy::Always, io)).unwrap();
    let wal = Arc::new(wal);
    let lsns = hammer(&wal, 8, 100, 0, true);
    check(&wal, &lsns, 100);
    let s = wal.stats();
    assert_eq!(s.durable_lsn, 800, "every returned append is durable");
}

common::both_io_paths!(interval_policy_makes_records_durable_in_the_background);
fn interval_policy_makes_records_durable_in_the_background(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        small(
            64 * 1024,
            SyncPolicy::Interval(std::time::Duration::from_millis(5)),
            io,
        ),
    )
    .unwrap();
    for i in 0..50u64 {
        wal.append(&i.to_le_bytes()).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.durable_lsn() < 50 {
        assert!(std::time::Instant::now() < deadline, "flusher never synced");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(wal.stats().flushes >= 1);
}

common::both_io_paths!(readers_see_only_whole_records_while_writers_append);
fn readers_see_only_whole_records_while_writers_append(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(8192, SyncPolicy::Manual, io)).unwrap();
    let wal = Arc::new(wal);
    let writer = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || {
            for lsn in 1..=5000u64 {
                wal.append(&common::record(lsn)).unwrap();
            }
        })
    };
    let mut seen_max = 0;
    while seen_max < 5000 {
        let mut expect = 1;
        for r in wal.iter_from(1) {
            assert_eq!(r.lsn(), expect);
            assert_eq!(r.data(), &common::record(expect)[..]);
            expect += 1;
        }
        seen_max = expect - 1;
    }
    writer.join().unwrap();
}
