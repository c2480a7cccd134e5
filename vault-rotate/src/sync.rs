//! The one place this crate names its synchronisation primitives and threads, so that a model
//! checker can substitute its own (see STYLE.md, "Concurrency and loom").

pub(crate) use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TryRecvError};
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
pub(crate) use std::sync::{Arc, Mutex, PoisonError};
pub(crate) use std::thread::{Builder as ThreadBuilder, JoinHandle};
