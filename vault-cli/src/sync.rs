//! The threads and synchronisation this crate uses, named in one place as the house style asks
//! (the library crates swap these for loom under test; the CLI has nothing to model-check).

pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
pub(crate) use std::sync::{mpsc, Mutex, MutexGuard, PoisonError};
pub(crate) use std::thread;

/// Locks `m`, taking the data even if a thread panicked while holding it: every value kept
/// behind these locks stays consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
