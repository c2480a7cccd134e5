//! Tail-following readers: [`Follower`], and the [`Tail`] through which appends, truncations
//! and `close` wake the threads that wait for them.
//!
//! # The wake-up protocol
//!
//! An appender must pay nothing when nobody waits: no lock but its own, no fence, no syscall.
//! So appenders do not notify unconditionally; they look at a count of waiters while they
//! still hold the append lock (`Shared::writer`), and waiters count themselves under that lock:
//!
//! ```text
//! appender                                   waiter (holds Tail::state from ① to the wait)
//!   lock writer                                ① lock state
//!   publish; last_lsn.store(Release)           ② lock writer; waiters += 1; unlock writer
//!   n = waiters.load(Relaxed); unlock writer   ③ if ready() (last_lsn ≥ wanted …): return
//!   if n > 0: lock state; unlock; notify_all   ④ condvar wait (unlocks state atomically)
//! ```
//!
//! The append lock orders the two critical sections: if the waiter's ② came first, its count
//! happens before the appender's load, which sees it and notifies; if the appender's came
//! first, its `last_lsn` store happens before the waiter's ③, which sees it and does not
//! sleep. The notification cannot fall between ③ and ④: it first takes `state`, which the
//! waiter holds from ① until the wait releases it. Loom checks this (`models.rs`: a lost
//! wake-up is a deadlock there). With no waiter, the appender's cost is one plain load inside
//! the lock it holds anyway. (Before, the appender ran a `SeqCst` fence after unlocking and the
//! waiter counted itself with a `SeqCst` RMW and fence, a Dekker pair: the fence was a third
//! locked instruction per append, ~10-37 % of `Wal::append`'s own samples in a profile.)
//!
//! Lock order: `state`, then the append lock; nothing takes `state` while holding the append
//! lock. Wakers that are not appends (`on_durable`, `wait_durable` with a deadline, which must
//! wake the committer) change what the waiter's `ready()` reads under another mutex
//! (`commit.state`); that mutex orders them the same way (see [`Tail::has_waiters`]).

use std::time::{Duration, Instant};

use vault_segment::{Record, Records};

use super::Shared;
use crate::error::{Error, Result};
use crate::sync::{lock, Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering};
use crate::Lsn;

/// How many recent truncations of the log's end [`CutLog`] remembers exactly.
const CUTS_KEPT: usize = 8;

/// What waiting readers wait on, and what tells them the log changed under them.
#[derive(Debug)]
pub(crate) struct Tail {
    /// Threads in [`Tail::wait`] (followers, `wait_durable` callers, the committer).
    waiters: AtomicU64,
    /// Held by a waiter from before it counts itself until its wait releases it; taken by a
    /// waker before it notifies (see the module docs).
    state: Mutex<()>,
    cv: Condvar,
    /// Bumped by [`Shared::readers_changed`]: a reader that sees it change rechecks its position.
    changes: AtomicU64,
    /// Set by `close` once nothing more will be published.
    closed: AtomicBool,
    /// Recent cuts of the log's end (`truncate_back`, `reset`).
    cuts: Mutex<CutLog>,
}

/// The cuts of the log's end since open: `epoch` counts them, `recent` holds the last
/// [`CUTS_KEPT`] as `(epoch, first discarded LSN)`.
#[derive(Debug, Default)]
struct CutLog {
    epoch: u64,
    recent: [(u64, Lsn); CUTS_KEPT],
}

impl CutLog {
    /// Notes a cut that discarded `first_discarded..`; returns its epoch.
    fn note(&mut self, first_discarded: Lsn) -> u64 {
        self.epoch += 1;
        let slot = usize::try_from(self.epoch % CUTS_KEPT as u64).unwrap_or(0);
        self.recent[slot] = (self.epoch, first_discarded);
        self.epoch
    }

    /// The lowest first-discarded LSN of the cuts after `seen`, `None` if there were none. If
    /// more cuts happened than are kept, 0: the caller cannot tell, so it must assume the worst.
    fn lowest_since(&self, seen: u64) -> Option<Lsn> {
        if self.epoch == seen {
            return None;
        }
        if self.epoch - seen > CUTS_KEPT as u64 {
            return Some(0);
        }
        self.recent
            .iter()
            .filter(|(e, _)| *e > seen && *e <= self.epoch)
            .map(|&(_, lsn)| lsn)
            .min()
    }
}

/// What an [`Iter`](crate::Iter) over a live `Wal` checks before it returns a record: the
/// cuts of the log's end since the iterator read the segment list. A cut marks the segment
/// handles in the list (`discard_from`), but not those `truncate_front` dropped earlier, which
/// an older iterator may still hold; this catches those. Cost per record: one atomic load.
#[derive(Debug)]
pub(crate) struct CutWatch {
    shared: Arc<Shared>,
    /// The cut epoch and change count when last checked.
    epoch: u64,
    changes: u64,
    /// Records from here on were discarded by a cut since the iterator was made.
    limit: Lsn,
}

