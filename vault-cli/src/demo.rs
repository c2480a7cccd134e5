//! `vault demo`: the whole life of a log in a few seconds, checked byte for byte.
//!
//! Several threads append records whose every byte follows from a tag (thread, sequence
//! number) at their start; each thread keeps the LSN `append` gave each of its records. Then
//! the log is synced and closed, reopened with `Wal::open` (timed: that is recovery), and
//! read back with `iter_from`: every LSN must follow the previous one, every record must be
//! the one `append` numbered so, and every byte must match. Any difference fails the demo
//! (exit 1).

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vault_core::{inspect, Lsn, Options, RecoveryReport, SyncPolicy, Wal, WalStats};

use crate::cli::{sync_name, DemoArgs};
use crate::failure::Failure;
use crate::human;
use crate::sync::thread;

/// Bytes of the tag at the start of each record: thread (u32) and sequence number (u64).
const TAG_LEN: usize = 12;
/// Records a thread appends between progress-bar updates.
const PROGRESS_STEP: u64 = 1024;
/// Segment files listed by name before the rest are only counted.
const LISTED_SEGMENTS: usize = 8;

/// Runs the demo in `--dir` or in a fresh temporary directory that is removed afterwards.
pub(crate) fn run(args: &DemoArgs) -> Result<(), Failure> {
    let (temp, dir) = if let Some(d) = &args.dir {
        (None, d.clone())
    } else {
        // In the system's temporary directory, never in the working directory.
        let t = tempfile::Builder::new()
            .prefix("vault-demo-")
            .tempdir()
            .map_err(|e| {
                Failure::trouble(format!(
                    "cannot create a temporary directory in {}: {e}: set TMPDIR to a writable \
                     directory, or pass --dir DIR",
                    std::env::temp_dir().display()
                ))
            })?;
        let d = t.path().to_path_buf();
        (Some(t), d)
    };
    let outcome = demo(&dir, args, temp.is_some());
    if let Some(t) = temp {
        match t.close() {
            Ok(()) => say(format_args!("(removed {})", dir.display())),
            Err(e) => eprintln!(
                "vault: could not remove the demo directory {}: {e}; delete it by hand",
                dir.display()
            ),
        }
    }
    outcome
}

/// What one appending thread did.
struct Share {
    /// Nanoseconds each `append` took.
    latency: Histogram<u64>,
    /// `lsns[seq]` is the LSN `append` returned for this thread's record `seq`.
    lsns: Vec<Lsn>,
}

fn demo(dir: &Path, args: &DemoArgs, temporary: bool) -> Result<(), Failure> {
    let options = Options::default()
        .with_sync(args.sync)
        .with_segment_size(args.segment_size)
        .with_io(args.io);
    print_plan(dir, args, temporary);

    let wal = Wal::open(dir, options.clone())?;
    let opened = wal.recovery().clone();
    say(format_args!(
        "io path: {} ({} on {})",
        opened.io_path,
        match args.io {
            vault_core::IoMode::Auto => "chosen by --io auto",
            vault_core::IoMode::Mmap | vault_core::IoMode::Direct => "as asked",
        },
        opened.file_system
    ));
    let start = wal.last_lsn() + 1;
    if opened.records > 0 {
        say(format_args!(
            "  existing log   {} records already there; the demo appends after LSN {}",
            human::count(opened.records),
            start - 1
        ));
    }
    let written = write_phase(&wal, args)?;
    wal.close()?;
    written.print(args);

    let reopen_began = Instant::now();
    let wal = Wal::open(dir, options)?;
    let report = wal.recovery().clone();
    let recovery = reopen_began.elapsed();
    let mut problems = print_recovery(&report, recovery, start + args.records);

    let read_began = Instant::now();
    let checked = check_records(&wal, start, &written.shares, args.record_size);
    let read = read_began.elapsed();
    wal.close()?;
    say(format_args!("read back"));
    match checked {
        Ok(()) => say(format_args!(
            "  iter_from      {} records from LSN {start}, every LSN and byte as written, in \
             {}: {} records/s, {:.1} MiB/s",
            human::count(args.records),
            human::duration(read),
            human::count(human::per_second(args.records, read)),
            human::mib_per_second(payload(args), read)
        )),
        Err(e) => {
            say(format_args!("  iter_from      MISMATCH: {e}"));
            problems.push(e);
        }
    }

    list_segments(dir)?;
    if problems.is_empty() {
        say(format_args!(
            "result: OK, {} records written, recovered and read back intact",
            human::count(args.records)
        ));
        Ok(())
    } else {
        say(format_args!("result: FAILED"));
        let keep = if temporary {
            "; rerun with --dir DIR to keep the log for a look with `vault verify` and `vault info`"
        } else {
            ""
        };
        Err(Failure::Damage(format!(
            "demo verification failed: {}{keep}",
            problems.join("; ")
        )))
    }
}

