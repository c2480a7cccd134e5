//! One segment: a mapped file of frames, its single appender, its readers and its recovery scan.

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

const PAGE: u64 = 4096;

/// The sparse record index keeps one entry per `2^INDEX_MIN_SHIFT` records or more.
const INDEX_MIN_SHIFT: u32 = 5;
/// At most this many entries (8 bytes each: 512 KiB) per segment; larger segments use a
/// coarser stride instead of more memory.
const INDEX_MAX_ENTRIES: usize = 1 << 16;
/// [`SegmentAppender::append_and_checksum`] copies and checksums a longer payload in chunks of
/// this many bytes (`examples/append_probe.rs`, 1 thread, against copying the whole payload and
/// then checksumming it: 4 KiB 444 -> 254 ns, 64 KiB 6.8 -> 5.6 µs; 2 KiB chunks gave 5.8 µs,
/// 4 and 8 KiB no gain). See `docs/PERFORMANCE.md`, "Large records: copy and checksum
/// interleaved".
const INTERLEAVE_CHUNK: usize = 512;

/// The sparse per-segment record index (see [`Segment::records_from`]).
///
/// Entry `k` holds the byte offset of the frame of record `first_lsn + k·2^shift`, or 0 while
/// that record is not written. Its size is fixed when the segment is mapped (on the rotation
/// worker, or at open), from the most records the segment could hold (one 16-byte frame each):
/// `entries = max_records / 2^shift + 1`, with the smallest `shift ≥ 5` that keeps `entries ≤
/// 65 536`. The appender only stores into it (no allocation on the append path): a Relaxed
/// store before the frame's Release publish, so a reader that loaded the published end with
/// Acquire sees every entry of the records before that end.
struct RecordIndex {
    shift: u32,
    entries: Box<[AtomicU64]>,
}

