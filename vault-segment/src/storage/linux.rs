//! Linux: `msync(MS_SYNC)` for mapped data, `MADV_POPULATE_WRITE` to pre-fault, `fsync` of
//! files and directories, `getrandom`. The direct path (`O_DIRECT` + `RWF_DSYNC`) is in
//! `crate::direct`.

use std::fs::File;
use std::io;
use std::path::Path;

use memmap2::{Advice, MmapRaw};

pub(super) use super::unix::{
    allocate, create_dir_all, lock_dir, mapped, not_regular, open, open_no_wait, remove, rename,
    set_mode, will_read, Mapped,
};

/// `msync(MS_SYNC)` over the page-aligned range (memmap2's `flush_range`).
pub(super) fn sync_mapping(
    map: &MmapRaw,
    _file: &File,
    offset: usize,
    len: usize,
) -> io::Result<()> {
    map.flush_range(offset, len)
}

/// Faults every page in writable with one `MADV_POPULATE_WRITE`.
pub(super) fn prefault(map: &MmapRaw) -> io::Result<()> {
    match map.advise(Advice::PopulateWrite) {
        Ok(()) => Ok(()),
        // Kernels before 5.14 lack MADV_POPULATE_WRITE: fault each page by hand.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            crate::segment::touch_pages(map.as_mut_ptr(), map.len());
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `fsync` of the directory: makes its entries durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `fsync`: covers the inode's dirty pages whichever descriptor wrote them.
pub(super) fn sync_file(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// `getrandom(2)`.
pub(super) fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        filled +=
            rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())?;
    }
    Ok(())
}

/// `EIO` and `ENOSPC`, for injected faults.
pub(super) const RAW_EIO: i32 = 5;
pub(super) const RAW_ENOSPC: i32 = 28;
