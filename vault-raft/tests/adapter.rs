//! The adapter's own guarantees, beyond openraft's suite: the log state survives a reopen after
//! appends, truncations and purges; purged records that vault keeps (whole segments only) are
//! never returned; `LogFlushed` fires only after a sync covered the entries.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::{LogState, RaftLogStorage, RaftLogStorageExt};
use openraft::{Entry, EntryPayload, LogId, RaftLogReader, Vote};
use vault_core::{FsStorage, Options, Storage, SyncPolicy};
use vault_raft::testing::{NodeId, Request, TypeConfig};
use vault_raft::{lsn_of, Error, VaultLogStore, META_FILE};
use vault_segment::RecordingStorage;

type Store = VaultLogStore<TypeConfig>;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

use vault_raft::testing::log_id;

/// A normal entry with a 100-byte value, so that 4 KiB segments hold about 25 entries.
fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request {
            key: format!("k{index}"),
            value: format!("{index:0>100}"),
        }),
    }
}

fn entries(term: u64, indexes: std::ops::Range<u64>) -> Vec<Entry<TypeConfig>> {
    indexes.map(|i| entry(term, i)).collect()
}

fn open(dir: &Path) -> Store {
    Store::open(dir, Store::options().with_segment_size(4096)).unwrap()
}

/// Everything openraft can observe of a log store.
#[derive(Debug, PartialEq)]
struct Observed {
    state: LogState<TypeConfig>,
    entries: Vec<Entry<TypeConfig>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

async fn observe(store: &mut Store) -> Observed {
    Observed {
        state: store.get_log_state().await.unwrap(),
        entries: store.try_get_log_entries(..).await.unwrap(),
        vote: store.read_vote().await.unwrap(),
        committed: store.read_committed().await.unwrap(),
    }
}

fn indexes(entries: &[Entry<TypeConfig>]) -> Vec<u64> {
    entries.iter().map(|e| e.log_id.index).collect()
}

#[test]
fn reopen_after_append_truncate_and_purge_returns_the_same_log_state() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = open(dir.path());
        for start in (0..300).step_by(10) {
            store
                .blocking_append(entries(3, start..start + 10))
                .await
                .unwrap();
        }
        assert!(store.wal().stats().segments > 5, "the log spans segments");
        store.save_vote(&Vote::new(3, 1)).await.unwrap();
        // A new leader of term 4 overwrites the conflicting suffix 250.. with its own entries.
        store.truncate(log_id(3, 250)).await.unwrap();
        store.blocking_append(entries(4, 250..270)).await.unwrap();
        store.save_vote(&Vote::new(4, 2)).await.unwrap();
        store.purge(log_id(3, 100)).await.unwrap();
        store.save_committed(Some(log_id(4, 260))).await.unwrap();
        store.flush_metadata().unwrap();

        let before = observe(&mut store).await;
        assert_eq!(before.state.last_purged_log_id, Some(log_id(3, 100)));
        assert_eq!(before.state.last_log_id, Some(log_id(4, 269)));
        assert_eq!(indexes(&before.entries), (101..270).collect::<Vec<_>>());
        assert!(before.entries[..149]
            .iter()
            .all(|e| e.log_id.leader_id.term == 3));
        assert!(before.entries[149..]
            .iter()
            .all(|e| e.log_id.leader_id.term == 4));
        assert_eq!(before.vote, Some(Vote::new(4, 2)));
        drop(store);

        let mut store = open(dir.path());
        assert_eq!(observe(&mut store).await, before);
        // And the log continues where it was.
        store.blocking_append(entries(4, 270..275)).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(4, 274)));
        assert_eq!(store.wal().last_lsn(), lsn_of(274));
    });
}

#[test]
fn purged_records_left_in_a_kept_segment_are_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = open(dir.path());
        store.blocking_append(entries(1, 0..200)).await.unwrap();
        // A purge point in the middle of a segment: vault keeps that whole segment.
        let p = (50..150)
            .find(|&i| {
                let a = store.wal().read(lsn_of(i)).unwrap();
                let b = store.wal().read(lsn_of(i + 1)).unwrap();
                a.segment().path() == b.segment().path()
            })
            .unwrap();
        store.purge(log_id(1, p)).await.unwrap();
        assert!(
            store.wal().read(lsn_of(p)).is_some(),
            "the purged record is still in the WAL: the filter is what hides it"
        );
        let got = store.try_get_log_entries(0..p + 2).await.unwrap();
        assert_eq!(indexes(&got), [p + 1]);
        let mut reader = store.get_log_reader().await;
        assert!(reader.try_get_log_entries(p..=p).await.unwrap().is_empty());
        drop(store);
        drop(reader);
        let mut store = open(dir.path());
        let got = store.try_get_log_entries(..).await.unwrap();
        assert_eq!(got.first().map(|e| e.log_id.index), Some(p + 1));
        assert_eq!(got.len() as u64, 200 - (p + 1));
    });
}

#[test]
fn a_purge_past_the_end_resets_the_log_to_continue_after_it() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = open(dir.path());
        store.blocking_append(entries(1, 0..10)).await.unwrap();
        // As after installing a snapshot that ends at index 50.
        store.purge(log_id(2, 50)).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(2, 50)));
        assert_eq!(state.last_log_id, Some(log_id(2, 50)));
        assert!(store.try_get_log_entries(..).await.unwrap().is_empty());
        drop(store);

        let mut store = open(dir.path());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(2, 50)));
        store.blocking_append(entries(2, 51..60)).await.unwrap();
        assert_eq!(store.wal().last_lsn(), lsn_of(59));
        drop(store);

        let mut store = open(dir.path());
        let got = store.try_get_log_entries(..).await.unwrap();
        assert_eq!(indexes(&got), (51..60).collect::<Vec<_>>());
        // Purging exactly the last entry empties the log too.
        store.purge(log_id(2, 59)).await.unwrap();
        store.blocking_append(entries(2, 60..61)).await.unwrap();
        assert_eq!(indexes(&store.try_get_log_entries(..).await.unwrap()), [60]);
    });
}

