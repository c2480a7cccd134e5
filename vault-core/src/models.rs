//! Loom models of the `Wal`'s concurrency: the real `Wal`, with loom's locks, atomics and
//! threads (see `sync.rs`), the real rotation worker compiled in from vault-rotate's source,
//! and the in-memory `SimStorage` for every file. Each model asserts the invariant it protects;
//! loom adds that no execution deadlocks (a waiter never woken, a writer blocked forever) and
//! that no loom `Arc` leaks.
//!
//! What these models cannot see: vault-segment is linked as a normal dependency, so a segment's
//! own atomics and sync lock are std's here, and each `Segment` call is one indivisible step
//! between this crate's loom operations (the publish protocol and racing syncs are checked by
//! vault-segment's models instead). Likewise `SimStorage`'s work is invisible to loom.
//!
//! Thread budget: loom allows 5 threads per execution. `model()` runs the body on one (loom's
//! own first thread is the other), and every `Wal` starts a rotation worker, so a model with
//! one `Wal` has room for two more threads (one, if it reopens the log). The committer of
//! `on_durable` (and of `wait_durable` with a timeout) is a thread too, started by its first
//! use: a model that uses it has room for one more.
//!
//! Only models belong in this crate's unit tests: under `cfg(test)` a `Wal` made outside
//! `loom::model` panics. Tests with real threads and files are in `tests/`.

use std::path::Path;
use std::time::Duration;

use vault_segment::sim::{CrashChoice, SimStorage, UNMAPPED_POISON};
use vault_segment::{parse_segment_name, Record};

use crate::sync::{model, spawn, Arc, StdArc};
use crate::{IoMode, Lsn, Options, SyncPolicy, Wal};

const DIR: &str = "/wal";

/// A payload that fills most of half a 4 KiB segment: two fit, the third rotates.
const HALF: usize = 1800;

fn options(sim: &SimStorage, sync: SyncPolicy) -> Options {
    Options::default()
        .with_segment_size(4096)
        .with_sync(sync)
        .with_storage(StdArc::new(sim.clone()))
}

fn open(sim: &SimStorage, sync: SyncPolicy) -> Wal {
    Wal::open(DIR, options(sim, sync)).unwrap()
}

/// `len` bytes of `tag`: a record that says who wrote it.
fn record(tag: u8, len: usize) -> Vec<u8> {
    vec![tag; len]
}

/// The tag of a record made by [`record`], checking it is whole (not torn, not poisoned).
fn tag_of(rec: &Record) -> u8 {
    let data = rec.data();
    let tag = data[0];
    assert_ne!(
        tag,
        UNMAPPED_POISON,
        "LSN {} read from an unmapped segment",
        rec.lsn()
    );
    assert!(
        data.iter().all(|&b| b == tag),
        "LSN {} is not whole",
        rec.lsn()
    );
    tag
}

/// Checks that every record up to `durable` has its bytes, and its segment's activation, in
/// the durable image: what a power cut would keep.
fn assert_durable_through(wal: &Wal, sim: &SimStorage, durable: Lsn) {
    for lsn in 1..=durable {
        let rec = wal.read(lsn).expect("a durable record is readable");
        let image = sim.durable_bytes(rec.segment().path()).unwrap();
        let at = rec.offset();
        assert_eq!(
            &image[at..at + rec.len()],
            rec.data(),
            "LSN {lsn} reported durable before a sync covered its bytes"
        );
        let first = rec.segment().first_lsn().to_le_bytes();
        assert_eq!(&image[64..72], &first, "LSN {lsn}: activation not durable");
    }
}

/// Segment indexes named in the live directory, and whether a `-pre` file is there.
fn files(sim: &SimStorage) -> (Vec<u64>, bool) {
    let mut indexes = Vec::new();
    let mut pre = false;
    for p in sim.live_names(Path::new(DIR)) {
        let name = parse_segment_name(p.file_name().unwrap().to_str().unwrap()).unwrap();
        pre |= name.pre;
        indexes.push(name.index);
    }
    indexes.sort_unstable();
    (indexes, pre)
}

