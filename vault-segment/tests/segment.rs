//! One segment: append, publish, read back, and the scan that recovery builds on.

mod common;

use vault_segment::Access;
use vault_segment::IoPath;

use proptest::prelude::*;
use vault_segment::{
    partial_crc, Activation, CorruptionKind, Error, FsStorage, Segment, Stop, DATA_OFFSET,
};

fn fresh(dir: &std::path::Path, cap: u64, io: IoPath) -> vault_segment::SegmentAppender {
    Segment::create(&FsStorage, dir, 1, cap, io)
        .unwrap()
        .activate(1)
}

fn reopen(path: &std::path::Path) -> Segment {
    Segment::open(&FsStorage, path, 1, Access::Read).unwrap()
}

common::both_io_paths!(created_segment_is_allocated_for_real_and_named_without_pre);
fn created_segment_is_allocated_for_real_and_named_without_pre(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let p = Segment::create(&FsStorage, dir.path(), 7, 100_000, io).unwrap();
    let path = p.segment().path().to_path_buf();
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("gs-vault-") && name.ends_with("-00000000000000000007.log"));
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 102_400, "capacity rounds up to whole pages");
    // Allocated blocks are only visible through Unix metadata; Windows writes the zeros.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert!(
            meta.blocks() * 512 >= meta.len(),
            "blocks allocated, not sparse"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no -pre file left"
    );
}

common::both_io_paths!(appended_records_are_invisible_until_published_then_read_back);
fn appended_records_are_invisible_until_published_then_read_back(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = fresh(dir.path(), 64 * 1024, io);
    a.append(b"one", partial_crc(b"one")).unwrap();
    assert_eq!(a.segment().records_from(1).count(), 0, "unpublished");
    a.publish();
    a.append(b"two", partial_crc(b"two")).unwrap();
    a.publish();
    let got: Vec<(u64, Vec<u8>)> = a
        .segment()
        .records_from(1)
        .map(|r| (r.lsn(), r.to_vec()))
        .collect();
    assert_eq!(got, vec![(1, b"one".to_vec()), (2, b"two".to_vec())]);
}

common::both_io_paths!(a_full_segment_refuses_frames_without_writing);
fn a_full_segment_refuses_frames_without_writing(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = fresh(dir.path(), 4096, io);
    let big = vec![1u8; 4096];
    assert!(a.append(&big, partial_crc(&big)).is_err());
    assert_eq!(a.offset(), DATA_OFFSET);
}

#[test]
fn scan_of_a_bad_magic_file_is_corruption_at_offset_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    std::fs::write(&path, vec![0xAB; 8192]).unwrap();
    match Segment::open(&FsStorage, &path, 1, Access::Read) {
        Err(Error::Corruption {
            offset: 0,
            reason: CorruptionKind::BadMagic,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    std::fs::write(&path, b"short").unwrap();
    assert!(matches!(
        Segment::open(&FsStorage, &path, 1, Access::Read),
        Err(Error::Corruption {
            reason: CorruptionKind::ShortFile { .. },
            ..
        })
    ));
}

common::both_io_paths!(a_length_past_the_end_stops_the_scan_without_panicking);
fn a_length_past_the_end_stops_the_scan_without_panicking(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = fresh(dir.path(), 8192, io);
    a.append(b"ok", partial_crc(b"ok")).unwrap();
    a.publish();
    a.segment().sync_to(a.offset()).unwrap();
    let path = a.segment().path().to_path_buf();
    let off = a.offset() as u64;
    drop(a);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for len in [u32::MAX, 8192, 1 << 20] {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&len.to_le_bytes());
        h[4] = 1;
        f.write_all_at(&h, off).unwrap();
        let scan = reopen(&path).scan();
        assert_eq!(scan.records, 1);
        assert_eq!(scan.end as u64, off);
        assert!(matches!(
            scan.stop,
            Stop::Invalid(CorruptionKind::LengthPastEnd { .. })
        ));
    }
}

common::both_io_paths!(records_from_another_segment_never_validate);
fn records_from_another_segment_never_validate(io: IoPath) {
    // Same bytes at the same offsets, different salt: nothing parses.
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let mut a = fresh(d1.path(), 8192, io);
    for i in 0..10u8 {
        a.append(&[i; 40], partial_crc(&[i; 40])).unwrap();
    }
    a.publish();
    let b = fresh(d2.path(), 8192, io);
    // Both written to their files, `b`'s activation included (the direct path keeps unsynced
    // bytes in memory).
    a.segment().sync_to(a.offset()).unwrap();
    b.segment().sync_to(b.offset()).unwrap();
    let (pa, pb) = (
        a.segment().path().to_path_buf(),
        b.segment().path().to_path_buf(),
    );
    let end = a.offset();
    drop((a, b));
    let bytes = std::fs::read(&pa).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&pb).unwrap();
    f.write_all_at(&bytes[DATA_OFFSET..end], DATA_OFFSET as u64)
        .unwrap();
    let scan = reopen(&pb).scan();
    assert_eq!(scan.activation, Activation::Valid(1));
    assert_eq!(scan.records, 0);
    assert_eq!(scan.stop, Stop::Invalid(CorruptionKind::ChecksumMismatch));
}

