//! Records of a killed process: recovered from the page cache, and a torn tail cut cleanly.
//!
//! These tests re-run this test binary as a child that aborts mid-log. They live apart from
//! the other recovery tests because a child forked while another test holds a directory lock
//! shares that lock until it execs, which would make those tests see `Locked` now and then.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_log, record, small, FileAt};
use vault_core::{inspect, CorruptionKind, Error, IoMode, SyncPolicy, Wal};

const CHILD_ENV: &str = "VAULT_TEST_CHILD_DIR";
/// The child's I/O path: `mmap` or `direct`.
const CHILD_IO_ENV: &str = "VAULT_TEST_CHILD_IO";

/// Not a test of its own: the body of the child process that `crash_child` runs. It appends
/// 1..=100, syncs, appends 101..=110 without syncing and aborts (no destructor runs, so no
/// final sync or marker: the state a killed process leaves).
#[test]
#[ignore = "run as a child process by the torn-tail tests"]
fn child_appends_then_aborts() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let io: IoMode = std::env::var(CHILD_IO_ENV).unwrap().parse().unwrap();
    let wal = Wal::open(&dir, small(64 * 1024, SyncPolicy::Manual, io)).unwrap();
    for lsn in 1..=100 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.sync().unwrap();
    for lsn in 101..=110 {
        wal.append(&record(lsn)).unwrap();
    }
    std::process::abort();
}

/// Runs the child on `dir` with the mmap path, whose unsynced records stay in the page cache.
fn crash_child(dir: &Path) {
    crash_child_with(dir, "mmap");
}

fn crash_child_with(dir: &Path, io: &str) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_appends_then_aborts",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir)
        .env(CHILD_IO_ENV, io)
        .output()
        .unwrap()
        .status;
    assert!(!status.success(), "the child must die by abort");
}

// Inherently about the mmap path: only its unsynced records outlive the process, in the
// page cache. They are recovered whichever path reopens the log.
#[test]
fn unsynced_records_of_a_killed_mmap_writer_are_recovered_from_the_page_cache() {
    for reopen in [IoMode::Mmap, IoMode::Auto] {
        let dir = tempfile::tempdir().unwrap();
        crash_child(dir.path());
        let opts = small(64 * 1024, SyncPolicy::Manual, reopen);
        let wal = Wal::open(dir.path(), opts).unwrap();
        let report = wal.recovery().clone();
        assert_eq!(report.records, 110, "reopened with {reopen:?}");
        assert_eq!(report.torn_tail, None);
        assert_log(&wal, 1, 110);
    }
}

// Inherently about the direct path: its unsynced records live in process memory.
#[test]
fn a_killed_direct_writer_keeps_every_synced_record_and_loses_the_unsynced_ones() {
    let dir = tempfile::tempdir().unwrap();
    if !common::direct_io_in(
        dir.path(),
        "a_killed_direct_writer_keeps_every_synced_record",
    ) {
        return;
    }
    crash_child_with(dir.path(), "direct");
    // Unsynced records of the direct path live in the process's memory: the abort took them.
    let wal = Wal::open(
        dir.path(),
        small(64 * 1024, SyncPolicy::Manual, IoMode::Auto),
    )
    .unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.records, 100);
    assert_log(&wal, 1, 100);
    assert_eq!(wal.append(&record(101)).unwrap(), 101);
}

// The writer is the mmap one (its unsynced records outlive it, so there is a tail to tear);
// the recovery that cuts it runs on each path.
common::both_io_paths!(torn_tail_is_cut_to_the_last_whole_record_and_later_appends_survive_reopen);
fn torn_tail_is_cut_to_the_last_whole_record_and_later_appends_survive_reopen(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    crash_child(dir.path());
    // Tear record 105: its page reached the disk half-written.
    let (file, off) = payload_offset(dir.path(), 105);
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.write_all_at(&[0xEE; 3], off + 1).unwrap();
    drop(f);

    let opts = small(64 * 1024, SyncPolicy::Manual, io);
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    let report = wal.recovery().clone();
    let torn = report.torn_tail.expect("a torn tail is reported");
    assert_eq!(torn.file, file);
    assert_eq!(torn.offset, off - 16, "cut at record 105's frame");
    assert!(torn.bytes_dropped > 0);
    assert_eq!(report.next_lsn, 105);
    assert_log(&wal, 1, 104);
    // Appends continue at 105 and are readable after another reopen: nothing stale behind.
    for lsn in 105..=120 {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
    }
    wal.close().unwrap();
    let wal = Wal::open(dir.path(), opts).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.torn_tail, None);
    assert_log(&wal, 1, 120);
}

