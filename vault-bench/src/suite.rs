//! The whole side-by-side comparison: which workloads, which systems, and the Markdown report
//! with the targets as ratios measured in this one run.
//!
//! Every cell runs in [`ROUNDS`] rounds ([`QUICK_ROUNDS`] with `--quick`), each system once per round (interleaved), so that the
//! disk's drift falls on every system alike; ratios are medians of the rounds' ratios, shown with
//! the rounds' spread, and a goal inside that spread counts as a tie.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vault_core::IoMode;

use crate::charts::{self, Chart};
use crate::harness::{
    self, BlockDevice, CountingAlloc, Measurement, Result, Round, SyncMode, System, Workload,
};
use crate::subjects::{
    measure_direct_bandwidth, measure_fdatasync, measure_spill, DirectFloor, HandWritten,
    MemcpyCeiling, PwriteFloor, Spill, Vault,
};

/// Record sizes of every section.
pub const SIZES: [usize; 4] = [64, 256, 4 << 10, 64 << 10];
/// Records per sync in the batched-durability section.
pub const EVERY: u32 = 64;
/// Interleaved rounds of every cell in a full run.
pub const ROUNDS: u64 = 5;
/// Rounds of a quick run: one, a smoke test of every cell (its spreads are a single round's).
pub const QUICK_ROUNDS: u64 = 1;
/// Record sizes of the durable targets.
const TARGET_SIZES: [usize; 3] = [64, 256, 4 << 10];

const MMAP: &str = "vault mmap";
const DIRECT: &str = "vault direct";
/// vault's two I/O paths, as named in the tables.
const PATHS: [&str; 2] = [MMAP, DIRECT];
const DIRECT_FLOOR: &str = "O_DIRECT + O_DSYNC write (floor)";
const PWRITE_FLOOR: &str = "pwrite + fdatasync (floor)";
const CEILING: &str = "memcpy into mmap (ceiling)";
const SPILL_GOAL: i64 = 64 << 20;

/// How the suite runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Short run: fewer records per workload (for a smoke test or a first look).
    pub quick: bool,
    /// Where the systems' directories go (the file system under test).
    pub root: PathBuf,
    /// The command line to print in the report.
    pub command: String,
    /// Only systems whose name contains one of these comma-separated parts (all if `None`).
    pub only: Option<String>,
}

impl Config {
    /// Interleaved rounds of every cell: [`ROUNDS`], or [`QUICK_ROUNDS`] when quick.
    #[must_use]
    pub fn rounds(&self) -> u64 {
        if self.quick {
            QUICK_ROUNDS
        } else {
            ROUNDS
        }
    }

    /// Whether the system `name` is part of this run (see [`Config::only`]).
    #[must_use]
    pub fn wants(&self, name: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|part| name.contains(part)))
    }
}

/// Every system of the comparison, vault's two paths first, then the baselines, then the peers
/// that were compiled in (feature `peers`).
#[must_use]
pub fn systems() -> Vec<Box<dyn System>> {
    let mut v: Vec<Box<dyn System>> = Vec::new();
    for io in [IoMode::Mmap, IoMode::Direct] {
        v.push(Box::new(Vault {
            io,
            ..Vault::default()
        }));
    }
    for io in [IoMode::Mmap, IoMode::Direct] {
        v.push(Box::new(Vault {
            io,
            must_write: true,
            big_segments: false,
        }));
        v.push(Box::new(Vault {
            io,
            must_write: false,
            big_segments: true,
        }));
    }
    v.push(Box::new(MemcpyCeiling));
    v.push(Box::new(PwriteFloor));
    v.push(Box::new(DirectFloor));
    v.push(Box::new(HandWritten));
    #[cfg(feature = "peers")]
    {
        use crate::peers;
        v.push(Box::new(peers::RaftEngine));
        v.push(Box::new(peers::OkayWal));
        v.push(Box::new(peers::WalDb));
        v.push(Box::new(peers::RaftLog));
        v.push(Box::new(peers::NodeDbWal));
    }
    v
}

/// Names of systems that are limits of the machine, not WALs.
pub(crate) fn is_baseline(name: &str) -> bool {
    name.contains("ceiling") || name.contains("floor") || name.contains("File::")
}

pub(crate) fn is_vault(name: &str) -> bool {
    name.starts_with("vault")
}

/// One measured cell.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The section it belongs to.
    pub section: Section,
    /// System name.
    pub system: &'static str,
    /// What ran.
    pub workload: Workload,
    /// What it measured, or why it failed.
    pub outcome: std::result::Result<Measurement, String>,
}

/// The report's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// No sync.
    Unsynced,
    /// Sync every record.
    SyncEach,
    /// Sync every [`EVERY`] records.
    SyncEvery,
    /// vault with small segments, and the same run with the default size.
    Rotation,
}

impl Section {
    fn label(self) -> &'static str {
        match self {
            Section::Unsynced => "unsynced",
            Section::SyncEach => "sync each",
            Section::SyncEvery => "sync every 64",
            Section::Rotation => "rotation",
        }
    }
}

fn per_pass_bytes(quick: bool) -> u64 {
    if quick {
        16 << 20
    } else {
        128 << 20
    }
}

/// Payload bytes of the spill cell.
fn spill_bytes(quick: bool) -> u64 {
    if quick {
        512 << 20
    } else {
        2 << 30
    }
}

fn workload(section: Section, quick: bool, len: usize, threads: usize) -> Workload {
    let budget = per_pass_bytes(quick);
    let by_bytes = |cap: u64| (budget / (len as u64 * threads as u64)).min(cap);
    let (sync, per_thread, warmup) = match section {
        Section::Unsynced => {
            let max = if quick { 100_000 } else { 1_000_000 };
            let total = (budget / len as u64).clamp(2_000, max);
            let per = total / threads as u64;
            (SyncMode::Never, per, (per / 10).max(100))
        }
        Section::SyncEach => {
            let per = by_bytes(if quick { 200 } else { 1_000 }).max(20);
            (SyncMode::Each, per, 20)
        }
        Section::SyncEvery | Section::Rotation => {
            let e = u64::from(EVERY);
            let per = (by_bytes(if quick { 20 * e } else { 100 * e }) / e * e).max(e);
            (SyncMode::Every(EVERY), per, e)
        }
    };
    Workload {
        record_len: len,
        sync,
        threads,
        records_per_thread: per_thread,
        warmup_per_thread: warmup,
        segment_size: None,
        replayed: false,
    }
}

