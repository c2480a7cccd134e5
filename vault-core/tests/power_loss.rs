//! Power loss at every step: workloads run on `SimStorage`, which captures the disk state
//! before and after every storage operation; each captured state is then crashed in many ways
//! (subsets of the dirty pages, written whole, torn at sectors, zeroed or garbage, and prefixes
//! of the unsynced directory operations) and reopened.
//!
//! After each crash: `open` succeeds; every record whose sync returned (or whose append
//! returned under `SyncPolicy::Always`, or that `durable_lsn` covered) is there, byte-exact, in
//! order, without a gap; nothing that was never appended appears (a record's bytes are a
//! function of its LSN); the log starts later only if `truncate_front` asked for it; and the
//! WAL accepts appends that survive a second crash and reopen.
//!
//! A zeroed or garbage page destroys whatever it held, including bytes synced earlier (the
//! page is rewritten whole when it is written back). Where such a page held durable non-zero
//! bytes, losing acknowledged records is the crash model's doing, not the WAL's: those states
//! need only a clean outcome (a contiguous, byte-exact log or a typed error, never a panic).
//!
//! Every test runs on both I/O paths, as `<test>::mmap` and `<test>::direct`. The simulated
//! storage takes both; its crash model is the mmap one (any subset of the dirty pages may have
//! reached the disk), a superset of what a direct-path crash can leave, so the direct half
//! checks the direct path's own logic (a read-only open with only the tail writable, finished
//! segments swapped for read-only mappings) against the stricter model.
//!
//! `VAULT_POWERLOSS_STATES` sets how many crash states the random workloads check on each path
//! (default 4,000; the fixed small workloads and the cut cases add about 7,000 more per path);
//! `VAULT_POWERLOSS_FIRST_SEED` sets the first random workload's seed (default 1000);
//! `VAULT_POWERLOSS_SEED` replays one random workload. Each test prints `power_loss <path>
//! <name>: checked <n> states`. `cargo xtask powerloss --states N [--io mmap|direct|both]`
//! runs this file in release with a large N and sums those lines per path.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use common::record;
use vault_core::{Error, IoMode, Options, SyncPolicy, Wal};
use vault_segment::sim::{
    CrashChoice, CrashPoint, DirtyPage, OpKind, PageFate, SimRng, SimStorage, Snapshot,
};
use vault_segment::Storage;

const DIR: &str = "/wal";
const DEFAULT_STATES: u64 = 4_000;

fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

/// The bytes of record `lsn`: mostly small, every 23rd larger than a 4 KiB segment (so the
/// writer has to enlarge the next segment), always a function of the LSN alone.
fn payload(lsn: u64) -> Vec<u8> {
    let mut r = record(lsn);
    if lsn % 23 == 7 {
        let big = 4500 + (lsn * 13 % 2000) as usize;
        r = r.iter().copied().cycle().take(big).collect();
    }
    r
}

/// What must hold of a crash state taken at one moment of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Expect {
    /// Every record up to here was acknowledged durable.
    acked: u64,
    /// No record past here was ever handed to `append`.
    appended: u64,
    /// The highest LSN `truncate_front` was asked to drop records before (0: never).
    truncated: u64,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Append(u64),
    Batch(u64),
    Sync,
    /// `truncate_front` at this share (in quarters) of the last LSN.
    Truncate(u64),
    /// `truncate_back` at this share (in quarters) of the last LSN, plus one. The records
    /// appended after it at the same LSNs have the same bytes (a function of the LSN): the
    /// dedicated cut test below tells generations apart.
    TruncateBack(u64),
    /// `reset` to the last LSN + 1 + this.
    Reset(u64),
    /// Close and open again (no crash).
    Reopen,
}

#[derive(Debug, Clone)]
struct Workload {
    seed: u64,
    sync: SyncPolicy,
    segment_size: u64,
    steps: Vec<Step>,
    io: IoMode,
    /// Spares the worker keeps (0: the default). With one, files `truncate_front` pools are
    /// recycled from the next rotation on.
    spares: usize,
}

impl Workload {
    fn random(seed: u64, io: IoMode) -> Self {
        let mut rng = SimRng::new(seed);
        // Under Interval the flusher thread syncs on its own; what it made durable counts as
        // acknowledged once `durable_lsn` shows it.
        let sync = match rng.below(6) {
            0 | 1 => SyncPolicy::Always,
            2 => SyncPolicy::Interval(std::time::Duration::from_millis(1)),
            _ => SyncPolicy::Manual,
        };
        let segment_size = [4096, 4096, 8192, 16384][rng.below(4) as usize];
        let n = 6 + rng.below(10);
        let steps = (0..n)
            .map(|_| match rng.below(14) {
                0..=1 => Step::Append(1 + rng.below(6)),
                2..=3 => Step::Append(1 + rng.below(40)),
                4..=5 => Step::Batch(2 + rng.below(30)),
                6..=8 => Step::Sync,
                9..=10 => Step::Truncate(1 + rng.below(3)),
                12 => Step::TruncateBack(rng.below(4)),
                13 => Step::Reset(rng.below(3)),
                _ => Step::Reopen,
            })
            .collect();
        Self {
            seed,
            sync,
            segment_size,
            steps,
            io,
            spares: 0,
        }
    }

    fn options(&self, storage: &SimStorage) -> Options {
        let o = Options::default()
            .with_io(self.io)
            .with_segment_size(self.segment_size)
            .with_sync(self.sync)
            .with_storage(Arc::new(storage.clone()) as Arc<dyn Storage>);
        match self.spares {
            0 => o,
            n => o.with_spare_segments(n),
        }
    }
}

/// A workload's run: the states captured at every storage operation and what each must keep.
struct Recorded {
    snapshots: Vec<Snapshot>,
    history: Vec<Expect>,
    /// Segments made from recycled files during the run.
    recycled: u64,
}

struct Runner<'a> {
    sim: &'a SimStorage,
    history: Vec<Expect>,
    cur: Expect,
}

impl Runner<'_> {
    fn set(&mut self, f: impl FnOnce(&mut Expect)) {
        f(&mut self.cur);
        if self.history.last() != Some(&self.cur) {
            self.history.push(self.cur);
            self.sim.set_mark(self.history.len() as u64 - 1);
        }
    }
}

