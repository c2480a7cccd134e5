//! The I/O seam: every file-system operation a segment's life needs, behind two traits.
//!
//! [`FsStorage`] is the real implementation (memmap2 mappings, `fallocate`, `msync(MS_SYNC)`,
//! directory `fsync`, `flock` on Linux; what differs on macOS and Windows is in this module's
//! one submodule per platform, `linux`, `macos`, `windows`). A crash-simulating implementation
//! that tracks what reached the disk can stand in for it, because nothing above this module
//! touches a file directly.
//!
//! # The mapping contract
//!
//! A segment file is mapped `MAP_SHARED` once, for its whole length, and the mapping is the only
//! way vault reads or writes the file's bytes while it is open. The contract that makes handing
//! out pointers into that mapping sound:
//!
//! - **Nobody else writes the file.** The WAL directory is locked (`flock`) by the one `Wal`
//!   that writes it; read-only users (`vault cat`, `verify`, `info`) map read-only and never write.
//! - **The file is never truncated or shrunk while mapped.** Space is allocated for real
//!   (`fallocate`, or written zeros where the file system lacks it; never a sparse `ftruncate`)
//!   before the mapping is made, so a store can never fault on a full disk (`SIGBUS`). Recovery
//!   cuts a torn tail by writing zeros, not by truncating. A file may be unlinked while still
//!   mapped (`truncate_front`, with readers holding records): unlinking, unlike truncation,
//!   keeps the mapped inode and its pages alive until the last mapping goes. (Windows refuses
//!   to delete or replace a mapped file: its module defers that until the last mapping goes.)
//! - **Durability is only `msync(MS_SYNC)` (or `fdatasync`).** A store into the mapping is in the
//!   page cache, nothing more. After a failed sync the pages may be marked clean with the data
//!   lost (fsyncgate): the caller must poison itself, never retry and report success.
//! - **Readers see only published bytes.** The writer publishes an offset after its copy
//!   completes; a reader never forms a slice past it (see `Segment`).

use crate::sync::{StdAtomicBool, StdOrdering};
use std::any::Any;
use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use memmap2::MmapRaw;

// Platform code, one module per platform, the direct path's writes included (`DirectFile`);
// a `cfg` on the OS appears here and nowhere else in the crate. Each module provides the
// same functions, listed in `docs/ARCHITECTURE.md`, "Platforms".
mod mmap;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(not(target_os = "linux"))]
mod no_ring;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(target_os = "macos")]
use macos as platform;
#[cfg(windows)]
use windows as platform;

#[cfg(windows)]
pub use windows::{SharingViolation, LOCK_FILE};

/// A segment file opened for the direct path (`crate::direct`), one implementation per
/// platform: `open(path)` (an existing file, read-write, never following a link), `align()`
/// (the offset and length alignment of its reads and writes), `len()`, `read_at`, `write_at`
/// (not waiting for the device), `write_durable_at` (durable when it returns), `sync()`.
pub(crate) use platform::DirectFile;

/// Whether the direct path bounds a writable segment's memory with a ring
/// (`crate::direct`): it needs `DirectFile::map_over`, which replaces memory under live
/// readers. Linux only; elsewhere a direct-path segment keeps its whole file in memory.
pub(crate) const DIRECT_RING: bool = platform::DIRECT_RING;

/// The ring's memory: an in-memory file of `len` bytes (where `DIRECT_RING`).
pub(crate) use platform::{map_anon_fixed, map_fixed, page_size, ring_file};

/// Faults in `[offset, offset + len)` of anonymous memory writable without changing a page
/// that is already there (`MADV_POPULATE_WRITE`). `Ok(false)` where the kernel cannot, in
/// which case nothing was done: a fallback that stores into the pages could overwrite bytes
/// an appender just wrote.
pub(crate) fn populate(map: &MmapRaw, offset: usize, len: usize) -> io::Result<bool> {
    platform::populate(map, offset, len)
}

/// Faults in every page of anonymous memory writable (the direct path's region).
pub(crate) fn prefault_memory(map: &MmapRaw) -> io::Result<()> {
    platform::prefault(map)
}

