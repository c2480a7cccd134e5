//! Group commit: one thread flushes for every appender waiting on durability, and the
//! interval flusher of `SyncPolicy::Interval`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vault_segment::{is_no_space, Access, IoPath, Segment};

use crate::error::{Error, Result};
use crate::sync::{lock, Arc, JoinHandle, Ordering, StdArc, ThreadBuilder};

use super::{Lsn, Shared};

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
/// saves: on tmpfs a gather cost more records/s than it won (docs/PERFORMANCE.md, "Group
/// commit: where the scaling goes").
#[cfg_attr(test, allow(dead_code))]
const GATHER_MIN_FLUSH: Duration = Duration::from_micros(20);

impl Shared {
    /// Group commit: returns once every record up to `target` is durable. One caller at a
    /// time flushes everything published so far; the others wait for it and return if it
    /// covered them, or take the next turn.
    pub(super) fn sync_through(&self, target: Lsn) -> Result<()> {
        let sh = self;
        loop {
            if sh.durable.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            let mut st = lock(&sh.sync_state);
            loop {
                if let Some(e) = st.poisoned(sh.durable.load(Ordering::Acquire)) {
                    return Err(e);
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
    /// so each flush carries about half the writers' records (docs/PERFORMANCE.md, "Group
    /// commit: where the scaling goes").
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
    pub(super) fn release_durable_segments(&self) {
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

pub(super) fn start_flusher(shared: Arc<Shared>, every: Duration) -> Result<JoinHandle<()>> {
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
