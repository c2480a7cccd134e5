//! The `Wal`: appends from many threads, group commit, reads, truncation, recovery at open.

mod budget;
mod commit;
mod durable;
mod follow;
mod group_commit;
mod iter;
mod open;
mod truncate;
mod write_behind;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vault_buffer::PooledBuf;
use vault_segment::{
    capacity_for, frame_len, partial_crc, DirLock, FileMode, IoPath, Record, Segment,
    SegmentAppender, Storage, MARKER_FRAME_LEN,
};

use crate::error::{Error, Result};
use crate::options::{BudgetPolicy, Options, SyncPolicy};
use crate::recovery::RecoveryReport;
use crate::sync::{
    lock, try_lock, Arc, AtomicBool, AtomicU64, AtomicUsize, Condvar, JoinHandle, Mutex,
    MutexGuard, Ordering, Rotator, RwLock, StdArc,
};
pub(crate) use follow::CutWatch;

pub use budget::Room;
pub use durable::Durable;
pub use follow::Follower;
pub use iter::Iter;

/// A log sequence number: records are numbered 1, 2, 3, … in append order, without gaps.
pub type Lsn = u64;

/// A write-ahead log in one directory. `Send + Sync`: share it (for example in an `Arc`) and
/// append from any number of threads.
///
/// See the crate documentation for the life of a record and the crash semantics.
#[derive(Debug)]
pub struct Wal {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    /// The write-behind thread (direct path: write-behind with `Options::write_behind`, the
    /// memory ring's upkeep without).
    write_behind: Option<JoinHandle<()>>,
    /// What `open` found and did.
    recovery: RecoveryReport,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    options: Options,
    /// The I/O path [`Options::io`] resolved to at open.
    io: IoPath,
    /// The append lock: the tail segment's appender and what rotation needs.
    writer: Mutex<Writer>,
    /// Every segment of the log, in order; the last is the writer's tail.
    segments: RwLock<Vec<Segment>>,
    /// Group commit: at most one thread flushes at a time; others wait on `sync_done`.
    sync_state: Mutex<SyncState>,
    sync_done: Condvar,
    /// `SyncState::waiters`, mirrored (written under `sync_state`) for the gathering leader,
    /// which reads it without the lock.
    sync_waiters: AtomicUsize,
    /// Every record up to here is durable.
    durable: AtomicU64,
    /// The last published LSN (0 when the log is empty).
    last_lsn: AtomicU64,
    /// Set (with `SyncState::poison`) after a failed sync.
    poisoned: AtomicBool,
    /// Set while the last flush failed for lack of space on the direct path (not poisoned:
    /// the records are in memory); appends retry the flush before appending while it is.
    stalled: AtomicBool,
    /// Held for the whole of `truncate_front`, `truncate_back` and `reset`: one change of the
    /// segment files at a time.
    truncation: Mutex<()>,
    /// Stops the interval flusher.
    stop_flusher: Mutex<bool>,
    stop_flusher_cv: Condvar,
    counters: Counters,
    /// Followers, `wait_durable` callers and the committer wait here for appends and close.
    tail: follow::Tail,
    /// The durability completion path (`on_durable`, `wait_durable` with a timeout).
    commit: commit::Committer,
    /// Present on the direct path: full blocks written out ahead of syncs
    /// (`Options::write_behind`), or the memory ring's upkeep.
    write_behind: Option<Arc<write_behind::WriteBehind>>,
    /// Released by `close` itself, not when the last handle to this state goes: a follower
    /// may hold one after close.
    dir_lock: Mutex<Option<DirLock>>,
    /// The disk budget's bookkeeping (see `wal::budget`).
    budget: budget::Budget,
    /// Appends waiting for room under [`BudgetPolicy::Wait`], and those queued behind them,
    /// wait here with the append lock (`writer`) released.
    room_cv: Condvar,
    /// The metric handles, registered at open (see `crate::metrics`).
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::WalMetrics,
}

#[derive(Debug, Default)]
struct Counters {
    flushes: AtomicU64,
    rotations: AtomicU64,
    write_waits: AtomicU64,
    /// Ring waits of the segments the writer finished with (see `WalStats::ring_waits`).
    ring_waits: AtomicU64,
}

/// Finished direct-path segments that may wait in memory for their final write before a
/// rotation waits for the oldest (see `Wal::rotate`).
const MAX_UNWRITTEN_SEALED: usize = 2;

#[derive(Debug)]
struct Writer {
    appender: SegmentAppender,
    rotator: Option<Rotator>,
    /// Segments filled since the last flush started, with their end offsets.
    sealed: Vec<(Segment, usize)>,
    /// The highest LSN a commit marker in the log attests.
    attested: u64,
    /// Records appended since open: counted under this lock, which every append holds anyway,
    /// rather than with an atomic read-modify-write of its own.
    appends: u64,
    /// The tail's offset at the last write-behind request (`WriteBehind::chunk` steps).
    written_mark: usize,
    /// Appends waiting for room under [`BudgetPolicy::Wait`]. While any does, later appends
    /// queue behind it (on `room_cv`), so that LSNs keep the order appends got the lock in and
    /// a waiting batch keeps contiguous LSNs.
    room_waiters: usize,
    /// Payload bytes appended since open, counted as `appends` is.
    #[cfg(feature = "metrics")]
    bytes: u64,
    /// `appends` and `bytes` when they were last published to the metrics.
    #[cfg(feature = "metrics")]
    published: (u64, u64),
}

