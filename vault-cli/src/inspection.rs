//! `vault cat`, `vault verify` and `vault info`: read-only looks at a log directory.
//!
//! All three go through [`vault_core::inspect`], which reads the segments without the
//! directory lock and without changing a byte (never `Wal::open`, which would recover, and
//! so modify, the log). Corruption is not an error of `inspect`: it comes back as
//! [`Health::Corrupt`] with the records before it still readable, and each command decides
//! what to show before it fails.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use vault_core::{inspect, Health, Inspection};

use crate::cli::{CatArgs, DirArg};
use crate::failure::Failure;
use crate::human;

/// Prints the records from `--from` on, each followed by `\n` (after `LSN\t` with `--lsn`).
pub(crate) fn cat(args: &CatArgs) -> Result<(), Failure> {
    let insp = open(&args.dir)?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut printed = 0u64;
    for r in insp.records_from(args.from) {
        if args.lsn {
            write!(out, "{}\t", r.lsn()).map_err(|e| Failure::stdout(&e))?;
        }
        out.write_all(&r).map_err(|e| Failure::stdout(&e))?;
        out.write_all(b"\n").map_err(|e| Failure::stdout(&e))?;
        printed += 1;
    }
    out.flush().map_err(|e| Failure::stdout(&e))?;
    match insp.health() {
        Health::Clean => Ok(()),
        Health::TornTail(t) => {
            eprintln!(
                "vault: note: the log ends at a torn tail in {} at byte {} ({} bytes that no \
                 sync completed; recovery will cut them): every whole record was printed",
                name(&t.file),
                t.offset,
                t.bytes_dropped
            );
            Ok(())
        }
        Health::Corrupt(e) => {
            eprintln!(
                "vault: printed {printed} records; the log cannot be read past the damage below"
            );
            Err(e.into())
        }
    }
}

/// Checks every record: exit 0 if whole or torn only at the tail, 1 on corruption.
pub(crate) fn verify(args: &DirArg) -> Result<(), Failure> {
    let insp = open(&args.dir)?;
    let segs = insp.segments();
    let dir = args.dir.display();
    let what = records_phrase(&insp, segs.len());
    let mut s = String::new();
    let mut corrupt = None;
    // Writing to a String cannot fail.
    match insp.health() {
        Health::Clean => {
            let _ = writeln!(s, "{dir}: ok: {what}, every checksum valid");
        }
        Health::TornTail(t) => {
            let _ = writeln!(
                s,
                "{dir}: ok, with a torn tail: {what}, all whole; after them {} holds, from \
                 byte {} on, {} bytes that no commit marker attests ({}): written after the \
                 last completed sync. Recovery (the next `vault write`) cuts them there",
                name(&t.file),
                t.offset,
                t.bytes_dropped,
                t.reason
            );
        }
        Health::Corrupt(e) => {
            let _ = writeln!(s, "{dir}: CORRUPT; readable before the damage: {what}");
            if insp.unread_segments() > 0 {
                let _ = writeln!(
                    s,
                    "  {} segment file(s) after it were not read",
                    insp.unread_segments()
                );
            }
            corrupt = Some(e);
        }
    }
    if corrupt.is_none() {
        for line in leftovers(&insp) {
            let _ = writeln!(s, "  recovery would {line}");
        }
    }
    print(&s)?;
    match corrupt {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Shows the segments, totals and what recovery would do.
pub(crate) fn info(args: &DirArg) -> Result<(), Failure> {
    let insp = open(&args.dir)?;
    let segs = insp.segments();
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "log {}", args.dir.display());
    if segs.is_empty() {
        let _ = writeln!(s, "segments: none readable");
    } else {
        let _ = writeln!(s, "segments ({}):", segs.len());
    }
    let _ = writeln!(
        s,
        "  {:>6}  {:<54}  {:>12}  {:>12}  {:>10}  {:>12}  {:>12}",
        "index", "file", "first LSN", "last LSN", "records", "bytes used", "capacity"
    );
    for seg in &segs {
        let _ = writeln!(
            s,
            "  {:>6}  {:<54}  {:>12}  {:>12}  {:>10}  {:>12}  {:>12}",
            seg.index,
            name(&seg.path),
            lsn_cell(seg.first_lsn, seg.records),
            seg.last_lsn().map_or_else(|| "-".into(), |l| l.to_string()),
            seg.records,
            seg.bytes_used,
            seg.capacity
        );
    }
    let used: u64 = segs.iter().map(|g| g.bytes_used).sum();
    let capacity: u64 = segs.iter().map(|g| g.capacity).sum();
    let records = insp.next_lsn() - insp.first_lsn();
    let _ = writeln!(
        s,
        "totals: {records} records, {used} bytes used ({}) of {capacity} ({}) in {}; first \
         LSN {}, next LSN {}",
        human::bytes(used),
        human::bytes(capacity),
        human::plural(segs.len() as u64, "segment"),
        insp.first_lsn(),
        insp.next_lsn()
    );
    let mut plan: Vec<String> = Vec::new();
    let mut corrupt = None;
    match insp.health() {
        Health::Clean => {}
        Health::TornTail(t) => plan.push(format!(
            "cut the torn tail at {} byte {}, dropping {} bytes ({})",
            name(&t.file),
            t.offset,
            t.bytes_dropped,
            t.reason
        )),
        Health::Corrupt(e) => {
            plan.push(format!(
                "refuse to open the log: corruption (below){}",
                if insp.unread_segments() > 0 {
                    format!(
                        "; {} segment file(s) after it not read",
                        insp.unread_segments()
                    )
                } else {
                    String::new()
                }
            ));
            corrupt = Some(e);
        }
    }
    if corrupt.is_none() {
        plan.extend(leftovers(&insp));
    }
    if plan.is_empty() {
        let _ = writeln!(s, "recovery would: nothing (the log is whole)");
    } else {
        let _ = writeln!(s, "recovery would:");
        for p in plan {
            let _ = writeln!(s, "  - {p}");
        }
    }
    print(&s)?;
    match corrupt {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Writes a finished report to stdout.
fn print(report: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(report.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::stdout(&e))
}

/// Inspects `dir`, turning the ways it can be the wrong thing into messages that say so.
fn open(dir: &Path) -> Result<Inspection, Failure> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Failure::trouble(format!(
                "{}: no such directory: give the directory a `vault write` created",
                dir.display()
            )))
        }
        Err(e) => {
            return Err(Failure::trouble(format!(
                "cannot read {}: {e}{}",
                dir.display(),
                crate::failure::io_hint(&e)
            )))
        }
        Ok(m) if !m.is_dir() => return Err(not_a_directory(dir)),
        Ok(_) => {}
    }
    let insp = inspect(dir)?;
    if insp.segments().is_empty()
        && insp.pre_files().is_empty()
        && insp.past_tail().is_empty()
        && matches!(insp.health(), Health::Clean)
    {
        return Err(Failure::trouble(format!(
            "{} holds no vault segments (gs-vault-*.log files): is it the right directory?",
            dir.display()
        )));
    }
    Ok(insp)
}

