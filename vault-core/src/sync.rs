//! The one place this crate names its synchronisation primitives and threads, so that a model
//! checker can substitute its own (see STYLE.md, "Concurrency and loom").

pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
pub(crate) use std::thread::{Builder as ThreadBuilder, JoinHandle};

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves its data
/// consistent before anything that can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
