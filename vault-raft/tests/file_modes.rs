//! Who may read a Raft node's log: the store's directory and its metadata file are owner-only
//! by default, group-readable with `FileMode::GroupReadable`.
//!
//! Unix only: permission bits, FIFOs and unprivileged symbolic links are Unix notions; on
//! Windows a log's files inherit the directory's ACL (see `vault_segment::storage`).

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use openraft::storage::RaftLogStorage;
use openraft::Vote;
use vault_core::{FileMode, Options};
use vault_raft::testing::TypeConfig;
use vault_raft::{VaultLogStore, META_FILE};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn save_a_vote(dir: &Path, options: Options) {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            let mut store = VaultLogStore::<TypeConfig>::open(dir, options).unwrap();
            store.save_vote(&Vote::new(1, 1)).await.unwrap();
        });
}

#[test]
fn the_metadata_file_is_owner_only_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    save_a_vote(&dir, Options::default());
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(META_FILE)), 0o600);
}

#[test]
fn the_metadata_file_is_group_readable_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    save_a_vote(
        &dir,
        Options::default().with_file_mode(FileMode::GroupReadable),
    );
    assert_eq!(mode(&dir), 0o750);
    assert_eq!(mode(&dir.join(META_FILE)), 0o640);
}
