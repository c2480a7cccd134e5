//! Fixed, random, recycling and concurrent workloads, each crashed at every captured step.

use super::*;

common::both_io_paths!(sim every_crash_point_of_small_workloads_recovers_every_acknowledged_record);
/// Small fixed workloads, every crash point, every subset of up to 3 dirty pages with each
/// fate, every prefix of the pending directory operations.
fn every_crash_point_of_small_workloads_recovers_every_acknowledged_record(io: IoMode) {
    use Step::*;
    use SyncPolicy::*;
    // (policy, segment size, steps, exhaustive limit per state): the small workloads are
    // enumerated in full; the larger ones fully where a state has few dirty pages, else sampled.
    let workloads = [
        (Manual, 4096, vec![Append(3), Sync, Append(2), Sync], 5_000),
        (Always, 4096, vec![Append(4), Batch(2)], 5_000),
        (
            Manual,
            4096,
            vec![Append(5), Sync, Reopen, Append(3), Sync],
            5_000,
        ),
        (
            Manual,
            4096,
            vec![Append(7), Sync, Truncate(2), Append(1)],
            5_000,
        ),
        (Manual, 4096, vec![Batch(30), Sync, Append(1), Sync], 40),
        (
            Manual,
            4096,
            vec![Append(25), Sync, Append(25), Sync, Truncate(2)],
            40,
        ),
        (Always, 4096, vec![Append(30), Truncate(3), Append(2)], 40),
        (
            Manual,
            4096,
            vec![Batch(90), Sync, Truncate(3), Append(1)],
            40,
        ),
    ];
    if replay_seed().is_some() {
        return;
    }
    let mut tally = Tally::default();
    for (i, (sync, seg, steps, limit)) in workloads.into_iter().enumerate() {
        let w = Workload {
            spares: 0,
            seed: i as u64,
            sync,
            segment_size: seg,
            steps,
            io,
        };
        check_workload(&w, limit, 4, &mut tally);
    }
    report(io, "exhaustive", &tally);
    assert!(tally.states >= 1_000, "{tally:?}");
}

common::both_io_paths!(sim a_recycling_workload_recovers_every_acknowledged_record_after_power_loss);
/// Workloads whose `truncate_front` calls pool the dropped files and whose rotations then
/// reuse them (one spare, so the worker prepares from the pool at the next rotation): every
/// crash point, including each step of a recycling (the rename to `-pre`, the header write,
/// the rename to the segment name, their directory syncs), and the tails that recycled
/// segments' stale frames follow.
fn a_recycling_workload_recovers_every_acknowledged_record_after_power_loss(io: IoMode) {
    use Step::*;
    use SyncPolicy::*;
    let workloads = [
        (
            Manual,
            vec![
                Append(40),
                Sync,
                Truncate(3),
                Append(30),
                Sync,
                Append(5),
                Truncate(3),
                Append(30),
                Reopen,
                Append(20),
                Sync,
                Append(3),
            ],
        ),
        (
            Always,
            vec![
                Batch(40),
                Truncate(3),
                Append(25),
                Truncate(3),
                Append(25),
                Reopen,
                Append(10),
            ],
        ),
    ];
    if replay_seed().is_some() {
        return;
    }
    let mut tally = Tally::default();
    for (i, (sync, steps)) in workloads.into_iter().enumerate() {
        let w = Workload {
            seed: 100 + i as u64,
            sync,
            segment_size: 4096,
            steps,
            io,
            spares: 1,
        };
        let rec = run(&w);
        assert!(
            rec.recycled >= 1,
            "workload {i} recycled {} files",
            rec.recycled
        );
        check_recorded(&w, &rec, 40, 4, &mut tally);
    }
    report(io, "recycling", &tally);
    assert!(tally.states >= 1_000, "{tally:?}");
}

