//! Group-commit probe (docs/PERFORMANCE.md, "Group commit: where the scaling goes").
//!
//! `cargo run --release -p vault-bench --example gc_probe -- <mode> <threads> <records per thread>`
//!
//! Modes:
//! - `split`: `SyncPolicy::Manual`, each thread `append`s a 256 B record and then
//!   `wait_durable(lsn, None)` (the same group commit `SyncPolicy::Always` runs, on this
//!   thread), timing the two parts separately.
//! - `always`: `SyncPolicy::Always`, timing `append` as a whole.
//! - `floor`: each thread `pwrite`s 256 B into its own preallocated file and `fdatasync`s it
//!   (the device's scaling for independent syncs).
//!
//! `GC_IO=mmap|direct|auto` chooses the I/O path (default auto).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use vault_core::{IoMode, Options, SyncPolicy, Wal};

const REC: usize = 256;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("split", String::as_str).to_owned();
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let per: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let dir = tempfile::tempdir_in(std::env::var("GC_DIR").unwrap_or_else(|_| "/tmp".into()))
        .expect("tempdir");
    let barrier = Barrier::new(threads);
    let rec = [0xa5u8; REC];
    if mode == "floor" {
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                let barrier = &barrier;
                let path = dir.path().join(format!("f{t}"));
                s.spawn(move || {
                    let f = OpenOptions::new()
                        .create(true)
                        .truncate(true)
                        .read(true)
                        .write(true)
                        .open(path)
                        .expect("open");
                    f.write_all_at(&vec![0u8; per * REC], 0).expect("zero");
                    f.sync_all().expect("sync");
                    barrier.wait();
                    for i in 0..per {
                        f.write_all_at(&rec, (i * REC) as u64).expect("pwrite");
                        f.sync_data().expect("fdatasync");
                    }
                });
            }
        });
        let el = start.elapsed();
        println!(
            "floor threads={threads} recs={} rec/s={:.0}",
            threads * per,
            (threads * per) as f64 / el.as_secs_f64()
        );
        return;
    }
    let policy = if mode == "always" {
        SyncPolicy::Always
    } else {
        SyncPolicy::Manual
    };
    let io: IoMode = std::env::var("GC_IO")
        .unwrap_or_else(|_| "auto".into())
        .parse()
        .expect("GC_IO: mmap, direct or auto");
    let wal =
        Wal::open(dir.path(), Options::default().with_sync(policy).with_io(io)).expect("open");
    let report = wal.recovery().clone();
    eprintln!("io path: {}", report.io_path);
    // Let the worker prepare its spares.
    std::thread::sleep(Duration::from_millis(500));
    let s0 = wal.stats();
    let start = Instant::now();
    let totals: Vec<(Duration, Duration, Duration)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let (wal, barrier) = (&wal, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let (mut ta, mut tw, mut tmax) =
                        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
                    for _ in 0..per {
                        let t0 = Instant::now();
                        let lsn = wal.append(&rec).expect("append");
                        let t1 = Instant::now();
                        if policy == SyncPolicy::Manual {
                            wal.wait_durable(lsn, None).expect("wait");
                        }
                        let t2 = Instant::now();
                        ta += t1 - t0;
                        tw += t2 - t1;
                        tmax = tmax.max(t1 - t0);
                    }
                    (ta, tw, tmax)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("join")).collect()
    });
    let el = start.elapsed();
    let s1 = wal.stats();
    let n = (threads * per) as f64;
    let ta: Duration = totals.iter().map(|t| t.0).sum();
    let tw: Duration = totals.iter().map(|t| t.1).sum();
    let tmax = totals.iter().map(|t| t.2).max().unwrap_or_default();
    let flushes = s1.flushes - s0.flushes;
    println!(
        "{mode} threads={threads} recs={} rec/s={:.0} flushes={} recs/flush={:.2} \
         append mean={:.1}us max={:.0}us wait mean={:.1}us rotations={}",
        threads * per,
        n / el.as_secs_f64(),
        flushes,
        n / flushes as f64,
        ta.as_secs_f64() * 1e6 / n,
        tmax.as_secs_f64() * 1e6,
        tw.as_secs_f64() * 1e6 / n,
        s1.rotations - s0.rotations,
    );
    wal.close().expect("close");
}