/// Model (1): two writers append while one of them rotates into the segment the worker
/// prepared, and a reader iterates meanwhile. No record is lost or duplicated (LSNs 2 and 3,
/// once each, each holding its writer's bytes), none lands in the retired segment (the third
/// record opens segment 2, and once closed every byte published in either segment is durable:
/// a record written into segment 1 after its retirement would lie past the end its final sync
/// covered), the reader sees a gap-free prefix, and no writer blocks forever.
#[test]
fn writers_racing_a_rotation_lose_duplicate_and_misplace_nothing() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Manual));
        assert_eq!(wal.append(&record(b'a', HALF)).unwrap(), 1);
        let writers = [b'b', b'c'].map(|tag| {
            let wal = Arc::clone(&wal);
            spawn(move || (wal.append(&record(tag, HALF)).unwrap(), tag))
        });
        // LSN 1 was published before the reader started: it sees at least that, then a
        // gap-free run.
        let mut seen = 0;
        for (rec, lsn) in wal.iter_from(1).zip(1..) {
            assert_eq!(rec.lsn(), lsn, "the reader skipped a record");
            tag_of(&rec);
            seen += 1;
        }
        assert!(seen >= 1, "the reader missed LSN 1");
        let mut got = writers.map(|w| w.join().unwrap());
        got.sort_unstable();
        assert_eq!([got[0].0, got[1].0], [2, 3], "LSNs lost or duplicated");

        let recs: Vec<Record> = wal.iter_from(1).collect();
        let tags: Vec<u8> = recs.iter().map(tag_of).collect();
        assert_eq!(tags, [b'a', got[0].1, got[1].1]);
        let placed: Vec<u64> = recs.iter().map(|r| r.segment().index()).collect();
        assert_eq!(placed, [1, 1, 2]);
        assert_eq!(wal.stats().rotations, 1);

        Arc::try_unwrap(wal).unwrap().close().unwrap();
        for rec in &recs {
            let image = sim.durable_bytes(rec.segment().path()).unwrap();
            let at = rec.offset();
            assert_eq!(&image[at..at + rec.len()], rec.data(), "LSN {}", rec.lsn());
        }
    });
}

/// Model (3), group commit: two appenders under `SyncPolicy::Always` share flushes while an
/// observer reads `durable_lsn`. Whenever `durable_lsn` is some `d`, every record up to `d` is
/// in the durable image (a flush's coverage is what the writer lock showed before its syncs,
/// never more); each `append` returns with its record durable; every waiting follower is woken
/// (a lost notification is a deadlock loom reports).
#[test]
fn group_commit_never_reports_a_record_durable_before_its_sync() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Always));
        let appenders = [b'x', b'y'].map(|tag| {
            let wal = Arc::clone(&wal);
            let sim = sim.clone();
            spawn(move || {
                let lsn = wal.append(&record(tag, 40)).unwrap();
                let durable = wal.durable_lsn();
                assert!(durable >= lsn, "append {lsn} returned at durable {durable}");
                assert_durable_through(&wal, &sim, durable);
                lsn
            })
        });
        let seen = wal.durable_lsn();
        assert_durable_through(&wal, &sim, seen);
        let mut lsns = appenders.map(|a| a.join().unwrap());
        lsns.sort_unstable();
        assert_eq!(lsns, [1, 2]);
        assert_eq!(wal.durable_lsn(), 2);
        let flushes = wal.stats().flushes;
        assert!(
            (1..=2).contains(&flushes),
            "{flushes} flushes for 2 appends"
        );
    });
}