#[derive(Debug, Default)]
struct SyncState {
    in_progress: bool,
    /// Reused by each flush so that group commit allocates nothing in steady state.
    scratch: Vec<(Segment, usize)>,
    /// What failed first (`"sync"` or `"truncation"`) and how; set once, never cleared.
    poison: Option<(&'static str, StdArc<Error>)>,
    /// Threads that began waiting on `sync_done` in [`Shared::sync_through`] since the last
    /// flush ended and are still waiting. The flush's end zeroes it: the threads it wakes
    /// leave the count at once, not when each gets the lock back (until then a new leader
    /// would count them as already waiting again, and its gather would end at once).
    waiters: usize,
    /// `waiters` when the last flush ended: the threads its `notify_all` woke.
    woken: usize,
    /// How long the last flush took (its `msync`s), which bounds the next gather.
    last_flush: Duration,
    /// Flushes ended so far: a waiter that wakes with this unchanged was not counted out by a
    /// flush's end (a spurious wake-up, or a cut's `notify_all`) and leaves `waiters` itself.
    flushes_ended: u64,
}

impl SyncState {
    /// The error every caller gets once the WAL is poisoned (`None` while it is not), with the
    /// durable LSN `durable`.
    fn poisoned(&self, durable: Lsn) -> Option<Error> {
        self.poison.as_ref().map(|(during, cause)| Error::Poisoned {
            during,
            cause: StdArc::clone(cause),
            durable,
        })
    }
}

/// Counters of a [`Wal`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStats {
    /// Records appended since open.
    pub appends: u64,
    /// Flushes performed (each covers every record published before it started).
    pub flushes: u64,
    /// Segment rotations.
    pub rotations: u64,
    /// Times the writer had to wait for a segment: rotations that found none ready, records
    /// that needed an enlarged segment, and the first segment of a brand-new log.
    pub segment_waits: u64,
    /// Segments prepared by the background worker.
    pub segments_prepared: u64,
    /// Of those, segments made from a file `truncate_front` dropped
    /// ([`Options::recycle_segments`]), since the worker started (at open, or at the last
    /// `truncate_back`/`reset` that removed segments).
    pub segments_recycled: u64,
    /// Dropped files waiting in the worker's pool to be reused.
    pub recycle_pool: u64,
    /// Segments in the log now.
    pub segments: usize,
    /// The durable LSN.
    pub durable_lsn: Lsn,
    /// The last appended LSN.
    pub last_lsn: Lsn,
    /// The I/O path the WAL writes through.
    pub io_path: IoPath,
    /// Rotations that waited for an older segment's final write (direct path): more than
    /// two finished segments were still only in memory because appends outran the device.
    pub write_waits: u64,
    /// Times an appender found the direct path's memory ring full
    /// ([`Options::direct_ring_bytes`]) and wrote out blocks itself to give memory back: the
    /// syncs and write-outs of the log did not keep up. 0 on the mmap path.
    pub ring_waits: u64,
    /// Bytes of the log's files as the disk budget counts them: its segment files, plus the
    /// spares the worker keeps (counted whether prepared yet or not).
    pub disk_bytes: u64,
    /// The disk budget ([`Options::disk_budget`]); `None`: unbounded.
    pub disk_budget: Option<u64>,
    /// Appends the budget refused or made wait, since open.
    pub budget_refusals: u64,
}

/// The error of [`Wal::must_write`]: the cause, and the caller's buffer handed back untouched.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct MustWriteError {
    /// Why the write failed.
    #[source]
    pub error: Error,
    /// The buffer, still holding the record's bytes.
    pub buf: PooledBuf,
}

