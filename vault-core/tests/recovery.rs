//! Recovery: torn tails are cut, damage before attested records is a typed error, the lock.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{assert_log, record, small, FileAt};
use vault_core::{inspect, CorruptionKind, Error, IoMode, SyncPolicy, Wal};

fn payload_offset(dir: &Path, lsn: u64) -> (std::path::PathBuf, u64) {
    let ins = inspect(dir).unwrap();
    let r = ins.records_from(lsn).next().unwrap();
    assert_eq!(r.lsn(), lsn);
    (r.segment().path().to_path_buf(), r.offset() as u64)
}

fn dir_digest(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

common::both_io_paths!(damage_inside_attested_records_is_corruption_naming_file_and_offset);
fn damage_inside_attested_records_is_corruption_naming_file_and_offset(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(4096, SyncPolicy::Manual, io);
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    for lsn in 1..=300 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.close().unwrap(); // syncs and writes a marker attesting all 300
    let (file, off) = payload_offset(dir.path(), 150);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], off).unwrap();
    drop(f);
    let before = dir_digest(dir.path());

    match Wal::open(dir.path(), opts) {
        Err(Error::Corruption {
            file: bad,
            offset,
            reason,
        }) => {
            assert_eq!(bad, file);
            assert_eq!(offset, off - 16);
            assert!(
                matches!(
                    reason,
                    CorruptionKind::AcknowledgedRecordLost { lsn: 150, .. }
                ),
                "{reason:?}"
            );
            let msg = Error::Corruption {
                file: bad,
                offset,
                reason,
            }
            .to_string();
            assert!(
                msg.contains(&offset.to_string()) && msg.contains("gs-vault-"),
                "{msg}"
            );
        }
        other => panic!("expected Corruption, got {other:?}"),
    }
    assert_eq!(
        dir_digest(dir.path()),
        before,
        "a refused open modifies nothing"
    );
}

common::both_io_paths!(a_damaged_segment_header_is_corruption);
fn a_damaged_segment_header_is_corruption(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(4096, SyncPolicy::Manual, io);
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    for lsn in 1..=100 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.close().unwrap();
    let files = common::segment_files(dir.path());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[1])
        .unwrap();
    f.write_all_at(b"NOTVAULT", 0).unwrap();
    match Wal::open(dir.path(), opts) {
        Err(Error::Corruption {
            file,
            offset: 0,
            reason: CorruptionKind::BadMagic,
        }) => assert_eq!(file, files[1]),
        other => panic!("expected Corruption(BadMagic), got {other:?}"),
    }
}

common::both_io_paths!(a_missing_middle_segment_is_corruption);
fn a_missing_middle_segment_is_corruption(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(4096, SyncPolicy::Manual, io);
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    for lsn in 1..=200 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.close().unwrap();
    let files = common::segment_files(dir.path());
    assert!(files.len() >= 4);
    std::fs::remove_file(&files[2]).unwrap();
    match Wal::open(dir.path(), opts) {
        Err(Error::Corruption {
            reason: CorruptionKind::MissingSegment { index: 3 },
            file,
            ..
        }) => assert_eq!(file, files[3]),
        other => panic!("expected MissingSegment, got {other:?}"),
    }
}