fn run(w: &Workload) -> Recorded {
    let sim = SimStorage::new();
    sim.record_snapshots(true);
    let mut r = Runner {
        sim: &sim,
        history: vec![Expect {
            acked: 0,
            appended: 0,
            truncated: 0,
        }],
        cur: Expect {
            acked: 0,
            appended: 0,
            truncated: 0,
        },
    };
    sim.set_mark(0);
    let ctx = |what: &str| format!("workload seed {} ({w:?}): {what}", w.seed);
    let mut wal =
        Wal::open(dir(), w.options(&sim)).unwrap_or_else(|e| panic!("{}", ctx(&e.to_string())));
    let mut last = 0u64;
    let mut recycled = 0;
    for step in &w.steps {
        match *step {
            Step::Append(n) => {
                for _ in 0..n {
                    r.set(|e| e.appended = last + 1);
                    let lsn = wal.append(&payload(last + 1)).unwrap();
                    assert_eq!(lsn, last + 1, "{}", ctx("LSNs are contiguous"));
                    last = lsn;
                    if w.sync == SyncPolicy::Always {
                        r.set(|e| e.acked = lsn);
                    }
                }
            }
            Step::Batch(n) => {
                r.set(|e| e.appended = last + n);
                let recs: Vec<Vec<u8>> = (last + 1..=last + n).map(payload).collect();
                let first = wal.append_batch(&recs).unwrap();
                assert_eq!(first, last + 1, "{}", ctx("batch LSNs"));
                last += n;
                if w.sync == SyncPolicy::Always {
                    r.set(|e| e.acked = last);
                }
            }
            Step::Sync => {
                let target = last;
                wal.sync().unwrap();
                r.set(|e| e.acked = e.acked.max(target));
            }
            Step::Truncate(q) => {
                let t = last * q / 4;
                r.set(|e| e.truncated = e.truncated.max(t));
                wal.truncate_front(t).unwrap();
                r.set(|e| e.acked = e.acked.max(last));
            }
            Step::TruncateBack(q) => {
                let cut = last * q / 4 + 1;
                if cut <= last {
                    // From the call on, only the records before the cut must survive.
                    r.set(|e| e.acked = e.acked.min(cut - 1));
                    last = cut - 1;
                }
                wal.truncate_back(cut).unwrap();
                assert_eq!(wal.last_lsn(), last, "{}", ctx("truncate_back"));
            }
            Step::Reset(k) => {
                let n = last + 1 + k;
                r.set(|e| {
                    e.acked = 0;
                    e.truncated = e.truncated.max(n);
                    e.appended = e.appended.max(n - 1);
                });
                wal.reset(n).unwrap();
                last = n - 1;
                assert_eq!(wal.first_lsn(), n, "{}", ctx("reset"));
            }
            Step::Reopen => {
                recycled += wal.stats().segments_recycled;
                wal.close().unwrap();
                r.set(|e| e.acked = last);
                let w2 = Wal::open(dir(), w.options(&sim)).unwrap();
                let rep = w2.recovery().clone();
                assert_eq!(
                    rep.next_lsn,
                    last + 1,
                    "{}",
                    ctx("a clean reopen keeps every record")
                );
                wal = w2;
            }
        }
        let durable = wal.durable_lsn();
        assert!(durable <= last);
        r.set(|e| e.acked = e.acked.max(durable));
    }
    recycled += wal.stats().segments_recycled;
    wal.close().unwrap();
    r.set(|e| e.acked = last);
    sim.record_snapshots(false);
    let mut snapshots = sim.take_snapshots();
    snapshots.push(sim.snapshot());
    Recorded {
        snapshots,
        history: r.history,
        recycled,
    }
}

/// Fates of a torn write that keeps sectors atomic: every byte is old or new.
fn atomic_fates() -> [PageFate; 4] {
    [
        PageFate::torn_after(1),
        PageFate::torn_after(4),
        PageFate::torn_after(7),
        PageFate::Sectors(0b1010_1010),
    ]
}

/// Every subset of at most 3 dirty pages, written whole, and each with one of its pages torn,
/// zeroed or garbage; crossed with every prefix of the pending directory operations. `None`
/// if that is more than `limit` choices.
fn exhaustive_choices(snap: &Snapshot, limit: usize) -> Option<Vec<CrashChoice>> {
    let dirty = snap.dirty_pages();
    let d = dirty.len();
    let mut fates: Vec<PageFate> = atomic_fates().to_vec();
    fates.push(PageFate::Zeroed);
    fates.push(PageFate::Garbage(0x5EED));
    let per_subset = |s: usize| 1 + s * fates.len();
    let subsets = 1
        + d * per_subset(1)
        + d * d.saturating_sub(1) / 2 * per_subset(2)
        + d * d.saturating_sub(1) * d.saturating_sub(2) / 6 * per_subset(3);
    let total = (subsets + 1) * (snap.pending_dir_ops().len() + 1);
    if total > limit {
        return None;
    }
    let mut sets: Vec<Vec<DirtyPage>> = vec![vec![]];
    for a in 0..d {
        sets.push(vec![dirty[a]]);
        for b in a + 1..d {
            sets.push(vec![dirty[a], dirty[b]]);
            for c in b + 1..d {
                sets.push(vec![dirty[a], dirty[b], dirty[c]]);
            }
        }
    }
    let mut out = Vec::with_capacity(total);
    for dir_ops in 0..=snap.pending_dir_ops().len() {
        let mut all = CrashChoice::all(snap);
        all.dir_ops = dir_ops;
        out.push(all);
        for set in &sets {
            let whole: Vec<(DirtyPage, PageFate)> =
                set.iter().map(|&p| (p, PageFate::Whole)).collect();
            out.push(CrashChoice {
                pages: whole.clone(),
                dir_ops,
            });
            for i in 0..set.len() {
                for &f in &fates {
                    let mut pages = whole.clone();
                    pages[i].1 = f;
                    out.push(CrashChoice { pages, dir_ops });
                }
            }
        }
    }
    Some(out)
}

/// A random choice: each dirty page kept with probability 1/2, mostly whole, sometimes torn at
/// sectors; a small chance of a zeroed or garbage page; a random prefix of the directory ops.
fn random_choice(snap: &Snapshot, rng: &mut SimRng) -> CrashChoice {
    let mut pages = Vec::new();
    for p in snap.dirty_pages() {
        if rng.below(2) == 0 {
            continue;
        }
        let fate = match rng.below(16) {
            0..=9 => PageFate::Whole,
            10..=13 => PageFate::Sectors(rng.next_u64() as u8),
            14 => PageFate::Zeroed,
            _ => PageFate::Garbage(rng.next_u64()),
        };
        pages.push((p, fate));
    }
    let dir_ops = rng.below(snap.pending_dir_ops().len() as u64 + 1) as usize;
    CrashChoice { pages, dir_ops }
}

