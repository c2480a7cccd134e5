//! macOS (type-checked in CI, never run there): `msync` and `fsync` reach the drive's cache
//! but not its media on Apple hardware, so every sync ends with `fcntl(F_FULLFSYNC)` (or, opted
//! into with [`set_apple_sync`](super::set_apple_sync), the cheaper ordering-only
//! `F_BARRIERFSYNC`). memmap2's `flush` issues neither. Allocation is `F_PREALLOCATE` (rustix's
//! `fallocate` on Apple), pre-faulting touches each page (no `MADV_POPULATE_WRITE`). The
//! direct path is `F_NOCACHE` + `pwrite` + `F_FULLFSYNC` ([`DirectFile`]); [`file_system`]
//! names the file system (`statfs`) and probes it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::MmapRaw;

use super::{AppleSync, FileSystem};

pub(super) use super::unix::{
    allocate, create_dir_all, list, lock_dir, mapped, not_regular, open, open_no_wait, read_path,
    remove, rename, set_mode, will_read, Mapped,
};

/// Flushes `file`'s data (all of it, and the drive's cache) to the media.
fn full_sync(file: &File) -> io::Result<()> {
    match super::apple_sync() {
        AppleSync::FullFsync => rustix::fs::fcntl_fullfsync(file).map_err(io::Error::from),
        AppleSync::BarrierFsync => {
            // SAFETY: `fcntl(F_BARRIERFSYNC)` takes no argument and reads no memory; the
            // descriptor is open for the duration of the call (borrowed from `file`).
            let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_BARRIERFSYNC) };
            if r == -1 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    }
}

/// `msync(MS_SYNC)` moves the dirty pages to the drive, then `F_FULLFSYNC` makes the drive
/// write them to the media.
pub(super) fn sync_mapping(
    map: &MmapRaw,
    file: &File,
    _writable: bool,
    offset: usize,
    len: usize,
) -> io::Result<()> {
    map.flush_range(offset, len)?;
    full_sync(file)
}

pub(crate) use super::no_ring::{
    map_anon_fixed, map_fixed, page_size, populate, ring_file, DIRECT_RING,
};

/// Faults every page in writable by touching it (no `MADV_POPULATE_WRITE` on macOS).
#[allow(clippy::unnecessary_wraps)]
pub(super) fn prefault(map: &MmapRaw) -> io::Result<()> {
    super::touch_pages(map.as_mut_ptr(), map.len());
    Ok(())
}

/// `F_FULLFSYNC` on the directory: its entries reach the media.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    full_sync(&File::open(dir)?)
}

/// `F_FULLFSYNC` of the file.
pub(super) fn sync_file(path: &Path) -> io::Result<()> {
    full_sync(&File::open(path)?)
}

/// Reads `/dev/urandom` (rustix has no `getentropy` wrapper).
pub(super) fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read as _;
    File::open("/dev/urandom")?.read_exact(buf)
}

/// `EIO` and `ENOSPC`, for injected faults.
#[cfg(any(test, feature = "testing"))]
pub(super) const RAW_EIO: i32 = 5;
#[cfg(any(test, feature = "testing"))]
pub(super) const RAW_ENOSPC: i32 = 28;

/// The alignment of direct writes: `F_NOCACHE` needs none, but whole pages keep every write
/// clear of a read-modify-write of a cached page.
const DIRECT_ALIGN: usize = 4096;

/// A segment file opened for the direct path: `fcntl(F_NOCACHE, 1)` (reads and writes bypass
/// the unified buffer cache where they are page-aligned), and every durable write a `pwrite`
/// followed by `F_FULLFSYNC` (or the opted-into `F_BARRIERFSYNC`, see
/// [`set_apple_sync`](super::set_apple_sync)): macOS has no per-write durability flag.
#[derive(Debug)]
pub(crate) struct DirectFile {
    file: File,
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

    /// Opens an existing file read-write, `O_NOFOLLOW`, then `F_NOCACHE`.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = super::unix::open(path, OpenOptions::new().read(true).write(true))?;
        rustix::fs::fcntl_nocache(&file, true)?;
        Ok(Self { file })
    }

    /// 4096 (see [`DIRECT_ALIGN`]).
    pub(crate) fn align(&self) -> usize {
        DIRECT_ALIGN
    }

    /// The file's length.
    pub(crate) fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// `pread`.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    /// `pwrite`, not waiting for the device.
    pub(crate) fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.file.write_at(buf, offset)
    }

    /// `pwrite` + `F_FULLFSYNC`: durable when it returns.
    pub(crate) fn write_durable_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let written = self.file.write_at(buf, offset)?;
        full_sync(&self.file)?;
        Ok(written)
    }

    /// `F_FULLFSYNC`.
    pub(crate) fn sync(&self) -> io::Result<()> {
        full_sync(&self.file)
    }
}

/// The file system of `dir` (`statfs`'s `f_fstypename`: `apfs`, `hfs`, ...), whether it is
/// copy-on-write (APFS: clones and snapshots share blocks, so an overwrite can need new space),
/// and whether it takes the direct path: a probe file that takes `F_NOCACHE`, one aligned
/// write and `F_FULLFSYNC`.
pub(super) fn file_system(dir: &Path) -> io::Result<FileSystem> {
    let st = rustix::fs::statfs(dir)?;
    let bytes: Vec<u8> = st
        .f_fstypename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c.cast_unsigned())
        .collect();
    let name = String::from_utf8_lossy(&bytes).into_owned();
    let direct_io_error = probe(dir).err().map(|e| e.to_string());
    Ok(FileSystem {
        copy_on_write: name == "apfs",
        name,
        direct_io: direct_io_error.is_none(),
        direct_io_error,
    })
}

/// Creates a probe file in `dir` and writes one aligned block through `F_NOCACHE`, then
/// `F_FULLFSYNC` (which some file systems, network ones among them, refuse).
fn probe(dir: &Path) -> io::Result<()> {
    let path = dir.join(format!(".vault-direct-probe-{}", std::process::id()));
    let result = (|| {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        rustix::fs::fcntl_nocache(&f, true)?;
        let block = crate::direct::anon(DIRECT_ALIGN)?;
        // SAFETY: a fresh anonymous mapping of `DIRECT_ALIGN` bytes.
        let buf = unsafe { std::slice::from_raw_parts(block.as_ptr(), DIRECT_ALIGN) };
        f.write_all_at(buf, 0)?;
        rustix::fs::fcntl_fullfsync(&f)?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    result
}
