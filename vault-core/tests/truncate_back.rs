//! `truncate_back` and `reset`: where the cut lands (tail segment, segment boundary, older
//! segment, the whole log, past the end), what comes after it (appends at the cut, a reopen
//! with exactly the kept records, `durable_lsn`), readers made before it, concurrent
//! appenders, and a poisoned WAL. Crashes during a cut are `power_loss/cuts.rs`'s business.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use common::record;
use vault_core::{Error, IoMode, SyncPolicy, Wal};
use vault_segment::parse_segment_name;
use vault_segment::sim::{CrashChoice, FaultError, OpKind, SimStorage};

/// The bytes appended at `lsn` after the `generation`-th cut: differ per generation, so a
/// discarded record that came back would not pass for its replacement.
fn gen(lsn: u64, generation: u8) -> Vec<u8> {
    let mut r = record(lsn);
    r.push(generation);
    r
}

fn open(sim: &SimStorage, segment_size: u64, io: IoMode) -> Wal {
    Wal::open(
        common::sim_dir(),
        common::on_sim(sim, segment_size, SyncPolicy::Manual, io),
    )
    .unwrap()
}

/// Appends generation `g` records until `last` is reached.
fn fill(wal: &Wal, to: u64, g: u8) {
    let mut lsn = wal.last_lsn() + 1;
    while lsn <= to {
        assert_eq!(wal.append(&gen(lsn, g)).unwrap(), lsn);
        lsn += 1;
    }
}

/// Asserts the log is exactly `first..=last`, each record from the generation `g(lsn)` says.
fn assert_log(wal: &Wal, first: u64, last: u64, g: impl Fn(u64) -> u8) {
    assert_eq!(wal.first_lsn(), first, "first LSN");
    assert_eq!(wal.last_lsn(), last, "last LSN");
    let mut expect = first;
    for r in wal.iter_from(first) {
        assert_eq!(r.lsn(), expect, "LSNs must be contiguous");
        assert!(
            r.data() == gen(expect, g(expect)),
            "record {expect} differs"
        );
        expect += 1;
    }
    assert_eq!(expect, last + 1, "expected records {first}..={last}");
}

/// Segment indexes in the directory (live names), sorted, without `-pre` files (the worker
/// may be preparing one).
fn indexes(sim: &SimStorage) -> Vec<u64> {
    let mut v: Vec<u64> = sim
        .live_names(&common::sim_dir())
        .iter()
        .filter_map(|p| parse_segment_name(p.file_name().unwrap().to_str().unwrap()))
        .filter(|n| !n.pre)
        .map(|n| n.index)
        .collect();
    v.sort_unstable();
    v
}

/// The files are segments `1..=log` and then whatever spares the worker prepared since (it keeps
/// up to four): consecutive indexes, no gap.
fn assert_segments_then_spares(idx: &[u64], log: u64) {
    let want: Vec<u64> = (1..=log).collect();
    assert!(
        idx.len() >= want.len() && idx[..want.len()] == want[..],
        "{idx:?}"
    );
    assert!(
        idx.len() as u64 <= log + 4,
        "more than four spares: {idx:?}"
    );
    for w in idx.windows(2) {
        assert_eq!(w[1], w[0] + 1, "gap in {idx:?}");
    }
}

/// First LSNs of the segments, read through the records.
fn segment_firsts(wal: &Wal) -> Vec<u64> {
    let mut v: Vec<u64> = wal
        .iter_from(wal.first_lsn())
        .map(|r| r.segment().first_lsn())
        .collect();
    v.dedup();
    v
}

/// Closes, reopens, and checks the same log comes back; returns the reopened WAL.
fn reopen(
    wal: Wal,
    sim: &SimStorage,
    seg: u64,
    first: u64,
    last: u64,
    g: &dyn Fn(u64) -> u8,
    io: IoMode,
) -> Wal {
    wal.close().unwrap();
    for p in sim.live_names(&common::sim_dir()) {
        assert!(
            !p.to_string_lossy().ends_with("-pre.log"),
            "{} left",
            p.display()
        );
    }
    let wal = Wal::open(
        common::sim_dir(),
        common::on_sim(sim, seg, SyncPolicy::Manual, io),
    )
    .unwrap();
    let rep = wal.recovery().clone();
    assert!(rep.torn_tail.is_none(), "{rep:?}");
    assert!(rep.removed_segments.is_empty(), "{rep:?}");
    assert!(rep.removed_pre.is_empty(), "{rep:?}");
    assert_log(&wal, first, last, g);
    wal
}

