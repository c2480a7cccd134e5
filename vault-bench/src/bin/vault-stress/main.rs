//! `vault-stress`: hammers one [`Wal`] from many threads for a while and checks every record.
//!
//! Run it through `cargo xtask stress` (which builds it in release); `--help` lists the knobs.
//!
//! - **Appenders** (`--threads`) mix `append`, `append_batch` and `must_write`. A record's bytes
//!   are derived from (appender, sequence number): a 16-byte header naming both and the length,
//!   then pseudo-random bytes seeded by them. Each appender remembers which LSN each of its
//!   records got, for as long as that record can still be in the log.
//! - **Readers** (`--readers`) tail the log with `iter_from` from the LSN after the last one they
//!   saw. Every record must be the next LSN, or a jump explained by `truncate_front` (the log
//!   now starts at or after it); its bytes must match its header; each appender's records must
//!   appear in sequence order with none missing.
//! - A **truncator** calls `truncate_front` periodically, keeping about `--keep` records.
//! - A **cutter** (`--cut-every` ms, 0 disables it) calls `truncate_back` at a random LSN among
//!   the last `--cut-depth` records, and `--reset-percent` of the time `reset` past the end.
//!   Cuts are numbered and modelled (`cut_model`, `cuts_begun`, `cuts_done`): an appender may
//!   see its LSNs go back, or return under `Always` before durable, only if a cut overlapped
//!   its append; readers restart each appender's sequence when a cut overlapped their pass.
//!   After each cut the cutter reads back **witnesses** (the durable LSN and one below it) and
//!   checks before every later cut, and at the reopen, that each one still in the log and
//!   below every cut since holds the same bytes.
//! - **Followers** (`--followers`) use `Wal::follow` + `next_timeout`: every record must be the
//!   next LSN and well formed. `Error::Truncated` must be explained by the model (a cut since
//!   the follower was made, below its position, after it returned something; or a log that
//!   now starts past it), and is required when a whole cut below its position fell between two
//!   calls (followers stand still near the tail now and then to make that happen). They then
//!   follow again from there. After the run they read to the end and must get `Error::Closed`.
//! - An **on_durable** thread (`--callbacks`) registers a callback for the last LSN (and now and
//!   then the next one) every 0.5 ms: each must be called exactly once, with `Ok(d)`, `d >= lsn`,
//!   or `Err(Closed)` at close.
//! - Segments are tiny (`--segment-size`), so the log rotates hundreds of times.
//! - At the end the WAL is closed and **reopened**: it must equal, byte for byte, what
//!   `iter_from(first)` showed just before close; every record must be well formed, hold a
//!   record an append was given that LSN for, and each appender's records must be in sequence
//!   order. Without cuts, every record given an LSN still in the log must be there.
//!
//! Any violation is printed (the first few in full) and makes the exit status 1.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod records;
mod roles;
mod verify;

use records::*;
use roles::*;
use verify::*;

use clap::Parser;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use vault_core::{Error, Options, Pool, PoolConfig, SyncPolicy, Wal};

