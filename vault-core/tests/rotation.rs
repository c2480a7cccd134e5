//! Round trips across rotations, oversized records, reopen and truncate_front.

mod common;

use common::{assert_log, record, segment_files, small};
use vault_core::{Error, IoMode, SyncPolicy, Wal};

common::both_io_paths!(round_trip_across_many_rotations_with_tiny_segments);
fn round_trip_across_many_rotations_with_tiny_segments(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(4096, SyncPolicy::Manual, io)).unwrap();
    for lsn in 1..=2000 {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
    }
    let stats = wal.stats();
    assert!(
        stats.rotations >= 50,
        "expected many rotations, got {}",
        stats.rotations
    );
    assert_log(&wal, 1, 2000);
    assert_log(&wal, 1234, 2000);
    wal.close().unwrap();
    assert!(segment_files(dir.path()).len() >= 50);

    let wal = Wal::open(dir.path(), small(4096, SyncPolicy::Manual, io)).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.records, 2000);
    assert_eq!(report.torn_tail, None);
    assert_log(&wal, 1, 2000);
}

common::both_io_paths!(records_larger_than_a_segment_round_trip_and_survive_reopen);
fn records_larger_than_a_segment_round_trip_and_survive_reopen(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(64 * 1024, SyncPolicy::Always, io);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    assert_eq!(wal.append(b"before").unwrap(), 1);
    assert_eq!(wal.append(&big).unwrap(), 2);
    assert_eq!(wal.append(b"after").unwrap(), 3);
    assert_eq!(wal.read(2).unwrap().data(), &big[..]);
    wal.close().unwrap();

    let wal = Wal::open(dir.path(), opts).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.records, 3);
    let all: Vec<Vec<u8>> = wal.iter_from(1).map(|r| r.to_vec()).collect();
    assert_eq!(all, vec![b"before".to_vec(), big, b"after".to_vec()]);
}

common::both_io_paths!(record_above_max_record_size_is_a_typed_error);
fn record_above_max_record_size_is_a_typed_error(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        small(64 * 1024, SyncPolicy::Manual, io).with_max_record_size(1000),
    )
    .unwrap();
    match wal.append(&[0u8; 1001]) {
        Err(Error::RecordTooLarge {
            len: 1001,
            max: 1000,
        }) => {}
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(wal.append(&[0u8; 1000]).unwrap(), 1, "the WAL goes on");
}

common::both_io_paths!(reopen_continues_the_lsns);
fn reopen_continues_the_lsns(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3u64 {
        let wal = Wal::open(dir.path(), small(8192, SyncPolicy::Manual, io)).unwrap();
        let report = wal.recovery().clone();
        assert_eq!(report.next_lsn, round * 100 + 1);
        for lsn in round * 100 + 1..=round * 100 + 100 {
            assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
        }
        assert_log(&wal, 1, round * 100 + 100);
        wal.close().unwrap();
    }
}

common::both_io_paths!(truncate_front_drops_old_segments_and_survives_reopen);
fn truncate_front_drops_old_segments_and_survives_reopen(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(4096, SyncPolicy::Manual, io);
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    for lsn in 1..=1000 {
        wal.append(&record(lsn)).unwrap();
    }
    let before = segment_files(dir.path()).len();
    let removed = wal.truncate_front(600).unwrap();
    assert!(removed > 0);
    let first = wal.first_lsn();
    assert!(
        first <= 600 && first > 1,
        "first LSN {first} after truncating to 600"
    );
    assert_log(&wal, first, 1000);
    wal.close().unwrap();
    assert!(segment_files(dir.path()).len() < before);

    let wal = Wal::open(dir.path(), opts).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.first_lsn, first);
    assert_eq!(wal.first_lsn(), first);
    assert_log(&wal, first, 1000);
    assert_eq!(wal.append(&record(1001)).unwrap(), 1001);
}

common::both_io_paths!(pre_leftovers_are_removed_at_open);
fn pre_leftovers_are_removed_at_open(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(8192, SyncPolicy::Manual, io)).unwrap();
    wal.append(b"x").unwrap();
    wal.close().unwrap();
    let pre = dir
        .path()
        .join("gs-vault-20261125T100000Z-00000000000000000009-pre.log");
    std::fs::write(&pre, b"half made").unwrap();
    let empty_pre = dir
        .path()
        .join("gs-vault-20261125T100000Z-00000000000000000010-pre.log");
    std::fs::write(&empty_pre, b"").unwrap();
    let wal = Wal::open(dir.path(), small(8192, SyncPolicy::Manual, io)).unwrap();
    let report = wal.recovery().clone();
    assert!(!pre.exists() && !empty_pre.exists());
    assert_eq!(report.removed_pre.len(), 2);
    assert_eq!(wal.read(1).unwrap().data(), b"x");
}

common::both_io_paths!(segment_names_follow_the_pattern_and_indexes_are_contiguous);
fn segment_names_follow_the_pattern_and_indexes_are_contiguous(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(4096, SyncPolicy::Manual, io)).unwrap();
    for lsn in 1..=300 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.close().unwrap();
    let re = regex_like_check;
    let files = segment_files(dir.path());
    for (i, f) in files.iter().enumerate() {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(re(name), "bad segment name {name}");
        let index: u64 = name[name.len() - 24..name.len() - 4].parse().unwrap();
        assert_eq!(index, i as u64 + 1);
    }
}

fn regex_like_check(name: &str) -> bool {
    // gs-vault-YYYYMMDDTHHMMSSZ-<20 digits>.log
    let b = name.as_bytes();
    name.len() == 9 + 16 + 1 + 20 + 4
        && name.starts_with("gs-vault-")
        && b[17] == b'T'
        && b[24] == b'Z'
        && b[25] == b'-'
        && name.ends_with(".log")
        && name[26..46].bytes().all(|c| c.is_ascii_digit())
}
