//! The one place this crate names its synchronisation primitives, threads and rotation worker,
//! so that a model checker can substitute its own (see STYLE.md, "Concurrency and loom").
//!
//! Normal builds use std's types and the `vault-rotate` crate. Under `cfg(test)` the crate's own
//! unit tests (`src/**`) get loom's, so a plain `cargo test` model-checks the real `Wal` with no
//! `RUSTFLAGS`. Integration tests in `tests/` link the crate built without `cfg(test)`.
//!
//! `cfg(test)` is set only for the crate under test, so the `vault-rotate` crate a model links
//! would run its worker on a real thread over real crossbeam channels, which loom can neither
//! see nor schedule. Under test, therefore, the worker is compiled from vault-rotate's own
//! source files into this crate ([`loom_rotate`](crate::loom_rotate)), where its `sync` module
//! resolves to loom. It is the same code, not a copy. (A cargo feature would not do: features
//! are unified across a build, so it would put loom types under the integration tests too.)
//!
//! Loom's `Condvar::wait_timeout` never times out. The stand-in [`Condvar`] used under test
//! lets the first timed wait on each condition variable time out at once and makes later ones
//! wait for a notification: "the interval elapsed once, then is long".

/// std's `Arc`, for handles in the public API (the storage seam in [`crate::Options`]).
pub(crate) use std::sync::Arc as StdArc;

pub(crate) use std::sync::PoisonError;

#[cfg(not(test))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(test))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
#[cfg(not(test))]
pub(crate) use std::thread::{
    current as current_thread, yield_now, Builder as ThreadBuilder, JoinHandle,
};
#[cfg(not(test))]
pub(crate) use vault_rotate::{default_spares, Error as RotateError, RotateConfig, Rotator};

#[cfg(test)]
pub(crate) use crate::loom_rotate::{default_spares, Error as RotateError, RotateConfig, Rotator};
#[cfg(test)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(test)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard, RwLock};
#[cfg(test)]
pub(crate) use loom::thread::{current as current_thread, JoinHandle};

// The model helper and the big-stack thread builder are vault-rotate's, compiled in with it.
#[cfg(test)]
pub(crate) use self::loom_shim::Condvar;
#[cfg(test)]
pub(crate) use crate::loom_rotate::sync::loom_shim::{model, spawn, ThreadBuilder};

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves its data
/// consistent before anything that can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks a mutex if no one holds it (ignoring poisoning, as [`lock`]); `None` if someone does.
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

#[cfg(test)]
mod loom_shim {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::LockResult;
    use std::time::Duration;

    use loom::sync::MutexGuard;

    /// Timed waits per condition variable that time out at once; later ones wait for a
    /// notification.
    const TIMEOUTS: usize = 1;

    /// `std::sync::Condvar` for models: loom's, plus timeouts (see the module docs).
    #[derive(Debug)]
    pub(crate) struct Condvar {
        inner: loom::sync::Condvar,
        // Bookkeeping only (one loom thread runs at a time): not part of what is checked.
        timeouts_left: AtomicUsize,
    }

    /// Whether a timed wait timed out.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        /// As `std::sync::WaitTimeoutResult::timed_out`.
        #[allow(dead_code)]
        pub(crate) fn timed_out(self) -> bool {
            self.0
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self {
                inner: loom::sync::Condvar::new(),
                timeouts_left: AtomicUsize::new(TIMEOUTS),
            }
        }

        pub(crate) fn wait<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
        ) -> LockResult<MutexGuard<'a, T>> {
            self.inner.wait(guard)
        }

        /// Times out at once (keeping the lock, as a wait whose interval elapsed before anyone
        /// else ran would) while this condition variable has timeouts left; then waits for a
        /// notification like [`Condvar::wait`].
        pub(crate) fn wait_timeout<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            _interval: Duration,
        ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
            let left = self.timeouts_left.load(Ordering::Relaxed);
            if left > 0 {
                self.timeouts_left.store(left - 1, Ordering::Relaxed);
                loom::thread::yield_now();
                return Ok((guard, WaitTimeoutResult(true)));
            }
            match self.inner.wait(guard) {
                Ok(g) => Ok((g, WaitTimeoutResult(false))),
                Err(p) => Err(std::sync::PoisonError::new((
                    p.into_inner(),
                    WaitTimeoutResult(false),
                ))),
            }
        }

        pub(crate) fn notify_all(&self) {
            self.inner.notify_all();
        }
    }
}