/// A random choice that keeps sectors atomic (no zeroed or garbage pages).
fn random_atomic_choice(snap: &Snapshot, rng: &mut SimRng) -> CrashChoice {
    let mut c = random_choice(snap, rng);
    for (_, f) in &mut c.pages {
        if matches!(f, PageFate::Zeroed | PageFate::Garbage(_)) {
            *f = PageFate::Whole;
        }
    }
    c
}

/// Whether the choice destroys bytes that were durable: a zeroed or garbage page over a page
/// whose durable image is not all zeros.
fn destroys_durable_bytes(snap: &Snapshot, choice: &CrashChoice) -> bool {
    choice.pages.iter().any(|(p, f)| {
        matches!(f, PageFate::Zeroed | PageFate::Garbage(_))
            && snap
                .durable_page(*p)
                .is_some_and(|b| b.iter().any(|&x| x != 0))
    })
}

#[derive(Debug, Default)]
struct Tally {
    /// Typed errors by reason (only where a zeroed or garbage page destroyed durable bytes).
    errors: std::collections::BTreeMap<String, u64>,
    states: u64,
    strict: u64,
    typed_errors: u64,
    acked_lost_to_destroyed_pages: u64,
}

enum Outcome {
    Recovered { lost_acked: bool },
    TypedError(String),
}

/// The bytes of record `lsn` appended after a crash and recovery: different from what the
/// first generation appended at that LSN, so a stale first-generation record that resurfaces
/// after the second crash cannot pass for it.
fn second_generation(lsn: u64) -> Vec<u8> {
    let mut r = payload(lsn);
    r.push(0xA5);
    r
}

/// Reads the whole log and checks it against `exp`; returns (first, last). Records after
/// `gen2_from` must be second-generation records.
fn check_log(wal: &Wal, exp: Expect, strict: bool, gen2_after: u64) -> Result<(u64, u64), String> {
    let first = wal.first_lsn();
    let last = wal.last_lsn();
    if first == 0 || first > last + 1 {
        return Err(format!("first LSN {first} with last {last}"));
    }
    if first > exp.truncated.max(1) {
        return Err(format!(
            "the log starts at {first}, but truncate_front was only asked for {}",
            exp.truncated
        ));
    }
    if last > exp.appended {
        return Err(format!(
            "record {last} recovered, but only {} were ever appended",
            exp.appended
        ));
    }
    if strict && last < exp.acked {
        return Err(format!(
            "acknowledged records lost: recovered up to {last}, acknowledged {}",
            exp.acked
        ));
    }
    let mut expect = first;
    for r in wal.iter_from(first) {
        if r.lsn() != expect {
            return Err(format!("gap: record {} after {}", r.lsn(), expect - 1));
        }
        let want = if expect > gen2_after {
            second_generation(expect)
        } else {
            payload(expect)
        };
        if r.data() != &want[..] {
            return Err(format!("record {expect} has the wrong bytes"));
        }
        expect += 1;
    }
    if expect != last + 1 {
        return Err(format!("read up to {} but last_lsn is {last}", expect - 1));
    }
    Ok((first, last))
}

fn open_crashed(w: &Workload, storage: &SimStorage) -> vault_core::Result<Wal> {
    Wal::open(dir(), w.options(storage))
}

/// Crashes `snap` with `choice`, reopens, checks, appends, crashes again, reopens, checks.
fn check_state(
    w: &Workload,
    snap: &Snapshot,
    choice: &CrashChoice,
    exp: Expect,
    rng: &mut SimRng,
) -> Result<Outcome, String> {
    let strict = !destroys_durable_bytes(snap, choice);
    let crashed = snap.crash(choice);
    crashed.set_mark(0);
    crashed.record_snapshots(true);
    let wal = match open_crashed(w, &crashed) {
        Ok(wal) => wal,
        Err(Error::Corruption { reason, .. }) if !strict => {
            let name = format!("{reason:?}");
            let name = name.split([' ', '{', '(']).next().unwrap_or_default();
            return Ok(Outcome::TypedError(name.to_string()));
        }
        Err(Error::UnsupportedVersion { .. }) if !strict => {
            return Ok(Outcome::TypedError("UnsupportedVersion".into()));
        }
        Err(e) => return Err(format!("open failed: {e}")),
    };
    let (first, last) =
        check_log(&wal, exp, strict, u64::MAX).map_err(|e| format!("after the crash: {e}"))?;
    let lost_acked = last < exp.acked;
    // Second generation: append after recovery, sync, and crash again at a random point of
    // this generation (during the recovery itself, the appends or the sync) or at its end.
    let more = 1 + rng.below(6);
    let history = [
        // During recovery: what the first crash kept of the acknowledged records, and nothing
        // beyond what that recovery found (recovery is idempotent).
        Expect {
            acked: exp.acked.min(last),
            appended: last,
            truncated: first,
        },
        // `open` returned: everything it recovered is durable.
        Expect {
            acked: last,
            appended: last,
            truncated: first,
        },
        Expect {
            acked: last,
            appended: last + more,
            truncated: first,
        },
        Expect {
            acked: last + more,
            appended: last + more,
            truncated: first,
        },
    ];
    crashed.set_mark(1);
    let recs: Vec<Vec<u8>> = (last + 1..=last + more).map(second_generation).collect();
    crashed.set_mark(2);
    wal.append_batch(&recs)
        .map_err(|e| format!("append after recovery: {e}"))?;
    wal.sync()
        .map_err(|e| format!("sync after recovery: {e}"))?;
    crashed.set_mark(3);
    crashed.record_snapshots(false);
    let mut snaps = crashed.take_snapshots();
    let snap2 = if rng.below(2) == 0 || snaps.is_empty() {
        crashed.snapshot()
    } else {
        let k = rng.below(snaps.len() as u64) as usize;
        snaps.swap_remove(k)
    };
    let choice2 = random_atomic_choice(&snap2, rng);
    let crashed2 = snap2.crash(&choice2);
    drop(wal);
    let exp2 = history[snap2.mark as usize];
    let at = format!(
        "second crash {} ({choice2}), expecting {exp2:?}",
        snap2.point
    );
    let wal2 = open_crashed(w, &crashed2).map_err(|e| format!("{at}: open failed: {e}"))?;
    let (first2, _) = check_log(&wal2, exp2, true, last).map_err(|e| format!("{at}: {e}"))?;
    if first2 != first {
        return Err(format!(
            "{at}: second recovery starts at {first2}, the first at {first}"
        ));
    }
    drop(wal2);
    Ok(Outcome::Recovered { lost_acked })
}