/// Whatever is written reads back; any flipped byte inside a frame stops the scan at or
/// before that frame, never past it and never with a panic.
fn frames_round_trip_and_any_flip_is_caught(
    io: IoPath,
    records: &[Vec<u8>],
    flip_at: prop::sample::Index,
    bit: u8,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut a = fresh(dir.path(), 64 * 1024, io);
    let mut starts = Vec::new();
    for r in records {
        starts.push(a.offset());
        a.append(r, partial_crc(r)).unwrap();
    }
    a.publish();
    let end = a.offset();
    a.segment().sync_to(end).unwrap();
    let path = a.segment().path().to_path_buf();
    drop(a);

    let scan = reopen(&path).scan();
    prop_assert_eq!(scan.records, records.len() as u64);
    prop_assert_eq!(scan.end, end);
    let seg = reopen(&path);
    let _ = seg.scan();
    let back: Vec<Vec<u8>> = seg.records_from(1).map(|r| r.to_vec()).collect();
    prop_assert_eq!(back.as_slice(), records);

    let at = DATA_OFFSET + flip_at.index(end - DATA_OFFSET);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at as u64).unwrap();
    f.write_all_at(&[b[0] ^ (1 << bit)], at as u64).unwrap();
    let frame = starts.iter().rposition(|&s| s <= at).unwrap();
    let scan = reopen(&path).scan();
    // Padding bytes are not covered by the checksum; a flip there may go unnoticed, but a
    // flip in a header or payload always stops the scan at that frame.
    let payload_end = starts[frame] + 16 + records[frame].len();
    if at < payload_end {
        prop_assert_eq!(
            scan.records,
            frame as u64,
            "flip at {} in frame {}",
            at,
            frame
        );
        prop_assert!(matches!(scan.stop, Stop::Invalid(_)));
    }
    Ok(())
}

// Run on each path as `frames_round_trip_and_any_flip_is_caught::{mmap, direct}`, the shape
// `both_io_paths!` gives the other tests.
mod frames_round_trip_and_any_flip_is_caught {
    use super::*;

    fn records() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..40)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn mmap(records in records(), flip_at in any::<prop::sample::Index>(), bit in 0u8..8) {
            super::frames_round_trip_and_any_flip_is_caught(IoPath::Mmap, &records, flip_at, bit)?;
        }

        #[test]
        fn direct(records in records(), flip_at in any::<prop::sample::Index>(), bit in 0u8..8) {
            if common::direct_io_in(&std::env::temp_dir(), "frames_round_trip_and_any_flip_is_caught") {
                super::frames_round_trip_and_any_flip_is_caught(
                    IoPath::Direct,
                    &records,
                    flip_at,
                    bit,
                )?;
            }
        }
    }
}

