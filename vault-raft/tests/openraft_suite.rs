//! openraft's own storage test suite (`openraft::testing::Suite::test_all`) against
//! `VaultLogStore`, with the in-memory key-value state machine for the state-machine half.
//!
//! The suite runs 35 named checks in order (see `Suite::test_store` in openraft 0.9.25,
//! `src/testing/suite.rs`), each on a fresh store from the builder, in its own tokio runtime.
//! `SUITE_TESTS` lists them so a failure report can be matched to openraft's source.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use tempfile::TempDir;
use vault_raft::testing::{KvStateMachine, NodeId, TypeConfig};
use vault_raft::VaultLogStore;

/// The checks `Suite::test_all` runs, in order (openraft 0.9.25).
pub const SUITE_TESTS: [&str; 35] = [
    "last_membership_in_log_initial",
    "last_membership_in_log",
    "last_membership_in_log_multi_step",
    "get_membership_initial",
    "get_membership_from_log_and_empty_sm",
    "get_membership_from_empty_log_and_sm",
    "get_membership_from_log_le_sm_last_applied",
    "get_membership_from_log_gt_sm_last_applied_1",
    "get_membership_from_log_gt_sm_last_applied_2",
    "get_initial_state_without_init",
    "get_initial_state_membership_from_log_and_sm",
    "get_initial_state_with_state",
    "get_initial_state_last_log_gt_sm",
    "get_initial_state_last_log_lt_sm",
    "get_initial_state_log_ids",
    "get_initial_state_re_apply_committed",
    "save_vote",
    "get_log_entries",
    "limited_get_log_entries",
    "try_get_log_entry",
    "initial_logs",
    "get_log_state",
    "get_log_id",
    "last_id_in_log",
    "last_applied_state",
    "purge_logs_upto_0",
    "purge_logs_upto_5",
    "purge_logs_upto_20",
    "delete_logs_since_11",
    "delete_logs_since_0",
    "append_to_log",
    "snapshot_meta",
    "apply_single",
    "apply_multiple",
    "transfer_snapshot",
];

/// Builds a store in a fresh temporary directory (removed when the suite drops the guard).
struct Builder {
    segment_size: u64,
}

impl StoreBuilder<TypeConfig, VaultLogStore<TypeConfig>, KvStateMachine, TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(TempDir, VaultLogStore<TypeConfig>, KvStateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = VaultLogStore::<TypeConfig>::options().with_segment_size(self.segment_size);
        let store = VaultLogStore::open(dir.path(), options).map_err(|e| {
            e.into_storage_error(openraft::ErrorSubject::Store, openraft::ErrorVerb::Read)
        })?;
        Ok((dir, store, KvStateMachine::default()))
    }
}

/// 1 MiB segments: every store of the suite fits in one segment (the suite's own one-second
/// sleeps, eight of them, dominate its run time, not the store).
#[test]
fn openraft_storage_suite_passes() {
    eprintln!(
        "openraft::testing::Suite::test_all: {} checks: {}",
        SUITE_TESTS.len(),
        SUITE_TESTS.join(", ")
    );
    Suite::test_all(Builder {
        segment_size: 1 << 20,
    })
    .unwrap();
}

/// The same suite with 4 KiB segments, so that purges remove whole segments and keep purged
/// records in the segment that holds the first live entry.
#[test]
fn openraft_storage_suite_passes_with_tiny_segments() {
    Suite::test_all(Builder { segment_size: 4096 }).unwrap();
}
