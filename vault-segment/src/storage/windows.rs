//! Windows (built and tested under wine in CI).
//!
//! - **Durability.** A mapped range is made durable by memmap2's `flush_range`, which is
//!   `FlushViewOfFile` (dirty pages to the file system) then `FlushFileBuffers` (the file's
//!   data and metadata to the device). A file is synced with `FlushFileBuffers` (std's
//!   `sync_all`, which needs write access).
//! - **No directory fsync.** Windows cannot open a directory for flushing. NTFS journals its
//!   metadata: a creation, rename or removal is in the journal, which `FlushFileBuffers` of any
//!   file on the volume commits up to that point. Renames use
//!   `MoveFileExW(MOVEFILE_WRITE_THROUGH)`, which returns only once the rename is flushed, so
//!   [`sync_dir`] has nothing left to do and returns `Ok`.
//! - **The directory lock** is a lock (`LockFileEx`, through std's `File::try_lock`) on the file
//!   [`LOCK_FILE`] inside the directory: Windows cannot lock a directory.
//! - **Mapped files cannot be deleted, truncated, or renamed over** on Windows, nor files open
//!   for the direct path. Removal and replacement of a file that this process still maps or
//!   has open that way (a reader holds a record of a segment `truncate_front` drops;
//!   `truncate_back` replaces a segment that readers map) first renames
//!   it aside (a mapped file may be renamed) to `NAME.vault-deleted` or `NAME.vault-replaced`, and
//!   deletes it when the last mapping of it goes ([`Mapped`]). The name is gone at once, as after
//!   `unlink`; the space comes back when the last reader lets go. [`lock_dir`] finishes what a
//!   crash interrupted: a `.vault-replaced` file whose name is free is renamed back (the
//!   replacement never happened), any other set-aside file is deleted.
//! - **Sharing violations** (an antivirus scanner or indexer holding the file open) on open,
//!   rename and delete are retried [`ATTEMPTS`] times with a growing pause, then reported as a
//!   [`SharingViolation`].
//! - **Symbolic links and file modes.** Log files are opened with
//!   `FILE_FLAG_OPEN_REPARSE_POINT`, so a segment name that is a symbolic link or junction opens
//!   the link itself, which `FsStorage::map` then refuses as not a regular file; [`not_regular`]
//!   reads the name without following it. Windows has no permission bits: a new file or
//!   directory inherits the access control list of its parent directory (under a user's profile
//!   that grants the user, `SYSTEM` and Administrators only), so [`set_mode`] changes nothing and
//!   who may read a log is decided by the ACL of the directory it is created in.
//! - **Allocation** writes the zeros (after extending the file with `SetEndOfFile`): writing past
//!   a file's valid data length makes NTFS zero-fill synchronously, which would stall the writer;
//!   here it happens in the rotation worker that prepares segments.
//! - **The direct path** writes with `FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH`
//!   ([`DirectFile`]); [`file_system`] names the volume's file system and probes it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use memmap2::MmapRaw;

use super::{DirLock, FileMode, FileSystem, IoPath};
use crate::sync::{PoisonError, StdMutex as Mutex};

/// The file [`lock_dir`] locks inside a WAL directory.
pub const LOCK_FILE: &str = "vault.lock";

/// How many times an operation that hit a sharing violation is tried in all.
pub(super) const ATTEMPTS: u32 = 8;

const REPLACED: &str = ".vault-replaced";
const DELETED: &str = ".vault-deleted";

const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_SHARING_VIOLATION: i32 = 32;
const ERROR_LOCK_VIOLATION: i32 = 33;

/// An open, rename or delete that kept failing because another process held the file (an
/// antivirus scanner, an indexer, a backup tool). Carried inside the `io::Error`
/// (`ErrorKind::ResourceBusy`) that the [`Storage`](super::Storage) call returns.
#[derive(Debug)]
pub struct SharingViolation {
    /// What was attempted (`open`, `rename`, `delete`).
    pub op: &'static str,
    /// The file.
    pub path: PathBuf,
    /// How many times it was tried.
    pub attempts: u32,
    /// The last attempt's error.
    pub last: io::Error,
}

impl fmt::Display for SharingViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: another process keeps the file open ({} attempts): {}",
            self.op,
            self.path.display(),
            self.attempts,
            self.last
        )
    }
}

impl std::error::Error for SharingViolation {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.last)
    }
}

fn is_sharing_violation(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION | ERROR_ACCESS_DENIED)
    )
}