common::both_io_paths!(a_replacement_keeps_the_frames_before_the_cut_and_old_readers_stop_there);
fn a_replacement_keeps_the_frames_before_the_cut_and_old_readers_stop_there(io: IoPath) {
    let dir = tempfile::tempdir().unwrap();
    let mut app = fresh(dir.path(), 8192, io);
    for i in 1..=10u8 {
        let rec = vec![i; 50 + usize::from(i)];
        app.append(&rec, partial_crc(&rec)).unwrap();
        if i == 4 {
            // A commit marker before the cut is kept with the records.
            app.append_marker(3).unwrap();
        }
    }
    app.publish();
    let old = app.segment().clone();
    let mut early = old.records_from(1);
    assert_eq!(early.next().unwrap().lsn(), 1);
    let held = old.records_from(8).next().unwrap();

    let rep = old.prepare_cut(&FsStorage, dir.path(), 7, io).unwrap();
    assert_eq!(rep.next_lsn(), 7);
    // Not installed yet: a -pre file beside the untouched segment.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    let mut new_app = rep.install(&FsStorage).unwrap();
    old.discard_from(7);
    // Counted by segment name: Windows keeps the replaced file, which `old` still maps, under
    // another name until its last mapping goes.
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            vault_segment::parse_segment_name(&name.to_string_lossy()).is_some()
        })
        .count();
    assert_eq!(segments, 1, "-pre renamed");
    assert_eq!(old.discarded_from(), 7);
    // The old handle: readers stop at the cut; a record read before keeps its bytes.
    let rest: Vec<u64> = early.map(|r| r.lsn()).collect();
    assert_eq!(rest, [2, 3, 4, 5, 6]);
    assert_eq!(held.data(), &[8u8; 58][..]);
    // The new file continues at 7; on disk it is the old prefix plus what comes after.
    assert_eq!(new_app.next_lsn(), 7);
    let rec = b"seven again";
    assert_eq!(new_app.append(rec, partial_crc(rec)).unwrap(), 7);
    new_app.publish();
    new_app.segment().sync_to(new_app.offset()).unwrap();
    let path = new_app.segment().path().to_path_buf();
    assert_eq!(path, old.path());
    drop(new_app);
    let seg = reopen(&path);
    let scan = seg.scan();
    assert_eq!(scan.activation, Activation::Valid(1));
    assert_eq!((scan.next_lsn, scan.stop, scan.attested), (8, Stop::End, 3));
    let got: Vec<Vec<u8>> = seg.records_from(1).map(|r| r.data().to_vec()).collect();
    assert_eq!(got.len(), 7);
    for (i, data) in got.iter().take(6).enumerate() {
        let n = i as u8 + 1;
        assert_eq!(data, &vec![n; 50 + usize::from(n)]);
    }
    assert_eq!(got[6], rec);
    assert_eq!(seg.header().salt, old.header().salt, "same salt");

    // An empty replacement activated elsewhere; LSNs outside the segment are refused.
    assert!(seg.prepare_cut(&FsStorage, dir.path(), 9, io).is_err());
    let empty = old.prepare_empty(&FsStorage, dir.path(), 500, io).unwrap();
    let app = empty.install(&FsStorage).unwrap();
    assert_eq!((app.next_lsn(), app.segment().first_lsn()), (500, 500));
    assert!(app.segment().records_from(1).next().is_none());
}

common::both_io_paths!(append_and_checksum_frames_validate_around_chunk_boundaries);
/// `append_and_checksum` copies and checksums long payloads chunk by chunk: around the chunk
/// boundaries and for long payloads, every frame it writes passes the scan's checksum check
/// (computed over the whole payload at once) and reads back byte for byte.
fn append_and_checksum_frames_validate_around_chunk_boundaries(io: IoPath) {
    let lens = [
        0usize, 1, 7, 8, 503, 504, 505, 511, 512, 513, 1015, 1016, 1017, 1023, 1024, 1025, 4095,
        4096, 4097, 65_535, 65_536, 65_539, 200_001,
    ];
    let records: Vec<Vec<u8>> = lens
        .iter()
        .map(|&len| {
            (0..len)
                .map(|i| (i.wrapping_mul(31) ^ (i >> 9) ^ len) as u8)
                .collect()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut a = fresh(dir.path(), 1 << 20, io);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(a.append_and_checksum(r).unwrap(), i as u64 + 1);
    }
    a.publish();
    let end = a.offset();
    a.segment().sync_to(end).unwrap();
    let path = a.segment().path().to_path_buf();
    drop(a);

    let scan = reopen(&path).scan();
    assert_eq!(scan.stop, Stop::End);
    assert_eq!(scan.records, records.len() as u64);
    assert_eq!(scan.end, end);
    let seg = reopen(&path);
    let _ = seg.scan();
    let back: Vec<Vec<u8>> = seg.records_from(1).map(|r| r.to_vec()).collect();
    assert_eq!(back, records);
}

use vault_segment::testing::FileAt;
