//! The direct-I/O path: a writable segment whose bytes live in process memory and reach the
//! file only through direct writes, never through the page cache.
//!
//! What a direct write is differs per platform and lives with the other platform code, as
//! `DirectFile` in `crate::storage` (`linux.rs`: `O_DIRECT` + `pwritev2(RWF_DSYNC)`;
//! `windows.rs`: `FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH`; `macos.rs`: `F_NOCACHE` +
//! `pwrite` + `F_FULLFSYNC`). This module is the same on every platform.
//!
//! # How it keeps the mapping contract
//!
//! [`DirectRegion`] is page-aligned address space as long as the file, holding exactly the
//! file's bytes when it is opened (a fresh segment is zeros on both sides). Appends store into
//! it like into a mapping; [`Region::sync`] writes the aligned blocks that cover the range
//! with one direct write that is durable when it returns (on Linux one `pwritev2(RWF_DSYNC)`
//! on a descriptor opened with `O_DIRECT`, falling back to `pwrite` + `fdatasync` where the
//! flag is refused), so a sync is one data write plus the device flush the write carries.
//! Readers read the region, so every published record is readable whether or not it was
//! written to the file yet.
//!
//! # Memory: the ring
//!
//! Where the platform allows it (`DIRECT_RING`: Linux), only a window of the region is process
//! memory: a ring of a few MiB ([`Ring`]) whose slots move along the file as its bytes reach
//! it; below the window the file itself is mapped read-only at the same addresses, so a
//! reader holding a record reads the same bytes throughout. Elsewhere the region is anonymous
//! memory as long as the file.
//!
//! # The tail block is rewritten, never torn into loss
//!
//! Small records share the last block: each sync rewrites it with more bytes. The bytes before
//! the synced end are the same in every write that covers them (the appender only ever writes
//! past the published end), so a power cut during a rewrite leaves each sector either old or
//! new, and both hold those bytes. Writes of one segment never overlap in time: the segment
//! serialises its syncs (`Segment::sync_to`).
//!
//! # Page cache
//!
//! Nothing here writes through the page cache (a last block shorter than the alignment
//! aside). The file mapped below a ring's window, and the read-only mappings of finished
//! segments (see `Segment::reopen`), fill it only with pages a reader touches.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::storage::{DirectFile, Region, DIRECT_RING};

/// Bytes written per `pwrite` when zero-filling a new file.
const ZERO_CHUNK: usize = 1 << 20;

/// A ring region's memory bound until [`Region::set_ring_bytes`] sets another: what the
/// worker faults in when it prepares a segment.
pub const DEFAULT_RING_BYTES: usize = 4 << 20;

/// Finished segments' memory kept for the next segments, at most this many buffers
/// process-wide (see [`Memory`]).
const POOL_MAX: usize = 2;

static POOL: std::sync::Mutex<Vec<MmapRaw>> = std::sync::Mutex::new(Vec::new());

/// A segment's anonymous memory. When the region drops, the memory goes back to a small
/// process-wide pool instead of being unmapped, and the next segment of the same size takes it
/// from there: unmapping 64 MiB on whichever thread drops the last handle (the writer, at a
/// rotation) costs milliseconds, and fresh anonymous memory costs a page fault per 4 KiB
/// when it is pre-faulted (dearer still where the host reclaims freed guest memory).
#[derive(Debug)]
struct Memory {
    map: Option<MmapRaw>,
    /// Whether it goes back to the pool when dropped.
    pooled: bool,
}

impl Memory {
    /// Fresh zeroed memory for `len` bytes that never enters the pool: a ring region's, whose
    /// pages are faulted in only where the ring is (the rest is address space, no memory)
    /// and which maps parts of its file over itself, so it cannot serve another file.
    fn reserve(len: usize) -> io::Result<Self> {
        let want = len.max(1).div_ceil(4096) * 4096;
        Ok(Self {
            map: Some(anon(want)?),
            pooled: false,
        })
    }

