//! Every record called durable was covered by an `msync` that returned after it was written.
//!
//! `RecordingStorage` logs each successful sync; a missing or stale sync (for example a segment
//! that believes itself synced when it is not) fails these tests, which a crash-free run alone
//! could never reveal.

mod common;

use std::sync::Arc;

use vault_core::{FsStorage, IoMode, Options, SyncPolicy, Wal};
use vault_segment::RecordingStorage;

fn opts(rec: &Arc<RecordingStorage<FsStorage>>, sync: SyncPolicy, seg: u64, io: IoMode) -> Options {
    Options::default()
        .with_io(io)
        .with_segment_size(seg)
        .with_sync(sync)
        .with_storage(Arc::clone(rec) as Arc<dyn vault_core::Storage>)
}

fn assert_synced_after(rec: &RecordingStorage<FsStorage>, before: usize, wal: &Wal, lsn: u64) {
    let r = wal.read(lsn).unwrap();
    let path = r.segment().path().to_path_buf();
    let last_byte = r.offset() + r.len().max(1) - 1;
    assert!(
        rec.synced_since(before, &path, r.offset() - 16)
            && rec.synced_since(before, &path, last_byte),
        "record {lsn} at {}:{} was called durable without a sync covering it",
        path.display(),
        r.offset()
    );
}

common::both_io_paths!(always_syncs_each_record_in_a_fresh_and_a_reopened_log);
fn always_syncs_each_record_in_a_fresh_and_a_reopened_log(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(RecordingStorage::new(FsStorage));
    for round in 0..2u64 {
        let wal = Wal::open(dir.path(), opts(&rec, SyncPolicy::Always, 64 * 1024, io)).unwrap();
        for i in 0..300u64 {
            let before = rec.events().len();
            let lsn = wal.append(&[i as u8; 100]).unwrap();
            assert_eq!(lsn, round * 300 + i + 1);
            assert!(wal.durable_lsn() >= lsn);
            assert_synced_after(&rec, before, &wal, lsn);
        }
        wal.close().unwrap();
    }
}

common::both_io_paths!(manual_sync_covers_every_segment_written_since_the_last_sync);
fn manual_sync_covers_every_segment_written_since_the_last_sync(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(RecordingStorage::new(FsStorage));
    let wal = Wal::open(dir.path(), opts(&rec, SyncPolicy::Manual, 4096, io)).unwrap();
    for i in 0..200u64 {
        wal.append(&[i as u8; 150]).unwrap();
    }
    let before = rec.events().len();
    wal.sync().unwrap();
    for lsn in 1..=200 {
        assert_synced_after(&rec, 0, &wal, lsn);
    }
    // The tail segment in particular was synced by this call, not only by retirement.
    assert_synced_after(&rec, before, &wal, 200);
}