impl RecordIndex {
    fn for_limit(limit: usize) -> Self {
        let max_records = limit.saturating_sub(DATA_OFFSET) / FRAME_HEADER_LEN + 1;
        let mut shift = INDEX_MIN_SHIFT;
        while (max_records >> shift) + 1 > INDEX_MAX_ENTRIES {
            shift += 1;
        }
        let n = (max_records >> shift) + 1;
        Self {
            shift,
            entries: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Notes that record `lsn` (of a segment starting at `first`) has its frame at `offset`.
    /// Called by the single writer (appender or recovery scan) before it publishes the frame.
    #[inline]
    fn note(&self, first: u64, lsn: u64, offset: usize) {
        let rel = lsn.wrapping_sub(first);
        if rel & ((1 << self.shift) - 1) == 0 {
            if let Some(e) = usize::try_from(rel >> self.shift)
                .ok()
                .and_then(|k| self.entries.get(k))
            {
                e.store(offset as u64, Ordering::Relaxed);
            }
        }
    }
}

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
    /// Serialises syncs of this segment so that a failure is seen by every later sync.
    sync_lock: Mutex<()>,
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

/// One record read from a segment. It keeps the segment mapped while it lives.
#[derive(Clone)]
pub struct Record {
    seg: Segment,
    lsn: u64,
    offset: usize,
    len: usize,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("lsn", &self.lsn)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Record {
    /// The record's LSN.
    #[must_use]
    pub fn lsn(&self) -> u64 {
        self.lsn
    }

    /// The record's bytes, straight from the mapping.
    #[must_use]
    pub fn data(&self) -> &[u8] {
        self.seg.published_slice(self.offset, self.len)
    }

    /// Byte offset of the record's payload in its segment file (its frame header is the 16
    /// bytes before).
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The segment the record lives in.
    #[must_use]
    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl std::ops::Deref for Record {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data()
    }
}

impl AsRef<[u8]> for Record {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
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
    /// Creates segment `index` in `dir`, ready for records.
    ///
    /// Steps, in order: create `gs-vault-{ts}-{index}-pre.log`; allocate `capacity` bytes for
    /// real; map it and pre-fault every page writable; write the header; `msync` the header's
    /// page (with the file's size and allocation, which `fdatasync` semantics include);
    /// rename to the final name; `fsync` the directory.
    ///
    /// Crash semantics: a crash before the rename leaves a `-pre` file, which `open` deletes. A
    /// crash after the rename leaves either name with a durable header and no records (an
    /// unactivated segment), which recovery removes if it lies past the log's tail. The
    /// returned segment's name is durable.
    ///
    /// # Errors
    /// I/O errors (disk full included) name the file; on failure the file is removed, under
    /// its `-pre` or (if only the directory fsync failed) its final name.
    pub fn create(
        storage: &dyn Storage,
        dir: &Path,
        index: u64,
        capacity: u64,
        io: IoPath,
    ) -> Result<PreparedSegment> {
        Self::try_create_at(storage, dir, index, capacity, now_nanos(), false, io)
            .map_err(|(e, _)| e)
    }

    /// Prepares segment `index` under the name made of `created`; the error also tells whether
    /// the new file had been renamed to the final name (replacing any file there) before the
    /// failure.
    ///
    /// `replacing`: the final name is that of a spare of this index (an enlargement, or its
    /// retry) which later spares may follow. A failure after the rename (the directory fsync)
    /// then leaves the new file under that name, a valid unactivated segment a retry replaces
    /// under the same name: removing it would leave the index without a file once any later
    /// directory fsync made the removal durable, a gap before those spares that `open`
    /// refuses. A fresh index's file is removed instead (a retry names it at a later time).
    fn try_create_at(
        storage: &dyn Storage,
        dir: &Path,
        index: u64,
        capacity: u64,
        created: u64,
        replacing: bool,
        io: IoPath,
    ) -> std::result::Result<PreparedSegment, (Error, bool)> {
        let capacity = round_capacity(capacity);
        let pre = dir.join(segment_file_name(created, index, true));
        let fin = dir.join(segment_file_name(created, index, false));
        let salt = random_salt(&pre).map_err(|e| (e, false))?;
        let mut renamed = false;
        let mut made = || {
            storage
                .create_allocated(&pre, capacity, io)
                .map_err(|e| Error::io("allocate", &pre, e))?;
            let region = storage
                .map(&pre, Access::Fresh(io))
                .map_err(|e| Error::io("map", &pre, e))?;
            region
                .prefault()
                .map_err(|e| Error::io("pre-fault", &pre, e))?;
            let header = SegmentHeader {
                version: FORMAT_VERSION_ZEROED,
                index,
                salt,
                capacity,
                created_nanos: created,
            };
            write_bytes(&*region, 0, &header.encode());
            // Only the header's page: the rest is allocated and reads as zeros after a crash
            // already (fallocate's unwritten extents, or zeros the fallback wrote and synced).
            // Syncing it all would write every zero to the disk and clean the pages the
            // pre-fault just dirtied, so the appender would take a write fault per page.
            region
                .sync(0, PAGE as usize)
                .map_err(|e| Error::io("sync", &pre, e))?;
            storage
                .rename(&pre, &fin)
                .map_err(|e| Error::io("rename", &pre, e))?;
            renamed = true;
            storage
                .sync_dir(dir)
                .map_err(|e| Error::io("sync directory", dir, e))?;
            let limit = usize::try_from(capacity)
                .unwrap_or(usize::MAX)
                .min(region.len());
            Ok(Segment::from_parts(
                fin.clone(),
                header,
                region,
                limit,
                Some(io),
            ))
        };
        let made = made();
        match made {
            Ok(seg) => {
                seg.inner.synced.store(seg.inner.limit, Ordering::Release);
                Ok(PreparedSegment { seg })
            }
            Err(e) => {
                // Remove the file under whichever name it has: left under the final name (the
                // directory fsync failed), it would become a second file of this index when
                // the retry, at a later time, gets a name with a later timestamp. Unless it
                // replaced a spare's file (`replacing`): then it stays, see above.
                if !renamed {
                    let _ = storage.remove(&pre);
                } else if !replacing {
                    let _ = storage.remove(&fin);
                }
                Err((e, renamed))
            }
        }
    }

    /// Makes a file the log dropped into segment `index`, ready for records: the rotation
    /// worker's way to reuse a segment `truncate_front` gave up instead of allocating a new
    /// one. `from` is the dropped file, already renamed out of the log to a `-pre` name (and
    /// that rename made durable) by whoever dropped it; no one may map it any more.
    ///
    /// Steps, in order: map the file as it is (no allocation, and no zero-fill: past the new
    /// header its old frames stay as stale bytes); pre-fault it; write a version-2 header
    /// (this index, a new random salt, a new creation time) followed by zeros up to the end of
    /// the first page (the activation block and the first frame header, so the segment reads
    /// as unactivated and, once activated, as empty); sync that page; rename to the final name
    /// `gs-vault-{ts}-{index}.log`; `fsync` the directory.
    ///
    /// Crash semantics: before the rename the file keeps its `-pre` name, whatever its header
    /// holds (the old one, the new one or a torn mix), and `open` deletes it, as it deletes a
    /// half-prepared segment. After the rename the name holds a durable version-2 header with
    /// a zero activation block: an unactivated segment, removed by recovery if it lies past
    /// the log's tail. The stale frames never validate: every frame checksum binds the salt,
    /// and the salt is new.
    ///
    /// Cost: one page written and synced, one rename, one directory `fsync`; on the mmap path
    /// the pre-fault reads whatever of the file is not in the page cache.
    ///
    /// # Errors
    /// I/O errors name the file; a file whose length is not `capacity` is refused. On failure
    /// the file is removed, under whichever name it has.
    pub fn recycle(
        storage: &dyn Storage,
        dir: &Path,
        from: &Path,
        index: u64,
        capacity: u64,
        io: IoPath,
    ) -> Result<PreparedSegment> {
        let created = now_nanos();
        let fin = dir.join(segment_file_name(created, index, false));
        let mut renamed = false;
        let mut made = || -> Result<Segment> {
            let salt = random_salt(from)?;
            // The file holds stale bytes, not zeros, but nothing needs them: the direct path's
            // region starts as zeros without reading the file, and a mapping reads them in.
            let region = storage
                .map(from, Access::Fresh(io))
                .map_err(|e| Error::io("map", from, e))?;
            if region.len() as u64 != capacity || round_capacity(capacity) != capacity {
                return Err(Error::io(
                    "recycle",
                    from,
                    std::io::Error::other(format!(
                        "the file holds {} bytes, not the {capacity} of a segment",
                        region.len()
                    )),
                ));
            }
            region
                .prefault()
                .map_err(|e| Error::io("pre-fault", from, e))?;
            let header = SegmentHeader {
                version: FORMAT_VERSION,
                index,
                salt,
                capacity,
                created_nanos: created,
            };
            write_bytes(&*region, 0, &header.encode());
            fill_zero(&*region, HEADER_LEN, PAGE as usize - HEADER_LEN);
            region
                .sync(0, PAGE as usize)
                .map_err(|e| Error::io("sync", from, e))?;
            storage
                .rename(from, &fin)
                .map_err(|e| Error::io("rename", from, e))?;
            renamed = true;
            storage
                .sync_dir(dir)
                .map_err(|e| Error::io("sync directory", dir, e))?;
            let limit = usize::try_from(capacity)
                .unwrap_or(usize::MAX)
                .min(region.len());
            Ok(Segment::from_parts(
                fin.clone(),
                header,
                region,
                limit,
                Some(io),
            ))
        };
        match made() {
            Ok(seg) => {
                seg.inner.synced.store(seg.inner.limit, Ordering::Release);
                Ok(PreparedSegment { seg })
            }
            Err(e) => {
                let _ = storage.remove(if renamed { &fin } else { from });
                Err(e)
            }
        }
    }

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
        // this handle's own memory, which holds the bytes already.
        if copy && region.as_ptr() != inner.region.as_ptr() {
            write_bytes(&*region, 0, self.published_slice(0, self.published_end()));
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
        let from = self.written_end();
        if end <= from || inner.sync_failed.load(Ordering::Acquire) {
            return Ok(());
        }
        inner
            .region
            .write_out(from, end - from)
            .map_err(|e| Error::io("write out", &inner.path, e))?;
        inner.written.fetch_max(end, Ordering::AcqRel);
        Ok(())
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

    /// Prepares the replacement of this segment's file that keeps only its records before
    /// `lsn` (a `truncate_back` cut inside it): a new file with the same header (index,
    /// creation time hence name, salt, capacity), the activation block, and a byte copy of the
    /// frames before the cut, synced, under the `-pre` name. Nothing is renamed yet: call
    /// [`Replacement::install`] and then sync the directory (or [`Replacement::abandon`]).
    ///
    /// The salt is kept, so the copied frames and commit markers validate as they are (their
    /// CRCs bind salt and LSN, both unchanged); the new file never holds bytes of the old one
    /// past the cut, so reusing the salt cannot make a discarded frame validate.
    ///
    /// Cost: one file of this segment's capacity allocated and pre-faulted, and a copy and
    /// `msync` of the bytes before the cut (at most one segment).
    ///
    /// Crash semantics: until `install` renames it, a crash leaves a `-pre` file, which `open`
    /// deletes; this segment's file is untouched.
    ///
    /// # Errors
    /// `lsn` must lie in this segment's published records (`first_lsn..=published_next_lsn`);
    /// I/O errors (a full disk included) name the file, which is removed again.
    pub fn prepare_cut(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        lsn: u64,
        io: IoPath,
    ) -> Result<Replacement> {
        let first = self.first_lsn();
        let next = self.published_next_lsn();
        if first == 0 || lsn < first || lsn > next {
            return Err(Error::io(
                "cut",
                &self.inner.path,
                std::io::Error::other(format!(
                    "LSN {lsn} is not in this segment's records {first}..{next}"
                )),
            ));
        }
        let end = if lsn == next {
            self.published_end()
        } else {
            self.records_from(lsn)
                .next()
                .map_or(DATA_OFFSET, |r| r.offset - FRAME_HEADER_LEN)
        };
        self.prepare_replacement(storage, dir, end, first, lsn, io)
    }

    /// Prepares the replacement of this segment's file by an empty one activated at
    /// `first_lsn` (the log emptied by `truncate_back` or `reset`): as
    /// [`Segment::prepare_cut`], without records.
    ///
    /// # Errors
    /// As [`Segment::prepare_cut`]; `first_lsn` must be a valid first LSN (1..2⁶³).
    pub fn prepare_empty(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        first_lsn: u64,
        io: IoPath,
    ) -> Result<Replacement> {
        if !(1..=crate::format::MAX_FIRST_LSN).contains(&first_lsn) {
            return Err(Error::io(
                "cut",
                &self.inner.path,
                std::io::Error::other(format!("{first_lsn} is not a valid first LSN")),
            ));
        }
        self.prepare_replacement(storage, dir, DATA_OFFSET, first_lsn, first_lsn, io)
    }

    fn prepare_replacement(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        end: usize,
        first_lsn: u64,
        next_lsn: u64,
        io: IoPath,
    ) -> Result<Replacement> {
        let header = self.inner.header;
        let pre = dir.join(segment_file_name(header.created_nanos, header.index, true));
        let fin = self.inner.path.clone();
        let made = || -> Result<Segment> {
            storage
                .create_allocated(&pre, header.capacity, io)
                .map_err(|e| Error::io("allocate", &pre, e))?;
            let region = storage
                .map(&pre, Access::Fresh(io))
                .map_err(|e| Error::io("map", &pre, e))?;
            region
                .prefault()
                .map_err(|e| Error::io("pre-fault", &pre, e))?;
            let limit = usize::try_from(header.capacity)
                .unwrap_or(usize::MAX)
                .min(region.len());
            if end > limit {
                return Err(Error::io(
                    "cut",
                    &pre,
                    std::io::Error::other("the new file is smaller than the frames to keep"),
                ));
            }
            write_bytes(&*region, 0, &header.encode());
            write_bytes(
                &*region,
                ACTIVATION_OFFSET,
                &encode_activation(first_lsn, header.salt),
            );
            // Published frames of the old file: immutable, and below what any appender writes.
            write_bytes(
                &*region,
                DATA_OFFSET,
                self.published_slice(DATA_OFFSET, end - DATA_OFFSET),
            );
            // Header, activation and kept frames in one msync; the rest of the file is
            // allocated zeros, as after `create`.
            region
                .sync(0, end.max(DATA_OFFSET))
                .map_err(|e| Error::io("sync", &pre, e))?;
            let seg = Segment::from_parts(fin.clone(), header, region, limit, Some(io));
            // The kept frames sit at the same offsets: their index entries carry over (a
            // replacement starting at another LSN keeps no frame, so there is nothing to take).
            if first_lsn == self.first_lsn() {
                seg.adopt_index(self, next_lsn);
            }
            seg.inner.witness.wrote(DATA_OFFSET, end - DATA_OFFSET);
            seg.inner.synced.store(end, Ordering::Release);
            Ok(seg)
        };
        match made() {
            Ok(seg) => Ok(Replacement {
                seg,
                pre,
                end,
                first_lsn,
                next_lsn,
            }),
            Err(e) => {
                let _ = storage.remove(&pre);
                Err(e)
            }
        }
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

    /// Reads the valid chain of frames and sets the readable end to where it stops.
    ///
    /// Only valid before an appender exists (at open); later calls return the published state.
    #[must_use]
    pub fn scan(&self) -> Scan {
        let inner = &*self.inner;
        let activation = decode_activation(
            read_bytes(&*inner.region, ACTIVATION_OFFSET, 12),
            inner.header.salt,
        );
        let Activation::Valid(first) = activation else {
            return Scan {
                activation,
                records: 0,
                end: DATA_OFFSET,
                next_lsn: 0,
                stop: Stop::End,
                attested: 0,
            };
        };
        let salt = inner.header.salt;
        let version = inner.header.version;
        let limit = inner.limit;
        let mut off = DATA_OFFSET;
        let mut lsn = first;
        let mut attested = 0;
        let stop = loop {
            if off + FRAME_HEADER_LEN > limit {
                break Stop::End;
            }
            let h = read_bytes(&*inner.region, off, FRAME_HEADER_LEN);
            if h.iter().all(|&b| b == 0) {
                break Stop::End;
            }
            let len = read_u32(h, 0) as usize;
            let kind = h[4];
            // A record's checksum uses its LSN, a marker's the next LSN: both `lsn` here.
            if h[5..8] != [0, 0, 0]
                || read_u32(h, 12) != lsn_tag(version, lsn)
                || (kind != KIND_RECORD && kind != KIND_MARKER)
            {
                break Stop::Invalid(CorruptionKind::BadFrameHeader);
            }
            if len > limit - off - FRAME_HEADER_LEN || len > MAX_PAYLOAD {
                break Stop::Invalid(CorruptionKind::LengthPastEnd { len: len as u64 });
            }
            let flen = frame_len(len).min(limit - off);
            let stored = read_u32(h, 8);
            let payload = read_bytes(&*inner.region, off + FRAME_HEADER_LEN, len);
            if kind == KIND_RECORD {
                let partial = crc32c::crc32c_append(crc32c::crc32c(&h[0..8]), payload);
                if seal_crc(partial, salt, lsn) != stored {
                    break Stop::Invalid(CorruptionKind::ChecksumMismatch);
                }
                if !inner.appender_taken.load(Ordering::Acquire) {
                    inner.index.note(first, lsn, off);
                }
                lsn += 1;
            } else {
                if len != MARKER_PAYLOAD_LEN {
                    break Stop::Invalid(CorruptionKind::BadMarker);
                }
                let mut p = [0u8; MARKER_PAYLOAD_LEN];
                p.copy_from_slice(payload);
                if marker_crc(&p, salt) != stored {
                    break Stop::Invalid(CorruptionKind::ChecksumMismatch);
                }
                let (att, next) = (read_u64(&p, 0), read_u64(&p, 8));
                if next != lsn || att >= lsn {
                    break Stop::Invalid(CorruptionKind::BadMarker);
                }
                attested = attested.max(att);
            }
            off += flen;
        };
        if !inner.appender_taken.load(Ordering::Acquire) {
            inner.witness.wrote(DATA_OFFSET, off - DATA_OFFSET);
            inner.first_lsn.store(first, Ordering::Release);
            inner.published_next_lsn.store(lsn, Ordering::Release);
            inner.published.store(off, Ordering::Release);
        }
        Scan {
            activation,
            records: lsn - first,
            end: off,
            next_lsn: lsn,
            stop,
            attested,
        }
    }

    /// Looks past the end of the valid chain (`from`): the highest LSN any valid commit marker
    /// there attests, and how far the bytes to drop reach. Used by recovery to tell a torn tail
    /// (nothing attested past it) from lost acknowledged records.
    ///
    /// In a segment allocated as zeros (version 1) every non-zero byte past the chain was
    /// written by its writer: `dirty_end` is the end of the last one. In a recycled segment
    /// (version 2) the bytes there may be stale, left by the file's earlier use; what counts
    /// is what this use wrote: `dirty_end` is the end of the last frame past `from` that
    /// validates under this segment's salt (found with the frames' LSN tags, see
    /// `docs/ARCHITECTURE.md` §4.7), or `from + 16` if the frame header at `from` is not zero
    /// (a torn frame), else `from`.
    ///
    /// Returns nothing useful once an appender exists (the bytes would be racing with it).
    #[must_use]
    pub fn scan_beyond(&self, from: usize) -> Beyond {
        let inner = &*self.inner;
        let limit = inner.limit;
        if inner.appender_taken.load(Ordering::Acquire) || from >= limit {
            return Beyond {
                attested: 0,
                dirty_end: from.min(limit),
            };
        }
        if self.is_recycled() {
            let mut beyond = Beyond {
                attested: 0,
                dirty_end: from,
            };
            if from + FRAME_HEADER_LEN <= limit
                && read_bytes(&*inner.region, from, FRAME_HEADER_LEN)
                    .iter()
                    .any(|&b| b != 0)
            {
                beyond.dirty_end = from + FRAME_HEADER_LEN;
            }
            self.stray_frames(from, |frame| {
                beyond.attested = beyond.attested.max(frame.attested);
                beyond.dirty_end = beyond.dirty_end.max(frame.end);
            });
            return beyond;
        }
        let bytes = read_bytes(&*inner.region, from, limit - from);
        let dirty_end = from + last_nonzero(bytes).map_or(0, |p| p + 1);
        #[allow(clippy::cast_possible_truncation)]
        let want = frame_prefix(MARKER_PAYLOAD_LEN as u32, KIND_MARKER);
        let mut attested = 0;
        let mut off = from.next_multiple_of(FRAME_ALIGN);
        // A marker's first byte (its length) is non-zero, so every marker starts before
        // `dirty_end`, though its last bytes may be zero and lie past it.
        while off < dirty_end && off + MARKER_FRAME_LEN <= limit {
            let h = read_bytes(&*inner.region, off, MARKER_FRAME_LEN);
            if h[0..8] == want && h[12..16] == [0; 4] {
                let mut p = [0u8; MARKER_PAYLOAD_LEN];
                p.copy_from_slice(&h[FRAME_HEADER_LEN..]);
                if marker_crc(&p, inner.header.salt) == read_u32(h, 8) {
                    attested = attested.max(read_u64(&p, 0));
                }
            }
            off += FRAME_ALIGN;
        }
        Beyond {
            attested,
            dirty_end,
        }
    }

    /// Calls `found` for every frame at or past `from` (8-byte aligned offsets) that
    /// validates under this segment's salt, in a recycled (version-2) segment: the frames this
    /// use of the file wrote past the end of its valid chain, found without the chain. A frame
    /// of version 2 carries the low 32 bits of the LSN its checksum uses, so a record
    /// validates against the LSNs at or after the segment's first LSN that end in those bits
    /// (a marker states its LSN in its payload). Bytes of the file's earlier use carry another
    /// salt and never validate. A record cannot be checked in a segment that was never
    /// activated (no first LSN): there only markers are found.
    ///
    /// Reads every byte from `from` to the end of the segment; a frame that validates is
    /// skipped whole, anything else one alignment step at a time. Only meaningful before an
    /// appender exists.
    fn stray_frames(&self, from: usize, mut found: impl FnMut(Stray)) {
        let inner = &*self.inner;
        let limit = inner.limit;
        let salt = inner.header.salt;
        let version = inner.header.version;
        let first = match decode_activation(read_bytes(&*inner.region, ACTIVATION_OFFSET, 12), salt)
        {
            Activation::Valid(first) => first,
            _ => 0,
        };
        // Records that fit in the space after the first frame: the largest LSN to try.
        let most = (limit.saturating_sub(DATA_OFFSET) / FRAME_HEADER_LEN) as u64;
        let mut off = from.max(DATA_OFFSET).next_multiple_of(FRAME_ALIGN);
        while off + FRAME_HEADER_LEN <= limit {
            let h = read_bytes(&*inner.region, off, FRAME_HEADER_LEN);
            let len = read_u32(h, 0) as usize;
            let kind = h[4];
            let plausible = h[5..8] == [0, 0, 0]
                && (kind == KIND_RECORD || kind == KIND_MARKER)
                && len <= limit - off - FRAME_HEADER_LEN
                && len <= MAX_PAYLOAD;
            if !plausible {
                off += FRAME_ALIGN;
                continue;
            }
            let tag = read_u32(h, 12);
            let stored = read_u32(h, 8);
            let payload = read_bytes(&*inner.region, off + FRAME_HEADER_LEN, len);
            let mut valid = None;
            if kind == KIND_MARKER && len == MARKER_PAYLOAD_LEN {
                let mut p = [0u8; MARKER_PAYLOAD_LEN];
                p.copy_from_slice(payload);
                if marker_crc(&p, salt) == stored && lsn_tag(version, read_u64(&p, 8)) == tag {
                    valid = Some(read_u64(&p, 0));
                }
            } else if kind == KIND_RECORD && first != 0 {
                let partial = crc32c::crc32c_append(crc32c::crc32c(&h[0..8]), payload);
                // The LSNs at or after `first` whose low 32 bits are the tag.
                let mut lsn = first + u64::from(tag.wrapping_sub(lsn_tag(version, first)));
                while lsn - first <= most {
                    if seal_crc(partial, salt, lsn) == stored {
                        valid = Some(0);
                        break;
                    }
                    lsn += 1 << 32;
                }
            }
            match valid {
                Some(attested) => {
                    let end = (off + frame_len(len)).min(limit);
                    found(Stray {
                        offset: off,
                        end,
                        attested,
                    });
                    off = end;
                }
                None => off += FRAME_ALIGN,
            }
        }
    }

    /// Takes the segment's single appender after recovery, continuing at `end` with `next_lsn`.
    /// Writes the activation block if `first_lsn` is not already there, and clears what lies
    /// past `end` up to `zero_to` (the [`Beyond::dirty_end`] of the scan) so that later appends
    /// never sit before bytes this use of the file wrote: in a segment allocated as zeros
    /// (version 1) by zeroing all of `[end, zero_to)`; in a recycled one (version 2) by zeroing
    /// only the frame header at `end` (the terminator) and the header of every frame past it
    /// that validates under the salt (the rest is stale, and cannot validate). No write is
    /// synced here: the caller syncs ([`Segment::sync_all`] covers them; recovery syncs every
    /// segment before it returns).
    ///
    /// # Errors
    /// Fails if the segment is read-only or already has an appender.
    pub fn resume(
        &self,
        first_lsn: u64,
        end: usize,
        next_lsn: u64,
        zero_to: usize,
    ) -> Result<SegmentAppender> {
        let inner = &*self.inner;
        if !inner.region.writable() || inner.appender_taken.swap(true, Ordering::AcqRel) {
            return Err(Error::io(
                "append to",
                &inner.path,
                std::io::Error::other("segment is read-only or already has a writer"),
            ));
        }
        let end = end.clamp(DATA_OFFSET, inner.limit);
        let zero_to = zero_to.min(inner.limit);
        if self.is_recycled() {
            // The headers are found before any is zeroed, so the search sees what the scan saw.
            let mut headers = Vec::new();
            self.stray_frames(end, |frame| headers.push(frame.offset));
            if end + FRAME_HEADER_LEN <= inner.limit {
                headers.push(end);
            }
            let mut zeroed = end;
            for at in headers {
                fill_zero(&*inner.region, at, FRAME_HEADER_LEN);
                zeroed = zeroed.max(at + FRAME_HEADER_LEN);
            }
            inner
                .zeroed_end
                .store(zeroed.max(zero_to).min(inner.limit), Ordering::Release);
            inner.synced.fetch_min(end, Ordering::AcqRel);
        } else if zero_to > end {
            fill_zero(&*inner.region, end, zero_to - end);
            inner.zeroed_end.store(zero_to, Ordering::Release);
            inner.synced.fetch_min(end, Ordering::AcqRel);
        }
        let current = decode_activation(
            read_bytes(&*inner.region, ACTIVATION_OFFSET, 12),
            inner.header.salt,
        );
        if current != Activation::Valid(first_lsn) {
            write_bytes(
                &*inner.region,
                ACTIVATION_OFFSET,
                &encode_activation(first_lsn, inner.header.salt),
            );
            inner.synced.store(0, Ordering::Release);
        }
        inner.first_lsn.store(first_lsn, Ordering::Release);
        inner.published_next_lsn.store(next_lsn, Ordering::Release);
        inner.published.store(end, Ordering::Release);
        Ok(SegmentAppender {
            seg: self.clone(),
            base: inner.region.as_ptr(),
            offset: end,
            next_lsn,
            limit: inner.limit,
            first_lsn,
            version: inner.header.version,
        })
    }

    /// Records of this segment from `from_lsn` on, as published when the iterator was made.
    ///
    /// The start is found with the segment's sparse record index: the iterator begins at the
    /// indexed record at or before `from_lsn` and reads at most `2^shift − 1` frames (plus
    /// commit markers between them) before it reaches `from_lsn`; see
    /// [`Segment::index_stride`] and [`Records::frames_read`].
    #[must_use]
    pub fn records_from(&self, from_lsn: u64) -> Records {
        let end = self.published_end();
        let (offset, lsn) = self.index_start(from_lsn, end);
        Records {
            seg: self.clone(),
            offset,
            end,
            lsn,
            from_lsn,
            frames_read: 0,
        }
    }

    /// As [`Segment::records_from`], but without the index: reads every frame from the start
    /// of the segment. The reference the index is checked and benchmarked against.
    #[must_use]
    pub fn records_from_start(&self, from_lsn: u64) -> Records {
        let end = self.published_end();
        Records {
            seg: self.clone(),
            offset: DATA_OFFSET,
            end,
            lsn: self.first_lsn(),
            from_lsn,
            frames_read: 0,
        }
    }

    /// Records between two index entries: a lookup reads at most this many frames minus one
    /// (commit markers aside) after the indexed one.
    #[must_use]
    pub fn index_stride(&self) -> u64 {
        1 << self.inner.index.shift
    }

    /// Forgets the record index entries of records `lsn..` (see
    /// [`SegmentAppender::forget_index_from`]): lookups of those records then start from an
    /// earlier entry. Only the code that moves the segment's end back calls this.
    pub fn forget_index_from(&self, lsn: u64) {
        let index = &self.inner.index;
        let first = self.first_lsn();
        let rel = lsn.saturating_sub(first);
        let k = usize::try_from(rel.div_ceil(1 << index.shift)).unwrap_or(usize::MAX);
        for e in index.entries.iter().skip(k) {
            e.store(0, Ordering::Relaxed);
        }
    }

    /// Copies `from`'s record index entries of the records before `next_lsn` into this
    /// segment's index, for a segment whose frames before `next_lsn` are a byte copy of
    /// `from`'s at the same offsets, with the same first LSN and capacity (a file that replaces
    /// `from` with its records cut at `next_lsn`). Call it before the copy is published.
    /// Without it lookups stay correct (an unwritten entry makes them start earlier), only
    /// slower.
    #[allow(dead_code)] // for the replacement file of `truncate_back`
    pub(crate) fn adopt_index(&self, from: &Segment, next_lsn: u64) {
        let (to, src) = (&self.inner.index, &from.inner.index);
        let first = from.first_lsn();
        if to.shift != src.shift || first == 0 {
            return;
        }
        for (k, (t, f)) in to.entries.iter().zip(src.entries.iter()).enumerate() {
            if first + ((k as u64) << src.shift) >= next_lsn {
                break;
            }
            t.store(f.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Bytes the record index takes (fixed when the segment is mapped).
    #[must_use]
    pub fn index_bytes(&self) -> usize {
        self.inner.index.entries.len() * std::mem::size_of::<u64>()
    }

    /// The frame offset and LSN of the indexed record at or before `lsn` that lies below the
    /// published end `end`; the start of the segment if there is none.
    fn index_start(&self, lsn: u64, end: usize) -> (usize, u64) {
        let inner = &*self.inner;
        let first = self.first_lsn();
        let from_start = (DATA_OFFSET, first);
        if first == 0 || lsn <= first {
            return from_start;
        }
        let shift = inner.index.shift;
        let Ok(k) = usize::try_from((lsn - first) >> shift) else {
            return from_start;
        };
        // Past the last entry, or an entry not written below `end` yet (then `lsn` is not
        // published either): use the last entry that is, scanning further only in that case.
        let mut k = k.min(inner.index.entries.len() - 1);
        while k > 0 {
            // Relaxed: `end` was loaded with Acquire, which orders the stores of every entry
            // of a record before `end` (each made before the Release publish) before this.
            let off = inner.index.entries[k].load(Ordering::Relaxed);
            match usize::try_from(off) {
                Ok(off) if off >= DATA_OFFSET && off < end => {
                    return (off, first + ((k as u64) << shift))
                }
                _ => k -= 1,
            }
        }
        from_start
    }
}

/// Iterator over the published records of one segment.
#[derive(Debug)]
pub struct Records {
    seg: Segment,
    offset: usize,
    end: usize,
    lsn: u64,
    from_lsn: u64,
    frames_read: u64,
}

impl Records {
    /// Frame headers read so far (records and commit markers, skipped or returned): what the
    /// index bounds.
    #[must_use]
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// The LSN of the next record this iterator reads (whether or not it is published yet).
    #[must_use]
    pub fn next_lsn(&self) -> u64 {
        self.lsn.max(self.from_lsn)
    }

    /// The segment read.
    #[must_use]
    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    /// Extends the iterator to the segment's current published end, so that records published
    /// since it was made (or last extended) are read too. Returns whether it grew.
    pub fn extend_to_published(&mut self) -> bool {
        let end = self.seg.published_end();
        if end > self.end {
            self.end = end;
            true
        } else {
            false
        }
    }
}

impl Iterator for Records {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if self.lsn == 0 || self.offset + FRAME_HEADER_LEN > self.end {
                return None;
            }
            self.frames_read += 1;
            self.seg.inner.witness.read(self.offset, FRAME_HEADER_LEN);
            let h = read_bytes(&*self.seg.inner.region, self.offset, FRAME_HEADER_LEN);
            let len = read_u32(h, 0) as usize;
            let kind = h[4];
            let start = self.offset + FRAME_HEADER_LEN;
            if len > self.end - start {
                // Published frames were written or validated by us; this cannot happen unless
                // the file changed under the mapping contract. Stop rather than read past.
                return None;
            }
            self.offset = (self.offset + frame_len(len)).min(self.end);
            if kind == KIND_RECORD {
                let lsn = self.lsn;
                if lsn >= self.seg.discarded_from() {
                    // Truncated away after this iterator was made: the bytes are still mapped
                    // (the old file), but they are no longer the log's.
                    self.end = self.offset;
                    return None;
                }
                self.lsn += 1;
                if lsn >= self.from_lsn {
                    return Some(Record {
                        seg: self.seg.clone(),
                        lsn,
                        offset: start,
                        len,
                    });
                }
            }
        }
    }
}

impl PreparedSegment {
    /// The segment index.
    #[must_use]
    pub fn index(&self) -> u64 {
        self.seg.index()
    }

    /// Usable bytes.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.seg.limit()
    }

    /// The prepared segment's handle.
    #[must_use]
    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    /// Replaces this (unused) segment with one of at least `capacity` bytes under the same
    /// name, for a record larger than a normal segment holds.
    ///
    /// Crash semantics: the larger file is prepared as `-pre` exactly like [`Segment::create`],
    /// then renamed over the old file and the directory synced: after a crash the name holds
    /// either the old or the new segment, both valid and unactivated.
    ///
    /// # Errors
    /// As [`Segment::create`], with this segment given back unchanged when the failure came
    /// before the rename (a full disk, typically): its file was not touched, so it can still
    /// serve a normal-size record without allocating anything. `None` when the rename had
    /// replaced its file (only the directory fsync failed): the new file stays under the name,
    /// so the index is never left without a file, and [`PreparedSegment::recreate`] replaces
    /// it.
    #[allow(clippy::result_large_err)] // the error path of a rare, already slow operation
    pub fn enlarge(
        self,
        storage: &dyn Storage,
        dir: &Path,
        capacity: u64,
    ) -> std::result::Result<Self, (Error, Option<Self>)> {
        let h = *self.seg.header();
        let io = self.seg.io_path().unwrap_or(IoPath::Mmap);
        match Segment::try_create_at(storage, dir, h.index, capacity, h.created_nanos, true, io) {
            Ok(bigger) => Ok(bigger),
            Err((e, false)) => Err((e, Some(self))),
            Err((e, true)) => Err((e, None)),
        }
    }

    /// Prepares segment `header.index` again, under the name of the file `header` describes
    /// (same index and creation time), replacing that file if it is still there. This is how
    /// the writer retries an [`PreparedSegment::enlarge`] that failed: the index was taken,
    /// and skipping it would leave an unactivated segment inside the log.
    ///
    /// Crash semantics: as [`PreparedSegment::enlarge`].
    ///
    /// # Errors
    /// As [`Segment::create`].
    pub fn recreate(
        storage: &dyn Storage,
        dir: &Path,
        header: &SegmentHeader,
        capacity: u64,
        io: IoPath,
    ) -> Result<Self> {
        Segment::try_create_at(
            storage,
            dir,
            header.index,
            capacity,
            header.created_nanos,
            true,
            io,
        )
        .map_err(|(e, _)| e)
    }

    /// Makes the segment the writer's tail, starting at `first_lsn`.
    ///
    /// Crash semantics: the activation block is a plain store into the mapping; it becomes
    /// durable with the segment's next sync, which always covers offset 0 of a newly activated
    /// segment. Until then, a crash leaves the segment unactivated and recovery treats it as
    /// past the tail.
    #[must_use]
    pub fn activate(self, first_lsn: u64) -> SegmentAppender {
        let inner = &*self.seg.inner;
        inner.appender_taken.store(true, Ordering::Release);
        write_bytes(
            &*inner.region,
            ACTIVATION_OFFSET,
            &encode_activation(first_lsn, inner.header.salt),
        );
        inner.synced.store(0, Ordering::Release);
        inner.first_lsn.store(first_lsn, Ordering::Release);
        inner.published_next_lsn.store(first_lsn, Ordering::Release);
        inner.published.store(DATA_OFFSET, Ordering::Release);
        SegmentAppender {
            base: inner.region.as_ptr(),
            offset: DATA_OFFSET,
            next_lsn: first_lsn,
            limit: inner.limit,
            first_lsn,
            version: inner.header.version,
            seg: self.seg,
        }
    }
}

impl Replacement {
    /// The LSN the first record appended to the replacement gets.
    #[must_use]
    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// Renames the replacement over the segment's file; returns its appender, continuing
    /// after the kept frames. The caller makes the rename durable with a directory `fsync`.
    ///
    /// Crash semantics: `rename` replaces the name atomically, so a crash leaves the old file
    /// or the new one under it (before the directory `fsync`, either; after it, the new one),
    /// both valid segments; a `-pre` file left over is deleted by `open`. The old file's
    /// mappings (other [`Segment`] handles) keep showing the old bytes.
    ///
    /// # Errors
    /// The rename's error; the `-pre` file is then removed and the old file stays in place.
    pub fn install(self, storage: &dyn Storage) -> Result<SegmentAppender> {
        let fin = self.seg.inner.path.clone();
        if let Err(e) = storage.rename(&self.pre, &fin) {
            let _ = storage.remove(&self.pre);
            return Err(Error::io("rename", &self.pre, e));
        }
        let inner = &*self.seg.inner;
        inner.appender_taken.store(true, Ordering::Release);
        inner.first_lsn.store(self.first_lsn, Ordering::Release);
        inner
            .published_next_lsn
            .store(self.next_lsn, Ordering::Release);
        inner.published.store(self.end, Ordering::Release);
        let appender = SegmentAppender {
            base: inner.region.as_ptr(),
            offset: self.end,
            next_lsn: self.next_lsn,
            limit: inner.limit,
            first_lsn: self.first_lsn,
            version: inner.header.version,
            seg: self.seg,
        };
        // The replacement was allocated as zeros: its terminator is there already.
        Ok(appender)
    }

    /// Removes the `-pre` file (the truncation was given up before it was installed).
    pub fn abandon(self, storage: &dyn Storage) {
        let pre = self.pre.clone();
        drop(self);
        let _ = storage.remove(&pre);
    }
}

impl SegmentAppender {
    /// The segment written to.
    #[must_use]
    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    /// The LSN the next record gets.
    #[must_use]
    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// The offset the next frame goes to.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes left for frames.
    #[must_use]
    pub fn room(&self) -> usize {
        self.limit - self.offset
    }

    /// Appends one record frame (unpublished until [`SegmentAppender::publish`]). `partial` is
    /// [`crate::partial_crc`] of `payload`.
    ///
    /// # Errors
    /// [`NoRoom`] if the frame does not fit; nothing is written then.
    pub fn append(&mut self, payload: &[u8], partial: u32) -> Result<u64, NoRoom> {
        let flen = frame_len(payload.len());
        if payload.len() > MAX_PAYLOAD || flen > self.room() {
            return Err(NoRoom);
        }
        self.write(self.offset + FRAME_HEADER_LEN, payload);
        Ok(self.finish_frame(payload.len(), partial, flen))
    }

    /// As [`SegmentAppender::append`], computing [`crate::partial_crc`] itself after it started
    /// copying the payload: the copy does not depend on the checksum, so the CPU overlaps the
    /// two (for a 256 B record the checksum's chain of `crc32` instructions is longer than the
    /// copy). A payload longer than 512 bytes is copied and checksummed 512 bytes at a time, so
    /// that each chunk's checksum runs while the stores of its copy drain to memory (whole, the
    /// copy of a 64 KiB payload fills the store buffer and then waits on memory, and the
    /// checksum after it overlaps little). For a caller that holds up no one by checksumming
    /// here (an uncontended append lock); concurrent appenders should checksum before they take
    /// the lock.
    ///
    /// # Errors
    /// [`NoRoom`] if the frame does not fit; nothing is written then.
    pub fn append_and_checksum(&mut self, payload: &[u8]) -> Result<u64, NoRoom> {
        let flen = frame_len(payload.len());
        if payload.len() > MAX_PAYLOAD || flen > self.room() {
            return Err(NoRoom);
        }
        let at = self.offset + FRAME_HEADER_LEN;
        let partial = if payload.len() <= INTERLEAVE_CHUNK {
            self.write(at, payload);
            crate::partial_crc(payload)
        } else {
            // Chunk by chunk: each chunk's checksum runs while the stores of its copy drain to
            // memory, and reads the source while it is still in L1. The first chunk is one word
            // short, so that with the prefix word it is 64 words like the others: each chunk is
            // one block of the CRC lanes, with no odd bytes to finish.
            #[allow(clippy::cast_possible_truncation)]
            let prefix = u64::from_le_bytes(frame_prefix(payload.len() as u32, KIND_RECORD));
            let (first, mut rest) = payload.split_at(INTERLEAVE_CHUNK - 8);
            self.write(at, first);
            let mut crc = crate::crc::crc32c_prefixed(prefix, first);
            let mut off = at + first.len();
            while !rest.is_empty() {
                let (chunk, after) = rest.split_at(rest.len().min(INTERLEAVE_CHUNK));
                self.write(off, chunk);
                crc = crate::crc::crc32c_append(crc, chunk);
                off += chunk.len();
                rest = after;
            }
            crc
        };
        Ok(self.finish_frame(payload.len(), partial, flen))
    }

    /// Writes the header of the frame whose payload is already at `offset + FRAME_HEADER_LEN`
    /// and moves past it.
    fn finish_frame(&mut self, payload_len: usize, partial: u32, flen: usize) -> u64 {
        let lsn = self.next_lsn;
        let crc = seal_crc(partial, self.seg.inner.header.salt, lsn);
        #[allow(clippy::cast_possible_truncation)]
        let mut h = [0u8; FRAME_HEADER_LEN];
        h[0..8].copy_from_slice(&frame_prefix(payload_len as u32, KIND_RECORD));
        h[8..12].copy_from_slice(&crc.to_le_bytes());
        h[12..16].copy_from_slice(&lsn_tag(self.version, lsn).to_le_bytes());
        self.write(self.offset, &h);
        self.seg.inner.index.note(self.first_lsn, lsn, self.offset);
        self.offset += flen;
        self.next_lsn += 1;
        lsn
    }

    /// Appends a commit marker attesting that every record up to `attested` was durable before
    /// this marker was written (unpublished until [`SegmentAppender::publish`]).
    ///
    /// # Errors
    /// [`NoRoom`] if the marker does not fit.
    pub fn append_marker(&mut self, attested: u64) -> Result<(), NoRoom> {
        if MARKER_FRAME_LEN > self.room() {
            return Err(NoRoom);
        }
        debug_assert!(attested < self.next_lsn);
        let p = marker_payload(attested, self.next_lsn);
        #[allow(clippy::cast_possible_truncation)]
        let mut f = [0u8; MARKER_FRAME_LEN];
        f[0..8].copy_from_slice(&frame_prefix(MARKER_PAYLOAD_LEN as u32, KIND_MARKER));
        f[8..12].copy_from_slice(&marker_crc(&p, self.seg.inner.header.salt).to_le_bytes());
        f[12..16].copy_from_slice(&lsn_tag(self.version, self.next_lsn).to_le_bytes());
        f[FRAME_HEADER_LEN..].copy_from_slice(&p);
        self.write(self.offset, &f);
        self.offset += MARKER_FRAME_LEN;
        Ok(())
    }

    /// Forgets the record index entries of records `lsn..` (0 = not written). Whoever moves
    /// this appender back over published records (a truncation of the log's end) must call it
    /// before lowering the published end, so that no reader follows an entry to an offset the
    /// records rewritten after the cut no longer start at.
    pub fn forget_index_from(&mut self, lsn: u64) {
        self.seg.forget_index_from(lsn);
    }

    /// Makes every frame appended so far visible to readers and to sync.
    ///
    /// In a recycled segment (version 2) it first writes the terminator, a zero frame header
    /// right after the last frame (if 16 bytes are left): the bytes there may be stale, and a
    /// sync covers the terminator with the frames (see [`Segment::sync_to`]), so a synced
    /// chain always ends at a zero header.
    pub fn publish(&self) {
        let inner = &*self.seg.inner;
        if self.version >= FORMAT_VERSION && self.offset + FRAME_HEADER_LEN <= self.limit {
            // SAFETY: `[offset, offset + 16)` lies inside the mapping (checked against `limit`,
            // which is at most the region's length) and at or past the published end, which
            // moves to `offset` only below: no reader forms a slice over these bytes. The
            // appender is the segment's only writer, and `&self` here excludes the `&mut self`
            // of every other write.
            unsafe {
                std::ptr::write_bytes(self.base.add(self.offset), 0, FRAME_HEADER_LEN);
            }
            inner.witness.wrote(self.offset, FRAME_HEADER_LEN);
        }
        inner
            .published_next_lsn
            .store(self.next_lsn, Ordering::Release);
        inner.published.store(self.offset, Ordering::Release);
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        assert!(at >= self.seg.published_end() && at + bytes.len() <= self.limit);
        // SAFETY: the range is inside the mapping (`limit` ≤ region length, checked above) and
        // at or past the published end, so no reader forms a slice over it; this appender is
        // the segment's only writer and `&mut self` serialises its writes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(at), bytes.len());
        }
        self.seg.inner.witness.wrote(at, bytes.len());
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
    // SAFETY: in bounds and writable (checked above). Used only while the caller holds the
    // segment exclusively: during creation, replacement (a `-pre` file nobody else maps),
    // activation or resume, before any reader can look at these bytes (the activation block and header are never part of a published range).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), region.as_ptr().add(offset), bytes.len());
    }
}

fn fill_zero(region: &dyn Region, offset: usize, len: usize) {
    assert!(region.writable() && offset <= region.len() && len <= region.len() - offset);
    // SAFETY: in bounds and writable (checked above); called from `resume` before the appender
    // exists and past the published end, so no reader can see these bytes.
    unsafe { std::ptr::write_bytes(region.as_ptr().add(offset), 0, len) }
}

/// Faults every page of a fresh mapping writable by rewriting one byte per page.
pub(crate) fn touch_pages(base: *mut u8, len: usize) {
    let mut off = 0;
    while off < len {
        // SAFETY: `off < len`, the mapping's length; called only on a `-pre` file's mapping
        // that no other thread can reach yet. Rewriting the byte it holds changes nothing.
        unsafe {
            let p = base.add(off);
            p.write_volatile(p.read_volatile());
        }
        off += PAGE as usize;
    }
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