common::both_io_paths!(a_second_open_of_the_same_directory_is_locked);
fn a_second_open_of_the_same_directory_is_locked(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(8192, SyncPolicy::Manual, io);
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    match Wal::open(dir.path(), opts.clone()) {
        Err(Error::Locked { dir: d }) => assert_eq!(d, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    wal.close().unwrap();
    let _wal = Wal::open(dir.path(), opts).expect("the lock is released by close");
}

common::both_io_paths!(zeroed_activation_of_an_unsynced_new_segment_is_a_torn_tail);
fn zeroed_activation_of_an_unsynced_new_segment_is_a_torn_tail(io: IoMode) {
    // A rotation whose new segment never got synced: its first-LSN block is lost, the records
    // before it are whole. Recovery ends the log at the old segment.
    let dir = tempfile::tempdir().unwrap();
    let opts = small(4096, SyncPolicy::Manual, io);
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    for lsn in 1..=40 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.sync().unwrap();
    wal.close().unwrap();
    let files = common::segment_files(dir.path());
    let last = files.last().unwrap();
    let first_of_last = inspect(dir.path())
        .unwrap()
        .segments()
        .last()
        .unwrap()
        .first_lsn;
    // Forget the last segment's activation and the commit marker close wrote there.
    let len = std::fs::metadata(last).unwrap().len();
    overwrite(last, 64, &vec![0u8; len as usize - 64]);
    let wal = Wal::open(dir.path(), opts).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.next_lsn, first_of_last);
    assert_log(&wal, 1, first_of_last - 1);
}

/// Writes `bytes` at `offset` of `file`, as damage on the disk would.
fn overwrite(file: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

fn closed_log_of_300(dir: &Path, io: IoMode) -> vault_core::Options {
    let opts = small(4096, SyncPolicy::Manual, io);
    let wal = Wal::open(dir, opts.clone()).unwrap();
    for lsn in 1..=300 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.close().unwrap();
    opts
}

common::both_io_paths!(damage_to_attested_records_of_a_closed_log_is_corruption_at_that_record);
/// `close` writes a marker attesting every record, so damage to any of them, the last one
/// included, is provably damage to a durable record: `open` refuses with the record's frame.
fn damage_to_attested_records_of_a_closed_log_is_corruption_at_that_record(io: IoMode) {
    // (what, the damaged record, where from its payload, the bytes written there)
    let cases: [(&str, u64, i64, &[u8]); 2] = [
        (
            "bytes of the last record's payload",
            300,
            0,
            &[0xFF, 0x00, 0xFF],
        ),
        ("a zeroed frame header", 299, -16, &[0u8; 16]),
    ];
    for (what, lsn, from_payload, bytes) in cases {
        let dir = tempfile::tempdir().unwrap();
        let opts = closed_log_of_300(dir.path(), io);
        let (file, off) = payload_offset(dir.path(), lsn);
        overwrite(&file, off.checked_add_signed(from_payload).unwrap(), bytes);
        match Wal::open(dir.path(), opts) {
            Err(Error::Corruption {
                file: bad,
                offset,
                reason: CorruptionKind::AcknowledgedRecordLost { lsn: lost, .. },
            }) => assert_eq!((bad, offset, lost), (file, off - 16, lsn), "{what}"),
            other => panic!("{what}: expected Corruption at record {lsn}, got {other:?}"),
        }
    }
}

common::both_io_paths!(a_truncated_segment_is_corruption_not_a_silent_cut);
fn a_truncated_segment_is_corruption_not_a_silent_cut(io: IoMode) {
    // Truncating the last segment inside record 299 also removes close()'s marker, the only
    // evidence that records 299 and 300 were acknowledged. The file's length is evidence too:
    // a segment is allocated in full before it is named, so a short one was cut by something.
    let dir = tempfile::tempdir().unwrap();
    let opts = closed_log_of_300(dir.path(), io);
    let (file, off) = payload_offset(dir.path(), 299);
    assert_eq!(
        payload_offset(dir.path(), 300).0,
        file,
        "299 and 300 share the last segment"
    );
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(off + 100).unwrap();
    drop(f);
    let before = dir_digest(dir.path());
    match Wal::open(dir.path(), opts) {
        Err(Error::Corruption {
            file: bad,
            offset,
            reason:
                CorruptionKind::Truncated {
                    len,
                    capacity: 4096,
                },
        }) => assert_eq!((bad, offset, len), (file, off + 100, off + 100)),
        other => panic!("expected Corruption(Truncated), got {other:?}"),
    }
    assert_eq!(
        dir_digest(dir.path()),
        before,
        "a refused open modifies nothing"
    );
}

/// Rewrites the header of `file` with another salt and a valid checksum: the file's bytes as
/// they would be after another use of it under a new header.
fn resalt(file: &Path) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut h = [0u8; 64];
    f.read_exact_at(&mut h, 0).unwrap();
    let u64_at = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().unwrap());
    let header = vault_segment::format::SegmentHeader {
        version: 1,
        index: u64_at(16),
        salt: u64_at(24) ^ 0x0101_0000,
        capacity: u64_at(32),
        created_nanos: u64_at(40),
    };
    f.write_all_at(&header.encode(), 0).unwrap();
}

