//! The `Wal`: appends from many threads, group commit, reads, truncation, recovery at open.

mod budget;
mod commit;
mod durable;
mod follow;
mod write_behind;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vault_buffer::PooledBuf;
use vault_segment::{
    capacity_for, frame_len, is_no_space, partial_crc, Access, DirLock, FileMode, IoPath, Record,
    Segment, SegmentAppender, Storage, DATA_OFFSET, MARKER_FRAME_LEN,
};

use crate::error::{Error, Result};
use crate::options::{BudgetPolicy, Options, SyncPolicy};
use crate::read::Iter;
use crate::recovery::{analyse, RecoveryReport};
use crate::sync::{
    lock, try_lock, Arc, AtomicBool, AtomicU64, AtomicUsize, Condvar, JoinHandle, Mutex,
    MutexGuard, Ordering, RotateConfig, Rotator, RwLock, StdArc, ThreadBuilder,
};
pub(crate) use follow::CutWatch;

pub use budget::Room;
pub use durable::Durable;
pub use follow::Follower;

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

/// Group commit's gather (see [`Shared::gather`]): the longest a leader waits for the threads
/// the previous flush released, and the longest it waits with no new record published; each
/// also at most a fraction of the last flush's time, so that on a device that syncs in a few
/// microseconds the gather stays a small part of a commit.
#[cfg_attr(test, allow(dead_code))] // the gather is left out under loom
const GATHER_MAX: Duration = Duration::from_micros(50);
#[cfg_attr(test, allow(dead_code))]
const GATHER_PATIENCE: Duration = Duration::from_micros(10);
/// No gather after a flush quicker than this (tmpfs, a battery-backed cache): one yield, which
/// may hand the CPU to another thread for a while, would then cost more than the flush it
/// saves. Measured on tmpfs, 256 B sync each: gathering there halved the records/s at 4 and 8
/// threads.
#[cfg_attr(test, allow(dead_code))]
const GATHER_MIN_FLUSH: Duration = Duration::from_micros(20);

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
    /// Opens (creating if missing) the WAL in `dir` and recovers it.
    ///
    /// Takes an exclusive lock on the directory, removes half-made `-pre` segments, reads every
    /// segment (see the recovery rule in the crate docs), cuts a torn tail by zeroing it,
    /// removes segments past the tail, syncs everything it keeps, and starts the rotation
    /// worker. The returned WAL appends after the last valid record.
    ///
    /// Crash semantics: recovery only zeroes bytes past the last valid record and removes
    /// files past it, then syncs the data and the directory before returning; a crash during
    /// `open` leaves a directory that the next `open` recovers the same way.
    ///
    /// # Errors
    /// [`Error::Locked`] if another `Wal` holds the directory; [`Error::Corruption`] naming file
    /// and offset if bytes before the tail are damaged (nothing is modified then);
    /// [`Error::Io`] for I/O failures; [`Error::InvalidOptions`].
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<(Self, RecoveryReport)> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!("vault_open", dir = %dir.display()).entered();
        let storage = StdArc::clone(&options.storage);
        let existed = storage.list(&dir).is_ok();
        storage
            .create_dir_all(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
        if !existed && options.file_mode != FileMode::Private {
            storage
                .set_mode(&dir, options.file_mode, true)
                .map_err(|e| Error::io("set the mode of", &dir, e))?;
        }
        let dir_lock = storage.lock_dir(&dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked { dir: dir.clone() }
            } else {
                Error::io("lock", &dir, e)
            }
        })?;
        let fs = storage
            .file_system(&dir)
            .map_err(|e| Error::io("inspect the file system of", &dir, e))?;
        let io = options.io.resolve(&fs, &dir)?;
        #[cfg(feature = "tracing")]
        tracing::info!(
            requested = ?options.io,
            file_system = %fs.name,
            o_direct = fs.direct_io,
            io = %io,
            "I/O path chosen"
        );
        // The direct path reads the log through read-only mappings and makes only the tail
        // writable (below), so that the segments it never writes take no process memory.
        let access = match io {
            IoPath::Mmap => Access::Write(IoPath::Mmap),
            IoPath::Direct => Access::Read,
        };
        let mut a = analyse(&*storage, &dir, access)?;
        if let Some(problem) = a.problem {
            #[cfg(feature = "tracing")]
            tracing::error!(error = %problem, "recovery found damaged durable records; not opening");
            return Err(problem);
        }
        let mut report = RecoveryReport {
            torn_tail: a.torn.clone(),
            io_path: io,
            file_system: fs.name.clone(),
            ..RecoveryReport::default()
        };
        let mut dir_changed = false;
        for p in &a.pre {
            storage.remove(p).map_err(|e| Error::io("remove", p, e))?;
            report.removed_pre.push(p.clone());
            dir_changed = true;
        }
        // Newest first: the removals become durable in order (all at the directory fsync
        // below, or any prefix of them if power fails before it), and removing from the end
        // keeps every prefix a contiguous run of segments. Oldest first, a crash could leave
        // segment n and n + 2 without n + 1, which the next open refuses as a gap.
        for s in a.past_tail.into_iter().rev() {
            let p = s.path().to_path_buf();
            drop(s);
            storage.remove(&p).map_err(|e| Error::io("remove", &p, e))?;
            report.removed_segments.push(p);
            dir_changed = true;
        }
        if dir_changed {
            storage
                .sync_dir(&dir)
                .map_err(|e| Error::io("sync directory", &dir, e))?;
        }
        let next_index = a.kept.last().map_or(1, |s| s.segment.index() + 1);
        let rotator = Rotator::start_with_spares(
            RotateConfig {
                dir: dir.clone(),
                segment_size: options.segment_size,
                first_index: next_index,
                storage: StdArc::clone(&storage),
                io,
                ring_bytes: options.direct_ring_bytes,
            },
            options.spares(),
        )?
        .with_recycling(options.recycled_segments());
        if io == IoPath::Direct {
            if let Some(tail) = a.kept.last_mut() {
                tail.segment = tail.segment.reopen(&*storage, Access::Write(io))?;
            }
        }
        let mut segments: Vec<Segment> = a.kept.iter().map(|s| s.segment.clone()).collect();
        for s in &segments {
            set_segment_mode(&*storage, s, options.file_mode);
        }
        let appender = if let Some(tail) = a.kept.last() {
            let first = match tail.segment.first_lsn() {
                0 => a.next_lsn,
                f => f,
            };
            tail.segment
                .resume(first, a.tail_end, a.next_lsn, a.tail_dirty_end)?
        } else {
            let app = rotator.next_segment()?.activate(1);
            set_segment_mode(&*storage, app.segment(), options.file_mode);
            segments.push(app.segment().clone());
            app
        };
        appender.segment().set_ring_bytes(options.direct_ring_bytes);
        // Records read back may sit in pages a killed process dirtied: make them durable
        // before calling them so.
        for s in &segments {
            s.sync_all()?;
        }
        report.segments = segments.len();
        report.first_lsn = a.first_lsn;
        report.next_lsn = a.next_lsn;
        report.records = a.next_lsn - a.first_lsn;
        #[cfg(feature = "tracing")]
        trace_recovery(&report);
        let durable = a.next_lsn - 1;
        let log_bytes = segments.iter().map(|s| s.limit() as u64).sum();
        let budget = budget::Budget::new(&options, log_bytes);
        let shared = Arc::new(Shared {
            dir,
            io,
            writer: Mutex::new(Writer {
                appender,
                rotator: Some(rotator),
                sealed: Vec::with_capacity(8),
                attested: a.attested,
                appends: 0,
                written_mark: 0,
                room_waiters: 0,
                #[cfg(feature = "metrics")]
                bytes: 0,
                #[cfg(feature = "metrics")]
                published: (0, 0),
            }),
            segments: RwLock::new(segments),
            sync_state: Mutex::new(SyncState {
                scratch: Vec::with_capacity(8),
                ..SyncState::default()
            }),
            sync_done: Condvar::new(),
            sync_waiters: AtomicUsize::new(0),
            durable: AtomicU64::new(durable),
            last_lsn: AtomicU64::new(durable),
            poisoned: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            truncation: Mutex::new(()),
            stop_flusher: Mutex::new(false),
            stop_flusher_cv: Condvar::new(),
            counters: Counters::default(),
            tail: follow::Tail::new(),
            commit: commit::Committer::new(),
            write_behind: (io == IoPath::Direct).then(|| {
                Arc::new(if options.write_behind {
                    write_behind::WriteBehind::every_chunk()
                } else {
                    write_behind::WriteBehind::ring(options.direct_ring_bytes)
                })
            }),
            options,
            dir_lock: Mutex::new(Some(dir_lock)),
            budget,
            room_cv: Condvar::new(),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::WalMetrics::register(io),
        });
        #[cfg(feature = "metrics")]
        {
            let w = lock(&shared.writer);
            if let Some(r) = &w.rotator {
                // The first segment of a brand-new log.
                shared.metrics.segment_waited(r.stats().waits);
            }
            shared.publish_state(&w);
        }
        let flusher = match shared.options.sync {
            SyncPolicy::Interval(every) => Some(start_flusher(Arc::clone(&shared), every)?),
            _ => None,
        };
        let write_behind = match &shared.write_behind {
            Some(wb) => Some(write_behind::start(Arc::clone(wb))?),
            None => None,
        };
        Ok((
            Self {
                shared,
                flusher,
                write_behind,
                closed: false,
            },
            report,
        ))
    }

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

    /// Drops whole segments that hold only records before `lsn` (after a checkpoint); the
    /// segment the writer appends to is never dropped. Returns the number of segments removed.
    ///
    /// A dropped file is recycled rather than removed while the rotation worker's pool has
    /// room ([`Options::recycle_segments`]) and nothing else holds it (no reader keeps one of
    /// its records): it is renamed to a `-pre` name, out of the log, and handed to the worker,
    /// which makes a later segment of it. Its old records stay in the file until overwritten.
    ///
    /// Crash semantics: it first syncs, and makes sure the activation block (the first LSN) of
    /// the segment that becomes first is durable, even if a concurrent rotation activated it
    /// after that sync; then it unlinks (or renames to `-pre`) the segments oldest first and
    /// syncs the directory before returning: once it returns, the dropped files are out of
    /// the log durably, recycled or not. A crash in between leaves a prefix of them gone
    /// (a renamed one is a `-pre` file, which `open` removes), which recovery reads as a log
    /// that starts later; it never leaves a gap.
    ///
    /// # Errors
    /// [`Error::Poisoned`]; I/O errors of the removal.
    pub fn truncate_front(&self, lsn: Lsn) -> Result<usize> {
        let _one = lock(&self.shared.truncation);
        self.sync()?;
        // Only a segment whose first LSN is durable may become the first one: its activation
        // was synced with it. A segment another appender rotated into after the sync above is
        // not, and a log that began with it would not open after a power loss.
        let lsn = lsn.min(self.durable_lsn());
        let removed: Vec<Segment> = {
            let mut segs = self
                .shared
                .segments
                .write()
                .unwrap_or_else(crate::sync::PoisonError::into_inner);
            let mut n = 0;
            while n + 1 < segs.len() && segs[n + 1].first_lsn() <= lsn {
                n += 1;
            }
            if n > 0 {
                // A rotation may have activated the segment that becomes first after the sync
                // above. Its activation must be durable before the segments before it are
                // unlinked, or a power cut leaves a log that starts with an unactivated
                // segment, which recovery rejects. (A no-op unless that race happened.)
                segs[n].sync_to(DATA_OFFSET)?;
            }
            segs.drain(..n).collect()
        };
        if !removed.is_empty() {
            self.shared.readers_changed();
            // Counted as freed now: the files go below, and a failure there poisons nothing
            // but reports an error (they are no longer part of the log).
            self.budget_changed();
        }
        let storage = &*self.shared.options.storage;
        let count = removed.len();
        let recycled = self.drop_files(removed)?;
        if count > 0 {
            let synced = storage
                .sync_dir(&self.shared.dir)
                .map_err(|e| Error::io("sync directory", &self.shared.dir, e));
            let w = lock(&self.shared.writer);
            for pre in recycled {
                match (&synced, &w.rotator) {
                    (Ok(()), Some(r)) => r.recycle(pre),
                    (_, r) => {
                        if let Some(r) = r {
                            r.unreserve_recycling();
                        }
                        let _ = storage.remove(&pre);
                    }
                }
            }
            synced?;
        }
        #[cfg(feature = "metrics")]
        self.shared.publish(&mut lock(&self.shared.writer));
        #[cfg(feature = "tracing")]
        tracing::info!(
            lsn,
            removed = count,
            first_lsn = self.first_lsn(),
            "truncate_front"
        );
        Ok(count)
    }

    /// Takes the files of `removed` (segments just dropped from the front of the log) out of
    /// the directory's log, oldest first: each one the rotation worker's pool has room for,
    /// that nothing else holds and that has the normal size is renamed to its `-pre` name
    /// (returned, in order, for the worker once the directory is synced); the others are
    /// removed. Every handle of `removed` is dropped on return.
    fn drop_files(&self, removed: Vec<Segment>) -> Result<Vec<PathBuf>> {
        let storage = &*self.shared.options.storage;
        let normal = self.shared.options.segment_file_len();
        let mut recycled = Vec::new();
        for s in removed {
            let path = s.path().to_path_buf();
            let reusable = s.is_sole_handle() && s.limit() as u64 == normal;
            let h = *s.header();
            // Unmapped before the file is renamed, so the worker is its only user.
            drop(s);
            let reserved = reusable && {
                let w = lock(&self.shared.writer);
                w.rotator.as_ref().is_some_and(Rotator::reserve_recycling)
            };
            if reserved {
                let pre = self.shared.dir.join(vault_segment::segment_file_name(
                    h.created_nanos,
                    h.index,
                    true,
                ));
                if storage.rename(&path, &pre).is_ok() {
                    recycled.push(pre);
                    continue;
                }
                if let Some(r) = &lock(&self.shared.writer).rotator {
                    r.unreserve_recycling();
                }
            }
            if let Err(e) = storage.remove(&path) {
                // The files already renamed stay `-pre` files, which `open` removes.
                let w = lock(&self.shared.writer);
                for pre in recycled {
                    if let Some(r) = &w.rotator {
                        r.unreserve_recycling();
                    }
                    let _ = storage.remove(&pre);
                }
                return Err(Error::io("remove", &path, e));
            }
        }
        Ok(recycled)
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
    /// cost 6-9 ns (`append_probe`, 64 B: 27.7 ns through it, 22.0 ns without).
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

    /// Group commit: returns once every record up to `target` is durable. One caller at a
    /// time flushes everything published so far; the others wait for it and return if it
    /// covered them, or take the next turn.
    fn sync_through(&self, target: Lsn) -> Result<()> {
        let sh = self;
        loop {
            if sh.durable.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            let mut st = lock(&sh.sync_state);
            loop {
                if let Some((during, cause)) = &st.poison {
                    return Err(Error::Poisoned {
                        during,
                        cause: StdArc::clone(cause),
                        durable: sh.durable.load(Ordering::Acquire),
                    });
                }
                // A `truncate_back`/`reset` may have discarded records up to `target` (an
                // append racing it): only what is left of them can be made durable. Without
                // the clamp a flush could never cover `target` and this would loop.
                let goal = target.min(sh.last_lsn.load(Ordering::Acquire));
                if sh.durable.load(Ordering::Acquire) >= goal {
                    return Ok(());
                }
                if !st.in_progress {
                    break;
                }
                st.waiters += 1;
                sh.sync_waiters.store(st.waiters, Ordering::Release);
                let ended = st.flushes_ended;
                st = sh
                    .sync_done
                    .wait(st)
                    .unwrap_or_else(crate::sync::PoisonError::into_inner);
                if st.flushes_ended == ended {
                    st.waiters -= 1;
                    sh.sync_waiters.store(st.waiters, Ordering::Release);
                }
            }
            st.in_progress = true;
            // Gather only when the last flush woke waiting threads: they are the appenders
            // whose next records this flush should carry. A lone appender does not yield (a
            // yield on a loaded machine can cost it a time slice), except after a flush that
            // another syncer (the interval flusher, the committer) waited on: then for at
            // most `GATHER_PATIENCE` with no new record.
            let expected = st.woken;
            let last_flush = st.last_flush;
            let mut scratch = std::mem::take(&mut st.scratch);
            drop(st);
            if expected > 0 {
                self.gather(expected, last_flush);
            }
            let started = Instant::now();
            let flushed = self.flush(&mut scratch);
            let took = started.elapsed();
            scratch.clear();
            #[cfg(feature = "metrics")]
            let before = sh.durable.load(Ordering::Acquire);
            let mut st = lock(&sh.sync_state);
            st.scratch = scratch;
            st.in_progress = false;
            st.woken = st.waiters;
            st.last_flush = took;
            st.waiters = 0;
            st.flushes_ended += 1;
            sh.sync_waiters.store(0, Ordering::Release);
            match flushed {
                Ok(covered) => {
                    sh.durable.fetch_max(covered, Ordering::AcqRel);
                    sh.counters.flushes.fetch_add(1, Ordering::Relaxed);
                    sh.stalled.store(false, Ordering::Release);
                    #[cfg(feature = "metrics")]
                    {
                        // `durable` moves only under the leader's turn, which this thread holds.
                        sh.metrics.flushed(covered.saturating_sub(before), took);
                        let last = sh.last_lsn.load(Ordering::Acquire);
                        sh.metrics
                            .durable_lag(last.saturating_sub(covered.max(before)));
                    }
                }
                // The direct path with a full disk: the records are in process memory and the
                // file below the durable end is untouched, so nothing is lost and the WAL is
                // not poisoned. Appends retry the flush first until one finds space.
                Err(Error::Io { path, source, .. })
                    if sh.io == IoPath::Direct && is_no_space(&source) =>
                {
                    sh.stalled.store(true, Ordering::Release);
                    drop(st);
                    sh.sync_done.notify_all();
                    return Err(Error::NoSpace {
                        durable: sh.durable.load(Ordering::Acquire),
                        last: sh.last_lsn.load(Ordering::Acquire),
                        appended: None,
                        path,
                        source,
                    });
                }
                Err(e) => {
                    #[cfg(feature = "tracing")]
                    if st.poison.is_none() {
                        tracing::error!(
                            cause = %e,
                            durable_lsn = sh.durable.load(Ordering::Acquire),
                            "WAL poisoned: a sync failed"
                        );
                    }
                    st.poison.get_or_insert_with(|| ("sync", StdArc::new(e)));
                    sh.poisoned.store(true, Ordering::Release);
                }
            }
            drop(st);
            sh.sync_done.notify_all();
        }
    }

    /// Before a flush reads the tail, lets the threads the previous flush released publish
    /// their next records, so that this flush carries them too.
    ///
    /// Without it, group commit settles into two cohorts that ride alternate flushes: when a
    /// flush ends, a thread it did not cover (it appended during the flush) becomes the next
    /// leader at once and reads the tail before the threads the flush released have appended,
    /// so each flush carries about half the writers' records (measured: 2.1-2.4 records per
    /// flush at 4 threads, 4.1-4.4 at 8; docs/PERFORMANCE.md, "Group commit: where the scaling
    /// goes").
    ///
    /// `expected` is the number of threads the previous flush woke. Every one of them that
    /// comes back for a sync has published its record first, then waits on `sync_done` (and
    /// counts in `waiters`, which the previous flush's end zeroed); the previous leader, not
    /// among them, may come back too, so `expected` can be reached even when one of them
    /// leads. So the gather ends as soon as `expected` threads wait, and otherwise after
    /// [`GATHER_PATIENCE`] (at most an eighth of `last_flush`) with no new record, or
    /// [`GATHER_MAX`] (at most half of `last_flush`) in all: a released thread may not append
    /// again. After a flush quicker than [`GATHER_MIN_FLUSH`] it does nothing. It yields
    /// between checks, which on a machine with fewer cores than writers is what lets the
    /// released threads run.
    ///
    /// The gather changes no state, only the moment the flush reads the tail; what the flush
    /// covers and reports is unchanged, so every crash guarantee is the same. Under loom it is
    /// left out: each yield would multiply the interleavings a model explores.
    fn gather(&self, expected: usize, last_flush: Duration) {
        #[cfg(not(test))]
        {
            if last_flush < GATHER_MIN_FLUSH {
                return;
            }
            let most = GATHER_MAX.min(last_flush / 2);
            let patience = GATHER_PATIENCE.min(last_flush / 8);
            let start = Instant::now();
            let mut seen = self.last_lsn.load(Ordering::Acquire);
            let mut progress = start;
            while self.sync_waiters.load(Ordering::Acquire) < expected {
                crate::sync::yield_now();
                let now = Instant::now();
                let lsn = self.last_lsn.load(Ordering::Acquire);
                if lsn != seen {
                    seen = lsn;
                    progress = now;
                } else if now - progress >= patience {
                    break;
                }
                if now - start >= most {
                    break;
                }
            }
        }
        #[cfg(test)]
        let _ = (expected, last_flush);
    }

    /// Syncs every segment filled since the last flush and the tail up to its published end;
    /// returns the LSN this covers.
    fn flush(&self, scratch: &mut Vec<(Segment, usize)>) -> Result<Lsn> {
        let covered = {
            let mut w = lock(&self.writer);
            scratch.append(&mut w.sealed);
            scratch.push((w.appender.segment().clone(), w.appender.offset()));
            #[cfg(feature = "metrics")]
            self.publish_appends(&mut w);
            w.appender.next_lsn() - 1
        };
        for (seg, end) in scratch.iter() {
            seg.sync_to(*end)?;
        }
        if self.io == IoPath::Direct && scratch.len() > 1 {
            self.release_durable_segments();
        }
        Ok(covered)
    }

    /// On the direct path, replaces each finished segment whose records are all durable with
    /// a read-only mapping of its file, so that its process memory goes once no reader holds
    /// the old handle; readers of the new one fault in only the pages they touch. A segment
    /// that cannot be mapped keeps its memory (nothing is lost, it is only not given back).
    fn release_durable_segments(&self) {
        let mut segs = self
            .segments
            .write()
            .unwrap_or_else(crate::sync::PoisonError::into_inner);
        let Some((_tail, done)) = segs.split_last_mut() else {
            return;
        };
        for s in done.iter_mut().rev() {
            if s.io_path() != Some(IoPath::Direct) {
                // Older segments were released already.
                break;
            }
            if s.synced_end() >= s.published_end() {
                if let Ok(view) = s.reopen(&*self.options.storage, Access::Read) {
                    *s = view;
                }
            }
        }
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

/// The `tracing` events of a recovery: what `open` found and cut, and where.
#[cfg(feature = "tracing")]
fn trace_recovery(report: &RecoveryReport) {
    for p in &report.removed_pre {
        tracing::info!(file = %p.display(), "removed a half-made segment");
    }
    for p in &report.removed_segments {
        tracing::info!(file = %p.display(), "removed a segment past the tail");
    }
    if let Some(t) = &report.torn_tail {
        tracing::warn!(
            file = %t.file.display(),
            offset = t.offset,
            bytes_dropped = t.bytes_dropped,
            reason = %t.reason,
            "recovery cut a torn tail"
        );
    }
    tracing::info!(
        segments = report.segments,
        records = report.records,
        first_lsn = report.first_lsn,
        next_lsn = report.next_lsn,
        removed_pre = report.removed_pre.len(),
        removed_segments = report.removed_segments.len(),
        torn_tail = report.torn_tail.is_some(),
        bytes_dropped = report.torn_tail.as_ref().map_or(0, |t| t.bytes_dropped),
        io_path = %report.io_path,
        file_system = %report.file_system,
        "recovered"
    );
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn start_flusher(shared: Arc<Shared>, every: Duration) -> Result<JoinHandle<()>> {
    ThreadBuilder::new()
        .name("vault-flush".into())
        .spawn(move || {
            let mut stop = lock(&shared.stop_flusher);
            // The flag is checked before every wait, not only after one: `close` may set it
            // and notify while this thread is flushing (not waiting), and that notification
            // is not kept for a later wait.
            while !*stop {
                let (guard, _) = shared
                    .stop_flusher_cv
                    .wait_timeout(stop, every)
                    .unwrap_or_else(crate::sync::PoisonError::into_inner);
                stop = guard;
                if *stop {
                    return;
                }
                drop(stop);
                let target = shared.last_lsn.load(Ordering::Acquire);
                // A failure poisons the WAL; appenders and `sync` callers report it.
                let _ = shared.sync_through(target);
                stop = lock(&shared.stop_flusher);
            }
        })
        .map_err(|e| Error::io("spawn flusher for", PathBuf::new(), e))
}

// ---- Cutting the back of the log: truncate_back and reset ----

/// What [`Wal::cut`] does.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// `truncate_back(lsn)`.
    Back(Lsn),
    /// `reset(next_lsn)`.
    Reset(Lsn),
}

/// How a cut failed: before it changed anything, or after (the WAL is poisoned).
enum CutError {
    Clean(Error),
    Poison(Error),
}

impl Wal {
    /// Discards the records `lsn..` (a Raft follower's conflicting suffix); the next append gets
    /// `lsn`. A no-op if `lsn > last_lsn()`. If `lsn <= first_lsn()` the log becomes empty and
    /// continues at `lsn` (`0` counts as `1`). Afterwards `durable_lsn()` is
    /// `min(durable_lsn(), lsn - 1)` (or `lsn - 1` when no segment before the cut is left).
    ///
    /// Steps (see "Truncating the back" in docs/ARCHITECTURE.md), with appends, flushes and
    /// other truncations held off: (1) write the segment holding `lsn` again as a `-pre` file
    /// with its records before `lsn` (a byte copy, same salt) and `msync` it; (2) if segments
    /// follow it, stop the rotation worker, which removes its spare; (3) remove the later
    /// segments newest first and `fsync` the directory; (4) rename the new file over the old
    /// one, switch the in-memory log to it (appends continue after the kept records) and
    /// `fsync` the directory; (5) restart the worker at the next index. Cost: one new file and
    /// a copy of at most one segment.
    ///
    /// Crash semantics: once this returns, no crash brings a discarded record back and every
    /// record before `lsn` that was durable stays intact. A crash during the call leaves the
    /// log as before the call (with a `-pre` file `open` deletes) after step 1; the log before
    /// the call without some of its newest segments during step 3 (cut at a segment boundary
    /// at or past `lsn`: none of those segments holds a record below `lsn`); the log cut at
    /// `lsn` from the rename of step 4 on. Records below `lsn` keep their durability in
    /// every case; those in the cut segment are durable from the directory `fsync` of step 4 on
    /// (before it a crash may bring back the old file, where they need not be synced).
    ///
    /// Readers: an [`Iter`] made before the call stops before `lsn` once the call has changed
    /// the log; a [`Record`] it returned earlier keeps its bytes (the old file stays mapped
    /// and is never written). An `append` racing the call may get an LSN that the call then
    /// discards (under [`SyncPolicy::Always`] it then returns once the kept records are
    /// durable).
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a sync failed before, or if this call failed after it started
    /// changing the log (reopen to recover; the directory holds one of the states above).
    /// A failure of step 1 (for example a full disk) changes nothing and does not poison.
    /// I/O errors; [`Error::Closed`].
    pub fn truncate_back(&self, lsn: Lsn) -> Result<()> {
        self.cut(Cut::Back(lsn.max(1)))
    }

    /// Empties the log and continues it at `next_lsn` (after installing a snapshot past the end
    /// of the log, or below it); `0` counts as `1`. Afterwards `first_lsn() == next_lsn`,
    /// `last_lsn() == durable_lsn() == next_lsn - 1`.
    ///
    /// It works as [`Wal::truncate_back`] with the first segment replaced by an empty one
    /// activated at `next_lsn` and every later segment removed. Crash semantics: once it
    /// returns the old records never come back; a crash during it leaves the old log (maybe
    /// without some of its newest segments) until the rename of the first segment, and the
    /// empty log continuing at `next_lsn` from then on.
    ///
    /// # Errors
    /// As [`Wal::truncate_back`]; [`Error::InvalidOptions`] if `next_lsn` is 2⁶³ or more (a
    /// segment cannot start there).
    pub fn reset(&self, next_lsn: Lsn) -> Result<()> {
        self.cut(Cut::Reset(next_lsn.max(1)))
    }

    /// `truncate_back` and `reset`: see their docs.
    fn cut(&self, how: Cut) -> Result<()> {
        let sh = &*self.shared;
        if let Cut::Reset(n) = how {
            if n > vault_segment::format::MAX_FIRST_LSN {
                return Err(Error::LsnOutOfRange {
                    lsn: n,
                    max: vault_segment::format::MAX_FIRST_LSN,
                });
            }
        }
        let _one = lock(&sh.truncation);
        // Take the group-commit leader's turn: no flush is in flight while the log changes, so
        // none can finish afterwards and raise `durable` past the new end (its `covered` was
        // read from the old tail), and syncs wait for the cut instead of racing it.
        {
            let mut st = lock(&sh.sync_state);
            loop {
                if let Some((during, cause)) = &st.poison {
                    return Err(Error::Poisoned {
                        during,
                        cause: StdArc::clone(cause),
                        durable: sh.durable.load(Ordering::Acquire),
                    });
                }
                if !st.in_progress {
                    break;
                }
                st = sh
                    .sync_done
                    .wait(st)
                    .unwrap_or_else(crate::sync::PoisonError::into_inner);
            }
            st.in_progress = true;
        }
        let mut outcome = self.cut_locked(how);
        {
            let mut st = lock(&sh.sync_state);
            st.in_progress = false;
            if let Err(CutError::Poison(e)) = &mut outcome {
                #[cfg(feature = "tracing")]
                if st.poison.is_none() {
                    tracing::error!(
                        cause = %e,
                        durable_lsn = sh.durable.load(Ordering::Acquire),
                        "WAL poisoned: a truncation failed after it changed the log"
                    );
                }
                // The cause moves into the poison, where every caller from now on (this one
                // included, below) finds it.
                let cause = std::mem::replace(e, Error::Closed);
                st.poison
                    .get_or_insert_with(|| ("truncation", StdArc::new(cause)));
                sh.poisoned.store(true, Ordering::Release);
            }
        }
        sh.sync_done.notify_all();
        if matches!(outcome, Ok(true) | Err(CutError::Poison(_))) {
            sh.readers_changed();
            self.budget_changed();
        }
        #[cfg(feature = "metrics")]
        if matches!(outcome, Ok(true)) {
            sh.publish(&mut lock(&sh.writer));
        }
        #[cfg(feature = "tracing")]
        if let Ok(changed) = &outcome {
            match how {
                Cut::Back(lsn) => tracing::info!(lsn, changed = *changed, "truncate_back"),
                Cut::Reset(next_lsn) => tracing::info!(next_lsn, "reset"),
            }
        }
        match outcome {
            Ok(_) => Ok(()),
            Err(CutError::Clean(e)) => Err(e),
            Err(CutError::Poison(_)) => Err(self.poison_error()),
        }
    }

    /// The body of [`Wal::cut`], run as the flush leader. `Ok(true)` if the log changed.
    fn cut_locked(&self, how: Cut) -> Result<bool, CutError> {
        let sh = &*self.shared;
        let storage = &*sh.options.storage;
        let dir = &sh.dir;
        let mut w = lock(&sh.writer);
        if sh.poisoned.load(Ordering::Acquire) {
            return Err(CutError::Clean(self.poison_error()));
        }
        if w.rotator.is_none() {
            return Err(CutError::Clean(Error::Closed));
        }
        let last = w.appender.next_lsn() - 1;
        // Under the writer lock and `truncation`, nothing else changes the list.
        let segs: Vec<Segment> = sh
            .segments
            .read()
            .unwrap_or_else(crate::sync::PoisonError::into_inner)
            .clone();
        let log_first = segs.first().map_or(1, Segment::first_lsn);
        // `next`: the LSN the next append gets; `k`: the segment whose file is replaced;
        // `mark`: old handles of segments `k..` hold no record of the log from `mark` on.
        let (next, k, mark, rep) = match how {
            Cut::Back(lsn) if lsn > last => return Ok(false),
            Cut::Back(lsn) if lsn > log_first => {
                let k = segs.partition_point(|s| s.first_lsn() <= lsn) - 1;
                (lsn, k, lsn, segs[k].prepare_cut(storage, dir, lsn, sh.io))
            }
            Cut::Back(n) | Cut::Reset(n) => (
                n,
                0,
                n.min(log_first),
                segs[0].prepare_empty(storage, dir, n, sh.io),
            ),
        };
        // Nothing has changed yet: a failure here (a full disk) leaves the log as it was.
        let rep = rep.map_err(|e| CutError::Clean(e.into()))?;
        let later = &segs[k + 1..];
        if !later.is_empty() {
            // The spare (and an owed index) lie past the last segment; with the later segments
            // gone they would sit beyond a gap of indexes, which `open` refuses. The worker
            // removes them as it stops, before the segments below them are removed.
            if let Some(r) = w.rotator.take() {
                if let Err(e) = r.shutdown_removing() {
                    rep.abandon(storage);
                    return Err(CutError::Poison(e.into()));
                }
            }
            // Newest first: a crash keeps a prefix of the removals, always a contiguous log.
            for s in later.iter().rev() {
                if let Err(e) = storage.remove(s.path()) {
                    rep.abandon(storage);
                    return Err(CutError::Poison(Error::io("remove", s.path(), e)));
                }
            }
            // Durable before the rename below: the replaced segment must never be followed by
            // a later one on disk (its markers would attest records the cut file lacks).
            if let Err(e) = storage.sync_dir(dir) {
                rep.abandon(storage);
                return Err(CutError::Poison(Error::io("sync directory", dir, e)));
            }
        }
        let app = rep
            .install(storage)
            .map_err(|e| CutError::Poison(e.into()))?;
        set_segment_mode(storage, app.segment(), sh.options.file_mode);
        app.segment().set_ring_bytes(sh.options.direct_ring_bytes);
        sh.counters
            .ring_waits
            .fetch_add(w.appender.segment().ring_waits(), Ordering::Relaxed);
        // The name now holds the cut file: switch the in-memory log at once, so that even if a
        // step below fails (and poisons) no reader is shown a discarded record. Old handles
        // (held by readers) stop before the cut.
        // Followers that read past `mark` learn of it (before `last_lsn` is lowered), and only
        // once the old handles stop before it: a follower at `mark` that saw the cut (and so
        // will not be told of it again) must not then read the old record `mark`.
        for s in &segs[k..] {
            s.discard_from(mark);
        }
        sh.note_cut(mark);
        let cut_index = segs[k].index();
        w.sealed.retain(|(s, _)| s.index() < cut_index);
        {
            let mut list = sh
                .segments
                .write()
                .unwrap_or_else(crate::sync::PoisonError::into_inner);
            list.truncate(k);
            list.push(app.segment().clone());
        }
        w.appender = app;
        sh.last_lsn.store(next - 1, Ordering::Release);
        // Lower `durable` to the new end now; raise it only once the rename is durable (until
        // then a crash may bring back the old file, whose kept records need not be durable).
        // No flush is in flight (this thread holds the leader's turn), so nothing raises
        // `durable` past the new end afterwards.
        let old_durable = sh.durable.load(Ordering::Acquire).min(next - 1);
        sh.durable.store(old_durable, Ordering::Release);
        // Kept markers attest only LSNs below the cut.
        w.attested = w.attested.min(next - 1);
        storage
            .sync_dir(dir)
            .map_err(|e| CutError::Poison(Error::io("sync directory", dir, e)))?;
        // Every kept record of the replaced segment is durable (step 1 synced it, and its
        // name is durable now); with no segment before it, every record of the log is.
        if k == 0 {
            sh.durable.store(next - 1, Ordering::Release);
        }
        if w.rotator.is_none() {
            let rotator = Rotator::start_with_spares(
                RotateConfig {
                    dir: dir.clone(),
                    segment_size: sh.options.segment_size,
                    first_index: cut_index + 1,
                    storage: StdArc::clone(&sh.options.storage),
                    io: sh.io,
                    ring_bytes: sh.options.direct_ring_bytes,
                },
                sh.options.spares(),
            )
            .map_err(|e| CutError::Poison(e.into()))?
            .with_recycling(sh.options.recycled_segments());
            w.rotator = Some(rotator);
        }
        Ok(true)
    }

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
    /// let (wal, _) = Wal::open(dir.path(), Options::default().with_sync(SyncPolicy::Manual))?;
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
    /// let (wal, _) = Wal::open(dir.path(), opts)?;
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
