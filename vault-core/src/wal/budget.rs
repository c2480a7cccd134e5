//! The disk budget ([`Options::disk_budget`](crate::Options::disk_budget)): the bytes of the
//! log's segment files, and [`Room`], the future of [`Wal::room`](crate::Wal::room).
//!
//! # Where the bound is checked
//!
//! The log's files grow only by whole segments, and only at rotation: the writer takes a
//! spare (enlarged for a record larger than a segment) and the worker prepares a new spare in
//! its place. So the budget counts the log's segment files (`log_bytes`) and keeps a fixed
//! reserve for what vault itself needs whatever the log holds: the spares the worker keeps
//! (counted whether prepared yet or not) and the copy of one segment that `truncate_back` and
//! `reset` write before renaming it over the original. A rotation is admitted when
//! `log_bytes + next segment + reserve <= budget`. The check runs under the append lock, once
//! per rotation; an append that fits the tail segment never looks at the budget, so the append
//! path gains no atomic operation and no lock.
//!
//! The worker needs no check of its own: its spares live in the reserve, and it prepares one
//! only after the writer took one, which the writer's check admitted.
//!
//! # Waiting for room
//!
//! Room comes only from truncations. Each truncation recomputes `log_bytes` under this lock,
//! then wakes the [`Room`] futures and (after taking the append lock once, so that no waiter is
//! between its check and its wait) the appends waiting under
//! [`BudgetPolicy::Wait`](crate::BudgetPolicy::Wait).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::Shared;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::sync::{lock, Arc, Mutex};

/// The budget's bookkeeping; see the module docs.
#[derive(Debug)]
pub(super) struct Budget {
    /// The bound; `None`: unbounded (`log_bytes` is still kept, for `stats`).
    limit: Option<u64>,
    /// Bytes kept for vault itself ([`Options::budget_reserve`]).
    reserve: u64,
    /// The bytes of a normal segment file.
    normal: u64,
    /// Bytes of the spares the worker keeps, as `stats` reports them.
    spares: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Bytes of the log's segment files.
    log_bytes: u64,
    /// What the last refused rotation needed: what [`Room`] waits for.
    wanted: u64,
    /// Rotations refused (each append that failed or began to wait).
    refusals: u64,
    /// Wakers of pending [`Room`] futures, by id.
    wakers: Vec<(u64, Waker)>,
    next_id: u64,
    closed: bool,
}

impl Budget {
    pub(super) fn new(options: &Options, log_bytes: u64) -> Self {
        let normal = options.segment_file_len();
        Self {
            limit: options.disk_budget,
            reserve: options.budget_reserve(),
            normal,
            spares: (options.spares() as u64).saturating_mul(normal),
            state: Mutex::new(State {
                log_bytes,
                wanted: normal,
                refusals: 0,
                wakers: Vec::new(),
                next_id: 0,
                closed: false,
            }),
        }
    }

    fn admits(&self, log_bytes: u64, growth: u64) -> bool {
        self.limit.is_none_or(|b| {
            log_bytes
                .saturating_add(growth)
                .saturating_add(self.reserve)
                <= b
        })
    }

    fn exhausted(&self, log_bytes: u64, needed: u64) -> Error {
        Error::BudgetExhausted {
            log_bytes,
            needed,
            reserve: self.reserve,
            budget: self.limit.unwrap_or(u64::MAX),
        }
    }

    /// Whether a new segment of `growth` bytes fits; if not, counts the refusal and returns
    /// [`Error::BudgetExhausted`]. Called at rotation, under the append lock.
    pub(super) fn check(&self, growth: u64) -> Result<()> {
        if self.limit.is_none() {
            return Ok(());
        }
        let mut st = lock(&self.state);
        if self.admits(st.log_bytes, growth) {
            return Ok(());
        }
        st.refusals += 1;
        st.wanted = growth;
        Err(self.exhausted(st.log_bytes, growth))
    }

    /// Whether `growth` bytes fit now; the error to report if not.
    pub(super) fn room_for(&self, growth: u64) -> Result<()> {
        let st = lock(&self.state);
        if self.admits(st.log_bytes, growth) {
            Ok(())
        } else {
            Err(self.exhausted(st.log_bytes, growth))
        }
    }

    /// The error of an append that waited behind others for room until its deadline.
    pub(super) fn exhausted_now(&self) -> Error {
        let st = lock(&self.state);
        self.exhausted(st.log_bytes, st.wanted.max(self.normal))
    }

    /// A segment of `bytes` joined the log (after an admitted rotation).
    pub(super) fn grew(&self, bytes: u64) {
        let mut st = lock(&self.state);
        st.log_bytes = st.log_bytes.saturating_add(bytes);
    }

    /// The log's segment files now hold `log_bytes` (after a truncation); wakes the [`Room`]
    /// futures. The caller then wakes the appends waiting for room.
    pub(super) fn set(&self, log_bytes: u64) {
        let wakers = {
            let mut st = lock(&self.state);
            st.log_bytes = log_bytes;
            std::mem::take(&mut st.wakers)
        };
        for (_, w) in wakers {
            w.wake();
        }
    }

    /// The WAL closed: pending and later [`Room`] futures resolve with `Closed`.
    pub(super) fn close(&self) {
        let wakers = {
            let mut st = lock(&self.state);
            st.closed = true;
            std::mem::take(&mut st.wakers)
        };
        for (_, w) in wakers {
            w.wake();
        }
    }

    /// `(bytes on disk as the budget counts them, refusals)` for `stats`.
    pub(super) fn usage(&self) -> (u64, u64) {
        let st = lock(&self.state);
        (st.log_bytes.saturating_add(self.spares), st.refusals)
    }

    pub(super) fn limit(&self) -> Option<u64> {
        self.limit
    }

    pub(super) fn normal(&self) -> u64 {
        self.normal
    }
}

/// A future that resolves once the log has room for its next segment under the disk budget;
/// made by [`Wal::room`](crate::Wal::room), which documents its outcomes.
///
/// Like [`Durable`](crate::Durable) it holds a handle to the WAL's state, not a borrow, so it
/// is `Send + 'static`. Dropping it cancels nothing.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Room {
    shared: Arc<Shared>,
    /// The id of the waker this future left, if it left one.
    id: Option<u64>,
}

impl Room {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared, id: None }
    }
}

impl Future for Room {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let budget = &this.shared.budget;
        let mut st = lock(&budget.state);
        if st.closed {
            return Poll::Ready(Err(Error::Closed));
        }
        let growth = st.wanted.max(budget.normal);
        if budget.admits(st.log_bytes, growth) {
            if let Some(id) = this.id.take() {
                st.wakers.retain(|(i, _)| *i != id);
            }
            return Poll::Ready(Ok(()));
        }
        let id = match this.id {
            Some(id) => id,
            None => {
                let id = st.next_id;
                st.next_id += 1;
                this.id = Some(id);
                id
            }
        };
        match st.wakers.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) if w.will_wake(cx.waker()) => {}
            Some((_, w)) => w.clone_from(cx.waker()),
            None => st.wakers.push((id, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            lock(&self.shared.budget.state)
                .wakers
                .retain(|(i, _)| *i != id);
        }
    }
}
