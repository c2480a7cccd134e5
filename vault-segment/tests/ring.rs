//! The direct path's memory ring (Linux): a segment being written holds about its ring in
//! process memory however much is written to it, its readers read the same bytes before and
//! after memory is given back, and what was given back is in the file.
#![cfg(target_os = "linux")]

mod common;

use vault_segment::{partial_crc, FsStorage, IoPath, Record, Segment, SegmentAppender};

/// Segment size of these tests: large against the ring.
const SEGMENT: u64 = 16 << 20;
/// The ring these tests set: small against the segment.
const RING: usize = 256 << 10;

fn payload(i: u64) -> Vec<u8> {
    let len = 200 + (i as usize * 131) % 1800;
    (0..len)
        .map(|k| (i.wrapping_mul(131).wrapping_add(k as u64 * 17) % 251) as u8)
        .collect()
}

/// A direct-path appender on a fresh 16 MiB segment with a 256 KiB ring, or `None` (with the
/// reason printed) where the temporary directory takes no direct I/O.
fn fresh(dir: &std::path::Path, test: &str) -> Option<SegmentAppender> {
    if !common::direct_io_in(dir, test) {
        return None;
    }
    let a = Segment::create(&FsStorage, dir, 1, SEGMENT, IoPath::Direct)
        .unwrap()
        .activate(1);
    a.segment().set_ring_bytes(RING);
    Some(a)
}

/// Bytes resident in `[start, start + len)` of this process (`mincore`): a ring region's
/// memory, plus any page of its file a reader brought into the page cache (these tests
/// measure before they read back).
fn resident_bytes(start: usize, len: usize) -> usize {
    let page = 4096;
    let first = start - start % page;
    let len = (start + len).div_ceil(page) * page - first;
    let mut vec = vec![0u8; len / page];
    // SAFETY: `[first, first + len)` lies inside the segment's region, which the caller's
    // appender keeps mapped; `vec` has one byte per page of it.
    let rc = unsafe { libc::mincore(first as *mut libc::c_void, len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    vec.iter().filter(|&&b| b & 1 != 0).count() * page
}

/// The address of the segment's first byte, from a record read from it.
fn base_of(r: &Record) -> usize {
    r.data().as_ptr() as usize - r.offset()
}

/// Appends records `from..to`, syncing every `sync_every` (never if 0).
fn append(a: &mut SegmentAppender, from: u64, to: u64, sync_every: u64) {
    for i in from..to {
        let p = payload(i);
        assert_eq!(a.append(&p, partial_crc(&p)).unwrap(), i);
        a.publish();
        if sync_every != 0 && i % sync_every == 0 {
            a.segment().sync_to(a.offset()).unwrap();
            // What the WAL's ring helper does as appends go.
            a.segment().relieve_ring(a.offset()).unwrap();
        }
    }
}

/// The segment file at `path` as recovery reads it: mapped read-only and scanned.
fn scanned(path: &std::path::Path) -> Segment {
    let seg = Segment::open(&FsStorage, path, 1, vault_segment::Access::Read).unwrap();
    let _ = seg.scan();
    seg
}

fn assert_records(seg: &Segment, to: u64) {
    let mut n = 1;
    for r in seg.records_from(1) {
        assert_eq!(r.lsn(), n);
        assert_eq!(r.data(), &payload(n)[..], "record {n} differs");
        n += 1;
    }
    assert_eq!(n, to, "records read back");
}

#[test]
fn syncs_give_back_the_memory_under_durable_bytes_and_readers_read_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut a) = fresh(dir.path(), "syncs_give_back_memory") else {
        return;
    };
    append(&mut a, 1, 2, 1);
    // Held across every release below: its bytes are given back and mapped from the file.
    let first = a.segment().records_from(1).next().unwrap();
    let base = base_of(&first);
    // About 12 MiB, synced every 32 records (~35 KiB).
    append(&mut a, 2, 12_000, 32);
    assert!(a.offset() > 10 << 20, "{}", a.offset());
    let held = resident_bytes(base, SEGMENT as usize);
    assert!(
        held <= 2 * RING,
        "{held} bytes of memory held by a segment written to {}, ring {RING}",
        a.offset()
    );
    assert_eq!(
        a.segment().ring_waits(),
        0,
        "the syncs kept the ring moving"
    );
    assert_eq!(first.data(), &payload(1)[..]);
    assert_records(a.segment(), 12_000);
    // The file holds every record once the last ones are synced too.
    a.segment().sync_to(a.offset()).unwrap();
    let on_disk = scanned(a.segment().path());
    assert_records(&on_disk, 12_000);
}