/// Model (3) with a failing `msync` while flushes overlap: the first sync of a flush fails (the
/// run's fifth: the first segment's preparation, `open`'s sync and the two spares' come
/// first), while the other appender may already have a second flush in flight. Whatever each appender
/// gets, `Ok(lsn)` means its record is in the durable image, and after the failure the WAL is
/// poisoned: `durable_lsn` never covers a record no successful sync wrote, even if a younger
/// flush succeeded while the failed one was in flight.
#[test]
fn a_failed_flush_poisons_and_nothing_past_it_is_acknowledged() {
    use vault_segment::sim::{FaultError, OpKind};
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Always));
        // The worker's two spares (the models' cap) have made their syncs.
        while wal.stats().segments_prepared < 3 {
            loom::thread::yield_now();
        }
        sim.fail_nth(OpKind::Sync, 5, FaultError::Io);
        let appenders = [b'x', b'y'].map(|tag| {
            let wal = Arc::clone(&wal);
            let sim = sim.clone();
            spawn(move || {
                let got = wal.append(&record(tag, 40));
                let durable = wal.durable_lsn();
                if let Ok(lsn) = got {
                    assert!(durable >= lsn, "append {lsn} returned at durable {durable}");
                }
                assert_durable_through(&wal, &sim, durable);
                got.is_ok()
            })
        });
        let ok = appenders.map(|a| a.join().unwrap());
        let durable = wal.durable_lsn();
        assert_durable_through(&wal, &sim, durable);
        if ok.iter().all(|&o| o) {
            assert_eq!(durable, 2);
        } else {
            assert!(wal.sync().is_err(), "a failed flush did not poison the WAL");
        }
    });
}

/// Model (3) across a rotation: the flush that covers a record in the new segment must also
/// cover the end of the sealed one (which the worker may be retiring at the same moment).
/// Two appenders under `SyncPolicy::Always`, one of whose records opens segment 2: whenever
/// either sees `durable_lsn` at `d`, every record up to `d`, in either segment, is durable.
#[test]
fn group_commit_across_a_rotation_covers_the_sealed_segment() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Always));
        wal.append(&record(b'a', HALF)).unwrap();
        let appenders = [b'b', b'c'].map(|tag| {
            let wal = Arc::clone(&wal);
            let sim = sim.clone();
            spawn(move || {
                let lsn = wal.append(&record(tag, HALF)).unwrap();
                let durable = wal.durable_lsn();
                assert!(durable >= lsn, "append {lsn} returned at durable {durable}");
                assert_durable_through(&wal, &sim, durable);
            })
        });
        for a in appenders {
            a.join().unwrap();
        }
        assert_eq!(wal.durable_lsn(), 3);
        assert_eq!(wal.stats().rotations, 1);
        assert_durable_through(&wal, &sim, 3);
    });
}

/// Model (4), shutdown during preparation: the WAL is closed right after an append, while the
/// worker prepares the next segment (or has it ready). The worker exits, nothing blocks, every
/// mapping is released, the spare is removed (durably: after a power cut the log reopens with
/// its record and nothing to clean up).
#[test]
fn closing_while_the_worker_prepares_leaves_only_the_log() {
    model(|| {
        let sim = SimStorage::new();
        let wal = open(&sim, SyncPolicy::Manual);
        wal.append(b"one").unwrap();
        wal.close().unwrap();
        assert_eq!(files(&sim), (vec![1], false));
        assert_eq!(
            sim.live_regions(),
            0,
            "a segment is still mapped after close"
        );

        let after = sim.crash(&CrashChoice::none());
        let wal = Wal::open(DIR, options(&after, SyncPolicy::Manual)).unwrap();
        let report = wal.recovery().clone();
        assert!(report.removed_segments.is_empty() && report.removed_pre.is_empty());
        assert!(report.torn_tail.is_none());
        assert_eq!(wal.read(1).unwrap().data(), b"one");
    });
}

