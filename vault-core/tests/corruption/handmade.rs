//! Logs written byte by byte: an overflowing first LSN, and stale frames after a recycled tail.

use super::*;

/// A one-segment log written byte by byte: header, an activation stating `first`, and records
/// sealed with the LSNs that follow (so every checksum is valid).
fn handmade_log(dir: &Path, first: u64, records: &[&[u8]]) -> PathBuf {
    let salt = 0x0BAD_5EED_0000_0001;
    let mut v = vec![0u8; 4096];
    let h = SegmentHeader {
        version: 1,
        index: 1,
        salt,
        capacity: 4096,
        created_nanos: 1_700_000_000_000_000_000,
    };
    v[0..64].copy_from_slice(&h.encode());
    v[64..76].copy_from_slice(&encode_activation(first, salt));
    let mut off = 128;
    for (i, data) in records.iter().enumerate() {
        let lsn = first.wrapping_add(i as u64);
        v[off..off + 4].copy_from_slice(&(data.len() as u32).to_le_bytes());
        v[off + 4] = 1;
        let crc = seal_crc(partial_crc(data), salt, lsn);
        v[off + 8..off + 12].copy_from_slice(&crc.to_le_bytes());
        v[off + 16..off + 16 + data.len()].copy_from_slice(data);
        off += (16 + data.len() + 7) & !7;
    }
    let path = dir.join(segment_file_name(h.created_nanos, 1, false));
    std::fs::write(&path, v).unwrap();
    path
}

common::both_io_paths!(a_first_lsn_whose_records_would_overflow_is_corruption_not_a_panic);
fn a_first_lsn_whose_records_would_overflow_is_corruption_not_a_panic(io: IoMode) {
    // Found by fuzzing (segment_scan): an activation block with a valid checksum stating a
    // first LSN near 2^64 made the scan's LSN arithmetic overflow (a panic in debug builds,
    // a wrapped next LSN in release).
    for first in [u64::MAX, u64::MAX - 1, 1 << 63] {
        let dir = tempfile::tempdir().unwrap();
        let file = handmade_log(dir.path(), first, &[b"one", b"two"]);
        let ins = inspect(dir.path()).unwrap();
        match ins.health() {
            Health::Corrupt(Error::Corruption {
                file: f,
                offset: 64,
                reason: CorruptionKind::BadActivation,
            }) => assert_eq!(f, &file),
            other => panic!("first LSN {first}: inspect says {other:?}"),
        }
        match Wal::open(dir.path(), opts(io)) {
            Err(Error::Corruption {
                offset: 64,
                reason: CorruptionKind::BadActivation,
                ..
            }) => {}
            other => panic!("first LSN {first}: expected BadActivation, got {other:?}"),
        }
    }
    // The largest first LSN the format accepts still works.
    let dir = tempfile::tempdir().unwrap();
    let first = (1 << 63) - 1;
    handmade_log(dir.path(), first, &[b"one", b"two"]);
    let wal = Wal::open(dir.path(), opts(io)).unwrap();
    let report = wal.recovery().clone();
    assert_eq!((report.first_lsn, report.next_lsn), (first, first + 2));
    assert_eq!(wal.read(first + 1).unwrap().data(), b"two");
}

/// A log whose tail segment is recycled (version 2), with the stale frames of the file's
/// earlier use after its chain, as a writer that died left it: records 1..=1000 acknowledged
/// (synced every 20 from 901 on), 1001..=1010 appended after the last sync (in the file on the
/// mmap path only). Returns the files, the tail's name and the offsets of its frames' headers
/// with their LSNs, and where its chain ends.
struct Recycled {
    files: Files,
    tail: String,
    frames: Vec<(u64, usize)>,
    end: usize,
    next_lsn: u64,
}