impl Wal {
    /// Appends one record and returns its LSN.
    ///
    /// With [`SyncPolicy::Always`] it returns once the record is durable (sharing the flush
    /// with concurrent appenders); otherwise once it is in the mapping and visible to readers.
    ///
    /// Crash semantics: a record is durable once a sync covering it returned (this call under
    /// `Always`, else [`Wal::sync`] or the interval flusher). A crash before that may lose it,
    /// and then also every later record; never an earlier durable one.
    ///
    /// # Errors
    /// [`Error::RecordTooLarge`]; [`Error::Poisoned`] after a failed sync; I/O errors of a
    /// rotation (for example a full disk); [`Error::Closed`].
    pub fn append(&self, data: &[u8]) -> Result<Lsn> {
        self.check_len(data.len())?;
        self.retry_stalled()?;
        let (lsn, wake, out) = {
            // Uncontended, the record is checksummed under the lock while it is copied
            // (`append_and_checksum`): the CPU overlaps the two (a short record's chain of
            // `crc32` instructions with its copy; a long one's checksum, 512 B at a time, with
            // the stores of its copy draining to memory). If another appender holds the lock,
            // this one checksums while it waits, so that concurrent appenders checksum in
            // parallel.
            let uncontended = try_lock(&self.shared.writer);
            let (mut w, partial) = match uncontended {
                Some(w) => (w, None),
                None => {
                    let partial = partial_crc(data);
                    (lock(&self.shared.writer), Some(partial))
                }
            };
            let mut deadline = None;
            if w.room_waiters > 0 {
                w = self.wait_turn(w, &mut deadline)?;
            }
            self.check_open()?;
            // Only `BudgetPolicy::Wait` goes through the waiting loop (see there why).
            let lsn = if let BudgetPolicy::Wait(timeout) = self.shared.options.budget_policy {
                let (g, lsn) =
                    self.append_waiting_for_room(w, data, partial, &mut deadline, false, timeout);
                w = g;
                lsn
            } else {
                self.append_locked(&mut w, data, partial)
            };
            let lsn = lsn?;
            w.appender.publish();
            w.appends += 1;
            #[cfg(feature = "metrics")]
            {
                w.bytes += data.len() as u64;
            }
            self.shared.last_lsn.store(lsn, Ordering::Release);
            let out = self.write_behind_due(&mut w);
            // Under the append lock (see `wal::follow`, "The wake-up protocol").
            (lsn, self.shared.tail.has_waiters(), out)
        };
        if wake {
            self.shared.tail.wake();
        }
        self.request_write_behind(out);
        if self.shared.options.sync == SyncPolicy::Always {
            self.shared
                .sync_through(lsn)
                .map_err(|e| e.appended_at(lsn))?;
        }
        Ok(lsn)
    }

    /// Appends several records with contiguous LSNs in one hold of the append lock; returns the
    /// first LSN (the records get `first..first + n`). Returns the next LSN for an empty batch.
    ///
    /// Crash semantics: as [`Wal::append`] per record; a crash may keep a prefix of the batch.
    ///
    /// # Errors
    /// As [`Wal::append`]; if a record is too large nothing is appended.
    pub fn append_batch<R: AsRef<[u8]>>(&self, records: &[R]) -> Result<Lsn> {
        for r in records {
            self.check_len(r.as_ref().len())?;
        }
        self.retry_stalled()?;
        let (first, last, wake, out) = {
            let mut w = lock(&self.shared.writer);
            let mut deadline = None;
            if w.room_waiters > 0 {
                w = self.wait_turn(w, &mut deadline)?;
            }
            self.check_open()?;
            let first = w.appender.next_lsn();
            let mut last = first.saturating_sub(1);
            for r in records {
                let data = r.as_ref();
                let appended = if let BudgetPolicy::Wait(timeout) =
                    self.shared.options.budget_policy
                {
                    let (g, appended) =
                        self.append_waiting_for_room(w, data, None, &mut deadline, true, timeout);
                    w = g;
                    appended
                } else {
                    self.append_locked(&mut w, data, None)
                };
                match appended {
                    Ok(lsn) => {
                        last = lsn;
                        #[cfg(feature = "metrics")]
                        {
                            w.bytes += data.len() as u64;
                        }
                    }
                    Err(e) => {
                        w.appender.publish();
                        w.appends += (last + 1).saturating_sub(first);
                        self.shared.last_lsn.store(last, Ordering::Release);
                        let wake = self.shared.tail.has_waiters();
                        drop(w);
                        if wake {
                            self.shared.tail.wake();
                        }
                        return Err(e);
                    }
                }
            }
            w.appender.publish();
            w.appends += records.len() as u64;
            self.shared.last_lsn.store(last, Ordering::Release);
            let out = self.write_behind_due(&mut w);
            (first, last, self.shared.tail.has_waiters(), out)
        };
        if wake {
            self.shared.tail.wake();
        }
        self.request_write_behind(out);
        if self.shared.options.sync == SyncPolicy::Always && last >= first {
            self.shared
                .sync_through(last)
                .map_err(|e| e.appended_at(first))?;
        }
        Ok(first)
    }

    /// Appends the bytes of a pooled buffer. "Must" means the buffer's life is settled by this
    /// call: on success it goes back to its pool (after the bytes are in the WAL, and durable
    /// under [`SyncPolicy::Always`]); on failure it comes back to the caller inside the error,
    /// bytes intact, so nothing is lost and nothing leaks.
    ///
    /// # Errors
    /// As [`Wal::append`], wrapped with the buffer in [`MustWriteError`].
    pub fn must_write(&self, buf: PooledBuf) -> Result<Lsn, MustWriteError> {
        match self.append(&buf) {
            Ok(lsn) => {
                buf.must_release();
                Ok(lsn)
            }
            Err(error) => Err(MustWriteError { error, buf }),
        }
    }

    /// Makes every record whose append returned before this call durable, across segment
    /// boundaries. Concurrent callers share one flush.
    ///
    /// Crash semantics: when this returns `Ok`, those records survive power loss: their bytes
    /// were written with `msync(MS_SYNC)` and every segment holding them has a durable directory
    /// entry (made so when the segment was installed). On error the WAL is poisoned: the
    /// kernel may have dropped the unsynced pages, and no later call reports success over them.
    ///
    /// # Errors
    /// [`Error::Poisoned`] (this failure or an earlier one).
    pub fn sync(&self) -> Result<()> {
        let target = self.shared.last_lsn.load(Ordering::Acquire);
        self.shared.sync_through(target)
    }

