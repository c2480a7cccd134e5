//! Awaitable durability: [`Durable`], the future of [`Wal::durable`](crate::Wal::durable), and
//! the [`WakerSlots`] where pending ones leave their wakers for the committer.
//!
//! # How a `Durable` is woken
//!
//! A `Durable` that finds its LSN not durable (a lock-free look at `durable`) takes
//! `commit.state` (the committer's lock), looks again at `durable`, the poison flag and `stop`,
//! and if none resolves it, *arms* a slot: it stores its LSN and a clone of its waker there,
//! and tells the committer (as `on_durable` does). The committer treats armed slots as work,
//! like pending callbacks: it runs (or joins) a group-commit flush up to the highest armed LSN
//! that is appended, then, under the same lock, *disarms* every slot whose LSN is durable
//! (every slot, after a failed sync or at close) and wakes those wakers after unlocking. Before
//! it sleeps it checks, under the lock, that no armed slot is already durable.
//!
//! No wake-up is lost, because the lock orders each arming with each committer pass:
//!
//! - A pass before the arming: whatever it saw (a raised `durable`, the poison, `stop`)
//!   happened before the future's look under the lock, which then resolves it. The `stop`
//!   check is the one nothing else backs up: without it a future could arm after the
//!   committer's last pass at close and never be woken.
//! - A pass after the arming sees the slot. If another thread's flush (an appender under
//!   `SyncPolicy::Always`, `sync`, the interval flusher) made the LSN durable, the committer's
//!   check before sleeping finds the armed slot durable and wakes it; nobody else would.
//!
//! The loom models `a_durable_future_is_woken_when_another_thread_flushes_its_record` and
//! `close_racing_a_durable_future_resolves_it_with_closed` (`models.rs`) check both cases.
//!
//! Nothing is allocated per wait in steady state: slots are reused (freed ones are kept on a
//! free list), the waker is cloned only when the slot is armed or the task's waker changed
//! ([`Waker::will_wake`]), and the committer wakes from a list it reuses. The slot table grows
//! to the largest number of futures pending at once and stays that size.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::Shared;
use crate::error::Result;
use crate::sync::{Arc, Ordering};
use crate::Lsn;

/// A future that resolves once every record up to an LSN is durable; made by
/// [`Wal::durable`](crate::Wal::durable), which documents its outcomes.
///
/// It holds a handle to the WAL's shared state, not a borrow: it is `Send + 'static`, so a task
/// can own it. Dropping it releases its waker slot and cancels nothing else: the flush it asked
/// for and every other waiter go on.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled; `Wal::durable` alone does not flush"]
pub struct Durable {
    shared: Arc<Shared>,
    lsn: Lsn,
    /// The slot of `commit.state`'s [`WakerSlots`] this future armed, if it did.
    slot: Option<usize>,
}

impl Durable {
    pub(super) fn new(shared: Arc<Shared>, lsn: Lsn) -> Self {
        Self {
            shared,
            lsn,
            slot: None,
        }
    }

    /// The LSN this future waits for.
    #[must_use]
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }
}

impl Future for Durable {
    type Output = Result<Lsn>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Lsn>> {
        let this = self.get_mut();
        // Fast path: no lock while durability is already there (the common case under
        // `SyncPolicy::Always`, or a re-poll after the committer's wake-up).
        let durable = this.shared.durable.load(Ordering::Acquire);
        if durable >= this.lsn && this.slot.is_none() {
            return Poll::Ready(Ok(durable));
        }
        Shared::poll_durable(&this.shared, this.lsn, &mut this.slot, cx.waker())
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.shared.release_waker_slot(slot);
        }
    }
}

/// One waiting [`Durable`].
#[derive(Debug, Default)]
struct Slot {
    lsn: Lsn,
    /// `Some` while armed: the committer owes this waker a wake-up.
    waker: Option<Waker>,
}

/// The wakers of pending [`Durable`] futures, kept under `commit.state`. A slot belongs to
/// one future from [`WakerSlots::arm`] until [`WakerSlots::release`].
#[derive(Debug, Default)]
pub(crate) struct WakerSlots {
    slots: Vec<Slot>,
    /// Released slots, reused before the table grows.
    free: Vec<usize>,
}

impl WakerSlots {
    /// Arms `slot` (taking a free one if `None`) for `lsn` with `waker`. Returns whether it was
    /// not armed before: the committer has new work then.
    pub(crate) fn arm(&mut self, slot: &mut Option<usize>, lsn: Lsn, waker: &Waker) -> bool {
        let i = *slot.get_or_insert_with(|| match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        });
        let s = &mut self.slots[i];
        s.lsn = lsn;
        match &mut s.waker {
            Some(w) => {
                if !w.will_wake(waker) {
                    w.clone_from(waker);
                }
                false
            }
            None => {
                s.waker = Some(waker.clone());
                true
            }
        }
    }

    /// Frees `slot` for reuse.
    pub(crate) fn release(&mut self, slot: usize) {
        self.slots[slot].waker = None;
        self.free.push(slot);
    }

    fn armed(&self) -> impl Iterator<Item = Lsn> + '_ {
        self.slots
            .iter()
            .filter(|s| s.waker.is_some())
            .map(|s| s.lsn)
    }

    /// The highest armed LSN (0 if none).
    pub(crate) fn highest(&self) -> Lsn {
        self.armed().max().unwrap_or(0)
    }

    /// The lowest armed LSN above `durable`.
    pub(crate) fn lowest_above(&self, durable: Lsn) -> Option<Lsn> {
        self.armed().filter(|&l| l > durable).min()
    }

    /// Whether an armed slot's LSN is durable (its waker is owed a wake-up now).
    pub(crate) fn any_durable(&self, durable: Lsn) -> bool {
        self.armed().any(|l| l <= durable)
    }

    /// Disarms every slot whose LSN is durable (every armed slot if `all`), moving its waker
    /// to `woken`, for the caller to wake after unlocking.
    pub(crate) fn disarm(&mut self, durable: Lsn, all: bool, woken: &mut Vec<Waker>) {
        for s in &mut self.slots {
            if all || s.lsn <= durable {
                woken.extend(s.waker.take());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    // The slot table's bookkeeping, without threads (this module's tests run outside loom's
    // model, which only the `Wal`'s types need).
    use std::task::Waker;

    use super::WakerSlots;

    #[test]
    fn released_slots_are_reused_and_disarmed_slots_rearm_as_new_work() {
        let mut t = WakerSlots::default();
        let (mut a, mut b) = (None, None);
        assert!(t.arm(&mut a, 5, Waker::noop()));
        assert!(t.arm(&mut b, 9, Waker::noop()));
        // Re-polled with the same waker: not new work, nothing cloned.
        assert!(!t.arm(&mut a, 5, Waker::noop()));
        assert_eq!((t.highest(), t.lowest_above(5)), (9, Some(9)));
        assert!(t.any_durable(5) && !t.any_durable(4));
        let mut woken = Vec::new();
        t.disarm(5, false, &mut woken);
        assert_eq!(woken.len(), 1);
        assert!(!t.any_durable(8), "slot a was disarmed");
        assert!(
            t.arm(&mut a, 5, Waker::noop()),
            "a disarmed slot is new work again"
        );
        t.release(a.take().unwrap());
        let mut c = None;
        t.arm(&mut c, 3, Waker::noop());
        assert_eq!(c, Some(0), "the released slot is reused");
        assert_eq!(t.slots.len(), 2);
        woken.clear();
        t.disarm(0, true, &mut woken);
        assert_eq!(woken.len(), 2);
        assert_eq!(t.highest(), 0);
    }
}
