//! The sparse record index: a lookup by LSN finds the same record as a scan from the start of
//! the segment, and reads at most one stride of frames to get there.

mod common;

use vault_segment::Access;
use vault_segment::IoPath;
use vault_segment::{partial_crc, FsStorage, Segment, SegmentAppender};

fn payload(lsn: u64) -> Vec<u8> {
    // Lengths vary (0..300 bytes) so frame offsets are irregular.
    let len = (lsn.wrapping_mul(2_654_435_761) % 300) as usize;
    let mut v = vec![(lsn % 251) as u8; len];
    if len >= 8 {
        v[..8].copy_from_slice(&lsn.to_le_bytes());
    }
    v
}

/// Appends until the segment is full, with a commit marker every 7 records and a publish every
/// 3; returns the LSN after the last record.
fn fill(a: &mut SegmentAppender) -> u64 {
    let mut lsn = a.next_lsn();
    loop {
        if lsn.is_multiple_of(7) && a.append_marker(lsn - 1).is_err() {
            break;
        }
        let p = payload(lsn);
        if a.append(&p, partial_crc(&p)).is_err() {
            break;
        }
        if lsn.is_multiple_of(3) {
            a.publish();
        }
        lsn += 1;
    }
    a.publish();
    lsn
}

/// Checks every LSN of `seg` (first..next) through the index against the scan from the start,
/// and that the index bounds the frames read.
fn check_every_lsn(seg: &Segment, first: u64, next: u64) {
    let stride = seg.index_stride();
    for lsn in first..next {
        let mut indexed = seg.records_from(lsn);
        let rec = indexed.next().expect("published record");
        assert_eq!(rec.lsn(), lsn);
        assert_eq!(rec.data(), payload(lsn), "LSN {lsn}");
        let scanned = seg.records_from_start(lsn).next().unwrap();
        assert_eq!((scanned.lsn(), scanned.offset()), (lsn, rec.offset()));
        // At most stride − 1 records before it, plus the markers among them (one in 7).
        let bound = stride + stride / 6 + 1;
        assert!(
            indexed.frames_read() <= bound,
            "LSN {lsn}: {} frames read, stride {stride}",
            indexed.frames_read()
        );
    }
    assert!(seg.records_from(next).next().is_none());
}

common::both_io_paths!(index_lookups_match_a_scan_from_the_start_and_read_at_most_a_stride);
fn index_lookups_match_a_scan_from_the_start_and_read_at_most_a_stride(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Segment::create(&FsStorage, dir.path(), 1, 1 << 20, io)
        .unwrap()
        .activate(100);
    let next = fill(&mut a);
    let seg = a.segment().clone();
    assert!(next - 100 > 5000, "{} records", next - 100);
    assert_eq!(seg.index_stride(), 32);
    check_every_lsn(&seg, 100, next);
    // The scan from the start reads all the frames before the last record.
    let mut slow = seg.records_from_start(next - 1);
    slow.next().unwrap();
    assert!(slow.frames_read() > next - 100 - 1);
}

common::both_io_paths!(the_recovery_scan_rebuilds_the_index);
fn the_recovery_scan_rebuilds_the_index(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Segment::create(&FsStorage, dir.path(), 1, 256 * 1024, io)
        .unwrap()
        .activate(1);
    let next = fill(&mut a);
    a.segment().sync_to(a.offset()).unwrap();
    let path = a.segment().path().to_path_buf();
    drop(a);
    let seg = Segment::open(&FsStorage, &path, 1, Access::Read).unwrap();
    let scan = seg.scan();
    assert_eq!(scan.next_lsn, next);
    check_every_lsn(&seg, 1, next);
}

common::both_io_paths!(resuming_after_recovery_keeps_indexing_new_records);
fn resuming_after_recovery_keeps_indexing_new_records(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Segment::create(&FsStorage, dir.path(), 1, 512 * 1024, io)
        .unwrap()
        .activate(1);
    for lsn in 1..1000 {
        let p = payload(lsn);
        a.append(&p, partial_crc(&p)).unwrap();
    }
    a.publish();
    a.segment().sync_to(a.offset()).unwrap();
    let path = a.segment().path().to_path_buf();
    drop(a);
    let seg = Segment::open(&FsStorage, &path, 1, Access::Write(io)).unwrap();
    let scan = seg.scan();
    let mut a = seg.resume(1, scan.end, scan.next_lsn, scan.end).unwrap();
    let next = fill(&mut a);
    check_every_lsn(&seg, 1, next);
}

// The index's geometry does not depend on the I/O path, and a 256 MiB segment on the direct
// path would be zero-filled on the disk: this one runs on the mmap path only.
#[test]
fn a_large_segment_uses_a_coarser_stride_with_bounded_memory() {
    let io = IoPath::Mmap;
    let dir = tempfile::tempdir().unwrap();
    let small = Segment::create(&FsStorage, dir.path(), 1, 4096, io).unwrap();
    assert_eq!(small.segment().index_stride(), 32);
    let big = Segment::create(&FsStorage, dir.path(), 2, 256 << 20, io).unwrap();
    assert!(big.segment().index_bytes() <= 512 * 1024);
    assert_eq!(big.segment().index_stride(), 256);
    // An enlarged segment (one big record, then small ones) is indexed like any other.
    let mut a = big.activate(1);
    let huge = vec![9u8; 3 << 20];
    a.append(&huge, partial_crc(&huge)).unwrap();
    for lsn in 2..3000 {
        let p = payload(lsn);
        a.append(&p, partial_crc(&p)).unwrap();
    }
    a.publish();
    let seg = a.segment().clone();
    for lsn in [2, 255, 256, 257, 1000, 2999] {
        let mut it = seg.records_from(lsn);
        let r = it.next().unwrap();
        assert_eq!((r.lsn(), r.data()), (lsn, &payload(lsn)[..]));
        assert!(it.frames_read() <= 256);
    }
}

common::both_io_paths!(forgetting_the_index_past_a_cut_falls_back_to_an_earlier_entry);
fn forgetting_the_index_past_a_cut_falls_back_to_an_earlier_entry(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Segment::create(&FsStorage, dir.path(), 1, 256 * 1024, io)
        .unwrap()
        .activate(1);
    for lsn in 1..200 {
        let p = payload(lsn);
        a.append(&p, partial_crc(&p)).unwrap();
    }
    a.publish();
    a.forget_index_from(70);
    let seg = a.segment().clone();
    // Entries for 1, 33 and 65 stay; 97 and later are gone, so 150 is found from 65.
    let mut it = seg.records_from(150);
    assert_eq!(it.next().unwrap().lsn(), 150);
    assert_eq!(it.frames_read(), 150 - 65 + 1);
}