/// Writes the files a crash left to a real directory, for `vault verify` or a replay with
/// `FsStorage`.
fn dump(storage: &SimStorage, name: &str) -> PathBuf {
    let out = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    for p in storage.live_names(&dir()) {
        if let Some(bytes) = storage.durable_bytes(&p) {
            std::fs::write(out.join(p.file_name().unwrap()), bytes).unwrap();
        }
    }
    out
}

fn fail(
    w: &Workload,
    (n, snap): (usize, &Snapshot),
    choice: &CrashChoice,
    exp: Expect,
    why: &str,
) -> ! {
    let dumped = dump(
        &snap.crash(choice),
        &format!("vault-powerloss-seed{}-state{n}", w.seed),
    );
    let names: Vec<String> = choice
        .pages
        .iter()
        .map(|(p, _)| {
            format!(
                "file {} = {}",
                p.file,
                snap.file_name(p.file)
                    .map_or("?".into(), |n| n.display().to_string())
            )
        })
        .collect();
    panic!(
        "power-loss violation: {why}\n  workload seed {} (replay: VAULT_POWERLOSS_SEED={}): {w:?}\n  \
         crash point: {}\n  choice: {choice}\n  files: {names:?}\n  pending dir ops: {:?}\n  \
         expected: {exp:?}\n  crashed directory written to {}",
        w.seed,
        w.seed,
        snap.point,
        snap.pending_dir_ops(),
        dumped.display()
    );
}

/// Runs one workload and checks its crash states: every choice of
/// [`exhaustive_choices`] when that is small enough, else `samples` random choices per state.
fn check_workload(w: &Workload, exhaustive_limit: usize, samples: u64, tally: &mut Tally) {
    check_recorded(w, &run(w), exhaustive_limit, samples, tally);
}

fn check_recorded(
    w: &Workload,
    rec: &Recorded,
    exhaustive_limit: usize,
    samples: u64,
    tally: &mut Tally,
) {
    let mut seen = HashSet::new();
    let mut rng = SimRng::new(w.seed ^ 0xC0FF_EE00);
    for (n, snap) in rec.snapshots.iter().enumerate() {
        let exp = rec.history[snap.mark as usize];
        if !seen.insert((snap.fingerprint(), exp)) {
            continue;
        }
        let choices = exhaustive_choices(snap, exhaustive_limit).unwrap_or_else(|| {
            let mut v = vec![CrashChoice::none(), CrashChoice::all(snap)];
            v.extend((0..samples).map(|_| random_choice(snap, &mut rng)));
            v
        });
        for choice in &choices {
            match check_state(w, snap, choice, exp, &mut rng) {
                Ok(outcome) => {
                    tally.states += 1;
                    if !destroys_durable_bytes(snap, choice) {
                        tally.strict += 1;
                    }
                    match outcome {
                        Outcome::TypedError(why) => {
                            tally.typed_errors += 1;
                            *tally.errors.entry(why).or_default() += 1;
                        }
                        Outcome::Recovered { lost_acked: true } => {
                            tally.acked_lost_to_destroyed_pages += 1;
                        }
                        Outcome::Recovered { lost_acked: false } => {}
                    }
                }
                Err(why) => fail(w, (n, snap), choice, exp, &why),
            }
        }
    }
}

fn budget() -> u64 {
    std::env::var("VAULT_POWERLOSS_STATES")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(DEFAULT_STATES)
}

fn replay_seed() -> Option<u64> {
    std::env::var("VAULT_POWERLOSS_SEED").ok()?.parse().ok()
}

fn report(io: IoMode, name: &str, t: &Tally) {
    println!(
        "power_loss {} {name}: checked {} states ({} with sector-atomic writes; {} typed errors and \
         {} recoveries short of the acknowledged LSN, all from zeroed or garbage pages over \
         durable bytes; errors: {:?})",
        common::io_path(io),
        t.states,
        t.strict,
        t.typed_errors, t.acked_lost_to_destroyed_pages, t.errors
    );
}

common::both_io_paths!(sim every_crash_point_of_small_workloads_recovers_every_acknowledged_record);
/// Small fixed workloads, every crash point, every subset of up to 3 dirty pages with each
/// fate, every prefix of the pending directory operations.
fn every_crash_point_of_small_workloads_recovers_every_acknowledged_record(io: IoMode) {
    use Step::*;
    use SyncPolicy::*;
    // (policy, segment size, steps, exhaustive limit per state): the small workloads are
    // enumerated in full; the larger ones fully where a state has few dirty pages, else sampled.
    let workloads = [
        (Manual, 4096, vec![Append(3), Sync, Append(2), Sync], 5_000),
        (Always, 4096, vec![Append(4), Batch(2)], 5_000),
        (
            Manual,
            4096,
            vec![Append(5), Sync, Reopen, Append(3), Sync],
            5_000,
        ),
        (
            Manual,
            4096,
            vec![Append(7), Sync, Truncate(2), Append(1)],
            5_000,
        ),
        (Manual, 4096, vec![Batch(30), Sync, Append(1), Sync], 40),
        (
            Manual,
            4096,
            vec![Append(25), Sync, Append(25), Sync, Truncate(2)],
            40,
        ),
        (Always, 4096, vec![Append(30), Truncate(3), Append(2)], 40),
        (
            Manual,
            4096,
            vec![Batch(90), Sync, Truncate(3), Append(1)],
            40,
        ),
    ];
    if replay_seed().is_some() {
        return;
    }
    let mut tally = Tally::default();
    for (i, (sync, seg, steps, limit)) in workloads.into_iter().enumerate() {
        let w = Workload {
            spares: 0,
            seed: i as u64,
            sync,
            segment_size: seg,
            steps,
            io,
        };
        check_workload(&w, limit, 4, &mut tally);
    }
    report(io, "exhaustive", &tally);
    assert!(tally.states >= 1_000, "{tally:?}");
}

