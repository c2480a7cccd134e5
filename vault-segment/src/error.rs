//! The error type of vault-segment.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Errors of segment files: I/O on a named file, or bytes that are not a valid segment.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("create", "map", "sync", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file holds bytes that are not a valid segment at `offset`.
    #[error("corrupt segment {} at byte {offset}: {reason}", file.display())]
    Corruption {
        /// The segment file.
        file: PathBuf,
        /// Byte offset in the file where the bad bytes start.
        offset: u64,
        /// What is wrong there.
        reason: CorruptionKind,
    },
    /// The segment was written by a newer (or unknown) format version.
    #[error(
        "segment {} has format version {found}, this build reads version {supported}: \
         open it with a newer vault",
        file.display()
    )]
    UnsupportedVersion {
        /// The segment file.
        file: PathBuf,
        /// The version in its header.
        found: u32,
        /// The version this build writes and reads.
        supported: u32,
    },
}

/// What exactly is wrong with corrupt bytes.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorruptionKind {
    /// The file is shorter than a segment header.
    ShortFile {
        /// The file's length in bytes.
        len: u64,
    },
    /// The header does not start with the segment magic.
    BadMagic,
    /// The header checksum does not match.
    HeaderChecksum,
    /// The index in the header differs from the index in the file name.
    IndexMismatch {
        /// Index in the file name.
        in_name: u64,
        /// Index in the header.
        in_header: u64,
    },
    /// The header states a capacity smaller than a header or absurdly large.
    BadCapacity {
        /// The stated capacity.
        capacity: u64,
    },
    /// The file is shorter than the capacity its header states. Segments are allocated to
    /// their full capacity and that size is durable before the file gets its name, so no
    /// crash leaves a short segment: something cut the file.
    Truncated {
        /// The file's length in bytes.
        len: u64,
        /// The capacity in the header.
        capacity: u64,
    },
    /// The activation block (first LSN) does not validate.
    BadActivation,
    /// A frame header has an unknown kind or non-zero reserved bytes.
    BadFrameHeader,
    /// A frame's length runs past the end of the segment.
    LengthPastEnd {
        /// The length stated in the frame.
        len: u64,
    },
    /// A frame's checksum does not match its bytes, salt and LSN.
    ChecksumMismatch,
    /// A commit marker is inconsistent with its position.
    BadMarker,
    /// A segment index is missing between two existing segments.
    MissingSegment {
        /// The missing index.
        index: u64,
    },
    /// A segment's first LSN does not follow the previous segment's last record.
    LsnDiscontinuity {
        /// The LSN the previous segment implies.
        expected: u64,
        /// The first LSN this segment states.
        found: u64,
    },
    /// Records up to `attested` were durable (a later commit marker says so) but are missing or
    /// damaged here.
    AcknowledgedRecordLost {
        /// The first LSN that cannot be read.
        lsn: u64,
        /// The highest LSN a commit marker on disk attests as durable.
        attested: u64,
        /// Why the record cannot be read.
        cause: Box<CorruptionKind>,
    },
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShortFile { len } => write!(f, "file of {len} bytes is shorter than a header"),
            Self::BadMagic => f.write_str("not a vault segment (bad magic)"),
            Self::HeaderChecksum => f.write_str("segment header checksum mismatch"),
            Self::IndexMismatch { in_name, in_header } => write!(
                f,
                "file name says segment index {in_name} but the header says {in_header}"
            ),
            Self::BadCapacity { capacity } => write!(f, "implausible segment capacity {capacity}"),
            Self::Truncated { len, capacity } => write!(
                f,
                "file is {len} bytes but its header says {capacity}: it was truncated"
            ),
            Self::BadActivation => f.write_str("first-LSN block checksum mismatch"),
            Self::BadFrameHeader => f.write_str("invalid frame header"),
            Self::LengthPastEnd { len } => {
                write!(f, "frame length {len} runs past the end of the segment")
            }
            Self::ChecksumMismatch => f.write_str("record checksum mismatch"),
            Self::BadMarker => f.write_str("commit marker inconsistent with its position"),
            Self::MissingSegment { index } => write!(f, "segment index {index} is missing"),
            Self::LsnDiscontinuity { expected, found } => write!(
                f,
                "segment starts at LSN {found} but the previous segment ends before LSN {expected}"
            ),
            Self::AcknowledgedRecordLost {
                lsn,
                attested,
                cause,
            } => write!(
                f,
                "record {lsn} is unreadable ({cause}) although a commit marker attests records \
                 up to {attested} as durable"
            ),
        }
    }
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

    pub(crate) fn corrupt(file: impl Into<PathBuf>, offset: u64, reason: CorruptionKind) -> Self {
        Self::Corruption {
            file: file.into(),
            offset,
            reason,
        }
    }
}
