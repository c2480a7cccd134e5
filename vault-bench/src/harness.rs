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
    /// Counters the report shows next to the figures, e.g. vault's segment waits.
    fn notes(&self) -> Option<String> {
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
    }
}

/// The allocator the benchmark binary installs; the harness reads its counters.
pub type CountingAlloc = StatsAlloc<SystemAlloc>;

fn new_histogram() -> Histogram<u64> {
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
        let before = alloc.stats();
        let start = Instant::now();
        gate.wait();
        gate.wait();
        let elapsed = start.elapsed();
        let after = alloc.stats();
        if workload.passes() == 2 {
            // 4: start of the timed-per-record pass. 5: its end.
            gate.wait();
            gate.wait();
        }
        let mut latency = new_histogram();
        let mut first_error = None;
        for h in handles {
            match h.join() {
                Ok(Ok(hist)) => latency.add(hist).expect("same histogram bounds"),
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
        outcome = Ok(Measurement {
            records_per_sec: records / secs,
            mib_per_sec: records * workload.record_len as f64 / secs / f64::from(1 << 20),
            latency,
            allocs_per_record: allocs as f64 / records,
            notes: subject.notes(),
            records: workload.records_per_thread * threads as u64,
            elapsed,
            allocs: allocs as u64,
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
) -> Result<Histogram<u64>> {
    let waits = 2 + if w.passes() == 2 { 2 } else { 0 };
    let mut waited = 0;
    let result = (|| {
        let payload = record_payload(w.record_len, thread);
        let mut hist = new_histogram();
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
            let t = Instant::now();
            app.append(&payload, w.sync.durable_at(i))?;
            hist.saturating_record(duration_ns(t.elapsed()));
            i += 1;
        }
        Ok(hist)
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
