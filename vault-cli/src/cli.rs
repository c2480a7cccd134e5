//! The command line: subcommands, their arguments, and the parsers of sizes and sync policies.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use vault_core::{IoMode, Lsn, SyncPolicy};

/// The largest record `vault demo` writes: the library's default `max_record_size`.
const MAX_DEMO_RECORD: u64 = 64 << 20;

/// vault: a write-ahead log on disk, from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "vault",
    version,
    about = "vault: a write-ahead log on disk, from the command line",
    long_about = "vault: a write-ahead log on disk, from the command line.\n\n\
        Start with `vault demo`. `write` appends lines of stdin as records; `cat`, `verify` and \
        `info` only read a log directory (no lock, no change), so they are safe while another \
        process writes it.\n\n\
        Exit codes: 0 success; 1 corruption or failed verification; 2 usage or I/O errors \
        (including a directory locked by another writer)."
)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write records from several threads, sync, reopen, read everything back and check every
    /// byte; print throughput, append latency, recovery time and the segments made.
    Demo(DemoArgs),
    /// Append each line of stdin (without its newline) as one record.
    #[command(
        long_about = "Append each line of stdin (without its `\\n`) as one record.\n\n\
        Lines are bytes, not necessarily UTF-8; a last line without `\\n` is still a record; \
        a `\\r` before the `\\n` stays in the record. At end of input the log is synced and \
        closed, so every record is durable when `vault write` exits 0."
    )]
    Write(WriteArgs),
    /// Print the records of a log, each followed by a newline (read-only).
    #[command(
        long_about = "Print the records of a log, each followed by `\\n` (read-only).\n\n\
        Records are written as raw bytes. The log is read without taking its lock and without \
        changing it. Printing stops at a torn tail (noted on stderr, exit 0) or at corruption \
        (the records before it are printed, then the error; exit 1)."
    )]
    Cat(CatArgs),
    /// Check every record of a log without changing it: exit 0 when whole or only torn at the
    /// tail, 1 on corruption, 2 on usage or I/O errors.
    Verify(DirArg),
    /// Show a log's segments, its totals, and what recovery would do (read-only).
    Info(DirArg),
}

/// Arguments of `vault demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Write the log here and keep it [default: a fresh temporary directory, removed at the
    /// end]. An existing log is appended to; only the new records are checked.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Records to write in total (split between the threads).
    #[arg(long, value_name = "N", default_value = "200000", value_parser = parse_records)]
    pub records: u64,
    /// Bytes per record: a 12-byte tag (thread, sequence) then bytes derived from it.
    #[arg(long, value_name = "BYTES", default_value = "256", value_parser = parse_record_size)]
    pub record_size: usize,
    /// Appending threads.
    #[arg(long, value_name = "T", default_value = "4", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// When records become durable: `always` (each append waits for its sync, shared by
    /// concurrent appenders; on a disk that honours flushes a sync takes tens to hundreds of
    /// µs, so the default workload can take many seconds), `manual` (one sync at the end) or
    /// `interval:MS` (a background sync every MS milliseconds).
    #[arg(long, value_name = "POLICY", default_value = "manual", value_parser = parse_sync)]
    pub sync: SyncPolicy,
    /// Segment capacity; small enough by default that the demo rotates segments. Sizes take
    /// an optional K, M or G suffix (powers of 1024).
    #[arg(long, value_name = "BYTES", default_value = "16M", value_parser = parse_size)]
    pub segment_size: u64,
    /// How segments reach the disk: `direct` (O_DIRECT writes from process memory, bypassing
    /// the page cache; an error on file systems without it, such as tmpfs), `mmap` (memory-
    /// mapped files, synced with msync) or `auto` (direct where the file system takes it).
    #[arg(long, value_name = "PATH", default_value = "auto", value_parser = parse_io)]
    pub io: IoMode,
}

