//! A log shipper on vault: records spill to a bounded log faster than a simulated network sink
//! drains them, a consumer follows the log and ships what is durable, and the log is truncated
//! behind what the sink acknowledged. Midway the writing process is killed with SIGKILL; a
//! restart resumes from the sink's acknowledged position. At the end the example checks that
//! every record acknowledged durable reached the sink exactly once, and exits non-zero if not.
//!
//! ```text
//! cargo run --release -p vault-core --example shipper [-- --dir DIR] [--seconds S]
//! ```
//!
//! The example runs itself twice as a child process (`SHIPPER_CHILD` set); the parent kills the
//! first child after `S` seconds (default 5), runs the second one for `S` seconds of producing
//! and a drain, then checks the sink. It takes about `2 S + 3` seconds.
//!
//! In each child:
//!
//! - **Producer** (a tokio task): appends records under `SyncPolicy::Manual` (the append
//!   returns at once), about twice as fast as the sink drains them, and acknowledges each batch
//!   to its client once `Wal::durable` resolves (here: it writes the acknowledged LSN to
//!   `producer.acked`, which the parent reads). At the disk budget (`BudgetPolicy::Fail`) the
//!   append fails with `BudgetExhausted`; the producer awaits `Wal::room` and goes on, so it is
//!   held to the sink's pace without blocking a runtime thread.
//! - **Consumer** (a blocking task): follows the log with `Wal::follow`, gathers up to 64 KiB,
//!   waits until that is durable (it ships nothing the log could still lose: a record shipped
//!   and then lost to a crash would come back under the same LSN with other contents), hands
//!   it to the sink, and calls `truncate_front` behind what the sink acknowledged.
//! - **Sink**: a simulated network peer, 4 MB/s, that writes each batch to `sink.dat` with a
//!   checksum and `fdatasync`s before it acknowledges. The resume position lives in the sink,
//!   atomically with the data: it is the LSN of the last whole batch there. A position kept by
//!   the consumer in a file of its own (written by rename after the sink's ack) would leave a
//!   window, between the sink's ack and that rename, where a kill makes the restart ship the
//!   batch again; asking the sink leaves none. So exactly once is by construction: the restart
//!   follows the log from the sink's last LSN + 1.
//! - **Figures**: a line per second of records/s in and out, the backlog, and the log's bytes
//!   on disk against the budget.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vault_core::{BudgetPolicy, Error, Options, SyncPolicy, Wal};