impl CutWatch {
    /// Call after reading the segment list: a cut notes itself before it switches the list,
    /// so one that the list already shows is in the epoch read here (and not counted again).
    pub(super) fn new(shared: &Arc<Shared>) -> Self {
        let changes = shared.tail.changes.load(Ordering::Acquire);
        let epoch = lock(&shared.tail.cuts).epoch;
        Self {
            shared: Arc::clone(shared),
            epoch,
            changes,
            limit: Lsn::MAX,
        }
    }

    /// Whether the record `lsn`, read from a handle of the log as it was, is still the log's.
    pub(crate) fn allows(&mut self, lsn: Lsn) -> bool {
        let changes = self.shared.tail.changes.load(Ordering::Acquire);
        if changes != self.changes {
            self.changes = changes;
            let cuts = lock(&self.shared.tail.cuts);
            if let Some(cut) = cuts.lowest_since(self.epoch) {
                self.limit = self.limit.min(cut);
            }
            self.epoch = cuts.epoch;
        }
        lsn < self.limit
    }
}

impl Tail {
    pub(crate) fn new() -> Self {
        Self {
            waiters: AtomicU64::new(0),
            state: Mutex::new(()),
            cv: Condvar::new(),
            changes: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            cuts: Mutex::new(CutLog::default()),
        }
    }

    /// Whether any thread is in [`Tail::wait`]. An appender calls it while it holds the append
    /// lock, after it published and stored `last_lsn`, and calls [`Tail::wake`] after
    /// unlocking if it returned `true`.
    ///
    /// `Relaxed` suffices: a waiter counts itself under the append lock, so either its count
    /// happens before this load (through the lock) or the appender's `last_lsn` store happens
    /// before the waiter's `ready()` (module docs). The same holds for a caller that changed
    /// what a waiter's `ready()` reads under another mutex that `ready()` takes after the waiter
    /// counted itself (`commit.state` for the committer), and loads after unlocking it.
    #[inline]
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::Relaxed) != 0
    }

    /// Wakes every waiter.
    pub(crate) fn wake(&self) {
        drop(lock(&self.state));
        self.cv.notify_all();
    }

    /// Waits until `ready()` holds (checked first, then after every wake-up) or `deadline`
    /// passes (`None`: no limit). Returns whether `ready()` held. `ready` must become true only
    /// through a store that is followed by a [`Tail::has_waiters`] check (and a [`Tail::wake`]
    /// if it says so) as the module docs describe, or by an unconditional [`Tail::wake`].
    /// `appends` is the append lock (`Shared::writer`), taken briefly to count this waiter.
    pub(crate) fn wait<T>(
        &self,
        appends: &Mutex<T>,
        deadline: Option<Instant>,
        ready: impl Fn() -> bool,
    ) -> bool {
        let mut guard = lock(&self.state);
        {
            let _appends = lock(appends);
            // Relaxed: the append lock orders this with the appenders' loads (module docs).
            self.waiters.fetch_add(1, Ordering::Relaxed);
        }
        let ok = loop {
            if ready() {
                break true;
            }
            match deadline {
                None => {
                    guard = self
                        .cv
                        .wait(guard)
                        .unwrap_or_else(crate::sync::PoisonError::into_inner);
                }
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left == Duration::ZERO {
                        break false;
                    }
                    guard = self
                        .cv
                        .wait_timeout(guard, left)
                        .unwrap_or_else(crate::sync::PoisonError::into_inner)
                        .0;
                }
            }
        };
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        ok
    }

    /// Marks the WAL closed and wakes everyone.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn cut_epoch(&self) -> u64 {
        lock(&self.cuts).epoch
    }
}

impl Shared {
    /// Tells readers the log changed under them (`truncate_front`, `truncate_back`, `reset`):
    /// every waiting follower wakes, and every follower rechecks its position (see
    /// [`Shared::position_lost`]) before it reads again. Call it after the change is visible
    /// (segments removed from the list, `last_lsn` lowered, the cut noted with
    /// [`Shared::note_cut`]).
    pub(crate) fn readers_changed(&self) {
        self.tail.changes.fetch_add(1, Ordering::AcqRel);
        self.tail.wake();
    }