fn fresh_dir(root: &Path) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(root)?;
    Ok(tempfile::Builder::new()
        .prefix("vault-compare-")
        .tempdir_in(root)?)
}

fn run_one(
    system: &dyn System,
    w: &Workload,
    root: &Path,
    alloc: &'static CountingAlloc,
) -> std::result::Result<Measurement, String> {
    let dir = fresh_dir(root).map_err(|e| e.to_string())?;
    let m = harness::run(system, w, dir.path(), alloc).map_err(|e| e.to_string());
    drop(dir);
    m
}

/// What a run produces.
#[derive(Debug)]
pub struct Report {
    /// The Markdown to put into `docs/PERFORMANCE.md`. It shows the charts as `charts/<file>`:
    /// they belong in a `charts` directory beside the Markdown.
    pub markdown: String,
    /// The charts of the same cells (see [`charts`]), empty if they could not be drawn.
    pub charts: Vec<Chart>,
}

/// The probes of the machine's limits that the report quotes beside the cells.
#[derive(Debug)]
struct Probes {
    /// `fdatasync` with nothing dirty, and `pwrite` 4 KiB + `fdatasync`: (p50, p99) each.
    fsync: [(Duration, Duration); 2],
    /// The device's sequential `O_DIRECT` write bandwidth, MiB/s.
    direct_mib: std::result::Result<f64, String>,
    /// The block device under the bench directory.
    device: Option<BlockDevice>,
}

/// One spill measurement.
#[derive(Debug)]
struct SpillResult {
    system: &'static str,
    outcome: std::result::Result<Spill, String>,
}

/// Runs every section and returns the report to put into `docs/PERFORMANCE.md`.
///
/// # Errors
/// Errors of the fdatasync probe or of creating directories; a failing system only marks its
/// cells as failed.
pub fn run(config: &Config, alloc: &'static CountingAlloc) -> Result<Report> {
    let started = Instant::now();
    let all = systems();
    let chosen: Vec<&dyn System> = all
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| config.wants(s.name()))
        .collect();
    std::fs::create_dir_all(&config.root)?;
    let probe_dir = fresh_dir(&config.root)?;
    let fsync = measure_fdatasync(probe_dir.path(), if config.quick { 200 } else { 1000 })?;
    let bandwidth_bytes = if config.quick { 256 << 20 } else { 1 << 30 };
    eprintln!("compare: sequential O_DIRECT bandwidth");
    let direct_mib =
        measure_direct_bandwidth(probe_dir.path(), bandwidth_bytes, 3).map_err(|e| e.to_string());
    let probes = Probes {
        fsync,
        direct_mib,
        device: BlockDevice::of(probe_dir.path()),
    };
    drop(probe_dir);

    let mut cells = Vec::new();
    let plan: [(Section, &[usize]); 3] = [
        (Section::Unsynced, &[1, 4]),
        (Section::SyncEach, &[1, 4, 8]),
        (Section::SyncEvery, &[1, 4]),
    ];
    for (section, thread_counts) in plan {
        for len in SIZES {
            for &threads in thread_counts {
                let w = workload(section, config.quick, len, threads);
                let runs: Vec<&dyn System> = chosen
                    .iter()
                    .copied()
                    .filter(|s| s.supports(w.sync))
                    // must_write is shown where the allocation target is read: 256 B.
                    .filter(|s| !s.name().ends_with("must_write") || len == 256)
                    // The rotation-free reference rows: unsynced, one thread.
                    .filter(|s| {
                        !s.name().ends_with("512 MiB segments")
                            || (section == Section::Unsynced && threads == 1)
                    })
                    .collect();
                let mut merged: Vec<Option<std::result::Result<Measurement, String>>> =
                    vec![None; runs.len()];
                for round in 0..config.rounds() {
                    for (system, slot) in runs.iter().zip(&mut merged) {
                        eprintln!(
                            "compare: {section:?} {len} B x{threads} {} (round {})",
                            system.name(),
                            round + 1
                        );
                        let outcome = run_one(*system, &w, &config.root, alloc);
                        if let Err(e) = &outcome {
                            eprintln!("compare:   failed: {e}");
                        }
                        *slot = Some(match (slot.take(), outcome) {
                            (None, o) => o,
                            (Some(Ok(mut m)), Ok(o)) => {
                                m.merge(&o, len);
                                Ok(m)
                            }
                            (Some(Err(e)), _) | (_, Err(e)) => Err(e),
                        });
                    }
                }
                for (system, outcome) in runs.iter().zip(merged) {
                    cells.push(Cell {
                        section,
                        system: system.name(),
                        workload: Workload {
                            records_per_thread: w.records_per_thread * config.rounds(),
                            ..w
                        },
                        outcome: outcome.unwrap_or_else(|| Err("not run".into())),
                    });
                }
            }
        }
    }
    for vault in [Vault::mmap(), Vault::direct()] {
        if !config.wants(vault.name()) {
            continue;
        }
        for sync in [SyncMode::Never, SyncMode::Every(EVERY)] {
            let section = if sync == SyncMode::Never {
                Section::Unsynced
            } else {
                Section::SyncEvery
            };
            let mut w = workload(section, config.quick, 256, 1);
            // Enough records for the small segments to rotate at least 25 times: with sync
            // every 64 the budget-based count would fill only a few pages.
            if sync != SyncMode::Never {
                w.records_per_thread = if config.quick { 64 * 200 } else { 64 * 600 };
            }
            w.warmup_per_thread = (w.records_per_thread / 10).next_multiple_of(64);
            // 272 bytes per framed 256 B record; sized for at least 25 rotations while timed.
            let bytes = (w.records_per_thread * w.passes()) * 272;
            let small = (bytes / 25).next_multiple_of(4096).max(16 << 10);
            for segment_size in [None, Some(small)] {
                let w = Workload { segment_size, ..w };
                eprintln!(
                    "compare: rotation {} {sync:?} segment {segment_size:?}",
                    vault.name()
                );
                let outcome = run_one(&vault, &w, &config.root, alloc);
                cells.push(Cell {
                    section: Section::Rotation,
                    system: vault.name(),
                    workload: w,
                    outcome,
                });
            }
        }
    }
    let mut replays = Vec::new();
    for len in [256, 4 << 10] {
        for system in &chosen {
            let name = system.name();
            if is_vault(name) && !PATHS.contains(&name)
                || is_baseline(name) && name != "File::write_all + sync_data"
            {
                continue;
            }
            eprintln!("compare: replay {len} B {name}");
            replays.push(ReplayResult {
                system: name,
                len,
                outcome: replay(*system, config, len, alloc),
            });
        }
    }
    let mut spills = Vec::new();
    for vault in [Vault::mmap(), Vault::direct()] {
        if !config.wants(vault.name()) {
            continue;
        }
        eprintln!("compare: spill {}", vault.name());
        let outcome = fresh_dir(&config.root)
            .and_then(|dir| measure_spill(dir.path(), vault.io, spill_bytes(config.quick), 4 << 10))
            .map_err(|e| e.to_string());
        spills.push(SpillResult {
            system: vault.name(),
            outcome,
        });
    }
    let charts = charts::render(&cells).unwrap_or_else(|e| {
        eprintln!("compare: no charts: {e}");
        Vec::new()
    });
    let markdown = render(
        config,
        &probes,
        &cells,
        &replays,
        &spills,
        &charts,
        started.elapsed(),
    );
    Ok(Report { markdown, charts })
}

