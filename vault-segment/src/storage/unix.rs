//! What Linux and macOS share: the directory lock (`flock` on the directory), allocation
//! (`fallocate`, which rustix implements with `F_PREALLOCATE` on Apple), renames and removals
//! (POSIX: atomic, and a mapped file may be renamed or unlinked), owner-only permission bits,
//! opens that never follow a symbolic link (`O_NOFOLLOW`), and the `lstat` check of a name.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use memmap2::{Advice, MmapRaw};

use super::{DirLock, FileMode, IoPath};

/// `O_NOFOLLOW` for `OpenOptionsExt::custom_flags`: a segment name that is a symbolic link is
/// refused (`ELOOP`), not followed to a file elsewhere.
const NO_FOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// `O_NOFOLLOW | O_NONBLOCK`: as [`NO_FOLLOW`], and an open never waits on a FIFO that claims
/// a segment's name (`O_NONBLOCK` changes nothing for a regular file).
const NO_FOLLOW_NO_WAIT: i32 =
    (rustix::fs::OFlags::NOFOLLOW.bits() | rustix::fs::OFlags::NONBLOCK.bits()) as i32;

/// Creates `dir` and its missing parents `0700`.
pub(super) fn create_dir_all(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(FileMode::Private.dir_bits())
        .create(dir)
}

/// Takes an exclusive `flock` on the directory itself.
pub(super) fn lock_dir(dir: &Path) -> io::Result<DirLock> {
    let f = File::open(dir)?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(DirLock::new(Box::new(Flock(f)))),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "directory is locked by another vault writer",
        )),
        Err(e) => Err(e.into()),
    }
}

/// A held `flock`, released explicitly when dropped. Closing the descriptor is not enough: a
/// process that another thread is starting holds a copy of every descriptor until its `exec`,
/// and the lock lives while any copy does, so a reopen right after close could find the
/// directory still locked. `LOCK_UN` releases it for every copy.
#[derive(Debug)]
struct Flock(File);

impl Drop for Flock {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(&self.0, rustix::fs::FlockOperation::Unlock);
    }
}

/// Opens `path` without following a symbolic link (`O_NOFOLLOW`), creating it (where
/// `options` says so) owner-only, `0600`. No retries: nothing on POSIX holds a file open
/// exclusively.
pub(super) fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    options
        .mode(FileMode::Private.file_bits())
        .custom_flags(NO_FOLLOW)
        .open(path)
}

/// As [`open`], and never waiting on a FIFO that claims the name (`O_NONBLOCK`).
pub(super) fn open_no_wait(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    options
        .mode(FileMode::Private.file_bits())
        .custom_flags(NO_FOLLOW_NO_WAIT)
        .open(path)
}

/// What `path` is if not a regular file, by `lstat` (a link is not followed).
pub(super) fn not_regular(path: &Path) -> io::Result<Option<&'static str>> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::symlink_metadata(path)?.file_type();
    Ok(if t.is_file() {
        None
    } else if t.is_symlink() {
        Some("a symbolic link")
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("a device")
    })
}

/// `chmod` to the mode's file or directory bits.
pub(super) fn set_mode(path: &Path, mode: FileMode, dir: bool) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bits = if dir {
        mode.dir_bits()
    } else {
        mode.file_bits()
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits))
}

/// `MADV_WILLNEED`: a hint; a kernel that refuses it reads the pages on demand.
pub(super) fn will_read(map: &MmapRaw) {
    let _ = map.advise(Advice::WillNeed);
}

/// Allocates `len` bytes of a new, empty file for real.
pub(super) fn allocate(f: File, path: &Path, len: u64, io: IoPath) -> io::Result<()> {
    match rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) if io == IoPath::Direct => crate::direct::write_zeros(path, len),
        Ok(()) => Ok(()),
        // No fallocate on this file system: write the zeros ourselves. Never fall back to a
        // sparse set_len, which turns a full disk into SIGBUS under mmap.
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
            super::write_zeros(f, len)
        }
        Err(e) => Err(e.into()),
    }
}

/// Nothing to do when a mapping goes: POSIX keeps an unlinked file's pages while it is mapped.
#[derive(Debug)]
pub(super) struct Mapped;

/// Registers nothing (see [`Mapped`]).
pub(super) fn mapped(_path: &Path) -> Mapped {
    Mapped
}

/// `rename(2)`: atomic, and allowed over or of a mapped file.
pub(super) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

/// `unlink(2)`: a mapped file's pages stay until the last mapping goes.
pub(super) fn remove(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)
}

/// The names of the entries of `dir`.
pub(super) fn list(dir: &Path) -> io::Result<Vec<OsString>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

/// The file a read-only open of `path` reads: `path` itself (nothing is ever set aside here).
pub(super) fn read_path(path: &Path) -> PathBuf {
    path.to_path_buf()
}
