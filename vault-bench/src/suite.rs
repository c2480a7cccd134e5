//! The whole side-by-side comparison: which workloads, which systems, and the Markdown report
//! with the targets as ratios measured in this one run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::charts::{self, Chart};
use crate::harness::{self, CountingAlloc, Measurement, Result, SyncMode, System, Workload};
use crate::subjects::{measure_fdatasync, HandWritten, MemcpyCeiling, PwriteFloor, Vault};

/// Record sizes of every section.
pub const SIZES: [usize; 4] = [64, 256, 4 << 10, 64 << 10];
/// Records per sync in the batched-durability section.
pub const EVERY: u32 = 64;

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
    /// Whether the system `name` is part of this run (see [`Config::only`]).
    #[must_use]
    pub fn wants(&self, name: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|part| name.contains(part)))
    }
}

/// Every system of the comparison, vault first, then the baselines, then the peers that were
/// compiled in (feature `peers`).
#[must_use]
pub fn systems() -> Vec<Box<dyn System>> {
    #[cfg_attr(not(feature = "peers"), allow(unused_mut))]
    let mut v: Vec<Box<dyn System>> = vec![
        Box::new(Vault::default()),
        Box::new(Vault {
            must_write: true,
            big_segments: false,
        }),
        Box::new(Vault {
            must_write: false,
            big_segments: true,
        }),
        Box::new(MemcpyCeiling),
        Box::new(PwriteFloor),
        Box::new(HandWritten),
    ];
    #[cfg(feature = "peers")]
    {
        use crate::peers;
        v.push(Box::new(peers::RaftEngine));
        v.push(Box::new(peers::OkayWal));
        v.push(Box::new(peers::WalDb));
        v.push(Box::new(peers::RaftLog));
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

fn per_pass_bytes(quick: bool) -> u64 {
    if quick {
        16 << 20
    } else {
        128 << 20
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
    drop(probe_dir);

    let mut cells = Vec::new();
    let plan: [(Section, &[usize]); 3] = [
        (Section::Unsynced, &[1, 4]),
        (Section::SyncEach, &[1, 4, 8]),
        (Section::SyncEvery, &[1, 4]),
    ];
    for (section, thread_counts) in plan {
        // Durable runs depend on a shared disk whose latency drifts by the minute: run them in
        // rounds, every system once per round, and merge the rounds, so that drift falls on
        // every system alike instead of on whichever ran during a bad minute.
        let rounds = if section == Section::Unsynced || config.quick {
            1
        } else {
            3
        };
        for len in SIZES {
            for &threads in thread_counts {
                let w = workload(section, config.quick, len, threads);
                let runs: Vec<&dyn System> = chosen
                    .iter()
                    .copied()
                    .filter(|s| s.supports(w.sync))
                    // must_write is shown where the allocation target is read: 256 B.
                    .filter(|s| s.name() != "vault must_write" || len == 256)
                    // The rotation-free reference row: unsynced, one thread.
                    .filter(|s| {
                        s.name() != "vault, 512 MiB segments"
                            || (section == Section::Unsynced && threads == 1)
                    })
                    .collect();
                let mut merged: Vec<Option<std::result::Result<Measurement, String>>> =
                    vec![None; runs.len()];
                for round in 0..rounds {
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
                            records_per_thread: w.records_per_thread * rounds,
                            ..w
                        },
                        outcome: outcome.unwrap_or_else(|| Err("not run".into())),
                    });
                }
            }
        }
    }
    let vault = Vault::default();
    if config.wants("vault") {
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
                eprintln!("compare: rotation {sync:?} segment {segment_size:?}");
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
            if system.name() != "vault" && is_vault(system.name())
                || system.name().contains("ceiling")
            {
                continue;
            }
            eprintln!("compare: replay {len} B {}", system.name());
            replays.push(ReplayResult {
                system: system.name(),
                len,
                outcome: replay(*system, config, len, alloc),
            });
        }
    }
    let charts = charts::render(&cells).unwrap_or_else(|e| {
        eprintln!("compare: no charts: {e}");
        Vec::new()
    });
    let markdown = render(config, &fsync, &cells, &replays, &charts, started.elapsed());
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

