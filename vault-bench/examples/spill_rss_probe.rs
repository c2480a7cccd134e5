//! Spill probe (docs/PERFORMANCE.md, "The targets", spill): the process memory the direct
//! path holds while one writer spills 2 GiB of 4 KiB records, synced once a second.
//!
//! `cargo run --release -p vault-bench --example spill_rss_probe -- [interval|manual|fast]`
//!
//! Prints the growth of `RssAnon` + `RssShmem` (`/proc/self/status`) every 128 MiB, with the WAL's segment
//! count, durable LSN and write waits. The log goes under `VAULT_BENCH_DIR` (default
//! `target/tmp`, which must take `O_DIRECT`).
use std::time::Duration;
use vault_core::{IoMode, Options, SyncPolicy, Wal};
/// The process's own memory in MiB: `RssAnon` plus `RssShmem` (the direct path's ring is an
/// in-memory file, counted there), not the page cache of the log's files it maps.
fn rss() -> i64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let mut kb = 0;
    for l in s.lines() {
        if let Some(v) = l
            .strip_prefix("RssAnon:")
            .or_else(|| l.strip_prefix("RssShmem:"))
        {
            kb += v
                .trim()
                .trim_end_matches(" kB")
                .trim()
                .parse::<i64>()
                .unwrap();
        }
    }
    kb / 1024
}
fn main() {
    let sync = match std::env::args().nth(1).as_deref() {
        Some("interval") => SyncPolicy::Interval(Duration::from_secs(1)),
        Some("manual") => SyncPolicy::Manual,
        _ => SyncPolicy::Interval(Duration::from_millis(10)),
    };
    let dir = tempfile::tempdir_in(vault_bench::bench_root()).unwrap();
    let wal = Wal::open(
        dir.path(),
        Options::default().with_io(IoMode::Direct).with_sync(sync),
    )
    .unwrap();
    let rec = vec![7u8; 4096];
    let r0 = rss();
    for i in 0..(1u64 << 19) {
        wal.append(&rec).unwrap();
        if i % (1 << 15) == 0 {
            let s = wal.stats();
            println!(
                "{i}: rss +{} MiB, segments {}, durable {}, write_waits {}",
                rss() - r0,
                s.segments,
                s.durable_lsn,
                s.write_waits
            );
        }
    }
    let s = wal.stats();
    println!(
        "end: rss +{} MiB, segments {}, durable {}, write_waits {}",
        rss() - r0,
        s.segments,
        s.durable_lsn,
        s.write_waits
    );
    std::thread::sleep(Duration::from_millis(1500));
    let s = wal.stats();
    println!(
        "after 1.5 s: rss +{} MiB, segments {}, durable {}",
        rss() - r0,
        s.segments,
        s.durable_lsn
    );
    wal.close().unwrap();
    println!("closed: rss +{} MiB", rss() - r0);
}