/// Model (4), continued: the last handle to the WAL is dropped on whichever thread finishes
/// last, while a writer's rotation has the worker preparing the next spare. Dropping closes:
/// the worker exits, the spare is removed, nothing stays mapped, everything appended is durable.
#[test]
fn dropping_the_wal_mid_rotation_stops_the_worker_and_keeps_every_record() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Manual));
        wal.append(&record(b'a', HALF)).unwrap();
        let writer = {
            let wal = Arc::clone(&wal);
            spawn(move || {
                wal.append(&record(b'b', HALF)).unwrap();
                wal.append(&record(b'c', HALF)).unwrap(); // rotates
            })
        };
        drop(wal);
        writer.join().unwrap();
        assert_eq!(files(&sim), (vec![1, 2], false));
        assert_eq!(
            sim.live_regions(),
            0,
            "a segment is still mapped after close"
        );

        let after = sim.crash(&CrashChoice::none());
        let wal = Wal::open(DIR, options(&after, SyncPolicy::Manual)).unwrap();
        let report = wal.recovery().clone();
        assert_eq!((report.records, report.next_lsn), (3, 4));
        let tags: Vec<u8> = wal.iter_from(1).map(|r| tag_of(&r)).collect();
        assert_eq!(tags, b"abc");
    });
}

/// Model (5), reader vs `truncate_front` and retirement: a reader iterates (and keeps the
/// records it got) while `truncate_front` drops segment 1, which the worker may still be
/// retiring. The reader sees either the whole log or the truncated one, never a gap; every
/// record it holds stays readable after the file is removed (a segment unmapped under it
/// would read as poison, see `SimStorage::poison_unmapped`); and once the last holder is gone
/// nothing stays mapped.
#[test]
fn a_reader_keeps_its_segment_mapped_through_truncate_front() {
    model(|| {
        let sim = SimStorage::new();
        sim.poison_unmapped(true);
        let wal = Arc::new(open(&sim, SyncPolicy::Manual));
        for tag in [b'a', b'b', b'c'] {
            wal.append(&record(tag, HALF)).unwrap(); // the third opens segment 2
        }
        let reader = {
            let wal = Arc::clone(&wal);
            spawn(move || {
                let recs: Vec<Record> = wal.iter_from(1).collect();
                let lsns: Vec<Lsn> = recs.iter().map(Record::lsn).collect();
                assert!(
                    lsns == [1, 2, 3] || lsns == [3],
                    "reader saw LSNs {lsns:?} across truncate_front"
                );
                // Give truncate_front every chance to run before the records are read.
                loom::thread::yield_now();
                let tags: Vec<u8> = recs.iter().map(tag_of).collect();
                assert_eq!(&tags[..], &b"abc"[3 - tags.len()..]);
            })
        };
        assert_eq!(wal.truncate_front(3).unwrap(), 1);
        assert_eq!(wal.first_lsn(), 3);
        reader.join().unwrap();
        let tags: Vec<u8> = wal.iter_from(1).map(|r| tag_of(&r)).collect();
        assert_eq!(tags, b"c");
        drop(wal);
        assert_eq!(
            sim.live_regions(),
            0,
            "a segment is still mapped after close"
        );
        assert_eq!(files(&sim), (vec![2], false));
    });
}

/// `truncate_front` racing a rotation: after it returns, a power cut must leave a log that
/// opens. (It removes every segment before the first one it keeps; that one's activation
/// block must be durable first, or recovery finds a log whose first segment was never
/// activated.)
#[test]
fn truncate_front_racing_a_rotation_leaves_a_log_that_reopens() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Manual));
        wal.append(&record(b'a', HALF)).unwrap();
        wal.append(&record(b'b', HALF)).unwrap();
        let writer = {
            let wal = Arc::clone(&wal);
            spawn(move || wal.append(&record(b'c', HALF)).unwrap()) // rotates
        };
        wal.truncate_front(3).unwrap();
        writer.join().unwrap();
        // Power fails now: only what was synced survives.
        let after = sim.crash(&CrashChoice::none());
        let reopened = Wal::open(DIR, options(&after, SyncPolicy::Manual))
            .expect("a truncated log must reopen after a power cut");
        let report = reopened.recovery().clone();
        // LSN 3 was never synced and may be lost; what is there is whole and in order.
        let recs: Vec<Record> = reopened.iter_from(1).collect();
        assert_eq!(recs.len() as u64, report.records);
        for (rec, lsn) in recs.iter().zip(report.first_lsn..) {
            assert_eq!(rec.lsn(), lsn);
            tag_of(rec);
        }
    });
}