/// Stress-test a vault WAL: many appenders, tailing readers, tiny segments, periodic
/// truncation, then a reopen that verifies every record byte by byte.
#[derive(Debug, Parser)]
#[command(name = "vault-stress")]
struct Args {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Appender threads.
    #[arg(long, default_value_t = 4)]
    threads: u32,
    /// Reader threads tailing the log.
    #[arg(long, default_value_t = 2)]
    readers: u32,
    /// Record sizes in bytes, `MIN..MAX` (inclusive) or one size; at least 16.
    #[arg(long, default_value = "16..512", value_parser = parse_size_range)]
    record_size: (usize, usize),
    /// Segment capacity in bytes (`K`/`M` suffixes allowed); at least 4K.
    #[arg(long, default_value = "64K", value_parser = parse_bytes)]
    segment_size: u64,
    /// `always`, `manual`, or `interval:<ms>`.
    #[arg(long, default_value = "always", value_parser = parse_sync)]
    sync: SyncPolicy,
    /// Milliseconds between two `truncate_front` calls.
    #[arg(long, default_value_t = 100)]
    truncate_every: u64,
    /// Records `truncate_front` keeps (about: it drops whole segments only).
    #[arg(long, default_value_t = 20_000)]
    keep: u64,
    /// Milliseconds between two cuts of the log's end (`truncate_back`, rarely `reset`);
    /// 0 disables the cutter. Each discards a few hundred records on average: much more often
    /// and the log would barely grow, leaving `truncate_front` nothing to remove.
    #[arg(long, default_value_t = 100)]
    cut_every: u64,
    /// A cut lands at a random LSN among the last this many records (one in eight among ten
    /// times as many).
    #[arg(long, default_value_t = 300)]
    cut_depth: u64,
    /// Percent of cuts that are a `reset` (past the end of the log) instead. Kept low: a reset
    /// empties the log, which would leave `truncate_front` nothing to remove.
    #[arg(long, default_value_t = 1)]
    reset_percent: u64,
    /// Tail-following readers (`Wal::follow` + `next_timeout`).
    #[arg(long, default_value_t = 2)]
    followers: u32,
    /// Register `on_durable` callbacks for appended LSNs from one thread (0: off, 1: on).
    #[arg(long, default_value_t = 1)]
    callbacks: u32,
    /// WAL directory (must not hold a WAL); a fresh temporary directory if not given.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let n: u64 = digits.parse().map_err(|e| format!("`{s}`: {e}"))?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use K, M or G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

fn parse_size_range(s: &str) -> Result<(usize, usize), String> {
    let (lo, hi) = s.split_once("..").unwrap_or((s, s));
    let lo = usize::try_from(parse_bytes(lo)?).map_err(|e| e.to_string())?;
    let hi = usize::try_from(parse_bytes(hi)?).map_err(|e| e.to_string())?;
    if lo < HEADER || hi < lo {
        return Err(format!(
            "`{s}`: need {HEADER} <= MIN <= MAX (a record carries a {HEADER}-byte header)"
        ));
    }
    Ok((lo, hi))
}

fn parse_sync(s: &str) -> Result<SyncPolicy, String> {
    match s {
        "always" => Ok(SyncPolicy::Always),
        "manual" => Ok(SyncPolicy::Manual),
        _ => match s.strip_prefix("interval:") {
            Some(ms) => {
                let ms: u64 = ms
                    .trim_end_matches("ms")
                    .parse()
                    .map_err(|e| format!("`{s}`: {e}"))?;
                if ms == 0 {
                    return Err("the interval must be at least 1 ms".into());
                }
                Ok(SyncPolicy::Interval(Duration::from_millis(ms)))
            }
            None => Err(format!(
                "`{s}`: expected `always`, `manual` or `interval:<ms>`"
            )),
        },
    }
}

/// Violations found by any thread; the first few are printed in full.
#[derive(Default)]
struct Violations {
    count: AtomicU64,
}

impl Violations {
    const SHOWN: u64 = 20;

    fn report(&self, what: impl FnOnce() -> String) {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if n < Self::SHOWN {
            eprintln!("VIOLATION: {}", what());
        } else if n == Self::SHOWN {
            eprintln!("VIOLATION: (further violations are counted, not shown)");
        }
    }

