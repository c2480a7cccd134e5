//! Recycled segments (format version 2): a dropped file re-headed with a new index and salt,
//! whose old frames stay as stale bytes. Its stale frames never validate, a synced chain ends
//! at a zero terminator, and cutting it back zeroes frame headers, not the rest of the file.

mod common;

use std::path::{Path, PathBuf};

use vault_segment::format::{FORMAT_VERSION, FORMAT_VERSION_ZEROED};
use vault_segment::{
    frame_len, parse_segment_name, partial_crc, segment_file_name, Access, Activation,
    CorruptionKind, FsStorage, IoPath, Segment, SegmentAppender, Stop, DATA_OFFSET,
};

const CAP: u64 = 64 * 1024;

fn payload(lsn: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (lsn * 7 + i as u64) as u8).collect()
}

fn append(a: &mut SegmentAppender, lsn: u64, len: usize) {
    let p = payload(lsn, len);
    assert_eq!(a.append(&p, partial_crc(&p)).unwrap(), lsn);
}

/// Segment 1 with `records` records of 100 bytes from LSN 1, synced and closed; then renamed
/// to its `-pre` name, as `truncate_front` drops a file for recycling. Returns the `-pre` path
/// and the file's bytes.
fn dropped_file(dir: &Path, records: u64, io: IoPath) -> (PathBuf, Vec<u8>) {
    let mut a = Segment::create(&FsStorage, dir, 1, CAP, io)
        .unwrap()
        .activate(1);
    for lsn in 1..=records {
        append(&mut a, lsn, 100);
    }
    a.publish();
    a.segment().sync_to(a.offset()).unwrap();
    let h = *a.segment().header();
    assert_eq!(h.version, FORMAT_VERSION_ZEROED, "a new file is version 1");
    let path = a.segment().path().to_path_buf();
    drop(a);
    let pre = dir.join(segment_file_name(h.created_nanos, h.index, true));
    std::fs::rename(&path, &pre).unwrap();
    let bytes = std::fs::read(&pre).unwrap();
    (pre, bytes)
}

fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one file: {files:?}");
    files[0].clone()
}

common::both_io_paths!(
    a_recycled_file_gets_a_new_index_and_salt_and_its_stale_frames_never_validate
);
fn a_recycled_file_gets_a_new_index_and_salt_and_its_stale_frames_never_validate(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let (pre, old) = dropped_file(dir.path(), 300, io);
    let prepared = Segment::recycle(&FsStorage, dir.path(), &pre, 2, CAP, io).unwrap();
    let path = prepared.segment().path().to_path_buf();
    let name = parse_segment_name(path.file_name().unwrap().to_str().unwrap()).unwrap();
    assert_eq!((name.index, name.pre), (2, false));
    assert_eq!(
        only_file(dir.path()),
        path,
        "the -pre file became the segment"
    );
    assert_eq!(prepared.segment().header().version, FORMAT_VERSION);
    drop(prepared);
    let now = std::fs::read(&path).unwrap();
    assert_eq!(now.len(), old.len(), "no allocation: the same file");
    assert!(
        now[64..4096].iter().all(|&b| b == 0),
        "activation block and first frames zeroed"
    );
    assert_eq!(now[4096..], old[4096..], "no zero-fill: stale frames stay");
    let seg = Segment::open(&FsStorage, &path, 2, Access::Read).unwrap();
    let scan = seg.scan();
    assert_eq!(scan.activation, Activation::Missing);
    let beyond = seg.scan_beyond(DATA_OFFSET);
    assert_eq!(
        (beyond.attested, beyond.dirty_end),
        (0, DATA_OFFSET),
        "nothing past the chain is this use's"
    );
}