common::both_io_paths!(sim random_workloads_recover_every_acknowledged_record_after_power_loss);
/// Random workloads until the budget is used: random crash choices at every crash point.
fn random_workloads_recover_every_acknowledged_record_after_power_loss(io: IoMode) {
    let mut tally = Tally::default();
    if let Some(seed) = replay_seed() {
        check_workload(&Workload::random(seed, io), 200, 8, &mut tally);
        report(io, "replay", &tally);
        return;
    }
    let target = budget();
    let first = std::env::var("VAULT_POWERLOSS_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1_000);
    let mut seed = first;
    while tally.states < target {
        check_workload(&Workload::random(seed, io), 60, 3, &mut tally);
        seed += 1;
    }
    report(io, &format!("random (seeds {first}..{seed})"), &tally);
}

common::both_io_paths!(sim a_crash_between_two_syncs_never_loses_the_first);
fn a_crash_between_two_syncs_never_loses_the_first(io: IoMode) {
    // A direct case that needs no enumeration, as a readable example of the check.
    let sim = SimStorage::new();
    let w = Workload {
        spares: 0,
        seed: 0,
        sync: SyncPolicy::Manual,
        segment_size: 4096,
        steps: vec![],
        io,
    };
    let wal = Wal::open(dir(), w.options(&sim)).unwrap();
    for lsn in 1..=40 {
        wal.append(&payload(lsn)).unwrap();
    }
    wal.sync().unwrap();
    for lsn in 41..=45 {
        wal.append(&payload(lsn)).unwrap();
    }
    let crashed = sim.crash(&CrashChoice::none());
    drop(wal);
    let wal = Wal::open(dir(), w.options(&crashed)).unwrap();
    let exp = Expect {
        acked: 40,
        appended: 45,
        truncated: 0,
    };
    assert_eq!(check_log(&wal, exp, true, u64::MAX).unwrap(), (1, 40));
}

common::both_io_paths!(sim a_crash_while_recovery_removes_segments_past_the_tail_leaves_no_gap);
/// Regression: recovery removed the segments past the tail oldest first, so a crash after the
/// first removal reached the disk left a gap (segment 1, then 3) that the next `open` refused
/// as `MissingSegment`. Found by the second crash of the power-loss workloads.
fn a_crash_while_recovery_removes_segments_past_the_tail_leaves_no_gap(io: IoMode) {
    let sim = SimStorage::new();
    let w = Workload {
        spares: 0,
        seed: 0,
        sync: SyncPolicy::Manual,
        segment_size: 4096,
        steps: vec![],
        io,
    };
    let wal = Wal::open(dir(), w.options(&sim)).unwrap();
    for lsn in 1..=60 {
        wal.append(&record(lsn)).unwrap();
    }
    assert!(wal.stats().segments >= 3);
    // Power fails before any sync: the segments' names are durable, their activations not.
    let snap = sim.snapshot();
    let crashed = snap.crash(&CrashChoice {
        pages: vec![],
        dir_ops: snap.pending_dir_ops().len(),
    });
    drop(wal);
    crashed.record_snapshots(true);
    let wal = Wal::open(dir(), w.options(&crashed)).unwrap();
    let report = wal.recovery().clone();
    assert!(report.removed_segments.len() >= 2, "{report:?}");
    drop(wal);
    let removals: Vec<Snapshot> = crashed
        .take_snapshots()
        .into_iter()
        .filter(|s| {
            matches!(
                &s.point,
                CrashPoint::After {
                    kind: OpKind::Remove,
                    ..
                }
            )
        })
        .collect();
    assert!(removals.len() >= 2);
    for s in &removals {
        // Every removal made so far reaches the disk, none after it.
        let again = s.crash(&CrashChoice {
            pages: vec![],
            dir_ops: s.pending_dir_ops().len(),
        });
        let wal = Wal::open(dir(), w.options(&again))
            .unwrap_or_else(|e| panic!("crash {}: {e}", s.point));
        // The same log as the interrupted recovery found (the worker's final msync of full
        // segments made some records durable without a sync call).
        assert_eq!(
            (wal.first_lsn(), wal.last_lsn()),
            (1, report.next_lsn - 1),
            "crash {}",
            s.point
        );
    }
}

common::both_io_paths!(sim truncate_front_racing_a_rotation_keeps_a_durable_first_segment);
/// Regression: `truncate_front(lsn)` synced, then dropped every segment followed by one whose
/// first LSN is at most `lsn`. With `lsn` past what that sync covered (here `u64::MAX`, "drop
/// everything old"), a rotation by another appender in between made the new tail, whose
/// activation was not durable yet, the only segment: after a power loss the log began with an
/// unactivated segment of index > 1, which `open` refuses (`BadActivation`). Found by reading
/// `truncate_front` while writing these tests; the hook makes the race deterministic.
fn truncate_front_racing_a_rotation_keeps_a_durable_first_segment(io: IoMode) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

    let sim = SimStorage::new();
    let opts = |s: &SimStorage| {
        Options::default()
            .with_io(io)
            .with_segment_size(4096)
            .with_sync(SyncPolicy::Manual)
            .with_storage(Arc::new(s.clone()) as Arc<dyn Storage>)
    };
    let wal = Arc::new(Wal::open(dir(), opts(&sim)).unwrap());
    let mut last = 0;
    while wal.stats().segments < 3 {
        last = wal.append(&payload(last + 1)).unwrap();
    }
    let tail = wal.read(last).unwrap().segment().path().to_path_buf();
    let armed = Arc::new(AtomicBool::new(true));
    let next = Arc::new(AtomicU64::new(last + 1));
    {
        let (wal, armed, next) = (Arc::clone(&wal), Arc::clone(&armed), Arc::clone(&next));
        sim.set_hook(Some(Arc::new(move |p: &CrashPoint| {
            let CrashPoint::After {
                kind: OpKind::Sync,
                path,
                ok: true,
                ..
            } = p
            else {
                return;
            };
            // Right after truncate_front's sync of the tail, another appender fills it and
            // rotates into the next segment.
            if *path == tail && armed.swap(false, SeqCst) {
                let rotations = wal.stats().rotations;
                while wal.stats().rotations == rotations {
                    let lsn = next.fetch_add(1, SeqCst);
                    assert_eq!(wal.append(&payload(lsn)).unwrap(), lsn);
                }
            }
        })));
    }
    wal.truncate_front(u64::MAX).unwrap();
    sim.set_hook(None);
    assert!(!armed.load(SeqCst), "the race was not staged");
    // Power fails right after truncate_front returned.
    let crashed = sim.crash(&CrashChoice::none());
    drop(wal);
    let wal = Wal::open(dir(), opts(&crashed))
        .unwrap_or_else(|e| panic!("open after truncate_front and power loss: {e}"));
    let exp = Expect {
        acked: last,
        appended: next.load(SeqCst) - 1,
        truncated: u64::MAX,
    };
    check_log(&wal, exp, true, u64::MAX).unwrap();
}