common::both_io_paths!(sim a_recycling_workload_recovers_every_acknowledged_record_after_power_loss);
/// Workloads whose `truncate_front` calls pool the dropped files and whose rotations then
/// reuse them (one spare, so the worker prepares from the pool at the next rotation): every
/// crash point, including each step of a recycling (the rename to `-pre`, the header write,
/// the rename to the segment name, their directory syncs), and the tails that recycled
/// segments' stale frames follow.
fn a_recycling_workload_recovers_every_acknowledged_record_after_power_loss(io: IoMode) {
    use Step::*;
    use SyncPolicy::*;
    let workloads = [
        (
            Manual,
            vec![
                Append(40),
                Sync,
                Truncate(3),
                Append(30),
                Sync,
                Append(5),
                Truncate(3),
                Append(30),
                Reopen,
                Append(20),
                Sync,
                Append(3),
            ],
        ),
        (
            Always,
            vec![
                Batch(40),
                Truncate(3),
                Append(25),
                Truncate(3),
                Append(25),
                Reopen,
                Append(10),
            ],
        ),
    ];
    if replay_seed().is_some() {
        return;
    }
    let mut tally = Tally::default();
    for (i, (sync, steps)) in workloads.into_iter().enumerate() {
        let w = Workload {
            seed: 100 + i as u64,
            sync,
            segment_size: 4096,
            steps,
            io,
            spares: 1,
        };
        let rec = run(&w);
        assert!(
            rec.recycled >= 1,
            "workload {i} recycled {} files",
            rec.recycled
        );
        check_recorded(&w, &rec, 40, 4, &mut tally);
    }
    report(io, "recycling", &tally);
    assert!(tally.states >= 1_000, "{tally:?}");
}

common::both_io_paths!(sim random_workloads_recover_every_acknowledged_record_after_power_loss);
/// Random workloads until the budget is used: random crash choices at every crash point.
fn random_workloads_recover_every_acknowledged_record_after_power_loss(io: IoMode) {
    let mut tally = Tally::default();
    if let Some(seed) = replay_seed() {
        check_workload(&Workload::random(seed, io), 200, 8, &mut tally);
        report(io, "replay", &tally);
        return;
    }
    let target = budget();
    let first = std::env::var("VAULT_POWERLOSS_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1_000);
    let mut seed = first;
    while tally.states < target {
        check_workload(&Workload::random(seed, io), 60, 3, &mut tally);
        seed += 1;
    }
    report(io, &format!("random (seeds {first}..{seed})"), &tally);
}

common::both_io_paths!(sim a_crash_between_two_syncs_never_loses_the_first);
fn a_crash_between_two_syncs_never_loses_the_first(io: IoMode) {
    // A direct case that needs no enumeration, as a readable example of the check.
    let sim = SimStorage::new();
    let w = Workload {
        spares: 0,
        seed: 0,
        sync: SyncPolicy::Manual,
        segment_size: 4096,
        steps: vec![],
        io,
    };
    let wal = Wal::open(dir(), w.options(&sim)).unwrap();
    for lsn in 1..=40 {
        wal.append(&payload(lsn)).unwrap();
    }
    wal.sync().unwrap();
    for lsn in 41..=45 {
        wal.append(&payload(lsn)).unwrap();
    }
    let crashed = sim.crash(&CrashChoice::none());
    drop(wal);
    let wal = Wal::open(dir(), w.options(&crashed)).unwrap();
    let exp = Expect {
        acked: 40,
        appended: 45,
        truncated: 0,
    };
    assert_eq!(check_log(&wal, exp, true, u64::MAX).unwrap(), (1, 40));
}

common::both_io_paths!(sim a_crash_while_recovery_removes_segments_past_the_tail_leaves_no_gap);
/// Regression: recovery removed the segments past the tail oldest first, so a crash after the
/// first removal reached the disk left a gap (segment 1, then 3) that the next `open` refused
/// as `MissingSegment`. Found by the second crash of the power-loss workloads.
fn a_crash_while_recovery_removes_segments_past_the_tail_leaves_no_gap(io: IoMode) {
    let sim = SimStorage::new();
    let w = Workload {
        spares: 0,
        seed: 0,
        sync: SyncPolicy::Manual,
        segment_size: 4096,
        steps: vec![],
        io,
    };
    let wal = Wal::open(dir(), w.options(&sim)).unwrap();
    for lsn in 1..=60 {
        wal.append(&record(lsn)).unwrap();
    }
    assert!(wal.stats().segments >= 3);
    // Power fails before any sync: the segments' names are durable, their activations not.
    let snap = sim.snapshot();
    let crashed = snap.crash(&CrashChoice {
        pages: vec![],
        dir_ops: snap.pending_dir_ops().len(),
    });
    drop(wal);
    crashed.record_snapshots(true);
    let wal = Wal::open(dir(), w.options(&crashed)).unwrap();
    let report = wal.recovery().clone();
    assert!(report.removed_segments.len() >= 2, "{report:?}");
    drop(wal);
    let removals: Vec<Snapshot> = crashed
        .take_snapshots()
        .into_iter()
        .filter(|s| {
            matches!(
                &s.point,
                CrashPoint::After {
                    kind: OpKind::Remove,
                    ..
                }
            )
        })
        .collect();
    assert!(removals.len() >= 2);
    for s in &removals {
        // Every removal made so far reaches the disk, none after it.
        let again = s.crash(&CrashChoice {
            pages: vec![],
            dir_ops: s.pending_dir_ops().len(),
        });
        let wal = Wal::open(dir(), w.options(&again))
            .unwrap_or_else(|e| panic!("crash {}: {e}", s.point));
        // The same log as the interrupted recovery found (the worker's final msync of full
        // segments made some records durable without a sync call).
        assert_eq!(
            (wal.first_lsn(), wal.last_lsn()),
            (1, report.next_lsn - 1),
            "crash {}",
            s.point
        );
    }
}

common::both_io_paths!(sim truncate_front_racing_a_rotation_keeps_a_durable_first_segment);
/// Regression: `truncate_front(lsn)` synced, then dropped every segment followed by one whose
/// first LSN is at most `lsn`. With `lsn` past what that sync covered (here `u64::MAX`, "drop
/// everything old"), a rotation by another appender in between made the new tail, whose
/// activation was not durable yet, the only segment: after a power loss the log began with an
/// unactivated segment of index > 1, which `open` refuses (`BadActivation`). Found by reading
/// `truncate_front` while writing these tests; the hook makes the race deterministic.
fn truncate_front_racing_a_rotation_keeps_a_durable_first_segment(io: IoMode) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

    let sim = SimStorage::new();
    let opts = |s: &SimStorage| {
        Options::default()
            .with_io(io)
            .with_segment_size(4096)
            .with_sync(SyncPolicy::Manual)
            .with_storage(Arc::new(s.clone()) as Arc<dyn Storage>)
    };
    let wal = Arc::new(Wal::open(dir(), opts(&sim)).unwrap());
    let mut last = 0;
    while wal.stats().segments < 3 {
        last = wal.append(&payload(last + 1)).unwrap();
    }
    let tail = wal.read(last).unwrap().segment().path().to_path_buf();
    let armed = Arc::new(AtomicBool::new(true));
    let next = Arc::new(AtomicU64::new(last + 1));
    {
        let (wal, armed, next) = (Arc::clone(&wal), Arc::clone(&armed), Arc::clone(&next));
        sim.set_hook(Some(Arc::new(move |p: &CrashPoint| {
            let CrashPoint::After {
                kind: OpKind::Sync,
                path,
                ok: true,
                ..
            } = p
            else {
                return;
            };
            // Right after truncate_front's sync of the tail, another appender fills it and
            // rotates into the next segment.
            if *path == tail && armed.swap(false, SeqCst) {
                let rotations = wal.stats().rotations;
                while wal.stats().rotations == rotations {
                    let lsn = next.fetch_add(1, SeqCst);
                    assert_eq!(wal.append(&payload(lsn)).unwrap(), lsn);
                }
            }
        })));
    }
    wal.truncate_front(u64::MAX).unwrap();
    sim.set_hook(None);
    assert!(!armed.load(SeqCst), "the race was not staged");
    // Power fails right after truncate_front returned.
    let crashed = sim.crash(&CrashChoice::none());
    drop(wal);
    let wal = Wal::open(dir(), opts(&crashed))
        .unwrap_or_else(|e| panic!("open after truncate_front and power loss: {e}"));
    let exp = Expect {
        acked: last,
        appended: next.load(SeqCst) - 1,
        truncated: u64::MAX,
    };
    check_log(&wal, exp, true, u64::MAX).unwrap();
}

