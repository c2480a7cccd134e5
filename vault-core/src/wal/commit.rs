//! The durability completion path: [`Wal::wait_durable`](crate::Wal::wait_durable),
//! [`Wal::on_durable`](crate::Wal::on_durable) and the [`Durable`](super::Durable) futures of
//! [`Wal::durable`](crate::Wal::durable), served by one background **committer** thread per
//! WAL, started by the first call that needs it.
//!
//! The committer sleeps on `Committer::cv` until there is work: callbacks pending, a
//! `wait_durable` caller wanting an LSN that is not durable, or an armed waker slot (see
//! `durable.rs`). It then takes one group-commit flush (`Shared::sync_through`, the same path as
//! `sync` and `SyncPolicy::Always`) up to the highest LSN wanted that is appended, takes every
//! pending callback, and calls those whose LSN is durable, in LSN order, on its own thread; the
//! rest go back to wait for the next flush. It wakes the futures whose LSN is durable (all of
//! them after a failed sync or at close) after it unlocks.
//! Callbacks registered while a flush runs are served by the next one (or by this one if it
//! already covered them). If only LSNs not appended yet are wanted, it waits for an append on
//! the [`Tail`](super::follow::Tail), like a follower.

use std::task::{Poll, Waker};
use std::time::Instant;

use super::durable::WakerSlots;
use super::Shared;
use crate::error::{Error, Result};
use crate::sync::{current_thread, lock, Arc, Condvar, JoinHandle, Mutex, Ordering, ThreadBuilder};
use crate::Lsn;

/// A callback of [`Wal::on_durable`](crate::Wal::on_durable).
pub(crate) type Callback = Box<dyn FnOnce(Result<Lsn>) + Send + 'static>;

struct Pending {
    lsn: Lsn,
    done: Callback,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("lsn", &self.lsn)
            .finish_non_exhaustive()
    }
}

/// The committer's shared state.
#[derive(Debug)]
pub(crate) struct Committer {
    state: Mutex<CommitState>,
    /// Wakes the committer (work or stop) and the `wait_durable` callers (a flush finished).
    cv: Condvar,
}

#[derive(Debug, Default)]
struct CommitState {
    pending: Vec<Pending>,
    /// The highest LSN a `wait_durable` caller waits for.
    want: Lsn,
    /// The wakers of pending `Durable` futures.
    wakers: WakerSlots,
    /// Bumped by every registration, `want` raise and arming of a waker slot: tells a committer
    /// waiting for an append that there is new work.
    requests: u64,
    stop: bool,
    thread: Option<JoinHandle<()>>,
    /// The committer could not be started (the spawn error, as text).
    spawn_failed: Option<String>,
}

impl Committer {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(CommitState::default()),
            cv: Condvar::new(),
        }
    }
}

impl Shared {
    /// Starts the committer if it is not running. Returns the spawn error if it cannot be.
    fn committer_running(this: &Arc<Self>) -> Result<()> {
        Self::committer_running_locked(this, &mut lock(&this.commit.state))
    }

    /// [`Shared::committer_running`], under `commit.state`.
    fn committer_running_locked(this: &Arc<Self>, st: &mut CommitState) -> Result<()> {
        if st.thread.is_some() {
            return Ok(());
        }
        if let Some(e) = &st.spawn_failed {
            return Err(Error::io(
                "spawn committer for",
                this.dir.clone(),
                std::io::Error::other(e.clone()),
            ));
        }
        let sh = Arc::clone(this);
        match ThreadBuilder::new()
            .name("vault-commit".into())
            .spawn(move || sh.run_committer())
        {
            Ok(h) => {
                st.thread = Some(h);
                Ok(())
            }
            Err(e) => {
                st.spawn_failed = Some(e.to_string());
                Err(Error::io("spawn committer for", this.dir.clone(), e))
            }
        }
    }

    /// `Wal::on_durable`.
    pub(crate) fn register_durable(this: &Arc<Self>, lsn: Lsn, done: Callback) {
        if let Err(e) = Self::committer_running(this) {
            done(Err(e));
            return;
        }
        let mut st = lock(&this.commit.state);
        st.pending.push(Pending { lsn, done });
        st.requests += 1;
        drop(st);
        this.commit.cv.notify_all();
        // The committer may be waiting for an append rather than on its condition variable.
        if this.tail.has_waiters() {
            this.tail.wake();
        }
    }

