//! Probe: ways to prepare a segment's pages, interleaved in one process, several rounds.
//!
//! `cargo run --release -p vault-segment --example prep_variants -- DIR SIZE ROUNDS [SYNC_ITERS] [VARIANTS]`
//!
//! VARIANTS: comma-separated names (`Base,Huge,...`, see `Variant`); all by default. Each
//! variant creates a file of SIZE bytes under DIR, maps it `MAP_SHARED` and makes every page
//! writable the way the variant says ("pages ms"), then (timed separately) the header steps
//! vault does: store + `msync` of page 0, rename, directory fsync. After that it times an
//! appender that stores 256 B into every page (a page the preparation left unmapped or
//! write-protected shows here as a fault, ~0.4-0.7 µs), and with SYNC_ITERS > 0 the sync-each
//! p50 (store + `msync` of the stored pages) at 256 B, 4 KiB and 64 KiB into the prepared file,
//! with the KiB the disk wrote per sync (`/sys/block/vda/stat`, whole disk). `AnonMemset*` are
//! floors: zeroing as many fresh anonymous pages in user space.
//!
//! Each file is removed after its round, so the next one reuses freshly freed (host-warm)
//! memory; with `KEEP=1` files stay until the end, so every segment takes fresh memory, as in
//! a log that is never truncated. On this VM that difference decides the large-folio result
//! (docs/PERFORMANCE.md, "Segment preparation: where the time goes").
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::fs::{fallocate, FallocateFlags};
use rustix::mm::{madvise, mmap, mmap_anonymous, munmap, Advice, MapFlags, MsyncFlags, ProtFlags};

const PAGE: usize = 4096;

#[derive(Clone, Copy, Debug)]
enum Variant {
    /// vault today: fallocate, `MADV_POPULATE_WRITE` of the whole mapping.
    Base,
    /// Same with `MADV_HUGEPAGE` on the mapping first (PMD-order readahead folios).
    Huge,
    /// Header stored and its page synced first (before any advice), then as `Huge`.
    HugeHeaderFirst,
    /// `MADV_HUGEPAGE`, then the header stored and its page synced, then populate (what
    /// `Segment::create_with(.., Prefault::LargeFolios)` does).
    HugeAdviseFirst,
    /// Header stored and its page synced first, then as `Base`.
    BaseHeaderFirst,
    /// Same with `MADV_NOHUGEPAGE` first (no large-folio readahead).
    NoHuge,
    /// `FALLOC_FL_ZERO_RANGE` instead of a plain fallocate.
    ZeroRange,
    /// `MAP_POPULATE` (read faults at mmap) then `MADV_POPULATE_WRITE`.
    MapPopulate,
    /// `MADV_POPULATE_WRITE` in 2 MiB chunks.
    Chunked,
    /// `MADV_POPULATE_WRITE` of the two halves on two threads at once.
    TwoThreads,
    /// fallocate, then 4 KiB `pwrite`s of zeros (order-0 cached pages), then populate.
    FallocPwrite4k,
    /// fallocate, then 1 MiB `pwrite`s of zeros (large folios), then populate.
    FallocPwrite1m,
    /// No fallocate: 1 MiB `pwrite`s of zeros (delalloc), then populate.
    Pwrite1m,
    /// fallocate, `MADV_POPULATE_READ` then `MADV_POPULATE_WRITE`.
    ReadThenWrite,
    /// Floor: memset of fresh anonymous memory of the same size (no file).
    AnonMemset,
    /// Same with `MADV_HUGEPAGE` (2 MiB pages).
    AnonMemsetHuge,
}

const ALL: [Variant; 16] = [
    Variant::Base,
    Variant::Huge,
    Variant::HugeHeaderFirst,
    Variant::BaseHeaderFirst,
    Variant::HugeAdviseFirst,
    Variant::NoHuge,
    Variant::ZeroRange,
    Variant::MapPopulate,
    Variant::Chunked,
    Variant::TwoThreads,
    Variant::FallocPwrite4k,
    Variant::FallocPwrite1m,
    Variant::Pwrite1m,
    Variant::ReadThenWrite,
    Variant::AnonMemset,
    Variant::AnonMemsetHuge,
];

struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from one successful mmap and nothing uses them after drop.
        unsafe { munmap(self.ptr.cast(), self.len).unwrap() };
    }
}

fn map_file(f: &File, len: usize, populate: bool) -> Map {
    let flags = if populate {
        MapFlags::SHARED | MapFlags::POPULATE
    } else {
        MapFlags::SHARED
    };
    // SAFETY: a fresh shared mapping of a file this probe owns; no other mapping aliases it.
    let ptr = unsafe {
        mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            flags,
            f,
            0,
        )
    }
    .unwrap();
    Map {
        ptr: ptr.cast(),
        len,
    }
}

fn advise(m: &Map, off: usize, len: usize, a: Advice) {
    // SAFETY: the range lies inside the live mapping `m`.
    unsafe { madvise(m.ptr.add(off).cast(), len, a) }.unwrap();
}

