//! Runs one workload against one system: threads, warm-up, timed passes, latency histograms
//! and allocation counts.
//!
//! A *system* is anything that appends records: vault, a peer WAL, or a baseline that stands for
//! a limit of the machine. The harness only sees it through [`System`], [`Subject`] and
//! [`Appender`], so every system runs the same loop with the same records.

use std::alloc::System as SystemAlloc;
use std::error::Error;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use stats_alloc::StatsAlloc;

/// Errors of systems under test: each peer has its own error type.
pub type BoxError = Box<dyn Error + Send + Sync>;
/// `Result` with a [`BoxError`].
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// When a writer asks for durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Never: records reach the page cache (or only the process) and nobody waits for the disk.
    Never,
    /// Every record is durable before its append returns.
    Each,
    /// Every `n`th record of a thread is durable (with all before it) before its append returns.
    Every(u32),
}

impl SyncMode {
    /// Whether the `i`th record (0-based) of a thread must be durable when its append returns.
    #[must_use]
    pub fn durable_at(self, i: u64) -> bool {
        match self {
            SyncMode::Never => false,
            SyncMode::Each => true,
            SyncMode::Every(n) => (i + 1).is_multiple_of(u64::from(n)),
        }
    }

    /// A short label for tables.
    #[must_use]
    pub fn label(self) -> String {
        match self {
            SyncMode::Never => "never".into(),
            SyncMode::Each => "each".into(),
            SyncMode::Every(n) => format!("every {n}"),
        }
    }
}

/// What one run appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Payload bytes per record.
    pub record_len: usize,
    /// When durability is asked for.
    pub sync: SyncMode,
    /// Writer threads, appending concurrently to the one log.
    pub threads: usize,
    /// Records each thread appends in each timed pass.
    pub records_per_thread: u64,
    /// Records each thread appends before timing starts.
    pub warmup_per_thread: u64,
    /// Segment size to use where the system has such a setting (`None`: its default).
    pub segment_size: Option<u64>,
    /// The run will be read back with [`System::replay`]: a system that would otherwise
    /// discard records (okaywal's checkpoints) keeps them all.
    pub replayed: bool,
}

impl Workload {
    /// Total payload bytes one thread appends over warm-up and every pass: what a system must
    /// have room for.
    #[must_use]
    pub fn bytes_per_thread(&self) -> u64 {
        (self.warmup_per_thread + self.passes() * self.records_per_thread) * self.record_len as u64
    }

    /// Timed passes: unsynced runs are timed twice (once without and once with a clock read per
    /// record, since the clock costs as much as a small append); durable runs once, per record.
    #[must_use]
    pub fn passes(&self) -> u64 {
        if self.sync == SyncMode::Never {
            2
        } else {
            1
        }
    }
}

/// A system that can be benchmarked: it opens a fresh instance in an empty directory.
pub trait System: Sync {
    /// Name in tables.
    fn name(&self) -> &'static str;
    /// Whether it can run this sync mode at all (a peer without an unsynced mode cannot).
    fn supports(&self, sync: SyncMode) -> bool;
    /// Opens an instance in `dir` (empty, on the file system under test) for `workload`.
    ///
    /// # Errors
    /// Whatever the system reports.
    fn open(&self, dir: &Path, workload: &Workload) -> Result<Box<dyn Subject>>;
    /// Opens what `open` left in `dir` after `close` and reads every record back; calls
    /// `done` right after the last record was read (before closing, which is not timed) and
    /// returns the payload bytes read. `None` if the system has no replay in this harness.
    ///
    /// # Errors
    /// Whatever the system reports.
    fn replay(
        &self,
        dir: &Path,
        workload: &Workload,
        done: &mut dyn FnMut(),
    ) -> Option<Result<u64>> {
        let _ = (dir, workload, done);
        None
    }
}

/// An open instance shared by the writer threads.
pub trait Subject: Send + Sync {
    /// The handle writer thread `thread` appends through.
    ///
    /// # Errors
    /// Whatever the system reports.
    fn appender(&self, thread: usize) -> Result<Box<dyn Appender + '_>>;
    /// Counters the report shows next to the figures.
    fn notes(&self) -> Option<String> {
        None
    }
    /// vault's segment counters since the instance was opened (`None` for other systems).
    fn segments(&self) -> Option<SegmentCounts> {
        None
    }
    /// Closes the instance (outside any timing).
    ///
    /// # Errors
    /// Whatever the system reports.
    fn close(self: Box<Self>) -> Result<()>;
}

