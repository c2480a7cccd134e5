//! The one place this crate names its synchronisation primitives and threads, so that a model
//! checker can substitute its own (see STYLE.md, "Concurrency and loom").
//!
//! Normal builds use crossbeam's channels and std's threads and atomics. Under `cfg(test)` the
//! crate's own unit tests (`src/**`) get loom's threads, atomics and `Arc`, and the channels
//! become [`loom_shim`]'s stand-in (loom cannot see inside crossbeam), so a plain `cargo test`
//! model-checks the real worker with no `RUSTFLAGS`. vault-core's unit tests compile this file
//! and `rotator.rs` from source into their own crate, so their models see the worker under loom
//! too. Integration tests in `tests/` link the crate built without `cfg(test)` and use the real
//! types.

/// `Arc` for handles in the public API (the storage seam). It stays std's in every build: the
/// handle's reference count is not what the models check, and loom's `Arc` cannot hold a `dyn`
/// trait object built by a caller.
pub(crate) use std::sync::Arc as StdArc;

/// A plain lock for state only the writer's thread touches (the index a failed enlargement
/// still owes); it is no synchronisation point the models need to explore.
pub(crate) use std::sync::{Mutex as StdMutex, PoisonError as StdPoisonError};

/// The most spares `default_spares` keeps: four in normal builds; two under the models, which
/// still explore several spares in flight but stay small.
#[cfg(not(test))]
pub(crate) const MAX_SPARES: usize = 4;
#[cfg(test)]
pub(crate) const MAX_SPARES: usize = 2;

#[cfg(not(test))]
pub(crate) use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TryRecvError};
#[cfg(not(test))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(test))]
pub(crate) use std::sync::Arc;
#[cfg(not(test))]
pub(crate) use std::thread::{Builder as ThreadBuilder, JoinHandle};

#[cfg(test)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(test)]
pub(crate) use loom::sync::Arc;
#[cfg(test)]
pub(crate) use loom::thread::JoinHandle;

#[cfg(test)]
pub(crate) use self::loom_shim::{
    bounded, model, unbounded, Receiver, Sender, ThreadBuilder, TryRecvError,
};

#[cfg(test)]
pub(crate) mod loom_shim {
    //! A loom-visible stand-in for the part of `crossbeam_channel` this crate uses, with the
    //! same blocking and disconnect semantics: `send` blocks while a bounded channel is full and
    //! fails (handing the message back) once every receiver is gone; `recv` blocks while the
    //! channel is empty and fails once it is empty and every sender is gone; messages sent
    //! before the last sender went are still received.

    use std::collections::VecDeque;
    use std::fmt;
    use std::io;

    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread::JoinHandle;

    struct State<T> {
        queue: VecDeque<T>,
        /// `None` for an unbounded channel.
        capacity: Option<usize>,
        senders: usize,
        receivers: usize,
    }

    struct Chan<T> {
        state: Mutex<State<T>>,
        /// Signalled when a message arrives or the last sender goes.
        not_empty: Condvar,
        /// Signalled when a message leaves or the last receiver goes.
        not_full: Condvar,
    }

    /// The sending half (`crossbeam_channel::Sender`).
    pub(crate) struct Sender<T> {
        chan: Arc<Chan<T>>,
    }

    /// The receiving half (`crossbeam_channel::Receiver`).
    pub(crate) struct Receiver<T> {
        chan: Arc<Chan<T>>,
    }

    /// A message that could not be sent because every receiver is gone.
    pub(crate) struct SendError<T>(pub(crate) T);

    impl<T> SendError<T> {
        /// The message, handed back.
        pub(crate) fn into_inner(self) -> T {
            self.0
        }
    }

    /// The channel is empty and every sender is gone.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct RecvError;

