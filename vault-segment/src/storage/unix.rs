//! What Linux and macOS share: the directory lock (`flock` on the directory), allocation
//! (`fallocate`, which rustix implements with `F_PREALLOCATE` on Apple), renames and removals
//! (POSIX: atomic, and a mapped file may be renamed or unlinked), and directory `fsync`.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use super::{DirLock, IoPath};

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

/// Opens `path` (no retries needed: nothing on POSIX holds a file open exclusively).
pub(super) fn open(path: &Path, options: &OpenOptions) -> io::Result<File> {
    options.open(path)
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
