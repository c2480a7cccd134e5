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
//! - Segments are tiny (`--segment-size`), so the log rotates hundreds of times.
//! - At the end the WAL is closed and **reopened**, and every remaining record is compared byte
//!   by byte with what its LSN was given to; nothing may be missing or extra.
//!
//! Any violation is printed (the first few in full) and makes the exit status 1.
#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use vault_core::{Options, Pool, PoolConfig, SyncPolicy, Wal};

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

/// Bytes of a record's header: appender (4), sequence number (8), length (4), little-endian.
const HEADER: usize = 16;

/// SplitMix64: a fast, well-mixed function of its input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn seed(appender: u32, seq: u64) -> u64 {
    mix((u64::from(appender) << 48) ^ seq)
}

fn record_len(appender: u32, seq: u64, (lo, hi): (usize, usize)) -> usize {
    let span = (hi - lo + 1) as u64;
    #[allow(clippy::cast_possible_truncation)] // < span, a usize
    let extra = (mix(seed(appender, seq)) % span) as usize;
    lo + extra
}

/// Writes record (`appender`, `seq`) of `len` bytes into `out` (cleared first).
fn fill_record(out: &mut Vec<u8>, appender: u32, seq: u64, len: usize) {
    out.clear();
    out.extend_from_slice(&appender.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    #[allow(clippy::cast_possible_truncation)] // record sizes are far below 4 GiB
    out.extend_from_slice(&(len as u32).to_le_bytes());
    let mut state = seed(appender, seq);
    while out.len() < len {
        state = mix(state);
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&state.to_le_bytes()[..take]);
    }
}