common::both_io_paths!(sim a_cut_in_the_tail_segment_keeps_the_records_before_it);
fn a_cut_in_the_tail_segment_keeps_the_records_before_it(io: IoMode) {
    let sim = SimStorage::new();
    let wal = open(&sim, 64 * 1024, io);
    fill(&wal, 50, 0);
    wal.sync().unwrap();
    assert_eq!(wal.stats().segments, 1);
    wal.truncate_back(31).unwrap();
    assert_log(&wal, 1, 30, |_| 0);
    assert_eq!(wal.stats().segments, 1);
    fill(&wal, 40, 1);
    assert_log(&wal, 1, 40, |l| u8::from(l >= 31));
    let wal = reopen(wal, &sim, 64 * 1024, 1, 40, &|l| u8::from(l >= 31), io);
    fill(&wal, 41, 1);
    assert_log(&wal, 1, 41, |l| u8::from(l >= 31));
}

common::both_io_paths!(sim a_cut_at_a_segment_boundary_empties_that_segment);
fn a_cut_at_a_segment_boundary_empties_that_segment(io: IoMode) {
    let sim = SimStorage::new();
    let wal = open(&sim, 4096, io);
    fill(&wal, 120, 0);
    let firsts = segment_firsts(&wal);
    assert!(firsts.len() >= 5, "{firsts:?}");
    let cut = firsts[2];
    wal.truncate_back(cut).unwrap();
    assert_log(&wal, 1, cut - 1, |_| 0);
    // Segments 1 and 2 whole, segment 3 replaced by an empty one, the rest removed.
    assert_eq!(wal.stats().segments, 3);
    let idx = indexes(&sim);
    assert_segments_then_spares(&idx, 3);
    fill(&wal, cut + 60, 1);
    let g = move |l: u64| u8::from(l >= cut);
    assert_log(&wal, 1, cut + 60, g);
    let wal = reopen(wal, &sim, 4096, 1, cut + 60, &g, io);
    drop(wal);
}

common::both_io_paths!(sim a_cut_in_an_older_segment_removes_every_later_segment);
fn a_cut_in_an_older_segment_removes_every_later_segment(io: IoMode) {
    let sim = SimStorage::new();
    let wal = open(&sim, 4096, io);
    fill(&wal, 150, 0);
    wal.sync().unwrap();
    let firsts = segment_firsts(&wal);
    assert!(firsts.len() >= 6, "{firsts:?}");
    let cut = firsts[1] + 3;
    let before = wal.stats().segments;
    wal.truncate_back(cut).unwrap();
    assert_eq!(wal.stats().segments, 2, "was {before}");
    // Indexes stay contiguous: the worker's spare was removed and the next one is index 3.
    let idx = indexes(&sim);
    assert_segments_then_spares(&idx, 2);
    assert_log(&wal, 1, cut - 1, |_| 0);
    assert_eq!(wal.durable_lsn(), cut - 1);
    // Appends continue at the cut and rotate into index 3, 4, ...
    fill(&wal, cut + 100, 1);
    let idx = indexes(&sim);
    for w in idx.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{idx:?}");
    }
    let g = move |l: u64| u8::from(l >= cut);
    assert_log(&wal, 1, cut + 100, g);
    // A second cut, inside what the first one kept.
    wal.truncate_back(cut - 5).unwrap();
    fill(&wal, cut + 10, 2);
    let g2 = move |l: u64| if l >= cut - 5 { 2 } else { 0 };
    assert_log(&wal, 1, cut + 10, g2);
    let wal = reopen(wal, &sim, 4096, 1, cut + 10, &g2, io);
    drop(wal);
}

