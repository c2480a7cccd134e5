//! One segment: a mapped file of frames, its single appender, its readers and its recovery scan.
//!
//! The handle ([`Segment`]) and its sync live here; the steps that make a segment are in
//! `prepare`, the appender in `append`, the recovery scan in `scan`, and reading records
//! back through the sparse index in `read`.

mod append;
mod prepare;
mod read;
mod scan;

use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, ByteWitness, Mutex, Ordering};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    decode_activation, encode_activation, frame_len, frame_prefix, lsn_tag, marker_crc,
    marker_payload, read_u32, read_u64, seal_crc, segment_file_name, Activation, HeaderError,
    SegmentHeader, ACTIVATION_OFFSET, DATA_OFFSET, FORMAT_VERSION, FORMAT_VERSION_ZEROED,
    FRAME_ALIGN, FRAME_HEADER_LEN, HEADER_LEN, KIND_MARKER, KIND_RECORD, MARKER_FRAME_LEN,
    MARKER_PAYLOAD_LEN, MAX_CAPACITY, MAX_PAYLOAD, MIN_CAPACITY,
};
use crate::storage::{Access, IoPath, Region, Storage};

use read::RecordIndex;
pub use read::{Record, Records};

const PAGE: u64 = 4096;

/// A handle to one mapped segment file. Cloning is cheap; the mapping lives until the last
/// handle (including every [`Record`] read from it) is dropped.
#[derive(Clone)]
pub struct Segment {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    header: SegmentHeader,
    region: Box<dyn Region>,
    /// The I/O path of a writable region; `None` for a read-only one.
    io: Option<IoPath>,
    /// Bytes usable: the header's capacity, or less if the file is shorter.
    limit: usize,
    /// First LSN once activated, else 0.
    first_lsn: AtomicU64,
    /// End of the published frames: readers may read `[DATA_OFFSET, published)`. Only the
    /// appender (or the scan, before any appender exists) advances it, with Release.
    published: AtomicUsize,
    /// The LSN after the last published record (first_lsn + published records).
    published_next_lsn: AtomicU64,
    /// Bytes known durable from offset 0.
    synced: AtomicUsize,
    /// Bytes from offset 0 written out by [`Segment::write_out_to`] (not durable); rounded to
    /// whole blocks by the region, so this may overstate by less than a block what a direct
    /// write carried, never understate a sync.
    written: AtomicUsize,
    /// Set once an appender was handed out: there is at most one writer, ever.
    appender_taken: AtomicBool,
    /// End of the bytes [`Segment::resume`] zeroed past the valid chain (0 if none).
    zeroed_end: AtomicUsize,
    /// Serialises syncs of this segment so that a failure is seen by every later sync; also
    /// write-outs and the ring's releases, which must not remap memory a direct write reads.
    sync_lock: Mutex<()>,
    /// Times the appender found the direct path's memory ring full and gave memory back
    /// itself (see `SegmentAppender`).
    ring_waits: AtomicU64,
    /// Set when a sync failed: the kernel may have dropped dirty pages, so no later sync of
    /// this segment may report success (fsyncgate).
    sync_failed: AtomicBool,
    /// Records of this handle's file from this LSN on are no longer part of the log (a
    /// `truncate_back` or `reset` replaced or removed the file); `u64::MAX` while they are.
    /// Only ever lowered. Readers stop here, so they never return a discarded record.
    discarded_from: AtomicU64,
    /// Loom's view of the frame bytes (nothing outside the crate's unit tests).
    witness: ByteWitness,
    /// Where every `2^shift`-th record's frame starts.
    index: RecordIndex,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.inner.path)
            .field("index", &self.inner.header.index)
            .field("first_lsn", &self.first_lsn())
            .field("published", &self.published_end())
            .finish_non_exhaustive()
    }
}

/// A segment created, allocated, pre-faulted, header synced and installed under its final name,
/// not yet holding records. The rotation worker makes these ahead of need.
#[derive(Debug)]
pub struct PreparedSegment {
    seg: Segment,
}

/// A segment's replacement file, made by [`Segment::prepare_cut`] or [`Segment::prepare_empty`]:
/// durable (header, activation, kept frames) under its `-pre` name, not yet in the log.
#[derive(Debug)]
pub struct Replacement {
    seg: Segment,
    pre: PathBuf,
    end: usize,
    first_lsn: u64,
    next_lsn: u64,
}