/// `n ÷ d` in records/s, with both rates, for a context row.
fn rate_ratio(n: Option<&Measurement>, d: Option<&Measurement>) -> String {
    match (n, d) {
        (Some(n), Some(d)) if d.records_per_sec > 0.0 => format!(
            "{:.2}× ({} vs {} rec/s)",
            n.records_per_sec / d.records_per_sec,
            rate_label(n.records_per_sec),
            rate_label(d.records_per_sec)
        ),
        _ => "not measured".into(),
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

/// The best peer (not vault, not a baseline) by records/s, with its name.
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
        .max_by(|a, b| a.1.records_per_sec.total_cmp(&b.1.records_per_sec))
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "**met**"
    } else {
        "**missed**"
    }
}

struct Target {
    what: String,
    goal: String,
    measured: String,
    ok: Option<bool>,
}

#[allow(clippy::too_many_lines)]
fn targets(cells: &[Cell], replays: &[ReplayResult]) -> Vec<Target> {
    let mut t = Vec::new();
    let mut ratio =
        |what: &str, goal: &str, num: Option<f64>, den: Option<f64>, min: f64, detail: String| {
            let (measured, ok) = match (num, den) {
                (Some(n), Some(d)) if d > 0.0 => {
                    let r = n / d;
                    (format!("{r:.2}× ({detail})"), Some(r >= min))
                }
                _ => ("not measured".to_string(), None),
            };
            t.push(Target {
                what: what.into(),
                goal: goal.into(),
                measured,
                ok,
            });
        };
    let u = Section::Unsynced;
    let v256 = find(cells, u, "vault", 256, 1);
    let c256 = find(cells, u, "memcpy into mmap (ceiling)", 256, 1);
    ratio(
        "unsynced 256 B, 1 thread: vault ÷ memcpy ceiling (records/s)",
        "≥ 0.50",
        v256.map(|m| m.records_per_sec),
        c256.map(|m| m.records_per_sec),
        0.5,
        format!(
            "{} vs {} rec/s",
            v256.map_or("-".into(), |m| rate_label(m.records_per_sec)),
            c256.map_or("-".into(), |m| rate_label(m.records_per_sec))
        ),
    );
    let p256 = best_peer(cells, u, 256, 1);
    ratio(
        "unsynced 256 B, 1 thread: vault ÷ best peer (records/s)",
        "≥ 5",
        v256.map(|m| m.records_per_sec),
        p256.map(|p| p.1.records_per_sec),
        5.0,
        format!(
            "best peer {}: {} rec/s",
            p256.map_or("-", |p| p.0),
            p256.map_or("-".into(), |p| rate_label(p.1.records_per_sec))
        ),
    );
    let v64k = find(cells, u, "vault", 64 << 10, 1);
    let c64k = find(cells, u, "memcpy into mmap (ceiling)", 64 << 10, 1);
    ratio(
        "unsynced 64 KiB, 1 thread: vault ÷ memcpy ceiling (MiB/s)",
        "≥ 0.70",
        v64k.map(|m| m.mib_per_sec),
        c64k.map(|m| m.mib_per_sec),
        0.7,
        format!(
            "{:.0} vs {:.0} MiB/s",
            v64k.map_or(0.0, |m| m.mib_per_sec),
            c64k.map_or(0.0, |m| m.mib_per_sec)
        ),
    );
    // The same two ratios without rotation during the run, next to them for context.
    let big = "vault, 512 MiB segments";
    let b256 = find(cells, u, big, 256, 1);
    ratio(
        "context: the same, 256 B, with 512 MiB segments (no rotation in the run)",
        "≥ 0.50",
        b256.map(|m| m.records_per_sec),
        c256.map(|m| m.records_per_sec),
        0.5,
        format!(
            "{} rec/s",
            b256.map_or("-".into(), |m| rate_label(m.records_per_sec))
        ),
    );
    let b64k = find(cells, u, big, 64 << 10, 1);
    ratio(
        "context: the same, 64 KiB, with 512 MiB segments (no rotation in the run)",
        "≥ 0.70",
        b64k.map(|m| m.mib_per_sec),
        c64k.map(|m| m.mib_per_sec),
        0.7,
        format!("{:.0} MiB/s", b64k.map_or(0.0, |m| m.mib_per_sec)),
    );
    let e = Section::SyncEach;
    let ve1 = find(cells, e, "vault", 256, 1);
    let fe1 = find(cells, e, "pwrite + fdatasync (floor)", 256, 1);
    let p50 = |m: &Measurement| m.latency.value_at_quantile(0.5) as f64;
    // A latency ratio: lower is better, so compare the floor to vault.
    {
        let (measured, ok) = match (ve1, fe1) {
            (Some(v), Some(f)) => {
                let r = p50(v) / p50(f);
                (
                    format!(
                        "{r:.2}× ({} vs {})",
                        ns_label(v.latency.value_at_quantile(0.5)),
                        ns_label(f.latency.value_at_quantile(0.5))
                    ),
                    Some(r <= 1.2),
                )
            }
            _ => ("not measured".into(), None),
        };
        t.push(Target {
            what: "sync each 256 B, 1 thread: vault p50 ÷ pwrite+fdatasync floor p50".into(),
            goal: "≤ 1.2".into(),
            measured,
            ok,
        });
    }
    let mut ratio =
        |what: &str, goal: &str, num: Option<f64>, den: Option<f64>, min: f64, detail: String| {
            let (measured, ok) = match (num, den) {
                (Some(n), Some(d)) if d > 0.0 => {
                    let r = n / d;
                    (format!("{r:.2}× ({detail})"), Some(r >= min))
                }
                _ => ("not measured".to_string(), None),
            };
            t.push(Target {
                what: what.into(),
                goal: goal.into(),
                measured,
                ok,
            });
        };
    for threads in [1, 4, 8] {
        let v = find(cells, e, "vault", 256, threads);
        let p = best_peer(cells, e, 256, threads);
        let goal = if threads == 1 { 1.5 } else { 2.0 };
        ratio(
            &format!("sync each 256 B, {threads} thread(s): vault ÷ best peer (records/s)"),
            &format!("≥ {goal}"),
            v.map(|m| m.records_per_sec),
            p.map(|p| p.1.records_per_sec),
            goal,
            format!(
                "{} vs {} {} rec/s",
                v.map_or("-".into(), |m| rate_label(m.records_per_sec)),
                p.map_or("-", |p| p.0),
                p.map_or("-".into(), |p| rate_label(p.1.records_per_sec))
            ),
        );
    }
    let mut context = Vec::new();
    for (threads, goal) in [(4, 3.0), (8, 5.0)] {
        let v = find(cells, e, "vault", 256, threads);
        ratio(
            &format!("sync each 256 B: vault {threads} threads ÷ vault 1 thread (records/s)"),
            &format!("≥ {goal}"),
            v.map(|m| m.records_per_sec),
            ve1.map(|m| m.records_per_sec),
            goal,
            format!(
                "{} vs {} rec/s",
                v.map_or("-".into(), |m| rate_label(m.records_per_sec)),
                ve1.map_or("-".into(), |m| rate_label(m.records_per_sec))
            ),
        );
        // The device's own scaling, same run: independent `pwrite` + `fdatasync` from the same
        // number of threads, against one; and vault against those independent syncs. Context
        // for the row above, not targets (no verdict).
        let f = find(cells, e, "pwrite + fdatasync (floor)", 256, threads);
        context.push(Target {
            what: format!(
                "context: the floor's own scaling, {threads} threads ÷ 1 thread (independent syncs)"
            ),
            goal: "–".into(),
            measured: rate_ratio(f, fe1),
            ok: None,
        });
        context.push(Target {
            what: format!("context: vault ÷ the floor's independent syncs, {threads} threads"),
            goal: "–".into(),
            measured: rate_ratio(v, f),
            ok: None,
        });
    }
    t.append(&mut context);
    for sync in [SyncMode::Never, SyncMode::Every(EVERY)] {
        let rot: Vec<&Cell> = cells
            .iter()
            .filter(|c| c.section == Section::Rotation && c.workload.sync == sync)
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
                let notes = s.notes.clone().unwrap_or_default();
                let waited = notes
                    .split(", ")
                    .find_map(|p| p.strip_suffix(" waited"))
                    .and_then(|n| n.parse::<u64>().ok());
                let rotations = notes
                    .split(", ")
                    .find_map(|p| p.strip_suffix(" rotations"))
                    .and_then(|n| n.parse::<u64>().ok());
                (
                    format!(
                        "{r:.2}× (p99.9 {} vs {}; {notes})",
                        ns_label(q(s)),
                        ns_label(q(b))
                    ),
                    Some(r <= 2.0 && waited == Some(0) && rotations.unwrap_or(0) >= 20),
                )
            }
            _ => ("not measured".into(), None),
        };
        t.push(Target {
            what: format!(
                "rotation ({}, 256 B): p99.9 small segments ÷ default segments; waits",
                sync.label()
            ),
            goal: "≤ 2, ≥ 20 rotations, 0 waited".into(),
            measured,
            ok,
        });
    }
    for r in replays.iter().filter(|r| r.system == "vault") {
        let (measured, ok) = match &r.outcome {
            Ok((mib, _)) => (format!("{mib:.0} MiB/s"), Some(*mib >= 1024.0)),
            Err(e) => (format!("failed: {e}"), None),
        };
        t.push(Target {
            what: format!("replay {}: vault reopen + read all", size_label(r.len)),
            goal: "≥ 1 GiB/s".into(),
            measured,
            ok,
        });
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
    t.push(Target {
        what: "heap allocations per vault append / must_write, process-wide, every workload but rotation (worst cell)".into(),
        goal: "0".into(),
        measured: worst.map_or("not measured".into(), |(c, m)| {
            format!(
                "{:.4} ({} {} x{} {})",
                m.allocs_per_record,
                c.system,
                size_label(c.workload.record_len),
                c.workload.threads,
                c.workload.sync.label()
            )
        }),
        ok: worst.map(|(_, m)| m.allocs_per_record == 0.0),
    });
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
    fsync: &[(Duration, Duration); 2],
    cells: &[Cell],
    replays: &[ReplayResult],
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
    let _ = writeln!(
        s,
        "- Measured here, same run: `fdatasync` with nothing dirty p50 {} / p99 {}; \
         `pwrite` 4 KiB + `fdatasync` into a pre-zeroed file p50 {} / p99 {}",
        ns(fsync[0].0),
        ns(fsync[0].1),
        ns(fsync[1].0),
        ns(fsync[1].1)
    );
    let _ = writeln!(
        s,
        "- Mode: {}. Per-pass budget {} MiB; see the method section for record counts.",
        if config.quick {
            "quick (`--quick`)"
        } else {
            "full"
        },
        per_pass_bytes(config.quick) >> 20
    );
    for chart in charts {
        let _ = writeln!(s, "\n![{}](charts/{})", chart.title, chart.file);
    }
    let _ = writeln!(s, "\n### Targets (ratios measured in this run)\n");
    let _ = writeln!(s, "| target | goal | measured | verdict |");
    let _ = writeln!(s, "|---|---|---|---|");
    for t in targets(cells, replays) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            t.what,
            t.goal,
            t.measured,
            t.ok.map_or("–", verdict)
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
        let _ = writeln!(s, "\n### {title}\n");
        let _ = writeln!(
            s,
            "| size | threads | system | records/s | MiB/s | p50 | p99 | p99.9 | max | allocs/rec | records | notes |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
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
                    let notes = [sync, m.notes.clone().unwrap_or_default()]
                        .into_iter()
                        .filter(|n| !n.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ");
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {:.2} | {} | {} |",
                        size_label(w.record_len),
                        w.threads,
                        c.system,
                        rate_label(m.records_per_sec),
                        m.mib_per_sec,
                        q(0.5),
                        q(0.99),
                        q(0.999),
                        ns_label(m.latency.max()),
                        m.allocs_per_record,
                        w.records_per_thread * w.threads as u64,
                        notes
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | failed: {} | | | | | | | | {sync} |",
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
        "\n### Replay: reopen and read every record (page cache warm)\n"
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
                let _ = writeln!(s, "| {} | {} | – | {} |", size_label(r.len), r.system, e);
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