    /// Memory for `len` bytes, all zero when `zeroed` (else its content is unspecified).
    fn take(len: usize, zeroed: bool) -> io::Result<Self> {
        let want = len.max(1).div_ceil(4096) * 4096;
        let reused = {
            let mut pool = POOL
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pool.iter()
                .position(|m| m.len() == want)
                .map(|i| pool.swap_remove(i))
        };
        match reused {
            Some(m) => {
                if zeroed {
                    // SAFETY: `m` is an anonymous mapping of `m.len()` bytes that nothing else
                    // references any more (its region dropped before it entered the pool).
                    unsafe { std::ptr::write_bytes(m.as_mut_ptr(), 0, m.len()) };
                }
                Ok(Self {
                    map: Some(m),
                    pooled: true,
                })
            }
            None => Ok(Self {
                map: Some(anon(want)?),
                pooled: true,
            }),
        }
    }
}

impl std::ops::Deref for Memory {
    type Target = MmapRaw;

    fn deref(&self) -> &MmapRaw {
        self.map.as_ref().expect("memory is present until dropped")
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        if let Some(m) = self.map.take().filter(|_| self.pooled) {
            let mut pool = POOL
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pool.len() < POOL_MAX {
                pool.push(m);
            }
        }
    }
}

/// A segment's bytes in process memory, written to the file with direct writes.
#[derive(Debug)]
pub(crate) struct DirectRegion {
    mem: Memory,
    /// The file's length (the region's length).
    len: usize,
    /// Offset and length alignment of direct writes.
    align: usize,
    file: DirectFile,
    /// The file's path, to write a last block shorter than the alignment through the page
    /// cache (a file vault did not size: its segments are whole pages).
    path: std::path::PathBuf,
    /// The memory bound of a fresh region where the platform has one (`DIRECT_RING`).
    ring: Option<Ring>,
}

/// A ring region's memory (Linux, `DIRECT_RING`). The region is address space as long as the
/// file; the ring's memory is an in-memory file of `W` bytes cut into [`SLOTS`] slots, mapped
/// into the region at `[released, released + W)`, position `p` in slot `(p / chunk) % SLOTS`.
/// Below `released` the segment file itself is mapped read-only; past the window the region
/// is anonymous address space that nothing stores into, except a batch larger than the ring
/// (its bytes stay anonymous memory until given back, and no slot is mapped over them).
///
/// [`Region::release`] moves the window a slot at a time: it maps the file over the released
/// slots (same bytes, read from the file from then on), zeroes those slots and maps them
/// again at the window's new end, then publishes the new front. The slots' pages stay
/// allocated as they move: faulting fresh anonymous memory in costs more than clearing a
/// slot with `memset` (docs/PERFORMANCE.md, "The direct I/O path: design decisions").
#[derive(Debug)]
struct Ring {
    /// `W`: the appender may store below `released + bytes`.
    bytes: AtomicUsize,
    released: AtomicUsize,
    /// The ring's memory and where it is mapped; the lock orders releases (which run with or
    /// without the segment's sync lock) with each other and with [`Region::set_ring_bytes`].
    mem: std::sync::Mutex<RingMem>,
    /// The page size, or the direct-I/O alignment if larger.
    grain: usize,
}

/// Slots of a ring: a release moves the window by a whole number of them.
const SLOTS: usize = 4;

#[derive(Debug)]
struct RingMem {
    /// The in-memory file.
    file: File,
    /// All of it, writable, to clear a slot between two uses.
    ctl: MmapRaw,
    /// `W`.
    len: usize,
    /// `W / SLOTS`.
    chunk: usize,
    /// End of the bytes an appender stored past the window (a batch larger than the ring):
    /// no slot is mapped below it.
    overflow: usize,
}

impl RingMem {
    /// A ring of at least `bytes` (whole slots of whole `grain`s), all zeros.
    fn new(bytes: usize, grain: usize) -> io::Result<Self> {
        let chunk = bytes.div_ceil(SLOTS).max(1).div_ceil(grain) * grain;
        let len = chunk * SLOTS;
        let file = crate::storage::ring_file(len)?;
        let ctl = MmapOptions::new().len(len).map_raw(&file)?;
        Ok(Self {
            file,
            ctl,
            len,
            chunk,
            overflow: 0,
        })
    }