    fn total(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// State shared by every thread of a run.
struct Run {
    wal: Wal,
    args: Args,
    stop: AtomicBool,
    violations: Violations,
    /// Every LSN below this was removed by `truncate_front` (raised after each call).
    truncated_below: AtomicU64,
    appended: AtomicU64,
    bytes: AtomicU64,
    batches: AtomicU64,
    must_writes: AtomicU64,
    read_verified: AtomicU64,
    truncations: AtomicU64,
    segments_removed: AtomicU64,
    /// Cuts of the log's end, numbered from 1: cut `k` is pushed to `cut_model` (as its first
    /// discarded LSN, 0 for a `reset`), then `cuts_begun` becomes `k`, the call runs, then
    /// `cuts_done` becomes `k`.
    cuts_begun: AtomicU64,
    cuts_done: AtomicU64,
    cut_model: Mutex<Vec<u64>>,
    resets: AtomicU64,
    /// Records read back by the cutter (below the durable LSN) and found unchanged later.
    witnesses_checked: AtomicU64,
    followed: AtomicU64,
    follow_truncated: AtomicU64,
    follow_truncated_required: AtomicU64,
    /// Set once every thread but the followers stopped.
    quiesced: AtomicBool,
}

impl Run {
    fn cuts_on(&self) -> bool {
        self.args.cut_every > 0
    }
}

/// What one appender did: its latencies, and the (LSN, seq) of its records that may still be
/// in the log, oldest first.
struct AppenderLog {
    latency_us: Histogram<u64>,
    lsns: VecDeque<(u64, u64)>,
    next_seq: u64,
}

/// A record the cutter read below the durable LSN: it must keep its bytes until a cut at or
/// below its LSN (or `truncate_front` removes it).
struct Witness {
    lsn: u64,
    data: Vec<u8>,
}

/// What the `on_durable` thread found; shared with its callbacks (which must not hold the WAL).
#[derive(Default)]
struct Callbacks {
    registered: AtomicU64,
    ok: AtomicU64,
    err: AtomicU64,
    violations: Violations,
}

fn options(args: &Args) -> Options {
    Options::default()
        .with_segment_size(args.segment_size)
        .with_sync(args.sync)
        .with_max_record_size(args.record_size.1)
}

fn describe(args: &Args) -> String {
    let sync = match args.sync {
        SyncPolicy::Always => "always".to_owned(),
        SyncPolicy::Manual => "manual".to_owned(),
        SyncPolicy::Interval(d) => format!("interval:{}ms", d.as_millis()),
    };
    let cuts = if args.cut_every == 0 {
        "no cuts".to_owned()
    } else {
        format!(
            "a cut every {} ms ({}% resets)",
            args.cut_every, args.reset_percent
        )
    };
    format!(
        "{} s, {} appenders, {} readers, {} followers, records {}..{} B, segments {} B, \
         sync {sync}, {cuts}",
        args.duration,
        args.threads,
        args.readers,
        args.followers,
        args.record_size.0,
        args.record_size.1,
        args.segment_size
    )
}

fn progress_bar(secs: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(secs);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} s  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn per_sec(n: u64, secs: f64) -> f64 {
    n as f64 / secs
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.threads == 0 {
        eprintln!("vault-stress: --threads must be at least 1");
        return ExitCode::from(2);
    }
    if args.segment_size < 4096 {
        eprintln!("vault-stress: --segment-size must be at least 4K");
        return ExitCode::from(2);
    }
    match stress(args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(n) => {
            eprintln!("vault-stress: FAILED with {n} violation(s)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("vault-stress: {e}");
            let mut cause = std::error::Error::source(&*e);
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn stress(args: Args) -> Result<u64, Box<dyn std::error::Error>> {
    let temp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("vault-stress-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    println!("vault-stress: {} in {}", describe(&args), dir.display());
    let wal = Wal::open(&dir, options(&args))?;
    let report = wal.recovery().clone();
    if report.records != 0 {
        return Err(format!("{} already holds a WAL", dir.display()).into());
    }
    let pool = Pool::new(PoolConfig {
        max_buffers: 64,
        initial_capacity: args.record_size.1,
        max_capacity: args.record_size.1.max(4096),
    })?;
    let run = Arc::new(Run {
        wal,
        stop: AtomicBool::new(false),
        violations: Violations::default(),
        truncated_below: AtomicU64::new(0),
        appended: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        batches: AtomicU64::new(0),
        must_writes: AtomicU64::new(0),
        read_verified: AtomicU64::new(0),
        truncations: AtomicU64::new(0),
        segments_removed: AtomicU64::new(0),
        cuts_begun: AtomicU64::new(0),
        cuts_done: AtomicU64::new(0),
        cut_model: Mutex::new(Vec::new()),
        resets: AtomicU64::new(0),
        witnesses_checked: AtomicU64::new(0),
        followed: AtomicU64::new(0),
        follow_truncated: AtomicU64::new(0),
        follow_truncated_required: AtomicU64::new(0),
        quiesced: AtomicBool::new(false),
        args,
    });
    let callbacks = Arc::new(Callbacks::default());

    let start = Instant::now();
    let followers: Vec<std::thread::JoinHandle<Vec<String>>> = (0..run.args.followers)
        .map(|id| {
            let run = Arc::clone(&run);
            std::thread::Builder::new()
                .name(format!("follower-{id}"))
                .spawn(move || {
                    let f = follower(&run, id);
                    // Let go of the WAL so that it can close; the follower keeps reading.
                    drop(run);
                    drain(f, id)
                })
        })
        .collect::<Result<_, _>>()?;
    let appenders: Vec<_> = (0..run.args.threads)
        .map(|id| {
            let run = Arc::clone(&run);
            let pool = pool.clone();
            std::thread::Builder::new()
                .name(format!("appender-{id}"))
                .spawn(move || appender(&run, id, &pool))
        })
        .collect::<Result<_, _>>()?;
    let mut others: Vec<std::thread::JoinHandle<()>> = (0..run.args.readers)
        .map(|id| {
            let run = Arc::clone(&run);
            std::thread::Builder::new()
                .name(format!("reader-{id}"))
                .spawn(move || reader(&run, id))
        })
        .collect::<Result<_, _>>()?;
    others.push({
        let run = Arc::clone(&run);
        std::thread::Builder::new()
            .name("truncator".into())
            .spawn(move || truncator(&run))?
    });
    let cutter = if run.cuts_on() {
        let run = Arc::clone(&run);
        Some(
            std::thread::Builder::new()
                .name("cutter".into())
                .spawn(move || cutter(&run))?,
        )
    } else {
        None
    };
    let registrar = if run.args.callbacks > 0 {
        let (run, cbs) = (Arc::clone(&run), Arc::clone(&callbacks));
        Some(
            std::thread::Builder::new()
                .name("on-durable".into())
                .spawn(move || registrar(&run, &cbs))?,
        )
    } else {
        None
    };

    let budget = Duration::from_secs_f64(run.args.duration.max(0.0));
    let bar = progress_bar(budget.as_secs().max(1));
    let mut last_print = Instant::now();
    while start.elapsed() < budget && !run.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100).min(budget.saturating_sub(start.elapsed())));
        let secs = start.elapsed().as_secs_f64().max(1e-3);
        let appended = run.appended.load(Ordering::Relaxed);
        bar.set_position(start.elapsed().as_secs());
        bar.set_message(format!(
            "{appended} appends ({:.0}/s), {} violations",
            per_sec(appended, secs),
            run.violations.total()
        ));
        if bar.is_hidden() && last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  {:>5.0} s: {appended} appends ({:.0}/s), {} violations",
                secs,
                per_sec(appended, secs),
                run.violations.total()
            );
        }
    }
    run.stop.store(true, Ordering::Relaxed);
    let logs: Vec<AppenderLog> = appenders
        .into_iter()
        .map(|h| h.join().map_err(|_| "an appender panicked"))
        .collect::<Result<_, _>>()?;
    for h in others {
        h.join().map_err(|_| "a reader or the truncator panicked")?;
    }
    let witnesses = match cutter {
        Some(h) => h.join().map_err(|_| "the cutter panicked")?,
        None => Vec::new(),
    };
    let calls = match registrar {
        Some(h) => h.join().map_err(|_| "the on_durable thread panicked")?,
        None => Vec::new(),
    };
    run.quiesced.store(true, Ordering::SeqCst);
    // The followers catch up and let go of the WAL.
    let mut run = run;
    let run = loop {
        match Arc::try_unwrap(run) {
            Ok(r) => break r,
            Err(r) => {
                if followers.iter().all(std::thread::JoinHandle::is_finished) {
                    return Err("a follower still holds the WAL".into());
                }
                run = r;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let stats = run.wal.stats();
    // What the WAL shows just before close: the reopen must show exactly this.
    let shown: Vec<(u64, Vec<u8>)> = run
        .wal
        .iter_from(run.wal.first_lsn())
        .map(|r| (r.lsn(), r.data().to_vec()))
        .collect();
    let Run {
        wal,
        args,
        violations,
        appended,
        bytes,
        batches,
        must_writes,
        read_verified,
        truncations,
        segments_removed,
        cuts_done,
        resets,
        witnesses_checked,
        followed,
        follow_truncated,
        follow_truncated_required,
        ..
    } = run;
    let (appended, bytes, batches, must_writes) = (
        appended.into_inner(),
        bytes.into_inner(),
        batches.into_inner(),
        must_writes.into_inner(),
    );
    let (read_verified, truncations, removed) = (
        read_verified.into_inner(),
        truncations.into_inner(),
        segments_removed.into_inner(),
    );
    wal.close()?;
    let mut closed = 0;
    for h in followers {
        let bad = h.join().map_err(|_| "a follower panicked")?;
        if bad.is_empty() {
            closed += 1;
        }
        for b in bad {
            violations.report(|| b);
        }
    }
    // `close` answered every callback; each exactly once.
    let (mut once, mut never) = (0u64, 0u64);
    for (lsn, count) in &calls {
        match count.load(Ordering::SeqCst) {
            1 => once += 1,
            0 => {
                never += 1;
                violations.report(|| format!("on_durable({lsn}): never called after close"));
            }
            n => violations.report(|| format!("on_durable({lsn}): called {n} times")),
        }
    }
    let cb_violations = callbacks.violations.total();
    for _ in 0..cb_violations {
        violations.report(|| "an on_durable callback violation (printed above)".into());
    }
    let verified = verify_reopen(
        &dir,
        &args,
        &logs,
        stats.last_lsn,
        &shown,
        &witnesses,
        &violations,
    )?;

    let mut latency = Histogram::<u64>::new(3).expect("valid");
    for log in &logs {
        latency.add(&log.latency_us).expect("same bounds");
    }
    let ms = |us: u64| us as f64 / 1000.0;
    println!("vault-stress: {}", describe(&args));
    println!("  ran             {elapsed:.1} s");
    println!(
        "  appends         {appended} records ({:.0}/s), {batches} batches, {must_writes} must_write",
        per_sec(appended, elapsed)
    );
    let mb = bytes as f64 / 1e6;
    println!(
        "  bytes           {mb:.1} MB ({:.2} MB/s)",
        mb / elapsed.max(1e-9)
    );
    println!(
        "  rotations       {} ({:.0}/s), segment waits {}, segments prepared {}",
        stats.rotations,
        per_sec(stats.rotations, elapsed),
        stats.segment_waits,
        stats.segments_prepared
    );
    println!("  flushes         {}", stats.flushes);
    println!("  truncations     {truncations} calls, {removed} segments removed");
    let cuts = cuts_done.into_inner();
    let resets = resets.into_inner();
    println!(
        "  cuts            {} truncate_back, {resets} reset; {} witness checks, {} witnesses at reopen",
        cuts - resets,
        witnesses_checked.into_inner(),
        witnesses.len()
    );
    println!(
        "  latency         max {:.3} ms, p99.9 {:.3} ms, p99 {:.3} ms, p50 {:.3} ms",
        ms(latency.max()),
        ms(latency.value_at_quantile(0.999)),
        ms(latency.value_at_quantile(0.99)),
        ms(latency.value_at_quantile(0.5))
    );
    println!("  readers         {read_verified} records verified while tailing");
    println!(
        "  followers       {} records in order, {} Truncated ({} required by a cut), {closed} of {} ended with Closed",
        followed.into_inner(),
        follow_truncated.into_inner(),
        follow_truncated_required.into_inner(),
        args.followers
    );
    println!(
        "  on_durable      {} registered, {} Ok, {} Err(Closed), {once} called once, {never} never",
        callbacks.registered.load(Ordering::Relaxed),
        callbacks.ok.load(Ordering::Relaxed),
        callbacks.err.load(Ordering::Relaxed)
    );
    println!("  reopen          {verified} records verified byte by byte");
    println!("  violations      {}", violations.total());
    Ok(violations.total())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_checks_against_its_own_header_and_a_flipped_byte_does_not() {
        let mut rec = Vec::new();
        fill_record(&mut rec, 3, 77, 100);
        assert_eq!(check_record(&rec), Ok((3, 77)));
        rec[50] ^= 1;
        assert!(check_record(&rec).is_err());
    }

    #[test]
    fn options_parse_sizes_ranges_and_policies() {
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_size_range("16..512"), Ok((16, 512)));
        assert_eq!(parse_size_range("100"), Ok((100, 100)));
        assert!(parse_size_range("8..16").is_err());
        assert_eq!(
            parse_sync("interval:5"),
            Ok(SyncPolicy::Interval(Duration::from_millis(5)))
        );
        assert!(parse_sync("sometimes").is_err());
    }
}
