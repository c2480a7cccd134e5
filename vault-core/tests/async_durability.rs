//! Awaitable durability: the `Durable` future of `Wal::durable`, under a multi-thread tokio
//! runtime and under `futures::executor::block_on` (the library depends on neither).
//!
//! `RecordingStorage` logs every successful `msync`, so a test can check, when a future
//! resolves, that a sync covering its record's bytes already returned; `SimStorage` injects a
//! failing `msync`.

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use common::record;
use futures::executor::block_on;
use futures::task::{waker, ArcWake};
use vault_core::{Durable, Error, FsStorage, Options, Storage, SyncPolicy, Wal};
use vault_segment::sim::{FaultError, OpKind, SimStorage};
use vault_segment::RecordingStorage;

fn recorded(dir: &Path, sync: SyncPolicy) -> (Wal, Arc<RecordingStorage<FsStorage>>) {
    let rec = Arc::new(RecordingStorage::new(FsStorage));
    let opts = Options::default()
        .with_segment_size(64 << 10)
        .with_sync(sync)
        .with_storage(Arc::clone(&rec) as Arc<dyn Storage>);
    (Wal::open(dir, opts).unwrap(), rec)
}

/// Whether a returned `msync` covered the first and last byte of record `lsn` (frame header
/// included).
fn covered(wal: &Wal, rec: &RecordingStorage<FsStorage>, lsn: u64) -> bool {
    let r = wal.read(lsn).unwrap();
    let path: PathBuf = r.segment().path().to_path_buf();
    let (first, last) = (r.offset() - 16, r.offset() + r.len().max(1) - 1);
    rec.synced_since(0, &path, first) && rec.synced_since(0, &path, last)
}

/// A waker that records that it was woken, for polling a future by hand.
#[derive(Default)]
struct Flag(AtomicBool);

impl ArcWake for Flag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, Ordering::SeqCst);
    }
}

impl Flag {
    fn woken(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Polls `fut` once with a waker that sets `flag`.
fn poll_once(fut: &mut Durable, flag: &Arc<Flag>) -> Poll<vault_core::Result<u64>> {
    let w = waker(Arc::clone(flag));
    Pin::new(fut).poll(&mut Context::from_waker(&w))
}

/// Many tasks on a multi-thread runtime append and await their records under `Manual`: only
/// the committer, driven by the futures, flushes. Each resolves with its record covered by a
/// returned msync.
#[test]
fn futures_resolve_after_a_covering_flush_under_a_multi_thread_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, rec) = recorded(dir.path(), SyncPolicy::Manual);
    let wal = Arc::new(wal);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    const TASKS: u64 = 16;
    const EACH: u64 = 50;
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let (wal, rec) = (Arc::clone(&wal), Arc::clone(&rec));
            tasks.push(tokio::spawn(async move {
                for i in 0..EACH {
                    let lsn = wal.append(&record(t * EACH + i + 1)).unwrap();
                    let d = wal.durable(lsn).await.unwrap();
                    assert!(d >= lsn, "LSN {lsn} resolved at durable {d}");
                    assert!(
                        covered(&wal, &rec, lsn),
                        "LSN {lsn} resolved before an msync covered it"
                    );
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let stats = wal.stats();
    assert_eq!(stats.last_lsn, TASKS * EACH);
    assert!(stats.durable_lsn >= TASKS * EACH);
}

/// Under `Manual` nobody else flushes: awaiting the future is what makes the record durable,
/// on a minimal executor.
#[test]
fn under_block_on_with_manual_sync_the_future_drives_the_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, rec) = recorded(dir.path(), SyncPolicy::Manual);
    let lsn = wal.append(b"one").unwrap();
    assert!(wal.durable_lsn() < lsn, "Manual: append does not sync");
    let flushes = wal.stats().flushes;
    let fut = wal.durable(lsn);
    assert_eq!(fut.lsn(), lsn);
    assert!(
        wal.durable_lsn() < lsn,
        "a future does nothing until polled"
    );
    assert!(block_on(fut).unwrap() >= lsn);
    assert!(covered(&wal, &rec, lsn));
    assert_eq!(wal.stats().flushes, flushes + 1);
    // Already durable: resolves at the first poll, without a flush.
    assert!(block_on(wal.durable(lsn)).unwrap() >= lsn);
    assert_eq!(wal.stats().flushes, flushes + 1);
    wal.close().unwrap();
}

/// Under `Interval` (and `Always`) the future works the same; the interval flusher or the
/// appender may have made the record durable first.
#[test]
fn futures_resolve_under_interval_and_always_policies() {
    for policy in [
        SyncPolicy::Interval(Duration::from_millis(5)),
        SyncPolicy::Always,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (wal, rec) = recorded(dir.path(), policy);
        for lsn in 1..=50 {
            assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
            assert!(block_on(wal.durable(lsn)).unwrap() >= lsn, "{policy:?}");
            assert!(covered(&wal, &rec, lsn), "{policy:?}: LSN {lsn}");
        }
        wal.close().unwrap();
    }
}

/// A future for an LSN not appended yet waits for the append, then for its flush.
#[test]
fn a_future_for_an_lsn_not_appended_yet_resolves_after_its_append_and_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, rec) = recorded(dir.path(), SyncPolicy::Manual);
    let wal = Arc::new(wal);
    let flag = Arc::new(Flag::default());
    let mut fut = wal.durable(2);
    assert!(poll_once(&mut fut, &flag).is_pending());
    wal.append(b"one").unwrap();
    let appender = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            wal.append(b"two").unwrap()
        })
    };
    assert!(block_on(fut).unwrap() >= 2);
    assert_eq!(appender.join().unwrap(), 2);
    assert!(covered(&wal, &rec, 2));
}

