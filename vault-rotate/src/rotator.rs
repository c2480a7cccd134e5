//! The rotation worker and its handle. Every synchronisation primitive comes from the sibling
//! `sync` module, named through `super` so that this file compiles unchanged wherever it is
//! included (vault-core's unit tests build it as a module of their own crate).

use std::path::PathBuf;

use super::sync::{bounded, unbounded, Arc, AtomicU64, JoinHandle, Ordering, Receiver, Sender};
use super::sync::{StdArc, StdMutex, StdPoisonError, ThreadBuilder, TryRecvError, MAX_SPARES};
use vault_segment::{round_capacity, IoPath, PreparedSegment, Segment, SegmentHeader, Storage};

/// Errors of the rotation worker.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Preparing or retiring a segment failed.
    #[error(transparent)]
    Segment(#[from] vault_segment::Error),
    /// The worker thread is gone (it panicked or was shut down).
    #[error("the segment rotation worker has stopped")]
    WorkerGone,
    /// The worker thread could not be started.
    #[error("cannot start the segment rotation worker: {0}")]
    Spawn(#[source] std::io::Error),
    /// [`Rotator::shutdown_removing`] could not remove a segment past the log's tail.
    #[error("remove {}: {source}", path.display())]
    Remove {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the worker needs to know.
#[derive(Debug, Clone)]
pub struct RotateConfig {
    /// The WAL directory.
    pub dir: PathBuf,
    /// Capacity of each normal segment in bytes.
    pub segment_size: u64,
    /// Index of the first segment to prepare.
    pub first_index: u64,
    /// The file-system seam.
    pub storage: StdArc<dyn Storage>,
    /// How the prepared segments are written (a direct-path segment is zero-filled as well).
    pub io: IoPath,
    /// The memory bound of a direct-path segment's writes
    /// ([`vault_segment::DEFAULT_RING_BYTES`] unless the WAL sets another), set on each
    /// spare here so that the writer does not build its ring.
    pub ring_bytes: usize,
}

/// Bytes of prepared segments the worker keeps ready by default (see [`default_spares`]).
///
/// Preparing a segment (allocate, pre-fault every page, header sync, rename, directory fsync)
/// runs at a few GB/s, slower than an unsynced writer fills one (docs/PERFORMANCE.md, "Spare
/// segments", measured with `vault-bench/examples/prep_probe.rs`). One spare therefore leaves
/// the writer waiting whenever a burst spans more than one segment; 128 MiB of spares absorb a
/// burst of that size at the cost of that much disk and page cache. Writing faster than the
/// preparation rate for longer than that still waits: no number of spares changes a rate.
pub const SPARE_BYTES: u64 = 128 << 20;

/// The number of spares [`Rotator::start`] keeps ready for segments of `segment_size` bytes:
/// enough to hold [`SPARE_BYTES`], at least one, and at most four (more files would only add
/// per-file costs for small segments). Models (`cfg(test)`) cap it at two to stay small.
#[must_use]
pub fn default_spares(segment_size: u64) -> usize {
    let n = SPARE_BYTES.div_ceil(segment_size.max(1));
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_SPARES)
}

/// Counters of the worker and of the writer's hand-offs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotateStats {
    /// Segments prepared by the worker.
    pub prepared: u64,
    /// Segments handed to the writer.
    pub handed_off: u64,
    /// Hand-offs where the writer had to wait (no prepared segment was ready, or the record
    /// needed a larger segment than the worker prepares).
    pub waits: u64,
    /// Segments retired (final sync done) by the worker.
    pub retired: u64,
    /// Retirements whose final sync failed.
    pub retire_failures: u64,
    /// Segments prepared by reusing a dropped file (counted in `prepared` too).
    pub recycled: u64,
    /// Dropped files handed over for reuse and not used yet.
    pub pooled: u64,
}

#[derive(Debug, Default)]
struct Counters {
    prepared: AtomicU64,
    handed_off: AtomicU64,
    waits: AtomicU64,
    retired: AtomicU64,
    retire_failures: AtomicU64,
    recycled: AtomicU64,
    /// Dropped files reserved with [`Rotator::reserve_recycling`] and not yet used or given
    /// up: the pool the bound applies to.
    pooled: AtomicU64,
}

enum Request {
    /// The writer took a prepared segment from the slot: prepare the next one.
    Refill,
    /// The writer took a failure from the slot: try again. Only this ends the worker's pause
    /// after a failure, so the slot holds at most one failure, and the item after a failure
    /// the writer took is always an attempt made after it took it.
    Retry,
    /// Final sync of a full segment up to `end`, then drop the worker's handle.
    Retire(Segment, usize),
    /// A file the log dropped, renamed out of it (a `-pre` name), to reuse for a later
    /// segment.
    Recycle(PathBuf),
}

/// Handle to the rotation worker. Dropping it stops the worker (as [`Rotator::shutdown`] does,
/// without reporting).
#[derive(Debug)]
pub struct Rotator {
    ready: Option<Receiver<Result<PreparedSegment>>>,
    requests: Option<Sender<Request>>,
    worker: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    config: RotateConfig,
    /// A spare taken from the worker whose enlargement failed: its index is still the next
    /// one, so the next hand-off must use it.
    owed: StdMutex<Option<Owed>>,
    /// How many dropped files the pool may hold (0: no recycling).
    recycle_limit: u64,
}

/// The index the next hand-off owes after a failed enlargement.
#[derive(Debug)]
enum Owed {
    /// The spare itself, untouched (the enlargement failed before replacing its file): the
    /// next hand-off takes it as it is if it is large enough, with no file-system work. After
    /// a full disk this matters: the space freed then must not be needed for this index again
    /// while the worker's spares (of later indexes) take it.
    Kept(PreparedSegment),
    /// Only its header: its file was replaced (by the larger one, whose directory fsync
    /// failed), so the next hand-off prepares the index again (under the same name, replacing
    /// that file) on the writer's thread.
    Lost(SegmentHeader),
}

impl Rotator {
    /// Starts the worker with [`default_spares`] spares; it immediately prepares segment
    /// `first_index` and the ones after it.
    ///
    /// # Errors
    /// [`Error::Spawn`] if the thread cannot start.
    pub fn start(config: RotateConfig) -> Result<Self> {
        let spares = default_spares(config.segment_size);
        Self::start_with_spares(config, spares)
    }

    /// Starts the worker keeping up to `spares` (at least 1) prepared segments ready, with
    /// consecutive indexes from `first_index` on. It prepares them one after the other, first
    /// whenever the writer has taken one, and does retirements only while every slot is full.
    ///
    /// # Errors
    /// [`Error::Spawn`] if the thread cannot start.
    pub fn start_with_spares(config: RotateConfig, spares: usize) -> Result<Self> {
        let spares = spares.max(1);
        // `spares` slots: the worker keeps them filled and refills one each time the writer
        // takes one, so at most `spares` prepared segments exist.
        let (ready_tx, ready_rx) = bounded(spares);
        let (req_tx, req_rx) = unbounded();
        let counters = Arc::new(Counters::default());
        let worker = {
            let config = config.clone();
            let counters = Arc::clone(&counters);
            ThreadBuilder::new()
                .name("vault-rotate".into())
                .spawn(move || run(&config, spares, &ready_tx, &req_rx, &counters))
                .map_err(Error::Spawn)?
        };
        Ok(Self {
            ready: Some(ready_rx),
            requests: Some(req_tx),
            worker: Some(worker),
            counters,
            config,
            owed: StdMutex::new(None),
            recycle_limit: 0,
        })
    }

    /// Lets the worker reuse up to `n` files the log dropped (see [`Rotator::recycle`]);
    /// 0 (the default) turns recycling off.
    #[must_use]
    pub fn with_recycling(mut self, n: usize) -> Self {
        self.recycle_limit = n as u64;
        self
    }

    /// Reserves a place in the pool of dropped files to reuse: `true` if the pool has room
    /// (then hand the file over with [`Rotator::recycle`], or give the place back with
    /// [`Rotator::unreserve_recycling`]), `false` if the file should be removed instead.
    #[must_use]
    pub fn reserve_recycling(&self) -> bool {
        self.requests.is_some()
            && self
                .counters
                .pooled
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.recycle_limit).then_some(n + 1)
                })
                .is_ok()
    }

    /// Gives back a place [`Rotator::reserve_recycling`] reserved, for a file that was not
    /// handed over after all.
    pub fn unreserve_recycling(&self) {
        self.counters.pooled.fetch_sub(1, Ordering::AcqRel);
    }

    /// Hands over a dropped file, which the caller renamed out of the log to a `-pre` name
    /// (and made that durable), for a place reserved with [`Rotator::reserve_recycling`]. The
    /// worker makes a later segment of it ([`Segment::recycle`]) instead of allocating a new
    /// file; a file it cannot use is removed. Files still pooled when the worker stops are
    /// removed then (and a `-pre` file left by a crash is removed by `open`).
    pub fn recycle(&self, path: PathBuf) {
        let sent = self
            .requests
            .as_ref()
            .is_some_and(|tx| tx.send(Request::Recycle(path.clone())).is_ok());
        if !sent {
            self.unreserve_recycling();
            let _ = self.config.storage.remove(&path);
        }
    }

    /// Takes the next prepared segment: at once if the worker has one ready (the normal case),
    /// else waits for it and counts the wait.
    ///
    /// # Errors
    /// The worker's error if preparing failed (for example a full disk); the worker tries again
    /// for the next call. [`Error::WorkerGone`] if it stopped.
    pub fn next_segment(&self) -> Result<PreparedSegment> {
        self.next_segment_with_capacity(0)
    }

    fn take_spare(&self) -> Result<PreparedSegment> {
        let ready = self.ready.as_ref().ok_or(Error::WorkerGone)?;
        let got = match ready.try_recv() {
            Ok(Ok(seg)) => Ok(seg),
            // A failure that finished before this call may be stale (a full disk may have
            // space again): ask for a fresh attempt and report that one instead.
            Ok(Err(_)) => {
                self.counters.waits.fetch_add(1, Ordering::Relaxed);
                let tx = self.requests.as_ref().ok_or(Error::WorkerGone)?;
                tx.send(Request::Retry).map_err(|_| Error::WorkerGone)?;
                ready.recv().map_err(|_| Error::WorkerGone)?
            }
            Err(TryRecvError::Empty) => {
                self.counters.waits.fetch_add(1, Ordering::Relaxed);
                ready.recv().map_err(|_| Error::WorkerGone)?
            }
            Err(TryRecvError::Disconnected) => return Err(Error::WorkerGone),
        };
        if let Some(tx) = &self.requests {
            // The worker is gone if this fails; the next call reports it.
            let _ = tx.send(if got.is_ok() {
                Request::Refill
            } else {
                Request::Retry
            });
        }
        got
    }

    /// Takes the next segment, enlarged on this thread if it holds fewer than `min_capacity`
    /// bytes (a record larger than a normal segment). Enlarging counts as a wait. If an
    /// enlargement fails, the segment's index is not lost: the next call uses that index
    /// rather than the worker's spare. It hands over the untouched segment when the failure
    /// left it intact (a full disk: no new space is needed for it) and it is large enough,
    /// and otherwise prepares the index again on this thread (counted as a wait).
    ///
    /// # Errors
    /// As [`Rotator::next_segment`], plus I/O errors of the enlargement.
    pub fn next_segment_with_capacity(&self, min_capacity: u64) -> Result<PreparedSegment> {
        let storage = &*self.config.storage;
        let mut owed = self.owed.lock().unwrap_or_else(StdPoisonError::into_inner);
        let seg = match owed.take() {
            Some(Owed::Kept(seg)) => seg,
            Some(Owed::Lost(h)) => {
                self.counters.waits.fetch_add(1, Ordering::Relaxed);
                let capacity = min_capacity.max(self.config.segment_size);
                return match PreparedSegment::recreate(
                    storage,
                    &self.config.dir,
                    &h,
                    capacity,
                    self.config.io,
                ) {
                    Ok(seg) => {
                        self.counters.handed_off.fetch_add(1, Ordering::Relaxed);
                        Ok(seg)
                    }
                    Err(e) => {
                        *owed = Some(Owed::Lost(h));
                        Err(e.into())
                    }
                };
            }
            None => self.take_spare()?,
        };
        // Counted here, once the writer gets it: a spare whose enlargement fails is handed
        // off when the segment of its index finally is.
        if seg.limit() as u64 >= min_capacity {
            self.counters.handed_off.fetch_add(1, Ordering::Relaxed);
            return Ok(seg);
        }
        self.counters.waits.fetch_add(1, Ordering::Relaxed);
        let h = *seg.segment().header();
        let bigger = seg
            .enlarge(storage, &self.config.dir, min_capacity)
            .map_err(|(e, kept)| {
                // The worker has moved on to the next index; this one must still come next.
                *owed = Some(kept.map_or(Owed::Lost(h), Owed::Kept));
                Error::from(e)
            })?;
        self.counters.handed_off.fetch_add(1, Ordering::Relaxed);
        Ok(bigger)
    }

    /// Hands a full segment to the worker for its final sync of `[.., end)`. A failure there
    /// marks the segment failed, so the WAL's next sync of it reports the error.
    pub fn retire(&self, segment: Segment, end: usize) {
        if let Some(tx) = &self.requests {
            // A send fails only if the worker is gone; the WAL's own sync still covers the
            // segment, so nothing is lost by dropping the request.
            let _ = tx.send(Request::Retire(segment, end));
        }
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> RotateStats {
        let c = &self.counters;
        RotateStats {
            prepared: c.prepared.load(Ordering::Relaxed),
            handed_off: c.handed_off.load(Ordering::Relaxed),
            waits: c.waits.load(Ordering::Relaxed),
            retired: c.retired.load(Ordering::Relaxed),
            retire_failures: c.retire_failures.load(Ordering::Relaxed),
            recycled: c.recycled.load(Ordering::Relaxed),
            pooled: c.pooled.load(Ordering::Relaxed),
        }
    }

    /// Stops the worker: it finishes pending retirements, removes the spare segment it
    /// prepared but never handed over (and syncs the directory), and exits. The file of an
    /// index owed after a failed enlargement, if still there, is removed too.
    ///
    /// # Errors
    /// [`Error::WorkerGone`] if the worker panicked.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop(false)
    }

    /// As [`Rotator::shutdown`], but a spare (or owed index's file) that could not be removed
    /// is an error ([`Error::Remove`]). For a writer that goes on to remove segments below
    /// them (`truncate_back`): left in place, they would lie past a gap of indexes.
    ///
    /// # Errors
    /// [`Error::Remove`]; [`Error::WorkerGone`] if the worker panicked.
    pub fn shutdown_removing(mut self) -> Result<()> {
        self.stop(true)
    }

    fn stop(&mut self, strict: bool) -> Result<()> {
        let mut failed: Option<Error> = None;
        // Disconnecting the request channel wakes the worker wherever it waits. The slot's
        // receiver stays alive until the worker has exited, so a spare the worker was still
        // preparing lands in the slot and is removed below with any other; the worker's own
        // removal (when its send fails) covers a `Rotator` whose slot is already gone.
        drop(self.requests.take());
        let spare = self.worker.take().map(JoinHandle::join);
        if let Some(ready) = self.ready.take() {
            let mut spares = Vec::new();
            while let Ok(made) = ready.try_recv() {
                if let Ok(p) = made {
                    spares.push(p.segment().path().to_path_buf());
                }
            }
            // Newest first, stopping at the first failure: the spares have consecutive
            // indexes after the log's tail, and removing an older one while a newer one stays
            // would leave a gap that the next open refuses as a missing segment. (A prefix of
            // the removals is what a power cut before the directory fsync keeps.)
            let storage = &*self.config.storage;
            let mut removed = false;
            for path in spares.into_iter().rev() {
                if let Err(source) = storage.remove(&path) {
                    failed.get_or_insert(Error::Remove { path, source });
                    break;
                }
                removed = true;
            }
            if removed {
                let _ = storage.sync_dir(&self.config.dir);
            }
        }
        // An index owed after a failed enlargement may still have its file (the spare the
        // enlargement started from, if the new file failed before its rename). It lies past
        // the log's tail; remove it too, after the spare (newest first), so that a writer that
        // restarts the worker at a lower index (after `truncate_back` removed segments) leaves
        // no segment beyond a gap of indexes.
        let owed = self
            .owed
            .lock()
            .unwrap_or_else(StdPoisonError::into_inner)
            .take();
        // Not after a failed removal of a spare: that spare would then sit beyond a gap.
        if let Some(owed) = owed.filter(|_| failed.is_none()) {
            let storage = &*self.config.storage;
            let path = match owed {
                Owed::Kept(seg) => seg.segment().path().to_path_buf(),
                Owed::Lost(h) => self.config.dir.join(vault_segment::segment_file_name(
                    h.created_nanos,
                    h.index,
                    false,
                )),
            };
            match storage.remove(&path) {
                Ok(()) => {
                    let _ = storage.sync_dir(&self.config.dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    failed.get_or_insert(Error::Remove { path, source });
                }
            }
        }
        match (spare, failed) {
            (Some(Err(_)), _) => Err(Error::WorkerGone),
            (_, Some(e)) if strict => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for Rotator {
    fn drop(&mut self) {
        let _ = self.stop(false);
    }
}

fn run(
    config: &RotateConfig,
    spares: usize,
    ready: &Sender<Result<PreparedSegment>>,
    requests: &Receiver<Request>,
    counters: &Counters,
) {
    let storage = &*config.storage;
    let mut index = config.first_index;
    // Prepared segments (or failures) sent and not yet taken: the writer sends one request
    // for every item it takes from the slot, so this never exceeds `spares` and a send below
    // never blocks.
    let mut in_slot = 0usize;
    // The last preparation failed: try again only when the writer has taken that failure
    // (its `Retry`), so the slot never holds a stale failure behind a newer one. (A `Refill`
    // for a segment taken earlier does not count: with one, several failures of the same
    // full disk could queue up, and the "fresh" attempt a writer waits for after freeing
    // space would be one of them.)
    let mut failed = false;
    let mut retire_later = Vec::new();
    // Dropped files to reuse, oldest first.
    let mut pool = std::collections::VecDeque::new();
    loop {
        // Everything already asked for, without waiting.
        loop {
            match requests.try_recv() {
                Ok(req) => note(req, &mut in_slot, &mut failed, &mut retire_later, &mut pool),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    for req in retire_later.drain(..) {
                        retire(req, config, counters);
                    }
                    drain_pool(&mut pool, config, counters);
                    return;
                }
            }
        }
        // A retirement the writer has made needless (it synced the segment itself, or a
        // flush did) is dropped now, not when its turn comes: its handle may be all that
        // keeps a direct-path segment's memory (the writer replaces durable segments with
        // read-only mappings), and turns come only while every slot is full, which a writer
        // that outruns preparation never lets happen.
        retire_later.retain(|req| match req {
            Request::Retire(seg, end) if seg.synced_end() >= *end => {
                counters.retired.fetch_add(1, Ordering::Relaxed);
                false
            }
            _ => true,
        });
        if in_slot < spares && !failed {
            // A free slot: preparing comes first, retirements (background write-back of
            // full segments, which a sync of the WAL also covers) wait until the slots are
            // full.
            let made = prepare(config, index, &mut pool, counters);
            if made.is_ok() {
                index += 1;
                counters.prepared.fetch_add(1, Ordering::Relaxed);
            } else {
                failed = true;
            }
            if let Err(back) = ready.send(made.map_err(Error::from)) {
                // Shut down: remove the spare so the directory holds only segments of the log.
                if let Ok(spare) = back.into_inner() {
                    let path = spare.segment().path().to_path_buf();
                    drop(spare);
                    if storage.remove(&path).is_ok() {
                        let _ = storage.sync_dir(&config.dir);
                    }
                }
                break;
            }
            in_slot += 1;
            continue;
        }
        // Every slot is full: one retirement, then look at the requests again.
        if !retire_later.is_empty() {
            retire(retire_later.remove(0), config, counters);
            continue;
        }
        // Nothing to do: sleep until the writer takes a spare or hands over a full segment.
        match requests.recv() {
            Ok(req) => note(req, &mut in_slot, &mut failed, &mut retire_later, &mut pool),
            Err(_) => break,
        }
    }
    for req in retire_later.drain(..).chain(requests.iter()) {
        retire(req, config, counters);
    }
    drain_pool(&mut pool, config, counters);
}

/// Prepares segment `index`: from the oldest dropped file in `pool` if there is one (a file
/// that cannot be reused is removed, and the next one or a new file is tried), else from a
/// new file.
fn prepare(
    config: &RotateConfig,
    index: u64,
    pool: &mut std::collections::VecDeque<PathBuf>,
    counters: &Counters,
) -> vault_segment::Result<PreparedSegment> {
    let storage = &*config.storage;
    while let Some(from) = pool.pop_front() {
        counters.pooled.fetch_sub(1, Ordering::AcqRel);
        let capacity = round_capacity(config.segment_size);
        // On failure `recycle` has removed the file; a new one is made below.
        if let Ok(seg) = Segment::recycle(storage, &config.dir, &from, index, capacity, config.io) {
            counters.recycled.fetch_add(1, Ordering::Relaxed);
            seg.segment().set_ring_bytes(config.ring_bytes);
            return Ok(seg);
        }
    }
    let made = Segment::create(storage, &config.dir, index, config.segment_size, config.io)?;
    made.segment().set_ring_bytes(config.ring_bytes);
    Ok(made)
}

/// Removes the dropped files still pooled (the worker stops). They carry `-pre` names, so
/// the removals need no directory sync: a file a crash brings back is removed by `open`.
fn drain_pool(
    pool: &mut std::collections::VecDeque<PathBuf>,
    config: &RotateConfig,
    counters: &Counters,
) {
    for path in pool.drain(..) {
        counters.pooled.fetch_sub(1, Ordering::AcqRel);
        let _ = config.storage.remove(&path);
    }
}

/// Books one request: a `Refill` frees a slot, a `Retry` frees one and allows a new attempt
/// after a failure, a dropped file joins the pool, a retirement waits in `later`.
fn note(
    req: Request,
    in_slot: &mut usize,
    failed: &mut bool,
    later: &mut Vec<Request>,
    pool: &mut std::collections::VecDeque<PathBuf>,
) {
    match req {
        Request::Refill => *in_slot = in_slot.saturating_sub(1),
        Request::Retry => {
            *in_slot = in_slot.saturating_sub(1);
            *failed = false;
        }
        Request::Recycle(path) => pool.push_back(path),
        other @ Request::Retire(..) => later.push(other),
    }
}

fn retire(req: Request, config: &RotateConfig, counters: &Counters) {
    match req {
        Request::Refill | Request::Retry => {}
        Request::Recycle(path) => {
            // Only met once the worker stops: nothing will reuse the file.
            counters.pooled.fetch_sub(1, Ordering::AcqRel);
            let _ = config.storage.remove(&path);
        }
        Request::Retire(seg, end) => {
            if seg.sync_to(end).is_ok() {
                counters.retired.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.retire_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