common::both_io_paths!(an_activation_block_that_is_neither_zero_nor_valid_is_corruption);
fn an_activation_block_that_is_neither_zero_nor_valid_is_corruption(io: IoMode) {
    // In the last segment of a closed log: under another salt neither the first-LSN block nor
    // close()'s marker validate, so nothing on disk attests the segment's records. Reading the
    // block as "never activated" would drop those acknowledged records as a torn tail.
    let dir = tempfile::tempdir().unwrap();
    let opts = closed_log_of_300(dir.path(), io);
    let files = common::segment_files(dir.path());
    let last = files.last().unwrap();
    resalt(last);
    let before = dir_digest(dir.path());
    match Wal::open(dir.path(), opts.clone()) {
        Err(Error::Corruption {
            file,
            offset: 64,
            reason: CorruptionKind::BadActivation,
        }) => assert_eq!(&file, last),
        other => panic!("expected Corruption(BadActivation) in the last segment, got {other:?}"),
    }
    assert_eq!(
        dir_digest(dir.path()),
        before,
        "a refused open modifies nothing"
    );
}

common::both_io_paths!(a_lost_activation_before_attested_records_names_that_segment);
fn a_lost_activation_before_attested_records_names_that_segment(io: IoMode) {
    // A zeroed first-LSN block in a middle segment of a closed log: later markers attest its
    // records, so this is corruption, and the error must point at the block that is gone,
    // not at the end of the segment before it.
    let dir = tempfile::tempdir().unwrap();
    let opts = closed_log_of_300(dir.path(), io);
    let files = common::segment_files(dir.path());
    let victim = &files[4];
    let first = inspect(dir.path()).unwrap().segments()[4].first_lsn;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap();
    f.write_all_at(&[0u8; 12], 64).unwrap();
    drop(f);
    match Wal::open(dir.path(), opts) {
        Err(Error::Corruption {
            file,
            offset: 64,
            reason: CorruptionKind::AcknowledgedRecordLost { lsn, .. },
        }) => assert_eq!((&file, lsn), (victim, first)),
        other => panic!("expected Corruption at the lost activation, got {other:?}"),
    }
}

/// The real file system, except that the second `remove` fails: the state a crash leaves
/// after `open` removed one file of several.
#[derive(Debug, Default)]
struct SecondRemoveFails {
    removes: AtomicUsize,
}

impl vault_core::Storage for SecondRemoveFails {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        vault_core::FsStorage.create_dir_all(dir)
    }
    fn lock_dir(&self, dir: &Path) -> std::io::Result<vault_segment::DirLock> {
        vault_core::FsStorage.lock_dir(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
        vault_core::FsStorage.list(dir)
    }
    fn create_allocated(
        &self,
        path: &Path,
        len: u64,
        io: vault_segment::IoPath,
    ) -> std::io::Result<()> {
        vault_core::FsStorage.create_allocated(path, len, io)
    }
    fn map(
        &self,
        path: &Path,
        access: vault_segment::Access,
    ) -> std::io::Result<Box<dyn vault_segment::Region>> {
        vault_core::FsStorage.map(path, access)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        vault_core::FsStorage.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        if self.removes.fetch_add(1, Ordering::SeqCst) == 1 {
            return Err(std::io::Error::other("injected: the process dies here"));
        }
        vault_core::FsStorage.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        vault_core::FsStorage.sync_dir(dir)
    }
    fn file_system(&self, dir: &Path) -> std::io::Result<vault_segment::FileSystem> {
        vault_core::FsStorage.file_system(dir)
    }
}

