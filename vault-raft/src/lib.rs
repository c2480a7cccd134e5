//! vault-raft: an [openraft](https://docs.rs/openraft/0.9) log store over one vault WAL.
//!
//! [`VaultLogStore`] implements openraft 0.9's `RaftLogStorage` and `RaftLogReader` (the v2
//! storage API) for any `RaftTypeConfig` whose entries are serde-serialisable. It is the
//! *log* half of a Raft node's storage; the state machine (and its snapshots) is the
//! application's. `testing` (feature `testing`) has an in-memory key-value state machine for tests and examples.
//! This crate is not a Raft implementation, and not a network: openraft is.
//!
//! ```
//! use openraft::storage::RaftLogStorage;
//! use openraft::Vote;
//! use vault_raft::testing::TypeConfig;
//! use vault_raft::VaultLogStore;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let mut store =
//!     VaultLogStore::<TypeConfig>::open(dir.path(), VaultLogStore::<TypeConfig>::options())?;
//! store.save_vote(&Vote::new(1, 7)).await?;
//! drop(store);
//! let mut store =
//!     VaultLogStore::<TypeConfig>::open(dir.path(), VaultLogStore::<TypeConfig>::options())?;
//! assert_eq!(store.read_vote().await?, Some(Vote::new(1, 7)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! A store's directory holds `wal/`, a vault WAL with one record per Raft entry, and
//! `raft-meta`, the metadata file (the vote, the committed log id, the last purged log id).
//!
//! **LSN = log index + 1.** vault numbers records from 1 and openraft's first index is 0, so
//! the entry of index `i` is the record with LSN `i + 1` ([`lsn_of`]). Every operation keeps
//! that true: an append whose first index does not follow the log is refused (openraft
//! truncates first), and when nothing live is left in the log (everything purged, e.g. after
//! installing a snapshot past the end) the WAL is `reset` to continue at the right LSN.
//!
//! **Entries** are serialised with [MessagePack](https://msgpack.org) via `rmp-serde`
//! (`to_vec`, structs as arrays). Why: it is a published, language-neutral format with a
//! maintained Rust implementation whose MSRV (1.85) fits the workspace; it is compact (an
//! openraft blank entry is 12 bytes, where JSON spells out every field name in about 75); and
//! being self-describing it decodes types that postcard or bincode cannot (e.g.
//! `#[serde(untagged)]` enums in an application's `C::D`). (postcard 1.2 needs Rust 1.88;
//! bincode 1.x is no longer maintained.) Fields marked `#[serde(skip_serializing_if)]` are not
//! supported in the positional encoding. Records written with an incompatible entry type fail
//! to decode with [`Error::DecodeEntry`]; the format carries no schema version of its own.
//!
//! # Crash semantics, operation by operation
//!
//! - **`append(entries, callback)`** copies the encoded entries into the WAL and returns
//!   without touching the disk: the entries are readable at once. `callback` (openraft's
//!   `LogFlushed`) is called from vault's committer thread by `Wal::on_durable` once a
//!   group-commit flush has made the last entry durable, never before; or with the error if
//!   a sync fails (the WAL is then poisoned and openraft stops the node). A crash before the
//!   callback may lose any suffix of the batch, which is what openraft expects of an entry it
//!   was not told is flushed. Open the WAL with [`vault_core::SyncPolicy::Manual`]
//!   ([`VaultLogStore::options`]): the committer does the syncs; `Always` would block `append`.
//! - **`truncate(log_id)`** is `Wal::truncate_back(lsn_of(log_id.index))`: once it returns,
//!   no crash brings a discarded entry back (vault makes the cut durable before returning).
//! - **`purge(log_id)`** first writes `last_purged = log_id` to the metadata file (durable),
//!   then drops whole WAL segments with `truncate_front`. Since `truncate_front` keeps the
//!   segment that holds the first live entry (and never the tail segment), purged records may
//!   stay in the WAL; reads and `get_log_state` skip every index `<= last_purged`. A crash
//!   between the two steps leaves more purged records on disk, never fewer live ones. A purge
//!   at or past the last entry `reset`s the WAL to an empty log continuing after it.
//! - **`save_vote`** syncs the WAL, then replaces the metadata file: durable on return, and
//!   never ahead of the log (openraft asks that vote and log I/O be serialised).
//! - **`save_committed`** only records the id in memory; it reaches the file with the next
//!   metadata write (vote, purge, [`VaultLogStore::flush_metadata`]). So `read_committed`
//!   after a restart returns a *lower bound* of what was committed, or `None`. That is safe:
//!   openraft uses it only to re-apply entries it knows are committed, and learns the rest
//!   from the leader. Writing it on every commit would cost a file write and two fsyncs per
//!   commit, more than the entries themselves.
//!
//! # Why the metadata is a file and not in the log
//!
//! The vote must survive everything the log goes through: `truncate_back`, `truncate_front`
//! (which deletes whole segments), and `reset` (which empties the log). A vote stored as a
//! record would have to be rewritten ahead of every purge that might drop it, and recovery
//! would have to scan the log to find the latest; records would also no longer map one to one
//! to Raft indexes (LSN = index + 1). A separate file, replaced atomically by rename, is
//! small, read once at open, and changes rarely (elections, purges). The WAL's directory lock
//! guards it too: only one store opens a directory.
//!
//! The metadata file's format is in the `meta` module: magic `VRMD`, a version, the body
//! length and its CRC32C (little-endian `u32`s), then the body as MessagePack. Writing it:
//! `raft-meta.tmp` is written and fsynced, renamed over `raft-meta`, and the directory fsynced.
//! All of it goes through the WAL's storage (`Options::storage`: `write_file`, `sync_file`,
//! `rename`, `sync_dir`, `read_file`), like the WAL's own files, so a storage that simulates
//! power loss (`vault_segment::sim::SimStorage`) covers the metadata file too
//! (`tests/meta_power_loss.rs`). A custom storage must implement those whole-file operations
//! (their default refuses with `Unsupported`).
//!
//! # Errors
//!
//! [`Error`] is this crate's error; openraft sees it as a `StorageError` whose
//! `ErrorSubject`/`ErrorVerb` say what was being done (e.g. `Vote`/`Write`, `Logs`/`Read`,
//! `Log(id)`/`Delete` for truncate and purge), with the [`Error`] as its source.
#![forbid(unsafe_code)]

mod error;
mod meta;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Error, Result};
pub use meta::META_FILE;
pub use store::{lsn_of, VaultLogReader, VaultLogStore, WAL_DIR};