/// `close` stops the interval flusher even when its stop signal arrives while the flusher is
/// flushing (not waiting): the flusher must look at the flag before it waits again, or it
/// sleeps a whole interval (forever, in the model) and `close` hangs joining it.
#[test]
fn close_stops_the_interval_flusher_even_mid_flush() {
    model(|| {
        let sim = SimStorage::new();
        let wal = open(&sim, SyncPolicy::Interval(Duration::from_millis(1)));
        wal.append(b"one").unwrap();
        wal.close().unwrap();
    });
}

/// Model: `truncate_back` racing an appender under `SyncPolicy::Always`, whose group-commit
/// flush may be in flight when the cut starts. The cut waits for that flush and holds the
/// leader's turn, so `durable_lsn` never exceeds the new end; the appender's record either
/// preceded the cut (and was discarded: its `append` still returns, its flush target clamped
/// to the new end rather than flushed for forever) or follows it at LSN 2; and the log a power
/// cut leaves is exactly what the WAL showed.
#[test]
fn truncate_back_racing_a_group_commit_appender_never_overstates_durability() {
    // Both outcomes must be explored (std atomics: bookkeeping outside the model).
    static BEFORE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static AFTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Always));
        assert_eq!(wal.append(&record(b'a', 40)).unwrap(), 1);
        assert_eq!(wal.append(&record(b'b', 40)).unwrap(), 2);
        let appender = {
            let wal = Arc::clone(&wal);
            spawn(move || wal.append(&record(b'c', 40)).unwrap())
        };
        wal.truncate_back(2).unwrap();
        assert!(wal.durable_lsn() <= wal.last_lsn(), "durable past the cut");
        let got = appender.join().unwrap();
        let last = wal.last_lsn();
        assert!(wal.durable_lsn() <= last);
        let tags: Vec<u8> = wal.iter_from(1).map(|r| tag_of(&r)).collect();
        if got == 2 {
            // Appended after the cut: it is the log's LSN 2, and durable (its append returned).
            assert_eq!(tags, [b'a', b'c']);
            assert_eq!(wal.durable_lsn(), 2);
            AFTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            // Appended before the cut, then discarded.
            assert_eq!(got, 3);
            assert_eq!(tags, [b'a']);
            BEFORE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let wal = Arc::try_unwrap(wal).unwrap();
        let durable = wal.durable_lsn();
        drop(wal);
        let crashed = sim.crash(&CrashChoice::none());
        let wal = open(&crashed, SyncPolicy::Manual);
        let after: Vec<u8> = wal.iter_from(1).map(|r| tag_of(&r)).collect();
        assert_eq!(after, tags, "a power cut changed the log");
        assert!(wal.last_lsn() >= durable);
        wal.close().unwrap();
    });
    let (before, after) = (
        BEFORE.load(std::sync::atomic::Ordering::Relaxed),
        AFTER.load(std::sync::atomic::Ordering::Relaxed),
    );
    // Under wine `model` skips (see its docs), so nothing was explored.
    if std::env::var_os("VAULT_UNDER_WINE").is_none() {
        assert!(before > 0 && after > 0, "explored {before} / {after}");
    }
}

/// Tail-following: a follower waits at the end of the log while another thread
/// appends. The appender notifies only if it sees a waiter counted (no lock, no syscall
/// otherwise), so a wake-up lost between the follower's last check and its wait would leave
/// it asleep forever: loom reports that as a deadlock. (The stand-in condition variable lets
/// the first timed wait time out at once, so the follower also takes the timeout path and
/// then waits again, with no time limit in effect.) The follower gets the record, whole.
#[test]
fn a_waiting_follower_is_never_missed_by_an_append() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Manual));
        let mut follower = wal.follow(1);
        let appender = {
            let wal = Arc::clone(&wal);
            spawn(move || wal.append(&record(b'a', 40)).unwrap())
        };
        let rec = loop {
            if let Some(r) = follower.next_timeout(Duration::from_secs(3600)).unwrap() {
                break r;
            }
        };
        assert_eq!((rec.lsn(), tag_of(&rec)), (1, b'a'));
        assert_eq!(appender.join().unwrap(), 1);
    });
}