    /// Records from `lsn` on, in order, across segments. The iterator sees records published
    /// by the time it reaches each segment; records keep their segment mapped while held.
    ///
    /// Cost: a binary search over the segments' first LSNs (under the segment list's read lock,
    /// which also clones the handles of the segments from there on), then the segment's record
    /// index, then at most one index stride of frames (see `docs/ARCHITECTURE.md`, "The index").
    #[must_use]
    pub fn iter_from(&self, lsn: Lsn) -> Iter {
        let segs = self
            .shared
            .segments
            .read()
            .unwrap_or_else(crate::sync::PoisonError::into_inner);
        let from = segs
            .partition_point(|s| s.first_lsn() <= lsn)
            .saturating_sub(1);
        let segs = segs[from..].to_vec();
        // After the list was read (see `Iter::watching`).
        let watch = CutWatch::new(&self.shared);
        Iter::new(segs, lsn).watching(watch)
    }

    /// The record with LSN `lsn`, if it is in the log.
    ///
    /// Cost: O(log segments) to find the segment, then at most one index stride of frames
    /// read (32 records by default, 64 for 64 MiB segments); no allocation.
    #[must_use]
    pub fn read(&self, lsn: Lsn) -> Option<Record> {
        let seg = {
            let segs = self
                .shared
                .segments
                .read()
                .unwrap_or_else(crate::sync::PoisonError::into_inner);
            let i = segs
                .partition_point(|s| s.first_lsn() <= lsn)
                .checked_sub(1)?;
            segs[i].clone()
        };
        seg.records_from(lsn).next().filter(|r| r.lsn() == lsn)
    }

    /// LSN of the first record in the log (after truncation); equal to `last_lsn() + 1` when
    /// the log is empty.
    #[must_use]
    pub fn first_lsn(&self) -> Lsn {
        let segs = self
            .shared
            .segments
            .read()
            .unwrap_or_else(crate::sync::PoisonError::into_inner);
        segs.first().map_or(1, Segment::first_lsn)
    }

    /// LSN of the last appended record (0 if none ever was).
    #[must_use]
    pub fn last_lsn(&self) -> Lsn {
        self.shared.last_lsn.load(Ordering::Acquire)
    }