/// Runs `f` until it succeeds, fails otherwise than by a sharing violation, or has been tried
/// [`ATTEMPTS`] times (about half a second of pauses in all).
fn retry<T>(op: &'static str, path: &Path, mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut pause = Duration::from_millis(2);
    let mut attempt = 1;
    loop {
        match f() {
            Err(e) if is_sharing_violation(&e) => {
                if attempt == ATTEMPTS {
                    return Err(io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        SharingViolation {
                            op,
                            path: path.to_path_buf(),
                            attempts: attempt,
                            last: e,
                        },
                    ));
                }
                std::thread::sleep(pause);
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Opens `path` without following a symbolic link or junction
/// (`FILE_FLAG_OPEN_REPARSE_POINT`), retrying sharing violations.
pub(super) fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT;
    options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
    retry("open", path, || options.open(path))
}

/// As [`open`]: nothing on Windows makes an open wait (no FIFOs among files).
pub(super) fn open_no_wait(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    open(path, options)
}

/// `std::fs::create_dir_all`: the directories inherit their parent's ACL (see the module docs).
pub(super) fn create_dir_all(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// What `path` is if not a regular file, without following a symbolic link or junction.
pub(super) fn not_regular(path: &Path) -> io::Result<Option<&'static str>> {
    let t = std::fs::symlink_metadata(path)?.file_type();
    Ok(if t.is_file() {
        None
    } else if t.is_symlink() {
        Some("a symbolic link")
    } else if t.is_dir() {
        Some("a directory")
    } else {
        Some("a reparse point")
    })
}

/// Nothing: Windows has no permission bits, and the ACL a file inherits from the log's
/// directory decides who may read it (see the module docs).
#[allow(clippy::unnecessary_wraps)]
pub(super) fn set_mode(_path: &Path, _mode: FileMode, _dir: bool) -> io::Result<()> {
    Ok(())
}

/// Nothing: a hint only, and the mapped pages are read on demand.
pub(super) fn will_read(_map: &MmapRaw) {}

/// Locks [`LOCK_FILE`] in `dir`, then finishes set-asides a crash interrupted (see the module
/// docs).
pub(super) fn lock_dir(dir: &Path) -> io::Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let f = open(
        &path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "directory is locked by another vault writer",
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    let lock = DirLock::new(Box::new(Locked(f)));
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = name.strip_suffix(REPLACED) {
            let base = dir.join(base);
            if base.exists() {
                remove_now(&dir.join(&*name))?;
            } else {
                move_file(&dir.join(&*name), &base)?;
            }
        } else if name.contains(DELETED) || name.contains(REPLACED) {
            // Deleted, or replaced (numbered: the name had another set-aside already).
            remove_now(&dir.join(&*name))?;
        }
    }
    Ok(lock)
}

/// A held lock on [`LOCK_FILE`], released when dropped.
#[derive(Debug)]
struct Locked(File);

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Extends the file to `len` and writes its zeros (see the module docs): through the page
/// cache for the mapping, with direct writes for the direct path.
pub(super) fn allocate(f: File, path: &Path, len: u64, io: IoPath) -> io::Result<()> {
    f.set_len(len)?;
    match io {
        IoPath::Mmap => super::write_zeros(f, len),
        IoPath::Direct => {
            drop(f);
            crate::direct::write_zeros(path, len)
        }
    }
}

/// `FlushViewOfFile` + `FlushFileBuffers` (memmap2's `flush_range`). A read-only view gets
/// `FlushViewOfFile` alone, because `FlushFileBuffers` needs write access: for a finished
/// segment of the direct path that is enough (its bytes reached the device through the
/// write-through handle that wrote them), but pages a killed mmap-path writer left dirty are
/// then only written, not flushed from the drive's cache (docs/ARCHITECTURE.md §9).
pub(super) fn sync_mapping(
    map: &MmapRaw,
    _file: &File,
    writable: bool,
    offset: usize,
    len: usize,
) -> io::Result<()> {
    if writable {
        map.flush_range(offset, len)
    } else {
        map.flush_async_range(offset, len)
    }
}

pub(crate) use super::no_ring::{
    map_anon_fixed, map_fixed, page_size, populate, ring_file, DIRECT_RING,
};

/// Faults every page in writable by touching it.
#[allow(clippy::unnecessary_wraps)]
pub(super) fn prefault(map: &MmapRaw) -> io::Result<()> {
    super::touch_pages(map.as_mut_ptr(), map.len());
    Ok(())
}

/// Nothing to flush: see the module docs.
#[allow(clippy::unnecessary_wraps)]
pub(super) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// `FlushFileBuffers`, which needs a handle with write access.
pub(super) fn sync_file(path: &Path) -> io::Result<()> {
    open(path, OpenOptions::new().write(true))?.sync_all()
}

/// `RtlGenRandom` (`SystemFunction036`).
pub(super) fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    for chunk in buf.chunks_mut(1 << 30) {
        let len = chunk.len() as u32;
        // SAFETY: `chunk` is valid for writes of `len` bytes for the duration of the call.
        let ok = unsafe {
            windows_sys::Win32::Security::Authentication::Identity::RtlGenRandom(
                chunk.as_mut_ptr().cast(),
                len,
            )
        };
        if ok == 0 {
            return Err(io::Error::other("RtlGenRandom failed"));
        }
    }
    Ok(())
}