/// Close: a follower waiting at the end is woken by `close` on another thread and
/// then gets `Closed`, after the record published before it; `close` never waits for it.
#[test]
fn close_wakes_a_waiting_follower_after_its_last_record() {
    model(|| {
        let sim = SimStorage::new();
        let wal = open(&sim, SyncPolicy::Manual);
        wal.append(&record(b'a', 40)).unwrap();
        let mut follower = wal.follow(1);
        let reader = spawn(move || {
            let mut lsns = Vec::new();
            loop {
                match follower.next_timeout(Duration::from_secs(3600)) {
                    Ok(Some(r)) => lsns.push(r.lsn()),
                    Ok(None) => {}
                    Err(crate::Error::Closed) => return lsns,
                    Err(e) => panic!("{e}"),
                }
            }
        });
        wal.close().unwrap();
        assert_eq!(reader.join().unwrap(), [1]);
    });
}

/// The committer hand-off: two threads append and register `on_durable` callbacks
/// while the committer may be flushing. Each callback is called exactly once, with `Ok`, and
/// only when its record is in the durable image (a power cut then would keep it); no
/// registration is left unserved (a lost hand-off would leave its callback uncalled, which the
/// final count catches, or the committer asleep, which loom reports).
#[test]
fn every_on_durable_callback_runs_once_after_its_record_is_durable() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Manual));
        let called = Arc::new(crate::sync::AtomicU64::new(0));
        let other = {
            let (wal, sim, called) = (Arc::clone(&wal), sim.clone(), Arc::clone(&called));
            spawn(move || register_checked(&wal, b'b', &sim, &called))
        };
        register_checked(&wal, b'a', &sim, &called);
        other.join().unwrap();
        // Served before close, or by close's final answer (Ok: close syncs first).
        Arc::try_unwrap(wal).unwrap().close().unwrap();
        assert_eq!(called.load(crate::sync::Ordering::Acquire), 2);
    });
}

/// Appends a record and registers a callback that checks, when called, that the record is in
/// the durable image, then counts itself in `called`.
fn register_checked(wal: &Wal, tag: u8, sim: &SimStorage, called: &Arc<crate::sync::AtomicU64>) {
    let lsn = wal.append(&record(tag, 40)).unwrap();
    let rec = wal.read(lsn).unwrap();
    let (path, at, bytes) = (
        rec.segment().path().to_path_buf(),
        rec.offset(),
        rec.data().to_vec(),
    );
    let (sim, called) = (sim.clone(), Arc::clone(called));
    wal.on_durable(lsn, move |r| {
        let d = r.unwrap();
        assert!(d >= lsn);
        let image = sim.durable_bytes(&path).unwrap();
        assert_eq!(
            &image[at..at + bytes.len()],
            &bytes[..],
            "LSN {lsn}: callback before its record was durable"
        );
        called.fetch_add(1, crate::sync::Ordering::AcqRel);
    });
}

/// `wait_durable` with a time limit: the flush runs on the committer and the waiter
/// is woken when it is done; it returns `true` only with its record in the durable image.
#[test]
fn wait_durable_with_a_timeout_returns_once_the_committer_made_it_durable() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Manual));
        let lsn = wal.append(&record(b'a', 40)).unwrap();
        let waiter = {
            let wal = Arc::clone(&wal);
            let sim = sim.clone();
            spawn(move || {
                while !wal
                    .wait_durable(lsn, Some(Duration::from_secs(3600)))
                    .unwrap()
                {}
                assert_durable_through(&wal, &sim, lsn);
            })
        };
        wal.append(&record(b'b', 40)).unwrap();
        waiter.join().unwrap();
    });
}