    /// Maps the slot of position `q` (a multiple of `chunk`) at `q` in the region of
    /// `region_len` bytes at `base`, clearing it first if `zero`.
    ///
    /// # Safety
    ///
    /// Nothing in `[q, q + chunk)` of the region is in use: it lies past every byte the
    /// appender may store into, or its old slot's bytes are to be kept as they are (the
    /// initial mapping), and no reader reads there.
    unsafe fn map_slot(
        &self,
        base: *mut u8,
        region_len: usize,
        q: usize,
        zero: bool,
    ) -> io::Result<()> {
        let slot = (q / self.chunk) % SLOTS;
        let n = self.chunk.min(region_len - q);
        if zero {
            // SAFETY: the slot lies inside `ctl` (`slot < SLOTS`), and it is mapped nowhere
            // in the region now (its last position was released, or it was never mapped).
            unsafe {
                std::ptr::write_bytes(self.ctl.as_mut_ptr().add(slot * self.chunk), 0, self.chunk);
            };
        }
        // SAFETY: `q` and `n` are multiples of the page size inside the region (`q <
        // region_len`); the caller's contract covers who uses those addresses.
        unsafe {
            crate::storage::map_fixed(base.add(q), n, &self.file, (slot * self.chunk) as u64, true)
        }
    }
}

/// Opens an existing segment file for the direct path: the region holds the file's bytes.
pub(crate) fn open(path: &Path, fresh: bool) -> io::Result<Box<dyn Region>> {
    let file = DirectFile::open(path)?;
    let len =
        usize::try_from(file.len()?).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty file"));
    }
    let align = file.align();
    let grain = align.max(crate::storage::page_size());
    // A process whose file-size limit (`RLIMIT_FSIZE`) is below the ring cannot make its
    // in-memory file: its segments keep their whole file in memory instead.
    let ring = if fresh && DIRECT_RING && len % grain == 0 {
        RingMem::new(DEFAULT_RING_BYTES, grain).ok()
    } else {
        None
    };
    let (mem, ring) = if let Some(ring) = ring {
        let mem = Memory::reserve(len)?;
        for q in (0..ring.len.min(len)).step_by(ring.chunk) {
            // SAFETY: a new region: nobody else knows its addresses yet.
            unsafe { ring.map_slot(mem.as_mut_ptr(), len, q, false) }?;
        }
        let ring = Ring {
            bytes: AtomicUsize::new(ring.len),
            released: AtomicUsize::new(0),
            mem: std::sync::Mutex::new(ring),
            grain,
        };
        (mem, Some(ring))
    } else {
        (Memory::take(len, fresh)?, None)
    };
    if !fresh {
        // Read what the file holds (directly, so no page cache): whole aligned blocks, and the
        // last partial one through a buffered descriptor.
        let whole = len - len % align;
        let mut off = 0;
        while off < whole {
            let n = (whole - off).min(64 << 20);
            // SAFETY: `mem` is a live, private anonymous mapping of at least `len` bytes that
            // no one else can see yet; `off + n <= len`.
            let dst = unsafe { std::slice::from_raw_parts_mut(mem.as_mut_ptr().add(off), n) };
            read_exact_at(&file, dst, off as u64)?;
            off += n;
        }
        if whole < len {
            // SAFETY: as above; `whole < len`.
            let dst =
                unsafe { std::slice::from_raw_parts_mut(mem.as_mut_ptr().add(whole), len - whole) };
            buffered_read_exact_at(path, dst, whole as u64)?;
        }
    }
    Ok(Box::new(DirectRegion {
        mem,
        len,
        align,
        file,
        path: path.to_path_buf(),
        ring,
    }))
}