fn pwrite_zeros(f: &File, len: usize, chunk: usize) {
    let z = vec![0u8; chunk];
    let mut off = 0;
    while off < len {
        let n = chunk.min(len - off);
        f.write_all_at(&z[..n], off as u64).unwrap();
        off += n;
    }
}

/// Prepares `path`; returns (mapping, file, ms of the page work, ms of header+rename+dirsync).
fn prepare(v: Variant, dir: &Path, path: &Path, len: usize) -> (Map, File, f64, f64) {
    let t = Instant::now();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap();
    match v {
        Variant::ZeroRange => {
            f.set_len(len as u64).unwrap();
            fallocate(&f, FallocateFlags::ZERO_RANGE, 0, len as u64).unwrap();
        }
        Variant::Pwrite1m => pwrite_zeros(&f, len, 1 << 20),
        _ => fallocate(&f, FallocateFlags::empty(), 0, len as u64).unwrap(),
    }
    match v {
        Variant::FallocPwrite4k => pwrite_zeros(&f, len, PAGE),
        Variant::FallocPwrite1m => pwrite_zeros(&f, len, 1 << 20),
        _ => {}
    }
    let m = map_file(&f, len, matches!(v, Variant::MapPopulate));
    if matches!(v, Variant::HugeAdviseFirst) {
        advise(&m, 0, len, Advice::LinuxHugepage);
    }
    if matches!(
        v,
        Variant::HugeHeaderFirst | Variant::BaseHeaderFirst | Variant::HugeAdviseFirst
    ) {
        // SAFETY: page 0 is inside the mapping.
        unsafe { m.ptr.write_bytes(0xAB, 64) };
        // SAFETY: page 0 is inside the mapping.
        unsafe { rustix::mm::msync(m.ptr.cast(), PAGE, MsyncFlags::SYNC) }.unwrap();
    }
    match v {
        Variant::Huge | Variant::HugeHeaderFirst => advise(&m, 0, len, Advice::LinuxHugepage),
        Variant::NoHuge => advise(&m, 0, len, Advice::LinuxNoHugepage),
        Variant::ReadThenWrite => advise(&m, 0, len, Advice::LinuxPopulateRead),
        _ => {}
    }
    if matches!(v, Variant::TwoThreads) {
        let half = (len / 2) & !(PAGE - 1);
        let addr = m.ptr as usize;
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: the second half lies inside the live mapping `m`, which outlives the
                // scope.
                unsafe {
                    madvise(
                        (addr + half) as *mut std::ffi::c_void,
                        len - half,
                        Advice::LinuxPopulateWrite,
                    )
                }
                .unwrap();
            });
            advise(&m, 0, half, Advice::LinuxPopulateWrite);
        });
    } else if matches!(v, Variant::Chunked) {
        let mut off = 0;
        while off < len {
            let n = (2 << 20).min(len - off);
            advise(&m, off, n, Advice::LinuxPopulateWrite);
            off += n;
        }
    } else {
        advise(&m, 0, len, Advice::LinuxPopulateWrite);
    }
    let pages = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    // SAFETY: page 0 is inside the mapping.
    unsafe { m.ptr.write_bytes(0xAB, 64) };
    // SAFETY: page 0 is inside the mapping.
    unsafe { rustix::mm::msync(m.ptr.cast(), PAGE, MsyncFlags::SYNC) }.unwrap();
    let fin = path.with_extension("fin");
    std::fs::rename(path, &fin).unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
    (m, f, pages, t.elapsed().as_secs_f64() * 1e3)
}

fn anon_memset(len: usize, huge: bool) -> f64 {
    let t = Instant::now();
    // SAFETY: a fresh private anonymous mapping, unmapped below.
    let p = unsafe {
        mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }
    .unwrap()
    .cast::<u8>();
    if huge {
        // SAFETY: the range is the mapping just made.
        unsafe { madvise(p.cast(), len, Advice::LinuxHugepage) }.unwrap();
    }
    // SAFETY: the whole range is the mapping just made.
    unsafe { p.write_bytes(1, len) };
    let ms = t.elapsed().as_secs_f64() * 1e3;
    // SAFETY: as mapped above.
    unsafe { munmap(p.cast(), len) }.unwrap();
    ms
}

/// ns per 4 KiB page for storing 256 B at the start of every page (a fault shows here).
fn append_pass(m: &Map) -> f64 {
    let rec = [7u8; 256];
    let t = Instant::now();
    let mut off = PAGE;
    while off + 256 <= m.len {
        // SAFETY: in bounds of the mapping.
        unsafe { std::ptr::copy_nonoverlapping(rec.as_ptr(), m.ptr.add(off), 256) };
        off += PAGE;
    }
    t.elapsed().as_secs_f64() * 1e9 / (m.len / PAGE - 1) as f64
}

