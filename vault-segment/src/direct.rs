//! The direct-I/O path: a writable segment whose bytes live in process memory and reach the
//! file only through `O_DIRECT` writes, never through the page cache.
//!
//! # How it keeps the mapping contract
//!
//! [`DirectRegion`] is anonymous, page-aligned memory as long as the file, holding exactly the
//! file's bytes when it is opened (a fresh segment is zeros on both sides). Appends store into
//! it like into a mapping; [`Region::sync`] writes the aligned blocks that cover the range
//! with one `pwritev2(RWF_DSYNC)` on a descriptor opened with `O_DIRECT` (falling back to
//! `pwrite` + `fdatasync` where the flag is refused), so a sync is one data write plus the
//! device flush the write carries. Readers read the memory, so every published record is
//! readable whether or not it was written to the file yet.
//!
//! # The tail block is rewritten, never torn into loss
//!
//! Small records share the last block: each sync rewrites it with more bytes. The bytes before
//! the synced end are the same in every write that covers them (the appender only ever writes
//! past the published end), so a power cut during a rewrite leaves each sector either old or
//! new, and both hold those bytes. Writes of one segment never overlap in time: the segment
//! serialises its syncs (`Segment::sync_to`).
//!
//! # Page cache
//!
//! Nothing here uses the page cache except [`open`] of an existing file, which reads it with
//! `O_DIRECT` as well. The read-only mappings of finished segments (see
//! `Segment::reopen`) fill the page cache only with pages a reader touches.

#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::fs::File;
use std::io;
use std::path::Path;

use memmap2::{MmapOptions, MmapRaw};

use crate::storage::{FileSystem, Region};

/// Bytes written per `pwrite` when zero-filling a new file.
const ZERO_CHUNK: usize = 1 << 20;

/// The alignment used when the file system does not report one (`STATX_DIOALIGN`, Linux 6.1).
const DEFAULT_ALIGN: usize = 4096;

/// Finished segments' memory kept for the next segments, at most this many buffers
/// process-wide (see [`Memory`]).
const POOL_MAX: usize = 2;

static POOL: std::sync::Mutex<Vec<MmapRaw>> = std::sync::Mutex::new(Vec::new());

/// A segment's anonymous memory. When the region drops, the memory goes back to a small
/// process-wide pool instead of being unmapped, and the next segment of the same size takes it
/// from there: unmapping 64 MiB on whichever thread drops the last handle (the writer, at a
/// rotation) costs milliseconds, and fresh anonymous memory costs a page fault per 4 KiB
/// when it is pre-faulted (up to ~8 µs each when the VM's host has reclaimed it).
#[derive(Debug)]
struct Memory(Option<MmapRaw>);

impl Memory {
    /// Memory for `len` bytes, all zero when `zeroed` (else its content is unspecified).
    fn take(len: usize, zeroed: bool) -> io::Result<Self> {
        let want = len.max(1).div_ceil(4096) * 4096;
        let reused = {
            let mut pool = POOL
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pool.iter()
                .position(|m| m.len() == want)
                .map(|i| pool.swap_remove(i))
        };
        match reused {
            Some(m) => {
                if zeroed {
                    // SAFETY: `m` is an anonymous mapping of `m.len()` bytes that nothing else
                    // references any more (its region dropped before it entered the pool).
                    unsafe { std::ptr::write_bytes(m.as_mut_ptr(), 0, m.len()) };
                }
                Ok(Self(Some(m)))
            }
            None => Ok(Self(Some(anon(want)?))),
        }
    }
}

impl std::ops::Deref for Memory {
    type Target = MmapRaw;

    fn deref(&self) -> &MmapRaw {
        self.0.as_ref().expect("memory is present until dropped")
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            let mut pool = POOL
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pool.len() < POOL_MAX {
                pool.push(m);
            }
        }
    }
}