/// Checks a record's bytes against its own header; returns (appender, seq).
fn check_record(data: &[u8]) -> Result<(u32, u64), String> {
    if data.len() < HEADER {
        return Err(format!("{} bytes, shorter than the header", data.len()));
    }
    let appender = u32::from_le_bytes(data[0..4].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(data[4..12].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes")) as usize;
    if len != data.len() {
        return Err(format!(
            "header of appender {appender} seq {seq} says {len} bytes, record has {}",
            data.len()
        ));
    }
    let mut want = Vec::with_capacity(len);
    fill_record(&mut want, appender, seq, len);
    match want.iter().zip(data).position(|(a, b)| a != b) {
        None => Ok((appender, seq)),
        Some(i) => Err(format!(
            "appender {appender} seq {seq}: byte {i} is {:#04x}, expected {:#04x}",
            data[i], want[i]
        )),
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
}

/// What one appender did: its latencies, and the (LSN, seq) of its records that may still be
/// in the log, oldest first.
struct AppenderLog {
    latency_us: Histogram<u64>,
    lsns: VecDeque<(u64, u64)>,
    next_seq: u64,
}

fn appender(run: &Run, id: u32, pool: &Pool) -> AppenderLog {
    let mut log = AppenderLog {
        latency_us: Histogram::new(3).expect("3 significant figures is valid"),
        lsns: VecDeque::new(),
        next_seq: 0,
    };
    let sizes = run.args.record_size;
    let always = run.args.sync == SyncPolicy::Always;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    while !run.stop.load(Ordering::Relaxed) {
        let seq = log.next_seq;
        let choice = mix(seed(id, seq) ^ 0xA5A5) % 10;
        let start = Instant::now();
        let (first, n, bytes) = match choice {
            // append_batch of 2..=4 records.
            0 | 1 => {
                let n = 2 + (choice + seq) % 3;
                batch.resize_with(usize::try_from(n).expect("small"), Vec::new);
                let mut bytes = 0;
                for (i, rec) in batch.iter_mut().enumerate() {
                    let s = seq + i as u64;
                    fill_record(rec, id, s, record_len(id, s, sizes));
                    bytes += rec.len() as u64;
                }
                run.batches.fetch_add(1, Ordering::Relaxed);
                (run.wal.append_batch(&batch), n, bytes)
            }
            // must_write from a pooled buffer.
            2 | 3 => {
                let mut buf = pool.get();
                fill_record(&mut buf, id, seq, record_len(id, seq, sizes));
                let bytes = buf.len() as u64;
                run.must_writes.fetch_add(1, Ordering::Relaxed);
                let r = run.wal.must_write(buf).map_err(|e| e.error);
                (r, 1, bytes)
            }
            _ => {
                let mut rec = batch.pop().unwrap_or_default();
                fill_record(&mut rec, id, seq, record_len(id, seq, sizes));
                let bytes = rec.len() as u64;
                let r = run.wal.append(&rec);
                batch.push(rec);
                (r, 1, bytes)
            }
        };
        let took = start.elapsed();
        let _ = log
            .latency_us
            .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        let first = match first {
            Ok(lsn) => lsn,
            Err(e) => {
                run.violations
                    .report(|| format!("appender {id}: append of seq {seq} failed: {e}"));
                run.stop.store(true, Ordering::Relaxed);
                break;
            }
        };
        if always && run.wal.durable_lsn() < first + n - 1 {
            run.violations.report(|| {
                format!(
                    "appender {id}: LSN {} returned under SyncPolicy::Always before durable \
                     (durable {})",
                    first + n - 1,
                    run.wal.durable_lsn()
                )
            });
        }
        if let Some(&(prev, _)) = log.lsns.back() {
            if first <= prev {
                run.violations
                    .report(|| format!("appender {id}: got LSN {first} after LSN {prev}"));
            }
        }
        for i in 0..n {
            log.lsns.push_back((first + i, seq + i));
        }
        log.next_seq += n;
        run.appended.fetch_add(n, Ordering::Relaxed);
        run.bytes.fetch_add(bytes, Ordering::Relaxed);
        let gone = run.truncated_below.load(Ordering::Relaxed);
        while log.lsns.front().is_some_and(|&(lsn, _)| lsn < gone) {
            log.lsns.pop_front();
        }
    }
    log
}

fn reader(run: &Run, id: u32) {
    let mut next = run.wal.first_lsn();
    // Per appender, the last sequence number seen; cleared when truncation skipped records.
    let mut last_seq: HashMap<u32, u64> = HashMap::new();
    loop {
        let stopping = run.stop.load(Ordering::Relaxed);
        let mut seen = 0u64;
        for rec in run.wal.iter_from(next) {
            let lsn = rec.lsn();
            if lsn != next {
                // Only truncation may skip LSNs: the log must now start at or after this one.
                let first = run.wal.first_lsn();
                if lsn < next || first < lsn {
                    run.violations.report(|| {
                        format!(
                            "reader {id}: expected LSN {next}, got {lsn} (log starts at {first})"
                        )
                    });
                }
                last_seq.clear();
            }
            match check_record(rec.data()) {
                Ok((appender, seq)) => {
                    if let Some(prev) = last_seq.insert(appender, seq) {
                        if seq != prev + 1 {
                            run.violations.report(|| {
                                format!(
                                    "reader {id}: LSN {lsn} holds appender {appender} seq \
                                     {seq}, after its seq {prev}"
                                )
                            });
                        }
                    }
                }
                Err(e) => run
                    .violations
                    .report(|| format!("reader {id}: LSN {lsn}: {e}")),
            }
            next = lsn + 1;
            seen += 1;
        }
        run.read_verified.fetch_add(seen, Ordering::Relaxed);
        if stopping {
            return;
        }
        if seen == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn truncator(run: &Run) {
    let every = Duration::from_millis(run.args.truncate_every.max(1));
    let mut next = Instant::now() + every;
    while !run.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(20)));
            continue;
        }
        next = now + every;
        let upto = run.wal.last_lsn().saturating_sub(run.args.keep);
        match run.wal.truncate_front(upto) {
            Ok(removed) => {
                run.truncations.fetch_add(1, Ordering::Relaxed);
                run.segments_removed
                    .fetch_add(removed as u64, Ordering::Relaxed);
                let first = run.wal.first_lsn();
                if removed > 0 && first > upto {
                    run.violations.report(|| {
                        format!("truncate_front({upto}) removed LSNs up to {}", first - 1)
                    });
                }
                run.truncated_below.fetch_max(first, Ordering::Relaxed);
            }
            Err(e) => {
                run.violations
                    .report(|| format!("truncate_front({upto}) failed: {e}"));
                run.stop.store(true, Ordering::Relaxed);
            }
        }
    }
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
    format!(
        "{} s, {} appenders, {} readers, records {}..{} B, segments {} B, sync {sync}",
        args.duration,
        args.threads,
        args.readers,
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

#[allow(clippy::cast_precision_loss)] // figures for people
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
    let (wal, report) = Wal::open(&dir, options(&args))?;
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
        args,
    });

    let start = Instant::now();
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
    let elapsed = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let stats = run.wal.stats();
    let run = Arc::into_inner(run).ok_or("a thread still holds the WAL")?;
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
    let verified = verify_reopen(&dir, &args, &logs, stats.last_lsn, &violations)?;

    let mut latency = Histogram::<u64>::new(3).expect("valid");
    for log in &logs {
        latency.add(&log.latency_us).expect("same bounds");
    }
    let ms = |us: u64| {
        #[allow(clippy::cast_precision_loss)]
        let v = us as f64 / 1000.0;
        v
    };
    println!("vault-stress: {}", describe(&args));
    println!("  ran             {elapsed:.1} s");
    println!(
        "  appends         {appended} records ({:.0}/s), {batches} batches, {must_writes} must_write",
        per_sec(appended, elapsed)
    );
    #[allow(clippy::cast_precision_loss)]
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
    println!(
        "  latency         max {:.3} ms, p99.9 {:.3} ms, p99 {:.3} ms, p50 {:.3} ms",
        ms(latency.max()),
        ms(latency.value_at_quantile(0.999)),
        ms(latency.value_at_quantile(0.99)),
        ms(latency.value_at_quantile(0.5))
    );
    println!("  readers         {read_verified} records verified while tailing");
    println!("  reopen          {verified} records verified byte by byte");
    println!("  violations      {}", violations.total());
    Ok(violations.total())
}

