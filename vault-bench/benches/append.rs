//! Throughput of appending to a [`Wal`] from one thread, in payload bytes per second.
//!
//! Groups:
//! - `append/<size>`: [`Wal::append`] of 64 B, 256 B, 4 KiB and 64 KiB records under
//!   [`SyncPolicy::Manual`], so nothing syncs on the append path: this is the cost of framing,
//!   checksumming and copying a record into the mapped tail segment, plus rotations when a
//!   segment fills.
//! - `append_sync_each/256B`: [`Wal::append`] under [`SyncPolicy::Always`], one `msync` per
//!   record (no concurrent appenders to share it with).
//! - `must_write/256B`: filling a [`Pool`] buffer and handing it to [`Wal::must_write`] under
//!   [`SyncPolicy::Manual`], the path of a caller that builds records in pooled buffers.
//!
//! ```text
//! cargo bench -p vault-bench --bench append              # full run
//! cargo bench -p vault-bench --bench append -- --quick   # well under a minute
//! ```
//!
//! The WAL lives in a temporary directory under `VAULT_BENCH_DIR` if set, else under Cargo's
//! `target/tmp`, so the numbers are those of the disk holding the target directory (not of a
//! `/tmp` that may be tmpfs). Each benchmark opens one WAL with 256 MiB segments, outside the
//! timed region, on first use, and appends to it across all of criterion's samples.
//!
//! What is timed is the writer's side with the disk keeping up: rotation (taking the segment
//! the worker prepared) is inside the timing, but after a rotation the clock stops while
//! [`Wal::truncate_front`] drops the full segment and the worker finishes its final sync and
//! prepares the next one. That keeps the disk a run uses to about three segments, however many
//! records criterion asks for, and keeps the numbers from depending on where in a segment a
//! sample happens to start. It also means these are not sustained rates: a writer that outruns
//! the worker's preparation of segments (pre-faulting every page, two syncs) waits for it.
//! Sustained rates, peers and the machine's limits are in `benches/compare.rs`
//! (`cargo xtask bench`).
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use tempfile::TempDir;
use vault_core::{Options, Pool, PoolConfig, SyncPolicy, Wal};

/// Segment capacity: large enough that rotation is occasional, as with a production setting.
const SEGMENT_SIZE: u64 = 256 << 20;

/// Record sizes of the `append` group, with the labels used in benchmark ids.
const RECORD_SIZES: [(usize, &str); 4] = [
    (64, "64B"),
    (256, "256B"),
    (4 << 10, "4KiB"),
    (64 << 10, "64KiB"),
];

use vault_bench::bench_root;

/// A WAL in a temporary directory that one benchmark appends to across all its samples.
struct Rig {
    /// Declared before `_dir` so that it is closed before the directory is removed.
    wal: Wal,
    /// The WAL's rotation count when the log's front was last trimmed.
    rotations: u64,
    _dir: TempDir,
}

impl Rig {
    fn open(sync: SyncPolicy) -> Self {
        let root = bench_root();
        std::fs::create_dir_all(&root).expect("create the benchmark directory");
        let dir = tempfile::Builder::new()
            .prefix("vault-bench-")
            .tempdir_in(&root)
            .expect("create a temporary directory");
        let options = Options::default()
            .with_segment_size(SEGMENT_SIZE)
            .with_sync(sync);
        let wal = Wal::open(dir.path(), options).expect("open the WAL");
        let rig = Self {
            wal,
            rotations: 0,
            _dir: dir,
        };
        rig.settle();
        rig
    }

    /// Calls `append` `iters` times and returns the time spent in those calls only.
    ///
    /// The calls are timed in stretches of at most a quarter segment, so that a stretch
    /// crosses at most one rotation and starts with the next segment already prepared. After a
    /// stretch that rotated, the clock stays stopped while the full segment is trimmed away and
    /// the rotation worker catches up (see [`Rig::settle`]).
    fn time(&mut self, iters: u64, record_len: usize, mut append: impl FnMut(&Wal)) -> Duration {
        let per_stretch = (SEGMENT_SIZE / 4 / record_len as u64).max(1);
        let mut elapsed = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(per_stretch);
            let start = Instant::now();
            for _ in 0..n {
                append(&self.wal);
            }
            elapsed += start.elapsed();
            left -= n;
            let rotations = self.wal.stats().rotations;
            if rotations != self.rotations {
                self.rotations = rotations;
                self.wal
                    .truncate_front(self.wal.last_lsn())
                    .expect("trim the log's front");
                self.settle();
            }
        }
        elapsed
    }

    /// Waits until the rotation worker is idle, holding the next segment ready. The worker
    /// finishes queued retirements (the final sync of a full segment) before it prepares the
    /// next segment, so this also waits for the last full segment to reach the disk.
    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let stats = self.wal.stats();
            // One segment was taken at open and one at each rotation; the worker is done when
            // it has prepared one more than that.
            if stats.segments_prepared >= stats.rotations + 2 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the rotation worker prepared no segment in 2 minutes: {stats:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A record of `len` bytes that is not all zeros, so nothing can shortcut on its contents.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn append_unsynced(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    for (len, label) in RECORD_SIZES {
        let record = payload(len);
        let mut rig = None;
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            let rig = rig.get_or_insert_with(|| Rig::open(SyncPolicy::Manual));
            b.iter_custom(|iters| {
                rig.time(iters, len, |wal| {
                    black_box(wal.append(black_box(&record)).expect("append"));
                })
            });
        });
    }
    group.finish();
}

fn append_sync_each(c: &mut Criterion) {
    let len = 256;
    let record = payload(len);
    let mut rig = None;
    let mut group = c.benchmark_group("append_sync_each");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function(BenchmarkId::from_parameter("256B"), |b| {
        let rig = rig.get_or_insert_with(|| Rig::open(SyncPolicy::Always));
        b.iter_custom(|iters| {
            rig.time(iters, len, |wal| {
                black_box(wal.append(black_box(&record)).expect("append"));
            })
        });
    });
    group.finish();
}

fn must_write_pooled(c: &mut Criterion) {
    let len = 256;
    let record = payload(len);
    let pool = Pool::new(PoolConfig::default()).expect("default pool config is valid");
    let mut rig = None;
    let mut group = c.benchmark_group("must_write");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function(BenchmarkId::from_parameter("256B"), |b| {
        let rig = rig.get_or_insert_with(|| Rig::open(SyncPolicy::Manual));
        b.iter_custom(|iters| {
            rig.time(iters, len, |wal| {
                let mut buf = pool.get();
                buf.extend_from_slice(black_box(&record));
                black_box(wal.must_write(buf).expect("must_write"));
            })
        });
    });
    group.finish();
}

/// `criterion_group!` makes an undocumented `pub fn`; inside a private module it is not
/// public API, so `missing_docs` has nothing to ask for.
mod groups {
    criterion::criterion_group!(
        benches,
        super::append_unsynced,
        super::append_sync_each,
        super::must_write_pooled
    );
}

criterion_main!(groups::benches);
