//! Linux: `msync(MS_SYNC)` for mapped data, `MADV_POPULATE_WRITE` to pre-fault, `fsync` of
//! files and directories, `getrandom`; for the direct path (`crate::direct`), `O_DIRECT`
//! writes made durable by `RWF_DSYNC` ([`DirectFile`]), and the `statfs` name and `O_DIRECT`
//! probe of a directory ([`file_system`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::{Advice, MmapRaw};
use rustix::fs::{OFlags, StatxFlags};
use rustix::io::{Errno, ReadWriteFlags};

use super::FileSystem;

pub(super) use super::unix::{
    allocate, create_dir_all, list, lock_dir, mapped, not_regular, open, open_no_wait, read_path,
    remove, rename, set_mode, will_read, Mapped,
};

/// `msync(MS_SYNC)` over the page-aligned range (memmap2's `flush_range`) for a writable
/// mapping; `fdatasync` of the file for a read-only one, whose `msync` syncs nothing (the kernel
/// drops `VM_SHARED` from a mapping of a file opened read-only), though its pages may be dirty:
/// a process that died left them so, and open reads them before it calls them recovered.
pub(super) fn sync_mapping(
    map: &MmapRaw,
    file: &File,
    writable: bool,
    offset: usize,
    len: usize,
) -> io::Result<()> {
    if writable {
        map.flush_range(offset, len)
    } else {
        file.sync_data()
    }
}

