//! Write-behind for the direct I/O path ([`crate::Options::with_write_behind`]): full blocks of
//! the tail segment are written to the file as soon as a chunk of them is published, without
//! a sync, so that a process that dies (kill -9, a panic with `abort`) takes at most the last
//! chunk of unsynced records with it instead of everything since the last sync.
//!
//! With write-behind off, the same thread keeps the direct path's memory ring moving
//! ([`Segment::relieve_ring`]): every quarter of the ring appended, it gives back the memory
//! under what syncs made durable (off the syncs' own path, which then costs no system call
//! more than the durable write), and writes out published bytes when more than half of the
//! ring is in use (an unsynced spill). An appender that finds the ring full anyway writes out
//! itself, and waits for the device meanwhile.
//!
//! The appender notes, under the append lock it holds anyway, when its tail crossed a chunk
//! boundary and leaves the segment and its end in a slot; one background thread takes the slot
//! and calls [`vault_segment::Segment::write_out_to`]. Nothing becomes durable here: syncs
//! are unchanged (they write the same blocks again with the durable write), so every crash
//! guarantee is the same with it on or off; only what survives a process death changes.

use std::path::PathBuf;

use vault_segment::Segment;

use crate::error::{Error, Result};
use crate::sync::{lock, Arc, Condvar, JoinHandle, Mutex, ThreadBuilder};

/// Bytes of published records that make the appender wake the write-behind thread with
/// `Options::write_behind` on (in the loom models, less than one of their 4 KiB segments, so
/// that they exercise the hand-off).
#[cfg(not(test))]
pub(crate) const CHUNK: usize = 256 << 10;
#[cfg(test)]
pub(crate) const CHUNK: usize = 1024;

/// The chunk when only the memory ring asks for the thread (`Options::write_behind` off): a
/// quarter of the ring, the unit its memory goes back in.
fn ring_chunk(ring_bytes: usize) -> usize {
    if cfg!(test) {
        CHUNK
    } else {
        (ring_bytes / 4).max(CHUNK)
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// The newest request: a segment and the published end to write out to.
    work: Option<(Segment, usize)>,
    stop: bool,
}

/// The hand-off between appenders and the write-behind thread.
#[derive(Debug)]
pub(crate) struct WriteBehind {
    slot: Mutex<Slot>,
    wake: Condvar,
    /// Published bytes between requests ([`CHUNK`] or [`ring_chunk`]).
    pub(crate) chunk: usize,
    /// Write-behind proper (every chunk written out), or only the ring's upkeep.
    write_out: bool,
}

impl WriteBehind {
    /// Write-behind: every [`CHUNK`] of published bytes is written out.
    pub(crate) fn every_chunk() -> Self {
        Self::new(CHUNK, true)
    }

    /// The ring's upkeep alone, every quarter of a ring of `ring_bytes`.
    pub(crate) fn ring(ring_bytes: usize) -> Self {
        Self::new(ring_chunk(ring_bytes), false)
    }

    fn new(chunk: usize, write_out: bool) -> Self {
        Self {
            slot: Mutex::new(Slot::default()),
            wake: Condvar::new(),
            chunk,
            write_out,
        }
    }

    /// Asks for `seg` to be written out to `end` (replacing an older request: the thread
    /// writes from where the segment's written end stands, so nothing is skipped). Called by
    /// an appender after it released the append lock.
    pub(crate) fn request(&self, seg: Segment, end: usize) {
        lock(&self.slot).work = Some((seg, end));
        self.wake.notify_all();
    }

    /// Stops the thread once its current write (if any) is done.
    pub(crate) fn stop(&self) {
        lock(&self.slot).stop = true;
        self.wake.notify_all();
    }
}

/// Starts the write-behind thread.
pub(crate) fn start(wb: Arc<WriteBehind>) -> Result<JoinHandle<()>> {
    ThreadBuilder::new()
        .name("vault-write-behind".into())
        .spawn(move || loop {
            let (seg, end) = {
                let mut slot = lock(&wb.slot);
                loop {
                    if slot.stop {
                        return;
                    }
                    if let Some(work) = slot.work.take() {
                        break work;
                    }
                    slot = wb
                        .wake
                        .wait(slot)
                        .unwrap_or_else(crate::sync::PoisonError::into_inner);
                }
            };
            // A failure is not an error of the WAL: the bytes are still in memory, and the
            // next sync writes them durably or reports its own failure.
            let _ = if wb.write_out {
                seg.write_out_to(end)
            } else {
                seg.relieve_ring(end)
            };
        })
        .map_err(|e| Error::io("spawn write-behind thread for", PathBuf::new(), e))
}
