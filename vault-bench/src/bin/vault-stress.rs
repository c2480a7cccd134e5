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
    let extra = (mix(seed(appender, seq)) % span) as usize;
    lo + extra
}

/// Writes record (`appender`, `seq`) of `len` bytes into `out` (cleared first).
fn fill_record(out: &mut Vec<u8>, appender: u32, seq: u64, len: usize) {
    out.clear();
    out.extend_from_slice(&appender.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
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

fn appender(run: &Run, id: u32, pool: &Pool) -> AppenderLog {
    let mut log = AppenderLog {
        latency_us: Histogram::new(3).expect("3 significant figures is valid"),
        lsns: VecDeque::new(),
        next_seq: 0,
    };
    let sizes = run.args.record_size;
    let always = run.args.sync == SyncPolicy::Always;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    // `cuts_done` before the previous append: its LSNs may go back only if a cut began since
    // (one in progress then counts: it may discard what that append gets).
    let mut prev_epoch = 0;
    while !run.stop.load(Ordering::Relaxed) {
        let seq = log.next_seq;
        let epoch = run.cuts_done.load(Ordering::SeqCst);
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
        // A cut racing the append may discard its records (and lower `durable`).
        if always
            && run.wal.durable_lsn() < first + n - 1
            && run.cuts_begun.load(Ordering::SeqCst) == epoch
        {
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
            if first <= prev && run.cuts_begun.load(Ordering::SeqCst) == prev_epoch {
                run.violations
                    .report(|| format!("appender {id}: got LSN {first} after LSN {prev}"));
            }
        }
        for i in 0..n {
            log.lsns.push_back((first + i, seq + i));
        }
        log.next_seq += n;
        prev_epoch = epoch;
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
    // `cuts_done` at the previous pass: if a cut began since, the records from here on may
    // follow discarded ones, so each appender's sequence restarts.
    let mut done_before = run.cuts_done.load(Ordering::SeqCst);
    loop {
        let stopping = run.stop.load(Ordering::Relaxed);
        if run.cuts_begun.load(Ordering::SeqCst) != done_before {
            last_seq.clear();
        }
        done_before = run.cuts_done.load(Ordering::SeqCst);
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
                        // Cuts leave gaps (discarded records) in an appender's sequence.
                        if seq != prev + 1 && !(run.cuts_on() && seq > prev) {
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

/// A record the cutter read below the durable LSN: it must keep its bytes until a cut at or
/// below its LSN (or `truncate_front` removes it).
struct Witness {
    lsn: u64,
    data: Vec<u8>,
}

/// Cuts the log's end every `--cut-every` ms at a random LSN among the last `--cut-depth`
/// records (and, `--reset-percent` of the time, resets it past its end). Before each cut it
/// checks that the durable records it read earlier, below every cut since, are unchanged.
/// Returns the witnesses still standing, for the reopen to check.
fn cutter(run: &Run) -> Vec<Witness> {
    let every = Duration::from_millis(run.args.cut_every.max(1));
    let mut witnesses: Vec<Witness> = Vec::new();
    let mut next = Instant::now() + every;
    let mut rng = 0x5EED_u64;
    while !run.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(20)));
            continue;
        }
        next = now + every;
        check_witnesses(run, &mut witnesses);
        rng = mix(rng);
        let last = run.wal.last_lsn();
        let reset = rng % 100 < run.args.reset_percent;
        let (at, model) = if reset {
            (last + 1 + (rng >> 8) % 100, 0)
        } else {
            // One cut in eight goes ten times deeper.
            let depth = run.args.cut_depth.max(1) * if rng.is_multiple_of(8) { 10 } else { 1 };
            let at = last
                .saturating_sub((rng >> 8) % depth)
                .max(run.truncated_below.load(Ordering::Relaxed))
                .max(1);
            (at, at)
        };
        let k = {
            let mut m = run.cut_model.lock().expect("not poisoned");
            m.push(model);
            m.len() as u64
        };
        // The records on either side of the cut, as they are before it (only this thread
        // changes a published record, so they are stable until the call).
        let read = |lsn: u64| run.wal.read(lsn).map(|r| r.data().to_vec());
        let (below, above) = if reset {
            (None, None)
        } else {
            (read(at - 1), read(at))
        };
        run.cuts_begun.store(k, Ordering::SeqCst);
        let r = if reset {
            run.wal.reset(at)
        } else {
            run.wal.truncate_back(at)
        };
        run.cuts_done.store(k, Ordering::SeqCst);
        if let Err(e) = r {
            run.violations.report(|| {
                format!(
                    "{}({at}) failed: {e}",
                    if reset { "reset" } else { "truncate_back" }
                )
            });
            run.stop.store(true, Ordering::Relaxed);
            break;
        }
        if reset {
            run.resets.fetch_add(1, Ordering::Relaxed);
            run.truncated_below.fetch_max(at, Ordering::Relaxed);
            let (first, last_now) = (run.wal.first_lsn(), run.wal.last_lsn());
            if first != at || last_now + 1 < at {
                run.violations.report(|| {
                    format!("reset({at}): log now starts at {first}, ends at {last_now}")
                });
            }
            witnesses.clear();
        } else {
            // The record before the cut stays (unless `truncate_front` removed it since); the
            // one at the cut is gone (a record appended there since is another record, with
            // another header).
            if let Some(old) = &below {
                let now = read(at - 1);
                if now.as_ref() != Some(old) && run.wal.first_lsn() < at {
                    run.violations.report(|| {
                        format!(
                            "truncate_back({at}): LSN {} changed or vanished ({})",
                            at - 1,
                            now.as_deref()
                                .map_or_else(|| "gone".into(), describe_record)
                        )
                    });
                }
            }
            if let (Some(old), Some(now)) = (&above, read(at)) {
                if *old == now {
                    run.violations.report(|| {
                        format!(
                            "truncate_back({at}): the record at {at} is still there ({})",
                            describe_record(&now)
                        )
                    });
                }
            }
            witnesses.retain(|w| w.lsn < at);
        }
        // New witnesses: the last durable record and one at random below it.
        let durable = run.wal.durable_lsn();
        let first = run.wal.first_lsn();
        if durable >= first {
            for lsn in [durable, first + (rng >> 16) % (durable - first + 1)] {
                if let Some(rec) = run.wal.read(lsn) {
                    witnesses.push(Witness {
                        lsn,
                        data: rec.data().to_vec(),
                    });
                }
            }
        }
        if witnesses.len() > 256 {
            witnesses.drain(..witnesses.len() - 256);
        }
    }
    check_witnesses(run, &mut witnesses);
    witnesses
}

/// Every witness still in the log must hold the bytes it held when read.
fn check_witnesses(run: &Run, witnesses: &mut Vec<Witness>) {
    witnesses.retain(|w| {
        match run.wal.read(w.lsn) {
            Some(rec) => {
                if rec.data() != w.data.as_slice() {
                    run.violations.report(|| {
                        format!(
                            "durable LSN {} changed without a cut at or below it: {}",
                            w.lsn,
                            describe_record(rec.data())
                        )
                    });
                }
                run.witnesses_checked.fetch_add(1, Ordering::Relaxed);
                true
            }
            // Only `truncate_front` may remove it.
            None => {
                let first = run.wal.first_lsn();
                if first <= w.lsn {
                    run.violations.report(|| {
                        format!("durable LSN {} vanished (the log starts at {first})", w.lsn)
                    });
                }
                false
            }
        }
    });
}

fn describe_record(data: &[u8]) -> String {
    match check_record(data) {
        Ok((a, s)) => format!("now appender {a} seq {s}"),
        Err(e) => e,
    }
}

/// A tail-following reader: `Wal::follow` + `next_timeout`. Every record must be the next
/// LSN and well formed; `Error::Truncated` only when a truncation removed its position or a
/// cut discarded a record it returned (it then follows again from there); `Error::Closed` at
/// the end, and nothing after it.
/// Follows until the run is quiesced (every other thread stopped) and it has caught up;
/// returns the follower for [`drain`].
fn follower(run: &Run, id: u32) -> vault_core::Follower {
    let wait = Duration::from_millis(20);
    // `cuts_done` just before the follower was made: cuts numbered above may be reported.
    let mut made_after = run.cuts_done.load(Ordering::SeqCst);
    let mut f = run.wal.follow(run.wal.first_lsn());
    let mut start = f.position();
    let mut last_seq: HashMap<u32, u64> = HashMap::new();
    // `cuts_begun` after the previous call returned.
    let mut begun_after = run.cuts_begun.load(Ordering::SeqCst);
    let mut seen = 0u64;
    let mut since_pause = 0u64;
    loop {
        if run.cuts_on() && since_pause >= 2000 && run.wal.last_lsn() < f.position() + 64 {
            // Near the tail: stand still until a whole cut has happened between two calls, so
            // that the `required` check below has something to check.
            since_pause = 0;
            let deadline = Instant::now() + Duration::from_millis(300);
            while run.cuts_done.load(Ordering::SeqCst) <= begun_after
                && Instant::now() < deadline
                && !run.stop.load(Ordering::Relaxed)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let quiesced = run.quiesced.load(Ordering::SeqCst);
        let pos = f.position();
        let done_before = run.cuts_done.load(Ordering::SeqCst);
        // Cuts that began after the previous call and ended before this one: the position
        // stood still, so one that discarded a returned record must be reported now.
        let required = start < pos && {
            let m = run.cut_model.lock().expect("not poisoned");
            (begun_after + 1..=done_before).any(|k| m[usize::try_from(k - 1).expect("small")] < pos)
        };
        let r = f.next_timeout(wait);
        begun_after = run.cuts_begun.load(Ordering::SeqCst);
        match r {
            Ok(Some(rec)) => {
                if required {
                    run.violations.report(|| {
                        format!(
                            "follower {id}: returned LSN {} after a cut discarded records it \
                             had returned ({start}..{pos})",
                            rec.lsn()
                        )
                    });
                }
                let lsn = rec.lsn();
                if lsn != pos {
                    run.violations
                        .report(|| format!("follower {id}: expected LSN {pos}, got {lsn}"));
                }
                match check_record(rec.data()) {
                    Ok((appender, seq)) => {
                        if let Some(prev) = last_seq.insert(appender, seq) {
                            let ok = seq == prev + 1 || (run.cuts_on() && seq > prev);
                            if !ok {
                                run.violations.report(|| {
                                    format!(
                                        "follower {id}: LSN {lsn} holds appender {appender} \
                                         seq {seq}, after its seq {prev}"
                                    )
                                });
                            }
                        }
                    }
                    Err(e) => run
                        .violations
                        .report(|| format!("follower {id}: LSN {lsn}: {e}")),
                }
                seen += 1;
                since_pause += 1;
            }
            Ok(None) if quiesced && !required => break,
            Ok(None) => {
                if required {
                    run.violations.report(|| {
                        format!(
                            "follower {id}: no Truncated at {pos} after a cut discarded \
                             records it had returned ({start}..{pos})"
                        )
                    });
                }
            }
            Err(Error::Truncated {
                lsn,
                first_lsn,
                next_lsn,
            }) => {
                run.follow_truncated.fetch_add(1, Ordering::Relaxed);
                if required {
                    run.follow_truncated_required
                        .fetch_add(1, Ordering::Relaxed);
                }
                let justified = first_lsn > pos || {
                    let m = run.cut_model.lock().expect("not poisoned");
                    start < pos
                        && m[usize::try_from(made_after).expect("small")..]
                            .iter()
                            .any(|&c| c < pos)
                };
                if lsn != pos || !justified {
                    run.violations.report(|| {
                        format!(
                            "follower {id}: Truncated at {lsn} (position {pos}, returned \
                             {start}..{pos}, log {first_lsn}..{next_lsn}) with no truncation \
                             or cut to explain it"
                        )
                    });
                }
                made_after = run.cuts_done.load(Ordering::SeqCst);
                let from = pos.min(run.wal.last_lsn() + 1).max(run.wal.first_lsn());
                f = run.wal.follow(from);
                start = f.position();
                begun_after = run.cuts_begun.load(Ordering::SeqCst);
                last_seq.clear();
            }
            Err(e) => {
                run.violations
                    .report(|| format!("follower {id}: unexpected error before close: {e}"));
                break;
            }
        }
    }
    run.followed.fetch_add(seen, Ordering::Relaxed);
    f
}

/// After the run let go of the WAL: read what is left, in order, until `Error::Closed`
/// (which must come once `close` ran, and again on every later call). Returns violations.
fn drain(mut f: vault_core::Follower, id: u32) -> Vec<String> {
    let mut bad = Vec::new();
    loop {
        let pos = f.position();
        match f.next_timeout(Duration::from_secs(30)) {
            Ok(Some(rec)) => {
                if rec.lsn() != pos {
                    bad.push(format!(
                        "follower {id}: expected LSN {pos}, got {}",
                        rec.lsn()
                    ));
                }
                if let Err(e) = check_record(rec.data()) {
                    bad.push(format!("follower {id}: LSN {}: {e}", rec.lsn()));
                }
            }
            Ok(None) => {
                bad.push(format!("follower {id}: no Closed 30 s after the run ended"));
                return bad;
            }
            Err(Error::Closed) => {
                if !matches!(f.try_next(), Err(Error::Closed)) {
                    bad.push(format!("follower {id}: a call after Closed did not fail"));
                }
                return bad;
            }
            Err(e) => {
                bad.push(format!("follower {id}: {e} after the run ended"));
                return bad;
            }
        }
    }
}

/// What the `on_durable` thread found; shared with its callbacks (which must not hold the WAL).
#[derive(Default)]
struct Callbacks {
    registered: AtomicU64,
    ok: AtomicU64,
    err: AtomicU64,
    violations: Violations,
}

/// Registers `on_durable` callbacks for appended LSNs (and now and then one not appended yet)
/// until the run stops; returns each callback's call count, checked after `close`.
fn registrar(run: &Run, cbs: &Arc<Callbacks>) -> Vec<(u64, Arc<AtomicU8>)> {
    let mut calls = Vec::new();
    let mut i = 0u64;
    while !run.stop.load(Ordering::Relaxed) {
        i += 1;
        let lsn = run.wal.last_lsn() + u64::from(i.is_multiple_of(16));
        let count = Arc::new(AtomicU8::new(0));
        let (c, cb) = (Arc::clone(&count), Arc::clone(cbs));
        run.wal.on_durable(lsn, move |r| {
            if c.fetch_add(1, Ordering::SeqCst) != 0 {
                cb.violations
                    .report(|| format!("on_durable({lsn}): called more than once"));
            }
            match r {
                Ok(d) if d >= lsn => {
                    cb.ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok(d) => cb
                    .violations
                    .report(|| format!("on_durable({lsn}): called with Ok({d}), below it")),
                Err(Error::Closed) => {
                    cb.err.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => cb
                    .violations
                    .report(|| format!("on_durable({lsn}): unexpected error {e}")),
            }
        });
        cbs.registered.fetch_add(1, Ordering::Relaxed);
        calls.push((lsn, count));
        std::thread::sleep(Duration::from_micros(500));
    }
    calls
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

/// Reopens the WAL and checks it: it must show exactly what the WAL showed before close
/// (`shown`), every record well formed and given to its LSN by an append, each appender's
/// records in sequence order, the witnesses unchanged; without cuts, also every record still
/// expected present.
fn verify_reopen(
    dir: &std::path::Path,
    args: &Args,
    logs: &[AppenderLog],
    last_lsn: u64,
    shown: &[(u64, Vec<u8>)],
    witnesses: &[Witness],
    violations: &Violations,
) -> Result<u64, Box<dyn std::error::Error>> {
    let (wal, report) = Wal::open(dir, options(args))?;
    if let Some(t) = &report.torn_tail {
        violations.report(|| format!("reopen after close found a torn tail: {t:?}"));
    }
    if report.next_lsn != last_lsn + 1 {
        violations.report(|| {
            format!(
                "reopen: next LSN {}, but the WAL's last LSN was {last_lsn}",
                report.next_lsn
            )
        });
    }
    let first = report.first_lsn;
    // Byte for byte what the WAL showed before close.
    let mut n = 0usize;
    for rec in wal.iter_from(first) {
        match shown.get(n) {
            Some((lsn, data)) if *lsn == rec.lsn() && data.as_slice() == rec.data() => {}
            Some((lsn, _)) => violations.report(|| {
                format!(
                    "reopen: record {n} is LSN {} ({}), before close it was LSN {lsn}",
                    rec.lsn(),
                    describe_record(rec.data())
                )
            }),
            None => violations.report(|| format!("reopen: extra LSN {}", rec.lsn())),
        }
        n += 1;
    }
    if n != shown.len() {
        violations.report(|| format!("reopen: {n} records, before close {}", shown.len()));
    }
    for w in witnesses.iter().filter(|w| w.lsn >= first) {
        if wal
            .read(w.lsn)
            .is_none_or(|r| r.data() != w.data.as_slice())
        {
            violations.report(|| format!("reopen: witness LSN {} changed or missing", w.lsn));
        }
    }
    // Every (LSN, appender, seq) an append returned, still in range.
    let given: HashSet<(u64, u32, u64)> = logs
        .iter()
        .zip(0u32..)
        .flat_map(|(log, id)| {
            log.lsns
                .iter()
                .filter(move |&&(lsn, _)| lsn >= first)
                .map(move |&(lsn, seq)| (lsn, id, seq))
        })
        .collect();
    let mut last_seq: HashMap<u32, u64> = HashMap::new();
    let mut verified = 0;
    let mut expect_lsn = first;
    for rec in wal.iter_from(first) {
        let lsn = rec.lsn();
        if lsn != expect_lsn {
            violations.report(|| format!("reopen: LSN {lsn} follows {}", expect_lsn - 1));
        }
        expect_lsn = lsn + 1;
        match check_record(rec.data()) {
            Ok((id, seq)) => {
                if !given.contains(&(lsn, id, seq)) {
                    violations.report(|| {
                        format!(
                            "reopen: LSN {lsn} holds appender {id} seq {seq}, never given that LSN"
                        )
                    });
                }
                if let Some(prev) = last_seq.insert(id, seq) {
                    if seq <= prev {
                        violations.report(|| {
                            format!("reopen: LSN {lsn} holds appender {id} seq {seq} after its seq {prev}")
                        });
                    }
                }
                verified += 1;
            }
            Err(e) => violations.report(|| format!("reopen: LSN {lsn}: {e}")),
        }
    }
    if args.cut_every == 0 {
        // Without cuts every record given an LSN in range is there.
        let present: HashSet<(u64, u32, u64)> = wal
            .iter_from(first)
            .filter_map(|r| check_record(r.data()).ok().map(|(a, s)| (r.lsn(), a, s)))
            .collect();
        let mut missing: Vec<_> = given.difference(&present).collect();
        missing.sort_unstable();
        for (lsn, id, seq) in missing {
            violations.report(|| format!("reopen: LSN {lsn} (appender {id} seq {seq}) is missing"));
        }
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
