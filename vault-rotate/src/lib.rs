//! The rotation worker of the vault write-ahead log: a background thread that prepares the next
//! segment before the writer needs it and retires full segments off the writer's path.
//!
//! Preparing a segment (create as `-pre`, allocate for real, pre-fault, write and sync the
//! header, rename, fsync the directory; see [`vault_segment::Segment::create`]) costs
//! milliseconds. The worker does it ahead of time and keeps up to a few prepared segments
//! (consecutive indexes) in a bounded channel ([`default_spares`]: 128 MiB of them, one to
//! four): when the writer rotates, [`Rotator::next_segment`] takes the oldest without waiting
//! and asks for a refill, and the worker prepares the next one at once, before it retires full
//! segments (their final `msync`), so the spares are ready as early as possible. With
//! [`Rotator::with_recycling`] it makes them, when it can, from files the log dropped
//! ([`Rotator::recycle`], [`vault_segment::Segment::recycle`]) instead of new ones.
//!
//! This crate decides *when* and *which*; the file work itself is `vault-segment`'s, and what a
//! rotation means for LSNs and durability is `vault-core`'s.
//!
//! ```
//! use std::sync::Arc;
//! use vault_rotate::{RotateConfig, Rotator};
//! use vault_segment::FsStorage;
//!
//! let dir = tempfile::tempdir()?;
//! let rotator = Rotator::start(RotateConfig {
//!     dir: dir.path().to_path_buf(),
//!     segment_size: 64 * 1024,
//!     first_index: 1,
//!     storage: Arc::new(FsStorage),
//!     io: vault_segment::IoPath::Mmap,
//!     ring_bytes: vault_segment::DEFAULT_RING_BYTES,
//! })?;
//! let next = rotator.next_segment()?; // prepared in the background
//! assert_eq!(next.index(), 1);
//! rotator.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

// The code lives in `rotator.rs` so that vault-core's unit tests can compile it from source
// with loom underneath (see `vault-core/src/sync.rs`); this file is only the crate's face.
mod rotator;
mod sync;

pub use rotator::{default_spares, Error, Result, RotateConfig, RotateStats, Rotator, SPARE_BYTES};

#[cfg(test)]
mod models;
