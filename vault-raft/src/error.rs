//! The error type of vault-raft, and its mapping into openraft's [`StorageError`].

use std::io;
use std::path::PathBuf;

use openraft::{AnyError, ErrorSubject, ErrorVerb, NodeId, StorageError, StorageIOError};

/// Errors of the log store. openraft sees them as [`StorageError`]s (see
/// [`Error::into_storage_error`]); [`crate::VaultLogStore::open`] returns them as they are.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The vault WAL failed (I/O, corruption, a failed sync that poisoned it, closed).
    #[error("vault WAL: {0}")]
    Wal(#[from] vault_core::Error),
    /// A file-system operation on the metadata file or the store's directory failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry or the metadata could not be serialised.
    #[error("encode the Raft {what} as MessagePack: {source}")]
    Encode {
        /// `"entry"` or `"metadata"`.
        what: &'static str,
        /// The cause.
        #[source]
        source: rmp_serde::encode::Error,
    },
    /// A record of the WAL does not decode as an entry of this type config (the directory
    /// belongs to another application, or its entry type changed incompatibly).
    #[error(
        "decode the Raft entry stored at LSN {lsn} (log index {}): {source}; was the directory \
         written with another entry type?",
        lsn - 1
    )]
    DecodeEntry {
        /// The record's LSN.
        lsn: u64,
        /// The cause.
        #[source]
        source: rmp_serde::decode::Error,
    },
    /// The metadata file is damaged (bad magic, version, length or checksum, or a body that
    /// does not decode). It is written by rename, so this is damage, not a torn write.
    #[error(
        "metadata file {} is corrupt: {reason}; the Raft vote in it cannot be trusted, restore \
         the node from a replica",
        path.display()
    )]
    CorruptMetadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A record holds an entry whose log index does not match its LSN (index = LSN − 1).
    #[error("the record at LSN {lsn} holds the entry of log index {index}, expected {}", lsn - 1)]
    IndexMismatch {
        /// The record's LSN.
        lsn: u64,
        /// The index of the entry it holds.
        index: u64,
    },
    /// An append whose first index does not follow the last entry in the log (a hole or an
    /// overlap that openraft should have truncated first), or a batch that is not consecutive.
    #[error("append of log index {index} would leave a hole or overlap: the log continues at index {next}")]
    NotContiguous {
        /// The index of the offending entry.
        index: u64,
        /// The index the log expects next.
        next: u64,
    },
    /// The last record of the log is not readable although the WAL says it exists.
    #[error("the record at LSN {lsn} (log index {}) is missing from the WAL", lsn - 1)]
    Missing {
        /// Its LSN.
        lsn: u64,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// This error as openraft's [`StorageError`], saying what was being done (`verb`) to what
    /// (`subject`). The error itself is kept as the source.
    #[must_use]
    pub fn into_storage_error<NID: NodeId>(
        self,
        subject: ErrorSubject<NID>,
        verb: ErrorVerb,
    ) -> StorageError<NID> {
        StorageIOError::new(subject, verb, AnyError::new(&self)).into()
    }
}