common::both_io_paths!(sim a_cut_at_or_before_the_first_lsn_empties_the_log_and_continues_at_the_cut);
fn a_cut_at_or_before_the_first_lsn_empties_the_log_and_continues_at_the_cut(io: IoMode) {
    let sim = SimStorage::new();
    let wal = open(&sim, 4096, io);
    fill(&wal, 100, 0);
    wal.sync().unwrap();
    wal.truncate_front(40).unwrap();
    let first = wal.first_lsn();
    assert!(first > 1 && first <= 40, "{first}");
    // At the first LSN: everything goes, the next append gets it.
    wal.truncate_back(first).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (first, first - 1));
    assert_eq!(wal.stats().segments, 1);
    assert_eq!(wal.durable_lsn(), first - 1);
    fill(&wal, first + 5, 1);
    assert_log(&wal, first, first + 5, |_| 1);
    // Before the first LSN: the log starts over below its old start.
    let below = first - 2;
    wal.truncate_back(below).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (below, below - 1));
    fill(&wal, below + 30, 2);
    let wal = reopen(wal, &sim, 4096, below, below + 30, &|_| 2, io);
    // LSN 0 counts as 1.
    wal.truncate_back(0).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (1, 0));
    assert_eq!(wal.append(b"one").unwrap(), 1);
}

common::both_io_paths!(sim a_cut_past_the_last_lsn_changes_nothing);
fn a_cut_past_the_last_lsn_changes_nothing(io: IoMode) {
    let sim = SimStorage::new();
    let wal = open(&sim, 64 * 1024, io);
    fill(&wal, 30, 0);
    // Let the worker finish its spare, so that only this thread could touch the storage.
    let spares = common::on_sim(&sim, 64 * 1024, SyncPolicy::Manual, io).spares() as u64;
    while wal.stats().segments_prepared < 1 + spares {
        std::thread::yield_now();
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let ops = sim.ops();
    wal.truncate_back(31).unwrap();
    wal.truncate_back(u64::MAX).unwrap();
    assert_eq!(sim.ops(), ops, "a no-op touched the storage");
    assert_log(&wal, 1, 30, |_| 0);
    assert_eq!(wal.append(&gen(31, 0)).unwrap(), 31);
}

common::both_io_paths!(sim reset_empties_the_log_and_continues_beyond_its_end_or_below_it);
fn reset_empties_the_log_and_continues_beyond_its_end_or_below_it(io: IoMode) {
    let sim = SimStorage::new();
    let wal = open(&sim, 4096, io);
    fill(&wal, 80, 0);
    // Beyond the end (a snapshot installed past the log).
    wal.reset(1000).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (1000, 999));
    assert_eq!(wal.durable_lsn(), 999);
    assert_eq!(wal.stats().segments, 1);
    assert!(wal.iter_from(1).next().is_none());
    assert!(wal.read(50).is_none());
    fill(&wal, 1040, 1);
    let wal = reopen(wal, &sim, 4096, 1000, 1040, &|_| 1, io);
    // Below the start.
    wal.reset(500).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (500, 499));
    fill(&wal, 510, 2);
    let wal = reopen(wal, &sim, 4096, 500, 510, &|_| 2, io);
    // At its own next LSN (the records go, the numbering stays).
    wal.reset(511).unwrap();
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (511, 510));
    let wal = reopen(wal, &sim, 4096, 511, 510, &|_| 2, io);
    assert!(matches!(
        wal.reset(u64::MAX),
        Err(Error::LsnOutOfRange { .. })
    ));
    assert_eq!(wal.append(b"x").unwrap(), 511);
}