    /// Every record up to this LSN is durable.
    #[must_use]
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// The WAL directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> WalStats {
        let c = &self.shared.counters;
        let (disk_bytes, budget_refusals) = self.shared.budget.usage();
        let (appends, rot, ring_waits) = {
            #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
            let mut w = lock(&self.shared.writer);
            #[cfg(feature = "metrics")]
            self.shared.publish(&mut w);
            let rot = w.rotator.as_ref().map(Rotator::stats).unwrap_or_default();
            let ring = w.appender.segment().ring_waits();
            (w.appends, rot, ring)
        };
        WalStats {
            appends,
            flushes: c.flushes.load(Ordering::Relaxed),
            rotations: c.rotations.load(Ordering::Relaxed),
            segment_waits: rot.waits,
            segments_prepared: rot.prepared,
            segments_recycled: rot.recycled,
            recycle_pool: rot.pooled,
            segments: self
                .shared
                .segments
                .read()
                .unwrap_or_else(crate::sync::PoisonError::into_inner)
                .len(),
            durable_lsn: self.durable_lsn(),
            last_lsn: self.last_lsn(),
            io_path: self.shared.io,
            write_waits: c.write_waits.load(Ordering::Relaxed),
            ring_waits: c.ring_waits.load(Ordering::Relaxed) + ring_waits,
            disk_bytes,
            disk_budget: self.shared.budget.limit(),
            budget_refusals,
        }
    }

    /// Syncs everything, writes a final commit marker (so that damage anywhere in the log is
    /// reported at the next open rather than taken for a torn tail), stops the worker and
    /// releases the directory.
    ///
    /// # Errors
    /// The first error of the final syncs or of the worker.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        if let Some(f) = self.flusher.take() {
            *lock(&self.shared.stop_flusher) = true;
            self.shared.stop_flusher_cv.notify_all();
            let _ = f.join();
        }
        if let (Some(t), Some(wb)) = (self.write_behind.take(), &self.shared.write_behind) {
            wb.stop();
            let _ = t.join();
        }
        let mut result = self.sync();
        if result.is_ok() {
            let wrote = {
                let mut w = lock(&self.shared.writer);
                let durable = self.durable_lsn();
                if durable > w.attested && w.appender.append_marker(durable).is_ok() {
                    w.attested = durable;
                    w.appender.publish();
                    true
                } else {
                    false
                }
            };
            if wrote {
                // The marker adds no record: flush it directly.
                let (seg, end) = {
                    let w = lock(&self.shared.writer);
                    (w.appender.segment().clone(), w.appender.offset())
                };
                result = seg.sync_to(end).map_err(Error::from);
            }
        }
        self.closed = true;
        // Pending durability callbacks: answered after the final sync above (Ok if it covered
        // them).
        self.shared.stop_committer();
        let rotator = lock(&self.shared.writer).rotator.take();
        // Appends waiting for room see the WAL closed (the rotator is gone).
        self.shared.room_cv.notify_all();
        self.shared.budget.close();
        if let Some(r) = rotator {
            let r = r.shutdown().map_err(Error::from);
            if result.is_ok() {
                result = r;
            }
        }
        // Nothing more is published: followers read what is there, then get `Closed`.
        self.shared.tail.close();
        drop(lock(&self.shared.dir_lock).take());
        result
    }

    /// While the last flush found no space ([`Error::NoSpace`]), flushes again before an
    /// append adds to the records that wait in memory: an append either finds space for them
    /// (and goes on) or fails with nothing appended.
    fn retry_stalled(&self) -> Result<()> {
        if self.shared.stalled.load(Ordering::Acquire) {
            let last = self.shared.last_lsn.load(Ordering::Acquire);
            self.shared.sync_through(last)?;
        }
        Ok(())
    }

    fn check_len(&self, len: usize) -> Result<()> {
        let max = self.shared.options.max_record_size;
        if len > max {
            return Err(Error::RecordTooLarge { len, max });
        }
        Ok(())
    }

    /// Whether the tail crossed a write-behind chunk since the last request: then the segment
    /// and its published end to hand to the write-behind thread (after the lock is released).
    fn write_behind_due(&self, w: &mut Writer) -> Option<(Segment, usize)> {
        let chunk = self.shared.write_behind.as_ref()?.chunk;
        let end = w.appender.offset();
        if end < w.written_mark {
            // A `truncate_back` moved the tail back.
            w.written_mark = end - end % chunk;
        }
        if end - w.written_mark < chunk {
            return None;
        }
        w.written_mark = end - end % chunk;
        Some((w.appender.segment().clone(), end))
    }

    fn request_write_behind(&self, out: Option<(Segment, usize)>) {
        if let (Some((seg, end)), Some(wb)) = (out, &self.shared.write_behind) {
            wb.request(seg, end);
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.poisoned.load(Ordering::Acquire) {
            return Err(self.poison_error());
        }
        Ok(())
    }

    fn poison_error(&self) -> Error {
        self.shared.poison_error()
    }

    /// [`Wal::append_locked`] under the disk budget: under [`BudgetPolicy::Wait`], a rotation
    /// the budget refuses waits for room (without the append lock) until `deadline`, set at
    /// the first wait of this call, then tries again. Hands the lock back with the outcome.
    ///
    /// If a cut moved the log's end while this waited, a lone append goes on at the new end;
    /// in a batch (`in_batch`), whose records must have contiguous LSNs, it fails with
    /// `Err(Truncated)` and nothing of `data` is written.
    ///
    /// Out of line: the callers call [`Wal::append_locked`] themselves unless the policy is
    /// `Wait`, since moving the guard and the (large) result through a tuple on every append
    /// cost a measurable part of a small append (docs/PERFORMANCE.md, "Copy and checksum
    /// under the append lock").
    #[cold]
    #[inline(never)]
    fn append_waiting_for_room<'a>(
        &'a self,
        mut w: MutexGuard<'a, Writer>,
        data: &[u8],
        partial: Option<u32>,
        deadline: &mut Option<Instant>,
        in_batch: bool,
        timeout: Duration,
    ) -> (MutexGuard<'a, Writer>, Result<Lsn>) {
        loop {
            let needed = match self.append_locked(&mut w, data, partial) {
                Err(Error::BudgetExhausted { needed, .. }) => needed,
                r => return (w, r),
            };
            self.shared.record_disk_budget_wait();
            let next = w.appender.next_lsn();
            w.room_waiters += 1;
            let mut waited = Ok(());
            loop {
                if let Err(e) = self.check_waitable(&w) {
                    waited = Err(e);
                    break;
                }
                if self.shared.budget.room_for(needed).is_ok() {
                    break;
                }
                match self.room_wait(w, timeout, deadline) {
                    Ok(g) => w = g,
                    Err(g) => {
                        w = g;
                        waited = self.shared.budget.room_for(needed);
                        break;
                    }
                }
            }
            w.room_waiters -= 1;
            // The appends queued behind this one look again.
            self.shared.room_cv.notify_all();
            if let Err(e) = waited {
                return (w, Err(e));
            }
            if in_batch && w.appender.next_lsn() != next {
                let e = Error::Truncated {
                    lsn: next,
                    first_lsn: self.first_lsn(),
                    next_lsn: w.appender.next_lsn(),
                };
                return (w, Err(e));
            }
        }
    }

    /// Waits behind the appends that wait for room (see `Writer::room_waiters`), as long as
    /// the budget's wait allows.
    fn wait_turn<'a>(
        &'a self,
        mut w: MutexGuard<'a, Writer>,
        deadline: &mut Option<Instant>,
    ) -> Result<MutexGuard<'a, Writer>> {
        let timeout = match self.shared.options.budget_policy {
            BudgetPolicy::Wait(t) => t,
            BudgetPolicy::Fail => Duration::ZERO,
        };
        while w.room_waiters > 0 {
            self.check_waitable(&w)?;
            w = self
                .room_wait(w, timeout, deadline)
                .map_err(|_| self.shared.budget.exhausted_now())?;
        }
        Ok(w)
    }

    /// One wait on `room_cv`, ending at `deadline` (set now from `timeout` if unset; none if
    /// too far to represent). `Err` with the lock back once the deadline has passed.
    fn room_wait<'a>(
        &'a self,
        w: MutexGuard<'a, Writer>,
        timeout: Duration,
        deadline: &mut Option<Instant>,
    ) -> std::result::Result<MutexGuard<'a, Writer>, MutexGuard<'a, Writer>> {
        let now = Instant::now();
        let end = *deadline.get_or_insert_with(|| now.checked_add(timeout).unwrap_or(now));
        let left = if timeout == Duration::MAX {
            Duration::from_secs(3600)
        } else if now >= end {
            return Err(w);
        } else {
            end - now
        };
        let (w, _) = self
            .shared
            .room_cv
            .wait_timeout(w, left)
            .unwrap_or_else(crate::sync::PoisonError::into_inner);
        Ok(w)
    }

    /// Why an append waiting for room must stop waiting: the WAL closed or is poisoned.
    fn check_waitable(&self, w: &Writer) -> Result<()> {
        if w.rotator.is_none() {
            return Err(Error::Closed);
        }
        self.check_open()
    }

    /// After a truncation changed the log's segments: recounts their bytes for the budget and
    /// wakes whoever waits for room. Call without the append lock held.
    fn budget_changed(&self) {
        self.shared.budget.set(self.shared.segment_bytes());
        // Taking the append lock once orders this after every waiter's check: each is either
        // before its check (and sees the new count) or in its wait (and is notified).
        drop(lock(&self.shared.writer));
        self.shared.room_cv.notify_all();
    }

    /// Appends one frame (and a commit marker first, if a sync completed since the last one).
    /// The caller publishes.
    /// `partial` is `partial_crc(data)`, or `None` to compute it while copying.
    fn append_locked(&self, w: &mut Writer, data: &[u8], partial: Option<u32>) -> Result<Lsn> {
        let durable = self.shared.durable.load(Ordering::Acquire);
        let marker = durable > w.attested;
        let need = frame_len(data.len()) + if marker { MARKER_FRAME_LEN } else { 0 };
        if need > w.appender.room() {
            self.rotate(w, data.len())?;
        }
        if marker && w.appender.append_marker(durable).is_ok() {
            w.attested = durable;
        }
        match partial {
            Some(partial) => w.appender.append(data, partial),
            None => w.appender.append_and_checksum(data),
        }
        .map_err(|_| Error::RecordDoesNotFit { len: data.len() })
    }

    /// Seals the tail segment and continues in the next one, which the worker prepared.
    fn rotate(&self, w: &mut Writer, payload_len: usize) -> Result<()> {
        let rotator = w.rotator.as_ref().ok_or(Error::Closed)?;
        self.shared
            .budget
            .check(capacity_for(payload_len).max(self.shared.budget.normal()))?;
        let old = w.appender.segment().clone();
        let end = w.appender.offset();
        w.appender.publish();
        #[cfg(any(feature = "metrics", feature = "tracing"))]
        let waits_before = rotator.stats().waits;
        #[cfg(feature = "tracing")]
        let asked = Instant::now();
        let next = rotator.next_segment_with_capacity(capacity_for(payload_len))?;
        set_segment_mode(
            &*self.shared.options.storage,
            next.segment(),
            self.shared.options.file_mode,
        );
        #[cfg(any(feature = "metrics", feature = "tracing"))]
        {
            let waited = rotator.stats().waits - waits_before;
            #[cfg(feature = "metrics")]
            self.shared.metrics.segment_waited(waited);
            #[cfg(feature = "tracing")]
            if waited > 0 {
                tracing::debug!(
                    waited_us = u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX),
                    capacity = capacity_for(payload_len),
                    segment = next.index(),
                    "rotation waited for a segment"
                );
            }
        }
        // Taking the spare asked the worker for the next one; it prepares that first and then
        // does this segment's final sync.
        rotator.retire(old.clone(), end);
        let app = next.activate(w.appender.next_lsn());
        app.segment()
            .set_ring_bytes(self.shared.options.direct_ring_bytes);
        self.shared
            .counters
            .ring_waits
            .fetch_add(old.ring_waits(), Ordering::Relaxed);
        self.shared
            .segments
            .write()
            .unwrap_or_else(crate::sync::PoisonError::into_inner)
            .push(app.segment().clone());
        self.shared.budget.grew(app.segment().limit() as u64);
        w.sealed.push((old, end));
        w.appender = app;
        w.written_mark = 0;
        if self.shared.io == IoPath::Direct {
            // Sealed segments the worker's final sync already made durable need no flush.
            w.sealed.retain(|(s, end)| s.synced_end() < *end);
            // Back-pressure: a finished segment lives in process memory until it is written,
            // so a writer that outruns the device would grow memory without bound. Past
            // `MAX_UNWRITTEN_SEALED` of them, wait (holding the append lock, as the kernel
            // throttles a writer with too many dirty pages) for the oldest one's write.
            while w.sealed.len() > MAX_UNWRITTEN_SEALED {
                self.shared
                    .counters
                    .write_waits
                    .fetch_add(1, Ordering::Relaxed);
                // On failure the segment stays in `sealed`: the next flush then meets its
                // failed sync and poisons the WAL, so `durable` never passes its records.
                let (s, end) = &w.sealed[0];
                s.sync_to(*end)?;
                w.sealed.remove(0);
            }
            self.shared.release_durable_segments();
        }
        self.shared
            .counters
            .rotations
            .fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        {
            self.shared
                .metrics
                .rotated(w.appender.segment().is_recycled());
            self.shared.publish(w);
        }
        Ok(())
    }
}

