//! macOS (type-checked in CI, never run there): `msync` and `fsync` reach the drive's cache
//! but not its media on Apple hardware, so every sync ends with `fcntl(F_FULLFSYNC)` (or, opted
//! into with [`set_apple_sync`](super::set_apple_sync), the cheaper ordering-only
//! `F_BARRIERFSYNC`). memmap2's `flush` issues neither. Allocation is `F_PREALLOCATE` (rustix's
//! `fallocate` on Apple), pre-faulting touches each page (no `MADV_POPULATE_WRITE`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use memmap2::MmapRaw;

use super::AppleSync;

pub(super) use super::unix::{
    allocate, create_dir_all, lock_dir, mapped, not_regular, open, open_no_wait, remove, rename,
    set_mode, will_read, Mapped,
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
    offset: usize,
    len: usize,
) -> io::Result<()> {
    map.flush_range(offset, len)?;
    full_sync(file)
}

/// Faults every page in writable by touching it (no `MADV_POPULATE_WRITE` on macOS).
#[allow(clippy::unnecessary_wraps)]
pub(super) fn prefault(map: &MmapRaw) -> io::Result<()> {
    crate::segment::touch_pages(map.as_mut_ptr(), map.len());
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
pub(super) const RAW_EIO: i32 = 5;
pub(super) const RAW_ENOSPC: i32 = 28;
