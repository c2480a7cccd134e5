//! Probe: time `Segment::create` (allocate, pre-fault, header sync, rename, dir fsync).
use std::time::Instant;
use vault_segment::IoPath;
use vault_segment::{FsStorage, Segment};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/tmp/prep".into());
    let size: u64 = std::env::args()
        .nth(2)
        .map_or(64 << 20, |s| s.parse().unwrap());
    let n: u64 = std::env::args().nth(3).map_or(10, |s| s.parse().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = std::path::Path::new(&dir);
    let mut ms = Vec::new();
    for i in 1..=n {
        let t = Instant::now();
        let p = Segment::create(&FsStorage, dir, i, size, IoPath::Mmap).unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        drop(p);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "size {} MiB: min {:.1} ms, median {:.1} ms, max {:.1} ms ({:.2} GB/s at median)",
        size >> 20,
        ms[0],
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        size as f64 / ms[ms.len() / 2] / 1e6
    );
    std::fs::remove_dir_all(dir).unwrap();
}