/// Payload bytes the demo writes.
fn payload(args: &DemoArgs) -> u64 {
    args.records * args.record_size as u64
}

fn print_plan(dir: &Path, args: &DemoArgs, temporary: bool) {
    say(format_args!(
        "vault demo: {} records of {} ({}) from {} threads, sync {}, segments of {}",
        human::count(args.records),
        human::bytes(args.record_size as u64),
        human::bytes(payload(args)),
        args.threads,
        sync_name(args.sync),
        human::bytes(args.segment_size)
    ));
    say(format_args!(
        "  log directory  {}{}",
        dir.display(),
        if temporary {
            " (temporary, removed at the end; pass --dir DIR to keep the log)"
        } else {
            " (kept)"
        }
    ));
    if args.sync == SyncPolicy::Always {
        say(format_args!(
            "  note           with --sync always each append returns only once synced (one \
             sync serves every waiting thread); on a disk that honours flushes that is tens to \
             hundreds of µs per sync, so large runs take a while"
        ));
    }
}

/// The write phase: what the threads did and how long it took.
struct Written {
    shares: Vec<Share>,
    /// From the first append to the last one returning.
    appended: Duration,
    /// The final `sync`.
    synced: Duration,
    stats: WalStats,
}

/// Appends the records from `args.threads` threads, then syncs.
fn write_phase(wal: &Wal, args: &DemoArgs) -> Result<Written, Failure> {
    let threads = usize::from(args.threads);
    let progress = progress_bar(args.records);
    let began = Instant::now();
    let shares: Vec<Result<Share, vault_core::Error>> = thread::scope(|s| {
        let handles: Vec<_> = (0..args.threads)
            .map(|t| {
                let progress = &progress;
                let count = share_of(args.records, threads, usize::from(t));
                s.spawn(move || append_share(wal, u32::from(t), count, args.record_size, progress))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let appended = began.elapsed();
    progress.finish_and_clear();
    let shares = shares.into_iter().collect::<Result<Vec<_>, _>>()?;
    let sync_began = Instant::now();
    wal.sync()?;
    Ok(Written {
        shares,
        appended,
        synced: sync_began.elapsed(),
        stats: wal.stats(),
    })
}

impl Written {
    fn print(&self, args: &DemoArgs) {
        let total = args.records;
        let durable = self.appended + self.synced;
        let mut latency = new_histogram();
        for s in &self.shares {
            latency
                .add(&s.latency)
                .expect("histograms of equal bounds add");
        }
        say(format_args!("write"));
        say(format_args!(
            "  appends        {} in {}: {} records/s, {:.1} MiB/s",
            human::count(total),
            human::duration(self.appended),
            human::count(human::per_second(total, self.appended)),
            human::mib_per_second(payload(args), self.appended)
        ));
        say(format_args!(
            "  final sync     {}; all durable after {}: {} records/s, {:.1} MiB/s",
            human::duration(self.synced),
            human::duration(durable),
            human::count(human::per_second(total, durable)),
            human::mib_per_second(payload(args), durable)
        ));
        say(format_args!(
            "  append latency p50 {}, p99 {}, p99.9 {}, max {} (each append, all threads)",
            human::nanos(latency.value_at_quantile(0.50)),
            human::nanos(latency.value_at_quantile(0.99)),
            human::nanos(latency.value_at_quantile(0.999)),
            human::nanos(latency.max())
        ));
        let st = &self.stats;
        say(format_args!(
            "  wal stats      {}, {} (the writer found no segment ready), {} prepared, {}",
            human::plural(st.rotations, "rotation"),
            human::plural(st.segment_waits, "segment wait"),
            human::plural(st.segments_prepared, "segment"),
            human::plural(st.flushes, "flush")
        ));
    }
}

/// Prints what reopening did; returns what is wrong with it after a clean close.
fn print_recovery(report: &RecoveryReport, took: Duration, next_lsn: Lsn) -> Vec<String> {
    let mut repairs = Vec::new();
    let mut problems = Vec::new();
    if let Some(t) = &report.torn_tail {
        repairs.push(format!(
            "cut a torn tail at {} byte {} ({} bytes)",
            file_name(&t.file),
            t.offset,
            t.bytes_dropped
        ));
        problems.push(format!(
            "recovery cut a torn tail after a clean close ({} at byte {}: {})",
            t.file.display(),
            t.offset,
            t.reason
        ));
    }
    if !report.removed_pre.is_empty() {
        repairs.push(format!("removed {} -pre file(s)", report.removed_pre.len()));
    }
    if !report.removed_segments.is_empty() {
        repairs.push(format!(
            "removed {} unused spare segment(s) past the end",
            report.removed_segments.len()
        ));
    }
    if report.next_lsn != next_lsn {
        problems.push(format!(
            "recovery found the log ending before LSN {}, expected {next_lsn}",
            report.next_lsn
        ));
    }
    say(format_args!("recover"));
    say(format_args!(
        "  Wal::open      {}: {} records in {}, LSN {}..={}; {}",
        human::duration(took),
        human::count(report.records),
        human::plural(report.segments as u64, "segment"),
        report.first_lsn,
        report.next_lsn.saturating_sub(1),
        if repairs.is_empty() {
            "nothing to repair".into()
        } else {
            repairs.join(", ")
        }
    ));
    problems
}

/// Latencies from 1 ns to an hour, to three significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
        .expect("constant histogram bounds are valid")
}

/// Appends `count` tagged records of `size` bytes, timing each append.
fn append_share(
    wal: &Wal,
    thread: u32,
    count: u64,
    size: usize,
    progress: &ProgressBar,
) -> Result<Share, vault_core::Error> {
    let mut latency = new_histogram();
    let mut lsns = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut record = vec![0u8; size];
    for seq in 0..count {
        fill_record(&mut record, thread, seq);
        let t = Instant::now();
        let lsn = wal.append(&record)?;
        latency.saturating_record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        lsns.push(lsn);
        if (seq + 1) % PROGRESS_STEP == 0 {
            progress.inc(PROGRESS_STEP);
        }
    }
    progress.inc(count % PROGRESS_STEP);
    Ok(Share { latency, lsns })
}

/// Reads every record from `start` on and checks it against what the threads wrote.
fn check_records(wal: &Wal, start: Lsn, shares: &[Share], size: usize) -> Result<(), String> {
    let total: u64 = shares.iter().map(|s| s.lsns.len() as u64).sum();
    let mut expected = start;
    let mut want = vec![0u8; size];
    for r in wal.iter_from(start) {
        let lsn = r.lsn();
        if lsn != expected {
            return Err(format!("expected LSN {expected} next, read LSN {lsn}"));
        }
        if r.len() != size {
            return Err(format!(
                "LSN {lsn} holds {} bytes, {size} were written",
                r.len()
            ));
        }
        let (thread, seq) = read_tag(&r);
        let numbered = usize::try_from(thread)
            .ok()
            .and_then(|t| shares.get(t))
            .and_then(|s| s.lsns.get(usize::try_from(seq).ok()?));
        if numbered != Some(&lsn) {
            return Err(format!(
                "LSN {lsn} holds the tag of thread {thread} record {seq}, which append \
                 numbered {}",
                numbered.map_or_else(|| "nothing (no such record)".into(), u64::to_string)
            ));
        }
        fill_record(&mut want, thread, seq);
        if *r != want[..] {
            let at = r.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
            return Err(format!(
                "LSN {lsn} byte {at} is {:#04x}, {:#04x} was written",
                r[at], want[at]
            ));
        }
        expected += 1;
    }
    let read = expected - start;
    if read != total {
        return Err(format!("read back {read} records, {total} were written"));
    }
    Ok(())
}

/// Prints the segment files the log is made of now.
fn list_segments(dir: &Path) -> Result<(), Failure> {
    let insp = inspect(dir)?;
    let segs = insp.segments();
    let spares = insp.past_tail().len();
    let capacities: Vec<u64> = segs.iter().map(|s| s.capacity).collect();
    let same = capacities.windows(2).all(|w| w[0] == w[1]);
    say(format_args!(
        "segments         {}{}{} in {}",
        human::plural(segs.len() as u64, "file"),
        match (same, capacities.first()) {
            (true, Some(c)) => format!(" of {} each", human::bytes(*c)),
            _ => String::new(),
        },
        if spares > 0 {
            format!(", plus {spares} prepared spare(s) the next open removes")
        } else {
            String::new()
        },
        dir.display()
    ));
    for s in segs.iter().take(LISTED_SEGMENTS) {
        say(format_args!(
            "  {}  LSN {}..={}  {} records, {} used",
            file_name(&s.path),
            s.first_lsn,
            s.last_lsn().unwrap_or(s.first_lsn.saturating_sub(1)),
            human::count(s.records),
            human::bytes(s.bytes_used)
        ));
    }
    if segs.len() > LISTED_SEGMENTS {
        say(format_args!(
            "  … and {} more (see `vault info DIR`)",
            segs.len() - LISTED_SEGMENTS
        ));
    }
    Ok(())
}

/// Records thread `t` of `threads` appends: an even split, the first ones taking the rest.
fn share_of(total: u64, threads: usize, t: usize) -> u64 {
    let n = threads as u64;
    total / n + u64::from((t as u64) < total % n)
}

/// Writes the tag (thread, seq) and then bytes that follow from it alone.
fn fill_record(buf: &mut [u8], thread: u32, seq: u64) {
    buf[..4].copy_from_slice(&thread.to_le_bytes());
    buf[4..TAG_LEN].copy_from_slice(&seq.to_le_bytes());
    // splitmix64: cheap, and every byte depends on the tag.
    let mut state = (u64::from(thread) << 48) ^ seq ^ 0x243f_6a88_85a3_08d3;
    for chunk in buf[TAG_LEN..].chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

fn read_tag(record: &[u8]) -> (u32, u64) {
    let mut t = [0u8; 4];
    let mut s = [0u8; 8];
    t.copy_from_slice(&record[..4]);
    s.copy_from_slice(&record[4..TAG_LEN]);
    (u32::from_le_bytes(t), u64::from_le_bytes(s))
}

/// A bar on stdout when it is a terminal; otherwise nothing is drawn.
fn progress_bar(total: u64) -> ProgressBar {
    if !io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
    if let Ok(style) = ProgressStyle::with_template(
        "  appending      [{bar:32}] {human_pos}/{human_len} records, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// One line of the report on stdout. A closed stdout does not stop the demo: its exit code
/// still tells whether the log came back intact.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let _ = out.write_fmt(line).and_then(|()| out.write_all(b"\n"));
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_total() {
        for (total, threads) in [(10, 3), (1, 4), (200_000, 4), (7, 7)] {
            let sum: u64 = (0..threads).map(|t| share_of(total, threads, t)).sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn records_carry_their_tag_and_differ_between_tags() {
        let mut a = vec![0u8; 100];
        let mut b = vec![0u8; 100];
        fill_record(&mut a, 3, 42);
        fill_record(&mut b, 3, 43);
        assert_eq!(read_tag(&a), (3, 42));
        assert_ne!(a[TAG_LEN..], b[TAG_LEN..]);
        let mut again = vec![0u8; 100];
        fill_record(&mut again, 3, 42);
        assert_eq!(a, again);
    }
}