/// Writes `budget` bytes of `len`-byte records, closes, then times reopening and reading all.
fn replay(
    system: &dyn System,
    config: &Config,
    len: usize,
    alloc: &'static CountingAlloc,
) -> std::result::Result<(f64, u64), String> {
    let records = per_pass_bytes(config.quick) / len as u64;
    let sync = if system.supports(SyncMode::Never) {
        SyncMode::Never
    } else {
        SyncMode::Every(1024)
    };
    let passes = if sync == SyncMode::Never { 2 } else { 1 };
    let w = Workload {
        record_len: len,
        sync,
        threads: 1,
        records_per_thread: records / passes / 1024 * 1024,
        warmup_per_thread: 0,
        segment_size: None,
        replayed: true,
    };
    let dir = fresh_dir(&config.root).map_err(|e| e.to_string())?;
    harness::run(system, &w, dir.path(), alloc).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut end = None;
    let Some(read) = system.replay(dir.path(), &w, &mut || end = Some(Instant::now())) else {
        return Err("no replay in this harness".into());
    };
    let bytes = read.map_err(|e| e.to_string())?;
    let secs = end
        .ok_or("the replay never reported its end")?
        .duration_since(start)
        .as_secs_f64();
    let expected = w.records_per_thread * w.passes() * len as u64;
    if bytes != expected {
        return Err(format!("read {bytes} bytes back, wrote {expected}"));
    }
    Ok((bytes as f64 / secs / f64::from(1 << 20), bytes))
}

// ---------------------------------------------------------------------------------------------
// The report

pub(crate) fn size_label(len: usize) -> String {
    if len >= 1024 {
        format!("{} KiB", len / 1024)
    } else {
        format!("{len} B")
    }
}

fn ns_label(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn rate_label(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn find<'a>(
    cells: &'a [Cell],
    section: Section,
    system: &str,
    len: usize,
    threads: usize,
) -> Option<&'a Measurement> {
    cells
        .iter()
        .find(|c| {
            c.section == section
                && c.system == system
                && c.workload.record_len == len
                && c.workload.threads == threads
                && c.workload.segment_size.is_none()
        })
        .and_then(|c| c.outcome.as_ref().ok())
}

/// The best of vault's two paths in a cell, by median records/s.
fn best_vault(
    cells: &[Cell],
    section: Section,
    len: usize,
    threads: usize,
) -> Option<(&'static str, &Measurement)> {
    PATHS
        .iter()
        .filter_map(|p| find(cells, section, p, len, threads).map(|m| (*p, m)))
        .max_by(|a, b| a.1.median_rate().total_cmp(&b.1.median_rate()))
}

/// The best peer (not vault, not a baseline) by median records/s, with its name.
fn best_peer(
    cells: &[Cell],
    section: Section,
    len: usize,
    threads: usize,
) -> Option<(&'static str, &Measurement)> {
    cells
        .iter()
        .filter(|c| {
            c.section == section
                && c.workload.record_len == len
                && c.workload.threads == threads
                && !is_vault(c.system)
                && !is_baseline(c.system)
        })
        .filter_map(|c| c.outcome.as_ref().ok().map(|m| (c.system, m)))
        .max_by(|a, b| a.1.median_rate().total_cmp(&b.1.median_rate()))
}

/// A ratio over rounds: the median of the rounds' ratios and their lowest and highest.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    lo: f64,
    hi: f64,
}

