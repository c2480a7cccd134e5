//! A bounded pool of reusable byte buffers for vault's write path.
//!
//! Encoding a record needs a scratch `Vec<u8>`; allocating one per record is
//! the cost this crate removes. A [`Pool`] lends out [`PooledBuf`]s, takes
//! them back cleared, and lends them out again, so in steady state
//! [`Pool::get`] does not touch the allocator.
//!
//! What it is not: not an allocator, not a memory limit on what callers hold
//! (`get` never blocks or fails; it allocates when nothing idle is left), and
//! not a zeroing pool (a released buffer gets length 0, but its old bytes are
//! not overwritten; safe code cannot read them).
//!
//! # Life cycle of a buffer
//!
//! 1. [`Pool::get`] pops an idle buffer (a *hit*) or allocates one with
//!    [`PoolConfig::initial_capacity`] (a *miss*). Either way it has length 0.
//! 2. The caller writes into it, through `Vec<u8>` methods or
//!    [`std::io::Write`]. It may grow.
//! 3. The caller ends the loan in one of three ways:
//!    - [`PooledBuf::must_release`]: hand it back now.
//!    - Drop it: exactly the same as `must_release`.
//!    - [`PooledBuf::into_vec`]: keep the bytes; the pool forgets the buffer.
//! 4. A buffer handed back is cleared (length 0, capacity kept) and kept idle
//!    for the next `get`, unless the pool already holds
//!    [`PoolConfig::max_buffers`] idle buffers or the buffer grew beyond
//!    [`PoolConfig::max_capacity`]. Then it is freed and counted as
//!    [`PoolStats::dropped`]. So the pool never keeps more than
//!    `max_buffers * max_capacity` bytes of idle capacity.
//!
//! # What "must" means in `must_release`
//!
//! `must_release` takes the buffer by value: after the call the caller no
//! longer has it. Writing to it afterwards, or releasing it a second time, is
//! a compile error (use of a moved value), not a runtime check, so this crate
//! has no test for it. It does not panic and cannot fail. Dropping a
//! [`PooledBuf`] runs the very same release, so a buffer lost on an early
//! return or a panic still goes back to the pool; `must_release` exists to
//! make the hand-back visible where it happens.
//!
//! # Example
//!
//! ```
//! use std::io::Write;
//!
//! use vault_buffer::{Pool, PoolConfig};
//!
//! let pool = Pool::new(PoolConfig {
//!     max_buffers: 2,
//!     initial_capacity: 64,
//!     max_capacity: 4096,
//! })?;
//!
//! let mut buf = pool.get(); // a miss: nothing idle yet
//! buf.write_all(b"record")?;
//! assert_eq!(buf.as_slice(), b"record");
//! buf.must_release(); // back to the pool, cleared
//! // buf.must_release(); // would not compile: `buf` was moved
//!
//! let again = pool.get(); // a hit: the same allocation, empty again
//! assert!(again.is_empty());
//! assert!(again.capacity() >= 64);
//!
//! let stats = pool.stats();
//! assert_eq!((stats.gets, stats.hits, stats.misses), (2, 1, 1));
//! assert_eq!(stats.outstanding, 1);
//!
//! drop(again); // the same as `again.must_release()`
//! assert_eq!(pool.idle(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Concurrency
//!
//! [`Pool`] and [`PooledBuf`] are `Send + Sync`. A `Pool` is a cheap,
//! cloneable handle. The idle set is a lock-free bounded queue, preallocated
//! by [`Pool::new`]; counters are relaxed atomics, so [`Pool::stats`] is exact
//! only when no other thread is using the pool.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]
#![warn(clippy::pedantic)]

mod config;
mod error;
mod pool;
mod sync;

pub use config::PoolConfig;
pub use error::{Error, Result};
pub use pool::{Pool, PoolStats, PooledBuf};
