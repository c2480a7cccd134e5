//! Recycled segments: files `truncate_front` drops become later segments, up to a bound; with
//! the bound at 0 they are removed. Logs that recycle reopen with exactly their acknowledged
//! records, version-1 logs (every file allocated as zeros) still open and go on recycling, and
//! a crash in the middle of a recycling leaves only `-pre` files, which `open` removes.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::{assert_log, record, segment_files};
use vault_core::{inspect, Health, IoMode, Options, SyncPolicy, Wal};
use vault_segment::format::{FORMAT_VERSION, FORMAT_VERSION_ZEROED};

const SEGMENT: u64 = 16 * 1024;

fn opts(io: IoMode, recycle: Option<usize>) -> Options {
    let o = Options::default()
        .with_io(io)
        .with_segment_size(SEGMENT)
        .with_sync(SyncPolicy::Manual)
        .with_spare_segments(1);
    match recycle {
        Some(n) => o.with_recycle_segments(n),
        None => o,
    }
}

fn version(path: &Path) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

/// The identities of the segment files: inode numbers where there are some, else creation
/// times (a recycled file keeps its own).
fn inodes(dir: &Path) -> HashSet<u64> {
    segment_files(dir)
        .iter()
        .map(|p| file_id(&std::fs::metadata(p).unwrap()))
        .collect()
}

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn file_id(meta: &std::fs::Metadata) -> u64 {
    let created = meta.created().unwrap();
    let nanos = created
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    u64::try_from(nanos).unwrap()
}

fn pre_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with("-pre.log"))
        .collect()
}

/// Appends `from..=to`, syncing every 64 records and at the end.
fn append_range(wal: &Wal, from: u64, to: u64) {
    for lsn in from..=to {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
        if lsn % 64 == 0 {
            wal.sync().unwrap();
        }
    }
    wal.sync().unwrap();
}

common::both_io_paths!(dropped_segments_become_later_segments_up_to_the_bound);
fn dropped_segments_become_later_segments_up_to_the_bound(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(io, Some(2))).unwrap();
    append_range(&wal, 1, 800);
    let before = inodes(dir.path());
    let dropped = wal.truncate_front(700).unwrap();
    assert!(dropped >= 4, "several segments dropped: {dropped}");
    let s = wal.stats();
    assert!(
        s.recycle_pool <= 2,
        "the pool holds the bound, the rest are removed"
    );
    // Pooled files keep their old indexes, below the log's; a spare the worker is preparing
    // has a `-pre` name too, past the log's.
    let head = wal.read(wal.first_lsn()).unwrap().segment().index();
    let pooled = pre_files(dir.path())
        .iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            vault_segment::parse_segment_name(name).unwrap().index < head
        })
        .count();
    assert!(pooled <= 2, "{pooled} files pooled");
    let kept = inodes(dir.path());
    // Enough rotations to use every pooled file.
    append_range(&wal, 801, 1600);
    let s = wal.stats();
    assert_eq!(s.segments_recycled, 2, "{s:?}");
    assert_eq!(s.recycle_pool, 0);
    let now = inodes(dir.path());
    let reused: Vec<u64> = now
        .difference(&kept)
        .filter(|i| before.contains(i))
        .copied()
        .collect();
    // (A removed file's inode number may come back for a new file too, hence at least.)
    assert!(
        reused.len() >= 2,
        "two dropped files live on as new segments"
    );
    let recycled = segment_files(dir.path())
        .into_iter()
        .filter(|p| version(p) == FORMAT_VERSION)
        .count();
    assert_eq!(recycled, 2, "recycled segments are version 2");
    wal.close().unwrap();
    let wal = Wal::open(dir.path(), opts(io, Some(2))).unwrap();
    let report = wal.recovery().clone();
    assert!(report.torn_tail.is_none(), "{report:?}");
    assert!(report.removed_pre.is_empty());
    assert_log(&wal, wal.first_lsn(), 1600);
}

common::both_io_paths!(with_recycling_off_truncate_front_removes_the_files);
fn with_recycling_off_truncate_front_removes_the_files(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(io, Some(0))).unwrap();
    append_range(&wal, 1, 800);
    assert!(wal.truncate_front(700).unwrap() >= 4);
    assert!(pre_files(dir.path()).is_empty(), "nothing kept for reuse");
    assert_eq!(wal.stats().recycle_pool, 0);
    append_range(&wal, 801, 1600);
    assert_eq!(wal.stats().segments_recycled, 0);
    for p in segment_files(dir.path()) {
        assert_eq!(version(&p), FORMAT_VERSION_ZEROED, "{}", p.display());
    }
    wal.close().unwrap();
}

