//! `vault write DIR`: each line of stdin becomes one record.
//!
//! # When records become durable, and when they are acknowledged
//!
//! An `ack LSN` line is printed only after a sync that covers the record returned, so a
//! reader of the acks may rely on them surviving a crash or power loss:
//!
//! - `always`: the library syncs inside each `append`; its ack follows at once.
//! - `manual` with `--ack`: when the input read so far is used up, that is just before
//!   `vault write` would wait for more, it syncs once for every record appended since the last
//!   sync and acknowledges them. A steady stream thus gets group commit for free (one sync per
//!   burst of input), and a person typing lines sees each acknowledged as they press Enter.
//!   Without `--ack`, `manual` syncs only at end of input: nobody is told anything earlier.
//! - `interval:MS`: the library's background thread syncs every MS ms; a small thread here
//!   watches `durable_lsn` and acknowledges what it covers.
//!
//! At end of input every record is synced and acknowledged, then the log is closed.

use std::io::{self, BufRead, BufReader, Write};
use std::time::Duration;

use vault_core::{Lsn, Options, SyncPolicy, Wal};

use crate::cli::WriteArgs;
use crate::failure::Failure;
use crate::inspection::not_a_directory;
use crate::sync::{lock, mpsc, thread, AtomicU64, Mutex, Ordering};

/// Reads stdin in large chunks: one pipe read can then carry many records between syncs.
const INPUT_BUFFER: usize = 1 << 20;

/// Appends the lines of stdin to the log in `args.dir`.
pub(crate) fn run(args: &WriteArgs) -> Result<(), Failure> {
    if args.dir.metadata().is_ok_and(|m| !m.is_dir()) {
        return Err(not_a_directory(&args.dir));
    }
    let mut options = Options::default().with_sync(args.sync).with_io(args.io);
    if let Some(size) = args.segment_size {
        options = options.with_segment_size(size);
    }
    if let Some(max) = args.max_record_size {
        options = options.with_max_record_size(max);
    }
    let wal = Wal::open(&args.dir, options)?;
    let report = wal.recovery().clone();
    if let Some(t) = &report.torn_tail {
        eprintln!(
            "vault: recovered {}: cut a torn tail in {} at byte {} ({} bytes that no sync had \
             completed: {}); the log continues after LSN {}",
            args.dir.display(),
            t.file.display(),
            t.offset,
            t.bytes_dropped,
            t.reason,
            report.next_lsn.saturating_sub(1)
        );
    }
    let first = wal.last_lsn() + 1;
    let acks = Mutex::new(Acks {
        next: first,
        enabled: args.ack,
        error: None,
    });
    let appended = AtomicU64::new(first - 1);
    let outcome = match args.sync {
        SyncPolicy::Interval(every) if args.ack => {
            let (stop, stopped) = mpsc::channel::<()>();
            thread::scope(|s| {
                let (wal, acks, appended) = (&wal, &acks, &appended);
                s.spawn(move || {
                    let poll = (every / 2).max(Duration::from_millis(1));
                    loop {
                        let done = !matches!(
                            stopped.recv_timeout(poll),
                            Err(mpsc::RecvTimeoutError::Timeout)
                        );
                        let durable = wal.durable_lsn().min(appended.load(Ordering::Acquire));
                        lock(acks).through(durable);
                        if done {
                            return;
                        }
                    }
                });
                let outcome = append_lines(wal, args, acks, appended);
                drop(stop);
                outcome
            })
        }
        _ => append_lines(&wal, args, &acks, &appended),
    };
    // Whatever stopped the input, make what was appended durable, say so, and close cleanly.
    let synced = wal.sync();
    if synced.is_ok() {
        lock(&acks).through(wal.durable_lsn());
    }
    let last = wal.last_lsn();
    let closed = wal.close();
    match (outcome, synced, closed) {
        (Err(failure), Ok(()), _) if last >= first => Err(failure.with_note(&format!(
            "the {} records before it are durable (LSN {first}..={last})",
            last - first + 1
        ))),
        (Err(failure), _, _) => Err(failure),
        (Ok(()), Err(e), _) | (Ok(()), Ok(()), Err(e)) => Err(e.into()),
        (Ok(()), Ok(()), Ok(())) => match lock(&acks).error.take() {
            Some(e) => Err(Failure::trouble(format!(
                "every record was written and synced, but acknowledgements stopped: cannot \
                 write to stdout: {e}"
            ))),
            None => Ok(()),
        },
    }
}

/// The append loop: one record per line until end of input or the first error.
fn append_lines(
    wal: &Wal,
    args: &WriteArgs,
    acks: &Mutex<Acks>,
    appended: &AtomicU64,
) -> Result<(), Failure> {
    let stdin = io::stdin();
    let mut input = BufReader::with_capacity(INPUT_BUFFER, stdin.lock());
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line).map_err(|e| {
            Failure::trouble(format!("cannot read stdin after line {line_no}: {e}"))
        })?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let lsn = wal
            .append(&line)
            .map_err(|e| Failure::from(e).with_note_before(&format!("line {line_no} of stdin")))?;
        appended.store(lsn, Ordering::Release);
        if !args.ack {
            continue;
        }
        match args.sync {
            SyncPolicy::Always => lock(acks).through(lsn),
            // Input used up: the next read may wait, so make everything so far durable now.
            SyncPolicy::Manual if input.buffer().is_empty() => {
                wal.sync()?;
                lock(acks).through(lsn);
            }
            _ => {}
        }
    }
}

/// The `ack LSN` lines still owed.
#[derive(Debug)]
struct Acks {
    /// The next LSN to acknowledge: the first this process appended, then one past the last
    /// acknowledged. Records of earlier runs are never acknowledged.
    next: Lsn,
    enabled: bool,
    /// Why acknowledging stopped, if stdout failed (a closed pipe is not reported).
    error: Option<io::Error>,
}

impl Acks {
    /// Acknowledges every record up to `durable`, in order, and flushes.
    fn through(&mut self, durable: Lsn) {
        if !self.enabled || durable < self.next {
            return;
        }
        let mut out = io::stdout().lock();
        let mut written = Ok(());
        for lsn in self.next..=durable {
            written = writeln!(out, "ack {lsn}");
            if written.is_err() {
                break;
            }
        }
        if let Err(e) = written.and_then(|()| out.flush()) {
            // Nobody is reading the acks any more; the records are still written.
            self.enabled = false;
            if e.kind() != io::ErrorKind::BrokenPipe {
                self.error = Some(e);
            }
        }
        self.next = durable + 1;
    }
}
