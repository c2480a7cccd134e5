//! The durability completion path: `Wal::on_durable` callbacks and `Wal::wait_durable`.
//!
//! `RecordingStorage` logs every successful `msync`, so a callback can check, when it runs,
//! that a sync covering its record's bytes already returned.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::record;
use vault_core::{Error, FsStorage, IoMode, Options, Storage, SyncPolicy, Wal};
use vault_segment::sim::{FaultError, OpKind, SimStorage};
use vault_segment::RecordingStorage;

const LONG: Duration = Duration::from_secs(20);

fn recorded(
    dir: &std::path::Path,
    sync: SyncPolicy,
    seg: u64,
    io: IoMode,
) -> (Wal, Arc<RecordingStorage<FsStorage>>) {
    let rec = Arc::new(RecordingStorage::new(FsStorage));
    let opts = Options::default()
        .with_io(io)
        .with_segment_size(seg)
        .with_sync(sync)
        .with_storage(Arc::clone(&rec) as Arc<dyn Storage>);
    (Wal::open(dir, opts).unwrap(), rec)
}

/// What a callback saw: its LSN, the result, and whether its record's first and last byte
/// were covered by a returned msync at that moment.
type Seen = Arc<Mutex<Vec<(u64, Result<u64, String>, bool)>>>;

fn callback(
    seen: &Seen,
    rec: &Arc<RecordingStorage<FsStorage>>,
    lsn: u64,
    at: (PathBuf, usize, usize),
) -> impl FnOnce(vault_core::Result<u64>) + Send + 'static {
    let seen = Arc::clone(seen);
    let rec = Arc::clone(rec);
    move |r| {
        let (path, first, last) = at;
        let covered = rec.synced_since(0, &path, first) && rec.synced_since(0, &path, last);
        seen.lock()
            .unwrap()
            .push((lsn, r.map_err(|e| e.to_string()), covered));
    }
}

fn place(wal: &Wal, lsn: u64) -> (PathBuf, usize, usize) {
    let r = wal.read(lsn).unwrap();
    (
        r.segment().path().to_path_buf(),
        r.offset() - 16,
        r.offset() + r.len().max(1) - 1,
    )
}

fn wait_for(seen: &Seen, n: usize) {
    let t = Instant::now();
    while seen.lock().unwrap().len() < n {
        assert!(t.elapsed() < LONG, "callbacks not called within 20 s");
        thread::sleep(Duration::from_millis(1));
    }
}

common::both_io_paths!(callbacks_run_once_in_lsn_order_after_a_covering_msync_under_every_policy);
fn callbacks_run_once_in_lsn_order_after_a_covering_msync_under_every_policy(io: IoMode) {
    for policy in [
        SyncPolicy::Manual,
        SyncPolicy::Interval(Duration::from_millis(5)),
        SyncPolicy::Always,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (wal, rec) = recorded(dir.path(), policy, 8192, io);
        let seen: Seen = Arc::default();
        for lsn in 1..=500u64 {
            wal.append(&record(lsn)).unwrap();
        }
        // The first callback holds the committer until every other one is registered (in
        // reverse order), so those are all pending at once and answered in one pass.
        let (release, gate) = mpsc::channel::<()>();
        let (entered_tx, entered) = mpsc::channel::<()>();
        {
            let seen = Arc::clone(&seen);
            let at = place(&wal, 1);
            let rec = Arc::clone(&rec);
            wal.on_durable(1, move |r| {
                entered_tx.send(()).unwrap();
                gate.recv().unwrap();
                callback(&seen, &rec, 1, at)(r);
            });
        }
        entered.recv_timeout(LONG).unwrap();
        for lsn in (2..=500).rev() {
            wal.on_durable(lsn, callback(&seen, &rec, lsn, place(&wal, lsn)));
        }
        release.send(()).unwrap();
        wait_for(&seen, 500);
        let seen = seen.lock().unwrap().clone();
        for (lsn, r, covered) in &seen {
            let d = r.as_ref().unwrap();
            assert!(*d >= *lsn, "{policy:?}: LSN {lsn} called at durable {d}");
            assert!(
                covered,
                "{policy:?}: LSN {lsn} called before an msync covered it"
            );
        }
        let lsns: Vec<u64> = seen.iter().map(|s| s.0).collect();
        assert_eq!(
            lsns,
            (1..=500).collect::<Vec<_>>(),
            "{policy:?}: once each, in order"
        );
        wal.close().unwrap();
    }
}

