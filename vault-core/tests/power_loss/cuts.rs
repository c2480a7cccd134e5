//! `truncate_back` and `reset` crashed at every step.

use super::*;

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