/// `ERROR_IO_DEVICE` and `ERROR_DISK_FULL`, for injected faults.
#[cfg(any(test, feature = "testing"))]
pub(super) const RAW_EIO: i32 = 1117;
#[cfg(any(test, feature = "testing"))]
pub(super) const RAW_ENOSPC: i32 = 112;

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain(Some(0)).collect()
}

/// `MoveFileExW(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)`, retrying sharing
/// violations.
fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    use windows_sys::Win32::Storage::FileSystem::{
        MoveFileExW, MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH,
    };
    let (f, t) = (wide(from), wide(to));
    retry("rename", from, || {
        // SAFETY: both are NUL-terminated UTF-16 strings that live across the call.
        let ok = unsafe {
            MoveFileExW(
                f.as_ptr(),
                t.as_ptr(),
                MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH,
            )
        };
        if ok == 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    })
}

fn remove_now(path: &Path) -> io::Result<()> {
    retry("delete", path, || std::fs::remove_file(path))
}

/// The files this process maps, by mapping: where each file is now (renames move it), and
/// whether it is to be deleted once no mapping of it is left.
#[derive(Default)]
struct Registry {
    next: u64,
    maps: HashMap<u64, (PathBuf, bool)>,
}

static MAPPED: Mutex<Option<Registry>> = Mutex::new(None);

fn registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut guard = MAPPED.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(Registry::default))
}

/// One mapping of a file (or one handle of the direct path, which blocks a removal or
/// replacement the same way), registered so that removals and replacements of the file wait
/// for it; dropped after the mapping or handle itself.
#[derive(Debug)]
pub(super) struct Mapped(u64);

/// Registers a mapping of `path`.
pub(super) fn mapped(path: &Path) -> Mapped {
    registry(|r| {
        r.next += 1;
        r.maps.insert(r.next, (path.to_path_buf(), false));
        Mapped(r.next)
    })
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let last = registry(|r| {
            let (path, delete) = r.maps.remove(&self.0)?;
            let others = r.maps.values().any(|(p, _)| *p == path);
            (delete && !others).then_some(path)
        });
        if let Some(path) = last {
            // Nothing to report to: if this fails, the next `lock_dir` deletes the file.
            let _ = remove_now(&path);
        }
    }
}

fn is_mapped(path: &Path) -> bool {
    registry(|r| r.maps.values().any(|(p, _)| p == path))
}

/// The names of the entries of `dir`, with one addition: for a `NAME.vault-replaced` whose
/// `NAME` is free (a replacement a crash interrupted, which the next [`lock_dir`] renames
/// back), `NAME` itself, so that a reader without the lock (`inspect`) sees the log the next
/// writer will open. [`read_path`] then opens the set-aside file for that name.
pub(super) fn list(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names: Vec<OsString> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    let restored: Vec<OsString> = names
        .iter()
        .filter_map(|n| n.to_str()?.strip_suffix(REPLACED).map(OsString::from))
        .filter(|base| !names.contains(base))
        .collect();
    names.extend(restored);
    Ok(names)
}

/// The file a read-only open of `path` reads: `path`, or, where `path` is free and
/// `path.vault-replaced` exists, that file (see [`list`]).
pub(super) fn read_path(path: &Path) -> PathBuf {
    let mut aside = OsString::from(path.as_os_str());
    aside.push(REPLACED);
    let aside = PathBuf::from(aside);
    if !path.exists() && aside.exists() {
        aside
    } else {
        path.to_path_buf()
    }
}