common::both_io_paths!(many_threads_registering_callbacks_share_flushes);
fn many_threads_registering_callbacks_share_flushes(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let (wal, rec) = recorded(dir.path(), SyncPolicy::Manual, 1 << 20, io);
    let wal = Arc::new(wal);
    let seen: Seen = Arc::default();
    const THREADS: u64 = 8;
    const EACH: u64 = 200;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (wal, rec, seen) = (Arc::clone(&wal), Arc::clone(&rec), Arc::clone(&seen));
            thread::spawn(move || {
                for i in 0..EACH {
                    let lsn = wal.append(&record(t * EACH + i)).unwrap();
                    wal.on_durable(lsn, callback(&seen, &rec, lsn, place(&wal, lsn)));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    wait_for(&seen, (THREADS * EACH) as usize);
    let flushes = wal.stats().flushes;
    eprintln!("{} callbacks served by {flushes} flushes", THREADS * EACH);
    assert!(flushes < THREADS * EACH, "{flushes} flushes");
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|(_, r, covered)| r.is_ok() && *covered));
}

common::both_io_paths!(sim a_failed_sync_answers_every_pending_callback_with_poisoned);
fn a_failed_sync_answers_every_pending_callback_with_poisoned(io: IoMode) {
    let sim = SimStorage::new();
    // One segment holds everything: preparing another would fail too (its header sync).
    let opts = Options::default()
        .with_io(io)
        .with_segment_size(1 << 20)
        .with_sync(SyncPolicy::Manual)
        .with_storage(Arc::new(sim.clone()) as Arc<dyn Storage>);
    let wal = Wal::open("/wal", opts).unwrap();
    wal.append(b"durable").unwrap();
    wal.sync().unwrap();
    let (tx, rx) = mpsc::channel();
    {
        let tx = tx.clone();
        wal.on_durable(1, move |r| {
            tx.send((1, r.map_err(|e| e.to_string()))).unwrap();
        });
    }
    assert_eq!(rx.recv_timeout(LONG).unwrap(), (1, Ok(1)));
    // Every msync fails from now on.
    sim.fail_from(OpKind::Sync, sim.calls(OpKind::Sync) + 1, FaultError::Io);
    for lsn in 2..=30u64 {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
    }
    for lsn in (2..=30u64).rev() {
        let tx = tx.clone();
        wal.on_durable(lsn, move |r| {
            tx.send((lsn, r.map_err(|e| e.to_string()))).unwrap();
        });
    }
    let mut got: Vec<(u64, Result<u64, String>)> =
        (2..=30).map(|_| rx.recv_timeout(LONG).unwrap()).collect();
    got.sort_by_key(|g| g.0);
    for (lsn, r) in &got {
        let e = r.as_ref().unwrap_err();
        assert!(e.contains("failed sync"), "LSN {lsn}: {e}");
    }
    assert_eq!(wal.durable_lsn(), 1);
    // Registered after the failure: the same answer.
    wal.on_durable(2, move |r| {
        tx.send((2, r.map_err(|e| e.to_string()))).unwrap();
    });
    assert!(rx.recv_timeout(LONG).unwrap().1.is_err());
    assert!(matches!(
        wal.wait_durable(2, Some(LONG)),
        Err(Error::Poisoned { durable: 1, .. })
    ));
    assert!(matches!(
        wal.wait_durable(2, None),
        Err(Error::Poisoned { .. })
    ));
    assert!(
        wal.wait_durable(1, None).unwrap(),
        "durable before the failure"
    );
}

common::both_io_paths!(close_answers_pending_callbacks_ok_if_its_sync_covered_them_else_closed);
fn close_answers_pending_callbacks_ok_if_its_sync_covered_them_else_closed(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = recorded(dir.path(), SyncPolicy::Manual, 1 << 20, io);
    let (tx, rx) = mpsc::channel();
    for lsn in 1..=10 {
        wal.append(&record(lsn)).unwrap();
    }
    // 10 is appended (close syncs it); 11 never will be.
    for lsn in [11, 10] {
        let tx = tx.clone();
        wal.on_durable(lsn, move |r| {
            tx.send((lsn, r.map_err(|e| matches!(e, Error::Closed))))
                .unwrap();
        });
    }
    wal.close().unwrap();
    let mut got: Vec<_> = (0..2).map(|_| rx.recv_timeout(LONG).unwrap()).collect();
    got.sort_by_key(|g| g.0);
    assert!(matches!(got[0], (10, Ok(d)) if d >= 10), "{got:?}");
    assert_eq!(got[1], (11, Err(true)));
}

common::both_io_paths!(wait_durable_flushes_or_times_out);
fn wait_durable_flushes_or_times_out(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let (wal, rec) = recorded(dir.path(), SyncPolicy::Manual, 1 << 20, io);
    let wal = Arc::new(wal);
    for lsn in 1..=10 {
        wal.append(&record(lsn)).unwrap();
    }
    // With a time limit: the committer flushes.
    let before = rec.events().len();
    assert!(wal.wait_durable(5, Some(LONG)).unwrap());
    assert!(wal.durable_lsn() >= 5);
    let (path, first, last) = place(&wal, 5);
    assert!(rec.synced_since(before, &path, first) && rec.synced_since(before, &path, last));
    // Without one: this thread flushes.
    wal.append(&record(11)).unwrap();
    assert!(wal.wait_durable(11, None).unwrap());
    assert_eq!(wal.durable_lsn(), 11);
    // Already durable: at once.
    assert!(wal.wait_durable(3, Some(Duration::ZERO)).unwrap());
    // Not appended: waits the time, then says no.
    let t = Instant::now();
    assert!(!wal
        .wait_durable(12, Some(Duration::from_millis(50)))
        .unwrap());
    assert!(t.elapsed() >= Duration::from_millis(50));
    // Appended while waiting: woken by the append, then flushed.
    let waiter = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.wait_durable(12, Some(LONG)))
    };
    thread::sleep(Duration::from_millis(20));
    wal.append(&record(12)).unwrap();
    assert!(waiter.join().unwrap().unwrap());
    assert!(wal.durable_lsn() >= 12);
}

