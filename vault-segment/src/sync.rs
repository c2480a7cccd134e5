//! The one place this crate names its synchronisation primitives, so that a model checker can
//! substitute its own (see STYLE.md, "Concurrency and loom").
//!
//! Normal builds use std's. Under `cfg(test)` the crate's own unit tests (`src/**`) get loom's
//! `Arc`, atomics and `Mutex`, so a plain `cargo test` model-checks the real publish protocol
//! with no `RUSTFLAGS`. Integration tests in `tests/` link the crate built without `cfg(test)`
//! and use std's types. Other crates' unit tests also link this crate built normally: to them a
//! segment's atomics are std's, invisible to their models but still correct.
//!
//! Loom cannot see bytes copied through a raw pointer into a mapping. [`ByteWitness`] lets it:
//! in normal builds it is an empty type whose methods compile to nothing; under test it keeps
//! one `loom::cell::UnsafeCell` per 8-byte unit of the file (frames are 8-byte aligned, so two
//! frames never share a unit) and touches them as the appender writes and readers read, so loom
//! flags a reader whose load is not ordered after the copy it reads.

/// std's `Arc` and `Mutex` for the storage seam's own bookkeeping (`RecordingStorage`, in-memory
/// storage): an I/O fake is not the concurrency under test. These locks are never held across
/// a loom operation, so loom never needs to see them.
#[cfg(any(test, feature = "testing"))]
pub(crate) use std::sync::{Arc as StdArc, MutexGuard as StdMutexGuard};
// Also the Windows storage's own bookkeeping (its mappings' views).
#[cfg(any(test, feature = "testing", windows))]
pub(crate) use std::sync::Mutex as StdMutex;

pub(crate) use std::sync::PoisonError;
// Process-wide settings read outside any model (statics cannot be loom types).
pub(crate) use std::sync::atomic::{AtomicBool as StdAtomicBool, Ordering as StdOrdering};

#[cfg(not(test))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(test))]
pub(crate) use std::sync::{Arc, Mutex};

#[cfg(test)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(test)]
pub(crate) use loom::sync::{Arc, Mutex};

#[cfg(test)]
pub(crate) use self::loom_shim::{model, spawn, ByteWitness};

/// Records nothing: see the module docs.
#[cfg(not(test))]
#[derive(Debug)]
pub(crate) struct ByteWitness;

#[cfg(not(test))]
impl ByteWitness {
    pub(crate) fn new() -> Self {
        Self
    }

    /// The appender copied `len` bytes to `offset`.
    #[inline(always)]
    pub(crate) fn wrote(&self, _offset: usize, _len: usize) {}

    /// A reader is about to read `len` published bytes at `offset`.
    #[inline(always)]
    pub(crate) fn read(&self, _offset: usize, _len: usize) {}
}

#[cfg(test)]
mod loom_shim {
    use std::collections::BTreeMap;
    use std::fmt;

    use loom::cell::UnsafeCell;

    const UNIT: usize = 8;

    /// Loom's view of a mapping's bytes: one cell per 8-byte unit written so far.
    #[derive(Default)]
    pub(crate) struct ByteWitness {
        // A std lock: lookups are bookkeeping, not part of the protocol checked, and no loom
        // operation happens while it is held.
        units: std::sync::Mutex<BTreeMap<usize, UnsafeCell<()>>>,
    }

    impl fmt::Debug for ByteWitness {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("ByteWitness { .. }")
        }
    }

    fn units(offset: usize, len: usize) -> std::ops::Range<usize> {
        offset / UNIT..(offset + len).div_ceil(UNIT)
    }

    impl ByteWitness {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        /// The appender (or the single-threaded recovery scan) established `len` bytes at
        /// `offset`: a write access for loom.
        pub(crate) fn wrote(&self, offset: usize, len: usize) {
            let mut map = self
                .units
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for u in units(offset, len) {
                map.entry(u)
                    .or_insert_with(|| UnsafeCell::new(()))
                    .with_mut(|_| ());
            }
        }

        /// A reader reads `len` published bytes at `offset`: a read access for loom, which
        /// panics if it is not ordered after the write. Reading a unit nobody wrote means a
        /// published range was never filled: that panics here too.
        pub(crate) fn read(&self, offset: usize, len: usize) {
            let map = self
                .units
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for u in units(offset, len) {
                match map.get(&u) {
                    Some(cell) => cell.with(|_| ()),
                    None => panic!(
                        "a reader read bytes {}..{} of a published range that were never \
                         written",
                        u * UNIT,
                        (u + 1) * UNIT
                    ),
                }
            }
        }
    }

    /// Stack of the loom threads the models start (loom's coroutines get 32 KiB otherwise, too
    /// little for some unoptimised paths).
    const STACK: usize = 1 << 20;

    /// `loom::thread::spawn` with [`STACK`] bytes of stack.
    pub(crate) fn spawn<F, T>(f: F) -> loom::thread::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        loom::thread::Builder::new()
            .stack_size(STACK)
            .spawn(f)
            .expect("loom spawns")
    }

    /// Runs `f` under loom ([`crate::testing::loom_model`]) on a thread with [`STACK`] bytes of stack.
    pub(crate) fn model<F>(f: F)
    where
        F: Fn() + Sync + Send + 'static,
    {
        crate::testing::loom_model(STACK, f);
    }
}
