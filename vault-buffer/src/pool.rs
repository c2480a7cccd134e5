//! The pool and the buffer handle it lends out.

use std::fmt;
use std::io;
use std::mem;
use std::ops::{Deref, DerefMut};

use crate::config::PoolConfig;
use crate::error::Result;
use crate::sync::{Arc, AtomicU64, IdleQueue, Ordering};

/// Counters are statistics: no memory is published through them (buffers
/// change hands through the idle queue, which synchronises itself, or by
/// moving a [`PooledBuf`]), so each update needs only to be atomic.
const COUNTER: Ordering = Ordering::Relaxed;

/// A bounded pool of reusable byte buffers.
///
/// Cloning a `Pool` is cheap and yields another handle to the same pool; the
/// pool lives until the last handle and the last [`PooledBuf`] from it are
/// gone. See the [crate overview](crate) for the life cycle of a buffer.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

/// State shared by every [`Pool`] handle and every [`PooledBuf`] it lent.
struct Shared {
    config: PoolConfig,
    /// Idle buffers, each with `len() == 0` and
    /// `capacity() <= config.max_capacity`. Preallocated with
    /// `config.max_buffers` slots, so neither `pop` nor `push` allocates.
    idle: IdleQueue<Vec<u8>>,
    gets: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    outstanding: AtomicU64,
    released: AtomicU64,
    dropped: AtomicU64,
}

impl Pool {
    /// Builds an empty pool; buffers are allocated on demand by [`Pool::get`].
    ///
    /// The idle set's `config.max_buffers` slots are allocated here, once.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if
    /// `config.max_buffers` is 0 or `config.initial_capacity` exceeds
    /// `config.max_capacity`.
    pub fn new(config: PoolConfig) -> Result<Pool> {
        config.validate()?;
        let idle = IdleQueue::new(config.max_buffers);
        Ok(Pool {
            shared: Arc::new(Shared {
                config,
                idle,
                gets: AtomicU64::new(0),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                outstanding: AtomicU64::new(0),
                released: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            }),
        })
    }

    /// Lends out an empty buffer (`len() == 0`).
    ///
    /// Reuses an idle buffer if there is one (a *hit*: no allocation, and the
    /// buffer keeps the capacity it had when released). Otherwise allocates a
    /// new one with `initial_capacity` (a *miss*). Never blocks and never
    /// fails; lock-free.
    #[must_use = "dropping the buffer at once just hands it back to the pool"]
    pub fn get(&self) -> PooledBuf {
        let shared = &*self.shared;
        shared.gets.fetch_add(1, COUNTER);
        let buf = if let Some(buf) = shared.idle.pop() {
            shared.hits.fetch_add(1, COUNTER);
            buf
        } else {
            shared.misses.fetch_add(1, COUNTER);
            Vec::with_capacity(shared.config.initial_capacity)
        };
        debug_assert!(buf.is_empty(), "idle buffers are cleared on release");
        shared.outstanding.fetch_add(1, COUNTER);
        PooledBuf {
            buf,
            pool: Some(self.clone()),
        }
    }

    /// A snapshot of the pool's counters.
    ///
    /// Each counter is read atomically, but not all together: while other
    /// threads use the pool, relations between counters (such as
    /// `gets == hits + misses`) may be off by the operations in flight. They
    /// hold exactly once those operations have finished.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let shared = &*self.shared;
        PoolStats {
            gets: shared.gets.load(COUNTER),
            hits: shared.hits.load(COUNTER),
            misses: shared.misses.load(COUNTER),
            outstanding: shared.outstanding.load(COUNTER),
            released: shared.released.load(COUNTER),
            dropped: shared.dropped.load(COUNTER),
        }
    }

    /// How many buffers the pool holds idle right now; never more than
    /// `config().max_buffers`.
    #[must_use]
    pub fn idle(&self) -> usize {
        self.shared.idle.len()
    }

    /// The limits this pool was built with.
    #[must_use]
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// Takes back a buffer that was lent out: keeps it for reuse if it fits
    /// the limits, frees it otherwise.
    fn release(&self, mut buf: Vec<u8>) {
        let shared = &*self.shared;
        shared.outstanding.fetch_sub(1, COUNTER);
        if buf.capacity() > shared.config.max_capacity {
            shared.dropped.fetch_add(1, COUNTER);
            return;
        }
        buf.clear();
        // Push rather than check `len()` first: another thread may fill the
        // last slot between a check and a push, and `push` hands the buffer
        // back instead of exceeding `max_buffers`.
        match shared.idle.push(buf) {
            Ok(()) => shared.released.fetch_add(1, COUNTER),
            Err(_full) => shared.dropped.fetch_add(1, COUNTER),
        };
    }

    /// Forgets a buffer that left the pool through [`PooledBuf::into_vec`].
    fn detach(&self) {
        self.shared.outstanding.fetch_sub(1, COUNTER);
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("config", self.config())
            .field("idle", &self.idle())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Counters of a [`Pool`], as returned by [`Pool::stats`].
///
/// Every [`Pool::get`] ends up in exactly one of: still `outstanding`,
/// `released` (kept for reuse), `dropped` (freed on its way back), or detached
/// by [`PooledBuf::into_vec`]. So, once no operation is in flight,
/// `gets == hits + misses`, the number of detached buffers is
/// `gets - outstanding - released - dropped`, and
/// [`Pool::idle`] is `released - hits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Calls to [`Pool::get`].
    pub gets: u64,
    /// Gets served by reusing an idle buffer.
    pub hits: u64,
    /// Gets that had to allocate a new buffer.
    pub misses: u64,
    /// Buffers lent out and not yet released, dropped or detached.
    pub outstanding: u64,
    /// Buffers handed back (by [`PooledBuf::must_release`] or drop) and kept
    /// idle for reuse.
    pub released: u64,
    /// Buffers handed back but freed instead of kept: the idle set already
    /// held `max_buffers`, or the buffer's capacity had grown beyond
    /// `max_capacity`.
    pub dropped: u64,
}

