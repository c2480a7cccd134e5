//! Loom models of the rotation worker: the real `Rotator` and worker loop, with loom's threads
//! and the channel stand-in of `sync.rs`, over the in-memory `SimStorage`. Loom explores every
//! interleaving of the writer's hand-offs, retirements and shutdown with the worker's
//! preparation (up to the preemption bound) and reports a deadlock, a leaked `Arc` or a
//! failed assertion in any of them.
//!
//! Only models belong in this crate's unit tests: under `cfg(test)` a `Rotator` made outside
//! `loom::model` panics. Tests with real threads and files are in `tests/`.

use std::path::{Path, PathBuf};

use vault_segment::sim::{FaultError, OpKind, SimStorage};
use vault_segment::{parse_segment_name, partial_crc, Storage};

use crate::sync::{model, StdArc};
use crate::{Error, RotateConfig, Rotator};

const DIR: &str = "/wal";

fn config(sim: &SimStorage) -> RotateConfig {
    sim.create_dir_all(Path::new(DIR)).unwrap();
    RotateConfig {
        dir: PathBuf::from(DIR),
        segment_size: 4096,
        first_index: 1,
        storage: StdArc::new(sim.clone()),
        io: vault_segment::IoPath::Mmap,
        ring_bytes: vault_segment::DEFAULT_RING_BYTES,
    }
}

fn start(sim: &SimStorage) -> Rotator {
    Rotator::start(config(sim)).unwrap()
}

/// The segment indexes whose files are in the directory (live view), and whether any `-pre`
/// file is there.
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

/// Model (1), the hand-off half: the writer takes prepared segments while the worker prepares
/// the next and retires the full one. Each index is handed over exactly once and in order, the
/// retirement's final sync covers the full segment's records, and after shutdown the directory
/// holds exactly the segments handed over: the spare the worker was preparing or had ready is
/// removed. Loom also checks that nothing blocks forever and no `Arc` leaks.
#[test]
fn hand_offs_give_each_index_once_and_shutdown_removes_the_spare() {
    model(|| {
        let sim = SimStorage::new();
        let rotator = start(&sim);
        let first = rotator.next_segment().unwrap();
        assert_eq!(first.index(), 1);
        let mut app = first.activate(1);
        app.append(b"one", partial_crc(b"one")).unwrap();
        app.publish();
        let second = rotator.next_segment().unwrap();
        assert_eq!(second.index(), 2);
        let full = app.segment().clone();
        rotator.retire(full.clone(), app.offset());
        let stats_before = rotator.stats();
        rotator.shutdown().unwrap();

        assert!(stats_before.prepared >= 2);
        assert_eq!(stats_before.handed_off, 2);
        // Shutdown waited for the retirement: the full segment is durable to its end.
        assert!(full.synced_end() >= app.offset());
        let durable = sim.durable_bytes(full.path()).unwrap();
        let rec = full.records_from(1).next().unwrap();
        assert_eq!(&durable[rec.offset()..rec.offset() + 3], b"one");
        assert_eq!(files(&sim), (vec![1, 2], false));
        drop(second);
    });
}

/// Model (4), shutdown during preparation: dropping the `Rotator` right after start, while
/// the worker is creating the first segment (or has it ready), stops the worker without a
/// deadlock, and leaves no file behind: no spare, no `-pre`.
#[test]
fn shutdown_during_preparation_leaves_no_file_and_no_thread() {
    model(|| {
        let sim = SimStorage::new();
        let rotator = start(&sim);
        drop(rotator);
        assert_eq!(files(&sim), (vec![], false));
    });
}

/// Model (4), continued: shutdown while the worker prepares the *next* segment, with a
/// retirement still queued. The worker finishes the retirement, removes the spare, and exits.
#[test]
fn shutdown_after_a_hand_off_keeps_only_the_segment_handed_over() {
    model(|| {
        let sim = SimStorage::new();
        let rotator = start(&sim);
        let first = rotator.next_segment().unwrap().activate(1);
        rotator.retire(first.segment().clone(), first.offset());
        rotator.shutdown().unwrap();
        assert_eq!(files(&sim), (vec![1], false));
        assert!(first.segment().synced_end() >= first.offset());
    });
}

/// A failed preparation (a full disk) reaches the writer as an error if it waited for that
/// attempt; a failure that was already waiting in the slot is stale (space may be back) and is
/// retried first. Either way no `-pre` file is left and the same index comes next.
#[test]
fn a_failed_preparation_is_reported_and_the_same_index_is_retried() {
    model(|| {
        let sim = SimStorage::new();
        sim.fail_nth(OpKind::Allocate, 1, FaultError::NoSpace);
        let rotator = start(&sim);
        let seg = match rotator.next_segment() {
            Ok(seg) => seg,
            Err(Error::Segment(_)) => rotator.next_segment().unwrap(),
            Err(other) => panic!("expected the preparation's error or a retry, got {other:?}"),
        };
        assert_eq!(seg.index(), 1);
        rotator.shutdown().unwrap();
        assert_eq!(files(&sim), (vec![1], false));
    });
}