common::both_io_paths!(wait_durable_allocates_nothing_once_the_committer_runs);
fn wait_durable_allocates_nothing_once_the_committer_runs(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), common::plain(8 << 20, SyncPolicy::Manual, io)).unwrap();
    let lsn = wal.append(b"warm").unwrap();
    assert!(wal.wait_durable(lsn, Some(LONG)).unwrap());
    let calls = AtomicU64::new(0);
    let info = allocation_counter::measure(|| {
        for _ in 0..50 {
            let lsn = wal.append(b"record").unwrap();
            assert!(wal.wait_durable(lsn, Some(LONG)).unwrap());
            let lsn = wal.append(b"record").unwrap();
            assert!(wal.wait_durable(lsn, None).unwrap());
            calls.fetch_add(2, Ordering::Relaxed);
        }
    });
    assert_eq!(calls.load(Ordering::Relaxed), 100);
    assert_eq!(info.count_total, 0, "allocations in wait_durable: {info:?}");
}

common::both_io_paths!(a_callback_that_drops_the_last_handle_closes_the_wal_without_deadlock);
fn a_callback_that_drops_the_last_handle_closes_the_wal_without_deadlock(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), common::small(1 << 20, SyncPolicy::Manual, io)).unwrap();
    let wal = Arc::new(wal);
    let lsn = wal.append(b"one").unwrap();
    let (tx, rx) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let held = Arc::clone(&wal);
    wal.on_durable(lsn, move |r| {
        go.recv().unwrap();
        drop(held); // the last handle: closes the WAL on the committer thread
        tx.send(r.is_ok()).unwrap();
    });
    drop(wal);
    go_tx.send(()).unwrap();
    assert!(rx.recv_timeout(LONG).unwrap());
    // Closed: the lock is free and the record durable.
    let wal = Wal::open(dir.path(), common::small(1 << 20, SyncPolicy::Manual, io)).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.records, 1);
    assert_eq!(wal.read(1).unwrap().data(), b"one");
}