/// A byte buffer lent out by a [`Pool`].
///
/// Use it as a `Vec<u8>` (through [`Deref`]/[`DerefMut`]) or as an
/// [`io::Write`]. When done, hand it back with [`PooledBuf::must_release`] or
/// just drop it; keep the bytes for good with [`PooledBuf::into_vec`].
pub struct PooledBuf {
    buf: Vec<u8>,
    /// `Some` for as long as the handle is alive; taken by whichever of
    /// `Drop` and `into_vec` ends the loan, so it ends exactly once.
    pool: Option<Pool>,
}

impl PooledBuf {
    /// Hands the buffer back to its pool now.
    ///
    /// "Must" means the loan ends here: `self` is consumed, so using the
    /// buffer afterwards, or releasing it twice, does not compile. The pool
    /// clears it (length 0, capacity kept) and keeps it for the next
    /// [`Pool::get`], unless the idle set is full or the buffer grew beyond
    /// `max_capacity`, in which case it is freed. Dropping a `PooledBuf` does
    /// exactly the same; calling this says so at the call site.
    pub fn must_release(self) {
        drop(self);
    }

    /// Detaches the buffer from its pool and returns it with its contents.
    ///
    /// The pool no longer counts it as outstanding, nor as released: the
    /// `Vec` is yours and is freed like any other.
    #[must_use]
    pub fn into_vec(mut self) -> Vec<u8> {
        if let Some(pool) = self.pool.take() {
            pool.detach();
        }
        // `Vec::new` does not allocate; the empty husk is dropped with `self`.
        mem::take(&mut self.buf)
    }

    /// The bytes written so far.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PooledBuf {
    /// Hands the buffer back, as [`PooledBuf::must_release`] does.
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.release(mem::take(&mut self.buf));
        }
    }
}

impl Deref for PooledBuf {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.buf
    }
}

impl DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl io::Write for PooledBuf {
    /// Appends all of `data`, growing the buffer as needed.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Nothing to flush: the bytes are already in memory.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for PooledBuf {
    /// Shows length and capacity, not the bytes, which may be many.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuf")
            .field("len", &self.buf.len())
            .field("capacity", &self.buf.capacity())
            .finish_non_exhaustive()
    }
}

/// Loom models of the pool's concurrent paths. Real-thread and property tests
/// are in `tests/`.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::model;

    fn small_pool(max_buffers: usize) -> Pool {
        Pool::new(PoolConfig {
            max_buffers,
            initial_capacity: 8,
            max_capacity: 64,
        })
        .unwrap()
    }

    #[test]
    fn racing_releases_into_one_free_slot_keep_one_and_drop_one() {
        model(|| {
            let pool = small_pool(1);
            let a = pool.get();
            let b = pool.get();
            let t = loom::thread::spawn(move || a.must_release());
            b.must_release();
            t.join().unwrap();

            let stats = pool.stats();
            assert_eq!(pool.idle(), 1);
            assert_eq!(stats.released, 1);
            assert_eq!(stats.dropped, 1);
            assert_eq!(stats.outstanding, 0);
        });
    }

    #[test]
    fn racing_get_and_release_keep_counters_consistent() {
        model(|| {
            let pool = small_pool(1);
            pool.get().must_release();

            let other = pool.clone();
            let t = loom::thread::spawn(move || {
                let mut buf = other.get();
                buf.push(1);
                assert_eq!(buf.len(), 1);
                buf.must_release();
            });
            let buf = pool.get();
            assert!(buf.is_empty());
            buf.must_release();
            t.join().unwrap();

            let stats = pool.stats();
            assert_eq!(stats.gets, 3);
            assert_eq!(stats.gets, stats.hits + stats.misses);
            // The seeded buffer is taken by whichever get comes first.
            assert!(stats.hits >= 1);
            assert_eq!(stats.outstanding, 0);
            assert_eq!(stats.released + stats.dropped, 3);
            assert!(pool.idle() <= 1);
            assert_eq!(pool.idle() as u64, stats.released - stats.hits);
        });
    }

    #[test]
    fn detach_and_release_on_two_threads_each_end_exactly_one_loan() {
        model(|| {
            let pool = small_pool(2);
            let a = pool.get();
            let b = pool.get();
            let t = loom::thread::spawn(move || a.into_vec().len());
            drop(b);
            assert_eq!(t.join().unwrap(), 0);

            let stats = pool.stats();
            assert_eq!(stats.outstanding, 0);
            assert_eq!(stats.released, 1);
            assert_eq!(stats.dropped, 0);
            assert_eq!(pool.idle(), 1);
        });
    }
}