/// One writer thread's handle.
pub trait Appender {
    /// Appends `record`. If `durable`, returns only once it and every record this thread
    /// appended before it are durable.
    ///
    /// # Errors
    /// Whatever the system reports.
    fn append(&mut self, record: &[u8], durable: bool) -> Result<()>;
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Records per second over the untimed-per-record pass, all threads together.
    pub records_per_sec: f64,
    /// Payload MiB per second, same pass.
    pub mib_per_sec: f64,
    /// Per-record latency in nanoseconds (all threads merged).
    pub latency: Histogram<u64>,
    /// Heap allocations (and reallocations) per record, process-wide, during the throughput
    /// pass.
    pub allocs_per_record: f64,
    /// The system's own counters after the run.
    pub notes: Option<String>,
    /// Records of the throughput pass, all threads (for merging rounds).
    pub records: u64,
    /// Duration of the throughput pass.
    pub elapsed: Duration,
    /// Allocations during the throughput pass.
    pub allocs: u64,
    /// Latency of the appends that asked for durability (a subset of [`Measurement::latency`];
    /// empty for unsynced workloads): the time of one sync as the writer sees it.
    pub sync_latency: Histogram<u64>,
    /// Appends that asked for durability in the throughput pass, all threads.
    pub syncs: u64,
    /// What the block device under the directory did during the throughput pass (`None` where
    /// the device's counters cannot be read). Other processes writing to the same device count
    /// too.
    pub device: Option<DeviceCounters>,
    /// vault's segment counters (rotations and waits), summed over rounds.
    pub segments: Option<SegmentCounts>,
    /// One entry per round merged into this measurement, in round order.
    pub rounds: Vec<Round>,
}

/// The figures of one round of a cell, kept apart so that the report can show medians and the
/// spread between rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Round {
    /// Records per second of the round's throughput pass.
    pub records_per_sec: f64,
    /// Payload MiB per second, same pass.
    pub mib_per_sec: f64,
    /// Median latency of the round's durable appends, in nanoseconds (`None` if unsynced).
    pub sync_p50_ns: Option<u64>,
}

/// vault's segment counters over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentCounts {
    /// Segment rotations.
    pub rotations: u64,
    /// Appends that waited for a segment.
    pub waits: u64,
}

/// Requests a block device completed, from `/sys/dev/block/<major>:<minor>/stat` (fields as
/// the kernel's `Documentation/block/stat.rst` numbers them, from 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Write requests completed (field 5).
    pub writes: u64,
    /// Sectors written (field 7).
    pub sectors_written: u64,
    /// Flush requests completed (field 16, after the four discard fields; kernels since 5.5,
    /// else 0).
    pub flushes: u64,
}

impl DeviceCounters {
    fn since(self, before: DeviceCounters) -> DeviceCounters {
        DeviceCounters {
            writes: self.writes.saturating_sub(before.writes),
            sectors_written: self.sectors_written.saturating_sub(before.sectors_written),
            flushes: self.flushes.saturating_sub(before.flushes),
        }
    }

    fn add(&mut self, other: DeviceCounters) {
        self.writes += other.writes;
        self.sectors_written += other.sectors_written;
        self.flushes += other.flushes;
    }
}

/// The block device holding a directory, whose request counters the harness reads around each
/// throughput pass.
#[derive(Debug, Clone)]
pub struct BlockDevice {
    /// Kernel name (`vda`, `nvme0n1p2`).
    pub name: String,
    stat: std::path::PathBuf,
}

impl BlockDevice {
    /// The device of the file system holding `path`, if it has one in `/sys/dev/block` (tmpfs
    /// and btrfs' anonymous devices do not).
    #[must_use]
    pub fn of(path: &Path) -> Option<BlockDevice> {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(path).ok()?.dev();
        let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
        let sys = std::path::PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
        let stat = sys.join("stat");
        let name = std::fs::canonicalize(&sys)
            .ok()?
            .file_name()?
            .to_string_lossy()
            .into_owned();
        stat.exists().then_some(BlockDevice { name, stat })
    }