common::both_io_paths!(a_log_recycling_through_many_truncations_reopens_with_exactly_its_records);
fn a_log_recycling_through_many_truncations_reopens_with_exactly_its_records(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), opts(io, None)).unwrap();
    let mut last = 0;
    let mut recycled = 0;
    for round in 0..40u64 {
        let n = 150 + (round * 37) % 200;
        append_range(&wal, last + 1, last + n);
        last += n;
        // Keep the last ~100 records, as a checkpointing caller would.
        wal.truncate_front(last.saturating_sub(100).max(1)).unwrap();
        if round % 7 == 6 {
            recycled += wal.stats().segments_recycled;
            wal.close().unwrap();
            let w = Wal::open(dir.path(), opts(io, None)).unwrap();
            let report = w.recovery().clone();
            assert!(report.torn_tail.is_none(), "round {round}: {report:?}");
            assert_eq!(report.next_lsn, last + 1);
            wal = w;
            assert_log(&wal, wal.first_lsn(), last);
        }
    }
    recycled += wal.stats().segments_recycled;
    assert!(recycled >= 20, "the log recycled: {recycled}");
    // A writer that dies without closing: the synced records are all there.
    let first = wal.first_lsn();
    std::mem::forget(wal);
    let copy = tempfile::tempdir().unwrap();
    // The leaked writer's rotation worker goes on preparing spares, so a listed file may be
    // renamed before it is copied: a copy without it is one more state a crash can leave.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        match std::fs::copy(&p, copy.path().join(p.file_name().unwrap())) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("copy {}: {e}", p.display()),
        }
    }
    let wal = Wal::open(copy.path(), opts(io, None)).unwrap();
    let report = wal.recovery().clone();
    assert_eq!((report.first_lsn, report.next_lsn), (first, last + 1));
    assert_log(&wal, first, last);
    wal.close().unwrap();
    let i = inspect(copy.path()).unwrap();
    assert!(matches!(i.health(), Health::Clean), "{:?}", i.health());
}

common::both_io_paths!(a_version_1_log_opens_and_goes_on_recycling);
fn a_version_1_log_opens_and_goes_on_recycling(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    // Written as before recycling existed: every file allocated as zeros, version 1.
    let wal = Wal::open(dir.path(), opts(io, Some(0))).unwrap();
    append_range(&wal, 1, 500);
    wal.truncate_front(200).unwrap();
    wal.close().unwrap();
    for p in segment_files(dir.path()) {
        assert_eq!(version(&p), FORMAT_VERSION_ZEROED);
    }
    let wal = Wal::open(dir.path(), opts(io, None)).unwrap();
    let report = wal.recovery().clone();
    assert!(report.torn_tail.is_none());
    let first = wal.first_lsn();
    assert_log(&wal, first, 500);
    // Version-1 files are recycled into version-2 segments; the mixed log reads back whole.
    append_range(&wal, 501, 900);
    wal.truncate_front(800).unwrap();
    append_range(&wal, 901, 1500);
    assert!(wal.stats().segments_recycled > 0);
    wal.close().unwrap();
    let versions: HashSet<u32> = segment_files(dir.path())
        .iter()
        .map(|p| version(p))
        .collect();
    assert!(versions.contains(&FORMAT_VERSION), "{versions:?}");
    let wal = Wal::open(dir.path(), opts(io, None)).unwrap();
    assert_log(&wal, wal.first_lsn(), 1500);
}

common::both_io_paths!(a_crash_between_the_rename_and_the_new_header_opens_cleanly);
fn a_crash_between_the_rename_and_the_new_header_opens_cleanly(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(io, None)).unwrap();
    append_range(&wal, 1, 600);
    let old = segment_files(dir.path())[0].clone();
    let old_bytes = std::fs::read(&old).unwrap();
    wal.truncate_front(550).unwrap();
    wal.close().unwrap();
    // What a crash leaves at each step of a recycling, as `-pre` files of dropped segments:
    // renamed with the old header; with a torn new header; with the new header written but
    // not yet renamed to its segment name (index 90, past the log's tail).
    let name = |index: u64| vault_segment::segment_file_name(0, index, true);
    std::fs::write(dir.path().join(name(1)), &old_bytes).unwrap();
    let mut torn = old_bytes.clone();
    torn[16..24].copy_from_slice(&90u64.to_le_bytes());
    std::fs::write(dir.path().join(name(2)), &torn).unwrap();
    let mut headed = old_bytes.clone();
    headed[64..4096].fill(0);
    std::fs::write(dir.path().join(name(90)), &headed).unwrap();
    let i = inspect(dir.path()).unwrap();
    assert!(matches!(i.health(), Health::Clean), "{:?}", i.health());
    assert_eq!(i.pre_files().len(), 3);
    let wal = Wal::open(dir.path(), opts(io, None)).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.removed_pre.len(), 3, "{report:?}");
    assert!(report.torn_tail.is_none());
    assert_log(&wal, wal.first_lsn(), 600);
    // (While the WAL is open its worker may be preparing a spare under a `-pre` name.)
    wal.close().unwrap();
    assert!(pre_files(dir.path()).is_empty());
}

common::both_io_paths!(a_segment_a_reader_still_holds_is_removed_not_recycled);
fn a_segment_a_reader_still_holds_is_removed_not_recycled(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(io, Some(4))).unwrap();
    append_range(&wal, 1, 600);
    let held = wal.read(1).unwrap();
    let h = *held.segment().header();
    let dropped = wal.truncate_front(550).unwrap();
    assert!(dropped >= 3);
    // The held segment's file is gone, not pooled under its `-pre` name; others are pooled
    // (and the worker may already be making a segment of one).
    assert!(!held.segment().path().exists());
    let its_pre = vault_segment::segment_file_name(h.created_nanos, h.index, true);
    let pooled = pre_files(dir.path());
    assert!(pooled.iter().all(|p| !p.ends_with(&its_pre)), "{pooled:?}");
    assert_eq!(
        held.data(),
        &record(1)[..],
        "the reader's bytes are untouched"
    );
    drop(held);
    append_range(&wal, 601, 1200);
    let recycled = wal.stats().segments_recycled as usize;
    assert!(
        (1..dropped.min(5)).contains(&recycled),
        "{recycled} of {dropped}"
    );
    wal.close().unwrap();
}
