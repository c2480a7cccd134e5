//! Loom models of one segment's concurrency: the appender's copy-then-publish against readers,
//! and syncs racing each other and the appender. They run the real `Segment` code over the
//! in-memory [`SimStorage`]; under `cfg(test)` its atomics and lock are loom's, and
//! [`ByteWitness`](crate::sync::ByteWitness) makes the appender's copies and the readers' loads
//! visible to loom (see `sync.rs`).
//!
//! Only models belong in this crate's unit tests: under `cfg(test)` a `Segment` made outside
//! `loom::model` panics. Tests with real threads and files are in `tests/`.

use crate::storage::IoPath;
use std::path::Path;

use crate::sim::SimStorage;
use crate::sync::{model, spawn};
use crate::{partial_crc, Segment, SegmentAppender, Storage};

const DIR: &str = "/wal";

/// The bytes of record `lsn`: distinct per LSN, long enough to span several 8-byte units.
fn payload(lsn: u64) -> Vec<u8> {
    let mut v = format!("record {lsn}:").into_bytes();
    v.resize(24 + 8 * lsn as usize, lsn as u8);
    v
}

fn fresh_appender(sim: &SimStorage) -> SegmentAppender {
    let dir = Path::new(DIR);
    sim.create_dir_all(dir).unwrap();
    Segment::create(sim, dir, 1, 4096, IoPath::Mmap)
        .unwrap()
        .activate(1)
}

fn append(app: &mut SegmentAppender, lsn: u64) {
    let p = payload(lsn);
    assert_eq!(app.append(&p, partial_crc(&p)), Ok(lsn));
}

/// Reads every published record and checks it is whole: LSNs in order from 1, bytes as
/// written. Returns how many there were.
fn read_all(seg: &Segment) -> u64 {
    let mut n = 0;
    for rec in seg.records_from(1) {
        n += 1;
        assert_eq!(rec.lsn(), n, "records out of order");
        assert_eq!(rec.data(), payload(n), "LSN {n} published before its bytes");
    }
    n
}

/// Model (2), reserve/copy/publish: a reader never observes a published range whose bytes
/// are not fully written. The appender copies two records (the second with a commit marker in
/// front of it, as after a sync) and publishes after each; a reader reads everything published,
/// twice. Loom checks, through the witness, that every byte a reader reads was copied before,
/// in the happens-before sense, not just by luck of the schedule.
#[test]
fn a_reader_never_sees_a_published_frame_before_its_bytes() {
    model(|| {
        let sim = SimStorage::new();
        let mut app = fresh_appender(&sim);
        let seg = app.segment().clone();
        let reader = spawn(move || {
            let first = read_all(&seg);
            let second = read_all(&seg);
            assert!(second >= first, "a published record disappeared");
            // The LSN bound is published before the end offset, so it is never behind the
            // records a reader saw.
            assert!(seg.published_next_lsn() > second);
        });
        append(&mut app, 1);
        app.publish();
        app.append_marker(1).unwrap();
        append(&mut app, 2);
        app.publish();
        reader.join().unwrap();
        assert_eq!(read_all(app.segment()), 2);
    });
}

/// Model (2), continued: a batch is published at once. A reader sees none or all of the
/// records copied before one `publish`, never a prefix of them with a torn next frame.
#[test]
fn one_publish_makes_a_whole_batch_visible_at_once() {
    model(|| {
        let sim = SimStorage::new();
        let mut app = fresh_appender(&sim);
        let seg = app.segment().clone();
        let reader = spawn(move || {
            let n = read_all(&seg);
            assert!(n == 0 || n == 3, "saw {n} of a 3-record batch");
        });
        for lsn in 1..=3 {
            append(&mut app, lsn);
        }
        app.publish();
        reader.join().unwrap();
    });
}

/// The retirement sync (on the worker) and a group-commit flush (on the leader) may sync the
/// same segment at once, while the appender keeps writing: a `sync_to` that returns has its
/// bytes in the durable image (even when the other thread's msync is the one covering them),
/// `synced` ends at the larger end, and what either covered is durable.
#[test]
fn racing_syncs_leave_the_larger_end_synced_and_durable() {
    model(|| {
        let sim = SimStorage::new();
        let mut app = fresh_appender(&sim);
        append(&mut app, 1);
        app.publish();
        let end1 = app.offset();
        append(&mut app, 2);
        app.publish();
        let end2 = app.offset();
        let seg = app.segment().clone();
        // From here on an msync is a point where the other thread may run, as it is while
        // the kernel writes pages (SimStorage's work is otherwise invisible to loom, so a
        // whole sync would be one step with whatever loom operation preceded it). Set after
        // the single-threaded setup: loom treats a thread that yields as spinning and favours
        // the others, which would prune the interleavings explored later.
        sim.set_sync_hook(Some(loom::thread::yield_now));
        let worker = {
            let seg = seg.clone();
            spawn(move || seg.sync_to(end2).unwrap())
        };
        seg.sync_to(end1).unwrap();
        assert!(seg.synced_end() >= end1);
        // Returned Ok: record 1 is durable now, whichever thread's msync wrote it.
        let rec = seg.records_from(1).next().unwrap();
        let image = sim.durable_bytes(seg.path()).unwrap();
        assert_eq!(
            &image[rec.offset()..rec.offset() + rec.len()],
            rec.data(),
            "sync_to returned before its bytes were durable"
        );
        // The appender goes on past both ends meanwhile.
        append(&mut app, 3);
        app.publish();
        worker.join().unwrap();
        assert_eq!(seg.synced_end(), end2);
        let durable = sim.durable_bytes(seg.path()).unwrap();
        for rec in seg.records_from(1).take(2) {
            let at = rec.offset();
            assert_eq!(
                &durable[at..at + rec.len()],
                rec.data(),
                "synced, not durable"
            );
        }
    });
}