/// `close` wakes a pending future with `Closed` (its LSN was never appended: close syncs
/// everything that was); a future polled after close gets `Ok` if its record is durable and
/// `Closed` if not. The future outlives the `Wal`.
#[test]
fn close_resolves_pending_futures_with_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _rec) = recorded(dir.path(), SyncPolicy::Manual);
    let lsn = wal.append(b"kept").unwrap();
    let flag = Arc::new(Flag::default());
    let mut never = wal.durable(lsn + 1);
    assert!(poll_once(&mut never, &flag).is_pending());
    let mut unpolled_durable = wal.durable(lsn);
    let mut unpolled_never = wal.durable(lsn + 5);
    wal.close().unwrap();
    assert!(flag.woken(), "close did not wake the pending future");
    assert!(matches!(
        poll_once(&mut never, &flag),
        Poll::Ready(Err(Error::Closed))
    ));
    assert!(matches!(
        poll_once(&mut unpolled_durable, &flag),
        Poll::Ready(Ok(d)) if d >= lsn
    ));
    assert!(matches!(block_on(&mut unpolled_never), Err(Error::Closed)));
}

/// A failed `msync` poisons the WAL: the pending future resolves with `Poisoned` (its record
/// was not made durable), and so does every later one for a record not durable.
#[test]
fn a_failed_sync_resolves_pending_futures_with_poisoned() {
    let sim = SimStorage::new();
    let opts = Options::default()
        .with_segment_size(4096)
        .with_sync(SyncPolicy::Manual)
        .with_storage(Arc::new(sim.clone()) as Arc<dyn Storage>);
    let wal = Wal::open("/wal", opts).unwrap();
    let durable_before = block_on(wal.durable(wal.append(b"durable").unwrap())).unwrap();
    let lsn = wal.append(b"lost").unwrap();
    sim.fail_from(OpKind::Sync, sim.calls(OpKind::Sync) + 1, FaultError::Io);
    match block_on(wal.durable(lsn)) {
        Err(Error::Poisoned { durable, .. }) => assert_eq!(durable, durable_before),
        other => panic!("expected Poisoned, got {other:?}"),
    }
    assert_eq!(wal.durable_lsn(), durable_before);
    assert!(matches!(
        block_on(wal.durable(lsn)),
        Err(Error::Poisoned { .. })
    ));
    // Durable before the failure: still `Ok`.
    assert_eq!(
        block_on(wal.durable(durable_before)).unwrap(),
        durable_before
    );
    assert!(wal.close().is_err());
}

/// An LSN names a position in the log (as for `on_durable` and `wait_durable`): after
/// `truncate_back` discards the awaited record, the future resolves once the record appended
/// at that position after the cut is durable, not before.
#[test]
fn a_truncated_lsn_resolves_once_the_record_appended_at_its_position_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, rec) = recorded(dir.path(), SyncPolicy::Manual);
    for lsn in 1..=5 {
        wal.append(&record(lsn)).unwrap();
    }
    let flag = Arc::new(Flag::default());
    let mut fut = wal.durable(5);
    wal.truncate_back(3).unwrap();
    assert_eq!(wal.last_lsn(), 2);
    assert!(poll_once(&mut fut, &flag).is_pending(), "LSN 5 is gone");
    wal.append(b"new three").unwrap();
    wal.append(b"new four").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        poll_once(&mut fut, &flag).is_pending(),
        "resolved before LSN 5 was appended again"
    );
    wal.append(b"new five").unwrap();
    assert!(block_on(fut).unwrap() >= 5);
    assert_eq!(wal.read(5).unwrap().data(), b"new five");
    assert!(covered(&wal, &rec, 5));
}

/// Dropping a pending future cancels nothing: the others resolve, and many polled-then-dropped
/// futures leave the WAL working (their slots released and reused).
#[test]
fn dropping_a_pending_future_cancels_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, rec) = recorded(dir.path(), SyncPolicy::Manual);
    let wal = Arc::new(wal);
    let a = wal.append(b"a").unwrap();
    let b = wal.append(b"b").unwrap();
    let flag = Arc::new(Flag::default());
    // LSN 4 is not appended yet, so both futures stay pending until it is.
    let mut dropped = wal.durable(b + 2);
    let mut kept = wal.durable(b + 2);
    assert!(poll_once(&mut dropped, &flag).is_pending());
    assert!(poll_once(&mut kept, &flag).is_pending());
    drop(dropped);
    wal.append(b"c").unwrap();
    wal.append(b"d").unwrap();
    assert!(block_on(kept).unwrap() >= b + 2);
    assert!(covered(&wal, &rec, a) && covered(&wal, &rec, b + 2));

    // Tasks that give up after one poll, racing tasks that await.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let wal = Arc::clone(&wal);
            tasks.push(tokio::spawn(async move {
                for _ in 0..50 {
                    let lsn = wal.append(b"x").unwrap();
                    if t % 2 == 0 {
                        // Polled once (registering if not durable), then dropped.
                        let _ = futures::poll!(wal.durable(lsn));
                    } else {
                        assert!(wal.durable(lsn).await.unwrap() >= lsn);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let last = wal.last_lsn();
    assert!(block_on(wal.durable(last)).unwrap() >= last);
}