/// The bytes thread `t` appends as its `s`-th record: a function of `(t, s)` alone, which the
/// record's first bytes name.
fn threaded_record(t: u8, s: u16) -> Vec<u8> {
    let len = 3 + (usize::from(t) * 31 + usize::from(s) * 7) % 200;
    let mut r = vec![t, s.to_le_bytes()[0], s.to_le_bytes()[1]];
    r.extend((3..len).map(|i| (i as u8).wrapping_mul(t.wrapping_add(3)) ^ (s as u8)));
    r
}

common::both_io_paths!(sim concurrent_acknowledged_appends_survive_power_loss_at_every_step);
/// Concurrent appenders under `Always` (group commit, rotations racing appends), crashed at
/// every recorded operation: every acknowledged record survives, at the LSN its append
/// returned, byte-exact.
fn concurrent_acknowledged_appends_survive_power_loss_at_every_step(io: IoMode) {
    use std::collections::HashMap;
    use std::sync::Mutex;

    const THREADS: u8 = 3;
    const EACH: u16 = 25;
    let sim = SimStorage::new();
    sim.record_snapshots(true);
    let w = Workload {
        spares: 0,
        seed: 7,
        sync: SyncPolicy::Always,
        segment_size: 4096,
        steps: vec![],
        io,
    };
    let wal = Arc::new(Wal::open(dir(), w.options(&sim)).unwrap());
    // (history of expectations, LSN -> (thread, seq)); the mark indexes the history.
    let shared = Arc::new(Mutex::new((vec![(0u64, 0u64)], HashMap::new())));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (wal, shared, sim) = (Arc::clone(&wal), Arc::clone(&shared), sim.clone());
            std::thread::spawn(move || {
                for s in 0..EACH {
                    {
                        let mut g = shared.lock().unwrap();
                        let (acked, started) = *g.0.last().unwrap();
                        g.0.push((acked, started + 1));
                        sim.set_mark(g.0.len() as u64 - 1);
                    }
                    let lsn = wal.append(&threaded_record(t, s)).unwrap();
                    let mut g = shared.lock().unwrap();
                    g.1.insert(lsn, (t, s));
                    let (acked, started) = *g.0.last().unwrap();
                    g.0.push((acked.max(lsn), started));
                    sim.set_mark(g.0.len() as u64 - 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let wal = Arc::into_inner(wal).unwrap();
    wal.close().unwrap();
    sim.record_snapshots(false);
    let mut snaps = sim.take_snapshots();
    snaps.push(sim.snapshot());
    let (history, lsn_of) = Arc::into_inner(shared).unwrap().into_inner().unwrap();
    assert_eq!(lsn_of.len(), usize::from(THREADS) * usize::from(EACH));

    let mut rng = SimRng::new(0xC0C0);
    let mut seen = HashSet::new();
    let mut states = 0u64;
    for snap in &snaps {
        let (acked, started) = history[snap.mark as usize];
        if !seen.insert((snap.fingerprint(), acked, started)) {
            continue;
        }
        let mut choices = vec![CrashChoice::none(), CrashChoice::all(snap)];
        choices.extend((0..4).map(|_| random_atomic_choice(snap, &mut rng)));
        for choice in &choices {
            let crashed = snap.crash(choice);
            let case = format!("crash {} ({choice}), acked {acked}", snap.point);
            let wal = Wal::open(dir(), w.options(&crashed))
                .unwrap_or_else(|e| panic!("{case}: open: {e}"));
            let last = wal.last_lsn();
            assert!(last >= acked, "{case}: recovered up to {last}");
            assert!(
                last <= started,
                "{case}: {last} records, {started} appends started"
            );
            let mut expect = 1;
            for r in wal.iter_from(1) {
                assert_eq!(r.lsn(), expect, "{case}: gap");
                let (t, s) = lsn_of[&expect];
                assert!(r.data() == threaded_record(t, s), "{case}: record {expect}");
                expect += 1;
            }
            assert_eq!(expect, last + 1, "{case}");
            states += 1;
        }
    }
    println!(
        "power_loss {} concurrent: checked {states} states",
        common::io_path(io)
    );
    assert!(states > 200, "{states}");
}

common::both_io_paths!(sim a_record_appended_during_a_flush_is_not_counted_durable_by_it);
/// A record appended while a flush is in its msync is not covered by that flush: `durable_lsn`
/// must not claim it, since its bytes may not have been written. (Staged with the storage
/// hook: the append happens right after the flush's msync of the tail.)
fn a_record_appended_during_a_flush_is_not_counted_durable_by_it(io: IoMode) {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    let sim = SimStorage::new();
    let w = Workload {
        spares: 0,
        seed: 0,
        sync: SyncPolicy::Manual,
        segment_size: 4096,
        steps: vec![],
        io,
    };
    let wal = Arc::new(Wal::open(dir(), w.options(&sim)).unwrap());
    for lsn in 1..=3 {
        wal.append(&record(lsn)).unwrap();
    }
    let tail = wal.read(3).unwrap().segment().path().to_path_buf();
    let armed = Arc::new(AtomicBool::new(true));
    {
        let (wal, armed) = (Arc::clone(&wal), Arc::clone(&armed));
        sim.set_hook(Some(Arc::new(move |p: &CrashPoint| {
            if let CrashPoint::After {
                kind: OpKind::Sync,
                path,
                ok: true,
                ..
            } = p
            {
                if *path == tail && armed.swap(false, SeqCst) {
                    assert_eq!(wal.append(&record(4)).unwrap(), 4);
                }
            }
        })));
    }
    wal.sync().unwrap();
    sim.set_hook(None);
    assert!(!armed.load(SeqCst), "the race was not staged");
    let durable = wal.durable_lsn();
    assert_eq!(durable, 3, "the flush claimed a record appended during it");
    let crashed = sim.crash(&CrashChoice::none());
    drop(wal);
    let wal = Wal::open(dir(), w.options(&crashed)).unwrap();
    assert!(wal.last_lsn() >= durable);
    let exp = Expect {
        acked: durable,
        appended: 4,
        truncated: 0,
    };
    check_log(&wal, exp, true, u64::MAX).unwrap();
}
