//! Reads of random LSNs over a large log: `Wal::read` (binary search over the segments, then
//! the per-segment record index and at most one index stride of frames) against the scan from
//! the start of the segment that `read` did before the index (`Segment::records_from_start`,
//! kept as the reference).
//!
//! ```text
//! cargo bench -p vault-bench --bench random_read            # 1 GiB log of 256 B records
//! cargo bench -p vault-bench --bench random_read -- --quick # 256 MiB
//! ```
//!
//! The log is written once (unsynced, 64 MiB segments, the default), closed and reopened, so the
//! index comes from the recovery scan, as after a restart. Reads then run from one thread, in a
//! fixed pseudo-random order, over a log whose pages are in the page cache (the machine has the
//! memory for it): what is measured is the lookup, not the disk. Each read copies nothing; it
//! checks the LSN and the record's first 8 bytes so the work cannot be skipped. Prints a Markdown
//! table for docs/PERFORMANCE.md. Logs live under `VAULT_BENCH_DIR` or Cargo's `target/tmp`.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use vault_core::{Options, SyncPolicy, Wal};
use vault_segment::Segment;

const RECORD: usize = 256;

use vault_bench::bench_root;

/// xorshift64: a fixed, cheap sequence of LSNs.
struct Lsns(u64);

impl Lsns {
    fn next(&mut self, last: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        1 + self.0 % last
    }
}

fn record(lsn: u64) -> [u8; RECORD] {
    let mut r = [(lsn % 251) as u8; RECORD];
    r[..8].copy_from_slice(&lsn.to_le_bytes());
    r
}

struct Row {
    name: &'static str,
    reads: u64,
    elapsed: Duration,
    hist: Histogram<u64>,
    frames: u64,
}

fn measure(name: &'static str, reads: u64, last: u64, mut one: impl FnMut(u64) -> u64) -> Row {
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let mut lsns = Lsns(0x9E37_79B9_7F4A_7C15);
    let mut frames = 0;
    // Warm-up: touch the code paths (the log is already in the page cache).
    for _ in 0..reads.min(1000) {
        black_box(one(lsns.next(last)));
    }
    let start = Instant::now();
    for _ in 0..reads {
        let lsn = lsns.next(last);
        let t = Instant::now();
        frames += one(lsn);
        hist.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    Row {
        name,
        reads,
        elapsed: start.elapsed(),
        hist,
        frames,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let log_bytes: u64 = if quick { 256 << 20 } else { 1 << 30 };
    let root = bench_root();
    std::fs::create_dir_all(&root).unwrap();
    let dir = tempfile::tempdir_in(&root).unwrap();
    let opts = || Options::default().with_sync(SyncPolicy::Manual);

    let t = Instant::now();
    let last = {
        let wal = Wal::open(dir.path(), opts()).unwrap();
        let n = log_bytes / (RECORD as u64 + 16);
        for lsn in 1..=n {
            wal.append(&record(lsn)).unwrap();
        }
        wal.close().unwrap();
        n
    };
    let write = t.elapsed();
    let t = Instant::now();
    let wal = Wal::open(dir.path(), opts()).unwrap();
    let reopen = t.elapsed();
    let stats = wal.stats();
    eprintln!(
        "log: {last} records of {RECORD} B in {} segments, written in {write:.2?}, reopened \
         (scan + index) in {reopen:.2?}",
        stats.segments
    );

    // The segments, for the scan reference: found by following each one's published end.
    let mut segs: Vec<Segment> = Vec::new();
    let mut lsn = 1;
    while lsn <= last {
        let seg = wal.read(lsn).unwrap().segment().clone();
        lsn = seg.published_next_lsn();
        segs.push(seg);
    }
    let stride = segs[0].index_stride();
    let index_kib = segs.iter().map(Segment::index_bytes).sum::<usize>() / 1024;

    let check = |r: vault_core::Record, lsn: u64| {
        assert_eq!((r.lsn(), &r.data()[..8]), (lsn, &lsn.to_le_bytes()[..]));
    };
    let indexed = measure(
        "`Wal::read` (index)",
        if quick { 200_000 } else { 1_000_000 },
        last,
        |lsn| {
            check(wal.read(lsn).unwrap(), lsn);
            0
        },
    );
    let iter = measure(
        "`Wal::iter_from(lsn).next()` (index)",
        if quick { 200_000 } else { 1_000_000 },
        last,
        |lsn| {
            let mut it = wal.iter_from(lsn);
            check(it.next().unwrap(), lsn);
            it.frames_read()
        },
    );
    let scan = measure(
        "scan from the segment's start (before the index)",
        if quick { 500 } else { 2_000 },
        last,
        |lsn| {
            let i = segs.partition_point(|s| s.first_lsn() <= lsn) - 1;
            let mut it = segs[i].records_from_start(lsn);
            check(it.next().unwrap(), lsn);
            it.frames_read()
        },
    );

    println!(
        "Random reads, {} MiB log: {last} records of {RECORD} B, {} segments of 64 MiB, index \
         stride {stride}, index memory {index_kib} KiB in all. One thread, page cache warm.\n",
        log_bytes >> 20,
        segs.len()
    );
    println!("| read | reads | reads/s | p50 | p99 | p99.9 | max | frames read per lookup |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in [&indexed, &iter, &scan] {
        let us = |q: f64| format!("{:.1} µs", r.hist.value_at_quantile(q) as f64 / 1000.0);
        let frames = if r.frames == 0 {
            "≤ stride".to_string()
        } else {
            format!("{:.1}", r.frames as f64 / r.reads as f64)
        };
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {:.1} µs | {} |",
            r.name,
            r.reads,
            r.reads as f64 / r.elapsed.as_secs_f64(),
            us(0.5),
            us(0.99),
            us(0.999),
            r.hist.max() as f64 / 1000.0,
            frames
        );
    }
    wal.close().unwrap();
}