/// How a sync reaches the media on Apple platforms (ignored elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppleSync {
    /// `fcntl(F_FULLFSYNC)`: the drive writes its cache to the media before the sync returns.
    /// The only durable choice on Apple hardware, where `fsync` and `msync` stop at the
    /// drive's cache.
    #[default]
    FullFsync,
    /// `fcntl(F_BARRIERFSYNC)`: writes before the barrier reach the media before writes after
    /// it, but the sync may return before either has. Cheaper; a power cut may lose records
    /// whose sync returned (never reorder them). Opt in only if that is acceptable.
    BarrierFsync,
}

static APPLE_BARRIER: StdAtomicBool = StdAtomicBool::new(false);

/// Chooses, for this whole process, how [`FsStorage`] syncs on macOS (see [`AppleSync`]); it
/// has no effect on other platforms.
pub fn set_apple_sync(sync: AppleSync) {
    APPLE_BARRIER.store(sync == AppleSync::BarrierFsync, StdOrdering::Relaxed);
}

/// The choice [`set_apple_sync`] made.
#[must_use]
pub fn apple_sync() -> AppleSync {
    if APPLE_BARRIER.load(StdOrdering::Relaxed) {
        AppleSync::BarrierFsync
    } else {
        AppleSync::FullFsync
    }
}

/// The raw OS error codes of an I/O error (`EIO`) and of a full disk (`ENOSPC`) on this
/// platform, as injected faults report them.
#[cfg(any(test, feature = "testing"))]
pub(crate) const RAW_EIO: i32 = platform::RAW_EIO;
#[cfg(any(test, feature = "testing"))]
pub(crate) const RAW_ENOSPC: i32 = platform::RAW_ENOSPC;

/// Faults every page of a fresh mapping writable by rewriting one byte per 4 KiB (a page, or
/// several bytes of a larger one).
pub(crate) fn touch_pages(base: *mut u8, len: usize) {
    let mut off = 0;
    while off < len {
        // SAFETY: `off < len`, the mapping's length; called only on a `-pre` file's mapping
        // that no other thread can reach yet. Rewriting the byte it holds changes nothing.
        unsafe {
            let p = base.add(off);
            p.write_volatile(p.read_volatile());
        }
        off += 4096;
    }
}

/// A mapped view of one file: the memory a segment lives in.
///
/// # Safety
///
/// Implementors guarantee that `as_ptr()` is valid for reads of `len()` bytes (and for writes if
/// `writable()`) for as long as the region lives, that it never moves, and that nothing in this
/// process writes those bytes except through this pointer. vault-segment relies on this to form
/// slices over published bytes.
pub unsafe trait Region: Send + Sync + fmt::Debug {
    /// Start of the mapped bytes.
    fn as_ptr(&self) -> *mut u8;
    /// Number of mapped bytes (the file's length when it was mapped).
    fn len(&self) -> usize;
    /// Whether the region maps no bytes (never true for a mapped segment).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether the region was mapped for writing.
    fn writable(&self) -> bool;
    /// Makes `len` bytes from `offset` durable (`msync(MS_SYNC)`); returns only when the device
    /// acknowledged them. An error means the bytes may be lost: the caller must not retry and
    /// treat a later success as covering them.
    fn sync(&self, offset: usize, len: usize) -> io::Result<()>;
    /// Faults every page in writable so later stores take no page faults. Dirties the pages.
    fn prefault(&self) -> io::Result<()>;
    /// Writes the whole blocks inside `[offset, offset + len)` to the file without waiting for
    /// them to be durable, so that a process that dies no longer takes them along (a power
    /// cut still may). Only ever called on bytes that are never written again.
    ///
    /// The default does nothing: a mapping's stores are in the page cache already, which
    /// outlives the process. The direct path writes them with `O_DIRECT`.
    fn write_out(&self, offset: usize, len: usize) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
    /// Tells the kernel the whole region is about to be read (a recovery scan), so that a
    /// mapping of a file that is not in the page cache is read ahead in large requests rather
    /// than a page fault at a time. A hint: the default does nothing.
    fn will_read(&self) {}
    /// Bytes of memory the appender may fill past [`Region::released`] before it must give
    /// some back ([`Region::release`]); 0: no bound (the default, and every mapping: its
    /// memory is the page cache's). The direct path's memory ring (`crate::direct`).
    fn ring_bytes(&self) -> usize {
        0
    }
    /// Sets [`Region::ring_bytes`] (rounded up to whole pages; at least one). Ignored where
    /// there is no ring.
    fn set_ring_bytes(&self, bytes: usize) {
        let _ = bytes;
    }
    /// Bytes from offset 0 whose memory was given back: they read from the file now, and
    /// nothing may store into them.
    fn released(&self) -> usize {
        0
    }
    /// Gives back the memory of the whole pages below `upto`, whose bytes are in the file
    /// (written, durable or not) and never written again: they stay readable at the same
    /// addresses, with the same bytes, read from the file from now on. Also faults in the
    /// memory the appender may fill next. Called for bytes below the synced end at any time
    /// (a [`Region::sync`] or [`Region::write_out`] in progress reads only at and past it),
    /// else only while no sync or write-out of the region runs; releases of one region are
    /// ordered by the region.
    ///
    /// # Errors
    /// The error of remapping; the memory is then kept (nothing is lost).
    fn release(&self, upto: usize) -> io::Result<()> {
        let _ = upto;
        Ok(())
    }
    /// The appender is about to store up to `end`, past [`Region::released`] plus
    /// [`Region::ring_bytes`] (a batch larger than the ring): the region must not map
    /// anything over those bytes. Called under the same serialisation as `release`.
    fn note_overflow(&self, end: usize) {
        let _ = end;
    }
}