/// Not a test of its own: the child of the write-behind test. On the direct path with
/// write-behind, it appends 1..=100 and syncs, then appends unsynced records until 1 MiB of
/// them is published, waits until the log on disk (read with `inspect`, as a new process
/// would) holds at least 3/4 of them, prints how many it saw and aborts.
#[test]
#[ignore = "run as a child process by the write-behind test"]
fn child_with_write_behind_appends_then_aborts() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let opts = small(4 << 20, SyncPolicy::Manual, IoMode::Direct).with_write_behind(true);
    let wal = Wal::open(&dir, opts).unwrap();
    for lsn in 1..=100 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.sync().unwrap();
    let (mut lsn, mut bytes) = (100, 0);
    while bytes < 1 << 20 {
        lsn += 1;
        bytes += record(lsn).len() + 16;
        wal.append(&record(lsn)).unwrap();
    }
    let want = 100 + (lsn - 100) * 3 / 4;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = 0;
    while std::time::Instant::now() < deadline {
        seen = inspect(Path::new(&dir)).map_or(0, |i| i.records_from(1).count() as u64);
        if seen >= want {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    println!("ON-DISK {seen} OF {lsn}");
    std::process::abort();
}

#[test]
fn with_write_behind_a_killed_direct_writer_keeps_the_blocks_written_out() {
    let dir = tempfile::tempdir().unwrap();
    if !vault_core::Storage::file_system(&vault_core::FsStorage, dir.path())
        .unwrap()
        .direct_io
    {
        eprintln!("skipped: no direct I/O in the temporary directory");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_with_write_behind_appends_then_aborts",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child must die by abort");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("ON-DISK "))
        .unwrap_or_else(|| panic!("child printed no count: {text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let (seen, appended): (u64, u64) = (words[1].parse().unwrap(), words[3].parse().unwrap());
    assert!(
        seen >= 100 + (appended - 100) * 3 / 4,
        "write-behind wrote out only {seen} of {appended} records before the child died"
    );
    let wal = Wal::open(
        dir.path(),
        small(4 << 20, SyncPolicy::Manual, IoMode::Direct),
    )
    .unwrap();
    let report = wal.recovery().clone();
    assert!(
        report.records >= seen,
        "reopened {} records, the child saw {seen} on disk",
        report.records
    );
    assert_log(&wal, 1, report.records);
}

fn payload_offset(dir: &Path, lsn: u64) -> (std::path::PathBuf, u64) {
    let ins = inspect(dir).unwrap();
    let r = ins.records_from(lsn).next().unwrap();
    assert_eq!(r.lsn(), lsn);
    (r.segment().path().to_path_buf(), r.offset() as u64)
}

common::both_io_paths!(a_flipped_bit_in_a_killed_writers_first_lsn_block_is_corruption);
fn a_flipped_bit_in_a_killed_writers_first_lsn_block_is_corruption(io: IoMode) {
    // A flipped bit in the first LSN of a killed writer's segment: its records were never
    // synced, but the block cannot tear into this, so it is damage, not a torn tail.
    let dir = tempfile::tempdir().unwrap();
    crash_child(dir.path());
    let files = common::segment_files(dir.path());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&files[0])
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 64).unwrap();
    f.write_all_at(&[b[0] ^ 4], 64).unwrap();
    drop(f);
    match Wal::open(dir.path(), small(64 * 1024, SyncPolicy::Manual, io)) {
        Err(Error::Corruption {
            file,
            offset: 64,
            reason: CorruptionKind::BadActivation,
        }) => assert_eq!(file, files[0]),
        other => panic!("expected Corruption(BadActivation), got {other:?}"),
    }
}
