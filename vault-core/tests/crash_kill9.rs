//! kill -9 across generations: a writer process appends `(seq, hash(seq))` records with
//! `SyncPolicy::Always` and prints each acknowledged LSN; this test SIGKILLs it at a random
//! moment, checks the directory, and starts the next writer on the same directory, which
//! recovers and appends more, many generations over.
//!
//! Checked after every kill:
//! - the log is never corrupt (`inspect` agrees, and so does `Wal::open` when the test opens it);
//! - it is a contiguous run of LSNs whose records are byte-exact (`record(lsn)`);
//! - it reaches every acknowledged LSN, and every LSN that a previous check saw (a killed process
//!   leaves its stores in the page cache, so nothing read back once may vanish later);
//! - the next writer's recovery finds exactly what the check found.
//!
//! Segments are tiny (4–16 KiB) and some records are larger than a segment, so kills land in
//! appends, syncs, rotations, segment preparation, enlargement, `truncate_front` and recovery
//! itself. What SIGKILL cannot show is a missing sync (the page cache survives it): that is the
//! power-loss model's job.
//!
//! `VAULT_KILL9_CYCLES` sets the number of generations (default sized for `cargo test`),
//! `VAULT_KILL9_SEED` replays a run (the seed is printed), `VAULT_KILL9_DIR` picks where the
//! log lives. `cargo xtask crash --cycles N` runs this test in release for long runs.
//!
//! The same generations also run (fewer of them) on a small tmpfs and on loop-mounted ext4,
//! xfs and btrfs images, on each I/O path the file system allows (root only: they mount file
//! systems, and print why they skip otherwise).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vault_core::{inspect, Health, IoMode, Options, SyncPolicy, Wal};

mod mounts;
use mounts::{need_root, Kind, Mount};

const CHILD_DIR: &str = "VAULT_KILL9_CHILD_DIR";
const CHILD_IO: &str = "VAULT_KILL9_CHILD_IO";
const CHILD_SEGMENT: &str = "VAULT_KILL9_CHILD_SEGMENT";
const CHILD_SEED: &str = "VAULT_KILL9_CHILD_SEED";
const CYCLES: &str = "VAULT_KILL9_CYCLES";
const SEED: &str = "VAULT_KILL9_SEED";
const DIR: &str = "VAULT_KILL9_DIR";

/// Generations per `cargo test` run: about 30 s on a small, shared machine in a debug build.
const DEFAULT_CYCLES: u64 = 250;

/// Records past this many are dropped from the front by the writer (`truncate_front`), so a
/// long run keeps a small directory and the front-truncation path gets killed too.
const KEEP_RECORDS: u64 = 3000;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The record for LSN `seq`: `seq`, `hash(seq)`, then bytes drawn from the hash. Lengths vary
/// from 16 bytes to 16 KiB; one record in 64 is larger than the smallest segment.
fn record(seq: u64) -> Vec<u8> {
    let h = splitmix(seq);
    let len = if h.is_multiple_of(64) {
        4096 + (h >> 32) as usize % 12_288
    } else {
        16 + (h >> 16) as usize % 400
    };
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&h.to_le_bytes());
    let mut s = h;
    while v.len() < len {
        s = splitmix(s);
        v.extend_from_slice(&s.to_le_bytes());
    }
    v.truncate(len);
    v
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = splitmix(self.0);
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn child_fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("writer: {what}: {e}");
    std::process::exit(3);
}