/// The failure of a log directory argument that names a file.
pub(crate) fn not_a_directory(dir: &Path) -> Failure {
    let hint = match dir.parent() {
        Some(p) if name(dir).starts_with("gs-vault-") && !p.as_os_str().is_empty() => {
            format!("give the directory that holds it ({})", p.display())
        }
        _ => "give the directory that holds the gs-vault-*.log segment files".into(),
    };
    Failure::trouble(format!(
        "{} is a file, not a log directory: {hint}",
        dir.display()
    ))
}

/// What recovery would remove besides a torn tail: `-pre` files and segments past the end.
fn leftovers(insp: &Inspection) -> Vec<String> {
    let mut out = Vec::new();
    let pre = insp.pre_files();
    if !pre.is_empty() {
        out.push(format!(
            "remove {} half-made -pre segment file(s) (a crash while preparing one): {}",
            pre.len(),
            names(pre)
        ));
    }
    let past = insp.past_tail();
    if !past.is_empty() {
        // With no torn tail, the segments past the end hold no bytes: spares the rotation
        // worker prepared and the log never reached.
        let why = if matches!(insp.health(), Health::Clean) {
            "prepared spares that hold no records"
        } else {
            "written after the last completed sync"
        };
        out.push(format!(
            "remove {} segment file(s) past the end of the log ({why}): {}",
            past.len(),
            names(&past)
        ));
    }
    out
}

/// `N records (LSN a..=b) in K segments`, or `no records …`.
fn records_phrase(insp: &Inspection, segments: usize) -> String {
    let n = insp.next_lsn() - insp.first_lsn();
    if n == 0 {
        format!("no records, {}", human::plural(segments as u64, "segment"))
    } else {
        format!(
            "{n} records (LSN {}..={}) in {}",
            insp.first_lsn(),
            insp.next_lsn() - 1,
            human::plural(segments as u64, "segment")
        )
    }
}

fn lsn_cell(first: u64, records: u64) -> String {
    if first == 0 || records == 0 {
        "-".into()
    } else {
        first.to_string()
    }
}

/// The file name of a path, for messages (the directory is already named).
fn name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn names(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| name(p)).collect::<Vec<_>>().join(", ")
}
