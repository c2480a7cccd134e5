//! Checks after the fact: the cutter's witnesses, and the reopen that must show every record.

use super::*;

/// Every witness still in the log must hold the bytes it held when read.
pub(super) fn check_witnesses(run: &Run, witnesses: &mut Vec<Witness>) {
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

/// Reopens the WAL and checks it: it must show exactly what the WAL showed before close
/// (`shown`), every record well formed and given to its LSN by an append, each appender's
/// records in sequence order, the witnesses unchanged; without cuts, also every record still
/// expected present.
pub(super) fn verify_reopen(
    dir: &std::path::Path,
    args: &Args,
    logs: &[AppenderLog],
    last_lsn: u64,
    shown: &[(u64, Vec<u8>)],
    witnesses: &[Witness],
    violations: &Violations,
) -> Result<u64, Box<dyn std::error::Error>> {
    let wal = Wal::open(dir, options(args))?;
    let report = wal.recovery().clone();
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
