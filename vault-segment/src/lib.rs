//! One memory-mapped segment file of the vault write-ahead log: its on-disk format, record
//! framing with CRC32C checksums, appending into the mapping, reading published records back,
//! the recovery scan, and the durability primitives (real allocation, pre-faulting,
//! `msync(MS_SYNC)`, directory `fsync`) behind the [`Storage`] seam.
//!
//! This crate knows one file at a time. Which segment comes next, when to sync and how to
//! recover a whole log are decided above it (`vault-rotate`, `vault-core`). All `unsafe` code of
//! the workspace lives here; the mapping contract is written once, in [`storage`].
//!
//! ```
//! use vault_segment::{partial_crc, FsStorage, IoPath, Segment};
//!
//! let dir = tempfile::tempdir()?;
//! let prepared = Segment::create(&FsStorage, dir.path(), 1, 64 * 1024, IoPath::Mmap)?;
//! let mut appender = prepared.activate(1);
//! let lsn = appender.append(b"hello", partial_crc(b"hello")).expect("room");
//! appender.publish();
//! appender.segment().sync_to(appender.offset())?; // durable from here on
//! let rec = appender.segment().records_from(lsn).next().expect("published");
//! assert_eq!((rec.lsn(), rec.data()), (1, &b"hello"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

mod crc;
mod direct;
pub use direct::DEFAULT_RING_BYTES;
mod error;
pub mod format;
#[cfg(any(test, feature = "testing"))]
mod recording;
mod segment;
#[cfg(any(test, feature = "testing"))]
pub mod sim;
pub mod storage;
mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod models;

pub use error::{CorruptionKind, Error, Result};
pub use format::{
    frame_len, parse_segment_name, partial_crc, segment_file_name, Activation, SegmentHeader,
    SegmentName, DATA_OFFSET, MARKER_FRAME_LEN, MAX_PAYLOAD,
};
#[cfg(any(test, feature = "testing"))]
pub use recording::{RecordingStorage, SyncEvent};
pub use segment::{
    capacity_for, is_no_space, round_capacity, Beyond, NoRoom, PreparedSegment, Record, Records,
    Replacement, Scan, Segment, SegmentAppender, Stop,
};
pub use storage::{Access, DirLock, FileMode, FileSystem, FsStorage, IoPath, Region, Storage};