common::both_io_paths!(sim an_iterator_made_before_a_cut_never_yields_a_discarded_record);
fn an_iterator_made_before_a_cut_never_yields_a_discarded_record(io: IoMode) {
    let sim = SimStorage::new();
    let wal = open(&sim, 4096, io);
    fill(&wal, 100, 0);
    let firsts = segment_firsts(&wal);
    let cut = firsts[2] + 2;
    let mut early = wal.iter_from(1);
    let mut late = wal.iter_from(cut + 10);
    for lsn in 1..=5 {
        assert_eq!(early.next().unwrap().lsn(), lsn);
    }
    // A record past the cut, held across it, keeps its bytes (the old file stays mapped).
    let held = wal.read(cut + 1).unwrap();
    wal.truncate_back(cut).unwrap();
    // New records at the discarded LSNs, in the new file.
    fill(&wal, cut + 40, 1);
    assert!(held.data() == gen(cut + 1, 0));
    let rest: Vec<u64> = early
        .by_ref()
        .map(|r| {
            assert!(r.data() == gen(r.lsn(), 0), "record {}", r.lsn());
            r.lsn()
        })
        .collect();
    assert_eq!(rest, (6..cut).collect::<Vec<_>>());
    assert!(late.next().is_none(), "a discarded record came back");
    // A reset stops iterators too, in every segment.
    let mut it = wal.iter_from(1);
    assert_eq!(it.next().unwrap().lsn(), 1);
    wal.reset(7).unwrap();
    assert!(it.next().is_none());
    assert!(wal.read(1).is_none());
}

common::both_io_paths!(sim durable_lsn_after_a_cut_is_at_most_the_new_end_and_holds_after_power_loss);
fn durable_lsn_after_a_cut_is_at_most_the_new_end_and_holds_after_power_loss(io: IoMode) {
    // With segments before the cut, what was not durable stays not durable.
    let sim = SimStorage::new();
    let wal = open(&sim, 4096, io);
    fill(&wal, 40, 0);
    wal.sync().unwrap();
    fill(&wal, 120, 0);
    let firsts = segment_firsts(&wal);
    let cut = *firsts.last().unwrap() - 3;
    assert!(cut > 41);
    wal.truncate_back(cut).unwrap();
    assert_eq!(wal.durable_lsn(), 40);
    let crashed = sim.crash(&CrashChoice::none());
    drop(wal);
    let wal = common::open_sim(&crashed, 4096, SyncPolicy::Manual, io);
    let last = wal.last_lsn();
    assert!((40..cut).contains(&last), "{last}");
    assert_log(&wal, 1, last, |_| 0);
    drop(wal);

    // Cut below what was durable: durable_lsn drops to the cut, and a crash keeps exactly that.
    let sim = SimStorage::new();
    let wal = open(&sim, 4096, io);
    fill(&wal, 120, 0);
    wal.sync().unwrap();
    wal.truncate_back(77).unwrap();
    assert_eq!(wal.durable_lsn(), 76);
    let crashed = sim.crash(&CrashChoice::none());
    drop(wal);
    let wal = common::open_sim(&crashed, 4096, SyncPolicy::Manual, io);
    assert_log(&wal, 1, 76, |_| 0);
}