impl Spread {
    fn of(ratios: &[f64]) -> Option<Spread> {
        let finite: Vec<f64> = ratios.iter().copied().filter(|r| r.is_finite()).collect();
        if finite.is_empty() {
            return None;
        }
        Some(Spread {
            median: harness::median(finite.iter().copied()),
            lo: finite.iter().copied().fold(f64::INFINITY, f64::min),
            hi: finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// Round `i` of `n` against round `i` of `d` (the rounds ran interleaved), by `f`.
    fn between(
        n: &Measurement,
        d: &Measurement,
        f: impl Fn(&Round) -> Option<f64>,
    ) -> Option<Self> {
        let ratios: Vec<f64> = n
            .rounds
            .iter()
            .zip(&d.rounds)
            .filter_map(|(a, b)| Some(f(a)? / f(b)?))
            .collect();
        Spread::of(&ratios)
    }

    /// Every round of `n` against one figure `d`.
    fn against(n: &Measurement, d: f64, f: impl Fn(&Round) -> Option<f64>) -> Option<Self> {
        let ratios: Vec<f64> = n.rounds.iter().filter_map(|a| Some(f(a)? / d)).collect();
        Spread::of(&ratios)
    }

    fn label(self) -> String {
        format!("{:.2}× [{:.2}–{:.2}]", self.median, self.lo, self.hi)
    }

    /// Met when the median reaches `goal` (higher is better); a tie when only the spread does.
    fn at_least(self, goal: f64) -> Verdict {
        if self.median >= goal {
            Verdict::Met
        } else if self.hi >= goal {
            Verdict::Tie
        } else {
            Verdict::Missed
        }
    }

    /// Met when the median stays at or under `goal` (lower is better); a tie when only the
    /// spread does.
    fn at_most(self, goal: f64) -> Verdict {
        if self.median <= goal {
            Verdict::Met
        } else if self.lo <= goal {
            Verdict::Tie
        } else {
            Verdict::Missed
        }
    }
}

// `rate`, `mib` and `sync_p50` are the metrics a `Spread` compares: one signature.
#[allow(clippy::unnecessary_wraps)]
fn rate(r: &Round) -> Option<f64> {
    Some(r.records_per_sec)
}

#[allow(clippy::unnecessary_wraps)]
fn mib(r: &Round) -> Option<f64> {
    Some(r.mib_per_sec)
}

fn sync_p50(r: &Round) -> Option<f64> {
    r.sync_p50_ns.map(|n| n as f64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Met,
    Tie,
    Missed,
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Met => "**met**",
        Verdict::Tie => "**tie** (goal within the rounds' spread)",
        Verdict::Missed => "**missed**",
    }
}

struct Target {
    what: String,
    goal: String,
    measured: String,
    verdict: Option<Verdict>,
}

impl Target {
    fn new(what: String, goal: &str, measured: String, verdict: Option<Verdict>) -> Self {
        Target {
            what,
            goal: goal.into(),
            measured,
            verdict,
        }
    }
}

fn sync_label(section: Section) -> &'static str {
    match section {
        Section::SyncEach => "sync each record",
        Section::SyncEvery => "sync every 64 records",
        _ => section.label(),
    }
}

/// `n ÷ d` by records/s over the rounds, with both median rates.
fn rate_target(
    what: String,
    goal: f64,
    n: Option<(&str, &Measurement)>,
    d: Option<(&str, &Measurement)>,
) -> Target {
    let goal_label = format!("≥ {goal:.1}");
    match (n, d) {
        (Some((nn, n)), Some((dn, d))) => match Spread::between(n, d, rate) {
            Some(s) => Target::new(
                what,
                &goal_label,
                format!(
                    "{} ({nn} {} vs {dn} {} rec/s)",
                    s.label(),
                    rate_label(n.median_rate()),
                    rate_label(d.median_rate())
                ),
                Some(s.at_least(goal)),
            ),
            None => Target::new(what, &goal_label, "not measured".into(), None),
        },
        _ => Target::new(what, &goal_label, "not measured".into(), None),
    }
}

fn mib_label(bytes: i64) -> String {
    let m = bytes as f64 / f64::from(1 << 20);
    format!("{m:+.0} MiB")
}

/// Device requests per sync of a durable cell: (writes/sync, flushes/sync, writes/flush).
fn per_sync(m: &Measurement) -> Option<(f64, f64, f64)> {
    let d = m.device?;
    if m.syncs == 0 {
        return None;
    }
    let s = m.syncs as f64;
    let per_flush = if d.flushes == 0 {
        f64::NAN
    } else {
        d.writes as f64 / d.flushes as f64
    };
    Some((d.writes as f64 / s, d.flushes as f64 / s, per_flush))
}

fn targets(
    cells: &[Cell],
    replays: &[ReplayResult],
    spills: &[SpillResult],
    probes: &Probes,
) -> Vec<Target> {
    let mut t = Vec::new();
    // One writer: at the best peer, and at the floor's latency.
    for section in [Section::SyncEach, Section::SyncEvery] {
        for len in TARGET_SIZES {
            let v = best_vault(cells, section, len, 1);
            let p = best_peer(cells, section, len, 1);
            t.push(rate_target(
                format!(
                    "one writer, {}, {}: vault (best path) ÷ best peer, records/s",
                    sync_label(section),
                    size_label(len)
                ),
                1.0,
                v,
                p,
            ));
            let f = find(cells, section, DIRECT_FLOOR, len, 1);
            let what = format!(
                "one writer, {}, {}: vault (best path) p50 per sync ÷ one O_DIRECT+O_DSYNC write of the same aligned length, p50",
                sync_label(section),
                size_label(len)
            );
            let target = match (v, f) {
                (Some((vn, v)), Some(f)) => match Spread::between(v, f, sync_p50) {
                    Some(s) => Target::new(
                        what,
                        "≤ 1.1",
                        format!(
                            "{} ({vn} {} vs floor {})",
                            s.label(),
                            ns_label(v.sync_latency.value_at_quantile(0.5)),
                            ns_label(f.sync_latency.value_at_quantile(0.5))
                        ),
                        Some(s.at_most(1.1)),
                    ),
                    None => Target::new(what, "≤ 1.1", "not measured".into(), None),
                },
                _ => Target::new(what, "≤ 1.1", "not measured".into(), None),
            };
            t.push(target);
        }
    }
    // Many writers: group commit against the best peer and the floor's independent writers.
    for (section, threads) in [
        (Section::SyncEach, 4),
        (Section::SyncEach, 8),
        (Section::SyncEvery, 4),
    ] {
        for len in TARGET_SIZES {
            let v = best_vault(cells, section, len, threads);
            t.push(rate_target(
                format!(
                    "{threads} writers, {}, {}: vault (best path) ÷ best peer, records/s",
                    sync_label(section),
                    size_label(len)
                ),
                1.5,
                v,
                best_peer(cells, section, len, threads),
            ));
            if threads == 8 {
                t.push(rate_target(
                    format!(
                        "8 writers, {}, {}: vault (best path) ÷ the floor's 8 independent O_DIRECT+O_DSYNC writers, records/s",
                        sync_label(section),
                        size_label(len)
                    ),
                    1.5,
                    v,
                    find(cells, section, DIRECT_FLOOR, len, 8).map(|m| ("floor", m)),
                ));
            }
        }
    }
    // Unsynced: the direct path against the device, the mmap path against memcpy.
    let u = Section::Unsynced;
    for len in SIZES {
        let what = format!(
            "unsynced, 1 thread, {}: vault direct ÷ the device's sequential O_DIRECT write bandwidth (MiB/s, same run)",
            size_label(len)
        );
        let v = find(cells, u, DIRECT, len, 1);
        let target = match (v, &probes.direct_mib) {
            (Some(v), Ok(bw)) => match Spread::against(v, *bw, mib) {
                Some(s) => Target::new(
                    what,
                    "≥ 0.8",
                    format!("{} ({:.0} vs {bw:.0} MiB/s)", s.label(), v.median_mib()),
                    Some(s.at_least(0.8)),
                ),
                None => Target::new(what, "≥ 0.8", "not measured".into(), None),
            },
            (_, Err(e)) => Target::new(what, "≥ 0.8", format!("no bandwidth: {e}"), None),
            _ => Target::new(what, "≥ 0.8", "not measured".into(), None),
        };
        t.push(target);
    }
    for (system, len, goal, by_mib) in [
        (MMAP, 256, 0.5, false),
        (MMAP, 64 << 10, 0.7, true),
        ("vault mmap, 512 MiB segments", 256, 0.5, false),
        ("vault mmap, 512 MiB segments", 64 << 10, 0.7, true),
    ] {
        let what = format!(
            "unsynced, 1 thread, {}: {system} ÷ memcpy ceiling ({})",
            size_label(len),
            if by_mib { "MiB/s" } else { "records/s" }
        );
        let v = find(cells, u, system, len, 1);
        let c = find(cells, u, CEILING, len, 1);
        let goal_label = format!("≥ {goal:.2}");
        let target = match (v, c) {
            (Some(v), Some(c)) => {
                let f = if by_mib { mib } else { rate };
                match Spread::between(v, c, f) {
                    Some(s) => Target::new(
                        what,
                        &goal_label,
                        if by_mib {
                            format!(
                                "{} ({:.0} vs {:.0} MiB/s)",
                                s.label(),
                                v.median_mib(),
                                c.median_mib()
                            )
                        } else {
                            format!(
                                "{} ({} vs {} rec/s)",
                                s.label(),
                                rate_label(v.median_rate()),
                                rate_label(c.median_rate())
                            )
                        },
                        Some(s.at_least(goal)),
                    ),
                    None => Target::new(what, &goal_label, "not measured".into(), None),
                }
            }
            _ => Target::new(what, &goal_label, "not measured".into(), None),
        };
        t.push(target);
    }
    // Appends that waited for a segment, per workload and path.
    for path in PATHS {
        for section in [
            Section::Unsynced,
            Section::SyncEach,
            Section::SyncEvery,
            Section::Rotation,
        ] {
            let counted: Vec<(&Cell, u64, u64)> = cells
                .iter()
                .filter(|c| c.section == section && c.system.starts_with(path))
                .filter_map(|c| {
                    let s = c.outcome.as_ref().ok()?.segments?;
                    Some((c, s.waits, s.rotations))
                })
                .collect();
            let what = format!(
                "{path}: appends that waited for a segment, {} (every cell)",
                section.label()
            );
            if counted.is_empty() {
                t.push(Target::new(what, "0", "not measured".into(), None));
                continue;
            }
            let waits: u64 = counted.iter().map(|c| c.1).sum();
            let rotations: u64 = counted.iter().map(|c| c.2).sum();
            let worst = counted
                .iter()
                .max_by_key(|c| c.1)
                .map_or(String::new(), |(c, w, _)| {
                    if *w == 0 {
                        String::new()
                    } else {
                        format!(
                            "; worst {} {} x{}{}: {w}",
                            c.system,
                            size_label(c.workload.record_len),
                            c.workload.threads,
                            c.workload.segment_size.map_or(String::new(), |s| format!(
                                ", segment {}",
                                size_label(s as usize)
                            ))
                        )
                    }
                });
            t.push(Target::new(
                what,
                "0",
                format!(
                    "{waits} waited over {} cells, {rotations} rotations{worst}",
                    counted.len()
                ),
                Some(if waits == 0 {
                    Verdict::Met
                } else {
                    Verdict::Missed
                }),
            ));
        }
    }
    // Rotation: latency with small segments against the default.
    for path in PATHS {
        for sync in [SyncMode::Never, SyncMode::Every(EVERY)] {
            let rot: Vec<&Cell> = cells
                .iter()
                .filter(|c| {
                    c.section == Section::Rotation && c.workload.sync == sync && c.system == path
                })
                .collect();
            let base = rot.iter().find(|c| c.workload.segment_size.is_none());
            let small = rot.iter().find(|c| c.workload.segment_size.is_some());
            let (measured, ok) = match (
                base.and_then(|c| c.outcome.as_ref().ok()),
                small.and_then(|c| c.outcome.as_ref().ok()),
            ) {
                (Some(b), Some(s)) => {
                    let q = |m: &Measurement| m.latency.value_at_quantile(0.999);
                    let r = q(s) as f64 / q(b).max(1) as f64;
                    let seg = s.segments.unwrap_or_default();
                    (
                        format!(
                            "{r:.2}× (p99.9 {} vs {}; {} rotations, {} waited)",
                            ns_label(q(s)),
                            ns_label(q(b)),
                            seg.rotations,
                            seg.waits
                        ),
                        Some(if r <= 2.0 && seg.waits == 0 && seg.rotations >= 20 {
                            Verdict::Met
                        } else {
                            Verdict::Missed
                        }),
                    )
                }
                _ => ("not measured".into(), None),
            };
            t.push(Target::new(
                format!(
                    "{path}, rotation ({}, 256 B): p99.9 small segments ÷ default segments; waits",
                    sync.label()
                ),
                "≤ 2, ≥ 20 rotations, 0 waited",
                measured,
                ok,
            ));
        }
    }
    for path in PATHS {
        for r in replays.iter().filter(|r| r.system == path) {
            let (measured, ok) = match &r.outcome {
                Ok((mib, _)) => (
                    format!("{:.2} GiB/s", mib / 1024.0),
                    Some(if *mib >= 1024.0 {
                        Verdict::Met
                    } else {
                        Verdict::Missed
                    }),
                ),
                Err(e) => (format!("failed: {e}"), None),
            };
            t.push(Target::new(
                format!("replay {}: {path} reopen + read all", size_label(r.len)),
                "≥ 1 GiB/s",
                measured,
                ok,
            ));
        }
    }
    for s in spills {
        let direct = s.system == DIRECT;
        // The direct path's process memory: the tail, the spares and at most two finished
        // segments waiting for their write (docs/ARCHITECTURE.md §8.1).
        let defaults = vault_core::Options::default();
        let memory_bound = i64::try_from((3 + defaults.spares() as u64) * defaults.segment_size())
            .unwrap_or(i64::MAX);
        let goal = if direct {
            format!(
                "page cache and Dirty ≤ 64 MiB each; RSS ≤ {} ((3 + spares) segments)",
                mib_label(memory_bound).replace('+', "")
            )
        } else {
            "– (beside the direct path)".into()
        };
        let (measured, ok) = match &s.outcome {
            Ok(sp) => {
                let resident = sp.resident.map_or("not measured".into(), |r| {
                    mib_label(i64::try_from(r).unwrap_or(i64::MAX)).replace('+', "")
                });
                let ok = sp.resident.is_some_and(|r| r <= SPILL_GOAL as u64)
                    && sp.dirty_max <= SPILL_GOAL
                    && sp.rss_max <= memory_bound;
                (
                    format!(
                        "page cache of the log {resident}; Dirty {} (highest {}); RSS {} (highest {}); {:.1} s",
                        mib_label(sp.dirty_end),
                        mib_label(sp.dirty_max),
                        mib_label(sp.rss_end),
                        mib_label(sp.rss_max),
                        sp.secs
                    ),
                    direct.then_some(if ok { Verdict::Met } else { Verdict::Missed }),
                )
            }
            Err(e) => (format!("failed: {e}"), None),
        };
        t.push(Target::new(
            format!(
                "spill (4 KiB records, SyncPolicy::Interval(1 s)), {}: the log's resident page cache, the growth of Dirty and of the process's RSS",
                s.system
            ),
            &goal,
            measured,
            ok,
        ));
    }
    // Device requests per sync, one writer, 256 B.
    for section in [Section::SyncEach, Section::SyncEvery] {
        let mut names: Vec<&'static str> = vec![MMAP, DIRECT, DIRECT_FLOOR, PWRITE_FLOOR];
        if let Some((p, _)) = best_peer(cells, section, 256, 1) {
            names.push(p);
        }
        // The goal is what one durable write costs on this device, counted the same way in
        // the same run: a disk without FUA counts each `O_DSYNC` write as 2 writes + 1 flush.
        let floor = find(cells, section, DIRECT_FLOOR, 256, 1).and_then(per_sync);
        let (goal_w, goal_f) = floor.map_or((1.0, 1.0), |(w, f, _)| (w, f));
        let goal = floor.map_or("1 write, 1 flush".to_string(), |(w, f, _)| {
            format!("what one O_DIRECT+O_DSYNC write costs here: {w:.2} writes, {f:.2} flushes")
        });
        for name in names {
            let m = find(cells, section, name, 256, 1);
            let vault = is_vault(name);
            let (measured, ok) = match m.and_then(per_sync) {
                Some((w, f, wf)) => (
                    if wf.is_finite() {
                        format!("{w:.2} writes, {f:.2} flushes per sync ({wf:.2} writes per flush)")
                    } else {
                        format!("{w:.2} writes, {f:.2} flushes per sync (no flush counted)")
                    },
                    vault.then_some(if w <= goal_w + 0.1 && f <= goal_f + 0.1 {
                        Verdict::Met
                    } else {
                        Verdict::Missed
                    }),
                ),
                None => ("not measured".into(), None),
            };
            t.push(Target::new(
                format!(
                    "device requests per sync, one writer, {}, 256 B: {name}",
                    sync_label(section)
                ),
                if vault { &goal } else { "–" },
                measured,
                ok,
            ));
        }
    }
    // The device's own scaling: independent writers.
    for threads in [4, 8] {
        let f = find(cells, Section::SyncEach, DIRECT_FLOOR, 256, threads);
        let f1 = find(cells, Section::SyncEach, DIRECT_FLOOR, 256, 1);
        let measured = match (f, f1) {
            (Some(f), Some(f1)) => {
                Spread::between(f, f1, rate).map_or("not measured".into(), |s| {
                    format!(
                        "{} ({} vs {} rec/s)",
                        s.label(),
                        rate_label(f.median_rate()),
                        rate_label(f1.median_rate())
                    )
                })
            }
            _ => "not measured".into(),
        };
        t.push(Target::new(
            format!("context: the O_DIRECT+O_DSYNC floor's own scaling, sync each 256 B, {threads} independent writers ÷ 1"),
            "–",
            measured,
            None,
        ));
    }
    // The rotation runs are left out: there the worker creates a segment every few hundred
    // records, and its allocations (paths, the mapping's handle) are per segment, not per
    // append; the rotation table shows them.
    let vault_cells: Vec<(&Cell, &Measurement)> = cells
        .iter()
        .filter(|c| is_vault(c.system) && c.section != Section::Rotation)
        .filter_map(|c| c.outcome.as_ref().ok().map(|m| (c, m)))
        .collect();
    let worst = vault_cells
        .iter()
        .max_by(|a, b| a.1.allocs_per_record.total_cmp(&b.1.allocs_per_record));
    t.push(Target::new(
        "heap allocations per vault append / must_write, process-wide, every workload but rotation (worst cell)".into(),
        "0",
        worst.map_or("not measured".into(), |(c, m)| {
            format!(
                "{:.4} ({} {} x{} {})",
                m.allocs_per_record,
                c.system,
                size_label(c.workload.record_len),
                c.workload.threads,
                c.workload.sync.label()
            )
        }),
        worst.map(|(_, m)| {
            if m.allocs_per_record == 0.0 {
                Verdict::Met
            } else {
                Verdict::Missed
            }
        }),
    ));
    t
}

/// One replay measurement.
#[derive(Debug)]
pub struct ReplayResult {
    system: &'static str,
    len: usize,
    outcome: std::result::Result<(f64, u64), String>,
}

fn render(
    config: &Config,
    probes: &Probes,
    cells: &[Cell],
    replays: &[ReplayResult],
    spills: &[SpillResult],
    charts: &[Chart],
    elapsed: Duration,
) -> String {
    let mut s = String::new();
    let ns = |d: Duration| ns_label(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let _ = writeln!(s, "## Latest run\n");
    let _ = writeln!(s, "- Command: `{}`", config.command);
    let _ = writeln!(
        s,
        "- Date: {} (run took {:.0} s)",
        utc_date(),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(s, "- CPU: {}", machine_cpu());
    let _ = writeln!(s, "- File system under test: {}", file_system(&config.root));
    let fsync = &probes.fsync;
    let _ = writeln!(
        s,
        "- Measured here, same run: `fdatasync` with nothing dirty p50 {} / p99 {}; \
         `pwrite` 4 KiB + `fdatasync` into a pre-zeroed file p50 {} / p99 {}; \
         sequential `O_DIRECT` write bandwidth {}",
        ns(fsync[0].0),
        ns(fsync[0].1),
        ns(fsync[1].0),
        ns(fsync[1].1),
        match &probes.direct_mib {
            Ok(m) => format!("{m:.0} MiB/s (1 MiB writes, median of 3)"),
            Err(e) => format!("not measured ({e})"),
        }
    );
    let _ = writeln!(
        s,
        "- Device counters: {}",
        probes.device.as_ref().map_or(
            "not available (no block device under the directory)".into(),
            |d| format!(
                "`/sys/block/{}/stat` around each throughput pass (writes completed, flushes \
                 completed); other processes' I/O on the same device counts too",
                d.name
            )
        )
    );
    let _ = writeln!(
        s,
        "- Mode: {}. Per-pass budget {} MiB; {} interleaved round(s) per cell; see the method section for record counts.",
        if config.quick {
            "quick (`--quick`)"
        } else {
            "full"
        },
        per_pass_bytes(config.quick) >> 20,
        config.rounds()
    );
    for chart in charts {
        let _ = writeln!(s, "\n![{}](charts/{})", chart.title, chart.file);
    }
    let _ = writeln!(s, "\n### Targets (ratios measured in this run)\n");
    let _ = writeln!(
        s,
        "Ratios are the median of the rounds' ratios ({} round(s)), [lowest–highest] round beside it.\n",
        config.rounds()
    );
    let _ = writeln!(s, "| target | goal | measured | verdict |");
    let _ = writeln!(s, "|---|---|---|---|");
    for t in targets(cells, replays, spills, probes) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            t.what,
            t.goal,
            t.measured,
            t.verdict.map_or("–", verdict)
        );
    }
    for (section, title) in [
        (Section::Unsynced, "Unsynced appends (sync never)"),
        (Section::SyncEach, "Durable appends, sync every record"),
        (
            Section::SyncEvery,
            "Durable appends, sync every 64 records per thread",
        ),
        (Section::Rotation, "Rotation: vault, 256 B, 1 thread"),
    ] {
        let durable = matches!(section, Section::SyncEach | Section::SyncEvery);
        let _ = writeln!(s, "\n### {title}\n");
        let _ = writeln!(
            s,
            "| size | threads | system | records/s (median) | rounds [lowest–highest] | MiB/s | p50 | p99 | p99.9 | max | p50 per sync | allocs/rec | device writes/sync | flushes/sync | records | notes |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for c in cells.iter().filter(|c| c.section == section) {
            let w = &c.workload;
            let sync = if section == Section::Rotation {
                format!(
                    "{}, segment {}",
                    w.sync.label(),
                    w.segment_size
                        .map_or("64 MiB (default)".into(), |b| size_label(b as usize))
                )
            } else {
                String::new()
            };
            match &c.outcome {
                Ok(m) => {
                    let q = |p: f64| ns_label(m.latency.value_at_quantile(p));
                    let segments = m.segments.map_or(String::new(), |g| {
                        format!("{} rotations, {} waited", g.rotations, g.waits)
                    });
                    let notes = [sync, segments, m.notes.clone().unwrap_or_default()]
                        .into_iter()
                        .filter(|n| !n.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ");
                    let (lo, hi) = m.rate_spread();
                    let (dw, df) = match per_sync(m).filter(|_| durable) {
                        Some((w, f, _)) => (format!("{w:.2}"), format!("{f:.2}")),
                        None => ("–".into(), "–".into()),
                    };
                    let sync_p50 = if m.sync_latency.is_empty() {
                        "–".into()
                    } else {
                        ns_label(m.sync_latency.value_at_quantile(0.5))
                    };
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {}–{} | {:.0} | {} | {} | {} | {} | {} | {:.2} | {dw} | {df} | {} | {} |",
                        size_label(w.record_len),
                        w.threads,
                        c.system,
                        rate_label(m.median_rate()),
                        rate_label(lo),
                        rate_label(hi),
                        m.median_mib(),
                        q(0.5),
                        q(0.99),
                        q(0.999),
                        ns_label(m.latency.max()),
                        sync_p50,
                        m.allocs_per_record,
                        w.records_per_thread * w.threads as u64,
                        notes
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | failed: {} | | | | | | | | | | | | {sync} |",
                        size_label(w.record_len),
                        w.threads,
                        c.system,
                        e.replace('|', "/")
                    );
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "\n### Replay: reopen and read every record, right after writing (the page cache holds what was written through it: not the direct path's files)\n"
    );
    let _ = writeln!(s, "| size | system | MiB/s | payload read |");
    let _ = writeln!(s, "|---|---|---:|---:|");
    for r in replays {
        match &r.outcome {
            Ok((mib, bytes)) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {mib:.0} | {} MiB |",
                    size_label(r.len),
                    r.system,
                    bytes >> 20
                );
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | – | {} |",
                    size_label(r.len),
                    r.system,
                    e.replace('|', "/")
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\n### Spill: {} MiB of 4 KiB records, `SyncPolicy::Interval(1 s)`, one thread\n",
        spill_bytes(config.quick) >> 20
    );
    let _ = writeln!(
        s,
        "Resident: the log's files in the page cache at the end (`fincore`), before close. \
         `Dirty` is system-wide (`/proc/meminfo`): other processes' writes count too.\n"
    );
    let _ = writeln!(
        s,
        "| system | MiB/s | log resident in page cache | Dirty growth, end | Dirty growth, highest | RSS growth, end | RSS growth, highest |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    for sp in spills {
        match &sp.outcome {
            Ok(x) => {
                let rate = x.bytes as f64 / x.secs.max(1e-9) / f64::from(1 << 20);
                let _ = writeln!(
                    s,
                    "| {} | {rate:.0} | {} | {} | {} | {} | {} |",
                    sp.system,
                    x.resident
                        .map_or("not measured".into(), |r| format!("{} MiB", r >> 20)),
                    mib_label(x.dirty_end),
                    mib_label(x.dirty_max),
                    mib_label(x.rss_end),
                    mib_label(x.rss_max)
                );
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "| {} | failed: {} | | | | | |",
                    sp.system,
                    e.replace('|', "/")
                );
            }
        }
    }
    s
}

/// Today's date in UTC as `YYYY-MM-DD`, from the system clock.
fn utc_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn machine_cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown", |r| r.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map_or(String::new(), |kb| format!(", {} GiB RAM", kb >> 20));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} logical CPUs{mem}, Linux {}",
        kernel.trim()
    )
}

/// The mount holding `path`: device, type and options, from `/proc/mounts`.
fn file_system(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && path.starts_with(f[1])).then(|| (f[1].len(), f))
        })
        .max_by_key(|(n, _)| *n)
        .map_or("unknown".into(), |(_, f)| {
            format!(
                "`{}` on `{}` ({}, `{}`), directory `{}`",
                f[2],
                f[0],
                f[1],
                f[3],
                path.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_goal_inside_the_rounds_spread_is_a_tie_and_outside_it_a_miss_or_a_hit() {
        let s = Spread::of(&[0.9, 1.2, 0.95, 1.0, 0.8]).unwrap();
        assert!((s.median - 0.95).abs() < 1e-12);
        assert!((s.lo - 0.8).abs() < 1e-12 && (s.hi - 1.2).abs() < 1e-12);
        assert_eq!(s.at_least(0.9), Verdict::Met);
        assert_eq!(s.at_least(1.0), Verdict::Tie);
        assert_eq!(s.at_least(1.5), Verdict::Missed);
        assert_eq!(s.at_most(1.1), Verdict::Met);
        assert_eq!(s.at_most(0.85), Verdict::Tie);
        assert_eq!(s.at_most(0.5), Verdict::Missed);
        assert!(Spread::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn round_ratios_pair_rounds_in_order() {
        let m = |rates: &[f64]| {
            let mut m: Option<Measurement> = None;
            for &r in rates {
                let one = Measurement {
                    records_per_sec: r,
                    mib_per_sec: r,
                    latency: harness::new_histogram(),
                    allocs_per_record: 0.0,
                    notes: None,
                    records: 1,
                    elapsed: Duration::from_secs(1),
                    allocs: 0,
                    sync_latency: harness::new_histogram(),
                    syncs: 0,
                    device: None,
                    segments: None,
                    rounds: vec![Round {
                        records_per_sec: r,
                        mib_per_sec: r,
                        sync_p50_ns: None,
                    }],
                };
                match &mut m {
                    None => m = Some(one),
                    Some(a) => a.merge(&one, 1),
                }
            }
            m.unwrap()
        };
        let v = m(&[10.0, 30.0, 20.0]);
        let p = m(&[10.0, 10.0, 40.0]);
        assert!((v.median_rate() - 20.0).abs() < 1e-12);
        assert_eq!(v.rate_spread(), (10.0, 30.0));
        let s = Spread::between(&v, &p, rate).unwrap();
        // Round ratios 1, 3, 0.5: median 1.
        assert!((s.median - 1.0).abs() < 1e-12);
        assert!((s.lo - 0.5).abs() < 1e-12 && (s.hi - 3.0).abs() < 1e-12);
    }
}