/// The only writer of a segment. It copies frames into the mapping and publishes them.
pub struct SegmentAppender {
    seg: Segment,
    base: *mut u8,
    offset: usize,
    next_lsn: u64,
    limit: usize,
    /// The segment's first LSN, which the record index counts from.
    first_lsn: u64,
    /// The segment's format version: 2 (recycled) adds the LSN tag to every frame header and
    /// the zero terminator after the last frame.
    version: u32,
    /// Offset up to which the appender may store without looking at the direct path's ring
    /// again: the end of the ring's memory when last looked at (`usize::MAX`: no ring).
    bound: usize,
}

// SAFETY: `base` points into the segment's mapping, which `seg` keeps alive; the appender is the
// only writer of that mapping (enforced by `appender_taken`), so moving it to another thread
// moves the sole write capability with it.
unsafe impl Send for SegmentAppender {}
// SAFETY: every method that writes takes `&mut self`; `&self` methods only read plain fields.
unsafe impl Sync for SegmentAppender {}

impl fmt::Debug for SegmentAppender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentAppender")
            .field("segment", &self.seg)
            .field("offset", &self.offset)
            .field("next_lsn", &self.next_lsn)
            .finish_non_exhaustive()
    }
}

/// The frame does not fit in what is left of the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

/// Why a segment's chain of frames stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// At a zero frame header or at the end of the usable space: a clean end.
    End,
    /// At bytes that are not a valid frame.
    Invalid(CorruptionKind),
}

/// What a scan of a segment's frames found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The activation block.
    pub activation: Activation,
    /// Valid records in the chain.
    pub records: u64,
    /// Offset where the chain of valid frames ends.
    pub end: usize,
    /// The LSN after the last valid record (0 when not activated).
    pub next_lsn: u64,
    /// Why the chain stops at `end`.
    pub stop: Stop,
    /// The highest LSN any commit marker of the chain attests as durable (0 if none).
    pub attested: u64,
}

/// What lies past the end of a segment's valid chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beyond {
    /// The highest LSN attested by a valid commit marker found past the chain (0 if none).
    pub attested: u64,
    /// End of the last non-zero byte past the chain (equal to the start when all zero).
    pub dirty_end: usize,
}

/// A frame past the end of a recycled segment's chain that validates under its salt.
#[derive(Debug, Clone, Copy)]
struct Stray {
    offset: usize,
    end: usize,
    /// What a commit marker attests (0 for a record).
    attested: u64,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn random_salt(path: &Path) -> Result<u64> {
    let mut b = [0u8; 8];
    crate::storage::fill_random(&mut b).map_err(|e| Error::io("random salt for", path, e))?;
    Ok(u64::from_le_bytes(b) | 1)
}

/// Rounds a requested capacity up to whole pages and checks its bounds.
#[must_use]
pub fn round_capacity(capacity: u64) -> u64 {
    capacity.clamp(MIN_CAPACITY, MAX_CAPACITY).div_ceil(PAGE) * PAGE
}

/// The capacity a segment needs to hold one record of `payload_len` bytes (plus a marker).
#[must_use]
pub fn capacity_for(payload_len: usize) -> u64 {
    round_capacity((DATA_OFFSET + MARKER_FRAME_LEN + frame_len(payload_len)) as u64)
}

impl Segment {
    /// Whether this handle is the only one of its segment: no reader, iterator or record
    /// holds the file's bytes. Only such a segment's file may be recycled, since recycling
    /// rewrites bytes an old mapping would show.
    #[must_use]
    pub fn is_sole_handle(&self) -> bool {
        Arc::strong_count(&self.inner) == 1
    }

    /// Whether the segment is recycled (format version 2): past its frames the file may hold
    /// stale bytes of an earlier use.
    #[must_use]
    pub fn is_recycled(&self) -> bool {
        self.inner.header.version >= FORMAT_VERSION
    }