/// How a writable segment's bytes reach its file.
///
/// Both paths keep the same on-disk format and the same guarantees; they differ in where the
/// bytes live between an append and their sync, and in what a sync costs. See
/// `docs/ARCHITECTURE.md`, "The two I/O paths".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IoPath {
    /// The file is mapped `MAP_SHARED`; appends store into the page cache and a sync is
    /// `msync(MS_SYNC)` of the dirty pages.
    #[default]
    Mmap,
    /// Appends go to process memory; a sync writes the dirty aligned blocks to the file with
    /// `O_DIRECT` and `RWF_DSYNC` (one durable write, no page cache).
    Direct,
}

impl IoPath {
    /// The name used in reports and on the command line (`mmap`, `direct`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            IoPath::Mmap => "mmap",
            IoPath::Direct => "direct",
        }
    }
}

impl fmt::Display for IoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How [`Storage::map`] opens a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read-only: a read-only shared mapping (readers, `vault cat`/`verify`/`info`, and the
    /// segments of a direct-path log that take no more writes).
    Read,
    /// Writable through the given I/O path; the region starts with the file's bytes.
    Write(IoPath),
    /// Writable through the given I/O path, for a file [`Storage::create_allocated`] just
    /// made: it holds zeros, so the direct path need not read it.
    Fresh(IoPath),
}

impl Access {
    /// Whether the region can be written.
    #[must_use]
    pub fn writable(self) -> bool {
        matches!(self, Access::Write(_) | Access::Fresh(_))
    }

    /// The I/O path of a writable access.
    #[must_use]
    pub fn io_path(self) -> Option<IoPath> {
        match self {
            Access::Read => None,
            Access::Write(io) | Access::Fresh(io) => Some(io),
        }
    }
}

/// What [`Storage::file_system`] found out about a directory's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSystem {
    /// The file system's name as `statfs` reports it (`ext4`, `xfs`, `btrfs`, `tmpfs`, ...;
    /// `unknown` if its magic number is not one vault knows; macOS: `apfs`, `hfs`, ...), or
    /// on Windows as `GetVolumeInformationW` does (`NTFS`, `ReFS`, ...).
    pub name: String,
    /// Whether a file in the directory takes a direct write (`O_DIRECT` on Linux, where tmpfs
    /// refuses it; `FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH` on Windows; `F_NOCACHE`
    /// + `F_FULLFSYNC` on macOS).
    pub direct_io: bool,
    /// Why direct I/O is unavailable, when it is.
    pub direct_io_error: Option<String>,
    /// Whether the file system writes overwritten blocks to new space (btrfs, zfs, bcachefs;
    /// APFS and ReFS for blocks shared by clones or snapshots). There a store into a mapped page that was written back needs new space, and
    /// with none left the page fault that asks for it kills the process with `SIGBUS`:
    /// `fallocate` reserves the first write of each block, not its rewrites. vault never
    /// writes through a mapping there.
    pub copy_on_write: bool,
}