/// Renames a mapped `path` to a free name ending in `suffix` and marks it for deletion when
/// its last mapping goes.
fn set_aside(path: &Path, suffix: &str) -> io::Result<()> {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    let mut aside = PathBuf::from(&name);
    let mut n = 0;
    while aside.exists() {
        n += 1;
        let mut numbered = name.clone();
        numbered.push(format!(".{n}"));
        aside = PathBuf::from(numbered);
    }
    move_file(path, &aside)?;
    registry(|r| {
        for (p, delete) in r.maps.values_mut() {
            if p == path {
                p.clone_from(&aside);
                *delete = true;
            }
        }
    });
    Ok(())
}

/// Renames `from` over `to`; a mapped `to` is set aside first (Windows refuses to replace it).
///
/// Crash semantics: as `rename(2)` — `to` names the old file or the new one — except in the
/// window between setting `to` aside and the rename, where `to` is missing and its old file is
/// `to.vault-replaced`: the next [`lock_dir`] renames it back.
pub(super) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    if is_mapped(to) {
        set_aside(to, REPLACED)?;
    }
    move_file(from, to)?;
    registry(|r| {
        for (p, _) in r.maps.values_mut() {
            if p == from {
                *p = to.to_path_buf();
            }
        }
    });
    Ok(())
}

/// Deletes `path`, or, while this process maps it, renames it aside and deletes it when the
/// last mapping goes.
pub(super) fn remove(path: &Path) -> io::Result<()> {
    if is_mapped(path) {
        set_aside(path, DELETED)
    } else {
        remove_now(path)
    }
}

/// The alignment used when the volume's sector size cannot be read.
const DEFAULT_ALIGN: usize = 4096;

/// `FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH`, never following a link.
fn direct_flags() -> u32 {
    use windows_sys::Win32::Storage::FileSystem::{
        FILE_FLAG_NO_BUFFERING, FILE_FLAG_OPEN_REPARSE_POINT, FILE_FLAG_WRITE_THROUGH,
    };
    FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH | FILE_FLAG_OPEN_REPARSE_POINT
}

/// A segment file opened for the direct path with `FILE_FLAG_NO_BUFFERING |
/// FILE_FLAG_WRITE_THROUGH`.
///
/// `NO_BUFFERING` bypasses the system cache: every read and write must start at a multiple of
/// the volume's sector size, be a multiple of it long, and come from memory aligned to it (the
/// region's page-aligned anonymous memory). `WRITE_THROUGH` makes a write return only once
/// the device has it on stable media: with both flags the write goes straight to the device,
/// which Windows asks to write through its own cache (Force Unit Access). Segment files are
/// written with zeros to their full length and flushed with `FlushFileBuffers` before the
/// direct path writes them (`crate::direct::write_zeros`), so a direct write changes no file
/// metadata (size, valid data length) that would need another `FlushFileBuffers`. A drive that
/// ignores Force Unit Access is not made durable by anything Windows offers short of
/// `FlushFileBuffers` per write, which [`DirectFile::sync`] is and the direct path does not
/// issue per sync.
#[derive(Debug)]
pub(crate) struct DirectFile {
    file: File,
    align: usize,
    // Declared last so it drops after the handle: an open file, like a mapped one, cannot be
    // deleted or replaced, so removals and replacements wait for it (see [`Mapped`]).
    _open: Mapped,
}

impl DirectFile {
    /// Not available here ([`DIRECT_RING`] is false): never called.
    ///
    /// # Safety
    ///
    /// As on Linux.
    pub(crate) unsafe fn map_over(
        &self,
        _addr: *mut u8,
        _len: usize,
        _offset: u64,
    ) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no memory ring on this platform",
        ))
    }

    /// Opens an existing file read-write for direct I/O, retrying sharing violations.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        use std::os::windows::fs::OpenOptionsExt;
        let file = retry("open", path, || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(direct_flags())
                .open(path)
        })?;
        Ok(Self {
            align: sector_size(path),
            file,
            _open: mapped(path),
        })
    }

    /// The volume's bytes per sector (`GetDiskFreeSpaceW`), else 4096.
    pub(crate) fn align(&self) -> usize {
        self.align
    }

    /// The file's length.
    pub(crate) fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// `ReadFile` at `offset` (aligned).
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        use std::os::windows::fs::FileExt;
        self.file.seek_read(buf, offset)
    }

    /// `WriteFile` at `offset` (aligned). Through this handle every write is written through
    /// (see [`DirectFile`]), so this is [`DirectFile::write_durable_at`].
    pub(crate) fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.write_durable_at(buf, offset)
    }

    /// `WriteFile` at `offset` (aligned) on the `WRITE_THROUGH` handle: durable when it
    /// returns (see [`DirectFile`]).
    pub(crate) fn write_durable_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        use std::os::windows::fs::FileExt;
        self.file.seek_write(buf, offset)
    }

    /// `FlushFileBuffers`: the file's metadata too, and the device's cache.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }
}

