//! The machinery: workloads, their recorded runs, crash choices over each captured state, and
//! the checks every recovered state must pass.

use super::*;

pub(crate) const DIR: &str = "/wal";
pub(crate) const DEFAULT_STATES: u64 = 4_000;

pub(crate) fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

/// The bytes of record `lsn`: mostly small, every 23rd larger than a 4 KiB segment (so the
/// writer has to enlarge the next segment), always a function of the LSN alone.
pub(crate) fn payload(lsn: u64) -> Vec<u8> {
    let mut r = record(lsn);
    if lsn % 23 == 7 {
        let big = 4500 + (lsn * 13 % 2000) as usize;
        r = r.iter().copied().cycle().take(big).collect();
    }
    r
}

/// What must hold of a crash state taken at one moment of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Expect {
    /// Every record up to here was acknowledged durable.
    pub(crate) acked: u64,
    /// No record past here was ever handed to `append`.
    pub(crate) appended: u64,
    /// The highest LSN `truncate_front` was asked to drop records before (0: never).
    pub(crate) truncated: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
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
pub(crate) struct Workload {
    pub(crate) seed: u64,
    pub(crate) sync: SyncPolicy,
    pub(crate) segment_size: u64,
    pub(crate) steps: Vec<Step>,
    pub(crate) io: IoMode,
    /// Spares the worker keeps (0: the default). With one, files `truncate_front` pools are
    /// recycled from the next rotation on.
    pub(crate) spares: usize,
}

impl Workload {
    pub(crate) fn random(seed: u64, io: IoMode) -> Self {
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

    pub(crate) fn options(&self, storage: &SimStorage) -> Options {
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
pub(crate) struct Recorded {
    pub(crate) snapshots: Vec<Snapshot>,
    pub(crate) history: Vec<Expect>,
    /// Segments made from recycled files during the run.
    pub(crate) recycled: u64,
}

pub(crate) struct Runner<'a> {
    pub(crate) sim: &'a SimStorage,
    pub(crate) history: Vec<Expect>,
    pub(crate) cur: Expect,
}

impl Runner<'_> {
    pub(crate) fn set(&mut self, f: impl FnOnce(&mut Expect)) {
        f(&mut self.cur);
        if self.history.last() != Some(&self.cur) {
            self.history.push(self.cur);
            self.sim.set_mark(self.history.len() as u64 - 1);
        }
    }
}

pub(crate) fn run(w: &Workload) -> Recorded {
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
pub(crate) fn atomic_fates() -> [PageFate; 4] {
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
pub(crate) fn exhaustive_choices(snap: &Snapshot, limit: usize) -> Option<Vec<CrashChoice>> {
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
pub(crate) fn random_choice(snap: &Snapshot, rng: &mut SimRng) -> CrashChoice {
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
pub(crate) fn random_atomic_choice(snap: &Snapshot, rng: &mut SimRng) -> CrashChoice {
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
pub(crate) fn destroys_durable_bytes(snap: &Snapshot, choice: &CrashChoice) -> bool {
    choice.pages.iter().any(|(p, f)| {
        matches!(f, PageFate::Zeroed | PageFate::Garbage(_))
            && snap
                .durable_page(*p)
                .is_some_and(|b| b.iter().any(|&x| x != 0))
    })
}

#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Typed errors by reason (only where a zeroed or garbage page destroyed durable bytes).
    pub(crate) errors: std::collections::BTreeMap<String, u64>,
    pub(crate) states: u64,
    pub(crate) strict: u64,
    pub(crate) typed_errors: u64,
    pub(crate) acked_lost_to_destroyed_pages: u64,
}

pub(crate) enum Outcome {
    Recovered { lost_acked: bool },
    TypedError(String),
}

/// The bytes of record `lsn` appended after a crash and recovery: different from what the
/// first generation appended at that LSN, so a stale first-generation record that resurfaces
/// after the second crash cannot pass for it.
pub(crate) fn second_generation(lsn: u64) -> Vec<u8> {
    let mut r = payload(lsn);
    r.push(0xA5);
    r
}

/// Reads the whole log and checks it against `exp`; returns (first, last). Records after
/// `gen2_from` must be second-generation records.
pub(crate) fn check_log(
    wal: &Wal,
    exp: Expect,
    strict: bool,
    gen2_after: u64,
) -> Result<(u64, u64), String> {
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

pub(crate) fn open_crashed(w: &Workload, storage: &SimStorage) -> vault_core::Result<Wal> {
    Wal::open(dir(), w.options(storage))
}

/// Crashes `snap` with `choice`, reopens, checks, appends, crashes again, reopens, checks.
pub(crate) fn check_state(
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
pub(crate) fn dump(storage: &SimStorage, name: &str) -> PathBuf {
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

pub(crate) fn fail(
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
pub(crate) fn check_workload(
    w: &Workload,
    exhaustive_limit: usize,
    samples: u64,
    tally: &mut Tally,
) {
    check_recorded(w, &run(w), exhaustive_limit, samples, tally);
}

pub(crate) fn check_recorded(
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

pub(crate) fn budget() -> u64 {
    std::env::var("VAULT_POWERLOSS_STATES")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(DEFAULT_STATES)
}

pub(crate) fn replay_seed() -> Option<u64> {
    std::env::var("VAULT_POWERLOSS_SEED").ok()?.parse().ok()
}

pub(crate) fn report(io: IoMode, name: &str, t: &Tally) {
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