    /// Records that the records `first_discarded..` were discarded (`truncate_back(lsn)`:
    /// `lsn`; `reset`: the old first LSN). Call it before lowering `last_lsn` or rewriting a
    /// byte, then [`Shared::readers_changed`] once the cut is done. Followers that had read
    /// past it get [`Error::Truncated`].
    pub(crate) fn note_cut(&self, first_discarded: Lsn) {
        lock(&self.tail.cuts).note(first_discarded);
        self.tail.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// The one check of "is a reader at `next` still in the log": `Some(Truncated)` if
    /// `truncate_front` removed `next` (it is before the first LSN) or if a cut of the log's
    /// end since the reader's `cut_epoch` discarded a record it already read (it read
    /// `start..next`, not empty, and the cut's first discarded LSN is below `next`; a cut
    /// leaves every LSN from its first discarded one to the old end, so that range holds
    /// `next - 1`). On `None`, `cut_epoch` advances to now.
    ///
    /// State read: the first segment's first LSN (`segments`), `last_lsn`, and the
    /// [`CutLog`] (`note_cut`).
    fn position_lost(&self, start: Lsn, next: Lsn, cut_epoch: &mut u64) -> Option<Error> {
        let first = {
            let segs = self
                .segments
                .read()
                .unwrap_or_else(crate::sync::PoisonError::into_inner);
            segs.first().map_or(1, vault_segment::Segment::first_lsn)
        };
        let next_lsn = self.last_lsn.load(Ordering::Acquire) + 1;
        let truncated = Error::Truncated {
            lsn: next,
            first_lsn: first,
            next_lsn,
        };
        if next < first {
            return Some(truncated);
        }
        let cuts = lock(&self.tail.cuts);
        match cuts.lowest_since(*cut_epoch) {
            Some(cut) if cut < next && start < next => Some(truncated),
            _ => {
                *cut_epoch = cuts.epoch;
                None
            }
        }
    }
}

/// A tail-following reader from [`Wal::follow`](crate::Wal::follow): it yields records in LSN
/// order and, at the end of the published log, waits for appends (woken by them, without
/// polling).
///
/// It sees every record as soon as it is published (visible to readers), not when it is
/// durable: use [`Wal::durable_lsn`](crate::Wal::durable_lsn) or
/// [`Wal::wait_durable`](crate::Wal::wait_durable) if only durable records may leave.
///
/// Resources: a follower holds the WAL's shared state (its segment mappings) until it has
/// reported [`Error::Closed`] or is dropped. Closing the WAL does not wait for followers: it
/// stops every thread, releases the directory lock (the directory can be reopened at once) and
/// wakes them; they read what was published, then get `Closed` and let go of the mappings.
#[derive(Debug)]
pub struct Follower {
    shared: Option<Arc<Shared>>,
    /// The LSN of the record the next call returns.
    next: Lsn,
    /// The LSN it started at: it has returned `start..next`.
    start: Lsn,
    /// The segment being read, from `next` on, up to the published end last seen.
    current: Option<Records>,
    /// `Tail::changes` when the position was last checked.
    seen_changes: u64,
    /// The cut epoch when the position was last checked.
    cut_epoch: u64,
}

impl Follower {
    pub(super) fn new(shared: Arc<Shared>, next: Lsn) -> Self {
        let seen_changes = shared.tail.changes.load(Ordering::Acquire);
        let mut cut_epoch = shared.tail.cut_epoch();
        // A follower starting before the first LSN fails at its first read, as one overtaken
        // by `truncate_front` would.
        let lost = shared.position_lost(next, next, &mut cut_epoch).is_some();
        Self {
            shared: Some(shared),
            next,
            start: next,
            current: None,
            seen_changes: if lost {
                seen_changes.wrapping_sub(1)
            } else {
                seen_changes
            },
            cut_epoch,
        }
    }

