//! Recycling probe (docs/PERFORMANCE.md, "Recycled segments"): device writes and flushes per
//! sync in steady state, with segment recycling on or off.
//!
//! `cargo run --release -p vault-bench --example recycle_probe -- <mmap|direct> <on|off>
//! [segment MiB] [segments measured]`
//!
//! The workload is "sync every 64 records, 256 B" from one thread, in a log that recycles as
//! it goes: after every sync that completes a segment's worth of records, `truncate_front`
//! keeps only the last segment's worth. A warm-up of enough segments to cycle every spare and
//! every pooled file runs first; then the block device's counters (`/sys/dev/block/M:m/stat`,
//! writes completed and flushes completed) are read around the measured part. The directory
//! is under `RECYCLE_DIR` (default `/tmp`), its device found from it or named by `RECYCLE_DEV`
//! (`loop0`; needed on btrfs). Counters count every request to the device, whoever made it:
//! on a shared disk measure on a loop-mounted image of its own (`docs/PERFORMANCE.md`,
//! "Recycled segments", has the commands).

use std::time::Instant;

use vault_bench::harness::BlockDevice;
use vault_core::{IoMode, Options, SyncPolicy, Wal};

const REC: usize = 256;
const PER_SYNC: u64 = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let io = match args.get(1).map(String::as_str) {
        Some("direct") => IoMode::Direct,
        _ => IoMode::Mmap,
    };
    let recycle = args.get(2).map(String::as_str) != Some("off");
    let seg_mib: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    let measured: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(4);
    let base = std::env::var("RECYCLE_DIR").unwrap_or_else(|_| "/tmp".into());
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let mut options = Options::default()
        .with_io(io)
        .with_segment_size(seg_mib << 20)
        .with_sync(SyncPolicy::Manual);
    if !recycle {
        options = options.with_recycle_segments(0);
    }
    let spares = options.spares() as u64;
    let wal = Wal::open(dir.path(), options).expect("open");
    let report = wal.recovery().clone();
    // `RECYCLE_DEV` names the device where the directory's own is anonymous (btrfs).
    let dev = match std::env::var("RECYCLE_DEV") {
        Ok(name) => BlockDevice::named(&name),
        Err(_) => BlockDevice::of(dir.path()),
    }
    .expect("a block device under the directory (set RECYCLE_DEV on btrfs)");
    let frame = (16 + REC).next_multiple_of(8) as u64;
    let per_segment = (seg_mib << 20) / frame;
    let rec = [0xa5u8; REC];
    let mut last = 0u64;
    let mut syncs = 0u64;
    let mut run = |wal: &Wal, segments: u64, syncs: &mut u64| {
        let until = last + segments * per_segment;
        while last < until {
            for _ in 0..PER_SYNC {
                last = wal.append(&rec).expect("append");
            }
            wal.sync().expect("sync");
            *syncs += 1;
            if last % per_segment < PER_SYNC {
                wal.truncate_front(last.saturating_sub(per_segment))
                    .expect("truncate_front");
            }
        }
    };
    // Warm-up: every spare and every pooled file goes through the log once.
    run(&wal, 2 * spares + 3, &mut syncs);
    let before = dev.read().expect("device counters");
    let stats_before = wal.stats();
    syncs = 0;
    let start = Instant::now();
    run(&wal, measured, &mut syncs);
    let elapsed = start.elapsed();
    let after = dev.read().expect("device counters");
    let s = wal.stats();
    let writes = after.writes - before.writes;
    let flushes = after.flushes - before.flushes;
    let kib = (after.sectors_written - before.sectors_written) / 2;
    let per = |n: u64| n as f64 / syncs as f64;
    let rate = (syncs * PER_SYNC) as f64 / elapsed.as_secs_f64();
    println!(
        "io {} recycle {} segment {seg_mib} MiB: {syncs} syncs, {:.2} writes/sync, {:.2} \
         flushes/sync, {:.2} writes/flush, {:.1} KiB written/sync, {:.0} rec/s, {:.1} µs/sync; \
         rotations {}, recycled {} (device {})",
        report.io_path,
        if recycle { "on" } else { "off" },
        per(writes),
        per(flushes),
        if flushes == 0 {
            f64::NAN
        } else {
            writes as f64 / flushes as f64
        },
        per(kib),
        rate,
        elapsed.as_secs_f64() * 1e6 / syncs as f64,
        s.rotations - stats_before.rotations,
        s.segments_recycled - stats_before.segments_recycled,
        dev.name
    );
    wal.close().expect("close");
}