/// Awaitable durability: a `Durable` future arms its waker slot while another
/// thread's `sync` may be making its record durable (so the committer's own flush finds
/// nothing to do). The future must resolve (a lost wake-up leaves `block_on` parked forever,
/// which loom reports as a deadlock), with its record in the durable image.
#[test]
fn a_durable_future_is_woken_when_another_thread_flushes_its_record() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Manual));
        let lsn = wal.append(&record(b'a', 40)).unwrap();
        let syncer = {
            let wal = Arc::clone(&wal);
            spawn(move || wal.sync().unwrap())
        };
        let durable = loom::future::block_on(wal.durable(lsn)).unwrap();
        assert!(durable >= lsn);
        assert_durable_through(&wal, &sim, lsn);
        syncer.join().unwrap();
        Arc::try_unwrap(wal).unwrap().close().unwrap();
    });
}

/// `close` races a `Durable` future (polled on another thread) for an LSN never
/// appended. Whether the future arms its slot before the committer's last pass or looks after
/// it, it resolves with `Closed`; none is left waiting.
#[test]
fn close_racing_a_durable_future_resolves_it_with_closed() {
    model(|| {
        let sim = SimStorage::new();
        let wal = open(&sim, SyncPolicy::Manual);
        let lsn = wal.append(&record(b'a', 40)).unwrap();
        let fut = wal.durable(lsn + 1);
        let waiter = spawn(move || loom::future::block_on(fut));
        wal.close().unwrap();
        assert!(matches!(waiter.join().unwrap(), Err(crate::Error::Closed)));
    });
}

/// A follower that returned records a `truncate_back` then discards must get
/// `Error::Truncated`, never go on with a record appended after the cut as if the discarded
/// ones were still the log. Here it has returned LSNs 1..=3 (next = 4) when, on another thread,
/// `truncate_back(2)` discards 2 and 3 and three appends bring the log to LSN 4 again; its one
/// `try_next` racing all that may return `Ok(None)` or `Truncated`, never the new LSN 4.
#[test]
fn a_follower_racing_a_cut_and_appends_never_continues_past_a_discarded_record() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Manual));
        for tag in [b'a', b'b', b'c'] {
            wal.append(&record(tag, 40)).unwrap();
        }
        let mut follower = wal.follow(1);
        for lsn in 1..=3 {
            assert_eq!(follower.try_next().unwrap().unwrap().lsn(), lsn);
        }
        let reader = spawn(move || {
            follower
                .try_next()
                .map(|r| r.map(|r| (r.lsn(), tag_of(&r))))
        });
        wal.truncate_back(2).unwrap();
        for tag in [b'x', b'y', b'z'] {
            wal.append(&record(tag, 40)).unwrap();
        }
        let got = reader.join().unwrap();
        assert!(
            !matches!(got, Ok(Some(_))),
            "the follower returned the discarded LSNs 2 and 3, then {got:?} after the cut"
        );
    });
}