/// The bytes thread `t` appends as its `s`-th record: a function of `(t, s)` alone, which the
/// record's first bytes name.
fn threaded_record(t: u8, s: u16) -> Vec<u8> {
    let len = 3 + (usize::from(t) * 31 + usize::from(s) * 7) % 200;
    let mut r = vec![t, s.to_le_bytes()[0], s.to_le_bytes()[1]];
    r.extend((3..len).map(|i| (i as u8).wrapping_mul(t.wrapping_add(3)) ^ (s as u8)));
    r
}

common::both_io_paths!(sim concurrent_acknowledged_appends_survive_power_loss_at_every_step);
/// Concurrent appenders under `Always` (group commit, rotations racing appends), crashed at
/// every recorded operation: every acknowledged record survives, at the LSN its append
/// returned, byte-exact.
fn concurrent_acknowledged_appends_survive_power_loss_at_every_step(io: IoMode) {
    use std::collections::HashMap;
    use std::sync::Mutex;

    const THREADS: u8 = 3;
    const EACH: u16 = 25;
    let sim = SimStorage::new();
    sim.record_snapshots(true);
    let w = Workload {
        spares: 0,
        seed: 7,
        sync: SyncPolicy::Always,
        segment_size: 4096,
        steps: vec![],
        io,
    };
    let wal = Arc::new(Wal::open(dir(), w.options(&sim)).unwrap());
    // (history of expectations, LSN -> (thread, seq)); the mark indexes the history.
    let shared = Arc::new(Mutex::new((vec![(0u64, 0u64)], HashMap::new())));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (wal, shared, sim) = (Arc::clone(&wal), Arc::clone(&shared), sim.clone());
            std::thread::spawn(move || {
                for s in 0..EACH {
                    {
                        let mut g = shared.lock().unwrap();
                        let (acked, started) = *g.0.last().unwrap();
                        g.0.push((acked, started + 1));
                        sim.set_mark(g.0.len() as u64 - 1);
                    }
                    let lsn = wal.append(&threaded_record(t, s)).unwrap();
                    let mut g = shared.lock().unwrap();
                    g.1.insert(lsn, (t, s));
                    let (acked, started) = *g.0.last().unwrap();
                    g.0.push((acked.max(lsn), started));
                    sim.set_mark(g.0.len() as u64 - 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let wal = Arc::into_inner(wal).unwrap();
    wal.close().unwrap();
    sim.record_snapshots(false);
    let mut snaps = sim.take_snapshots();
    snaps.push(sim.snapshot());
    let (history, lsn_of) = Arc::into_inner(shared).unwrap().into_inner().unwrap();
    assert_eq!(lsn_of.len(), usize::from(THREADS) * usize::from(EACH));

    let mut rng = SimRng::new(0xC0C0);
    let mut seen = HashSet::new();
    let mut states = 0u64;
    for snap in &snaps {
        let (acked, started) = history[snap.mark as usize];
        if !seen.insert((snap.fingerprint(), acked, started)) {
            continue;
        }
        let mut choices = vec![CrashChoice::none(), CrashChoice::all(snap)];
        choices.extend((0..4).map(|_| random_atomic_choice(snap, &mut rng)));
        for choice in &choices {
            let crashed = snap.crash(choice);
            let case = format!("crash {} ({choice}), acked {acked}", snap.point);
            let wal = Wal::open(dir(), w.options(&crashed))
                .unwrap_or_else(|e| panic!("{case}: open: {e}"));
            let last = wal.last_lsn();
            assert!(last >= acked, "{case}: recovered up to {last}");
            assert!(
                last <= started,
                "{case}: {last} records, {started} appends started"
            );
            let mut expect = 1;
            for r in wal.iter_from(1) {
                assert_eq!(r.lsn(), expect, "{case}: gap");
                let (t, s) = lsn_of[&expect];
                assert!(r.data() == threaded_record(t, s), "{case}: record {expect}");
                expect += 1;
            }
            assert_eq!(expect, last + 1, "{case}");
            states += 1;
        }
    }
    println!(
        "power_loss {} concurrent: checked {states} states",
        common::io_path(io)
    );
    assert!(states > 200, "{states}");
}

common::both_io_paths!(sim a_record_appended_during_a_flush_is_not_counted_durable_by_it);
/// A record appended while a flush is in its msync is not covered by that flush: `durable_lsn`
/// must not claim it, since its bytes may not have been written. (Staged with the storage
/// hook: the append happens right after the flush's msync of the tail.)
fn a_record_appended_during_a_flush_is_not_counted_durable_by_it(io: IoMode) {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    let sim = SimStorage::new();
    let w = Workload {
        spares: 0,
        seed: 0,
        sync: SyncPolicy::Manual,
        segment_size: 4096,
        steps: vec![],
        io,
    };
    let wal = Arc::new(Wal::open(dir(), w.options(&sim)).unwrap());
    for lsn in 1..=3 {
        wal.append(&record(lsn)).unwrap();
    }
    let tail = wal.read(3).unwrap().segment().path().to_path_buf();
    let armed = Arc::new(AtomicBool::new(true));
    {
        let (wal, armed) = (Arc::clone(&wal), Arc::clone(&armed));
        sim.set_hook(Some(Arc::new(move |p: &CrashPoint| {
            if let CrashPoint::After {
                kind: OpKind::Sync,
                path,
                ok: true,
                ..
            } = p
            {
                if *path == tail && armed.swap(false, SeqCst) {
                    assert_eq!(wal.append(&record(4)).unwrap(), 4);
                }
            }
        })));
    }
    wal.sync().unwrap();
    sim.set_hook(None);
    assert!(!armed.load(SeqCst), "the race was not staged");
    let durable = wal.durable_lsn();
    assert_eq!(durable, 3, "the flush claimed a record appended during it");
    let crashed = sim.crash(&CrashChoice::none());
    drop(wal);
    let wal = Wal::open(dir(), w.options(&crashed)).unwrap();
    assert!(wal.last_lsn() >= durable);
    let exp = Expect {
        acked: durable,
        appended: 4,
        truncated: 0,
    };
    check_log(&wal, exp, true, u64::MAX).unwrap();
}

/// What a cut does: `truncate_back(lsn)` or `reset(next_lsn)`.
#[derive(Debug, Clone, Copy)]
enum CutOp {
    Back(u64),
    Reset(u64),
}

/// A log of `appended` records whose first `synced` were synced, then cut.
#[derive(Debug, Clone, Copy)]
struct CutCase {
    name: &'static str,
    sync: SyncPolicy,
    synced: u64,
    appended: u64,
    op: CutOp,
    /// Second-generation records appended (and synced) after the cut returned.
    more: u64,
    /// Exhaustive choices per state up to this many, else sampled.
    limit: usize,
}

impl CutCase {
    /// The LSN the cut continues at, and the first LSN of the log after it.
    fn next_and_first(&self) -> (u64, u64) {
        match self.op {
            CutOp::Back(l) if l > 1 => (l, 1),
            CutOp::Back(l) => (l.max(1), l.max(1)),
            CutOp::Reset(n) => (n.max(1), n.max(1)),
        }
    }
}

/// Where a crash of a cut workload happened: 0 during the cut, 1 after it returned (second
/// generation being appended), 2 after those were synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CutExpect {
    stage: u64,
    /// Records every reopened log must hold (a prefix of the log): what was durable.
    acked: u64,
}

/// Checks a log recovered from a crash of a cut workload.
fn check_cut_log(wal: &Wal, c: &CutCase, exp: CutExpect, strict: bool) -> Result<(), String> {
    let (next, new_first) = c.next_and_first();
    let (first, last) = (wal.first_lsn(), wal.last_lsn());
    // During the cut: the old log (records from 1, first generation; maybe without its newest
    // segments, which hold records at or past the cut only, except for a reset), or the cut
    // log. Once the cut returned: only the cut log, with second-generation records after it.
    let old_log = exp.stage == 0 && first == 1;
    if !old_log && first != new_first {
        return Err(format!(
            "stage {}: the log starts at {first}, expected {new_first}",
            exp.stage
        ));
    }
    let bound = if old_log {
        c.appended
    } else {
        next - 1 + c.more
    };
    if last > bound {
        return Err(format!("records up to {last}, at most {bound} expected"));
    }
    if strict && last < exp.acked && !(matches!(c.op, CutOp::Reset(_)) && exp.stage == 0) {
        return Err(format!(
            "stage {}: durable records lost: the log ends at {last}, {} were durable",
            exp.stage, exp.acked
        ));
    }
    let mut expect = first;
    for r in wal.iter_from(first) {
        if r.lsn() != expect {
            return Err(format!("gap: record {} after {}", r.lsn(), expect - 1));
        }
        let want = if old_log || expect < next && matches!(c.op, CutOp::Back(_)) {
            payload(expect)
        } else {
            second_generation(expect)
        };
        if r.data() != &want[..] {
            let what = if r.data() == &payload(expect)[..] {
                "a discarded record came back"
            } else {
                "wrong bytes"
            };
            return Err(format!("stage {}: record {expect}: {what}", exp.stage));
        }
        expect += 1;
    }
    if expect != last + 1 {
        return Err(format!("read up to {} but last_lsn is {last}", expect - 1));
    }
    Ok(())
}

/// Runs one cut case: builds the log, records every storage operation of the cut and of the
/// appends after it, crashes each state every way `exhaustive_choices` lists (or samples),
/// reopens, checks, and appends once more to see the LSNs continue.
fn check_cut_case(c: &CutCase, samples: u64, tally: &mut Tally, io: IoMode) {
    let sim = SimStorage::new();
    let w = Workload {
        spares: 0,
        seed: 0,
        sync: c.sync,
        segment_size: 4096,
        steps: vec![],
        io,
    };
    let wal = Wal::open(dir(), w.options(&sim)).unwrap();
    for lsn in 1..=c.appended {
        assert_eq!(wal.append(&payload(lsn)).unwrap(), lsn);
        if lsn == c.synced {
            wal.sync().unwrap();
        }
    }
    let durable_before = wal.durable_lsn();
    assert!(durable_before >= c.synced);
    let mut history = vec![CutExpect {
        stage: 0,
        acked: match c.op {
            CutOp::Back(l) => durable_before.min(l.saturating_sub(1)),
            CutOp::Reset(_) => 0,
        },
    }];
    sim.set_mark(0);
    sim.record_snapshots(true);
    match c.op {
        CutOp::Back(l) => wal.truncate_back(l).unwrap(),
        CutOp::Reset(n) => wal.reset(n).unwrap(),
    }
    let (next, new_first) = c.next_and_first();
    assert_eq!(
        (wal.first_lsn(), wal.last_lsn()),
        (new_first, next - 1),
        "{c:?}"
    );
    history.push(CutExpect {
        stage: 1,
        acked: wal.durable_lsn(),
    });
    sim.set_mark(1);
    for lsn in next..next + c.more {
        assert_eq!(wal.append(&second_generation(lsn)).unwrap(), lsn);
    }
    wal.sync().unwrap();
    history.push(CutExpect {
        stage: 2,
        acked: next - 1 + c.more,
    });
    sim.set_mark(2);
    sim.record_snapshots(false);
    let mut snaps = sim.take_snapshots();
    snaps.push(sim.snapshot());
    drop(wal);
    let mut rng = SimRng::new(0x7B_0000 + c.appended);
    let mut seen = HashSet::new();
    for snap in &snaps {
        let exp = history[snap.mark as usize];
        if !seen.insert((snap.fingerprint(), exp)) {
            continue;
        }
        let choices = exhaustive_choices(snap, c.limit).unwrap_or_else(|| {
            let mut v = vec![CrashChoice::none(), CrashChoice::all(snap)];
            v.extend((0..samples).map(|_| random_choice(snap, &mut rng)));
            v
        });
        for choice in &choices {
            let strict = !destroys_durable_bytes(snap, choice);
            let crashed = snap.crash(choice);
            let case = format!(
                "cut case {} ({c:?}): crash {} ({choice}), expecting {exp:?}",
                c.name, snap.point
            );
            let wal = match open_crashed(&w, &crashed) {
                Ok(wal) => wal,
                Err(Error::Corruption { reason, .. }) if !strict => {
                    let name = format!("{reason:?}");
                    let name = name.split([' ', '{', '(']).next().unwrap_or_default();
                    tally.states += 1;
                    tally.typed_errors += 1;
                    *tally.errors.entry(name.to_string()).or_default() += 1;
                    continue;
                }
                Err(e) => panic!("{case}: open failed: {e}"),
            };
            check_cut_log(&wal, c, exp, strict).unwrap_or_else(|e| panic!("{case}: {e}"));
            // The next append lands right after the recovered end, and survives a reopen.
            let last = wal.last_lsn();
            let tail = b"after the crash";
            assert_eq!(wal.append(tail).unwrap(), last + 1, "{case}");
            wal.close().unwrap_or_else(|e| panic!("{case}: close: {e}"));
            let (wal, ()) = open_crashed(&w, &crashed)
                .map_or_else(|e| panic!("{case}: second open: {e}"), |w| (w, ()));
            assert_eq!(wal.last_lsn(), last + 1, "{case}");
            assert_eq!(wal.read(last + 1).unwrap().data(), &tail[..], "{case}");
            tally.states += 1;
            if strict {
                tally.strict += 1;
            } else if wal.last_lsn() <= exp.acked {
                tally.acked_lost_to_destroyed_pages += 1;
            }
        }
    }
}

common::both_io_paths!(sim a_crash_at_every_step_of_truncate_back_and_reset_keeps_the_log_valid);
/// `truncate_back` and `reset` crashed at every storage operation (the copy of the kept
/// records, their msync, the worker's stop and the removal of its spare, the removals of the
/// later segments, the directory fsyncs, the rename, the worker's restart) and at the appends
/// after them: `open` succeeds, the durable records before the cut are intact, and once the
/// call returned no discarded record is ever read back; appends then continue at the end.
fn a_crash_at_every_step_of_truncate_back_and_reset_keeps_the_log_valid(io: IoMode) {
    use SyncPolicy::*;
    // With 4 KiB segments and `payload`: records 1..=6 fill segment 1, record 7 (4.5 KiB)
    // takes an enlarged segment 2, records 8.. start segment 3, and so on.
    let cases = [
        CutCase {
            name: "in the tail segment, part of it unsynced",
            sync: Manual,
            synced: 9,
            appended: 13,
            op: CutOp::Back(11),
            more: 3,
            limit: 1_500,
        },
        CutCase {
            name: "at a segment boundary (the enlarged segment emptied, later ones removed)",
            sync: Manual,
            synced: 12,
            appended: 14,
            op: CutOp::Back(7),
            more: 2,
            limit: 600,
        },
        CutCase {
            name: "in an older segment, several later segments removed",
            sync: Manual,
            synced: 30,
            appended: 40,
            op: CutOp::Back(3),
            more: 2,
            limit: 300,
        },
        CutCase {
            name: "in an older segment, nothing synced",
            sync: Manual,
            synced: 0,
            appended: 20,
            op: CutOp::Back(4),
            more: 2,
            limit: 300,
        },
        CutCase {
            name: "everything (truncate_back(1)), under Always",
            sync: Always,
            synced: 0,
            appended: 16,
            op: CutOp::Back(1),
            more: 2,
            limit: 600,
        },
        CutCase {
            name: "at the last record, under Always",
            sync: Always,
            synced: 0,
            appended: 12,
            op: CutOp::Back(12),
            more: 2,
            limit: 600,
        },
        CutCase {
            name: "in a middle segment, under Always",
            sync: Always,
            synced: 0,
            appended: 30,
            op: CutOp::Back(10),
            more: 2,
            limit: 300,
        },
        CutCase {
            name: "reset beyond the end",
            sync: Manual,
            synced: 16,
            appended: 16,
            op: CutOp::Reset(500),
            more: 3,
            limit: 600,
        },
        CutCase {
            name: "reset below the end",
            sync: Manual,
            synced: 10,
            appended: 16,
            op: CutOp::Reset(5),
            more: 2,
            limit: 600,
        },
    ];
    if replay_seed().is_some() {
        return;
    }
    // Random choices per state with too many to enumerate: 16 by default, more when
    // `cargo xtask powerloss` raises the budget.
    let samples = (budget() / 250).max(16);
    let mut tally = Tally::default();
    for c in &cases {
        check_cut_case(c, samples, &mut tally, io);
    }
    report(io, "truncate_back", &tally);
    assert!(tally.states >= 1_500, "{tally:?}");
}