fn recycled_template(base: &Path, io: IoMode) -> Recycled {
    let dir = tempfile::tempdir_in(base).unwrap();
    let o = opts(io).with_spare_segments(1).with_recycle_segments(4);
    let wal = Wal::open(dir.path(), o).unwrap();
    for lsn in 1..=600 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.sync().unwrap();
    assert!(wal.truncate_front(550).unwrap() >= 4);
    for lsn in 601..=1010 {
        wal.append(&record(lsn)).unwrap();
        if lsn == 700 || lsn == 800 || (lsn > 900 && lsn <= 1000 && lsn % 20 == 0) {
            wal.sync().unwrap();
        }
    }
    assert!(wal.stats().segments_recycled >= 3);
    let tail_path = wal.read(1000).unwrap().segment().path().to_path_buf();
    // The rotation worker goes on after the writer stops: it prepares the one spare, taking a
    // pooled file and renaming it in. Wait until it has (it then stays idle), so the snapshot
    // below lists no file the worker is renaming.
    let next = parse_segment_name(&file_name(&tail_path)).unwrap().index + 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !segment_names(dir.path())
        .iter()
        .any(|n| parse_segment_name(n).is_some_and(|s| !s.pre && s.index == next))
    {
        assert!(
            Instant::now() < deadline,
            "the spare segment {next} was not installed within 60 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // Dies without closing: no final sync, no final marker. (The leaked writer keeps its
    // lock; the cases open copies.)
    std::mem::forget(wal);
    let files: Files = read_files(dir.path())
        .into_iter()
        .filter(|(n, _)| !n.ends_with("-pre.log"))
        .collect();
    let tail = file_name(&tail_path);
    let bytes = &files[&tail];
    assert_eq!(u32_at(bytes, 8), 2, "the tail is a recycled segment");
    let index = parse_segment_name(&tail).unwrap().index;
    let copy = tempfile::tempdir_in(base).unwrap();
    std::fs::write(copy.path().join(&tail), bytes).unwrap();
    let seg = vault_segment::Segment::open(
        &vault_segment::FsStorage,
        &copy.path().join(&tail),
        index,
        vault_segment::Access::Read,
    )
    .unwrap();
    let scan = seg.scan();
    assert_eq!(scan.stop, vault_segment::Stop::End);
    let frames: Vec<(u64, usize)> = seg
        .records_from(0)
        .map(|r| (r.lsn(), r.offset() - 16))
        .collect();
    let end = scan.end;
    assert!(bytes[end..end + 16].iter().all(|&b| b == 0), "terminator");
    assert!(
        bytes[end + 16..].iter().any(|&b| b != 0),
        "stale bytes of the earlier use follow the chain"
    );
    Recycled {
        files,
        tail,
        frames,
        end,
        next_lsn: scan.next_lsn,
    }
}

/// Opens a copy of `files` (and inspects it first, which must agree); returns the outcome and
/// the tail's bytes after the open.
fn open_copy(base: &Path, files: &Files, tail: &str, io: IoMode) -> (Result<Wal, Error>, Vec<u8>) {
    let dir = tempfile::tempdir_in(base).unwrap().keep();
    write_files(&dir, files);
    let seen = inspect(&dir).unwrap();
    let opened = Wal::open(&dir, opts(io));
    match (&opened, seen.health()) {
        (Ok(w), Health::Clean) => assert!(w.recovery().torn_tail.is_none(), "{w:?}"),
        (Ok(w), Health::TornTail(t)) => assert_eq!(w.recovery().torn_tail.as_ref(), Some(t)),
        (Err(e), Health::Corrupt(c)) => assert_eq!(e.to_string(), c.to_string()),
        (o, h) => panic!("open and inspect disagree: {o:?} vs {h:?}"),
    }
    let after = std::fs::read(dir.join(tail)).unwrap();
    (opened, after)
}

common::both_io_paths!(stale_frames_after_a_recycled_tail_are_told_from_torn_and_damaged_ones);
fn stale_frames_after_a_recycled_tail_are_told_from_torn_and_damaged_ones(io: IoMode) {
    let base_dir = tempfile::tempdir_in(scratch_base(io)).unwrap();
    let base = base_dir.path();
    let t = recycled_template(base, io);
    let tail = &t.tail;
    let bytes = &t.files[tail];
    let (&(last_lsn, last_at), _) = t.frames.split_last().unwrap();
    let expected_next = if io == IoMode::Mmap { 1011 } else { 1001 };
    assert_eq!(t.next_lsn, expected_next);
    // Bytes a cut may write: whole blocks on the direct path (its memory holds zeros past
    // the chain), single frame headers on the mmap path.
    let untouched = |from: usize| (from + 16).next_multiple_of(4096);

    // Clean: the chain ends at its terminator; the stale frames after it are not a torn tail.
    let (opened, after) = open_copy(base, &t.files, tail, io);
    let wal = opened.unwrap();
    let report = wal.recovery().clone();
    assert!(report.torn_tail.is_none(), "clean: {report:?}");
    assert_eq!(report.next_lsn, expected_next);
    common::assert_log(&wal, wal.first_lsn(), expected_next - 1);
    drop(wal);
    assert_eq!(
        after[t.end + 16..],
        bytes[t.end + 16..],
        "stale bytes left alone"
    );

    // A stale frame header where the terminator was: a chain that ends at a non-zero header
    // that does not validate is torn; nothing attests past it, so only those 16 bytes go.
    let mut files = t.files.clone();
    let stale_at = (t.end + 16..bytes.len() - 16)
        .step_by(8)
        .find(|&o| matches!(bytes[o + 4], 1 | 2) && bytes[o + 5..o + 8] == [0, 0, 0])
        .expect("a stale frame header after the chain");
    let stale: Vec<u8> = bytes[stale_at..stale_at + 16].to_vec();
    patch(&mut files, tail, t.end, &stale);
    let (opened, after) = open_copy(base, &files, tail, io);
    let wal = opened.unwrap();
    let report = wal.recovery().clone();
    let torn = report.torn_tail.clone().expect("torn");
    assert_eq!((torn.offset, torn.bytes_dropped), (t.end as u64, 16));
    assert_eq!(report.next_lsn, expected_next, "no record lost");
    drop(wal);
    assert!(after[t.end..t.end + 16].iter().all(|&b| b == 0));
    assert_eq!(after[untouched(t.end)..], bytes[untouched(t.end)..]);

    // The last frame torn (its checksum bytes lost): nothing on disk attests it, so the log
    // is cut before it, by zeroing its header.
    let mut files = t.files.clone();
    patch(&mut files, tail, last_at + 8, &[0xEE; 4]);
    let (opened, after) = open_copy(base, &files, tail, io);
    let wal = opened.unwrap();
    let report = wal.recovery().clone();
    let torn = report.torn_tail.clone().expect("torn");
    assert_eq!(torn.offset, last_at as u64);
    assert_eq!(report.next_lsn, last_lsn);
    common::assert_log(&wal, wal.first_lsn(), last_lsn - 1);
    drop(wal);
    assert!(after[last_at..last_at + 16].iter().all(|&b| b == 0));
    assert_eq!(after[untouched(t.end)..], bytes[untouched(t.end)..]);

    // Damage in the middle of the tail's chain, before records a later commit marker
    // attests: acknowledged records are lost, so `open` refuses, naming file and offset.
    let (lsn, at) = t.frames[0];
    assert!(lsn <= 980, "the marker attesting 980 follows record {lsn}");
    let mut files = t.files.clone();
    patch(&mut files, tail, at + 20, &[0x5A; 3]);
    let (opened, after) = open_copy(base, &files, tail, io);
    match opened {
        Err(Error::Corruption {
            file,
            offset,
            reason: CorruptionKind::AcknowledgedRecordLost { lsn: lost, .. },
        }) => {
            assert_eq!(file_name(&file), *tail);
            assert_eq!((offset, lost), (at as u64, lsn));
        }
        other => panic!("expected corruption at {tail}:{at}, got {other:?}"),
    }
    let mut damaged = bytes.clone();
    damaged[at + 20..at + 23].fill(0x5A);
    assert_eq!(after, damaged, "a refused open changes nothing");
}