/// Who may read a log's files besides their owner.
///
/// Files are created owner-only whatever this says ([`Storage::create_allocated`],
/// [`Storage::write_file`]); a caller that wants them group-readable widens a file with
/// [`Storage::set_mode`] once it holds records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FileMode {
    /// Owner-only: files `0600`, a directory vault creates `0700` (as etcd and PostgreSQL
    /// keep their logs).
    #[default]
    Private,
    /// The file's group may read: files `0640`, a directory vault creates `0750` (for a log
    /// shipper or backup job in the owner's group).
    GroupReadable,
}

impl FileMode {
    /// The permission bits of a file.
    #[must_use]
    pub fn file_bits(self) -> u32 {
        match self {
            FileMode::Private => 0o600,
            FileMode::GroupReadable => 0o640,
        }
    }

    /// The permission bits of a directory.
    #[must_use]
    pub fn dir_bits(self) -> u32 {
        match self {
            FileMode::Private => 0o700,
            FileMode::GroupReadable => 0o750,
        }
    }
}

/// A held exclusive lock on a WAL directory; dropping it releases the lock.
pub struct DirLock {
    _held: Box<dyn Any + Send + Sync>,
}

impl fmt::Debug for DirLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DirLock")
    }
}

impl DirLock {
    /// Wraps whatever keeps a lock alive.
    pub fn new(held: Box<dyn Any + Send + Sync>) -> Self {
        Self { _held: held }
    }
}

/// Every file-system operation of a segment's life. Paths are full paths.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates `dir` and its parents if missing (owner-only, `0700`, where the storage has
    /// permissions).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive lock on `dir`; `ErrorKind::WouldBlock` if another holder has it.
    fn lock_dir(&self, dir: &Path) -> io::Result<DirLock>;
    /// Names of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// Creates a new file (failing if it exists, never through a symbolic link; owner-only,
    /// `0600`, where the storage has permissions) of `len` bytes whose blocks are allocated for
    /// real, so that stores through a mapping never hit a full disk.
    ///
    /// For [`IoPath::Direct`] the blocks are also written with zeros and synced, so that a
    /// later durable write into them changes no file-system metadata (a write into allocated
    /// but never written space converts an unwritten extent: a second, metadata, write per
    /// sync). For [`IoPath::Mmap`] only the allocation is made.
    fn create_allocated(&self, path: &Path, len: u64, io: IoPath) -> io::Result<()>;
    /// Opens the whole file as a [`Region`] with the given access. Never follows a symbolic
    /// link (`ELOOP`), and refuses anything that is not a regular file.
    fn map(&self, path: &Path, access: Access) -> io::Result<Box<dyn Region>>;

    /// What `path` is if it is not a regular file ("a symbolic link", "a directory", ...), without
    /// following a link; `None` for a regular file. Recovery refuses a log in which a name
    /// that claims to be a segment is anything else.
    ///
    /// The default says every name is a regular file (a storage without other kinds).
    fn not_regular(&self, path: &Path) -> io::Result<Option<&'static str>> {
        let _ = path;
        Ok(None)
    }

    /// Sets the permission bits of a file (or, with [`FileMode::dir_bits`], a directory) to
    /// `mode`. The default does nothing (a storage without permissions).
    fn set_mode(&self, path: &Path, mode: FileMode, dir: bool) -> io::Result<()> {
        let _ = (path, mode, dir);
        Ok(())
    }
    /// What file system `dir` is on and whether it takes `O_DIRECT` (which [`IoPath::Direct`]
    /// needs). May create and remove a probe file in `dir`.
    ///
    /// The default reports an unknown file system without direct I/O.
    fn file_system(&self, dir: &Path) -> io::Result<FileSystem> {
        let _ = dir;
        Ok(FileSystem {
            name: "unknown".into(),
            direct_io: false,
            direct_io_error: Some("this storage has no direct I/O".into()),
            copy_on_write: false,
        })
    }
    /// Renames `from` to `to` (atomic on POSIX file systems; durable after `sync_dir`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file (durable after `sync_dir`).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Creates `path` if missing, or truncates it, and writes `bytes` as its whole content: for
    /// small files that are never mapped (a metadata file replaced by rename).
    ///
    /// Crash semantics: nothing is durable on return. The bytes and the length are durable
    /// after `sync_file(path)`; the file's name, if it was created, after `sync_dir` of its
    /// directory. Until then a crash may leave any mix of old and new bytes (so write a
    /// temporary name, `sync_file` it, then `rename` it over and `sync_dir`). A failed call
    /// may leave the file created and empty. The file must not be mapped.
    ///
    /// The default refuses (`Unsupported`), for storages that only serve segments.
    fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let _ = bytes;
        Err(unsupported("write_file", path))
    }

    /// The whole content of `path` as the process sees it (written bytes, synced or not).
    ///
    /// The default refuses (`Unsupported`), for storages that only serve segments.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        Err(unsupported("read_file", path))
    }

    /// Makes the content and length of `path` durable (`fsync`); not its name (that is
    /// `sync_dir`'s). An error means the written bytes may be lost: the caller must not retry
    /// and treat a later success as covering them (fsyncgate).
    ///
    /// The default refuses (`Unsupported`), for storages that only serve segments.
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        Err(unsupported("sync_file", path))
    }
}