    fn from_parts(
        path: PathBuf,
        header: SegmentHeader,
        region: Box<dyn Region>,
        limit: usize,
        io: Option<IoPath>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                path,
                header,
                region,
                io,
                limit,
                first_lsn: AtomicU64::new(0),
                published: AtomicUsize::new(DATA_OFFSET),
                published_next_lsn: AtomicU64::new(0),
                synced: AtomicUsize::new(0),
                written: AtomicUsize::new(0),
                zeroed_end: AtomicUsize::new(0),
                appender_taken: AtomicBool::new(false),
                sync_lock: Mutex::new(()),
                ring_waits: AtomicU64::new(0),
                sync_failed: AtomicBool::new(false),
                discarded_from: AtomicU64::new(u64::MAX),
                witness: ByteWitness::new(),
                index: RecordIndex::for_limit(limit),
            }),
        }
    }

    /// Maps an existing segment file and validates its header. `index` is the index its file
    /// name states. No frame is read yet: call [`Segment::scan`].
    ///
    /// # Errors
    /// [`Error::Corruption`] for a short file, bad magic, bad header checksum, an index that
    /// differs from the name, an implausible capacity or a file shorter than its capacity
    /// (`Truncated`, at the file's end); I/O errors name the file.
    pub fn open(storage: &dyn Storage, path: &Path, index: u64, access: Access) -> Result<Self> {
        let region = match storage.map(path, access) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(Error::corrupt(
                    path,
                    0,
                    CorruptionKind::ShortFile { len: 0 },
                ))
            }
            Err(e) => return Err(Error::io("map", path, e)),
        };
        if region.len() < DATA_OFFSET {
            return Err(Error::corrupt(
                path,
                0,
                CorruptionKind::ShortFile {
                    len: region.len() as u64,
                },
            ));
        }
        let mut hb = [0u8; HEADER_LEN];
        hb.copy_from_slice(read_bytes(&*region, 0, HEADER_LEN));
        let header = match SegmentHeader::decode(&hb) {
            Ok(h) => h,
            Err(HeaderError::Magic) => {
                return Err(Error::corrupt(path, 0, CorruptionKind::BadMagic))
            }
            Err(HeaderError::Checksum) => {
                return Err(Error::corrupt(path, 0, CorruptionKind::HeaderChecksum))
            }
            Err(HeaderError::Version(found)) => {
                return Err(Error::UnsupportedVersion {
                    file: path.to_path_buf(),
                    found,
                    supported: FORMAT_VERSION,
                })
            }
        };
        if header.index != index {
            return Err(Error::corrupt(
                path,
                16,
                CorruptionKind::IndexMismatch {
                    in_name: index,
                    in_header: header.index,
                },
            ));
        }
        if header.capacity < DATA_OFFSET as u64 || header.capacity > MAX_CAPACITY {
            return Err(Error::corrupt(
                path,
                32,
                CorruptionKind::BadCapacity {
                    capacity: header.capacity,
                },
            ));
        }
        // A short file is never a crash artifact (the size is durable before the rename), so
        // it is not read as a shorter segment: the records and commit markers it lost could be
        // acknowledged ones, and the markers would no longer be there to say so.
        if (region.len() as u64) < header.capacity {
            return Err(Error::corrupt(
                path,
                region.len() as u64,
                CorruptionKind::Truncated {
                    len: region.len() as u64,
                    capacity: header.capacity,
                },
            ));
        }
        let limit = usize::try_from(header.capacity)
            .unwrap_or(usize::MAX)
            .min(region.len());
        Ok(Self::from_parts(
            path.to_path_buf(),
            header,
            region,
            limit,
            access.io_path(),
        ))
    }

    /// Opens this segment's file again with `access` and carries over what is known of it
    /// (its LSNs, published end, record index and discard mark) without reading a frame.
    ///
    /// Used for two changes of I/O path: a direct-path log's finished segments become
    /// read-only mappings once durable ([`Access::Read`]: their memory is given back, and only
    /// pages a reader touches enter the page cache), and at open the tail segment a recovery
    /// scanned read-only becomes writable on the direct path. The new handle must not be
    /// used to write below this one's published end.
    ///
    /// Crash semantics: none; nothing is written.
    ///
    /// # Errors
    /// The I/O error of opening the file.
    pub fn reopen(&self, storage: &dyn Storage, access: Access) -> Result<Segment> {
        let inner = &*self.inner;
        // A writable direct region is filled from this handle's published bytes rather than
        // by reading the whole file again: they are the file's bytes (this handle reads the
        // file), the rest of a fresh region is zeros, and past the published end the file
        // holds zeros or a torn tail that `resume` zeroes and recovery then writes.
        let (map_as, copy) = match access {
            Access::Write(IoPath::Direct) => (Access::Fresh(IoPath::Direct), true),
            other => (other, false),
        };
        let region = storage
            .map(&inner.path, map_as)
            .map_err(|e| Error::io("map", &inner.path, e))?;
        if region.len() < inner.limit {
            return Err(Error::io(
                "map",
                &inner.path,
                std::io::Error::other("the file is shorter than when it was first opened"),
            ));
        }
        // A storage whose regions are views of one buffer per file (`SimStorage`) hands back
        // this handle's own memory, which holds the bytes already. A ring region maps the
        // file over the whole pages of published bytes (they are the file's), so only the
        // rest is copied into its memory.
        if copy && region.as_ptr() != inner.region.as_ptr() {
            let published = self.published_end();
            if region.ring_bytes() > 0 {
                region
                    .release(published)
                    .map_err(|e| Error::io("map", &inner.path, e))?;
            }
            let from = region.released().min(published);
            write_bytes(&*region, from, self.published_slice(from, published - from));
        }
        // The published bytes were read from the file, so once this handle's sync makes the
        // file durable (pages a dead process dirtied included) the new region need not write
        // them again: it counts them as synced, and its first sync starts at the published end.
        let synced = if copy {
            self.sync_all()?;
            self.published_end()
        } else {
            self.synced_end()
        };
        let seg = Segment::from_parts(
            inner.path.clone(),
            inner.header,
            region,
            inner.limit,
            access.io_path(),
        );
        let next = self.published_next_lsn();
        let n = &*seg.inner;
        n.first_lsn.store(self.first_lsn(), Ordering::Release);
        seg.adopt_index(self, next);
        n.published_next_lsn.store(next, Ordering::Release);
        n.published.store(self.published_end(), Ordering::Release);
        n.synced.store(synced, Ordering::Release);
        n.zeroed_end
            .store(inner.zeroed_end.load(Ordering::Acquire), Ordering::Release);
        n.discarded_from
            .store(self.discarded_from(), Ordering::Release);
        n.witness
            .wrote(DATA_OFFSET, self.published_end() - DATA_OFFSET);
        Ok(seg)
    }

    /// Hints that the whole file is about to be read ([`Region::will_read`]): a recovery scan
    /// of a log whose files are not in the page cache (the direct path never puts them there)
    /// then reads ahead in large requests.
    pub fn prefetch(&self) {
        self.inner.region.will_read();
    }

    /// The I/O path of this handle's region, or `None` if it is read-only.
    #[must_use]
    pub fn io_path(&self) -> Option<IoPath> {
        self.inner.io
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The segment index.
    #[must_use]
    pub fn index(&self) -> u64 {
        self.inner.header.index
    }

    /// The header.
    #[must_use]
    pub fn header(&self) -> &SegmentHeader {
        &self.inner.header
    }

    /// Usable bytes: the capacity (`open` refuses a file shorter than that).
    #[must_use]
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// The first LSN, once activated (or scanned), else 0.
    #[must_use]
    pub fn first_lsn(&self) -> u64 {
        self.inner.first_lsn.load(Ordering::Acquire)
    }

    /// End offset of the published frames.
    #[must_use]
    pub fn published_end(&self) -> usize {
        self.inner.published.load(Ordering::Acquire)
    }

    /// The LSN after the last published record (0 when not activated).
    #[must_use]
    pub fn published_next_lsn(&self) -> u64 {
        self.inner.published_next_lsn.load(Ordering::Acquire)
    }

    /// Bytes from offset 0 known durable.
    #[must_use]
    pub fn synced_end(&self) -> usize {
        self.inner.synced.load(Ordering::Acquire)
    }

    /// Bytes from offset 0 written to the file (durable or not): at least [`Segment::synced_end`].
    #[must_use]
    pub fn written_end(&self) -> usize {
        self.inner
            .written
            .load(Ordering::Acquire)
            .max(self.synced_end())
    }

    /// Writes the published bytes before `end` that are not written yet to the file, without
    /// making them durable ([`Region::write_out`]): on the direct path this keeps them from
    /// dying with the process. Whole blocks only; the block the appender is filling waits for
    /// the next call or sync. Does nothing on the mmap path or after a failed sync.
    ///
    /// Crash semantics: none beyond the kill -9 case above. Nothing becomes durable, and a
    /// later sync writes these bytes again with the durable write.
    ///
    /// # Errors
    /// The I/O error of the write, naming the file. It does not poison the segment: the bytes
    /// are still in memory and the next sync writes them or fails itself.
    pub fn write_out_to(&self, end: usize) -> Result<()> {
        let inner = &*self.inner;
        let end = end.min(self.published_end());
        let _serial = inner
            .sync_lock
            .lock()
            .unwrap_or_else(crate::sync::PoisonError::into_inner);
        self.write_out_locked(end, false)
    }

    /// [`Segment::write_out_to`] under the sync lock; `force`: give back every page of the
    /// ring that it can, not only once a quarter of the ring is written.
    fn write_out_locked(&self, end: usize, force: bool) -> Result<()> {
        let inner = &*self.inner;
        let from = self.written_end();
        if inner.sync_failed.load(Ordering::Acquire) {
            return Ok(());
        }
        if end > from {
            inner
                .region
                .write_out(from, end - from)
                .map_err(|e| Error::io("write out", &inner.path, e))?;
            inner.written.fetch_max(end, Ordering::AcqRel);
        }
        self.give_back(self.written_end(), force);
        Ok(())
    }

    /// Gives the direct path's ring the memory of published bytes below `end` that are in
    /// the file (a sync or write-out to `end` completed), once that is at least a quarter of
    /// the ring (each release is a few system calls), or whatever there is when `force`d.
    /// Under the sync lock unless every byte below `end` is durable. A failure to remap
    /// keeps the memory and is not an error of the log.
    fn give_back(&self, end: usize, force: bool) {
        let region = &*self.inner.region;
        let ring = region.ring_bytes();
        if ring == 0 {
            return;
        }
        let end = end.min(self.published_end());
        if force || end >= region.released().saturating_add(ring / 4) {
            let _ = region.release(end);
        }
    }

    /// Keeps the direct path's ring moving (the WAL's ring helper calls it as appends go):
    /// gives back the memory under the durable bytes, without waiting for a sync in progress
    /// (a sync writes only at and past the synced end, never where this remaps); and when
    /// that leaves more than half of the ring in use up to `end`, writes the published bytes
    /// out first (as [`Segment::write_out_to`]) so that the appender does not find the ring
    /// full. Nothing on the mmap path.
    ///
    /// Crash semantics: none; nothing is made durable.
    ///
    /// # Errors
    /// The I/O error of the write-out, naming the file; as for `write_out_to`, it does not
    /// poison the segment.
    pub fn relieve_ring(&self, end: usize) -> Result<()> {
        let region = &*self.inner.region;
        let ring = region.ring_bytes();
        if ring == 0 {
            return Ok(());
        }
        // Durable bytes: no sync or write-out reads them, so no lock is needed (the region
        // orders its own releases).
        self.give_back(self.synced_end(), false);
        let end = end.min(self.published_end());
        if end >= region.released().saturating_add(ring / 2) {
            let _serial = self
                .inner
                .sync_lock
                .lock()
                .unwrap_or_else(crate::sync::PoisonError::into_inner);
            self.write_out_locked(end, false)?;
        }
        Ok(())
    }

    /// Sets the memory bound of this segment's writes on the direct path (see
    /// [`crate::DEFAULT_RING_BYTES`]); nothing on the mmap path or where the platform keeps
    /// whole segments in memory.
    pub fn set_ring_bytes(&self, bytes: usize) {
        self.inner.region.set_ring_bytes(bytes);
    }

    /// Bytes from offset 0 whose memory the direct path's ring gave back (0 elsewhere): they
    /// are read from the file, mapped read-only in their place.
    #[must_use]
    pub fn released_end(&self) -> usize {
        self.inner.region.released()
    }

    /// Times the appender found the direct path's memory ring full and wrote out and gave
    /// back memory itself.
    #[must_use]
    pub fn ring_waits(&self) -> u64 {
        self.inner.ring_waits.load(Ordering::Relaxed)
    }

    /// Makes every byte before `end` durable with `msync(MS_SYNC)` over the not-yet-synced range.
    ///
    /// Crash semantics: when this returns `Ok`, the bytes before `end` survive power loss. On
    /// error nothing is known about them, and the error must poison the caller (the kernel may
    /// have dropped the dirty pages; a retry could report success over lost data), with one
    /// exception: on the direct path a full disk ([`is_no_space`]) leaves the bytes in the
    /// region and the segment usable, and a later call writes them again.
    ///
    /// # Errors
    /// The I/O error of the `msync` or direct write, naming the file.
    pub fn sync_to(&self, end: usize) -> Result<()> {
        let end = end.min(self.inner.limit);
        if end <= self.inner.synced.load(Ordering::Acquire) && !self.sync_failed() {
            return Ok(());
        }
        self.sync_range(end, false)
    }

    /// Syncs from offset 0 to the end of every byte that may differ from the disk, regardless
    /// of what is known synced (used at open, when pages may be dirty from a process that
    /// died): the published frames, and the bytes [`Segment::resume`] zeroed past them.
    ///
    /// Past that end the page cache holds only zeros, and the disk holds zeros too: the file
    /// was allocated as zeros and anything written past the chain was zeroed (and synced) by
    /// the open that cut it. (In a recycled segment both hold stale bytes there, of which no
    /// frame validates, after the terminator this sync covers.) Syncing the rest of the file would only write the zero pages the
    /// preparation dirtied (up to a whole segment of them), which is why this stops there.
    ///
    /// A direct region has no pages a dead process could have dirtied: its bytes below the
    /// synced end are on the file durably (see [`Segment::reopen`]), so it writes from there.
    ///
    /// # Errors
    /// The I/O error of the `msync`, `fdatasync` or direct write, naming the file.
    pub fn sync_all(&self) -> Result<()> {
        let inner = &*self.inner;
        let end = inner
            .published
            .load(Ordering::Acquire)
            .max(inner.zeroed_end.load(Ordering::Acquire))
            .min(inner.limit);
        self.sync_range(end, true)
    }

    /// Whether a sync of this segment ever failed; if so every later sync fails too.
    #[must_use]
    pub fn sync_failed(&self) -> bool {
        self.inner.sync_failed.load(Ordering::Acquire)
    }

    /// The LSN from which this handle's records are no longer part of the log (`u64::MAX`
    /// while they all are). Set by [`Segment::discard_from`]; readers ([`Records`]) stop there.
    #[must_use]
    pub fn discarded_from(&self) -> u64 {
        self.inner.discarded_from.load(Ordering::Acquire)
    }

    /// Marks this handle's records from `lsn` on as discarded from the log (a truncation
    /// replaced or removed its file). Readers of this handle stop before them; the bytes stay
    /// mapped and unchanged, so a [`Record`] returned earlier still reads what it read. Only
    /// lowers the mark.
    pub fn discard_from(&self, lsn: u64) {
        self.inner.discarded_from.fetch_min(lsn, Ordering::AcqRel);
    }

    fn sync_range(&self, end: usize, all: bool) -> Result<()> {
        let inner = &*self.inner;
        let _serial = inner
            .sync_lock
            .lock()
            .unwrap_or_else(crate::sync::PoisonError::into_inner);
        if inner.sync_failed.load(Ordering::Acquire) {
            return Err(Error::io(
                "sync",
                &inner.path,
                std::io::Error::other(
                    "an earlier sync of this segment failed; its data may be lost",
                ),
            ));
        }
        // A mapping's pages below `synced` may still be dirty from a process that died; a
        // direct region's bytes below it are on the file, durably, by construction (it only
        // counts what its own writes made durable, or what `reopen` read from a synced file).
        let from = if all && inner.io != Some(IoPath::Direct) {
            0
        } else {
            inner.synced.load(Ordering::Acquire)
        };
        if end <= from {
            return Ok(());
        }
        let from_page = from - from % (PAGE as usize);
        // A recycled segment's terminator, the zero frame header after the last frame, goes
        // with the frames: bytes past it may be stale, and only the terminator says the chain
        // ends there.
        let to = if self.is_recycled() {
            (end + FRAME_HEADER_LEN).min(inner.limit)
        } else {
            end
        };
        if let Err(e) = inner.region.sync(from_page, to - from_page) {
            // On the direct path the bytes are still in the region (process memory) and a
            // failed write changed no byte of the file below `synced`: with a full disk
            // (ENOSPC, EDQUOT) nothing is lost, and a later sync writes them again. Any other
            // failure, and any failure of the mapping (whose pages the kernel may have dropped,
            // fsyncgate), poisons the segment.
            if !(inner.io == Some(IoPath::Direct) && is_no_space(&e)) {
                inner.sync_failed.store(true, Ordering::Release);
            }
            return Err(Error::io("sync", &inner.path, e));
        }
        if all {
            // Everything is on disk now, but what counts for later syncs is the published end:
            // bytes the appender writes past it must be synced again.
            inner
                .synced
                .store(inner.published.load(Ordering::Acquire), Ordering::Release);
        } else {
            inner.synced.fetch_max(end, Ordering::AcqRel);
        }
        Ok(())
    }

    fn published_slice(&self, offset: usize, len: usize) -> &[u8] {
        let end = self.published_end();
        assert!(
            offset <= end && len <= end - offset,
            "read past the published end of {}",
            self.inner.path.display()
        );
        self.inner.witness.read(offset, len);
        read_bytes(&*self.inner.region, offset, len)
    }
}