/// Segment size, and the bound on the log's files.
const SEGMENT: u64 = 1 << 20;
const BUDGET: u64 = 8 << 20;
/// The simulated network's rate, and the producer's (twice that).
const SINK_BYTES_PER_SEC: f64 = 4e6;
const PRODUCER_BYTES_PER_SEC: f64 = 8e6;
/// Records per acknowledged producer batch, and bytes per shipped batch.
const PRODUCER_BATCH: u64 = 64;
const SHIP_BATCH: usize = 64 << 10;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let seconds: u64 = arg("--seconds").map_or(5, |s| s.parse().expect("--seconds N"));
    if let Ok(run) = std::env::var("SHIPPER_CHILD") {
        let dir = PathBuf::from(std::env::var("SHIPPER_DIR").expect("SHIPPER_DIR"));
        let produce: u64 = std::env::var("SHIPPER_PRODUCE_SECS")
            .expect("SHIPPER_PRODUCE_SECS")
            .parse()
            .expect("seconds");
        return match child(&run, &dir, Duration::from_secs(produce)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                println!("[run {run}] FAILED: {e}");
                ExitCode::from(2)
            }
        };
    }
    let tmp;
    let dir = match arg("--dir") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("temp dir");
            tmp.path().to_path_buf()
        }
    };
    match parent(&dir, seconds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("shipper: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

type Outcome<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

// ---- The parent: run, kill, restart, check ---------------------------------------------------

fn parent(dir: &Path, seconds: u64) -> Outcome {
    std::fs::create_dir_all(dir)?;
    let spawn = |run: &str, produce: u64| {
        Command::new(std::env::current_exe()?)
            .env("SHIPPER_CHILD", run)
            .env("SHIPPER_DIR", dir)
            .env("SHIPPER_PRODUCE_SECS", produce.to_string())
            .spawn()
    };
    println!(
        "shipper: log in {}, {} MiB segments, disk budget {} MiB, sink {:.0} MB/s, producer \
         {:.0} MB/s",
        dir.display(),
        SEGMENT >> 20,
        BUDGET >> 20,
        SINK_BYTES_PER_SEC / 1e6,
        PRODUCER_BYTES_PER_SEC / 1e6
    );
    println!("shipper: run 1 produces until it is killed with SIGKILL after {seconds} s");
    let mut first = spawn("1", 3600)?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        if let Some(status) = first.try_wait()? {
            return Err(format!("run 1 ended by itself ({status}) before the kill").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill()?; // SIGKILL
    let status = first.wait()?;
    let acked_at_kill = read_acked(dir)?;
    let sink_at_kill = Sink::open(&dir.join("sink.dat"))?.last_lsn;
    println!(
        "shipper: KILLED run 1 ({status}): the producer had acknowledged LSNs 1..={acked_at_kill} \
         as durable; the sink holds 1..={sink_at_kill}; {} acknowledged records were still to \
         ship",
        acked_at_kill.saturating_sub(sink_at_kill)
    );
    if sink_at_kill >= acked_at_kill {
        return Err("the kill found no backlog to resume; nothing was shown".into());
    }
    println!("shipper: run 2 restarts, resumes, produces for {seconds} s more and drains");
    let status = spawn("2", seconds)?.wait()?;
    if !status.success() {
        return Err(format!("run 2 failed ({status})").into());
    }
    let acked = read_acked(dir)?.max(acked_at_kill);
    let checked = check_sink(&dir.join("sink.dat"))?;
    println!(
        "shipper: sink check: {} records, LSNs 1..={} each exactly once and intact ({} MiB); \
         the producer acknowledged 1..={acked_at_kill} before the kill and 1..={acked} in all",
        checked.records,
        checked.last,
        checked.bytes >> 20
    );
    if checked.last < acked {
        return Err(format!(
            "LOSS: the producer acknowledged LSN {acked} as durable, the sink ends at {}",
            checked.last
        )
        .into());
    }
    println!("shipper: OK: nothing acknowledged was lost, nothing was shipped twice");
    Ok(())
}

fn read_acked(dir: &Path) -> Outcome<u64> {
    let mut b = [0u8; 8];
    std::fs::File::open(dir.join("producer.acked"))?.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

struct SinkCheck {
    records: u64,
    last: u64,
    bytes: u64,
}

/// Reads the sink back: the `k`-th record it received must be LSN `k` with that LSN's
/// contents. A duplicate, a gap or a damaged record fails.
fn check_sink(path: &Path) -> Outcome<SinkCheck> {
    let sink = Sink::open(path)?;
    let mut out = SinkCheck {
        records: 0,
        last: 0,
        bytes: 0,
    };
    let data = std::fs::read(path)?;
    for batch in batches(&data) {
        let (_, records) = batch.ok_or("a damaged batch in the sink")?;
        for payload in records {
            let lsn = u64::from_le_bytes(payload[..8].try_into()?);
            if lsn != out.last + 1 {
                return Err(format!(
                    "the sink's record {} is LSN {lsn}: {}",
                    out.records + 1,
                    if lsn <= out.last {
                        "a DUPLICATE"
                    } else {
                        "a GAP (records lost)"
                    }
                )
                .into());
            }
            if payload != record(lsn) {
                return Err(format!("the sink's LSN {lsn} has the wrong contents").into());
            }
            out.last = lsn;
            out.records += 1;
            out.bytes += payload.len() as u64;
        }
    }
    if out.last != sink.last_lsn {
        return Err("the sink's records and its position disagree".into());
    }
    Ok(out)
}

// ---- A child: produce, follow, ship, truncate ------------------------------------------------

/// Figures shared by the tasks and the line printer.
#[derive(Default)]
struct Figures {
    produced: AtomicU64,
    shipped: AtomicU64,
    acked: AtomicU64,
    /// The producer's last LSN, once it has stopped (0 before).
    final_lsn: AtomicU64,
    done: AtomicBool,
}

fn child(run: &str, dir: &Path, produce_for: Duration) -> Outcome {
    let opts = Options::default()
        .with_segment_size(SEGMENT)
        .with_spare_segments(1)
        .with_sync(SyncPolicy::Manual)
        .with_disk_budget(BUDGET, BudgetPolicy::Fail);
    let wal = Wal::open(dir.join("log"), opts)?;
    let report = wal.recovery().clone();
    let wal = Arc::new(wal);
    let sink = Sink::open(&dir.join("sink.dat"))?;
    let resume = sink.last_lsn + 1;
    let first = wal.first_lsn();
    println!(
        "[run {run}] opened the log ({:?} I/O): LSNs {}..{} ({} records; torn tail cut: {}); the \
         sink acknowledged 1..={}: following from LSN {resume}",
        report.io_path,
        report.first_lsn,
        report.next_lsn,
        report.records,
        report.torn_tail.is_some(),
        sink.last_lsn
    );
    if first > resume || resume > wal.last_lsn() + 1 {
        return Err(format!(
            "the log ({first}..={}) does not hold the sink's resume position {resume}",
            wal.last_lsn()
        )
        .into());
    }
    let acked_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("producer.acked"))?;
    let figures = Arc::new(Figures::default());
    figures.produced.store(wal.last_lsn(), Ordering::Relaxed);
    figures.shipped.store(sink.last_lsn, Ordering::Relaxed);
    figures.acked.store(wal.durable_lsn(), Ordering::Relaxed);
    acked_file.write_at(&wal.durable_lsn().to_le_bytes(), 0)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let producer = tokio::spawn(produce(
            Arc::clone(&wal),
            Arc::clone(&figures),
            acked_file,
            produce_for,
        ));
        let consumer = {
            let (wal, figures) = (Arc::clone(&wal), Arc::clone(&figures));
            tokio::task::spawn_blocking(move || consume(&wal, &figures, sink, resume))
        };
        let printer = tokio::spawn(print_figures(
            run.to_string(),
            Arc::clone(&wal),
            Arc::clone(&figures),
        ));
        producer.await??;
        consumer.await??;
        figures.done.store(true, Ordering::Relaxed);
        printer.await?;
        Outcome::Ok(())
    })?;
    let stats = wal.stats();
    println!(
        "[run {run}] done: produced up to LSN {}, shipped all of it; the budget refused {} \
         appends (the producer awaited room); log now {} segment(s)",
        figures.final_lsn.load(Ordering::Relaxed),
        stats.budget_refusals,
        stats.segments
    );
    Arc::into_inner(wal)
        .ok_or("the WAL is still shared")?
        .close()?;
    Ok(())
}

/// The producer: appends at `PRODUCER_BYTES_PER_SEC`, acknowledges each batch once durable,
/// awaits room at the budget.
async fn produce(
    wal: Arc<Wal>,
    figures: Arc<Figures>,
    acked_file: std::fs::File,
    produce_for: Duration,
) -> Outcome {
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed() < produce_for {
        let mut last = None;
        for _ in 0..PRODUCER_BATCH {
            let lsn = wal.last_lsn() + 1;
            let rec = record(lsn);
            match wal.append(&rec) {
                Ok(got) => {
                    assert_eq!(got, lsn, "one producer: LSNs are its own");
                    last = Some(got);
                    bytes += rec.len() as u64;
                    figures.produced.store(got, Ordering::Relaxed);
                }
                Err(Error::BudgetExhausted { .. }) => {
                    // Acknowledge what is in, then wait for the consumer's truncation.
                    if let Some(l) = last.take() {
                        acknowledge(&wal, &figures, &acked_file, l).await?;
                    }
                    wal.room().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(l) = last {
            acknowledge(&wal, &figures, &acked_file, l).await?;
        }
        // Hold the producer to its rate (it runs ahead in bursts, then sleeps).
        let due = Duration::from_secs_f64(bytes as f64 / PRODUCER_BYTES_PER_SEC);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            tokio::time::sleep(ahead).await;
        }
    }
    let last = wal.last_lsn();
    acknowledge(&wal, &figures, &acked_file, last).await?;
    figures.final_lsn.store(last, Ordering::Release);
    Ok(())
}

/// Tells the producer's client that everything up to `lsn` is durable.
async fn acknowledge(
    wal: &Wal,
    figures: &Figures,
    acked_file: &std::fs::File,
    lsn: u64,
) -> Outcome {
    wal.durable(lsn).await?;
    // The client's side of the acknowledgement: a kill keeps it (the page cache survives).
    acked_file.write_at(&lsn.to_le_bytes(), 0)?;
    figures.acked.store(lsn, Ordering::Relaxed);
    Ok(())
}

/// The consumer: follows the log from `from`, ships durable batches, truncates behind the
/// sink's acknowledgement. Ends once the producer has stopped and everything is shipped.
fn consume(wal: &Wal, figures: &Figures, mut sink: Sink, from: u64) -> Outcome {
    let mut follower = wal.follow(from);
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut next = from;
    loop {
        let fin = figures.final_lsn.load(Ordering::Acquire);
        if fin != 0 && next > fin {
            return Ok(());
        }
        let Some(r) = follower.next_timeout(Duration::from_millis(100))? else {
            continue;
        };
        let mut size = 0;
        let mut r = Some(r);
        while let Some(rec) = r {
            assert_eq!(rec.lsn(), next, "the follower reads in order");
            next += 1;
            size += rec.data().len();
            batch.push(rec.data().to_vec());
            r = if size < SHIP_BATCH {
                follower.try_next()?
            } else {
                None
            };
        }
        // Ship only what the log cannot lose.
        wal.wait_durable(next - 1, None)?;
        let acked = sink.deliver(&batch)?;
        batch.clear();
        figures.shipped.store(acked, Ordering::Relaxed);
        // Everything before `acked + 1` is in the sink for good: drop the segments it fills.
        wal.truncate_front(acked + 1)?;
    }
}

async fn print_figures(run: String, wal: Arc<Wal>, figures: Arc<Figures>) {
    let tty = std::io::stdout().is_terminal();
    let start = Instant::now();
    let (mut produced, mut shipped) = (
        figures.produced.load(Ordering::Relaxed),
        figures.shipped.load(Ordering::Relaxed),
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while !figures.done.load(Ordering::Relaxed) {
        tick.tick().await;
        let (p, s) = (
            figures.produced.load(Ordering::Relaxed),
            figures.shipped.load(Ordering::Relaxed),
        );
        let st = wal.stats();
        let line = format!(
            "[run {run}] {:>4.1} s  in {:>6} rec/s  out {:>6} rec/s  backlog {:>6} records  \
             acked {:>7}  shipped {:>7}  disk {:>4.1}/{} MiB  budget refusals {}",
            start.elapsed().as_secs_f64(),
            p - produced,
            s - shipped,
            p.saturating_sub(s),
            figures.acked.load(Ordering::Relaxed),
            s,
            st.disk_bytes as f64 / f64::from(1 << 20),
            BUDGET >> 20,
            st.budget_refusals
        );
        (produced, shipped) = (p, s);
        if tty {
            print!("\r{line}");
        } else {
            println!("{line}");
        }
        let _ = std::io::stdout().flush();
    }
    if tty {
        println!();
    }
}

/// Record `lsn`'s contents: its LSN, then 56..1016 bytes that depend on it.
fn record(lsn: u64) -> Vec<u8> {
    let len = 56 + (lsn.wrapping_mul(7919) % 961) as usize;
    let mut v = lsn.to_le_bytes().to_vec();
    v.extend((0..len).map(|i| (lsn.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8));
    v
}

// ---- The simulated sink ----------------------------------------------------------------------

/// A network peer that stores what it receives in one file. Each batch is
/// `"SINKBAT1" | count u32 | body_len u32 | body | fnv1a64(body) u64`, the body being
/// `len u32 | payload` per record; a batch is acknowledged once written and `fdatasync`ed.
/// Opening it cuts a torn last batch (a kill during a write).
struct Sink {
    file: std::fs::File,
    end: u64,
    last_lsn: u64,
}

const MAGIC: &[u8; 8] = b"SINKBAT1";

impl Sink {
    fn open(path: &Path) -> Outcome<Self> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let (mut end, mut last_lsn) = (0u64, 0u64);
        for batch in batches(&data) {
            let Some((len, records)) = batch else { break };
            if let Some(p) = records.last() {
                last_lsn = u64::from_le_bytes(p[..8].try_into()?);
            }
            end += len as u64;
        }
        if end < data.len() as u64 {
            file.set_len(end)?;
            file.sync_data()?;
        }
        Ok(Self {
            file,
            end,
            last_lsn,
        })
    }

    /// Takes a batch over the simulated network and acknowledges it: returns the last LSN it
    /// holds for good.
    fn deliver(&mut self, records: &[Vec<u8>]) -> Outcome<u64> {
        let mut body = Vec::new();
        for r in records {
            body.extend_from_slice(&u32::try_from(r.len())?.to_le_bytes());
            body.extend_from_slice(r);
        }
        std::thread::sleep(Duration::from_secs_f64(
            body.len() as f64 / SINK_BYTES_PER_SEC,
        ));
        let mut buf = Vec::with_capacity(body.len() + 24);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&u32::try_from(records.len())?.to_le_bytes());
        buf.extend_from_slice(&u32::try_from(body.len())?.to_le_bytes());
        buf.extend_from_slice(&body);
        buf.extend_from_slice(&fnv1a(&body).to_le_bytes());
        self.file.write_all_at(&buf, self.end)?;
        self.file.sync_data()?;
        self.end += buf.len() as u64;
        if let Some(r) = records.last() {
            self.last_lsn = u64::from_le_bytes(r[..8].try_into()?);
        }
        Ok(self.last_lsn)
    }
}

/// The batches of a sink file: `Some((bytes, payloads))` per whole batch, `None` at a torn or
/// damaged one (the end).
fn batches(data: &[u8]) -> impl Iterator<Item = Option<(usize, Vec<&[u8]>)>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= data.len() {
            return None;
        }
        let batch = parse_batch(&data[at..]);
        match &batch {
            Some((len, _)) => at += len,
            None => at = data.len(),
        }
        Some(batch)
    })
}

fn parse_batch(d: &[u8]) -> Option<(usize, Vec<&[u8]>)> {
    let u32_at = |o: usize| Some(u32::from_le_bytes(d.get(o..o + 4)?.try_into().ok()?) as usize);
    if d.get(..8)? != MAGIC {
        return None;
    }
    let (count, body_len) = (u32_at(8)?, u32_at(12)?);
    let body = d.get(16..16 + body_len)?;
    let sum = u64::from_le_bytes(d.get(16 + body_len..24 + body_len)?.try_into().ok()?);
    if sum != fnv1a(body) {
        return None;
    }
    let mut records = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        let len = u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
        let payload = body.get(at + 4..at + 4 + len)?;
        if payload.len() < 8 {
            return None;
        }
        records.push(payload);
        at += 4 + len;
    }
    Some((24 + body_len, records))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