fn unsupported(op: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("this storage has no {op} ({})", path.display()),
    )
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        platform::create_dir_all(dir)
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<DirLock> {
        platform::lock_dir(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        platform::list(dir)
    }

    fn create_allocated(&self, path: &Path, len: u64, io: IoPath) -> io::Result<()> {
        let f = platform::open(
            path,
            OpenOptions::new().read(true).write(true).create_new(true),
        )?;
        platform::allocate(f, path, len, io)
    }

    fn map(&self, path: &Path, access: Access) -> io::Result<Box<dyn Region>> {
        match access {
            Access::Write(IoPath::Direct) => crate::direct::open(path, false),
            Access::Fresh(IoPath::Direct) => crate::direct::open(path, true),
            Access::Read | Access::Write(IoPath::Mmap) | Access::Fresh(IoPath::Mmap) => {
                mmap::open(path, access.writable())
            }
        }
    }

    fn file_system(&self, dir: &Path) -> io::Result<FileSystem> {
        platform::file_system(dir)
    }

    fn not_regular(&self, path: &Path) -> io::Result<Option<&'static str>> {
        platform::not_regular(&platform::read_path(path))
    }

    fn set_mode(&self, path: &Path, mode: FileMode, dir: bool) -> io::Result<()> {
        platform::set_mode(path, mode, dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        platform::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        platform::remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        platform::sync_dir(dir)
    }

    fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        platform::open(
            path,
            OpenOptions::new().write(true).create(true).truncate(true),
        )?
        .write_all(bytes)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        platform::sync_file(path)
    }
}

/// Writes `len` zeros from the start of a new, empty file and syncs them: the allocation for
/// file systems (and platforms) that have no `fallocate`. Never a sparse `set_len`, which turns
/// a full disk into `SIGBUS` under mmap.
fn write_zeros(mut f: File, len: u64) -> io::Result<()> {
    use std::io::Write as _;
    let zeros = [0u8; 64 * 1024];
    let mut off = 0u64;
    while off < len {
        let n = (len - off).min(zeros.len() as u64);
        f.write_all(&zeros[..n as usize])?;
        off += n;
    }
    // Durable here, since segment creation then syncs only the header's page: after a crash
    // the file must read as zeros wherever no record was synced.
    f.sync_data()
}

/// Fills `buf` from the operating system's random source.
pub(crate) fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    platform::fill_random(buf)
}