#[test]
fn an_appender_that_fills_the_ring_unsynced_writes_out_and_gives_back_memory_itself() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut a) = fresh(dir.path(), "an_appender_that_fills_the_ring") else {
        return;
    };
    append(&mut a, 1, 2, 0);
    // Read before any memory is given back: a read of the file mapped in its place would
    // bring pages (and their read-ahead) into the page cache, which `resident_bytes` counts.
    let base = base_of(&a.segment().records_from(1).next().unwrap());
    append(&mut a, 2, 8_000, 0);
    let waits = a.segment().ring_waits();
    // ~8 MiB through a 256 KiB ring: a wait each time the appender has filled what the last
    // one gave back, between a whole ring (everything written out was given back) and half
    // of it (memory goes back in quarters of the ring, so up to one quarter stays).
    let (bytes, ring) = (a.offset() as u64, RING as u64);
    assert!(
        waits >= bytes / ring && waits <= bytes / (ring / 2),
        "{waits} ring waits for {bytes} bytes"
    );
    let held = resident_bytes(base, SEGMENT as usize);
    assert!(held <= 2 * RING, "{held} bytes held, ring {RING}");
    assert_records(a.segment(), 8_000);
    // Nothing was synced: the sync makes the written-out blocks durable with the rest.
    assert!(a.segment().written_end() > a.segment().synced_end());
    a.segment().sync_to(a.offset()).unwrap();
    let on_disk = scanned(a.segment().path());
    assert_records(&on_disk, 8_000);
}

#[test]
fn a_batch_larger_than_the_ring_is_taken_whole() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut a) = fresh(dir.path(), "a_batch_larger_than_the_ring") else {
        return;
    };
    // One record of 1 MiB (four rings), and 600 KiB of small ones published at once.
    let big: Vec<u8> = (0..(1usize << 20)).map(|k| (k % 253) as u8).collect();
    a.append(&big, partial_crc(&big)).unwrap();
    a.publish();
    for i in 0..3000u64 {
        let p = payload(i);
        a.append(&p, partial_crc(&p)).unwrap();
    }
    a.publish();
    a.segment().sync_to(a.offset()).unwrap();
    // A small one after: it goes where the batch went past the ring.
    a.append(b"after", partial_crc(b"after")).unwrap();
    a.publish();
    a.segment().sync_to(a.offset()).unwrap();
    let on_disk = scanned(a.segment().path());
    for seg in [a.segment(), &on_disk] {
        let mut it = seg.records_from(1);
        assert_eq!(it.next().unwrap().data(), &big[..]);
        for i in 0..3000u64 {
            assert_eq!(it.next().unwrap().data(), &payload(i)[..]);
        }
        assert_eq!(it.next().unwrap().data(), b"after");
        assert!(it.next().is_none());
    }
}

#[test]
fn a_reopened_tail_keeps_its_records_when_its_ring_is_resized() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut a) = fresh(dir.path(), "a_reopened_tail_keeps_its_records") else {
        return;
    };
    // 600 KiB of records: more than the small ring below, less than the default one.
    append(&mut a, 1, 600, 0);
    a.segment().sync_to(a.offset()).unwrap();
    let path = a.segment().path().to_path_buf();
    drop(a);
    // Recovery's path: the tail becomes writable with the default ring, then takes the
    // log's own ring size.
    let tail = scanned(&path)
        .reopen(&FsStorage, vault_segment::Access::Write(IoPath::Direct))
        .unwrap();
    assert_records(&tail, 600);
    tail.set_ring_bytes(64 << 10);
    assert_records(&tail, 600);
    tail.set_ring_bytes(RING);
    assert_records(&tail, 600);
    // A write-out gives memory back and maps the ring's slots at the window's new end, past
    // records that the smaller rings had left outside their window.
    tail.set_ring_bytes(16 << 10);
    tail.write_out_to(usize::MAX).unwrap();
    assert!(tail.released_end() > 0);
    assert_records(&tail, 600);
}