/// Fills `buf` from `offset` with direct reads.
fn read_exact_at(file: &DirectFile, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Fills `buf` from `offset` of `path` through the page cache (a block shorter than the
/// alignment, which a direct read cannot take).
fn buffered_read_exact_at(path: &Path, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

/// Writes `buf` at `offset` of `path` through the page cache (see [`buffered_read_exact_at`]).
fn buffered_write_all_at(path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(buf)
}

/// Writes `buf` at `offset` of `path` through the page cache and makes it durable (see
/// [`buffered_read_exact_at`]).
fn buffered_write_durable_at(path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(buf)?;
    f.sync_data()
}

/// Writes all of `buf` at `offset` with direct writes (aligned), durable on return when
/// `durable`.
fn write_all_at(file: &DirectFile, buf: &[u8], offset: u64, durable: bool) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = (buf.len() - done).min(1 << 30);
        let src = &buf[done..done + n];
        let at = offset + done as u64;
        let written = if durable {
            file.write_durable_at(src, at)
        } else {
            file.write_at(src, at)
        };
        match written {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "direct write wrote nothing",
                ))
            }
            // A short direct write ends on a block boundary; the rest follows.
            Ok(w) => done += w,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl DirectRegion {
    /// The bytes `[start, end)` of the region.
    ///
    /// # Safety
    ///
    /// `start <= end <= self.len`, and the caller passes only bytes that the appender does not
    /// write during the call, or accepts that the write carries whatever the block holds
    /// (published bytes are never written again; bytes past the published end recovery
    /// treats as a torn tail).
    unsafe fn bytes(&self, start: usize, end: usize) -> &[u8] {
        // SAFETY: `[start, end)` lies inside the live mapping (the caller's contract).
        unsafe { std::slice::from_raw_parts(self.mem.as_ptr().add(start), end - start) }
    }
}

// SAFETY: `mem` is a private anonymous mapping of `len` bytes at a fixed address until the
// region drops, readable and writable; no one outside this process maps it, and the
// segment's single appender is the only writer in this process (the mapping contract).
unsafe impl Region for DirectRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.mem.as_mut_ptr()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn writable(&self) -> bool {
        true
    }

    fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        let end = offset.saturating_add(len).min(self.len);
        if offset >= end {
            return Ok(());
        }
        let start = offset - offset % self.align;
        let end = end
            .div_ceil(self.align)
            .saturating_mul(self.align)
            .min(self.len);
        // Blocks below the released front are in the file already, written by the
        // write-out that preceded their release and perhaps not durable: one `fdatasync`
        // makes them so, after the blocks above are written.
        let front = self
            .ring
            .as_ref()
            .map_or(0, |r| r.released.load(Ordering::Acquire));
        if start < front {
            if front < end {
                // SAFETY: `front < end <= len`; as below.
                let src = unsafe { self.bytes(front, end) };
                write_all_at(&self.file, src, front as u64, false)?;
            }
            return self.file.sync();
        }
        // A direct write refuses a length that is not a multiple of the alignment, so a last
        // block the file's length cuts short goes through the page cache, with its own sync.
        let whole = self.len - self.len % self.align;
        if end > whole {
            if start < whole {
                // SAFETY: `start < whole <= len`; as below.
                let src = unsafe { self.bytes(start, whole) };
                write_all_at(&self.file, src, start as u64, true)?;
            }
            let from = start.max(whole);
            // SAFETY: `from < end <= len`; as below.
            let src = unsafe { self.bytes(from, end) };
            return buffered_write_durable_at(&self.path, src, from as u64);
        }
        // SAFETY: `start < end <= len`. The device only reads these bytes; concurrent stores
        // by the appender go past the published end, which this write may carry as it carries
        // any byte of the block (recovery treats them as a torn tail).
        let src = unsafe { self.bytes(start, end) };
        write_all_at(&self.file, src, start as u64, true)
    }

    fn write_out(&self, offset: usize, len: usize) -> io::Result<()> {
        let end = offset.saturating_add(len).min(self.len);
        // Whole blocks only, ending at or below `end`: a block the appender is still filling
        // is left to the next write.
        let start = offset - offset % self.align;
        let end = end - end % self.align;
        if start >= end {
            return Ok(());
        }
        // SAFETY: `start < end <= len`; the caller passes only published bytes, which nothing
        // writes again.
        let src = unsafe { self.bytes(start, end) };
        write_all_at(&self.file, src, start as u64, false)
    }

    fn prefault(&self) -> io::Result<()> {
        let Some(ring) = &self.ring else {
            return crate::storage::prefault_memory(&self.mem);
        };
        // The slots' pages (the window), writable in the region's page tables.
        let end = lock(&ring.mem).len.min(self.len);
        if !crate::storage::populate(&self.mem, 0, end)? {
            // No appender exists yet, so touching the pages overwrites nothing.
            crate::storage::touch_pages(self.mem.as_mut_ptr(), end);
        }
        Ok(())
    }

    fn ring_bytes(&self) -> usize {
        self.ring
            .as_ref()
            .map_or(0, |r| r.bytes.load(Ordering::Acquire))
    }

    fn set_ring_bytes(&self, bytes: usize) {
        let Some(ring) = &self.ring else {
            return;
        };
        let mut mem = lock(&ring.mem);
        let chunk = bytes.div_ceil(SLOTS).max(1).div_ceil(ring.grain) * ring.grain;
        if chunk * SLOTS == mem.len || ring.released.load(Ordering::Acquire) != 0 {
            // The same ring, or one that has moved already: it stays.
            return;
        }
        // A ring of the new size over the first window, holding the bytes written there so
        // far (the header and activation block before the first append; a reopened tail's
        // records).
        let Ok(mut new) = RingMem::new(bytes, ring.grain) else {
            return;
        };
        // Bytes stored past the old window are past the new one too (it starts at 0 as well).
        new.overflow = mem.overflow;
        let old_end = mem.len.min(self.len);
        let new_end = new.len.min(self.len);
        // The region's bytes of the new window, from the old slots and, where the new window
        // is larger, from the anonymous memory past them.
        // SAFETY: both ranges are `new_end` bytes inside live mappings (`new.ctl` is `new.len`
        // long, the region `self.len`), and nothing stores into the region meanwhile.
        unsafe { std::ptr::copy_nonoverlapping(self.mem.as_ptr(), new.ctl.as_mut_ptr(), new_end) };
        let mapped = (|| -> io::Result<()> {
            for q in (0..new_end).step_by(new.chunk) {
                // SAFETY: the window holds no published byte yet, and the slot already
                // holds what the region holds there.
                unsafe { new.map_slot(self.mem.as_mut_ptr(), self.len, q, false) }?;
            }
            if old_end > new_end {
                // Past the new window the old slots' bytes move to anonymous memory: with
                // `released` at 0 the old window starts at 0, so position `q` is offset `q`
                // of the old ring. Only up to the last byte that is not zero (none, unless
                // this is a reopened tail), so that zeros take no memory.
                // SAFETY: `[new_end, old_end)` lies inside the old ring's `ctl`
                // (`old_end <= mem.len`).
                let old = unsafe {
                    std::slice::from_raw_parts(mem.ctl.as_ptr().add(new_end), old_end - new_end)
                };
                let keep = old.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                // Those bytes now lie past the window: no slot may be mapped over them.
                if keep > 0 {
                    new.overflow = new.overflow.max(new_end + keep);
                }
                // SAFETY: past the new window, inside the region, page multiples; a reader
                // there reads the same bytes before and after, and no appender runs yet.
                unsafe {
                    crate::storage::map_anon_fixed(
                        self.mem.as_mut_ptr().add(new_end),
                        old_end - new_end,
                        &old[..keep],
                    )
                }?;
            }
            Ok(())
        })();
        if mapped.is_ok() {
            ring.bytes.store(new.len, Ordering::Release);
            *mem = new;
        }
    }

    fn released(&self) -> usize {
        self.ring
            .as_ref()
            .map_or(0, |r| r.released.load(Ordering::Acquire))
    }

    fn release(&self, upto: usize) -> io::Result<()> {
        let Some(ring) = &self.ring else {
            return Ok(());
        };
        let mem = lock(&ring.mem);
        let upto = upto.min(self.len);
        let upto = upto - upto % mem.chunk;
        let front = ring.released.load(Ordering::Acquire);
        if upto <= front {
            return Ok(());
        }
        // SAFETY: `front < upto <= len`, multiples of the page size, inside the region. The
        // caller passes only bytes that are in the file and never written again (published
        // bytes below a completed write-out or sync), so nothing stores into them, and a
        // reader reads the same bytes from the file's pages as from the slots they replace.
        unsafe {
            self.file
                .map_over(self.mem.as_mut_ptr().add(front), upto - front, front as u64)
        }?;
        // The released slots, cleared, at the window's new end. They are past `front + W`,
        // where the appender does not store until `released` moves below (or past an
        // overflow, where it did and no slot goes).
        let from = (front + mem.len).max(upto);
        let to = (upto + mem.len).min(self.len);
        let overflow = mem.overflow;
        for q in (from..to).step_by(mem.chunk) {
            if q >= overflow {
                // SAFETY: as the comment above: nobody stores into or reads `[q, q + chunk)`.
                unsafe { mem.map_slot(self.mem.as_mut_ptr(), self.len, q, true) }?;
            }
        }
        drop(mem);
        ring.released.store(upto, Ordering::Release);
        Ok(())
    }

    fn note_overflow(&self, end: usize) {
        if let Some(ring) = &self.ring {
            let mut mem = lock(&ring.mem);
            mem.overflow = mem.overflow.max(end);
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes `len` zero bytes over a new file with direct writes and syncs them, so that later
/// direct writes overwrite written blocks (no unwritten-extent conversion per sync).
pub(crate) fn write_zeros(path: &Path, len: u64) -> io::Result<()> {
    let file = DirectFile::open(path)?;
    let align = file.align() as u64;
    let zeros = anon(ZERO_CHUNK)?;
    // SAFETY: a fresh anonymous mapping of ZERO_CHUNK bytes, all zero, never written.
    let buf = unsafe { std::slice::from_raw_parts(zeros.as_ptr(), ZERO_CHUNK) };
    let whole = len - len % align;
    let mut off = 0u64;
    while off < whole {
        let n = (whole - off).min(ZERO_CHUNK as u64) as usize;
        write_all_at(&file, &buf[..n], off, false)?;
        off += n as u64;
    }
    if whole < len {
        let rest = (len - whole) as usize;
        buffered_write_all_at(path, &buf[..rest], whole)?;
    }
    file.sync()
}

/// Page-aligned anonymous memory of `len` bytes, all zero: aligned for every direct write.
pub(crate) fn anon(len: usize) -> io::Result<MmapRaw> {
    // Anonymous mappings are page-aligned, which satisfies every direct-I/O memory alignment.
    Ok(MmapRaw::from(
        MmapOptions::new().len(len.max(1)).map_anon()?,
    ))
}

#[cfg(test)]
mod tests {
    use crate::storage::{Access, FsStorage, IoPath, Storage};

    #[test]
    fn a_direct_sync_puts_the_bytes_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStorage.file_system(dir.path()).unwrap();
        if !fs.direct_io {
            eprintln!(
                "skipped: no direct I/O on {}: {:?}",
                fs.name, fs.direct_io_error
            );
            return;
        }
        let path = dir.path().join("f");
        FsStorage
            .create_allocated(&path, 64 * 1024, IoPath::Direct)
            .unwrap();
        let region = FsStorage.map(&path, Access::Fresh(IoPath::Direct)).unwrap();
        // SAFETY: the region is writable and 64 KiB long.
        unsafe { std::ptr::copy_nonoverlapping(b"hello".as_ptr(), region.as_ptr().add(5000), 5) };
        region.sync(5000, 5).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[5000..5005], b"hello");
        assert!(on_disk[..5000].iter().all(|&b| b == 0));
        // Reopened, the region holds the file's bytes.
        let again = FsStorage.map(&path, Access::Write(IoPath::Direct)).unwrap();
        // SAFETY: 64 KiB, read only here.
        let bytes = unsafe { std::slice::from_raw_parts(again.as_ptr(), again.len()) };
        assert_eq!(bytes, &on_disk[..]);
    }

    #[test]
    fn memory_given_back_by_a_dropped_region_comes_back_zeroed_for_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        if !FsStorage.file_system(dir.path()).unwrap().direct_io {
            eprintln!("skipped: no direct I/O in the temporary directory");
            return;
        }
        // An unusual length, so that no other test's buffer is taken from the pool.
        let len = 52 * 4096;
        for round in 0..3 {
            let path = dir.path().join(format!("f{round}"));
            FsStorage
                .create_allocated(&path, len, IoPath::Direct)
                .unwrap();
            let region = FsStorage.map(&path, Access::Fresh(IoPath::Direct)).unwrap();
            // SAFETY: the region is writable and `len` bytes long; read only here otherwise.
            let bytes = unsafe { std::slice::from_raw_parts(region.as_ptr(), region.len()) };
            assert!(bytes.iter().all(|&b| b == 0), "round {round}: not zeroed");
            // SAFETY: as above.
            unsafe { std::ptr::write_bytes(region.as_ptr(), 0xAB, region.len()) };
        }
    }
}