    /// `Wal::wait_durable`.
    pub(crate) fn wait_durable(
        this: &Arc<Self>,
        lsn: Lsn,
        deadline: Option<Instant>,
    ) -> Result<bool> {
        loop {
            if this.durable.load(Ordering::Acquire) >= lsn {
                return Ok(true);
            }
            if this.poisoned.load(Ordering::Acquire) {
                return Err(this.poison_error());
            }
            if this.last_lsn.load(Ordering::Acquire) < lsn {
                // Not appended yet: wait for the append that publishes it.
                let appended = this.tail.wait(&this.writer, deadline, || {
                    this.last_lsn.load(Ordering::Acquire) >= lsn || this.tail.is_closed()
                });
                if !appended {
                    return Ok(false);
                }
                if this.tail.is_closed() && this.last_lsn.load(Ordering::Acquire) < lsn {
                    return Err(Error::Closed);
                }
                continue;
            }
            let Some(deadline) = deadline else {
                // No time limit: take part in the group commit on this thread.
                // Not `return Ok(true)`: a `truncate_back` racing this call may have discarded
                // `lsn` (then `sync_through` stops at the new end), so check again.
                this.sync_through(lsn)?;
                continue;
            };
            // With a time limit the flush (which cannot be abandoned) runs on the committer,
            // and this thread waits for it no longer than allowed.
            Self::committer_running(this)?;
            let mut st = lock(&this.commit.state);
            if st.want < lsn {
                st.want = lsn;
                st.requests += 1;
                drop(st);
                this.commit.cv.notify_all();
                // The committer may be waiting for an append rather than on its condition
                // variable (as in `register_durable`); `Tail` before `commit.state`.
                if this.tail.has_waiters() {
                    this.tail.wake();
                }
                st = lock(&this.commit.state);
            }
            loop {
                if this.durable.load(Ordering::Acquire) >= lsn {
                    return Ok(true);
                }
                if this.poisoned.load(Ordering::Acquire) {
                    drop(st);
                    return Err(this.poison_error());
                }
                if st.stop {
                    return Err(Error::Closed);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                st = this
                    .commit
                    .cv
                    .wait_timeout(st, left)
                    .unwrap_or_else(crate::sync::PoisonError::into_inner)
                    .0;
            }
        }
    }

    /// `Durable::poll` once its LSN was not durable at a glance: resolves it, or arms its waker
    /// slot (taking one if `slot` is `None`) and starts the committer's work for it. Releases
    /// the slot when it resolves. See `durable.rs` for why no wake-up is lost.
    pub(crate) fn poll_durable(
        this: &Arc<Self>,
        lsn: Lsn,
        slot: &mut Option<usize>,
        waker: &Waker,
    ) -> Poll<Result<Lsn>> {
        let mut st = lock(&this.commit.state);
        // The look again, under the lock: a committer pass that ran since the caller's look at
        // `durable` (and so did not see this slot armed) made what it saw visible here. The
        // `stop` check is what keeps a future from arming after the committer's last pass.
        let durable = this.durable.load(Ordering::Acquire);
        let resolved = if durable >= lsn {
            Some(Outcome::Durable(durable))
        } else if this.poisoned.load(Ordering::Acquire) {
            Some(Outcome::Poisoned)
        } else if st.stop {
            Some(Outcome::Closed)
        } else {
            Self::committer_running_locked(this, &mut st)
                .err()
                .map(Outcome::Failed)
        };
        if let Some(r) = resolved {
            if let Some(i) = slot.take() {
                st.wakers.release(i);
            }
            drop(st);
            return Poll::Ready(r.into_result(this));
        }
        let new_work = st.wakers.arm(slot, lsn, waker);
        if new_work {
            st.requests += 1;
            drop(st);
            this.commit.cv.notify_all();
            // The committer may be waiting for an append (as in `register_durable`).
            if this.tail.has_waiters() {
                this.tail.wake();
            }
        }
        Poll::Pending
    }

    /// Frees a dropped `Durable`'s waker slot (a flush it asked for still runs).
    pub(crate) fn release_waker_slot(&self, slot: usize) {
        lock(&self.commit.state).wakers.release(slot);
    }

    /// Stops the committer (at close, after the final sync): it makes a last flush attempt
    /// for the callbacks pending, answers every one of them, wakes every armed `Durable`
    /// (which then resolves `Ok` or `Closed`), and exits. A `Durable` polled later sees `stop`.
    pub(crate) fn stop_committer(&self) {
        let thread = {
            let mut st = lock(&self.commit.state);
            st.stop = true;
            st.thread.take()
        };
        self.commit.cv.notify_all();
        self.tail.wake();
        if let Some(t) = thread {
            // A callback that dropped the last handle to the WAL closes it on the committer
            // itself: that thread finishes its final pass when the callback returns, and must
            // not wait for itself.
            if t.thread().id() != current_thread().id() {
                let _ = t.join();
            }
        }
    }

    /// The error every waiter gets after a failed sync.
    ///
    /// Takes `sync_state`: never call it holding `commit.state`.
    pub(crate) fn poison_error(&self) -> Error {
        let durable = self.durable.load(Ordering::Acquire);
        lock(&self.sync_state).poisoned(durable).unwrap_or_else(|| {
            // `poisoned` is set only after `poison`: not reached.
            Error::Io {
                op: "sync (the failure was not recorded)",
                path: std::path::PathBuf::new(),
                source: std::io::Error::other("unknown failure"),
            }
        })
    }

    /// The committer thread.
    fn run_committer(&self) {
        let mut batch: Vec<Pending> = Vec::new();
        // Wakers taken from `commit.state`'s slots, woken after unlocking (a waker may run
        // code that takes this lock). Reused: waking allocates nothing in steady state.
        let mut woken: Vec<Waker> = Vec::new();
        loop {
            let mut st = lock(&self.commit.state);
            let (target, stop, requests) = loop {
                let durable = self.durable.load(Ordering::Acquire);
                let highest = st.pending.iter().map(|p| p.lsn).max().unwrap_or(0);
                let target = highest.max(st.want).max(st.wakers.highest());
                // An armed future's LSN may have been made durable by another thread's flush
                // (an appender under `Always`, `sync`, the interval flusher) since the last
                // pass: it is owed a wake-up that no one else gives.
                if st.stop
                    || target > durable
                    || st.pending.iter().any(|p| p.lsn <= durable)
                    || st.wakers.any_durable(durable)
                {
                    break (target, st.stop, st.requests);
                }
                if st.want != 0 {
                    // A `wait_durable` caller's LSN may have been made durable by another
                    // thread's flush after it looked: nothing else would wake it.
                    self.commit.cv.notify_all();
                }
                st = self
                    .commit
                    .cv
                    .wait(st)
                    .unwrap_or_else(crate::sync::PoisonError::into_inner);
            };
            let lowest_wanted = st
                .pending
                .iter()
                .map(|p| p.lsn)
                .chain((st.want > self.durable.load(Ordering::Acquire)).then_some(st.want))
                .chain(st.wakers.lowest_above(self.durable.load(Ordering::Acquire)))
                .min()
                .unwrap_or(0);
            drop(st);
            let last = self.last_lsn.load(Ordering::Acquire);
            let durable = self.durable.load(Ordering::Acquire);
            if !stop && lowest_wanted > last && lowest_wanted > durable {
                // Everything wanted is still to be appended: wait for an append (or for new
                // requests, or close).
                self.tail.wait(&self.writer, None, || {
                    self.last_lsn.load(Ordering::Acquire) >= lowest_wanted
                        || self.tail.is_closed()
                        || {
                            let st = lock(&self.commit.state);
                            st.requests != requests || st.stop
                        }
                });
                continue;
            }
            let flush_to = target.min(last);
            let flushed = if flush_to > durable {
                self.sync_through(flush_to)
            } else {
                Ok(())
            };
            {
                let mut st = lock(&self.commit.state);
                std::mem::swap(&mut st.pending, &mut batch);
                // After a failed sync every future sees the poison itself; at close, `Closed`.
                let all = stop || self.poisoned.load(Ordering::Acquire);
                let durable = self.durable.load(Ordering::Acquire);
                st.wakers.disarm(durable, all, &mut woken);
            }
            // Wake `wait_durable` callers: durability advanced, or the WAL is poisoned.
            self.commit.cv.notify_all();
            for w in woken.drain(..) {
                w.wake();
            }
            self.answer(&mut batch, flushed.err(), stop);
            if !batch.is_empty() || self.poisoned.load(Ordering::Acquire) {
                let mut st = lock(&self.commit.state);
                st.pending.append(&mut batch);
                if self.poisoned.load(Ordering::Acquire) {
                    // Every waiter sees the poison itself; flushing again for them would only
                    // fail again, forever.
                    st.want = 0;
                }
            }
            if stop {
                return;
            }
        }
    }

    /// Calls, in LSN order, every callback of `batch` whose LSN is durable with `Ok`; after a
    /// failed flush (`failed`) the others with `Err(Poisoned)`, at close (`closing`) with
    /// `Err(Closed)`. Leaves the rest in `batch`.
    fn answer(&self, batch: &mut Vec<Pending>, failed: Option<Error>, closing: bool) {
        batch.sort_by_key(|p| p.lsn);
        let durable = self.durable.load(Ordering::Acquire);
        let covered = batch.partition_point(|p| p.lsn <= durable);
        for p in batch.drain(..covered) {
            (p.done)(Ok(durable));
        }
        if failed.is_some() || self.poisoned.load(Ordering::Acquire) {
            for p in batch.drain(..) {
                (p.done)(Err(self.poison_error()));
            }
        } else if closing {
            for p in batch.drain(..) {
                (p.done)(Err(Error::Closed));
            }
        }
    }
}

/// How a `Durable` resolves, decided under `commit.state` and turned into a result after (the
/// poison error takes `sync_state`).
enum Outcome {
    Durable(Lsn),
    Poisoned,
    Closed,
    /// The committer could not be started.
    Failed(Error),
}

impl Outcome {
    fn into_result(self, sh: &Shared) -> Result<Lsn> {
        match self {
            Self::Durable(d) => Ok(d),
            Self::Poisoned => Err(sh.poison_error()),
            Self::Closed => Err(Error::Closed),
            Self::Failed(e) => Err(e),
        }
    }
}
