//! Probe: nanoseconds per unsynced `Wal::append` (SyncPolicy::Manual, 512 MiB segments so that
//! nothing rotates), best of 15 passes of up to 100 k records (400 MiB in all) per size, 1 thread,
//! in `target/tmp` (the file system the benchmark uses) or `$VAULT_BENCH_DIR`; `VAULT_IO=mmap` or
//! `direct` picks the I/O path (default `Auto`). For profiles:
//!
//! ```text
//! cargo build --release -p vault-bench --example append_probe
//! perf record -e cpu-clock -g target/release/examples/append_probe 256
//! ```
use std::time::{Duration, Instant};

use vault_core::{IoMode, Options, SyncPolicy, Wal};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("record sizes in bytes"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![64, 256, 1024]
    } else {
        sizes
    };
    let root = vault_bench::bench_root();
    // Passes of a few milliseconds, best of many: on a shared machine the best pass is the one
    // no other process interrupted.
    const PASSES: usize = 15;
    for len in sizes {
        let per_pass = 100_000.min((400 << 20) / PASSES / (len + 24));
        let record = vec![0x5a_u8; len];
        let dir = tempfile::tempdir_in(&root).expect("temp dir");
        let io = match std::env::var("VAULT_IO").as_deref() {
            Ok("mmap") => IoMode::Mmap,
            Ok("direct") => IoMode::Direct,
            _ => IoMode::Auto,
        };
        let options = Options::default()
            .with_io(io)
            .with_sync(SyncPolicy::Manual)
            .with_segment_size(512 << 20);
        let wal = Wal::open(dir.path(), options).expect("open");
        // Let the worker finish preparing its spare, as the benchmark does.
        let deadline = Instant::now() + Duration::from_secs(30);
        while wal.stats().segments_prepared < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        let mut best = f64::MAX;
        for _ in 0..PASSES {
            let t = Instant::now();
            for _ in 0..per_pass {
                wal.append(std::hint::black_box(&record)).expect("append");
            }
            best = best.min(t.elapsed().as_secs_f64() / per_pass as f64);
        }
        assert_eq!(wal.stats().rotations, 0, "the run rotated");
        drop(wal);
        println!(
            "{len:>6} B: {:>6.1} ns per append ({:.2} M records/s)",
            best * 1e9,
            1e-6 / best
        );
    }
}