/// A segment's bytes in process memory, written to the file with `O_DIRECT`.
#[derive(Debug)]
pub(crate) struct DirectRegion {
    mem: Memory,
    /// The file's length (the region's length).
    len: usize,
    /// Offset and length alignment of direct writes.
    align: usize,
    file: File,
    /// Whether `RWF_DSYNC` works here; cleared (for good) after the kernel refused it once.
    dsync_flag: std::sync::atomic::AtomicBool,
}

/// Opens an existing segment file for the direct path: the region holds the file's bytes.
pub(crate) fn open(path: &Path, fresh: bool) -> io::Result<Box<dyn Region>> {
    imp::open(path, fresh)
}

/// Writes `len` zero bytes over a new file with `O_DIRECT` and syncs them, so that later
/// direct writes overwrite written blocks (no unwritten-extent conversion per sync).
pub(crate) fn write_zeros(path: &Path, len: u64) -> io::Result<()> {
    imp::write_zeros(path, len)
}

/// The file system of `dir` and whether it takes direct I/O.
pub(crate) fn file_system(dir: &Path) -> io::Result<FileSystem> {
    imp::file_system(dir)
}

fn anon(len: usize) -> io::Result<MmapRaw> {
    // Anonymous mappings are page-aligned, which satisfies every direct-I/O memory alignment.
    Ok(MmapRaw::from(
        MmapOptions::new().len(len.max(1)).map_anon()?,
    ))
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{anon, DirectRegion, Memory, DEFAULT_ALIGN, ZERO_CHUNK};
    use crate::storage::{FileSystem, Region};
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    use memmap2::Advice;
    use rustix::fs::{OFlags, StatxFlags};
    use rustix::io::{Errno, ReadWriteFlags};

    fn open_direct(path: &Path, write: bool) -> io::Result<File> {
        let flags = (OFlags::DIRECT | OFlags::NOFOLLOW).bits();
        #[allow(clippy::cast_possible_wrap)]
        OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(flags as i32)
            .open(path)
    }

    fn dio_align(file: &File) -> usize {
        match rustix::fs::statx(
            file,
            "",
            rustix::fs::AtFlags::EMPTY_PATH,
            StatxFlags::DIOALIGN,
        ) {
            Ok(st)
                if st.stx_mask & StatxFlags::DIOALIGN.bits() != 0
                    && st.stx_dio_offset_align != 0 =>
            {
                let a = st.stx_dio_offset_align.max(st.stx_dio_mem_align) as usize;
                a.next_power_of_two().max(512)
            }
            _ => DEFAULT_ALIGN,
        }
    }

    pub(super) fn open(path: &Path, fresh: bool) -> io::Result<Box<dyn Region>> {
        let file = open_direct(path, true)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "empty file"));
        }
        let align = dio_align(&file);
        let mem = Memory::take(len, fresh)?;
        if !fresh {
            // Read what the file holds (with O_DIRECT, so no page cache): whole aligned
            // blocks, and the last partial one through a buffered descriptor.
            let whole = len - len % align;
            let mut off = 0;
            while off < whole {
                let n = (whole - off).min(64 << 20);
                // SAFETY: `mem` is a live, private anonymous mapping of at least `len` bytes
                // that no one else can see yet; `off + n <= len`.
                let dst = unsafe { std::slice::from_raw_parts_mut(mem.as_mut_ptr().add(off), n) };
                file.read_exact_at(dst, off as u64)?;
                off += n;
            }
            if whole < len {
                let f = File::open(path)?;
                // SAFETY: as above; `whole < len`.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(mem.as_mut_ptr().add(whole), len - whole)
                };
                f.read_exact_at(dst, whole as u64)?;
            }
        }
        Ok(Box::new(DirectRegion {
            mem,
            len,
            align,
            file,
            dsync_flag: AtomicBool::new(true),
        }))
    }

    impl DirectRegion {
        /// Writes `[start, end)` (aligned) from memory to the file, not waiting for it to be
        /// durable.
        fn write_plain(&self, start: usize, end: usize) -> io::Result<()> {
            let mut off = start;
            while off < end {
                let n = (end - off).min(1 << 30);
                // SAFETY: `[off, off + n)` lies inside the live mapping; the caller passes only
                // published bytes, which nothing writes again.
                let src = unsafe { std::slice::from_raw_parts(self.mem.as_ptr().add(off), n) };
                match self.file.write_at(src, off as u64) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "direct write wrote nothing",
                        ))
                    }
                    Ok(w) => off += w,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }

        /// One durable write of `[start, end)` (aligned) from memory to the file.
        fn write_durable(&self, start: usize, end: usize) -> io::Result<()> {
            let mut off = start;
            while off < end {
                let n = (end - off).min(1 << 30);
                // SAFETY: `[off, off + n)` lies inside the live mapping (`end <= len`). The
                // kernel only reads these bytes; concurrent stores by the appender go past the
                // published end, which this write may carry as it carries any byte of the
                // block (recovery treats them as a torn tail).
                let src = unsafe { std::slice::from_raw_parts(self.mem.as_ptr().add(off), n) };
                let written = if self.dsync_flag.load(Ordering::Relaxed) {
                    match rustix::io::pwritev2(
                        &self.file,
                        &[io::IoSlice::new(src)],
                        off as u64,
                        ReadWriteFlags::DSYNC,
                    ) {
                        Ok(w) => w,
                        Err(e) if e == Errno::OPNOTSUPP || e == Errno::NOSYS => {
                            self.dsync_flag.store(false, Ordering::Relaxed);
                            continue;
                        }
                        Err(e) if e == Errno::INTR => continue,
                        Err(e) => return Err(e.into()),
                    }
                } else {
                    match self.file.write_at(src, off as u64) {
                        Ok(w) => {
                            self.file.sync_data()?;
                            w
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                if written == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "direct write wrote nothing",
                    ));
                }
                // A short direct write ends on a block boundary; the rest follows.
                off += written;
            }
            Ok(())
        }
    }

    // SAFETY: `mem` is a private anonymous mapping of `len` bytes at a fixed address until the
    // region drops, readable and writable; no one outside this process maps it, and the
    // segment's single appender is the only writer in this process (the mapping contract).
    unsafe impl Region for DirectRegion {
        fn as_ptr(&self) -> *mut u8 {
            self.mem.as_mut_ptr()
        }

        fn len(&self) -> usize {
            self.len
        }

        fn writable(&self) -> bool {
            true
        }

        fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
            let end = offset.saturating_add(len).min(self.len);
            if offset >= end {
                return Ok(());
            }
            let start = offset - offset % self.align;
            let end = end
                .div_ceil(self.align)
                .saturating_mul(self.align)
                .min(self.len);
            self.write_durable(start, end)
        }

        fn write_out(&self, offset: usize, len: usize) -> io::Result<()> {
            let end = offset.saturating_add(len).min(self.len);
            // Whole blocks only, ending at or below `end`: a block the appender is still
            // filling is left to the next write.
            let start = offset - offset % self.align;
            let end = end - end % self.align;
            if start >= end {
                return Ok(());
            }
            self.write_plain(start, end)
        }

        fn prefault(&self) -> io::Result<()> {
            match self.mem.advise(Advice::PopulateWrite) {
                Ok(()) => Ok(()),
                Err(e) if e.raw_os_error() == Some(Errno::INVAL.raw_os_error()) => {
                    crate::segment::touch_pages(self.mem.as_mut_ptr(), self.len);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    }

    pub(super) fn write_zeros(path: &Path, len: u64) -> io::Result<()> {
        let file = open_direct(path, true)?;
        let align = dio_align(&file) as u64;
        let zeros = anon(ZERO_CHUNK)?;
        // SAFETY: a fresh anonymous mapping of ZERO_CHUNK bytes, all zero, never written.
        let buf = unsafe { std::slice::from_raw_parts(zeros.as_ptr(), ZERO_CHUNK) };
        let whole = len - len % align;
        let mut off = 0u64;
        while off < whole {
            #[allow(clippy::cast_possible_truncation)]
            let n = (whole - off).min(ZERO_CHUNK as u64) as usize;
            file.write_all_at(&buf[..n], off)?;
            off += n as u64;
        }
        if whole < len {
            #[allow(clippy::cast_possible_truncation)]
            let rest = (len - whole) as usize;
            OpenOptions::new()
                .write(true)
                .open(path)?
                .write_all_at(&buf[..rest], whole)?;
        }
        file.sync_data()
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
            #[allow(clippy::cast_possible_wrap)]
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(flags as i32)
                .open(&path)?;
            let align = dio_align(&f);
            let block = anon(align)?;
            // SAFETY: a fresh anonymous mapping of `align` bytes.
            let buf = unsafe { std::slice::from_raw_parts(block.as_ptr(), align) };
            f.write_all_at(buf, 0)
        })();
        let _ = std::fs::remove_file(&path);
        result
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use crate::storage::{FileSystem, Region};
    use std::io;
    use std::path::Path;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "vault's direct I/O path is implemented on Linux only so far \
             (FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH on Windows and F_NOCACHE + \
             F_FULLFSYNC on macOS are not written yet); the mmap path serves every platform",
        )
    }

    pub(super) fn open(_path: &Path, _fresh: bool) -> io::Result<Box<dyn Region>> {
        Err(unsupported())
    }

    pub(super) fn write_zeros(_path: &Path, _len: u64) -> io::Result<()> {
        Err(unsupported())
    }

    pub(super) fn file_system(_dir: &Path) -> io::Result<FileSystem> {
        Ok(FileSystem {
            name: "unknown".into(),
            direct_io: false,
            direct_io_error: Some(unsupported().to_string()),
            copy_on_write: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::{Access, FsStorage, IoPath, Storage};

    #[test]
    fn a_direct_sync_puts_the_bytes_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStorage.file_system(dir.path()).unwrap();
        if !fs.direct_io {
            eprintln!(
                "skipped: no direct I/O on {}: {:?}",
                fs.name, fs.direct_io_error
            );
            return;
        }
        let path = dir.path().join("f");
        FsStorage
            .create_allocated(&path, 64 * 1024, IoPath::Direct)
            .unwrap();
        let region = FsStorage.map(&path, Access::Fresh(IoPath::Direct)).unwrap();
        // SAFETY: the region is writable and 64 KiB long.
        unsafe { std::ptr::copy_nonoverlapping(b"hello".as_ptr(), region.as_ptr().add(5000), 5) };
        region.sync(5000, 5).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[5000..5005], b"hello");
        assert!(on_disk[..5000].iter().all(|&b| b == 0));
        // Reopened, the region holds the file's bytes.
        let again = FsStorage.map(&path, Access::Write(IoPath::Direct)).unwrap();
        // SAFETY: 64 KiB, read only here.
        let bytes = unsafe { std::slice::from_raw_parts(again.as_ptr(), again.len()) };
        assert_eq!(bytes, &on_disk[..]);
    }

    #[test]
    fn memory_given_back_by_a_dropped_region_comes_back_zeroed_for_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        if !FsStorage.file_system(dir.path()).unwrap().direct_io {
            eprintln!("skipped: no direct I/O in the temporary directory");
            return;
        }
        // An unusual length, so that no other test's buffer is taken from the pool.
        let len = 52 * 4096;
        for round in 0..3 {
            let path = dir.path().join(format!("f{round}"));
            FsStorage
                .create_allocated(&path, len, IoPath::Direct)
                .unwrap();
            let region = FsStorage.map(&path, Access::Fresh(IoPath::Direct)).unwrap();
            // SAFETY: the region is writable and `len` bytes long; read only here otherwise.
            let bytes = unsafe { std::slice::from_raw_parts(region.as_ptr(), region.len()) };
            assert!(bytes.iter().all(|&b| b == 0), "round {round}: not zeroed");
            // SAFETY: as above.
            unsafe { std::ptr::write_bytes(region.as_ptr(), 0xAB, region.len()) };
        }
    }
}
