//! The one place this crate names its synchronisation primitives, so that a model checker can
//! substitute its own (see STYLE.md, "Concurrency and loom").

pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
