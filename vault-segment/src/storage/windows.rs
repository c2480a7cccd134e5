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
//! - **Mapped files cannot be deleted, truncated, or renamed over** on Windows. Removal and
//!   replacement of a file that this process still maps (a reader holds a record of a segment
//!   `truncate_front` drops; `truncate_back` replaces a segment that readers map) first renames
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
//!   here it happens in the rotation worker that prepares segments. Direct I/O is not offered:
//!   see `crate::direct`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use memmap2::MmapRaw;

use super::{DirLock, FileMode, IoPath};
use crate::sync::{PoisonError, StdMutex as Mutex};

/// The file [`lock_dir`] locks inside a WAL directory.
pub const LOCK_FILE: &str = "vault.lock";

/// How many times an operation that hit a sharing violation is tried in all.
pub const ATTEMPTS: u32 = 8;

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

/// Extends the file to `len` and writes its zeros (see the module docs); no direct I/O here.
pub(super) fn allocate(f: File, _path: &Path, len: u64, _io: IoPath) -> io::Result<()> {
    f.set_len(len)?;
    super::write_zeros(f, len)
}

/// `FlushViewOfFile` + `FlushFileBuffers` (memmap2's `flush_range`).
pub(super) fn sync_mapping(
    map: &MmapRaw,
    _file: &File,
    offset: usize,
    len: usize,
) -> io::Result<()> {
    map.flush_range(offset, len)
}

/// Faults every page in writable by touching it.
#[allow(clippy::unnecessary_wraps)]
pub(super) fn prefault(map: &MmapRaw) -> io::Result<()> {
    crate::segment::touch_pages(map.as_mut_ptr(), map.len());
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
        #[allow(clippy::cast_possible_truncation)]
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
pub(super) const RAW_EIO: i32 = 1117;
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

/// One mapping of a file, registered so that removals and replacements of the file wait for
/// it; dropped after the mapping itself.
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