impl Shared {
    /// Bytes of the log's segment files (their usable lengths), as the disk budget and the
    /// bytes-on-disk gauge count them.
    fn segment_bytes(&self) -> u64 {
        self.segments
            .read()
            .unwrap_or_else(crate::sync::PoisonError::into_inner)
            .iter()
            .map(|s| s.limit() as u64)
            .sum()
    }
}

/// Widens a segment the log takes to `mode` (files are created owner-only; nothing to do for
/// [`FileMode::Private`]). Best effort: it runs where a failure must not undo a step the log
/// already took (a rotation, a cut), and a segment left owner-only (on a file system without
/// Unix permissions, say) is only less readable.
fn set_segment_mode(storage: &dyn Storage, seg: &Segment, mode: FileMode) {
    if mode != FileMode::Private {
        let _ = storage.set_mode(seg.path(), mode, false);
    }
}

/// Publishing to the metrics (see `crate::metrics`).
#[cfg(feature = "metrics")]
impl Shared {
    /// Adds the appends and bytes counted since the last call to the metrics. Under the
    /// append lock.
    fn publish_appends(&self, w: &mut Writer) {
        let (records, bytes) = w.published;
        self.metrics
            .appended(w.appends - records, w.bytes.wrapping_sub(bytes));
        w.published = (w.appends, w.bytes);
    }