/// Arguments of `vault write`.
#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// The log directory (created if missing).
    pub dir: PathBuf,
    /// When records become durable: `manual` (at end of input, and with `--ack` whenever
    /// `vault write` has used up the input available so far), `always` (each record before
    /// the next line is read) or `interval:MS` (a background sync every MS milliseconds).
    #[arg(long, value_name = "POLICY", default_value = "manual", value_parser = parse_sync)]
    pub sync: SyncPolicy,
    /// Segment capacity [default: the library's, 64 MiB]. Records larger than a segment get a
    /// segment of their own. Takes an optional K, M or G suffix (powers of 1024).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub segment_size: Option<u64>,
    /// Refuse lines longer than this [default: the library's, 64 MiB]. Takes an optional
    /// K, M or G suffix (powers of 1024).
    #[arg(long, value_name = "BYTES", value_parser = parse_max_record_size)]
    pub max_record_size: Option<usize>,
    /// Print `ack LSN` on stdout (flushed) for each record once it is durable, in LSN order.
    #[arg(long)]
    pub ack: bool,
    /// How segments reach the disk: `direct` (O_DIRECT writes from process memory, bypassing
    /// the page cache; an error on file systems without it, such as tmpfs), `mmap` (memory-
    /// mapped files, synced with msync) or `auto` (direct where the file system takes it).
    #[arg(long, value_name = "PATH", default_value = "auto", value_parser = parse_io)]
    pub io: IoMode,
}

/// Arguments of `vault cat`.
#[derive(Debug, Args)]
pub(crate) struct CatArgs {
    /// The log directory.
    pub dir: PathBuf,
    /// Start at this LSN (records before it are skipped; a log truncated at the front starts
    /// at its first LSN).
    #[arg(long, value_name = "LSN", default_value = "1")]
    pub from: Lsn,
    /// Print each record's LSN and a tab before it.
    #[arg(long)]
    pub lsn: bool,
}

/// A command that takes only the log directory.
#[derive(Debug, Args)]
pub(crate) struct DirArg {
    /// The log directory.
    pub dir: PathBuf,
}

/// Parses `always`, `manual` or `interval:MS`.
pub(crate) fn parse_sync(s: &str) -> Result<SyncPolicy, String> {
    match s {
        "always" => Ok(SyncPolicy::Always),
        "manual" => Ok(SyncPolicy::Manual),
        _ => {
            let ms = s.strip_prefix("interval:").ok_or_else(|| {
                format!("`{s}` is not a sync policy: use always, manual or interval:MS")
            })?;
            match ms.parse::<u64>() {
                Ok(0) | Err(_) => Err(format!(
                    "`{ms}` is not an interval: give a whole number of milliseconds above 0, \
                     as in interval:10"
                )),
                Ok(ms) => Ok(SyncPolicy::Interval(Duration::from_millis(ms))),
            }
        }
    }
}

/// Parses `--io`: `auto`, `mmap` or `direct`.
pub(crate) fn parse_io(s: &str) -> Result<IoMode, String> {
    s.parse()
}

/// How a sync policy is written on the command line.
pub(crate) fn sync_name(policy: SyncPolicy) -> String {
    match policy {
        SyncPolicy::Always => "always".into(),
        SyncPolicy::Manual => "manual".into(),
        SyncPolicy::Interval(d) => format!("interval:{}", d.as_millis()),
    }
}

/// Parses a byte count with an optional `K`, `M` or `G` suffix (also `KiB`, `MiB`, `GiB`;
/// powers of 1024). Underscores between digits are allowed.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        _ => {
            return Err(format!(
                "`{s}` is not a size: give bytes, optionally with K, M or G (as in 16M)"
            ))
        }
    };
    let n: u64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{s}` is not a size: give bytes, optionally with K, M or G"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

fn parse_records(s: &str) -> Result<u64, String> {
    match s.replace('_', "").parse::<u64>() {
        Ok(0) | Err(_) => Err(format!(
            "`{s}` is not a record count: give a number above 0"
        )),
        Ok(n) => Ok(n),
    }
}

fn parse_max_record_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    usize::try_from(n).map_err(|_| format!("{n} bytes does not fit this machine"))
}

fn parse_record_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if !(16..=MAX_DEMO_RECORD).contains(&n) {
        return Err(format!(
            "record size {n} is outside 16 B..=64 MiB (a record carries a 12-byte tag, and the \
             library refuses records above 64 MiB by default)"
        ));
    }
    usize::try_from(n).map_err(|_| format!("record size {n} does not fit this machine"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_and_underscores() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1_024"), Ok(1024));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn sync_policies_parse_and_print_back() {
        for s in ["always", "manual", "interval:25"] {
            assert_eq!(sync_name(parse_sync(s).unwrap()), s);
        }
        assert!(parse_sync("interval:0").is_err());
        assert!(parse_sync("interval:x").is_err());
        assert!(parse_sync("sometimes").is_err());
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
