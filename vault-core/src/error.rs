//! The error type of vault-core.

use std::io;
use std::path::PathBuf;

pub use vault_segment::CorruptionKind;

use crate::sync::{RotateError, StdArc};

/// Errors of the WAL. Each says what went wrong and, where there is one, what to do.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another `Wal` (in this process or another) holds the directory.
    #[error(
        "{} is locked by another vault writer (in this or another process): close that one \
         first, or use another directory",
        dir.display()
    )]
    Locked {
        /// The WAL directory.
        dir: PathBuf,
    },
    /// Bytes on disk that are not a valid log, outside a torn tail that recovery may cut.
    #[error(
        "corrupt WAL: {} at byte {offset}: {reason}; the log was not modified. Inspect it with \
         `vault verify`, restore the file from a replica or backup, or move the damaged \
         segments away to salvage the records before them",
        file.display()
    )]
    Corruption {
        /// The segment file.
        file: PathBuf,
        /// Byte offset in that file.
        offset: u64,
        /// What is wrong.
        reason: CorruptionKind,
    },
    /// A segment written by a format version this build does not read.
    #[error(
        "{} has segment format version {found}; this vault reads version {supported}: use a \
         newer vault",
        file.display()
    )]
    UnsupportedVersion {
        /// The segment file.
        file: PathBuf,
        /// Its version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A record larger than `Options::max_record_size`.
    #[error("record of {len} bytes is larger than max_record_size ({max} bytes): split it or raise the limit")]
    RecordTooLarge {
        /// The record's length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// An earlier sync (or a truncation that had started to change the log) failed; the WAL
    /// accepts nothing more, since the failed data may be lost.
    #[error(
        "the WAL stopped after a failed {during} ({cause}); records after LSN {durable} may not \
         be on disk: close it and reopen the directory to recover"
    )]
    Poisoned {
        /// What failed: `"sync"` or `"truncation"`.
        during: &'static str,
        /// The first failure; every caller after it gets the same one.
        #[source]
        cause: StdArc<Error>,
        /// The durable LSN before the failure.
        durable: u64,
    },
    /// On the direct path, a sync found no space left (a full disk, or the user's quota) to
    /// write records `durable + 1..=last`. They are appended, kept in process memory and not
    /// durable; nothing is lost and the WAL is not poisoned: the next sync writes them (an
    /// append first retries it, and fails with this error, appending nothing, while there is
    /// still no space). Closing the WAL or ending the process before a sync succeeds loses
    /// them. See `docs/ARCHITECTURE.md`, "A full disk".
    #[error(
        "no space left on the file system to make records after LSN {durable} durable (write \
         {}: {source}){}; records {}..={last} are appended and kept in memory, not durable: \
         free space on that file system, and the next sync (Wal::sync, or any append) writes \
         them; closing the WAL before that loses them",
        path.display(),
        match appended {
            Some(lsn) => format!("; this call appended LSN {lsn}"),
            None => String::new(),
        },
        durable + 1
    )]
    NoSpace {
        /// Every record up to here is durable.
        durable: u64,
        /// The last appended record, in memory and not durable.
        last: u64,
        /// The (first) LSN the call that failed appended, if it appended before its sync
        /// failed (an append under `SyncPolicy::Always`); `None` when it appended nothing.
        appended: Option<u64>,
        /// The segment file that could not be written.
        path: PathBuf,
        /// The operating system's error (`ENOSPC`, `EDQUOT`).
        #[source]
        source: io::Error,
    },
    /// An I/O operation failed.
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
    /// [`crate::IoMode::Direct`] was asked for on a file system that cannot do direct I/O.
    #[error(
        "direct I/O is not available for {} on {file_system}: {reason}; open it with \
         IoMode::Mmap or IoMode::Auto (`--io mmap` or `--io auto`), or put the log on a file \
         system backed by a device (ext4, xfs, btrfs)",
        dir.display()
    )]
    DirectIoUnsupported {
        /// The WAL directory.
        dir: PathBuf,
        /// The file system's name (`tmpfs`, ...).
        file_system: String,
        /// Why direct I/O cannot be used there.
        reason: String,
    },
    /// Taking another segment would put the log past [`crate::Options::disk_budget`]: at once
    /// under [`crate::BudgetPolicy::Fail`], after the wait under `Wait`. Nothing of the
    /// failed append was written (of an `append_batch`, a prefix may have been).
    #[error(
        "the log is at its disk budget: its segments hold {log_bytes} bytes, and {needed} more \
         for the next segment would pass the bound of {budget} bytes ({reserve} of which are \
         kept for vault itself); free room with truncate_front once the records are consumed, \
         or raise the budget"
    )]
    BudgetExhausted {
        /// Bytes of the log's segment files now.
        log_bytes: u64,
        /// Bytes the next segment needs.
        needed: u64,
        /// Bytes of the budget kept for vault itself (spares, the copy of a cut).
        reserve: u64,
        /// The bound.
        budget: u64,
    },
    /// [`crate::Options::disk_budget`] is below what vault itself needs
    /// ([`crate::Options::min_disk_budget`]).
    #[error(
        "disk budget of {budget} bytes is too small: this log needs at least {needed} (two \
         segments, the spares and room for the copy truncate_back makes); raise it, or use \
         smaller segments or fewer spares"
    )]
    BudgetTooSmall {
        /// The budget asked for.
        budget: u64,
        /// The least these options need.
        needed: u64,
    },
    /// [`crate::IoMode::Mmap`] was asked for (or [`crate::IoMode::Auto`] found no other path)
    /// on a copy-on-write file system, where writing through a mapping can end in `SIGBUS`.
    #[error(
        "vault does not write through a memory mapping on {file_system} ({}): it is a \
         copy-on-write file system, where a store into a mapped page that was already written \
         needs new space, and on a full disk the kernel answers that with SIGBUS, killing the \
         process, instead of an error{also}; open it with IoMode::Direct or IoMode::Auto \
         (`--io direct` or `--io auto`), which write with O_DIRECT and report a full disk as \
         an error",
        dir.display()
    )]
    MmapUnsupported {
        /// The WAL directory.
        dir: PathBuf,
        /// The file system's name (`btrfs`, ...).
        file_system: String,
        /// More about why (empty, or why direct I/O is not available either).
        also: String,
    },
    /// A name in the log directory claims to be a segment (or a `-pre` file) but is not a
    /// regular file: vault neither follows nor removes it.
    #[error(
        "{} is {what}, not a regular file, but its name claims a vault segment; the log was \
         not modified: move it out of the directory (vault never follows links or opens \
         special files in a log)",
        path.display()
    )]
    NotRegularFile {
        /// The entry.
        path: PathBuf,
        /// What it is ("a symbolic link", "a directory", "a FIFO", ...).
        what: &'static str,
    },
    /// Invalid [`crate::Options`].
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// [`crate::Wal::reset`] was asked for a next LSN the format cannot hold.
    #[error(
        "reset to LSN {lsn}: a segment's first LSN is at most {max}; choose a smaller next LSN"
    )]
    LsnOutOfRange {
        /// The LSN asked for.
        lsn: u64,
        /// The largest first LSN a segment can hold.
        max: u64,
    },
    /// A record that passed [`crate::Options::max_record_size`] did not fit even a fresh
    /// segment sized for it: a bug in vault, not in the caller.
    #[error(
        "internal error: a record of {len} bytes did not fit a segment made for it; please \
         report this as a vault bug"
    )]
    RecordDoesNotFit {
        /// The record's length.
        len: usize,
    },
    /// A segment-level failure without a more specific variant here.
    #[error(transparent)]
    Segment(vault_segment::Error),
    /// The background rotation worker stopped.
    #[error("the segment rotation worker has stopped; close and reopen the WAL")]
    WorkerGone,
    /// The WAL was closed.
    #[error("the WAL is closed")]
    Closed,
    /// A reader's position is no longer in the log: `truncate_front` removed the records
    /// before `first_lsn`, or `truncate_back`/`reset` discarded the records from `next_lsn` on
    /// after the reader had reached them.
    #[error(
        "LSN {lsn} is no longer in the log (it now holds {first_lsn}..{next_lsn}): records were \
         truncated while this reader was positioned there; reposition with `Wal::follow`"
    )]
    Truncated {
        /// The reader's position.
        lsn: u64,
        /// The log's first LSN now.
        first_lsn: u64,
        /// The log's next LSN now (one past the last record).
        next_lsn: u64,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<vault_segment::Error> for Error {
    fn from(e: vault_segment::Error) -> Self {
        match e {
            vault_segment::Error::Io { op, path, source } => Self::Io { op, path, source },
            vault_segment::Error::Corruption {
                file,
                offset,
                reason,
            } => Self::Corruption {
                file,
                offset,
                reason,
            },
            vault_segment::Error::UnsupportedVersion {
                file,
                found,
                supported,
            } => Self::UnsupportedVersion {
                file,
                found,
                supported,
            },
            other => Self::Segment(other),
        }
    }
}

impl From<RotateError> for Error {
    fn from(e: RotateError) -> Self {
        match e {
            RotateError::Segment(s) => s.into(),
            RotateError::Spawn(source) => Self::Io {
                op: "spawn worker for",
                path: PathBuf::new(),
                source,
            },
            RotateError::Remove { path, source } => Self::Io {
                op: "remove",
                path,
                source,
            },
            RotateError::WorkerGone => Self::WorkerGone,
            // vault-rotate's error is `#[non_exhaustive]`; the loom build compiles its
            // sources into this crate, where the enum is local and this arm unreachable.
            #[cfg_attr(test, allow(unreachable_patterns))]
            other => Self::Io {
                op: "rotate segments in",
                path: PathBuf::new(),
                source: io::Error::other(other),
            },
        }
    }
}

impl Error {
    /// Whether this error says a file system (or a quota) is full: a segment that could not be
    /// allocated ([`Error::Io`] with `ENOSPC` or `EDQUOT`, nothing appended), or records that
    /// could not be written ([`Error::NoSpace`]).
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::NoSpace { .. } => true,
            Self::Io { source, .. } => vault_segment::is_no_space(source),
            _ => false,
        }
    }

    /// Records in a [`Error::NoSpace`] that the failing call appended `lsn`.
    pub(crate) fn appended_at(self, lsn: u64) -> Self {
        match self {
            Self::NoSpace {
                durable,
                last,
                path,
                source,
                ..
            } => Self::NoSpace {
                durable,
                last: last.max(lsn),
                appended: Some(lsn),
                path,
                source,
            },
            other => other,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