/// Sectors (512 B) written to the root disk so far (`/sys/block/vda/stat`), 0 if unknown.
fn sectors_written() -> u64 {
    std::fs::read_to_string("/sys/block/vda/stat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(6).and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

/// p50 µs of store `size` bytes + msync of the stored pages, `iters` times, sequential offsets.
/// Also returns KiB written to the disk per sync (whole-disk counter: other writers add to it).
fn sync_p50(m: &Map, size: usize, iters: usize) -> (f64, f64) {
    let s0 = sectors_written();
    let rec = vec![9u8; size];
    let mut lat = Vec::with_capacity(iters);
    let mut off = PAGE;
    for _ in 0..iters {
        if off + size > m.len {
            break;
        }
        let t = Instant::now();
        // SAFETY: in bounds of the mapping.
        unsafe { std::ptr::copy_nonoverlapping(rec.as_ptr(), m.ptr.add(off), size) };
        let start = off & !(PAGE - 1);
        let end = (off + size).div_ceil(PAGE) * PAGE;
        // SAFETY: page-aligned range inside the mapping.
        unsafe { rustix::mm::msync(m.ptr.add(start).cast(), end - start, MsyncFlags::SYNC) }
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        off += size;
    }
    let kib = (sectors_written() - s0) as f64 / 2.0 / lat.len() as f64;
    lat.sort_by(f64::total_cmp);
    (lat[lat.len() / 2], kib)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).map_or("target/tmp/prepv", String::as_str));
    let len: usize = args.get(2).map_or(64 << 20, |s| s.parse().unwrap());
    let rounds: usize = args.get(3).map_or(5, |s| s.parse().unwrap());
    let sync_iters: usize = args.get(4).map_or(0, |s| s.parse().unwrap());
    let only: Option<String> = args.get(5).cloned();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let variants: Vec<Variant> = ALL
        .iter()
        .copied()
        .filter(|v| {
            only.as_ref()
                .is_none_or(|o| o.split(',').any(|o| format!("{v:?}") == o))
        })
        .collect();
    let n = variants.len();
    let mut pages = vec![Vec::new(); n];
    let mut tail = vec![Vec::new(); n];
    let mut app = vec![Vec::new(); n];
    let mut syncs = vec![[Vec::new(), Vec::new(), Vec::new()]; n];
    let mut kibs = vec![[Vec::new(), Vec::new(), Vec::new()]; n];
    let mut k = 0;
    for round in 0..rounds {
        // Rotate the order each round so no variant always follows the same one.
        for j in 0..n {
            let i = (j + round) % n;
            let v = variants[i];
            if matches!(v, Variant::AnonMemset | Variant::AnonMemsetHuge) {
                pages[i].push(anon_memset(len, matches!(v, Variant::AnonMemsetHuge)));
                continue;
            }
            k += 1;
            let path = dir.join(format!("seg{k}"));
            let (m, f, p, h) = prepare(v, &dir, &path, len);
            pages[i].push(p);
            tail[i].push(h);
            app[i].push(append_pass(&m));
            if sync_iters > 0 {
                for (s, size) in [256usize, 4096, 65536].into_iter().enumerate() {
                    let (p50, kib) = sync_p50(&m, size, sync_iters);
                    syncs[i][s].push(p50);
                    kibs[i][s].push(kib);
                }
            }
            drop(m);
            drop(f);
            // KEEP=1: the page cache grows as in a log that is never truncated (fresh memory
            // for every segment) instead of reusing the memory the last segment freed.
            if std::env::var_os("KEEP").is_none() {
                std::fs::remove_file(path.with_extension("fin")).unwrap();
            }
        }
    }
    println!(
        "size {} KiB, {rounds} rounds, medians [min-max]:",
        len >> 10
    );
    println!("| variant | pages ms | GB/s | header+rename+dirsync ms | append ns/page after | sync p50 256 B / 4 KiB / 64 KiB µs |");
    println!("|---|---|---|---|---|---|");
    for i in 0..n {
        let mut p = pages[i].clone();
        let pm = median(&mut p);
        let lo = p[0];
        let hi = p[p.len() - 1];
        let h = if tail[i].is_empty() {
            f64::NAN
        } else {
            median(&mut tail[i])
        };
        let a = if app[i].is_empty() {
            f64::NAN
        } else {
            median(&mut app[i])
        };
        let s = if syncs[i][0].is_empty() {
            "-".to_string()
        } else {
            let [a0, a1, a2] = &mut syncs[i];
            let [k0, k1, k2] = &mut kibs[i];
            format!(
                "{:.0} / {:.0} / {:.0} (disk KiB per sync {:.0} / {:.0} / {:.0})",
                median(a0),
                median(a1),
                median(a2),
                median(k0),
                median(k1),
                median(k2)
            )
        };
        println!(
            "| {:?} | {pm:.1} [{lo:.1}-{hi:.1}] | {:.2} | {h:.2} | {a:.0} | {s} |",
            variants[i],
            len as f64 / pm / 1e6
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