    /// Why `try_recv` returned nothing.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum TryRecvError {
        /// Nothing there now; senders remain.
        Empty,
        /// Nothing there and every sender is gone.
        Disconnected,
    }

    fn channel<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
        let chan = Arc::new(Chan {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                capacity,
                senders: 1,
                receivers: 1,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        });
        (
            Sender {
                chan: Arc::clone(&chan),
            },
            Receiver { chan },
        )
    }

    /// `crossbeam_channel::bounded`. A zero-capacity (rendezvous) channel is not needed here
    /// and not modelled.
    pub(crate) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
        assert!(
            capacity > 0,
            "the stand-in does not model rendezvous channels"
        );
        channel(Some(capacity))
    }

    /// `crossbeam_channel::unbounded`.
    pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
        channel(None)
    }

    impl<T> Sender<T> {
        /// Sends `msg`, waiting while the channel is full.
        ///
        /// # Errors
        /// Every receiver is gone; the message is handed back.
        pub(crate) fn send(&self, msg: T) -> Result<(), SendError<T>> {
            let chan = &*self.chan;
            let mut st = chan.state.lock().unwrap();
            loop {
                if st.receivers == 0 {
                    return Err(SendError(msg));
                }
                if st.capacity.is_none_or(|c| st.queue.len() < c) {
                    break;
                }
                st = chan.not_full.wait(st).unwrap();
            }
            st.queue.push_back(msg);
            drop(st);
            chan.not_empty.notify_all();
            Ok(())
        }
    }

    impl<T> Receiver<T> {
        /// Takes a message if one is there.
        ///
        /// # Errors
        /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] once empty with every
        /// sender gone.
        pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
            let chan = &*self.chan;
            let mut st = chan.state.lock().unwrap();
            match st.queue.pop_front() {
                Some(msg) => {
                    drop(st);
                    chan.not_full.notify_all();
                    Ok(msg)
                }
                None if st.senders == 0 => Err(TryRecvError::Disconnected),
                None => Err(TryRecvError::Empty),
            }
        }

        /// Takes a message, waiting while the channel is empty.
        ///
        /// # Errors
        /// The channel is empty and every sender is gone.
        pub(crate) fn recv(&self) -> Result<T, RecvError> {
            let chan = &*self.chan;
            let mut st = chan.state.lock().unwrap();
            loop {
                if let Some(msg) = st.queue.pop_front() {
                    drop(st);
                    chan.not_full.notify_all();
                    return Ok(msg);
                }
                if st.senders == 0 {
                    return Err(RecvError);
                }
                st = chan.not_empty.wait(st).unwrap();
            }
        }

        /// Blocking iterator: yields messages until the channel is empty and disconnected.
        pub(crate) fn iter(&self) -> impl Iterator<Item = T> + '_ {
            std::iter::from_fn(move || self.recv().ok())
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            let chan = &*self.chan;
            let last = {
                let mut st = chan.state.lock().unwrap();
                st.senders -= 1;
                st.senders == 0
            };
            if last {
                chan.not_empty.notify_all();
            }
        }
    }

    impl<T> Drop for Receiver<T> {
        fn drop(&mut self) {
            let chan = &*self.chan;
            let last = {
                let mut st = chan.state.lock().unwrap();
                st.receivers -= 1;
                st.receivers == 0
            };
            if last {
                chan.not_full.notify_all();
            }
        }
    }

    impl<T> fmt::Debug for Sender<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Sender { .. }")
        }
    }

    impl<T> fmt::Debug for Receiver<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Receiver { .. }")
        }
    }

    impl<T> fmt::Debug for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("SendError { .. }")
        }
    }

    /// Stack of every loom thread the models and the code under test start. Loom runs each
    /// thread as a coroutine with a 32 KiB stack unless told otherwise, too little for
    /// unoptimised builds of segment creation or the first compile of the file-name regex (an
    /// overflow there leaves its `OnceLock` half-initialised and hangs later tests).
    const STACK: usize = 1 << 20;

    /// `std::thread::Builder` for models: loom's, with [`STACK`] bytes of stack.
    #[derive(Debug)]
    pub(crate) struct ThreadBuilder(loom::thread::Builder);

    impl ThreadBuilder {
        pub(crate) fn new() -> Self {
            Self(loom::thread::Builder::new().stack_size(STACK))
        }

        pub(crate) fn name(self, name: String) -> Self {
            Self(self.0.name(name))
        }

        pub(crate) fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            self.0.spawn(f)
        }
    }

    /// `loom::thread::spawn` with [`STACK`] bytes of stack, for vault-core's models (which
    /// compile these sources); this crate's own models start no thread of their own.
    #[allow(dead_code)]
    pub(crate) fn spawn<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        ThreadBuilder::new().spawn(f).expect("loom spawns")
    }

    /// Runs `f` under loom ([`vault_segment::testing::loom_model`]) on a thread with [`STACK`] bytes of stack.
    pub(crate) fn model<F>(f: F)
    where
        F: Fn() + Sync + Send + 'static,
    {
        vault_segment::testing::loom_model(STACK, f);
    }
}