/// Several spares in flight (two under the models) with the second preparation failing: the
/// writer still gets index 1 and then 2 (the failure, stale or fresh, is retried under the same
/// index), never 3 with 2 missing, and shutdown leaves exactly the segments handed over.
#[test]
fn with_two_spares_a_failed_preparation_keeps_the_indexes_consecutive() {
    model(|| {
        let sim = SimStorage::new();
        sim.fail_nth(OpKind::Allocate, 2, FaultError::NoSpace);
        let rotator = start(&sim);
        let take = || match rotator.next_segment() {
            Ok(seg) => seg,
            Err(Error::Segment(_)) => rotator.next_segment().unwrap(),
            Err(other) => panic!("expected the preparation's error or a retry, got {other:?}"),
        };
        let first = take();
        let second = take();
        assert_eq!((first.index(), second.index()), (1, 2));
        rotator.shutdown().unwrap();
        assert_eq!(files(&sim), (vec![1, 2], false));
    });
}

/// The recycling hand-off: the writer renames a dropped segment to its `-pre` name and hands
/// it over while the worker prepares the next spare (or has it ready, or is idle). Whichever
/// comes first, the indexes stay consecutive, a spare made from the dropped file holds none of
/// its old records, the pool bound is kept (a second reservation is refused while the file is
/// pooled), and shutdown leaves exactly the segments handed over: the pooled file is either
/// reused (and then removed with its spare) or removed, never left behind as a `-pre` file.
#[test]
fn a_recycled_file_becomes_a_spare_or_is_removed_never_left_behind() {
    model(|| {
        let sim = SimStorage::new();
        let rotator = start(&sim).with_recycling(1);
        let mut first = rotator.next_segment().unwrap().activate(1);
        first.append(b"one", partial_crc(b"one")).unwrap();
        first.publish();
        first.segment().sync_to(first.offset()).unwrap();
        let second = rotator.next_segment().unwrap();
        assert_eq!(second.index(), 2);

        // What `Wal::truncate_front` does with a dropped segment nothing else holds.
        let header = *first.segment().header();
        let path = first.segment().path().to_path_buf();
        drop(first);
        let pre = Path::new(DIR).join(vault_segment::segment_file_name(
            header.created_nanos,
            header.index,
            true,
        ));
        sim.rename(&path, &pre).unwrap();
        sim.sync_dir(Path::new(DIR)).unwrap();
        assert!(rotator.reserve_recycling());
        assert!(
            !rotator.reserve_recycling(),
            "the pool holds at most one file"
        );
        rotator.recycle(pre);

        let third = rotator.next_segment().unwrap();
        assert_eq!(third.index(), 3);
        let recycled = third.segment().is_recycled();
        // Recovery's scan of the new segment finds no frame: the old record's frame carries
        // the old salt.
        let third = third.activate(2);
        let scan = third.segment().scan();
        assert_eq!(
            (scan.stop, scan.next_lsn),
            (vault_segment::Stop::End, 2),
            "a fresh segment (recycled: {recycled}) scans empty"
        );
        let stats = rotator.stats();
        assert!(stats.pooled <= 1);
        rotator.shutdown().unwrap();
        assert_eq!(files(&sim), (vec![2, 3], false));
        drop((second, third));
    });
}

/// A retirement the writer made needless (it synced the full segment itself, as the direct
/// path's back-pressure does) does not keep the worker's handle of the segment while the worker
/// goes on preparing: once the writer holds the spare the worker prepared after the retirement
/// was asked for, that handle is gone. On the direct path the handle is the segment's memory,
/// and a writer that outruns preparation never lets the worker's slots fill, which is when
/// retirements take their turn.
#[test]
fn a_retirement_the_writer_made_needless_lets_go_of_the_segment_before_the_next_spare() {
    model(|| {
        let sim = SimStorage::new();
        let rotator = Rotator::start_with_spares(config(&sim), 1).unwrap();
        let mut first = rotator.next_segment().unwrap().activate(1);
        first.append(b"one", partial_crc(b"one")).unwrap();
        first.publish();
        let full = first.segment().clone();
        let end = first.offset();
        drop(first);
        full.sync_to(end).unwrap();
        rotator.retire(full.clone(), end);
        let second = rotator.next_segment().unwrap();
        // Prepared after the worker received the retirement (one channel, in order).
        let third = rotator.next_segment().unwrap();
        assert_eq!((second.index(), third.index()), (2, 3));
        assert!(
            full.is_sole_handle(),
            "the worker still holds a segment the writer already made durable"
        );
        rotator.shutdown().unwrap();
        drop((second, third));
    });
}