#[test]
fn truncating_from_index_zero_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = open(dir.path());
        store.blocking_append(entries(1, 0..5)).await.unwrap();
        store.truncate(log_id(1, 0)).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!((state.last_purged_log_id, state.last_log_id), (None, None));
        store.blocking_append(entries(2, 0..3)).await.unwrap();
        drop(store);
        let mut store = open(dir.path());
        let got = store.try_get_log_entries(..).await.unwrap();
        assert_eq!(indexes(&got), [0, 1, 2]);
        assert!(got.iter().all(|e| e.log_id.leader_id.term == 2));
    });
}

#[test]
fn an_append_that_would_leave_a_hole_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = open(dir.path());
        store.blocking_append(entries(1, 0..3)).await.unwrap();
        assert!(store.blocking_append(entries(1, 5..6)).await.is_err());
        assert!(store.blocking_append(entries(1, 1..2)).await.is_err());
        let batch_with_gap = vec![entry(1, 3), entry(1, 5)];
        assert!(store.blocking_append(batch_with_gap).await.is_err());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 2)));
    });
}

/// `LogFlushed` (what `blocking_append` waits for) fires only once a sync covered every byte of
/// the batch. Under `SyncPolicy::Manual` nothing but the committer that `on_durable` drives
/// syncs, so a callback fired early would find the records unsynced.
#[test]
fn log_flushed_fires_only_after_a_sync_covered_the_entries() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(RecordingStorage::new(FsStorage));
    let options = Options::default()
        .with_sync(SyncPolicy::Manual)
        .with_segment_size(4096)
        .with_storage(Arc::clone(&rec) as Arc<dyn Storage>);
    rt().block_on(async {
        let mut store = Store::open(dir.path(), options).unwrap();
        for start in (0..200).step_by(20) {
            let before = rec.events().len();
            store
                .blocking_append(entries(1, start..start + 20))
                .await
                .unwrap();
            assert!(store.wal().durable_lsn() >= lsn_of(start + 19));
            for i in start..start + 20 {
                let r = store.wal().read(lsn_of(i)).unwrap();
                let last_byte = r.offset() + r.len().max(1) - 1;
                assert!(
                    rec.synced_since(before, r.segment().path(), last_byte),
                    "entry {i} was reported flushed without a sync covering it"
                );
            }
        }
    });
}

/// The property the adapter relies on, checked inside the callback itself: when
/// `Wal::on_durable` calls back, the record is durable and a sync covered it.
#[test]
fn on_durable_calls_back_after_the_covering_sync() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(RecordingStorage::new(FsStorage));
    let options = Options::default()
        .with_sync(SyncPolicy::Manual)
        .with_storage(Arc::clone(&rec) as Arc<dyn Storage>);
    let store = Store::open(dir.path(), options).unwrap();
    let wal = store.wal();
    let (tx, rx) = mpsc::channel();
    for i in 0..50u64 {
        let before = rec.events().len();
        let lsn = wal.append(&[i as u8; 300]).unwrap();
        let r = wal.read(lsn).unwrap();
        let (path, last_byte) = (r.segment().path().to_path_buf(), r.offset() + r.len() - 1);
        let rec = Arc::clone(&rec);
        let tx = tx.clone();
        wal.on_durable(lsn, move |res| {
            let covered = rec.synced_since(before, &path, last_byte);
            tx.send((lsn, res.is_ok(), covered)).unwrap();
        });
    }
    for _ in 0..50 {
        let (lsn, ok, covered) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(ok, "callback for {lsn} failed");
        assert!(covered, "callback for {lsn} ran before a sync covered it");
    }
}

#[test]
fn a_damaged_metadata_file_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = open(dir.path());
        store.save_vote(&Vote::new(7, 1)).await.unwrap();
    });
    let path = dir.path().join(META_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    match Store::open(dir.path(), Store::options()) {
        Err(Error::CorruptMetadata { reason, .. }) => {
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected CorruptMetadata, got {other:?}"),
    }
}

#[test]
fn a_directory_opens_in_one_store_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    match Store::open(dir.path(), Store::options()) {
        Err(Error::Wal(vault_core::Error::Locked { .. })) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
}

/// A crash after `purge` wrote the metadata but before it reset the WAL: the metadata says
/// index 50 is purged while the WAL still ends at index 9. The store must read as purged up to
/// 50 and continue at 51. (Simulated by giving a WAL the metadata file of another store.)
#[test]
fn a_crash_between_the_purge_metadata_and_the_wal_reset_recovers() {
    let purged = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut a = open(purged.path());
        a.blocking_append(entries(1, 0..10)).await.unwrap();
        a.purge(log_id(2, 50)).await.unwrap();
        let mut b = open(crashed.path());
        b.blocking_append(entries(1, 0..10)).await.unwrap();
    });
    std::fs::copy(
        purged.path().join(META_FILE),
        crashed.path().join(META_FILE),
    )
    .unwrap();
    rt().block_on(async {
        let mut store = open(crashed.path());
        assert_eq!(store.wal().last_lsn(), lsn_of(9), "the WAL was not reset");
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(2, 50)));
        assert_eq!(state.last_log_id, Some(log_id(2, 50)));
        assert!(store.try_get_log_entries(..).await.unwrap().is_empty());
        store.blocking_append(entries(2, 51..53)).await.unwrap();
        assert_eq!(
            indexes(&store.try_get_log_entries(..).await.unwrap()),
            [51, 52]
        );
    });
}