    /// The next record: waits up to `timeout` for one to be appended. `Ok(None)` on timeout.
    ///
    /// # Errors
    /// [`Error::Closed`] once the WAL is closed and every published record was read;
    /// [`Error::Truncated`] if the reader's position was removed by a truncation.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Record>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(r) = self.try_next()? {
                return Ok(Some(r));
            }
            let Some(sh) = self.shared.as_ref() else {
                return Err(Error::Closed);
            };
            let (next, seen) = (self.next, self.seen_changes);
            let tail = &sh.tail;
            let woken = tail.wait(&sh.writer, deadline, || {
                sh.last_lsn.load(Ordering::Acquire) >= next
                    || tail.changes.load(Ordering::Acquire) != seen
                    || tail.is_closed()
            });
            if !woken {
                // One last look: an append may have landed as the time ran out.
                return self.try_next();
            }
        }
    }

    /// The next record if one is published now, without waiting.
    ///
    /// # Errors
    /// As [`Follower::next_timeout`].
    pub fn try_next(&mut self) -> Result<Option<Record>> {
        let Some(sh) = self.shared.as_ref() else {
            return Err(Error::Closed);
        };
        let changes = sh.tail.changes.load(Ordering::Acquire);
        if changes != self.seen_changes {
            if let Some(e) = sh.position_lost(self.start, self.next, &mut self.cut_epoch) {
                return Err(e);
            }
            self.seen_changes = changes;
            // The segment read may have been cut or removed: look it up again.
            self.current = None;
        }
        let mut looked_up = false;
        loop {
            if let Some(r) = self.current.as_mut() {
                if let Some(rec) = r.next() {
                    self.next = rec.lsn() + 1;
                    return Ok(Some(rec));
                }
                if r.extend_to_published() {
                    continue;
                }
            }
            // Nothing more in the segment read. `closed` is loaded before `last_lsn`: once it
            // is set nothing more is appended, so a `last_lsn` below `next` is final.
            let closed = sh.tail.is_closed();
            if sh.last_lsn.load(Ordering::Acquire) < self.next {
                if closed {
                    self.shared = None;
                    self.current = None;
                    return Err(Error::Closed);
                }
                return Ok(None);
            }
            if looked_up {
                // Published, yet not where the segment list says: the log is changing under
                // us (a truncation in progress). The next call rechecks.
                return Ok(None);
            }
            // The `last_lsn` just loaded may come from appends after a cut that began after
            // this call loaded `changes` above: recheck the position before looking it up, or
            // a record appended after the cut would follow discarded ones already returned.
            let changes = sh.tail.changes.load(Ordering::Acquire);
            if changes != self.seen_changes {
                if let Some(e) = sh.position_lost(self.start, self.next, &mut self.cut_epoch) {
                    return Err(e);
                }
                self.seen_changes = changes;
            }
            // `next` is published (its segment was in the list before `last_lsn` said so).
            looked_up = true;
            let seg = {
                let segs = sh
                    .segments
                    .read()
                    .unwrap_or_else(crate::sync::PoisonError::into_inner);
                let i = segs
                    .partition_point(|s| s.first_lsn() <= self.next)
                    .saturating_sub(1);
                segs.get(i).cloned()
            };
            let Some(seg) = seg else { return Ok(None) };
            if seg.first_lsn() > self.next {
                let mut epoch = self.cut_epoch;
                return Err(sh
                    .position_lost(self.start, self.next, &mut epoch)
                    .unwrap_or(Error::Truncated {
                        lsn: self.next,
                        first_lsn: seg.first_lsn(),
                        next_lsn: sh.last_lsn.load(Ordering::Acquire) + 1,
                    }));
            }
            self.current = Some(seg.records_from(self.next));
        }
    }

    /// The LSN of the record the next call returns.
    #[must_use]
    pub fn position(&self) -> Lsn {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc as StdArc;

    use vault_segment::sim::SimStorage;

    use super::CutLog;
    use crate::sync::model;
    use crate::{Error, Options, SyncPolicy, Wal};

    #[test]
    fn the_cut_log_reports_the_lowest_cut_since_an_epoch_or_zero_when_it_forgot() {
        let mut log = CutLog::default();
        let e1 = log.note(50);
        log.note(70);
        let e3 = log.note(60);
        assert_eq!(log.lowest_since(e3), None);
        assert_eq!(log.lowest_since(e1), Some(60));
        assert_eq!(log.lowest_since(0), Some(50));
        for lsn in 100..110 {
            log.note(lsn);
        }
        assert_eq!(
            log.lowest_since(e1),
            Some(0),
            "more cuts than kept: assume the worst"
        );
        assert_eq!(log.lowest_since(log.epoch - 2), Some(108));
    }

    /// What `truncate_back`/`reset` do for readers (`note_cut`, then `readers_changed`): a
    /// follower that already returned a discarded record gets `Truncated`; one positioned at
    /// the cut, or before it, reads on. (Single-threaded, under loom only because a `Wal` in
    /// this crate's unit tests needs loom's types.)
    #[test]
    fn a_cut_below_a_followers_position_makes_it_truncated() {
        model(|| {
            let sim = SimStorage::new();
            let opts = Options::default()
                .with_segment_size(4096)
                .with_sync(SyncPolicy::Manual)
                .with_storage(StdArc::new(sim.clone()));
            let wal = Wal::open("/wal", opts).unwrap();
            for i in 0..4u8 {
                wal.append(&[i; 8]).unwrap();
            }
            let mut past = wal.follow(1);
            for lsn in 1..=4 {
                assert_eq!(past.try_next().unwrap().unwrap().lsn(), lsn);
            }
            let mut at = wal.follow(3);
            let mut before = wal.follow(1);
            wal.shared.note_cut(3);
            wal.shared.readers_changed();
            assert!(matches!(
                past.try_next(),
                Err(Error::Truncated { lsn: 5, .. })
            ));
            assert_eq!(at.try_next().unwrap().unwrap().lsn(), 3);
            assert_eq!(before.try_next().unwrap().unwrap().lsn(), 1);
        });
    }
}