/// Reopens the WAL and checks every record in it against what its LSN was given to.
fn verify_reopen(
    dir: &std::path::Path,
    args: &Args,
    logs: &[AppenderLog],
    last_lsn: u64,
    violations: &Violations,
) -> Result<u64, Box<dyn std::error::Error>> {
    let (wal, report) = Wal::open(dir, options(args))?;
    if let Some(t) = &report.torn_tail {
        violations.report(|| format!("reopen after close found a torn tail: {t:?}"));
    }
    if report.next_lsn != last_lsn + 1 {
        violations.report(|| {
            format!(
                "reopen: next LSN {}, but the last append got {last_lsn}",
                report.next_lsn
            )
        });
    }
    let first = report.first_lsn;
    // (LSN, appender, seq) of every record that should still be there, in LSN order.
    let mut expected: Vec<(u64, u32, u64)> = logs
        .iter()
        .zip(0u32..)
        .flat_map(|(log, id)| {
            log.lsns
                .iter()
                .filter(move |&&(lsn, _)| lsn >= first)
                .map(move |&(lsn, seq)| (lsn, id, seq))
        })
        .collect();
    expected.sort_unstable();
    let mut want = Vec::new();
    let mut expect = expected.iter().peekable();
    let mut verified = 0;
    for rec in wal.iter_from(first) {
        let lsn = rec.lsn();
        while let Some(&&(missing, id, seq)) = expect.peek() {
            if missing >= lsn {
                break;
            }
            violations
                .report(|| format!("reopen: LSN {missing} (appender {id} seq {seq}) is missing"));
            expect.next();
        }
        match expect.peek() {
            Some(&&(l, id, seq)) if l == lsn => {
                fill_record(&mut want, id, seq, record_len(id, seq, args.record_size));
                if rec.data() != want.as_slice() {
                    violations.report(|| match check_record(rec.data()) {
                        Ok((a, s)) => format!(
                            "reopen: LSN {lsn} holds appender {a} seq {s}, expected appender \
                             {id} seq {seq}"
                        ),
                        Err(e) => format!("reopen: LSN {lsn}: {e}"),
                    });
                }
                expect.next();
                verified += 1;
            }
            _ => violations.report(|| format!("reopen: LSN {lsn} was never appended")),
        }
    }
    for &(missing, id, seq) in expect {
        violations.report(|| format!("reopen: LSN {missing} (appender {id} seq {seq}) is missing"));
    }
    if verified != report.records {
        violations.report(|| {
            format!(
                "reopen: recovery reports {} records, {verified} verified",
                report.records
            )
        });
    }
    wal.close()?;
    Ok(verified)
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