/// A follower positioned exactly at a cut (it returned LSN 1, next = 2) races
/// `truncate_back(2)` and the appends after it. It may return the new LSN 2, or nothing yet;
/// if it returns the old record 2 (read just before the cut hid it), its next call must report
/// `Truncated`, never go on with the new LSN 3.
#[test]
fn a_follower_at_the_cut_never_mixes_a_discarded_record_with_new_ones() {
    model(|| {
        let sim = SimStorage::new();
        let wal = Arc::new(open(&sim, SyncPolicy::Manual));
        for tag in [b'a', b'b', b'c'] {
            wal.append(&record(tag, 40)).unwrap();
        }
        let mut follower = wal.follow(1);
        assert_eq!(follower.try_next().unwrap().unwrap().lsn(), 1);
        let reader = spawn(move || {
            let first = follower
                .try_next()
                .map(|r| r.map(|r| (r.lsn(), tag_of(&r))));
            (follower, first)
        });
        wal.truncate_back(2).unwrap();
        for tag in [b'x', b'y'] {
            wal.append(&record(tag, 40)).unwrap();
        }
        let (mut follower, first) = reader.join().unwrap();
        let second = follower
            .try_next()
            .map(|r| r.map(|r| (r.lsn(), tag_of(&r))));
        match first {
            Ok(Some((2, b'b'))) => assert!(
                matches!(second, Err(crate::Error::Truncated { .. })),
                "returned the discarded LSN 2, then {second:?}"
            ),
            // (`Truncated` is allowed here: a follower that cannot tell whether the cut came
            // before or after its read reports it, conservatively.)
            Ok(Some((2, b'x'))) => assert!(
                matches!(
                    second,
                    Ok(Some((3, b'y'))) | Err(crate::Error::Truncated { .. })
                ),
                "{second:?}"
            ),
            Ok(None) => assert!(
                matches!(
                    second,
                    Ok(Some((2, b'x'))) | Err(crate::Error::Truncated { .. })
                ),
                "{second:?}"
            ),
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// Write-behind (direct path): an appender hands chunks to the write-behind thread while
/// another appends too, and `close` stops that thread. No execution deadlocks (a request or
/// the stop is never missed by the thread's wait), every record is readable and, after
/// close, durable.
#[test]
fn write_behind_requests_and_close_never_hang_and_lose_nothing() {
    model(|| {
        let sim = SimStorage::new();
        let opts = options(&sim, SyncPolicy::Manual)
            .with_io(IoMode::Direct)
            .with_write_behind(true);
        let wal = Arc::new(Wal::open(DIR, opts).unwrap());
        let other = {
            let wal = Arc::clone(&wal);
            spawn(move || wal.append(&record(b'b', HALF)).unwrap())
        };
        let mine = wal.append(&record(b'a', HALF)).unwrap();
        let theirs = other.join().unwrap();
        let mut lsns = [mine, theirs];
        lsns.sort_unstable();
        assert_eq!(lsns, [1, 2]);
        let wal = Arc::try_unwrap(wal).unwrap();
        wal.sync().unwrap();
        assert_durable_through(&wal, &sim, 2);
        wal.close().unwrap();
    });
}

/// Recycling racing a rotation: `truncate_front` renames the dropped segment to its `-pre`
/// name and hands it to the worker while another writer's appends rotate into the spare the
/// worker made (perhaps from that very file). Every record survives a power cut after the
/// last sync, none of the dropped file's records shows up again, and once the WAL is dropped
/// no `-pre` file is left and nothing stays mapped.
#[test]
fn truncate_front_recycling_racing_a_rotation_loses_and_revives_nothing() {
    model(|| {
        let sim = SimStorage::new();
        let opts = options(&sim, SyncPolicy::Manual).with_recycle_segments(1);
        let wal = Arc::new(Wal::open(DIR, opts).unwrap());
        for tag in [b'a', b'b', b'c'] {
            wal.append(&record(tag, HALF)).unwrap(); // the third opens segment 2
        }
        let writer = {
            let wal = Arc::clone(&wal);
            spawn(move || {
                wal.append(&record(b'd', HALF)).unwrap();
                wal.append(&record(b'e', HALF)).unwrap(); // rotates into segment 3
                wal.sync().unwrap();
            })
        };
        assert_eq!(wal.truncate_front(3).unwrap(), 1);
        writer.join().unwrap();
        let tags: Vec<u8> = wal.iter_from(1).map(|r| tag_of(&r)).collect();
        assert_eq!(tags, b"cde");
        drop(wal);
        assert_eq!(
            sim.live_regions(),
            0,
            "a segment is still mapped after close"
        );
        assert_eq!(files(&sim), (vec![2, 3], false));

        let after = sim.crash(&CrashChoice::none());
        let wal = Wal::open(DIR, options(&after, SyncPolicy::Manual)).unwrap();
        let report = wal.recovery().clone();
        assert_eq!((report.first_lsn, report.next_lsn), (3, 6));
        let tags: Vec<u8> = wal.iter_from(1).map(|r| tag_of(&r)).collect();
        assert_eq!(tags, b"cde");
    });
}