/// Faults every page in writable with one `MADV_POPULATE_WRITE`.
pub(super) fn prefault(map: &MmapRaw) -> io::Result<()> {
    match map.advise(Advice::PopulateWrite) {
        Ok(()) => Ok(()),
        // Kernels before 5.14 lack MADV_POPULATE_WRITE: fault each page by hand.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            super::touch_pages(map.as_mut_ptr(), map.len());
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The direct path's memory ring works here (see `crate::storage::DIRECT_RING`).
pub(super) const DIRECT_RING: bool = true;

/// `MADV_POPULATE_WRITE` over the page-aligned range; `Ok(false)` on kernels before 5.14.
pub(super) fn populate(map: &MmapRaw, offset: usize, len: usize) -> io::Result<bool> {
    match map.advise_range(Advice::PopulateWrite, offset, len) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(Errno::INVAL.raw_os_error()) => Ok(false),
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
#[cfg(any(test, feature = "testing"))]
pub(super) const RAW_EIO: i32 = 5;
#[cfg(any(test, feature = "testing"))]
pub(super) const RAW_ENOSPC: i32 = 28;

/// The alignment used when the file system does not report one (`STATX_DIOALIGN`, Linux 6.1).
const DEFAULT_ALIGN: usize = 4096;

/// A segment file opened for the direct path: `O_DIRECT` (no page cache), writes made durable
/// by `RWF_DSYNC` (the write carries the device flush).
#[derive(Debug)]
pub(crate) struct DirectFile {
    file: File,
    align: usize,
    /// Whether `RWF_DSYNC` works here; cleared (for good) after the kernel refused it once.
    dsync_flag: AtomicBool,
}

impl DirectFile {
    /// Opens an existing file read-write with `O_DIRECT | O_NOFOLLOW`.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let flags = (OFlags::DIRECT | OFlags::NOFOLLOW).bits();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags as i32)
            .open(path)?;
        Ok(Self {
            align: dio_align(&file),
            file,
            dsync_flag: AtomicBool::new(true),
        })
    }

    /// The offset, length and memory alignment direct reads and writes need
    /// (`STATX_DIOALIGN`, else 4096).
    pub(crate) fn align(&self) -> usize {
        self.align
    }

    /// The file's length.
    pub(crate) fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// `pread` (aligned).
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    /// `pwrite` (aligned), not waiting for the device.
    pub(crate) fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.file.write_at(buf, offset)
    }

    /// One `pwritev2(RWF_DSYNC)` (aligned): durable when it returns. Where the kernel refuses
    /// the flag, `pwrite` + `fdatasync`.
    pub(crate) fn write_durable_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        loop {
            if self.dsync_flag.load(Ordering::Relaxed) {
                match rustix::io::pwritev2(
                    &self.file,
                    &[io::IoSlice::new(buf)],
                    offset,
                    ReadWriteFlags::DSYNC,
                ) {
                    Ok(w) => return Ok(w),
                    Err(e) if e == Errno::OPNOTSUPP || e == Errno::NOSYS => {
                        self.dsync_flag.store(false, Ordering::Relaxed);
                    }
                    Err(e) if e == Errno::INTR => {}
                    Err(e) => return Err(e.into()),
                }
            } else {
                match self.file.write_at(buf, offset) {
                    Ok(w) => {
                        self.file.sync_data()?;
                        return Ok(w);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// `fdatasync`.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Maps `len` bytes of the file from `offset` at `addr`, read-only and shared, in place
    /// of what was mapped there: one `mmap(MAP_FIXED)`, which swaps the pages under the
    /// process's address-space lock, so another thread reading those addresses reads either
    /// the old pages or the file's, never a hole.
    ///
    /// # Safety
    ///
    /// `addr` and `len` are page multiples, `[addr, addr + len)` lies inside a mapping this
    /// region owns, nothing stores into it from now on, and the file holds the same bytes
    /// there (written by a completed direct write, which dropped any stale cached page).
    pub(crate) unsafe fn map_over(&self, addr: *mut u8, len: usize, offset: u64) -> io::Result<()> {
        // SAFETY: the caller's contract: the range is ours to replace, and its readers see
        // the same bytes before and after.
        unsafe { map_fixed(addr, len, &self.file, offset, false) }
    }
}

/// The page size: what [`DirectFile::map_over`] and [`map_fixed`] map in units of.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// The memory of the direct path's ring: an anonymous in-memory file (`memfd_create`) of
/// `len` bytes, whose pages are mapped into a region where the ring is and stay allocated
/// while they move (faulting fresh anonymous memory in costs a page fault per 4 KiB, dearer
/// where the host reclaims freed guest memory).
pub(crate) fn ring_file(len: usize) -> io::Result<File> {
    let fd = rustix::fs::memfd_create("vault-ring", rustix::fs::MemfdFlags::CLOEXEC)?;
    let file = File::from(fd);
    file.set_len(len as u64)?;
    Ok(file)
}

/// Puts `len` bytes of anonymous memory at `addr` in place of what was mapped there, holding
/// `bytes` and then zeros (faulted in only where touched). The memory is made and filled
/// elsewhere and then moved in with one `mremap(MREMAP_FIXED)`, which swaps the pages under
/// the address-space lock: another thread reading those addresses reads the old pages or
/// the new ones, never a hole or a half-filled copy.
///
/// # Safety
///
/// `addr` and `len` are page multiples, `bytes.len() <= len`, `[addr, addr + len)` lies
/// inside a mapping the caller owns, and whoever reads it expects `bytes` then zeros there.
pub(crate) unsafe fn map_anon_fixed(addr: *mut u8, len: usize, bytes: &[u8]) -> io::Result<()> {
    use rustix::mm::{MapFlags, MremapFlags, ProtFlags};
    // SAFETY: a new private anonymous mapping at an address the kernel picks.
    let tmp = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE | MapFlags::NORESERVE,
        )
    }?;
    // SAFETY: `tmp` is `len >= bytes.len()` writable bytes nobody else knows of.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), tmp.cast::<u8>(), bytes.len()) };
    // SAFETY: `tmp` is ours and `len` long; the caller's contract covers the target.
    match unsafe { rustix::mm::mremap_fixed(tmp, len, len, MremapFlags::MAYMOVE, addr.cast()) } {
        Ok(_) => Ok(()),
        Err(e) => {
            // SAFETY: `tmp` is still ours (the move failed).
            let _ = unsafe { rustix::mm::munmap(tmp, len) };
            Err(e.into())
        }
    }
}

/// Maps `len` bytes of `file` from `offset`, shared, at `addr` in place of what was mapped
/// there (`mmap(MAP_FIXED)`, atomic for other threads: see [`DirectFile::map_over`]):
/// read-only, or writable with its page tables filled in (`MAP_POPULATE`).
///
/// # Safety
///
/// `addr`, `len` and `offset` are page multiples, `[addr, addr + len)` lies inside a mapping
/// the caller owns, and no thread reads or writes it expecting other bytes than `file` holds
/// there from now on.
pub(crate) unsafe fn map_fixed(
    addr: *mut u8,
    len: usize,
    file: &File,
    offset: u64,
    writable: bool,
) -> io::Result<()> {
    use rustix::mm::{MapFlags, ProtFlags};
    let (prot, flags) = if writable {
        (
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED | MapFlags::FIXED | MapFlags::POPULATE,
        )
    } else {
        (ProtFlags::READ, MapFlags::SHARED | MapFlags::FIXED)
    };
    // SAFETY: the caller's contract.
    unsafe { rustix::mm::mmap(addr.cast(), len, prot, flags, file, offset) }?;
    Ok(())
}

fn dio_align(file: &File) -> usize {
    match rustix::fs::statx(
        file,
        "",
        rustix::fs::AtFlags::EMPTY_PATH,
        StatxFlags::DIOALIGN,
    ) {
        Ok(st)
            if st.stx_mask & StatxFlags::DIOALIGN.bits() != 0 && st.stx_dio_offset_align != 0 =>
        {
            let a = st.stx_dio_offset_align.max(st.stx_dio_mem_align) as usize;
            a.next_power_of_two().max(512)
        }
        _ => DEFAULT_ALIGN,
    }
}

/// File systems vault names, by `statfs` magic.
fn fs_name(magic: i64) -> &'static str {
    match magic {
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x8584_58f6 => "ramfs",
        0x794c_7630 => "overlayfs",
        0x6969 => "nfs",
        0x2fc1_2fc1 => "zfs",
        0xca45_1a4e => "bcachefs",
        0xF2F5_2010 => "f2fs",
        0x6573_5546 => "fuse",
        _ => "unknown",
    }
}

/// The file system of `dir` (`statfs` magic), whether it is copy-on-write, and whether it
/// takes `O_DIRECT` (tmpfs and ramfs are reported without it; elsewhere a probe write).
pub(super) fn file_system(dir: &Path) -> io::Result<FileSystem> {
    let st = rustix::fs::statfs(dir)?;
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    let name = fs_name(i64::from(st.f_type as i64)).to_string();
    let direct_io_error = if name == "tmpfs" || name == "ramfs" {
        // Linux 6.6+ accepts O_DIRECT on tmpfs, as a copy into the page cache that is
        // the file itself: there is no device to bypass to.
        Some(format!(
            "{name} keeps files in the page cache, which direct I/O exists to bypass"
        ))
    } else {
        probe(dir).err().map(|e| e.to_string())
    };
    Ok(FileSystem {
        copy_on_write: matches!(name.as_str(), "btrfs" | "zfs" | "bcachefs"),
        name,
        direct_io: direct_io_error.is_none(),
        direct_io_error,
    })
}

/// Opens a probe file in `dir` with `O_DIRECT` and writes one aligned block through it.
fn probe(dir: &Path) -> io::Result<()> {
    let path = dir.join(format!(".vault-direct-probe-{}", std::process::id()));
    let result = (|| {
        let flags = OFlags::DIRECT.bits();
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(flags as i32)
            .open(&path)?;
        let align = dio_align(&f);
        let block = crate::direct::anon(align)?;
        // SAFETY: a fresh anonymous mapping of `align` bytes.
        let buf = unsafe { std::slice::from_raw_parts(block.as_ptr(), align) };
        f.write_all_at(buf, 0)
    })();
    let _ = std::fs::remove_file(&path);
    result
}