/// The record index: a reader looking a record up through the index while the
/// appender writes it never follows an entry to bytes not yet written (loom checks, through
/// the witness, that the frame it reads was copied before, in the happens-before sense: the
/// entry is a Relaxed store before the Release publish, read after an Acquire load of the
/// published end). It finds the record whole once published, or nothing before.
#[test]
fn an_index_lookup_racing_the_appender_sees_the_record_whole_or_not_at_all() {
    model(|| {
        let sim = SimStorage::new();
        let mut app = fresh_appender(&sim);
        let seg = app.segment().clone();
        assert_eq!(seg.index_stride(), 32);
        // Records 1..=32 (empty frames) published; 33 is the first one with its own entry.
        for lsn in 1..=32 {
            assert_eq!(app.append(b"", partial_crc(b"")), Ok(lsn));
        }
        app.publish();
        let reader = spawn(move || {
            let mut it = seg.records_from(33);
            match it.next() {
                Some(r) => {
                    assert_eq!((r.lsn(), r.data()), (33, &payload(33)[..]));
                    // Found through the entry: the record's own frame is the first one read.
                    assert_eq!(it.frames_read(), 1);
                }
                None => assert!(seg.records_from(1).count() >= 32),
            }
        });
        append(&mut app, 33);
        app.publish();
        reader.join().unwrap();
    });
}

/// `adopt_index` (for a file that replaces a segment with its records cut at some LSN): the
/// entries before the cut are taken over, the ones after it are not. Single-threaded; a model
/// only because segments in this crate's unit tests need loom's types.
#[test]
fn adopting_an_index_takes_the_entries_before_the_cut_only() {
    model(|| {
        let sim = SimStorage::new();
        let dir = Path::new(DIR);
        sim.create_dir_all(dir).unwrap();
        let mut a = Segment::create(&sim, dir, 1, 8192, IoPath::Mmap)
            .unwrap()
            .activate(1);
        let mut b = Segment::create(&sim, dir, 2, 8192, IoPath::Mmap)
            .unwrap()
            .activate(1);
        for lsn in 1..=100 {
            assert_eq!(a.append(b"", partial_crc(b"")), Ok(lsn));
            assert_eq!(b.append(b"", partial_crc(b"")), Ok(lsn));
        }
        a.publish();
        b.publish();
        let (a, b) = (a.segment().clone(), b.segment().clone());
        b.forget_index_from(1);
        b.adopt_index(&a, 70);
        // 65 is indexed (before the cut), 97 is not: a lookup of 99 starts at 65.
        let mut it = b.records_from(99);
        assert_eq!(it.next().unwrap().lsn(), 99);
        assert_eq!(it.frames_read(), 99 - 65 + 1);
        let mut it = b.records_from(66);
        assert_eq!(it.next().unwrap().lsn(), 66);
        assert_eq!(it.frames_read(), 2);
    });
}

/// The direct path's memory ring: a flush that gives memory back (a sync, then the ring
/// helper's release of the whole pages below the synced end, which takes no lock) races an
/// appender that fills a one-page ring and so writes out and gives memory back itself. The appender asserts (in `SegmentAppender::write`)
/// that it never stores below the released front; whatever the interleaving, the front never
/// passes the published end, every record reads back whole, and the last sync makes them all
/// durable.
#[test]
fn giving_back_ring_memory_never_covers_a_byte_the_appender_writes_or_a_reader_reads() {
    fn big(lsn: u64) -> Vec<u8> {
        vec![u8::try_from(lsn).unwrap(); 2000]
    }
    model(|| {
        let sim = SimStorage::new();
        let dir = Path::new(DIR);
        sim.create_dir_all(dir).unwrap();
        let mut app = Segment::create(&sim, dir, 1, 16384, IoPath::Direct)
            .unwrap()
            .activate(1);
        app.segment().set_ring_bytes(4096);
        let seg = app.segment().clone();
        let flusher = spawn(move || {
            for _ in 0..2 {
                seg.sync_to(seg.published_end()).unwrap();
                // What the WAL's ring helper does: give back what is durable, without the
                // sync lock.
                seg.relieve_ring(seg.published_end()).unwrap();
                let (r, p) = (seg.released_end(), seg.published_end());
                assert!(r <= p, "released {r} published {p}");
            }
        });
        for lsn in 1..=3 {
            let p = big(lsn);
            assert_eq!(app.append(&p, partial_crc(&p)), Ok(lsn));
            app.publish();
        }
        flusher.join().unwrap();
        let seg = app.segment();
        assert!(
            seg.released_end() >= 4096,
            "the full ring gave its first page back"
        );
        assert!(seg.released_end() <= seg.published_end());
        assert!(seg.ring_waits() >= 1);
        seg.sync_to(app.offset()).unwrap();
        let durable = sim.durable_bytes(seg.path()).unwrap();
        let mut n = 0;
        for rec in seg.records_from(1) {
            n += 1;
            assert_eq!(rec.data(), big(n));
            assert_eq!(&durable[rec.offset()..rec.offset() + 2000], big(n));
        }
        assert_eq!(n, 3);
    });
}