common::both_io_paths!(sim a_poisoned_wal_refuses_to_truncate);
fn a_poisoned_wal_refuses_to_truncate(io: IoMode) {
    let sim = SimStorage::new();
    let wal = open(&sim, 4096, io);
    fill(&wal, 10, 0);
    // Let the worker prepare its spares, so that the failing sync is this thread's.
    let spares = common::on_sim(&sim, 4096, SyncPolicy::Manual, io).spares() as u64;
    while wal.stats().segments_prepared < 1 + spares {
        std::thread::yield_now();
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    sim.fail_nth(OpKind::Sync, sim.calls(OpKind::Sync) + 1, FaultError::Io);
    assert!(matches!(wal.sync(), Err(Error::Poisoned { .. })));
    let ops = sim.ops();
    assert!(matches!(wal.truncate_back(5), Err(Error::Poisoned { .. })));
    assert!(matches!(wal.reset(5), Err(Error::Poisoned { .. })));
    assert_eq!(sim.ops(), ops, "a poisoned WAL touched the storage");
    assert_eq!(wal.last_lsn(), 10);
}

/// The bytes thread `t` appends as its `s`-th record.
fn tagged(t: u8, s: u32) -> Vec<u8> {
    let mut r = vec![t];
    r.extend_from_slice(&s.to_le_bytes());
    r.extend((0..(u32::from(t) * 13 + s * 7) % 90).map(|i| (i as u8) ^ t));
    r
}

fn untag(b: &[u8]) -> (u8, u32) {
    assert!(b.len() >= 5);
    let (t, s) = (b[0], u32::from_le_bytes(b[1..5].try_into().unwrap()));
    assert!(b == tagged(t, s), "a record that no thread appended");
    (t, s)
}

fn concurrent(sync: SyncPolicy, io: IoMode) {
    let sim = SimStorage::new();
    let wal = Arc::new(Wal::open(common::sim_dir(), common::on_sim(&sim, 4096, sync, io)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..3u8)
        .map(|t| {
            let (wal, stop) = (Arc::clone(&wal), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut s = 0u32;
                while !stop.load(SeqCst) {
                    wal.append(&tagged(t, s)).unwrap();
                    s += 1;
                    if s.is_multiple_of(16) {
                        wal.sync().unwrap();
                    }
                }
                s
            })
        })
        .collect();
    let mut cuts = 0;
    let mut rng = vault_segment::sim::SimRng::new(u64::from(sync == SyncPolicy::Always));
    while cuts < 40 {
        let last = wal.last_lsn();
        if last < 20 {
            std::thread::yield_now();
            continue;
        }
        let first = wal.first_lsn();
        let cut = first + rng.below(last + 2 - first);
        wal.truncate_back(cut).unwrap();
        // Right after the cut, nothing at or past it is from before it: every record there
        // was appended after the cut, so each thread's sequence numbers keep increasing.
        assert!(wal.durable_lsn() <= wal.last_lsn());
        cuts += 1;
        if cuts % 10 == 0 {
            wal.reset(wal.last_lsn() + 5).unwrap();
        }
    }
    stop.store(true, SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let wal = Arc::into_inner(wal).unwrap();
    wal.sync().unwrap();
    let (first, last) = (wal.first_lsn(), wal.last_lsn());
    let read = |wal: &Wal| {
        let mut latest: HashMap<u8, u32> = HashMap::new();
        let mut expect = first;
        let mut all = Vec::new();
        for r in wal.iter_from(first) {
            assert_eq!(r.lsn(), expect);
            let (t, s) = untag(r.data());
            if let Some(prev) = latest.insert(t, s) {
                assert!(
                    s > prev,
                    "thread {t}: record {s} after {prev} (a discarded record?)"
                );
            }
            all.push(r.data().to_vec());
            expect += 1;
        }
        assert_eq!(expect, last + 1);
        all
    };
    let before = read(&wal);
    wal.close().unwrap();
    let wal = common::open_sim(&sim, 4096, sync, io);
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (first, last));
    assert_eq!(read(&wal), before);
}

common::both_io_paths!(sim concurrent_appenders_and_cuts_leave_a_contiguous_log_of_appended_records);
fn concurrent_appenders_and_cuts_leave_a_contiguous_log_of_appended_records(io: IoMode) {
    concurrent(SyncPolicy::Manual, io);
}

common::both_io_paths!(sim cuts_racing_group_commit_never_hang_an_acknowledged_append);
fn cuts_racing_group_commit_never_hang_an_acknowledged_append(io: IoMode) {
    // Under `Always`, an append whose record a cut discards waits for a flush that can no
    // longer cover it; it must return rather than flush forever.
    concurrent(SyncPolicy::Always, io);
}

common::both_io_paths!(sim a_cut_racing_the_interval_flusher_and_truncate_front_keeps_a_valid_log);
fn a_cut_racing_the_interval_flusher_and_truncate_front_keeps_a_valid_log(io: IoMode) {
    let sim = SimStorage::new();
    let opts = common::on_sim(
        &sim,
        4096,
        SyncPolicy::Interval(std::time::Duration::from_micros(200)),
        io,
    );
    let wal = Arc::new(Wal::open(common::sim_dir(), opts.clone()).unwrap());
    let front = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || {
            for _ in 0..200 {
                let l = wal.last_lsn();
                wal.truncate_front(l.saturating_sub(50)).unwrap();
                std::thread::yield_now();
            }
        })
    };
    let mut g = 0u8;
    for round in 0..60u64 {
        let target = wal.last_lsn() + 40;
        fill(&wal, target, g);
        let cut = wal.last_lsn() - round % 30;
        wal.truncate_back(cut.max(wal.first_lsn())).unwrap();
        g = g.wrapping_add(1);
        assert!(wal.durable_lsn() <= wal.last_lsn());
    }
    front.join().unwrap();
    let wal = Arc::into_inner(wal).unwrap();
    let (first, last) = (wal.first_lsn(), wal.last_lsn());
    let mut expect = first;
    for r in wal.iter_from(first) {
        assert_eq!(r.lsn(), expect);
        expect += 1;
    }
    assert_eq!(expect, last + 1);
    wal.close().unwrap();
    let wal = Wal::open(common::sim_dir(), opts).unwrap();
    let rep = wal.recovery().clone();
    assert!(rep.torn_tail.is_none(), "{rep:?}");
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (first, last));
}