/// Not a test of its own: the writer process the kill -9 test starts and kills. It appends
/// `record(lsn)` forever, alone or in small batches, and prints `ack LSN` for each once its
/// append returned (under `SyncPolicy::Always`, once it is durable).
#[test]
#[ignore = "run as a child process by the kill -9 test"]
fn kill9_writer_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let env_u64 = |k: &str| -> u64 {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| child_fail("missing variable", k))
    };
    let segment = env_u64(CHILD_SEGMENT);
    let mut rng = Rng(env_u64(CHILD_SEED));
    let io: IoMode = std::env::var(CHILD_IO)
        .ok()
        .map_or(IoMode::Auto, |s| s.parse().unwrap());
    let opts = Options::default()
        .with_segment_size(segment)
        .with_sync(SyncPolicy::Always)
        .with_max_record_size(64 << 10)
        .with_io(io);
    let wal = Wal::open(&dir, opts).unwrap_or_else(|e| child_fail("open", e));
    let report = wal.recovery().clone();
    let out = std::io::stdout();
    let mut out = out.lock();
    let say = |out: &mut std::io::StdoutLock<'_>, line: String| {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .unwrap_or_else(|e| child_fail("stdout", e));
    };
    say(
        &mut out,
        format!("open {} {}", report.first_lsn, report.next_lsn),
    );
    let mut next = report.next_lsn;
    loop {
        if next - wal.first_lsn() > KEEP_RECORDS && rng.below(20) == 0 {
            let keep_from = next - KEEP_RECORDS / 2;
            say(&mut out, format!("trunc {keep_from}"));
            wal.truncate_front(keep_from)
                .unwrap_or_else(|e| child_fail("truncate_front", e));
        }
        let n = if rng.below(5) == 0 {
            1 + rng.below(8)
        } else {
            1
        };
        let first = if n == 1 {
            wal.append(&record(next))
        } else {
            let batch: Vec<Vec<u8>> = (next..next + n).map(record).collect();
            wal.append_batch(&batch)
        }
        .unwrap_or_else(|e| child_fail("append", e));
        if first != next {
            child_fail("append", format!("got LSN {first}, expected {next}"));
        }
        for lsn in next..next + n {
            writeln!(out, "ack {lsn}").unwrap_or_else(|e| child_fail("stdout", e));
        }
        out.flush().unwrap_or_else(|e| child_fail("stdout", e));
        next += n;
    }
}

/// What the parent learns from one writer's stdout.
#[derive(Default)]
struct Progress {
    acks: AtomicU64,
    max_ack: AtomicU64,
    max_trunc: AtomicU64,
    opened: Mutex<Option<(u64, u64)>>,
    eof: AtomicBool,
}

fn read_progress(stdout: impl Read, p: &Progress) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let (Some(word), Some(a)) = (words.next(), words.next().and_then(|w| w.parse().ok()))
        else {
            continue;
        };
        match word {
            "ack" => {
                p.max_ack.fetch_max(a, Ordering::SeqCst);
                p.acks.fetch_add(1, Ordering::SeqCst);
            }
            "trunc" => {
                p.max_trunc.fetch_max(a, Ordering::SeqCst);
            }
            "open" => {
                let b = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                *p.opened.lock().unwrap() = Some((a, b));
            }
            _ => {}
        }
    }
    p.eof.store(true, Ordering::SeqCst);
}