/// Activates the recycled segment at LSN 1 (the LSNs its stale frames carry too, at the same
/// offsets: only the salt tells them apart) and writes `records` records of 100 bytes.
fn recycled_with_records(dir: &Path, records: u64, io: IoPath) -> (PathBuf, SegmentAppender) {
    let (pre, _) = dropped_file(dir, 300, io);
    let mut a = Segment::recycle(&FsStorage, dir, &pre, 2, CAP, io)
        .unwrap()
        .activate(1);
    for lsn in 1..=records {
        append(&mut a, lsn, 100);
    }
    a.publish();
    a.segment().sync_to(a.offset()).unwrap();
    (a.segment().path().to_path_buf(), a)
}

common::both_io_paths!(a_synced_chain_in_a_recycled_segment_ends_cleanly_at_its_terminator);
fn a_synced_chain_in_a_recycled_segment_ends_cleanly_at_its_terminator(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    // 37 records end inside a page, with stale frames after them in the file.
    let (path, a) = recycled_with_records(dir.path(), 37, io);
    let end = a.offset();
    drop(a);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes[end..end + 16].iter().all(|&b| b == 0), "terminator");
    assert!(
        bytes[end + 16..end + 4096].iter().any(|&b| b != 0),
        "stale bytes follow"
    );
    let seg = Segment::open(&FsStorage, &path, 2, Access::Read).unwrap();
    let scan = seg.scan();
    assert_eq!((scan.records, scan.end, scan.stop), (37, end, Stop::End));
    let beyond = seg.scan_beyond(end);
    assert_eq!((beyond.attested, beyond.dirty_end), (0, end), "clean");
    let got: Vec<Vec<u8>> = seg.records_from(1).map(|r| r.to_vec()).collect();
    assert_eq!(got.len(), 37);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, r)| *r == payload(i as u64 + 1, 100)));
}

common::both_io_paths!(a_frame_ending_at_a_block_boundary_syncs_its_terminator_too);
fn a_frame_ending_at_a_block_boundary_syncs_its_terminator_too(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let (pre, _) = dropped_file(dir.path(), 300, io);
    let mut a = Segment::recycle(&FsStorage, dir.path(), &pre, 2, CAP, io)
        .unwrap()
        .activate(1);
    // One record whose frame ends exactly at 4096.
    let len = 4096 - DATA_OFFSET - 16;
    assert_eq!(DATA_OFFSET + frame_len(len), 4096);
    append(&mut a, 1, len);
    a.publish();
    a.segment().sync_to(a.offset()).unwrap();
    let path = a.segment().path().to_path_buf();
    drop(a);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes[4096..4112].iter().all(|&b| b == 0), "terminator");
    let seg = Segment::open(&FsStorage, &path, 2, Access::Read).unwrap();
    assert_eq!(seg.scan().records, 1);
    assert_eq!(seg.scan_beyond(4096).dirty_end, 4096);
}

/// Reopens `path` for writing on `io` after a recovery scan and resumes at the chain's end,
/// as `Wal::open` does; returns the file's bytes once the resume is synced.
fn recover(path: &Path, io: IoPath) -> (Vec<u8>, usize, usize) {
    let seg = Segment::open(&FsStorage, path, 2, Access::Read).unwrap();
    let scan = seg.scan();
    let beyond = seg.scan_beyond(scan.end);
    let w = seg.reopen(&FsStorage, Access::Write(io)).unwrap();
    drop(seg);
    let a = w
        .resume(1, scan.end, scan.next_lsn, beyond.dirty_end)
        .unwrap();
    a.segment().sync_all().unwrap();
    drop((a, w));
    (std::fs::read(path).unwrap(), scan.end, beyond.dirty_end)
}