common::both_io_paths!(a_crash_while_open_removes_segments_past_the_tail_leaves_a_recoverable_log);
fn a_crash_while_open_removes_segments_past_the_tail_leaves_a_recoverable_log(io: IoMode) {
    // Three segments past a torn tail: segment 12's first-LSN block never reached the disk,
    // and nothing attests records past it (close()'s marker is gone too). Recovery removes
    // 12, 13 and 14; if it dies after removing one of them, what is left must still open.
    let dir = tempfile::tempdir().unwrap();
    let opts = closed_log_of_300(dir.path(), io);
    let ins = inspect(dir.path()).unwrap();
    let segs = ins.segments();
    assert_eq!(segs.len(), 14, "the log this test was written for");
    let cut_at = segs[11].first_lsn;
    let last = &segs[13];
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&segs[11].path)
        .unwrap();
    f.write_all_at(&[0u8; 12], 64).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&last.path)
        .unwrap();
    f.write_all_at(&[0u8; 32], last.bytes_used - 32).unwrap();
    drop(f);

    let failing = opts
        .clone()
        .with_storage(Arc::new(SecondRemoveFails::default()));
    assert!(
        matches!(Wal::open(dir.path(), failing), Err(Error::Io { .. })),
        "the injected failure stops open"
    );
    let wal =
        Wal::open(dir.path(), opts).expect("a directory left by a crash inside recovery opens");
    let report = wal.recovery().clone();
    assert_eq!(report.next_lsn, cut_at);
    assert_log(&wal, 1, cut_at - 1);
}

common::both_io_paths!(close_releases_the_lock_even_while_other_threads_start_processes);
fn close_releases_the_lock_even_while_other_threads_start_processes(io: IoMode) {
    // A process started by another thread holds copies of every descriptor (the lock's too)
    // until it calls exec. If dropping the lock only closes the descriptor, such a copy keeps
    // the directory locked for a moment after close, and a reopen fails with Locked.
    let dir = tempfile::tempdir().unwrap();
    let opts = small(8192, SyncPolicy::Manual, io);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ = std::process::Command::new("true").status();
            }
        })
    };
    let mut locked = 0;
    for _ in 0..300 {
        match Wal::open(dir.path(), opts.clone()) {
            Ok(wal) => wal.close().unwrap(),
            Err(Error::Locked { .. }) => locked += 1,
            Err(e) => panic!("{e}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    spawner.join().unwrap();
    assert_eq!(
        locked, 0,
        "reopens after close found the directory still locked"
    );
}

common::both_io_paths!(a_torn_first_lsn_block_of_a_segment_without_frames_is_a_torn_tail);
fn a_torn_first_lsn_block_of_a_segment_without_frames_is_a_torn_tail(io: IoMode) {
    // Found by the kill -9 test: a writer killed in the middle of the 12-byte copy that
    // activates a new segment leaves the first LSN without its checksum. No frame can follow
    // (they are written after it), so this is a torn tail, not damage.
    let dir = tempfile::tempdir().unwrap();
    let opts = closed_log_of_300(dir.path(), io);
    let last = inspect(dir.path()).unwrap().segments().pop().unwrap();
    let spare = vault_segment::Segment::create(
        &vault_core::FsStorage,
        dir.path(),
        last.index + 1,
        4096,
        common::io_path(io),
    )
    .unwrap();
    let path = spare.segment().path().to_path_buf();
    drop(spare);
    overwrite(&path, 64, &301u64.to_le_bytes());
    let wal = Wal::open(dir.path(), opts).expect("a torn activation is not corruption");
    let report = wal.recovery().clone();
    assert_eq!(report.next_lsn, 301);
    assert_eq!(report.removed_segments, vec![path]);
    assert_log(&wal, 1, 300);
}