fn spawn_writer(dir: &Path, segment: u64, seed: u64, io: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9_writer_child", "--ignored", "--nocapture"])
        .env(CHILD_DIR, dir)
        .env(CHILD_IO, io)
        .env(CHILD_SEGMENT, segment.to_string())
        .env(CHILD_SEED, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the writer")
}

/// What every check must find, carried across generations.
#[derive(Default)]
struct Expect {
    /// The highest LSN any writer acknowledged.
    max_ack: u64,
    /// The highest LSN a check has read back.
    max_seen: u64,
    /// The first LSN of the log at the last check (the front only moves forward).
    first: u64,
    /// The highest `truncate_front` argument any writer announced (the log may start there).
    max_trunc: u64,
}

#[derive(Default, Debug)]
struct Tally {
    cycles: u64,
    acks: u64,
    killed_before_open: u64,
    killed_before_first_ack: u64,
    torn_tails: u64,
    pre_files_left: u64,
    fresh_tail_segment: u64,
    unacknowledged_recovered: u64,
    truncations: u64,
    opens_by_test: u64,
}

/// Checks the directory after a kill; returns the next LSN the log holds.
fn check(dir: &Path, cycle: u64, e: &mut Expect, t: &mut Tally, open_too: bool) -> u64 {
    let ins = inspect(dir).unwrap_or_else(|err| panic!("cycle {cycle}: inspect failed: {err}"));
    match ins.health() {
        Health::Corrupt(err) => panic!("cycle {cycle}: the log is corrupt after a kill: {err}"),
        Health::TornTail(_) => t.torn_tails += 1,
        Health::Clean => {}
    }
    if !ins.pre_files().is_empty() {
        t.pre_files_left += 1;
    }
    if ins.segments().last().is_some_and(|s| s.records == 0) {
        t.fresh_tail_segment += 1;
    }
    let (first, next) = (ins.first_lsn(), ins.next_lsn());
    let last = next - 1;
    assert!(
        last >= e.max_ack,
        "cycle {cycle}: acknowledged LSN {} lost: the log ends at {last}",
        e.max_ack
    );
    assert!(
        last >= e.max_seen,
        "cycle {cycle}: LSN {} was read back before, the log now ends at {last}",
        e.max_seen
    );
    assert!(
        first >= e.first && first <= e.max_trunc.max(1),
        "cycle {cycle}: the log starts at {first}; before it started at {}, and no truncation \
         past {} was asked for",
        e.first,
        e.max_trunc
    );
    let mut expect = first;
    for r in ins.records_from(first) {
        assert_eq!(r.lsn(), expect, "cycle {cycle}: LSNs must be contiguous");
        assert!(
            r.data() == record(expect).as_slice(),
            "cycle {cycle}: record {expect} differs from what was appended"
        );
        expect += 1;
    }
    assert_eq!(expect, next, "cycle {cycle}: inspect's records end early");
    if last > e.max_ack {
        t.unacknowledged_recovered += 1;
    }
    if open_too {
        // Recover for real, read everything back, close cleanly; the next writer then starts
        // from a closed log rather than a killed one.
        let opts = Options::default()
            .with_segment_size(4096)
            .with_sync(SyncPolicy::Manual)
            .with_max_record_size(64 << 10);
        let wal = Wal::open(dir, opts)
            .unwrap_or_else(|err| panic!("cycle {cycle}: open after a kill failed: {err}"));
        let report = wal.recovery().clone();
        assert_eq!(
            (report.first_lsn, report.next_lsn),
            (first, next),
            "cycle {cycle}: open and inspect disagree"
        );
        let mut expect = first;
        for r in wal.iter_from(first) {
            assert_eq!(r.lsn(), expect);
            assert!(r.data() == record(expect).as_slice());
            expect += 1;
        }
        assert_eq!(expect, next);
        wal.close()
            .unwrap_or_else(|err| panic!("cycle {cycle}: close failed: {err}"));
        t.opens_by_test += 1;
    }
    e.max_seen = last;
    e.first = first;
    next
}

/// The main run, once per I/O path: `<name>::mmap` and `<name>::direct` (the direct half
/// skips, saying why, where the temporary directory refuses `O_DIRECT`).
mod acknowledged_records_survive_kill9_across_generations {
    #[test]
    fn mmap() {
        super::across_generations("mmap");
    }

    #[test]
    fn direct() {
        super::across_generations("direct");
    }
}

fn across_generations(io: &str) {
    let cycles: u64 = std::env::var(CYCLES).ok().map_or(DEFAULT_CYCLES, |v| {
        v.parse().expect("VAULT_KILL9_CYCLES is a number")
    });
    let seed: u64 = std::env::var(SEED).ok().map_or_else(
        || {
            let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            t.as_nanos() as u64 ^ u64::from(std::process::id())
        },
        |v| v.parse().expect("VAULT_KILL9_SEED is a number"),
    );
    println!("kill -9 ({io}): {cycles} generations, seed {seed} (replay with {SEED}={seed})");
    let tmp = match std::env::var_os(DIR) {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    if io == "direct" {
        let fs = vault_core::Storage::file_system(&vault_core::FsStorage, tmp.path()).unwrap();
        if !fs.direct_io {
            println!(
                "skipped: no direct I/O in {} ({}): {:?}",
                tmp.path().display(),
                fs.name,
                fs.direct_io_error
            );
            return;
        }
    }
    generations(tmp.path(), cycles, seed, io);
}

/// Generations per file system and I/O path in the mounted-file-system tests.
const FS_CYCLES: u64 = 25;

fn kill9_on(kind: Kind, test: &str) {
    if !need_root(test) {
        return;
    }
    let paths = kind.io_paths();
    let seed = splitmix(u64::from(std::process::id()) ^ kind as u64);
    for io in paths {
        let Some(m) = Mount::or_skip(kind, 64, test) else {
            return;
        };
        println!("kill -9 on {} ({io}), seed {seed}", kind.name());
        let dir = m.path().join("wal");
        std::fs::create_dir(&dir).unwrap();
        generations(&dir, FS_CYCLES, seed, io);
    }
}

#[test]
fn acknowledged_records_survive_kill9_on_tmpfs() {
    kill9_on(Kind::Tmpfs, "acknowledged_records_survive_kill9_on_tmpfs");
}

#[test]
fn acknowledged_records_survive_kill9_on_ext4() {
    kill9_on(Kind::Ext4, "acknowledged_records_survive_kill9_on_ext4");
}

#[test]
fn acknowledged_records_survive_kill9_on_xfs() {
    kill9_on(Kind::Xfs, "acknowledged_records_survive_kill9_on_xfs");
}

#[test]
fn acknowledged_records_survive_kill9_on_btrfs() {
    kill9_on(Kind::Btrfs, "acknowledged_records_survive_kill9_on_btrfs");
}

/// `cycles` generations of writers on `dir`, each killed at a random moment and checked.
fn generations(dir: &Path, cycles: u64, seed: u64, io: &str) {
    let mut rng = Rng(seed);
    let mut e = Expect {
        first: 1,
        ..Expect::default()
    };
    let mut t = Tally::default();
    let mut next = 1;
    let started = Instant::now();
    for cycle in 0..cycles {
        let segment = [4096, 8192, 16384][rng.below(3) as usize];
        let mut child = spawn_writer(dir, segment, rng.next(), io);
        let progress = Arc::new(Progress::default());
        let out = {
            let p = Arc::clone(&progress);
            let stdout = child.stdout.take().unwrap();
            thread::spawn(move || read_progress(stdout, &p))
        };
        let err = {
            let mut stderr = child.stderr.take().unwrap();
            thread::spawn(move || {
                let mut s = String::new();
                let _ = stderr.read_to_string(&mut s);
                s
            })
        };
        // When to kill: early (inside start-up and recovery) in one generation out of six,
        // otherwise after a random number of acknowledgements plus a random delay, so that the
        // kill lands anywhere in an append, a sync, a rotation or the worker's preparation.
        if rng.below(6) == 0 {
            thread::sleep(Duration::from_micros(rng.below(40_000)));
        } else {
            let want = 1 + rng.below(150);
            let mut last_change = Instant::now();
            let mut seen = 0;
            loop {
                let acks = progress.acks.load(Ordering::SeqCst);
                if acks >= want || progress.eof.load(Ordering::SeqCst) {
                    break;
                }
                if acks != seen {
                    seen = acks;
                    last_change = Instant::now();
                }
                // A hang detector, not a timing assertion: a writer that acknowledges nothing
                // for this long is stuck.
                assert!(
                    last_change.elapsed() < Duration::from_secs(120),
                    "cycle {cycle}: the writer acknowledged nothing for 120 s (hung?)"
                );
                thread::sleep(Duration::from_micros(100));
            }
            let spin = Instant::now();
            let delay = Duration::from_micros(rng.below(3000));
            while spin.elapsed() < delay {
                std::hint::spin_loop();
            }
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        out.join().unwrap();
        let stderr = err.join().unwrap();
        // Killed: by a signal on Unix; on Windows `kill` is `TerminateProcess(.., 1)`, exit
        // code 1 (the writer's own failures exit 3, a failed test harness 101).
        let killed = status.code().is_none() || (cfg!(windows) && status.code() == Some(1));
        assert!(
            killed,
            "cycle {cycle}: the writer exited by itself ({status}) before it was killed:\n{stderr}"
        );
        let opened = *progress.opened.lock().unwrap();
        match opened {
            None => t.killed_before_open += 1,
            Some((first, n)) => {
                assert_eq!(
                    n, next,
                    "cycle {cycle}: the writer's recovery found next LSN {n}, the last check {next}"
                );
                assert!(
                    first >= e.first,
                    "cycle {cycle}: the log's front moved back"
                );
            }
        }
        let acks = progress.acks.load(Ordering::SeqCst);
        if opened.is_some() && acks == 0 {
            t.killed_before_first_ack += 1;
        }
        t.acks += acks;
        e.max_ack = e.max_ack.max(progress.max_ack.load(Ordering::SeqCst));
        let trunc = progress.max_trunc.load(Ordering::SeqCst);
        if trunc > e.max_trunc {
            e.max_trunc = trunc;
            t.truncations += 1;
        }
        next = check(dir, cycle, &mut e, &mut t, rng.below(8) == 0);
        t.cycles += 1;
    }
    println!(
        "kill -9 ({io}): {} generations in {:.1} s, {} acknowledged records, log ends at LSN \
         {}, 0 lost",
        t.cycles,
        started.elapsed().as_secs_f64(),
        t.acks,
        next - 1
    );
    println!("kill -9: where the kills landed: {t:#?}");
    assert_eq!(t.cycles, cycles);
}