common::both_io_paths!(truncate_back_on_real_files_leaves_contiguous_segments_and_no_pre_file);
fn truncate_back_on_real_files_leaves_contiguous_segments_and_no_pre_file(io: IoMode) {
    let tmp = tempfile::tempdir().unwrap();
    let opts = common::small(4096, SyncPolicy::Manual, io);
    let wal = Wal::open(tmp.path(), opts.clone()).unwrap();
    fill(&wal, 100, 0);
    wal.sync().unwrap();
    wal.truncate_back(20).unwrap();
    fill(&wal, 60, 1);
    wal.close().unwrap();
    let files = common::segment_files(tmp.path());
    let names: Vec<u64> = files.iter().map(|p| index_of(p)).collect();
    for w in names.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{files:?}");
    }
    assert!(std::fs::read_dir(tmp.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with("-pre.log")));
    let wal = Wal::open(tmp.path(), opts).unwrap();
    let rep = wal.recovery().clone();
    assert!(
        rep.torn_tail.is_none() && rep.removed_segments.is_empty(),
        "{rep:?}"
    );
    assert_log(&wal, 1, 60, |l| u8::from(l >= 20));
}

fn index_of(p: &Path) -> u64 {
    parse_segment_name(p.file_name().unwrap().to_str().unwrap())
        .unwrap()
        .index
}

common::both_io_paths!(sim a_flush_in_flight_during_a_cut_does_not_raise_durable_lsn_past_the_new_end);
fn a_flush_in_flight_during_a_cut_does_not_raise_durable_lsn_past_the_new_end(io: IoMode) {
    use vault_segment::sim::CrashPoint;
    let sim = SimStorage::new();
    let wal = Arc::new(open(&sim, 4096, io));
    fill(&wal, 60, 0);
    let tail = wal.read(60).unwrap().segment().path().to_path_buf();
    let cut = 20;
    let armed = Arc::new(AtomicBool::new(true));
    let cutter: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>> = Arc::default();
    {
        let (wal, armed, cutter) = (Arc::clone(&wal), Arc::clone(&armed), Arc::clone(&cutter));
        sim.set_hook(Some(Arc::new(move |p: &CrashPoint| {
            if let CrashPoint::After {
                kind: OpKind::Sync,
                ok: true,
                path,
                ..
            } = p
            {
                if *path == tail && armed.swap(false, SeqCst) {
                    // The flush has synced part of the log and still holds the leader's turn;
                    // the cut starts now, and the flush finishes after it began.
                    let wal = Arc::clone(&wal);
                    *cutter.lock().unwrap() =
                        Some(std::thread::spawn(move || wal.truncate_back(cut).unwrap()));
                    std::thread::sleep(std::time::Duration::from_millis(30));
                }
            }
        })));
    }
    wal.sync().unwrap();
    let handle = cutter
        .lock()
        .unwrap()
        .take()
        .expect("the race was not staged");
    handle.join().unwrap();
    sim.set_hook(None);
    assert_eq!(wal.last_lsn(), cut - 1);
    assert_eq!(
        wal.durable_lsn(),
        cut - 1,
        "durable_lsn claims discarded records"
    );
    // And it is true: a power loss now keeps exactly the records before the cut.
    let crashed = sim.crash(&CrashChoice::none());
    let wal = Arc::into_inner(wal).unwrap();
    drop(wal);
    let wal = common::open_sim(&crashed, 4096, SyncPolicy::Manual, io);
    assert_log(&wal, 1, cut - 1, |_| 0);
}
