//! Truncation: dropping whole segments at the front (`truncate_front`), and cutting the back
//! of the log (`truncate_back`, `reset`).

use std::path::PathBuf;

use vault_segment::{Segment, DATA_OFFSET};

use crate::error::{Error, Result};
use crate::sync::{lock, Ordering, RotateConfig, Rotator, StdArc};

use super::{set_segment_mode, Lsn, Wal};

impl Wal {
    /// Drops whole segments that hold only records before `lsn` (after a checkpoint); the
    /// segment the writer appends to is never dropped. Returns the number of segments removed.
    ///
    /// A dropped file is recycled rather than removed while the rotation worker's pool has
    /// room ([`Options::recycle_segments`](crate::Options::recycle_segments)) and nothing else holds it (no reader keeps one of
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
    /// Readers: an [`Iter`](crate::Iter) made before the call stops before `lsn` once the call has changed
    /// the log; a [`Record`](crate::Record) it returned earlier keeps its bytes (the old file stays mapped
    /// and is never written). An `append` racing the call may get an LSN that the call then
    /// discards (under [`SyncPolicy::Always`](crate::SyncPolicy::Always) it then returns once the kept records are
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
                if let Some(e) = st.poisoned(sh.durable.load(Ordering::Acquire)) {
                    return Err(e);
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
}
