//! What a sync does to the page cache: a segment mapped read-only still makes durable the pages
//! another mapping (a process that died) left dirty.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;

use vault_segment::{Access, FsStorage, IoPath, Region, Storage};

/// Pages of `file` in the page cache and how many of them are dirty (`cachestat`, Linux 6.5), or
/// `None` where the kernel lacks the call.
fn cached_and_dirty(file: &std::fs::File) -> Option<(u64, u64)> {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        cache: u64,
        dirty: u64,
        writeback: u64,
        evicted: u64,
        recently_evicted: u64,
    }
    const SYS_CACHESTAT: libc::c_long = 451;
    let range = Range { off: 0, len: 0 };
    let mut stat = Stat::default();
    // SAFETY: `cachestat(fd, range, cstat, flags)` reads `range` and writes `stat`, both live,
    // properly sized `repr(C)` structs of the kernel's layout; the descriptor is open.
    let r = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &raw const range,
            &raw mut stat,
            0,
        )
    };
    (r == 0).then_some((stat.cache, stat.dirty))
}

fn write_through(region: &dyn Region, offset: usize, bytes: &[u8]) {
    assert!(offset + bytes.len() <= region.len());
    // SAFETY: the region is a writable mapping of at least `offset + bytes.len()` bytes that
    // nothing else in this test reads or writes concurrently.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), region.as_ptr().add(offset), bytes.len());
    }
}

#[test]
fn read_only_mapping_sync_makes_pages_another_mapping_dirtied_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("segment");
    let len = 1 << 20;
    FsStorage
        .create_allocated(&path, len, IoPath::Mmap)
        .unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let Some(_) = cached_and_dirty(&file) else {
        eprintln!("skipped: this kernel has no cachestat (Linux 6.5+) to see dirty pages with");
        return;
    };
    // A writer stores through its mapping and goes away without syncing, like a killed
    // process: its pages stay dirty in the page cache.
    let writer = FsStorage.map(&path, Access::Write(IoPath::Mmap)).unwrap();
    write_through(&*writer, 0, &[0xA5; 256 << 10]);
    drop(writer);
    let (_, dirty) = cached_and_dirty(&file).unwrap();
    if dirty == 0 {
        eprintln!("skipped: the kernel wrote the pages back before the check");
        return;
    }
    // Recovery reads the file through a read-only mapping and syncs it before calling its
    // records recovered.
    let reader = FsStorage.map(&path, Access::Read).unwrap();
    reader.sync(0, reader.len()).unwrap();
    let (cached, dirty) = cached_and_dirty(&file).unwrap();
    assert!(cached > 0, "the written pages are still cached");
    assert_eq!(dirty, 0, "the read-only mapping's sync left pages dirty");
}