    /// The device `/sys/block/{name}` (`vda`, `loop0`): for a file system whose device number
    /// is anonymous (btrfs), given by the caller who mounted it.
    #[must_use]
    pub fn named(name: &str) -> Option<BlockDevice> {
        let stat = std::path::PathBuf::from(format!("/sys/block/{name}/stat"));
        stat.exists().then(|| BlockDevice {
            name: name.to_owned(),
            stat,
        })
    }

    /// The counters now.
    #[must_use]
    pub fn read(&self) -> Option<DeviceCounters> {
        let text = std::fs::read_to_string(&self.stat).ok()?;
        let f: Vec<u64> = text
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        Some(DeviceCounters {
            writes: *f.get(4)?,
            sectors_written: *f.get(6)?,
            flushes: f.get(15).copied().unwrap_or(0),
        })
    }
}

impl Measurement {
    /// Merges another round of the same workload: throughput over the summed time, latency
    /// over every sample, allocations over every record.
    pub fn merge(&mut self, other: &Measurement, record_len: usize) {
        self.records += other.records;
        self.elapsed += other.elapsed;
        self.allocs += other.allocs;
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        self.records_per_sec = self.records as f64 / secs;
        self.mib_per_sec = self.records_per_sec * record_len as f64 / f64::from(1 << 20);
        self.allocs_per_record = self.allocs as f64 / self.records as f64;
        if other.notes.is_some() {
            self.notes.clone_from(&other.notes);
        }
        self.sync_latency
            .add(&other.sync_latency)
            .expect("same histogram bounds");
        self.syncs += other.syncs;
        self.device = match (self.device, other.device) {
            (Some(mut a), Some(b)) => {
                a.add(b);
                Some(a)
            }
            _ => None,
        };
        self.segments = match (self.segments, other.segments) {
            (Some(a), Some(b)) => Some(SegmentCounts {
                rotations: a.rotations + b.rotations,
                waits: a.waits + b.waits,
            }),
            (a, b) => a.or(b),
        };
        self.rounds.extend_from_slice(&other.rounds);
    }

    /// Median records/s over the rounds.
    #[must_use]
    pub fn median_rate(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.records_per_sec))
    }

    /// Median MiB/s over the rounds.
    #[must_use]
    pub fn median_mib(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.mib_per_sec))
    }

    /// Lowest and highest records/s of the rounds.
    #[must_use]
    pub fn rate_spread(&self) -> (f64, f64) {
        self.rounds
            .iter()
            .map(|r| r.records_per_sec)
            .fold((f64::INFINITY, 0.0), |(lo, hi), r| (lo.min(r), hi.max(r)))
    }
}

/// The median of `values` (the mean of the middle two for an even count; 0 if empty).
#[must_use]
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

/// The allocator the benchmark binary installs; the harness reads its counters.
pub type CountingAlloc = StatsAlloc<SystemAlloc>;

/// A latency histogram with the harness's bounds (1 ns .. 100 s, 3 significant digits).
#[must_use]
pub fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 100 s at 3 significant digits; fixed bounds, so recording never allocates.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

fn record_payload(len: usize, thread: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i + thread * 7) % 251) as u8 + 1)
        .collect()
}