common::both_io_paths!(
    a_torn_frame_in_a_recycled_segment_is_cut_by_zeroing_its_header_not_the_file
);
fn a_torn_frame_in_a_recycled_segment_is_cut_by_zeroing_its_header_not_the_file(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let (path, a) = recycled_with_records(dir.path(), 40, io);
    let last = a.offset() - frame_len(100);
    drop(a);
    // The last frame's header is torn: its checksum bytes are lost.
    common::patch(&path, (last + 8) as u64, &[0xEE; 4]);
    let before = std::fs::read(&path).unwrap();
    {
        let seg = Segment::open(&FsStorage, &path, 2, Access::Read).unwrap();
        let scan = seg.scan();
        assert_eq!(
            (scan.records, scan.end, scan.stop),
            (39, last, Stop::Invalid(CorruptionKind::ChecksumMismatch))
        );
        assert_eq!(
            seg.scan_beyond(last).dirty_end,
            last + 16,
            "the torn header is all that is dropped: the stale bytes after it are not this use's"
        );
    }
    let (after, end, _) = recover(&path, io);
    assert!(
        after[end..end + 16].iter().all(|&b| b == 0),
        "header zeroed"
    );
    // The direct path writes whole blocks from memory, which holds zeros past the chain.
    let untouched = (end + 16).next_multiple_of(4096);
    assert_eq!(
        after[untouched..],
        before[untouched..],
        "the rest is left alone"
    );
    let seg = Segment::open(&FsStorage, &path, 2, Access::Read).unwrap();
    assert_eq!(seg.scan().records, 39);
    assert_eq!(seg.scan_beyond(end).dirty_end, end, "clean after the cut");
}

common::both_io_paths!(frames_past_a_zero_header_are_found_and_only_their_headers_are_zeroed);
fn frames_past_a_zero_header_are_found_and_only_their_headers_are_zeroed(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let (path, a) = recycled_with_records(dir.path(), 60, io);
    let end_of_all = a.offset();
    drop(a);
    // Record 41's header never reached the disk (a page written back out of order): the
    // chain ends there at a zero header, but records 42..=60 of this use follow it.
    let at41 = DATA_OFFSET + 40 * frame_len(100);
    common::patch(&path, at41 as u64, &[0; 16]);
    let before = std::fs::read(&path).unwrap();
    {
        let seg = Segment::open(&FsStorage, &path, 2, Access::Read).unwrap();
        let scan = seg.scan();
        assert_eq!((scan.records, scan.end, scan.stop), (40, at41, Stop::End));
        assert_eq!(
            seg.scan_beyond(at41).dirty_end,
            end_of_all,
            "records 42..=60 validate under the salt: they are this use's, to drop"
        );
    }
    let (after, end, dirty) = recover(&path, io);
    assert_eq!((end, dirty), (at41, end_of_all));
    for k in 40..60 {
        let h = DATA_OFFSET + k * frame_len(100);
        assert!(
            after[h..h + 16].iter().all(|&b| b == 0),
            "header {k} zeroed"
        );
    }
    let untouched = (end_of_all + 16).next_multiple_of(4096);
    assert_eq!(
        after[untouched..],
        before[untouched..],
        "stale bytes left alone"
    );
    let seg = Segment::open(&FsStorage, &path, 2, Access::Read).unwrap();
    assert_eq!(seg.scan().records, 40);
    assert_eq!(
        seg.scan_beyond(at41).dirty_end,
        at41,
        "nothing left to find"
    );
}

common::both_io_paths!(a_frame_whose_lsn_tag_is_wrong_ends_the_chain_as_a_bad_header);
fn a_frame_whose_lsn_tag_is_wrong_ends_the_chain_as_a_bad_header(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let (path, a) = recycled_with_records(dir.path(), 10, io);
    drop(a);
    let at5 = DATA_OFFSET + 4 * frame_len(100);
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        bytes[at5 + 12..at5 + 16],
        5u32.to_le_bytes(),
        "tag of LSN 5"
    );
    bytes[at5 + 12] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let seg = Segment::open(&FsStorage, &path, 2, Access::Read).unwrap();
    let scan = seg.scan();
    assert_eq!(
        (scan.records, scan.stop),
        (4, Stop::Invalid(CorruptionKind::BadFrameHeader))
    );
}

common::both_io_paths!(a_file_of_another_size_is_not_recycled_and_is_removed);
fn a_file_of_another_size_is_not_recycled_and_is_removed(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let (pre, _) = dropped_file(dir.path(), 3, io);
    assert!(Segment::recycle(&FsStorage, dir.path(), &pre, 2, 2 * CAP, io).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
