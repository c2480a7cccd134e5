//! vault: a write-ahead log for programs that must put bytes on disk fast, lose none that they
//! were told are durable, and read them back in order after a crash.
//!
//! This crate is the [`Wal`] users depend on. It combines the segment files of `vault-segment`,
//! the background rotation worker of `vault-rotate` and the buffer pool of `vault-buffer`, and
//! owns recovery. It is not a database: records are opaque bytes numbered by LSN.
//!
//! ```
//! use vault_core::{Options, SyncPolicy, Wal};
//!
//! let dir = tempfile::tempdir()?;
//! let wal = Wal::open(dir.path(), Options::default().with_sync(SyncPolicy::Always))?;
//! let lsn = wal.append(b"first record")?; // durable when this returns
//! wal.append_batch(&[&b"two"[..], b"three"])?;
//! assert_eq!(lsn, 1);
//! let records: Vec<Vec<u8>> = wal.iter_from(1).map(|r| r.to_vec()).collect();
//! assert_eq!(records, [&b"first record"[..], b"two", b"three"]);
//! wal.close()?;
//!
//! // Reopening recovers the log and continues its LSNs.
//! let wal = Wal::open(dir.path(), Options::default())?;
//! assert_eq!((wal.recovery().records, wal.append(b"four")?), (3, 4));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The life of a record
//!
//! `append` computes the record's CRC32C outside any lock, then, under the append lock, copies
//! the framed record into the tail segment's pre-faulted mapping and publishes the new end.
//! When the tail segment is full, the writer takes the next segment the rotation worker already
//! prepared and hands the full one to the worker for its final sync. Durability comes from
//! `msync(MS_SYNC)` over the unsynced range of each segment, done by one thread for all waiting
//! appenders (group commit). Readers iterate published records straight from the mappings.
//!
//! # Reading, following the tail, and durability notifications
//!
//! [`Wal::read`] and [`Wal::iter_from`] find a record by LSN without scanning the log: a binary
//! search over the segments, then each segment's sparse record index (one entry per 32 to 64
//! records, at most 512 KiB per segment), then at most one index stride of frames.
//!
//! [`Wal::follow`] returns a [`Follower`], a reader that at the end of the log waits for the
//! next append (woken by it, no polling; appenders pay nothing when no one waits). `close` and
//! truncations wake it with a clear result ([`Error::Closed`] after the last record,
//! [`Error::Truncated`] if its position was removed).
//!
//! [`Wal::on_durable`] calls a callback once a record is durable, from a background committer
//! that runs one group-commit flush for every pending callback; [`Wal::wait_durable`] blocks
//! (with a timeout) until then; [`Wal::durable`] is a [`Durable`] future for async code, woken
//! by the same committer and usable with any executor (this crate depends on no async runtime).
//! None needs a thread per append.
//!
//! ```
//! use std::sync::mpsc;
//! use std::time::Duration;
//! use vault_core::{Options, SyncPolicy, Wal};
//!
//! let dir = tempfile::tempdir()?;
//! let wal = Wal::open(dir.path(), Options::default().with_sync(SyncPolicy::Manual))?;
//! let mut tail = wal.follow(1);
//! let lsn = wal.append(b"replicate me")?;
//! let rec = tail.next_timeout(Duration::from_secs(1))?.expect("published");
//! assert_eq!((rec.lsn(), rec.data()), (lsn, &b"replicate me"[..]));
//!
//! let (tx, rx) = mpsc::channel();
//! wal.on_durable(lsn, move |durable| tx.send(durable.is_ok()).unwrap());
//! assert!(rx.recv()?); // called by the committer after its msync returned
//! assert!(wal.wait_durable(lsn, Some(Duration::from_secs(1)))?);
//!
//! // In async code: append (it returns at once under `Manual`), then await durability.
//! let next = wal.append(b"acknowledge me")?;
//! let durable = futures::executor::block_on(wal.durable(next))?; // `.await` in a task
//! assert!(durable >= next);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Metrics and tracing
//!
//! Two cargo features, both off by default (with neither, this crate depends on neither facade
//! and compiles none of their calls). `metrics` records through the `metrics` facade into the
//! recorder installed before [`Wal::open`]: the names, their labels and when each is recorded
//! are in [`metrics`]. `tracing` emits `tracing` events for open and recovery (the I/O path
//! chosen; what was cut or removed, and where), truncations, rotations that waited for a
//! segment (with the wait) and poisoning (with the cause); the README lists them with their
//! fields.
//!
//! # Crash semantics
//!
//! A record whose sync returned survives power loss. A crash may lose records appended after
//! the last completed sync; recovery then cuts the log at the first damaged or missing record
//! (a torn tail) and zeroes what follows. Damage that a commit marker proves to be in durable
//! records is reported as [`Error::Corruption`] naming the file and offset, never skipped. The
//! exact rule is in the docs of the recovery module (see `docs/ARCHITECTURE.md`).
#![forbid(unsafe_code)]

mod error;
pub mod metrics;
// vault-rotate's sources, built under loom for the models: see `sync.rs`. Parts of its API that
// the WAL does not use are dead code here.
#[cfg(test)]
#[allow(dead_code, unused_imports, unreachable_pub)]
mod loom_rotate;
#[cfg(test)]
mod models;
mod options;
mod read;
mod recovery;
mod sync;
mod wal;

pub use error::{CorruptionKind, Error, Result};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
pub use options::{BudgetPolicy, IoMode, Options, SyncPolicy};
pub use read::{inspect, Health, Inspection, SegmentSummary};
pub use recovery::{RecoveryReport, TornTail};
pub use vault_buffer::{Pool, PoolConfig, PoolStats, PooledBuf};
pub use vault_segment::{FileMode, FsStorage, IoPath, Record, Storage};
pub use wal::{Durable, Follower, Iter, Lsn, MustWriteError, Room, Wal, WalStats};

/// What may cross threads, checked at compile time: a `Wal` is shared by its appenders, a
/// reader or a record may be handed to another thread, and errors travel anywhere.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<Wal>();
    send_sync::<Record>();
    send_sync::<Error>();
    send_sync::<Options>();
    send_sync::<Iter>();
    send_sync::<Follower>();
    send::<Durable>();
};