/// Whether `e` says the file system (or the user's quota) has no space left.
#[must_use]
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Index of the last non-zero byte. Recovery calls it on the rest of a tail segment, mostly
/// zeros: whole blocks are tested with an OR that the compiler vectorises (a byte-wise
/// `rposition` made this the largest cost of reopening a log), and only the last block that
/// is not all zeros is searched byte by byte.
fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    const BLOCK: usize = 4096;
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let block = &bytes[start..end];
        if block.iter().fold(0u8, |acc, &b| acc | b) != 0 {
            return block.iter().rposition(|&b| b != 0).map(|p| start + p);
        }
        end = start;
    }
    None
}

fn read_bytes(region: &dyn Region, offset: usize, len: usize) -> &[u8] {
    assert!(offset <= region.len() && len <= region.len() - offset);
    // SAFETY: in bounds (checked above), and the `Region` contract keeps the pointer valid for
    // the region's lifetime. Callers read only bytes no one writes concurrently: published
    // frames, or any byte before an appender exists.
    unsafe { std::slice::from_raw_parts(region.as_ptr().add(offset), len) }
}

fn write_bytes(region: &dyn Region, offset: usize, bytes: &[u8]) {
    assert!(region.writable() && offset <= region.len() && bytes.len() <= region.len() - offset);
    // Memory the direct path's ring gave back is the file, mapped read-only.
    assert!(offset >= region.released() || bytes.is_empty());
    // SAFETY: in bounds and writable (checked above). Used only while the caller holds the
    // segment exclusively: during creation, replacement (a `-pre` file nobody else maps),
    // activation or resume, before any reader can look at these bytes (the activation block and header are never part of a published range).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), region.as_ptr().add(offset), bytes.len());
    }
}

fn fill_zero(region: &dyn Region, offset: usize, len: usize) {
    assert!(region.writable() && offset <= region.len() && len <= region.len() - offset);
    assert!(offset >= region.released() || len == 0);
    // SAFETY: in bounds and writable (checked above); called from `resume` before the appender
    // exists and past the published end, so no reader can see these bytes.
    unsafe { std::ptr::write_bytes(region.as_ptr().add(offset), 0, len) }
}

#[cfg(test)]
mod tests {
    use super::last_nonzero;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn last_nonzero_agrees_with_a_byte_wise_search(
            len in 0usize..20_000,
            marks in proptest::collection::vec((any::<usize>(), 1u8..), 0..4),
        ) {
            let mut bytes = vec![0u8; len];
            for (at, value) in marks {
                if len > 0 {
                    bytes[at % len] = value;
                }
            }
            prop_assert_eq!(last_nonzero(&bytes), bytes.iter().rposition(|&b| b != 0));
        }
    }
}