    /// Brings every metric up to date: [`Shared::publish_appends`] and
    /// [`Shared::publish_state`]. Under the append lock.
    fn publish(&self, w: &mut Writer) {
        self.publish_appends(w);
        self.publish_state(w);
    }

    /// Sets the gauges: bytes on disk and the durable lag. Under the append lock (which keeps
    /// the segment list and the rotator still).
    fn publish_state(&self, w: &Writer) {
        let segments = self.segment_bytes();
        // Prepared spares, and dropped files waiting in the pool to be recycled.
        let spares = w.rotator.as_ref().map_or(0, |r| {
            let s = r.stats();
            s.prepared.saturating_sub(s.handed_off) + s.pooled
        });
        self.metrics
            .disk_bytes(segments + spares * self.options.segment_size);
        let last = self.last_lsn.load(Ordering::Acquire);
        let durable = self.durable.load(Ordering::Acquire);
        self.metrics.durable_lag(last.saturating_sub(durable));
    }
}

impl Shared {
    /// The disk budget's hook: an append had to wait for space. Records
    /// `vault_disk_budget_waits_total` with the `metrics` feature, nothing without it.
    pub(crate) fn record_disk_budget_wait(&self) {
        #[cfg(feature = "metrics")]
        self.metrics.disk_budget_waited();
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Wal {
    /// A reader that starts at `lsn` and, at the end of the published log, waits for new
    /// records (see [`Follower`]). A position before [`Wal::first_lsn`] fails at the first read
    /// with [`Error::Truncated`]; a position past the end waits for that LSN.
    #[must_use]
    pub fn follow(&self, lsn: Lsn) -> Follower {
        Follower::new(Arc::clone(&self.shared), lsn)
    }

    /// Blocks until every record up to `lsn` is durable, starting a group-commit flush if none
    /// covers it, or until `timeout` passes (`None`: no limit). Returns `Ok(true)` once durable,
    /// `Ok(false)` on timeout. An `lsn` not appended yet waits for its append first.
    ///
    /// Without a timeout the flush runs on this thread (as [`Wal::sync`] does, sharing it with
    /// concurrent callers); with one it runs on the committer thread (see [`Wal::on_durable`])
    /// and this thread waits no longer than `timeout`. Allocates nothing, except that the first
    /// call with a timeout starts the committer thread.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a sync failed; [`Error::Closed`] if the WAL closed before `lsn`
    /// was appended; the spawn error if the committer cannot start.
    pub fn wait_durable(&self, lsn: Lsn, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        if timeout.is_some() && deadline.is_none() {
            // A timeout too long to represent: no limit.
            return Shared::wait_durable(&self.shared, lsn, None);
        }
        Shared::wait_durable(&self.shared, lsn, deadline)
    }

    /// Calls `done` once every record up to `lsn` is durable (with `Ok(durable_lsn)`), or with
    /// the error if a sync fails or the WAL closes first. It never blocks the caller: a
    /// background committer thread (started by the first call) runs one group-commit flush
    /// for all pending callbacks and calls them in LSN order. Callbacks must be short and must
    /// not panic; they run on that thread. One heap allocation per call (the boxed callback).
    ///
    /// Works under every [`SyncPolicy`]: under `Always` or `Interval` the committer's flush is
    /// usually already done by someone else and costs nothing.
    ///
    /// Outcomes: `Ok(d)` (with `d >= lsn`) once durable; `Err(Poisoned)` to every callback not
    /// yet durable when a sync fails, and to those registered later; at `close`, which syncs
    /// first, `Ok` to every callback that sync covered and `Err(Closed)` to the rest (an LSN
    /// never appended). A callback that holds an `Arc<Wal>` keeps the WAL open while it is
    /// pending; if it drops the last one, the WAL closes on the committer thread.
    ///
    /// An LSN names a position in the log: if [`Wal::truncate_back`] discards the record at
    /// `lsn` before it is durable, the callback is answered once the record appended at that
    /// position after the cut is durable (as a Raft log position is).
    pub fn on_durable<F>(&self, lsn: Lsn, done: F)
    where
        F: FnOnce(Result<Lsn>) + Send + 'static,
    {
        Shared::register_durable(&self.shared, lsn, Box::new(done));
    }

    /// A future that resolves once every record up to `lsn` is durable: `on_durable` for async
    /// code, with any executor (it needs only std's `Future` and `Waker`; no thread per waiter,
    /// no polling). Append under [`SyncPolicy::Manual`] or [`SyncPolicy::Interval`], whose
    /// `append` returns the LSN without waiting for a sync, then await this.
    ///
    /// Nothing happens until it is polled. Polled while `lsn` is not durable, it leaves its
    /// waker with the committer (see [`Wal::on_durable`]), which runs one group-commit flush
    /// for every pending future and callback and wakes the futures it covered; under `Manual`
    /// that flush is the one that makes the record durable, under `Always` or `Interval` it is
    /// usually someone else's already. An `lsn` not appended yet waits for its append first.
    ///
    /// The future owns a handle to the WAL's state (it is `Send + 'static`), so it may outlive
    /// this borrow and even the `Wal`, which then closes it with `Closed`. Dropping it cancels
    /// nothing: the flush it started and every other waiter go on, and its waker slot is
    /// released. Allocates nothing in steady state (the first poll that must wait starts the
    /// committer thread; the committer's table of waker slots grows to the most futures ever
    /// pending at once, then is reused).
    ///
    /// Outcomes: `Ok(d)` (with `d >= lsn`, the durable LSN) once durable; `Err(Poisoned)` if a
    /// sync failed before that; `Err(Closed)` if the WAL closed first (close syncs, so this
    /// means `lsn` was never appended); the spawn error if the committer cannot start. An LSN
    /// names a position in the log, as for [`Wal::on_durable`] and [`Wal::wait_durable`]: if
    /// [`Wal::truncate_back`] discards the record at `lsn` before it is durable, the future
    /// resolves once the record appended at that position after the cut is durable.
    ///
    /// Crash semantics: `Ok` means a sync covering `lsn` returned, so the record survives
    /// power loss, as after [`Wal::sync`].
    ///
    /// ```
    /// use vault_core::{Options, SyncPolicy, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default().with_sync(SyncPolicy::Manual))?;
    /// let lsn = wal.append(b"acknowledge me once durable")?; // returns at once
    /// let durable = futures::executor::block_on(wal.durable(lsn))?; // or `.await` in a task
    /// assert!(durable >= lsn && wal.durable_lsn() >= lsn);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn durable(&self, lsn: Lsn) -> Durable {
        Durable::new(Arc::clone(&self.shared), lsn)
    }

    /// A future that resolves once the log has room under its disk budget
    /// ([`Options::disk_budget`]) for the segment the last refused append needed (a normal
    /// one, or an enlarged one for a large record): the async form of
    /// [`BudgetPolicy::Wait`]. With [`BudgetPolicy::Fail`], an async producer appends, and on
    /// [`Error::BudgetExhausted`] awaits this and appends again; nothing blocks a runtime
    /// thread. Without a budget it resolves at once.
    ///
    /// Room comes only from truncations (`truncate_front` once the records are consumed,
    /// `truncate_back`, `reset`), which wake it; like [`Wal::durable`] it needs only std's
    /// `Future` and `Waker`, holds a handle to the WAL's state (`Send + 'static`), and
    /// dropping it cancels nothing. Room is not reserved: another appender may take it first,
    /// and then the append fails again and the caller awaits again.
    ///
    /// Outcomes: `Ok(())` once a segment fits; `Err(Closed)` if the WAL closed first.
    ///
    /// ```
    /// use vault_core::{BudgetPolicy, Error, Options, SyncPolicy, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let opts = Options::default()
    ///     .with_segment_size(64 << 10)
    ///     .with_spare_segments(1)
    ///     .with_sync(SyncPolicy::Manual);
    /// let opts = opts.clone().with_disk_budget(opts.min_disk_budget(), BudgetPolicy::Fail);
    /// let wal = Wal::open(dir.path(), opts)?;
    /// let record = [7u8; 1000];
    /// let lsn = loop {
    ///     match wal.append(&record) {
    ///         Err(Error::BudgetExhausted { .. }) => break wal.last_lsn(), // two segments full
    ///         r => r?,
    ///     };
    /// };
    /// let room = wal.room();
    /// wal.truncate_front(lsn)?; // the consumer is done with everything before `lsn`
    /// futures::executor::block_on(room)?; // `.await` in a task
    /// wal.append(&record)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn room(&self) -> Room {
        Room::new(Arc::clone(&self.shared))
    }
}
