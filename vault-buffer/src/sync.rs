//! The only file in this crate that names `std::sync`, `crossbeam_queue` or
//! `loom`; everything else imports its concurrency primitives from here.
//!
//! Under `cfg(test)` the crate's own unit tests (`src/**`) run against loom's
//! model-checked `Arc` and atomics, so a plain `cargo test` explores their
//! interleavings without `RUSTFLAGS`. Loom cannot see inside
//! `crossbeam_queue::ArrayQueue`, so under test the idle set is a small
//! `Mutex<VecDeque>` stand-in with the same bounded push/pop contract. The
//! queue itself is crossbeam's to test; what the models here check is the
//! pool's own logic around it. Tests that need real threads live in `tests/`,
//! which links the crate built without `cfg(test)` and so uses the real types.

#[cfg(not(test))]
pub(crate) use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

#[cfg(not(test))]
pub(crate) use crossbeam_queue::ArrayQueue as IdleQueue;

#[cfg(test)]
pub(crate) use loom::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

#[cfg(test)]
pub(crate) use self::loom_shim::{model, IdleQueue};

#[cfg(test)]
mod loom_shim {
    use std::collections::VecDeque;

    use loom::sync::Mutex;

    /// Loom-visible stand-in for `crossbeam_queue::ArrayQueue`: a FIFO that
    /// holds at most `capacity` items and hands a rejected item back.
    pub(crate) struct IdleQueue<T> {
        items: Mutex<VecDeque<T>>,
        capacity: usize,
    }

    impl<T> IdleQueue<T> {
        pub(crate) fn new(capacity: usize) -> Self {
            // Same precondition as `ArrayQueue::new`.
            assert!(capacity > 0, "capacity must be non-zero");
            IdleQueue {
                items: Mutex::new(VecDeque::with_capacity(capacity)),
                capacity,
            }
        }

        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            let mut items = self.items.lock().unwrap();
            if items.len() == self.capacity {
                return Err(value);
            }
            items.push_back(value);
            Ok(())
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }

        pub(crate) fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }
    }

    /// Runs `f` under loom with a default preemption bound of 2, unless a
    /// `LOOM_*` variable (read by `Builder::new`) already set one.
    pub(crate) fn model<F>(f: F)
    where
        F: Fn() + Sync + Send + 'static,
    {
        // Set by `cargo xtask cross`, which runs the Windows build of the tests under wine.
        if std::env::var_os("VAULT_UNDER_WINE").is_some() {
            eprintln!(
                "skipped: loom model under wine (loom switches stacks, which aborts while \
                 unwinding there); it runs on Linux"
            );
            return;
        }
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(2);
        }
        builder.check(f);
    }
}
