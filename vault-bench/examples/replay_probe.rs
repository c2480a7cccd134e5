//! Replay probe (docs/PERFORMANCE.md, "The targets", replay): writes 128 MiB of records on one
//! I/O path, closes, then times `Wal::open` and reading every record back, split into the two.
//!
//! `cargo run --release -p vault-bench --example replay_probe -- <mmap|direct> [record bytes] [rounds]`
//!
//! The log goes under `VAULT_BENCH_DIR` (default `target/tmp`). With `DROP_CACHES=1` (root) the
//! page cache is dropped before each open, so the mmap path reads from the device too; `SPARES=n`
//! sets `Options::spare_segments`.
use std::time::Instant;

use vault_core::{IoMode, Options, SyncPolicy, Wal};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let io = match args.get(1).map(String::as_str) {
        Some("direct") => IoMode::Direct,
        _ => IoMode::Mmap,
    };
    let len: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir_in(vault_bench::bench_root()).expect("tempdir");
    let spares: usize = std::env::var("SPARES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let options = || {
        let o = Options::default().with_io(io).with_sync(SyncPolicy::Manual);
        if spares > 0 {
            o.with_spare_segments(spares)
        } else {
            o
        }
    };
    let records = (128u64 << 20) / len as u64;
    {
        let wal = Wal::open(dir.path(), options()).expect("open");
        let rec = vec![0x5au8; len];
        for _ in 0..records {
            wal.append(&rec).expect("append");
        }
        wal.close().expect("close");
    }
    for _ in 0..rounds {
        if std::env::var_os("DROP_CACHES").is_some() {
            std::fs::write("/proc/sys/vm/drop_caches", "3").expect("drop caches (root)");
        }
        let t = Instant::now();
        let wal = Wal::open(dir.path(), options()).expect("reopen");
        let opened = t.elapsed();
        let mut bytes = 0u64;
        for r in wal.iter_from(wal.first_lsn()) {
            bytes += r.data().len() as u64;
        }
        let all = t.elapsed();
        assert_eq!(bytes, records * len as u64);
        drop(wal);
        let gib = bytes as f64 / f64::from(1u32 << 30);
        println!(
            "{io:?} {len} B: open {:.1} ms, read {:.1} ms, {:.2} GiB/s",
            opened.as_secs_f64() * 1e3,
            all.checked_sub(opened).unwrap().as_secs_f64() * 1e3,
            gib / all.as_secs_f64()
        );
    }
}