/// Runs `workload` on a fresh instance of `system` in `dir` and returns what it measured.
///
/// Threads start together after their warm-up. The throughput pass reads the clock only at its
/// start and end (after every thread finished); for unsynced workloads a second pass then times
/// each record, since a clock read costs as much as a small append. Durable workloads time each
/// record in their only pass. Allocations are counted process-wide (background threads of the
/// system included) over the throughput pass.
///
/// # Errors
/// The first error of the system.
pub fn run(
    system: &dyn System,
    workload: &Workload,
    dir: &Path,
    alloc: &'static CountingAlloc,
) -> Result<Measurement> {
    let subject = system.open(dir, workload)?;
    let device = BlockDevice::of(dir);
    let segments_at_start = subject.segments();
    let threads = workload.threads;
    let gate = Barrier::new(threads + 1);
    let mut outcome: Result<Measurement> = Err("no run".into());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let subject = &*subject;
                let gate = &gate;
                scope.spawn(move || writer(subject, workload, t, gate))
            })
            .collect();
        // 1: warm-up done. 2: start of the throughput pass. 3: its end.
        gate.wait();
        let device_before = device.as_ref().and_then(BlockDevice::read);
        let before = alloc.stats();
        let start = Instant::now();
        gate.wait();
        gate.wait();
        let elapsed = start.elapsed();
        let after = alloc.stats();
        let device_after = device.as_ref().and_then(BlockDevice::read);
        if workload.passes() == 2 {
            // 4: start of the timed-per-record pass. 5: its end.
            gate.wait();
            gate.wait();
        }
        let mut latency = new_histogram();
        let mut sync_latency = new_histogram();
        let mut first_error = None;
        for h in handles {
            match h.join() {
                Ok(Ok((hist, synced))) => {
                    latency.add(hist).expect("same histogram bounds");
                    sync_latency.add(synced).expect("same histogram bounds");
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| "a writer thread panicked".into());
                }
            }
        }
        if let Some(e) = first_error {
            outcome = Err(e);
            return;
        }
        let records = (workload.records_per_thread * threads as u64) as f64;
        let secs = elapsed.as_secs_f64().max(1e-9);
        let allocs = (after.allocations + after.reallocations)
            .saturating_sub(before.allocations + before.reallocations);
        // The throughput pass is the first after the warm-up.
        let first = workload.warmup_per_thread;
        let syncs = (first..first + workload.records_per_thread)
            .filter(|&i| workload.sync.durable_at(i))
            .count() as u64
            * threads as u64;
        let records_per_sec = records / secs;
        let mib_per_sec = records * workload.record_len as f64 / secs / f64::from(1 << 20);
        let segments = match (segments_at_start, subject.segments()) {
            (Some(a), Some(b)) => Some(SegmentCounts {
                rotations: b.rotations - a.rotations,
                waits: b.waits - a.waits,
            }),
            _ => None,
        };
        let sync_p50_ns = (!sync_latency.is_empty()).then(|| sync_latency.value_at_quantile(0.5));
        outcome = Ok(Measurement {
            records_per_sec,
            mib_per_sec,
            latency,
            allocs_per_record: allocs as f64 / records,
            notes: subject.notes(),
            records: workload.records_per_thread * threads as u64,
            elapsed,
            allocs: allocs as u64,
            sync_latency,
            syncs,
            device: device_before.zip(device_after).map(|(b, a)| a.since(b)),
            segments,
            rounds: vec![Round {
                records_per_sec,
                mib_per_sec,
                sync_p50_ns,
            }],
        });
    });
    let closed = subject.close();
    let m = outcome?;
    closed?;
    Ok(m)
}

/// One writer thread. It always reaches every barrier the coordinator waits on, even after an
/// error, so a failing system cannot hang the run.
fn writer(
    subject: &dyn Subject,
    w: &Workload,
    thread: usize,
    gate: &Barrier,
) -> Result<(Histogram<u64>, Histogram<u64>)> {
    let waits = 2 + if w.passes() == 2 { 2 } else { 0 };
    let mut waited = 0;
    let result = (|| {
        let payload = record_payload(w.record_len, thread);
        let mut hist = new_histogram();
        let mut synced = new_histogram();
        let mut app = subject.appender(thread)?;
        let mut i = 0u64;
        for _ in 0..w.warmup_per_thread {
            app.append(&payload, w.sync.durable_at(i))?;
            i += 1;
        }
        gate.wait();
        waited += 1;
        gate.wait();
        waited += 1;
        if w.passes() == 2 {
            for _ in 0..w.records_per_thread {
                app.append(&payload, w.sync.durable_at(i))?;
                i += 1;
            }
            gate.wait();
            waited += 1;
            gate.wait();
            waited += 1;
        }
        for _ in 0..w.records_per_thread {
            let durable = w.sync.durable_at(i);
            let t = Instant::now();
            app.append(&payload, durable)?;
            let ns = duration_ns(t.elapsed());
            hist.saturating_record(ns);
            if durable {
                synced.saturating_record(ns);
            }
            i += 1;
        }
        Ok((hist, synced))
    })();
    gate.wait();
    waited += 1;
    while waited < waits + 1 {
        gate.wait();
        waited += 1;
    }
    result
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