/// The root of the volume `path` is on (`GetVolumePathNameW`), as a NUL-terminated string.
fn volume_root(path: &Path) -> io::Result<Vec<u16>> {
    use windows_sys::Win32::Storage::FileSystem::GetVolumePathNameW;
    let p = wide(path);
    let mut root = vec![0u16; 1024];
    let cap = root.len() as u32;
    // SAFETY: `p` is NUL-terminated; `root` is writable for `cap` UTF-16 units.
    let ok = unsafe { GetVolumePathNameW(p.as_ptr(), root.as_mut_ptr(), cap) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(root)
}

/// The bytes per sector of the volume `path` is on, else [`DEFAULT_ALIGN`].
fn sector_size(path: &Path) -> usize {
    use windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceW;
    let Ok(root) = volume_root(path) else {
        return DEFAULT_ALIGN;
    };
    let (mut per_cluster, mut bytes, mut free, mut total) = (0u32, 0u32, 0u32, 0u32);
    // SAFETY: `root` is NUL-terminated; the out-pointers are live locals.
    let ok = unsafe {
        GetDiskFreeSpaceW(
            root.as_ptr(),
            &mut per_cluster,
            &mut bytes,
            &mut free,
            &mut total,
        )
    };
    if ok == 0 || bytes == 0 || !bytes.is_power_of_two() {
        return DEFAULT_ALIGN;
    }
    (bytes as usize).max(512)
}

/// The file system's name of the volume `dir` is on (`GetVolumeInformationW`: `NTFS`,
/// `ReFS`, `FAT32`, ...).
fn volume_file_system(dir: &Path) -> io::Result<String> {
    use windows_sys::Win32::Storage::FileSystem::GetVolumeInformationW;
    let root = volume_root(dir)?;
    let mut name = [0u16; 64];
    let cap = name.len() as u32;
    // SAFETY: `root` is NUL-terminated; `name` is writable for `cap` units; every other
    // out-pointer is null, which the call accepts.
    let ok = unsafe {
        GetVolumeInformationW(
            root.as_ptr(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            name.as_mut_ptr(),
            cap,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    Ok(String::from_utf16_lossy(&name[..end]))
}

/// The file system of `dir` (its volume's name), whether it is copy-on-write (ReFS, whose
/// block cloning shares blocks between files), and whether it takes direct I/O: a probe file
/// opened `NO_BUFFERING | WRITE_THROUGH` that takes one sector-aligned write.
pub(super) fn file_system(dir: &Path) -> io::Result<FileSystem> {
    let name = volume_file_system(dir).unwrap_or_else(|_| "unknown".into());
    let direct_io_error = probe(dir).err().map(|e| e.to_string());
    Ok(FileSystem {
        copy_on_write: name.eq_ignore_ascii_case("ReFS"),
        name,
        direct_io: direct_io_error.is_none(),
        direct_io_error,
    })
}

/// Creates a probe file in `dir` with `NO_BUFFERING | WRITE_THROUGH` and writes one aligned
/// block through it.
fn probe(dir: &Path) -> io::Result<()> {
    use std::os::windows::fs::{FileExt, OpenOptionsExt};
    let path = dir.join(format!(".vault-direct-probe-{}", std::process::id()));
    let result = (|| {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(direct_flags())
            .open(&path)?;
        let align = sector_size(dir);
        let block = crate::direct::anon(align)?;
        // SAFETY: a fresh anonymous mapping of `align` bytes.
        let buf = unsafe { std::slice::from_raw_parts(block.as_ptr(), align) };
        let written = f.seek_write(buf, 0)?;
        if written != align {
            return Err(io::Error::other(format!(
                "a {align}-byte direct write wrote {written} bytes"
            )));
        }
        Ok(())
    })();
    let _ = remove_now(&path);
    result
}
