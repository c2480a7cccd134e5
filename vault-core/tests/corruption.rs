//! The corruption matrix: thousands of damaged copies of real logs, each with the outcome the
//! recovery rule (docs/ARCHITECTURE.md §6) prescribes, asserted for both `Wal::open` and the
//! read-only `vault_core::inspect`.
//!
//! Two template logs are written for real with `SyncPolicy::Manual` and 16 KiB segments, so
//! which records are attested is known exactly:
//!
//! - **killed**: records 1..=400, synced after 100 and 250 (so commit markers attesting 100 and
//!   250 precede records 101 and 251), then the process aborts: 251..=400 are unsynced, and an
//!   unused spare segment may follow the tail.
//! - **closed**: the same records and syncs, then `close`, whose final marker attests all 400.
//!
//! Two more templates went through `Wal::truncate_back` (same records, same syncs):
//! **cut-closed** was cut at 180, in its second segment (the later segments removed, that one
//! replaced by a copy of its records before 180), then 180..=400 were appended again and the
//! log closed; **cut-killed** was written to 520, cut at 392 inside the segment that becomes
//! the tail, then 392..=400 were appended again (unsynced) and the process aborted.
//!
//! Each case copies a template, damages it, and derives the expected outcome from *what was
//! damaged*, not from how recovery is coded: the first record (in log order) whose bytes
//! changed is where the log must stop; if a commit marker that survived past that point attests
//! it, the damage is in acknowledged records and `open` must fail with `Error::Corruption`
//! naming the file and offset and change nothing; otherwise everything from there on was
//! written after the last sync anything on disk attests, and `open` must cut it (a torn tail),
//! keeping every record before it byte-exact. Damage to headers, activation blocks, file sizes
//! and the set of files has fixed, typed outcomes. Every case also checks that `inspect` says
//! the same as `open`, and after a successful open that appends continue and survive a reopen.
//!
//! The matrix runs on both I/O paths (`...::mmap`, `...::direct`): the closed templates are
//! written and every case is recovered on the path under test; the killed templates are
//! written on the mmap path, the only one whose unsynced records outlive a killed writer.
//!
//! No case may panic or hang: panics are caught and reported with the case, and a watchdog
//! aborts (naming the case) if one runs for minutes. The number of cases is printed.

mod common;

use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::record;
use vault_core::{inspect, CorruptionKind, Error, Health, IoMode, Options, SyncPolicy, Wal};
use vault_segment::format::{encode_activation, seal_crc, SegmentHeader, MAGIC};
use vault_segment::{parse_segment_name, partial_crc, segment_file_name};

const SEGMENT: u64 = 16 * 1024;
const RECORDS: u64 = 400;
const SYNC_AFTER: [u64; 2] = [100, 250];
const CHILD_ENV: &str = "VAULT_CORRUPTION_CHILD_DIR";
/// Set for the child that writes the "cut-killed" template.
const CHILD_CUT_ENV: &str = "VAULT_CORRUPTION_CHILD_CUT";
/// Where the "cut-closed" template is cut: in an older segment, so the segments after it are
/// removed and the records after it written again into the replaced segment and new ones.
const CUT_OLDER: u64 = 180;
/// Where the "cut-killed" template is cut: in the segment that becomes the tail, whose
/// records from here on are written again (unsynced) after the cut.
const CUT_TAIL: u64 = 392;

type Files = BTreeMap<String, Vec<u8>>;

fn opts(io: IoMode) -> Options {
    Options::default()
        .with_io(io)
        .with_segment_size(SEGMENT)
        .with_sync(SyncPolicy::Manual)
}

fn write_template_records(wal: &Wal) {
    for lsn in 1..=RECORDS {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
        if SYNC_AFTER.contains(&lsn) {
            wal.sync().unwrap();
        }
    }
}

/// Writes the same records as [`write_template_records`], but through a `truncate_back`:
/// records up to `through` (synced after 100 and 250), cut at `cut` (which must lie in a
/// segment that others follow), then `cut..=RECORDS` again with the same bytes.
fn write_template_records_with_cut(wal: &Wal, through: u64, cut: u64) {
    for lsn in 1..=through {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
        if SYNC_AFTER.contains(&lsn) {
            wal.sync().unwrap();
        }
    }
    let tail = wal.read(through).unwrap().segment().path().to_path_buf();
    assert_ne!(
        wal.read(cut).unwrap().segment().path(),
        tail,
        "segments follow the cut"
    );
    wal.truncate_back(cut).unwrap();
    for lsn in cut..=RECORDS {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
        if SYNC_AFTER.contains(&lsn) {
            wal.sync().unwrap();
        }
    }
}

/// Not a test of its own: writes the "killed" template in a child process and aborts, leaving
/// the state a killed writer leaves (no final sync, no final marker). With
/// `VAULT_CORRUPTION_CHILD_CUT` set, the "cut-killed" template: records to 520, cut at
/// [`CUT_TAIL`], 392..=400 appended again, then the abort.
#[test]
#[ignore = "run as a child process by the corruption matrix"]
fn corruption_template_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    // The killed templates are written on the mmap path: its unsynced records outlive the
    // process, so they hold a tail past the last sync to damage (a killed direct writer's
    // unsynced records die with it). Recovery runs on the path under test.
    let wal = Wal::open(&dir, opts(IoMode::Mmap)).unwrap();
    if std::env::var_os(CHILD_CUT_ENV).is_some() {
        write_template_records_with_cut(&wal, 520, CUT_TAIL);
    } else {
        write_template_records(&wal);
    }
    // Let the worker finish preparing the spare, so the template always has one past the
    // tail (a bounded wait: without it the template is only less varied).
    let tail = wal.stats().segments as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline
        && !segment_names(Path::new(&dir))
            .iter()
            .any(|n| parse_segment_name(n).is_some_and(|s| !s.pre && s.index == tail + 1))
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::process::abort();
}

/// The names of the log's segments in `dir`, read without opening them: a file listed here may
/// be renamed by a running rotation worker before it could be read.
fn segment_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| parse_segment_name(n).is_some())
        .collect()
}

fn read_files(dir: &Path) -> Files {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        // Only the log's segments: not the lock file Windows keeps in the directory.
        .filter(|e| parse_segment_name(&e.file_name().to_string_lossy()).is_some())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn write_files(dir: &Path, files: &Files) {
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// One frame of a template, as written.
#[derive(Debug, Clone, Copy)]
struct Frame {
    off: usize,
    len: usize,
    /// A record's LSN, or for a marker the LSN of the record after it.
    lsn: u64,
    /// For a commit marker, the LSN it attests.
    attests: Option<u64>,
}

impl Frame {
    /// The bytes the frame's checks cover: header and payload (padding is not checked).
    fn checked(&self) -> Range<usize> {
        self.off..self.off + 16 + self.len
    }
    fn end(&self) -> usize {
        self.off + ((16 + self.len + 7) & !7)
    }
}

/// One segment of a template, as written.
#[derive(Debug, Clone)]
struct Seg {
    name: String,
    index: u64,
    capacity: usize,
    salt: u64,
    /// First LSN, or `None` for an unactivated spare.
    first: Option<u64>,
    frames: Vec<Frame>,
    /// Where the frames end.
    end: usize,
    /// The LSN after its last record.
    next: u64,
}

impl Seg {
    fn records(&self) -> impl DoubleEndedIterator<Item = &Frame> {
        self.frames.iter().filter(|f| f.attests.is_none())
    }
}

/// A template log: its files and their layout, parsed by this test (independently of
/// vault-segment's scanner; the template is known to be valid).
struct Template {
    name: &'static str,
    files: Files,
    segs: Vec<Seg>,
    /// Segment 2 as it was when record 130 had just been appended (closed template only).
    older_copy: Option<Vec<u8>>,
}

fn parse_template(name: &'static str, files: Files, older_copy: Option<Vec<u8>>) -> Template {
    let mut segs = Vec::new();
    for (fname, b) in &files {
        let n = parse_segment_name(fname).expect("only segments in a template");
        assert!(!n.pre, "templates hold no -pre files");
        assert_eq!(&b[0..8], &MAGIC);
        let capacity = u64_at(b, 32) as usize;
        assert_eq!(
            b.len(),
            capacity,
            "{fname}: a segment is as long as its capacity"
        );
        let salt = u64_at(b, 24);
        let act = &b[64..76];
        let mut seg = Seg {
            name: fname.clone(),
            index: n.index,
            capacity,
            salt,
            first: None,
            frames: Vec::new(),
            end: 128,
            next: 0,
        };
        if act.iter().any(|&x| x != 0) {
            let first = u64_at(b, 64);
            assert_eq!(act, encode_activation(first, salt));
            seg.first = Some(first);
            let mut lsn = first;
            let mut off = 128;
            while off + 16 <= capacity && b[off..off + 16].iter().any(|&x| x != 0) {
                let len = u32_at(b, off) as usize;
                let f = match b[off + 4] {
                    1 => {
                        lsn += 1;
                        Frame {
                            off,
                            len,
                            lsn: lsn - 1,
                            attests: None,
                        }
                    }
                    2 => Frame {
                        off,
                        len,
                        lsn: u64_at(b, off + 24),
                        attests: Some(u64_at(b, off + 16)),
                    },
                    k => panic!("{fname}: kind {k} at {off}"),
                };
                off = f.end();
                seg.frames.push(f);
            }
            seg.end = off;
            seg.next = lsn;
            assert!(
                b[off..].iter().all(|&x| x == 0),
                "{fname}: zero past the frames"
            );
        } else {
            assert!(b[64..].iter().all(|&x| x == 0), "{fname}: a spare is zero");
        }
        segs.push(seg);
    }
    segs.sort_by_key(|s| s.index);
    // The records are exactly 1..=RECORDS, in order, with the expected contents.
    let mut want = 1;
    for s in &segs {
        for f in s.records() {
            assert_eq!(f.lsn, want);
            let b = &files[&s.name];
            assert_eq!(&b[f.off + 16..f.off + 16 + f.len], &record(want)[..]);
            want += 1;
        }
    }
    assert_eq!(want, RECORDS + 1, "{name}: template holds every record");
    assert!(
        segs.iter().filter(|s| s.first.is_some()).count() >= 4,
        "{name}: enough segments for a middle"
    );
    Template {
        name,
        files,
        segs,
        older_copy,
    }
}

fn closed_template(base: &Path, io: IoMode) -> Template {
    let dir = tempfile::tempdir_in(base).unwrap();
    let wal = Wal::open(dir.path(), opts(io)).unwrap();
    let mut older = None;
    for lsn in 1..=RECORDS {
        wal.append(&record(lsn)).unwrap();
        if SYNC_AFTER.contains(&lsn) {
            wal.sync().unwrap();
        }
        if lsn == 130 {
            let segs = common::segment_files(dir.path());
            older = Some(std::fs::read(&segs[1]).unwrap());
        }
    }
    wal.close().unwrap();
    parse_template("closed", read_files(dir.path()), older)
}

/// The "closed" template's records, written through a `truncate_back` at [`CUT_OLDER`] (the
/// segments after it removed, its own replaced), then closed.
fn cut_closed_template(base: &Path, io: IoMode) -> Template {
    let dir = tempfile::tempdir_in(base).unwrap();
    let wal = Wal::open(dir.path(), opts(io)).unwrap();
    write_template_records_with_cut(&wal, RECORDS, CUT_OLDER);
    wal.close().unwrap();
    let t = parse_template("cut-closed", read_files(dir.path()), None);
    // The replaced segment is the one the matrix damages as its "middle" (every block).
    assert_eq!(t.frame_of(CUT_OLDER).0.index, t.middle().index);
    assert_eq!(t.frame_of(CUT_OLDER - 1).0.index, t.middle().index);
    t
}

fn killed_template(base: &Path) -> Template {
    killed_template_of(base, "killed", false)
}

fn killed_template_of(base: &Path, name: &'static str, cut: bool) -> Template {
    let dir = tempfile::tempdir_in(base).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "corruption_template_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir.path());
    if cut {
        child.env(CHILD_CUT_ENV, "1");
    }
    let status = child.output().unwrap().status;
    assert!(!status.success(), "the template writer must die by abort");
    let mut files = read_files(dir.path());
    // The worker may have been preparing a spare when the writer died: that half-made file is
    // not part of the template (the -pre cases add their own).
    files.retain(|n, _| !n.ends_with("-pre.log"));
    parse_template(name, files, None)
}

/// What recovery must do with a case.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    /// `open` succeeds with the log `1..next` (or `first..next`).
    Recovered {
        first: u64,
        next: u64,
        /// The cut: file name and offset, when bytes are dropped.
        torn: Option<(String, u64)>,
        removed_segments: Vec<String>,
        removed_pre: Vec<String>,
    },
    /// `open` fails with `Error::Corruption` at this file and offset.
    Corrupt {
        file: String,
        offset: u64,
        kind: Kind,
    },
    /// `open` fails with `Error::UnsupportedVersion` for this file.
    Unsupported { file: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A reason with this variant name (its fields are not checked).
    Named(&'static str),
    /// `AcknowledgedRecordLost` for this LSN.
    AckLost(u64),
    /// `MissingSegment` for this index.
    Missing(u64),
}

impl Kind {
    fn matches(&self, reason: &CorruptionKind) -> bool {
        match self {
            Kind::Named(n) => {
                let d = format!("{reason:?}");
                d == *n || d.starts_with(&format!("{n} ")) || d.starts_with(&format!("{n}{{"))
            }
            Kind::AckLost(lsn) => {
                matches!(reason, CorruptionKind::AcknowledgedRecordLost { lsn: l, .. } if l == lsn)
            }
            Kind::Missing(i) => {
                matches!(reason, CorruptionKind::MissingSegment { index } if index == i)
            }
        }
    }
}

fn corrupt(file: &str, offset: usize, kind: Kind) -> Expected {
    Expected::Corrupt {
        file: file.to_string(),
        offset: offset as u64,
        kind,
    }
}

impl Template {
    fn activated(&self) -> impl Iterator<Item = &Seg> {
        self.segs.iter().filter(|s| s.first.is_some())
    }
    fn tail(&self) -> &Seg {
        self.activated().last().unwrap()
    }
    fn middle(&self) -> &Seg {
        &self.segs[1]
    }
    fn spare(&self) -> Option<&Seg> {
        self.segs.iter().find(|s| s.first.is_none())
    }
    /// Every prepared, unactivated segment past the tail (the worker keeps several).
    fn spares(&self) -> impl Iterator<Item = &Seg> {
        self.segs.iter().filter(|s| s.first.is_none())
    }
    fn frame_of(&self, lsn: u64) -> (&Seg, Frame) {
        for s in &self.segs {
            if let Some(f) = s.records().find(|f| f.lsn == lsn) {
                return (s, *f);
            }
        }
        panic!("no record {lsn}")
    }
    fn markers(&self) -> Vec<(&Seg, Frame)> {
        self.segs
            .iter()
            .flat_map(|s| {
                s.frames
                    .iter()
                    .filter(|f| f.attests.is_some())
                    .map(move |f| (s, *f))
            })
            .collect()
    }
    fn max_index(&self) -> u64 {
        self.segs.last().unwrap().index
    }

    /// The outcome the recovery rule prescribes for byte damage (file set unchanged): see the
    /// module docs.
    fn model(&self, m: &Files) -> Expected {
        let p = &self.files;
        // Damage no crash can cause and that needs no evidence: headers and file sizes.
        for s in &self.segs {
            let b = &m[&s.name];
            if b.len() < 128 {
                return corrupt(&s.name, 0, Kind::Named("ShortFile"));
            }
            if b[0..64] != p[&s.name][0..64] {
                let kind = if b[0..8] == MAGIC {
                    "HeaderChecksum"
                } else {
                    "BadMagic"
                };
                return corrupt(&s.name, 0, Kind::Named(kind));
            }
            if b.len() < s.capacity {
                return corrupt(&s.name, b.len(), Kind::Named("Truncated"));
            }
        }
        // An activation block that is neither whole nor all zero, with frames after it, was
        // damaged: it is written before any frame. (Without frames it may be a copy torn by a
        // crash, which counts as missing: see the walk below.)
        for s in &self.segs {
            let b = &m[&s.name];
            let a = &b[64..76];
            if a != &p[&s.name][64..76]
                && a.iter().any(|&x| x != 0)
                && b[128..].iter().any(|&x| x != 0)
            {
                return corrupt(&s.name, 64, Kind::Named("BadActivation"));
            }
        }
        let nonzero = |name: &str, r: Range<usize>| m[name][r].iter().any(|&x| x != 0);
        let tail_pos = self.segs.iter().rposition(|s| s.first.is_some()).unwrap();
        // Find where the log must stop: (segment position, cut offset, reported offset and
        // file if it is corruption, the LSN that is lost first).
        let mut brk: Option<(usize, usize, (String, usize), u64)> = None;
        'walk: for (k, s) in self.segs.iter().enumerate() {
            let Some(first) = s.first else { break };
            let b = &m[&s.name];
            if b[64..76] != p[&s.name][64..76] {
                brk = Some(if k == 0 {
                    (0, 128, (s.name.clone(), 64), 1)
                } else {
                    let prev = &self.segs[k - 1];
                    (k - 1, prev.end, (s.name.clone(), 64), first)
                });
                break;
            }
            for f in &s.frames {
                if b[f.checked()] != p[&s.name][f.checked()] {
                    brk = Some((k, f.off, (s.name.clone(), f.off), f.lsn));
                    break 'walk;
                }
            }
            let at = (s.name.clone(), s.end);
            if k == tail_pos {
                if nonzero(&s.name, s.end..s.capacity) {
                    brk = Some((k, s.end, at, s.next));
                }
                break;
            }
            if s.end + 16 <= s.capacity && nonzero(&s.name, s.end..s.end + 16) {
                brk = Some((k, s.end, at, s.next));
                break;
            }
        }
        let last_next = self.tail().next;
        let names_after = |k: usize| -> Vec<String> {
            self.segs[k + 1..].iter().map(|s| s.name.clone()).collect()
        };
        let Some((k, cut, (file, offset), lost)) = brk else {
            // Whole log; anything non-zero in the spares past it is dropped as a torn tail.
            let t = &self.segs[tail_pos];
            let dirty = self.segs[tail_pos + 1..]
                .iter()
                .any(|s| nonzero(&s.name, 128..s.capacity));
            return Expected::Recovered {
                first: 1,
                next: last_next,
                torn: dirty.then(|| (t.name.clone(), t.end as u64)),
                removed_segments: names_after(tail_pos),
                removed_pre: vec![],
            };
        };
        // Evidence: commit markers that survived past the cut.
        let attested = self
            .markers()
            .iter()
            .filter(|(s, f)| {
                let pos = self.segs.iter().position(|x| x.index == s.index).unwrap();
                (pos > k || (pos == k && f.off >= cut))
                    && m[&s.name][f.off..f.off + 32] == p[&s.name][f.off..f.off + 32]
            })
            .filter_map(|(_, f)| f.attests)
            .max()
            .unwrap_or(0);
        if attested >= lost {
            return corrupt(&file, offset, Kind::AckLost(lost));
        }
        let s = &self.segs[k];
        let dirty = nonzero(&s.name, cut..s.capacity)
            || self.segs[k + 1..]
                .iter()
                .any(|s| nonzero(&s.name, 128..s.capacity));
        Expected::Recovered {
            first: 1,
            next: lost,
            torn: dirty.then(|| (s.name.clone(), cut as u64)),
            removed_segments: names_after(k),
            removed_pre: vec![],
        }
    }
}

/// One damaged directory and what recovery must make of it.
struct Case {
    class: &'static str,
    name: String,
    files: Files,
    expected: Expected,
}

fn dir_digest(dir: &Path) -> Files {
    read_files(dir)
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn ensure(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(msg())
    }
}

/// The readable records of a log are `first..next` and byte-exact.
fn check_records(
    it: impl Iterator<Item = vault_core::Record>,
    first: u64,
    next: u64,
) -> Result<(), String> {
    let mut want = first;
    for r in it {
        ensure(r.lsn() == want, || {
            format!("read LSN {} where {want} was due", r.lsn())
        })?;
        ensure(r.data() == record(want).as_slice(), || {
            format!("record {want} is not what was written")
        })?;
        want += 1;
    }
    ensure(want == next, || {
        format!("records end before {want}, expected before {next}")
    })
}

fn run_case(base: &Path, case: &Case, io: IoMode) -> Result<(), String> {
    let tmp = tempfile::tempdir_in(base).unwrap();
    let dir = tmp.path();
    write_files(dir, &case.files);
    let before = dir_digest(dir);
    let ins = inspect(dir).map_err(|e| format!("inspect failed: {e}"))?;
    let opened = Wal::open(dir, opts(io));
    match (&case.expected, opened) {
        (Expected::Corrupt { file, offset, kind }, Err(err)) => {
            let Error::Corruption {
                file: f,
                offset: o,
                reason,
            } = &err
            else {
                return Err(format!("expected corruption, got {err}"));
            };
            ensure(
                file_name(f) == *file && *o == *offset && kind.matches(reason),
                || format!("expected {kind:?} in {file} at {offset}, got {err}"),
            )?;
            match ins.health() {
                Health::Corrupt(Error::Corruption {
                    file: f2,
                    offset: o2,
                    reason: r2,
                }) => ensure(f2 == f && o2 == o && r2 == reason, || {
                    format!("inspect reports {} {o2} {r2}, open {err}", f2.display())
                })?,
                other => return Err(format!("open: {err}; inspect: {other:?}")),
            }
            ensure(dir_digest(dir) == before, || {
                "a refused open modified the directory".into()
            })?;
            // What inspect still reads is a byte-exact prefix.
            check_records(ins.records_from(1), 1, ins.next_lsn())
        }
        (Expected::Unsupported { file }, Err(err)) => {
            ensure(
                matches!(&err, Error::UnsupportedVersion { file: f, .. } if file_name(f) == *file),
                || format!("expected unsupported version in {file}, got {err}"),
            )?;
            ensure(
                matches!(
                    ins.health(),
                    Health::Corrupt(Error::UnsupportedVersion { .. })
                ),
                || format!("inspect: {:?}", ins.health()),
            )?;
            ensure(dir_digest(dir) == before, || {
                "a refused open modified the directory".into()
            })
        }
        (
            Expected::Recovered {
                first,
                next,
                torn,
                removed_segments,
                removed_pre,
            },
            Ok(wal),
        ) => {
            let report = wal.recovery();
            let got_torn = report
                .torn_tail
                .as_ref()
                .map(|t| (file_name(&t.file), t.offset));
            ensure(
                (report.first_lsn, report.next_lsn, &got_torn) == (*first, *next, torn),
                || {
                    format!(
                        "expected log {first}..{next} cut at {torn:?}, recovered {}..{} cut at \
                         {got_torn:?}",
                        report.first_lsn, report.next_lsn
                    )
                },
            )?;
            let mut removed: Vec<String> = report
                .removed_segments
                .iter()
                .map(|p| file_name(p))
                .collect();
            removed.sort();
            ensure(removed == *removed_segments, || {
                format!("removed {removed:?}, expected {removed_segments:?}")
            })?;
            let pre: Vec<String> = report.removed_pre.iter().map(|p| file_name(p)).collect();
            ensure(pre == *removed_pre, || {
                format!("removed -pre {pre:?}, expected {removed_pre:?}")
            })?;
            match (ins.health(), &report.torn_tail) {
                (Health::Clean, None) => {}
                (Health::TornTail(a), Some(b)) if a == b => {}
                (h, t) => return Err(format!("inspect says {h:?}, open cut {t:?}")),
            }
            ensure(ins.next_lsn() == *next && ins.first_lsn() == *first, || {
                "inspect and open disagree on the log's extent".into()
            })?;
            check_records(wal.iter_from(*first), *first, *next)?;
            // Appends continue where the log ends, and survive a clean reopen with nothing
            // stale behind them.
            for lsn in *next..*next + 3 {
                let got = wal
                    .append(&record(lsn))
                    .map_err(|e| format!("append: {e}"))?;
                ensure(got == lsn, || {
                    format!("append got LSN {got}, expected {lsn}")
                })?;
            }
            wal.close().map_err(|e| format!("close: {e}"))?;
            let wal = Wal::open(dir, opts(io)).map_err(|e| format!("reopen: {e}"))?;
            let again = wal.recovery();
            ensure(again.torn_tail.is_none(), || {
                format!("reopen after recovery cut again: {:?}", again.torn_tail)
            })?;
            check_records(wal.iter_from(*first), *first, *next + 3)?;
            wal.close().map_err(|e| format!("close: {e}"))
        }
        (expected, Ok(wal)) => Err(format!(
            "expected {expected:?}, open succeeded: {:?}",
            wal.recovery()
        )),
        (expected, Err(err)) => Err(format!("expected {expected:?}, open failed: {err}")),
    }
}

/// Helpers that build cases from a template.
struct Builder<'a> {
    t: &'a Template,
    cases: Vec<Case>,
}

impl Builder<'_> {
    /// A byte-level damage whose outcome the model derives.
    fn damage(&mut self, class: &'static str, name: String, f: impl FnOnce(&mut Files)) {
        let mut files = self.t.files.clone();
        f(&mut files);
        let expected = self.t.model(&files);
        self.push(class, name, files, expected);
    }

    fn push(&mut self, class: &'static str, name: String, files: Files, expected: Expected) {
        self.cases.push(Case {
            class,
            name: format!("{}/{name}", self.t.name),
            files,
            expected,
        });
    }

    fn unchanged(&self, mut f: impl FnMut(&mut Expected)) -> Expected {
        let mut e = self.t.model(&self.t.files);
        f(&mut e);
        e
    }
}

fn patch(files: &mut Files, name: &str, at: usize, bytes: &[u8]) {
    files.get_mut(name).unwrap()[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A header for `s` with some fields changed and a valid checksum.
fn rewrite_header(files: &mut Files, s: &Seg, f: impl FnOnce(&mut SegmentHeader)) {
    let b = files.get_mut(&s.name).unwrap();
    let mut h = SegmentHeader {
        version: 1,
        index: s.index,
        salt: s.salt,
        capacity: s.capacity as u64,
        created_nanos: u64_at(b, 40),
    };
    f(&mut h);
    b[0..64].copy_from_slice(&h.encode());
}

fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) | 1
        })
        .collect()
}

fn build_cases(t: &Template, other: &Template) -> Vec<Case> {
    let mut b = Builder {
        t,
        cases: Vec::new(),
    };
    let tail = t.tail().clone();
    let middle = t.middle().clone();
    // The frames of the last three records, and everything after them in the tail segment.
    let last3 = tail.records().rev().nth(2).unwrap().off..tail.end;

    // 1. Truncation at every byte of the last three records.
    for at in last3.clone() {
        b.damage("truncate", format!("truncate {} at {at}", tail.name), |f| {
            f.get_mut(&tail.name).unwrap().truncate(at);
        });
    }
    // 2. A write that stopped at every byte of the last three records: zeros from there on.
    for at in last3.clone() {
        b.damage("torn write", format!("zero {} from {at}", tail.name), |f| {
            f.get_mut(&tail.name).unwrap()[at..].fill(0);
        });
    }
    // 3. Zeroed 512 B and 4 KiB blocks of the tail and of a middle segment.
    for s in [&tail, &middle] {
        for block in [512, 4096] {
            for at in (0..s.capacity).step_by(block) {
                b.damage(
                    "zero block",
                    format!("zero {block} B of {} at {at}", s.name),
                    |f| f.get_mut(&s.name).unwrap()[at..at + block].fill(0),
                );
            }
        }
    }
    // 4. Bit flips in every byte of the first, a middle and the last record, and of every
    //    commit marker.
    let mut flip_frames: Vec<(Seg, Frame)> = [1, RECORDS / 2, RECORDS]
        .into_iter()
        .map(|l| {
            let (s, f) = t.frame_of(l);
            (s.clone(), f)
        })
        .collect();
    flip_frames.extend(t.markers().into_iter().map(|(s, f)| (s.clone(), f)));
    for (s, fr) in &flip_frames {
        for at in fr.off..fr.end() {
            let bit = (at % 8) as u8;
            b.damage(
                "bit flip",
                format!("flip bit {bit} of {} at {at}", s.name),
                |f| f.get_mut(&s.name).unwrap()[at] ^= 1 << bit,
            );
        }
    }
    // 5. Bit flips in the header and activation block of every segment.
    for s in &t.segs {
        for at in (0..76).step_by(3) {
            let bit = (at % 8) as u8;
            b.damage(
                "header flip",
                format!("flip bit {bit} of {} at {at}", s.name),
                |f| f.get_mut(&s.name).unwrap()[at] ^= 1 << bit,
            );
        }
        // A zeroed activation block: the segment's first LSN never reached the disk.
        b.damage(
            "activation",
            format!("zero activation of {}", s.name),
            |f| {
                f.get_mut(&s.name).unwrap()[64..76].fill(0);
            },
        );
    }
    // A writer killed inside the 12-byte copy that activates the spare: first LSN without
    // checksum, or checksum without first LSN.
    if let Some(sp) = t.spare() {
        let block = encode_activation(tail.next, sp.salt);
        for (what, range) in [("first LSN", 0..8), ("checksum", 8..12)] {
            b.damage(
                "activation",
                format!("torn activation of {}: only its {what}", sp.name),
                |f| patch(f, &sp.name, 64 + range.start, &block[range.clone()]),
            );
        }
    }
    // 6. Garbage in the preallocated area.
    let mut spots: Vec<(Seg, usize)> = vec![
        (tail.clone(), tail.end),
        (tail.clone(), tail.end + 8),
        (tail.clone(), tail.end + 512),
        (tail.clone(), tail.capacity - 64),
        (tail.clone(), tail.capacity - 16),
        (tail.clone(), tail.capacity - 1),
        (middle.clone(), middle.end),
        (middle.clone(), middle.end + 8),
        (middle.clone(), middle.capacity - 1),
    ];
    if let Some(sp) = t.spare() {
        spots.push((sp.clone(), 128));
        spots.push((sp.clone(), 4000));
        spots.push((sp.clone(), sp.capacity - 8));
    }
    for (i, (s, at)) in spots.into_iter().enumerate() {
        let n = 48.min(s.capacity - at);
        b.damage(
            "garbage",
            format!("{n} garbage bytes in {} at {at}", s.name),
            |f| patch(f, &s.name, at, &garbage(i as u64 + 7, n)),
        );
    }
    // 7. Frame lengths 0, 2^32-1, just past the end, and far past the end, in the first, a
    //    middle and the last record.
    for lsn in [1, RECORDS / 2, RECORDS] {
        let (s, fr) = t.frame_of(lsn);
        let past_end = (s.capacity - fr.off - 16 + 1) as u32;
        for len in [0, u32::MAX, past_end, past_end + 4096, 0x7FFF_FFFF] {
            b.damage(
                "frame length",
                format!("length {len} for record {lsn} in {}", s.name),
                |f| patch(f, &s.name, fr.off, &len.to_le_bytes()),
            );
        }
    }
    // 8. Headers rewritten with a valid checksum: wrong index, implausible or oversized
    //    capacity, another format version, another salt (the bytes of an older use of the
    //    file, under a new header).
    for s in [&t.segs[0], &middle, &tail] {
        let mut files = t.files.clone();
        rewrite_header(&mut files, s, |h| h.index += 5);
        b.push(
            "header",
            format!("index+5 in {}", s.name),
            files,
            corrupt(&s.name, 16, Kind::Named("IndexMismatch")),
        );
        for cap in [64u64, 1 << 41] {
            let mut files = t.files.clone();
            rewrite_header(&mut files, s, |h| h.capacity = cap);
            b.push(
                "header",
                format!("capacity {cap} in {}", s.name),
                files,
                corrupt(&s.name, 32, Kind::Named("BadCapacity")),
            );
        }
        let mut files = t.files.clone();
        rewrite_header(&mut files, s, |h| h.capacity += 8192);
        b.push(
            "header",
            format!("capacity past the file's end in {}", s.name),
            files,
            corrupt(&s.name, s.capacity, Kind::Named("Truncated")),
        );
        let mut files = t.files.clone();
        {
            let h = files.get_mut(&s.name).unwrap();
            h[8..12].copy_from_slice(&3u32.to_le_bytes());
            let crc = crc32c_of(&h[0..60]);
            h[60..64].copy_from_slice(&crc.to_le_bytes());
        }
        b.push(
            "header",
            format!("version 3 in {}", s.name),
            files,
            Expected::Unsupported {
                file: s.name.clone(),
            },
        );
        let mut files = t.files.clone();
        rewrite_header(&mut files, s, |h| h.salt ^= 0x5555_0000);
        b.push(
            "older use",
            format!("another salt in {}", s.name),
            files,
            corrupt(&s.name, 64, Kind::Named("BadActivation")),
        );
    }
    // 9. Records from an older use of the file: the frames of another log's segment (another
    //    salt) under this segment's header, and (closed template) segment 2 as it was earlier.
    for s in [&middle, &tail] {
        let donor = &other.files[&other.segs[1].name];
        b.damage(
            "older use",
            format!("another log's frames in {}", s.name),
            |f| {
                let n = donor.len().min(s.capacity);
                f.get_mut(&s.name).unwrap()[128..n].copy_from_slice(&donor[128..n]);
            },
        );
    }
    if let Some(old) = &t.older_copy {
        let s = &t.segs[1];
        let old = old.clone();
        b.damage(
            "older use",
            format!("an earlier copy of {} over it", s.name),
            |f| {
                f.insert(s.name.clone(), old);
            },
        );
    }
    // 10. The set of files.
    let max = t.max_index();
    let created = 1_700_000_000_000_000_000;
    let extra = |i: u64, pre: bool| segment_file_name(created, i, pre);
    for s in &t.segs[1..t.segs.len() - 1] {
        let mut files = t.files.clone();
        files.remove(&s.name);
        let after = t.segs.iter().find(|x| x.index == s.index + 1).unwrap();
        b.push(
            "files",
            format!("{} missing", s.name),
            files,
            corrupt(&after.name, 0, Kind::Missing(s.index)),
        );
    }
    {
        // The first segment gone is what truncate_front leaves: the log starts later.
        let mut files = t.files.clone();
        files.remove(&t.segs[0].name);
        let first = t.segs[1].first.unwrap();
        let expected = b.unchanged(|e| {
            if let Expected::Recovered { first: f, .. } = e {
                *f = first;
            }
        });
        b.push("files", "first segment missing".into(), files, expected);
    }
    for (what, bytes) in [
        ("empty", vec![]),
        ("half-written", t.files[&t.segs[0].name][..30].to_vec()),
        ("prepared", {
            let mut v = vec![0u8; SEGMENT as usize];
            v[0..64].copy_from_slice(&t.files[&tail.name][0..64]);
            v
        }),
    ] {
        for index in [max + 1, tail.index] {
            let mut files = t.files.clone();
            let name = extra(index, true);
            files.insert(name.clone(), bytes.clone());
            let expected = b.unchanged(|e| {
                if let Expected::Recovered { removed_pre, .. } = e {
                    removed_pre.push(name.clone());
                }
            });
            b.push(
                "files",
                format!("{what} -pre file for index {index}"),
                files,
                expected,
            );
        }
    }
    for (what, len) in [("empty", 0usize), ("100-byte", 100)] {
        let mut files = t.files.clone();
        let name = extra(max + 1, false);
        files.insert(name.clone(), vec![0x11; len]);
        b.push(
            "files",
            format!("{what} segment file"),
            files,
            corrupt(&name, 0, Kind::Named("ShortFile")),
        );
    }
    // Extra stale segments past the end: unactivated; starting inside the log (overlap);
    // starting after a gap, with or without a marker attesting beyond the log's end; and one
    // whose index leaves a gap.
    let last_next = tail.next;
    let stale = |first: Option<u64>, marker: Option<u64>| -> Vec<u8> {
        let s = &t.segs[0];
        let mut v = vec![0u8; SEGMENT as usize];
        let mut h = SegmentHeader {
            version: 1,
            index: tail.index + 1,
            salt: 0x1234_5679,
            capacity: SEGMENT,
            created_nanos: created,
        };
        if first.is_none() {
            h.salt = s.salt ^ 2;
        }
        v[0..64].copy_from_slice(&h.encode());
        if let Some(first) = first {
            v[64..76].copy_from_slice(&encode_activation(first, h.salt));
            let mut off = 128;
            if let Some(att) = marker {
                let mut p = [0u8; 16];
                p[0..8].copy_from_slice(&att.to_le_bytes());
                p[8..16].copy_from_slice(&first.to_le_bytes());
                let mut pre = [0u8; 8];
                pre[0] = 16;
                pre[4] = 2;
                let partial = crc32c_append(crc32c_of(&pre), &p);
                v[off..off + 8].copy_from_slice(&pre);
                v[off + 8..off + 12]
                    .copy_from_slice(&seal_crc(partial, h.salt, first).to_le_bytes());
                v[off + 16..off + 32].copy_from_slice(&p);
                off += 32;
            }
            for lsn in first..first + 5 {
                let data = format!("stale record {lsn}").into_bytes();
                let mut pre = [0u8; 8];
                pre[0..4].copy_from_slice(&(data.len() as u32).to_le_bytes());
                pre[4] = 1;
                v[off..off + 8].copy_from_slice(&pre);
                v[off + 8..off + 12]
                    .copy_from_slice(&seal_crc(partial_crc(&data), h.salt, lsn).to_le_bytes());
                v[off + 16..off + 16 + data.len()].copy_from_slice(&data);
                off += (16 + data.len() + 7) & !7;
            }
        }
        v
    };
    // Stale segments take the place right after the tail (the spares are removed first).
    let stale_name = extra(tail.index + 1, false);
    let without_spare = || {
        let mut files = t.files.clone();
        for sp in t.spares() {
            files.remove(&sp.name);
        }
        files
    };
    let recovered = |torn: bool, removed: &[&str]| Expected::Recovered {
        first: 1,
        next: last_next,
        torn: torn.then(|| (tail.name.clone(), tail.end as u64)),
        removed_segments: removed
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
        removed_pre: vec![],
    };
    let with_stale = |name: &str, bytes: Vec<u8>| {
        let mut files = without_spare();
        files.insert(name.to_string(), bytes);
        files
    };
    b.push(
        "stale segment",
        "unactivated stale segment".into(),
        with_stale(&stale_name, stale(None, None)),
        recovered(false, &[&stale_name]),
    );
    b.push(
        "stale segment",
        "stale segment overlapping the log".into(),
        with_stale(&stale_name, stale(Some(last_next - 10), None)),
        corrupt(&stale_name, 64, Kind::Named("LsnDiscontinuity")),
    );
    b.push(
        "stale segment",
        "stale segment after a gap".into(),
        with_stale(&stale_name, stale(Some(last_next + 50), None)),
        recovered(true, &[&stale_name]),
    );
    b.push(
        "stale segment",
        "stale segment after a gap attesting past the end".into(),
        with_stale(
            &stale_name,
            stale(Some(last_next + 50), Some(last_next + 20)),
        ),
        corrupt(&tail.name, tail.end, Kind::AckLost(last_next)),
    );
    let gap_name = extra(tail.index + 2, false);
    b.push(
        "stale segment",
        "stale segment leaving an index gap".into(),
        with_stale(&gap_name, stale(None, None)),
        corrupt(&gap_name, 0, Kind::Missing(tail.index + 1)),
    );
    b.cases
}

fn crc32c_of(b: &[u8]) -> u32 {
    crc32c_append(0, b)
}

/// CRC32C (Castagnoli), bitwise: the test's own, independent of the crate under test.
fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &byte in data {
        c ^= u32::from(byte);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn scratch_base(io: IoMode) -> PathBuf {
    if let Some(d) = std::env::var_os("VAULT_CORRUPTION_DIR") {
        return PathBuf::from(d);
    }
    // Thousands of small directories: tmpfs when there is one (recovery logic, not the disk,
    // is under test here), except for the direct path, which tmpfs refuses.
    if io == IoMode::Direct {
        return std::env::temp_dir();
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && tempfile::tempdir_in(shm).is_ok() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

common::both_io_paths!(every_damaged_log_is_cut_cleanly_or_refused_with_file_and_offset);
fn every_damaged_log_is_cut_cleanly_or_refused_with_file_and_offset(io: IoMode) {
    let base_dir = tempfile::tempdir_in(scratch_base(io)).unwrap();
    let base = base_dir.path();
    let closed = closed_template(base, io);
    let killed = killed_template(base);
    let mut cases = build_cases(&killed, &closed);
    cases.extend(build_cases(&closed, &killed));
    // Logs that went through `truncate_back`: damage before the cut (in the copied frames of
    // the replaced segment, or in the segments before it) and at the replaced tail follow the
    // same rule as in any log.
    let cut_closed = cut_closed_template(base, io);
    let cut_killed = killed_template_of(base, "cut-killed", true);
    // Its replaced segment is the tail: copied frames before the cut, unsynced ones after.
    assert_eq!(
        cut_killed.frame_of(CUT_TAIL).0.index,
        cut_killed.tail().index
    );
    assert_eq!(
        cut_killed.frame_of(CUT_TAIL - 1).0.index,
        cut_killed.tail().index
    );
    cases.extend(build_cases(&cut_closed, &killed));
    cases.extend(build_cases(&cut_killed, &closed));

    // Cases are independent directories, and most of a case's time is spent waiting for the
    // disk (the direct path's file system is a real one, with real fsyncs): a few workers run
    // them side by side, each taking the next case.
    const WORKERS: usize = 4;
    // A watchdog for hangs: no case may take minutes. Each worker's slot holds the case it
    // runs and when that started (seconds since `epoch`, 0 when idle).
    let slots: Arc<Vec<Mutex<(String, u64)>>> = Arc::new(
        (0..WORKERS)
            .map(|_| Mutex::new((String::new(), 0)))
            .collect(),
    );
    let epoch = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (slots, done) = (Arc::clone(&slots), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(5));
                for slot in slots.iter() {
                    let (name, since) = &*slot.lock().unwrap();
                    if *since != 0 && epoch.elapsed().as_secs().saturating_sub(*since) > 300 {
                        eprintln!("corruption case hangs: {name}");
                        std::process::abort();
                    }
                }
            }
        });
    }
    let next = AtomicU64::new(0);
    let outcomes: Vec<Mutex<Option<Result<(), String>>>> =
        cases.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for slot in slots.iter() {
            let (next, outcomes, cases) = (&next, &outcomes, &cases);
            scope.spawn(move || loop {
                let n = next.fetch_add(1, Ordering::SeqCst) as usize;
                let Some(case) = cases.get(n) else { break };
                *slot.lock().unwrap() = (case.name.clone(), epoch.elapsed().as_secs().max(1));
                let outcome = catch_unwind(AssertUnwindSafe(|| run_case(base, case, io)))
                    .unwrap_or_else(|p| {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| {
                                p.downcast_ref::<&str>()
                                    .map(std::string::ToString::to_string)
                            })
                            .unwrap_or_default();
                        Err(format!("PANIC: {msg}"))
                    });
                *slot.lock().unwrap() = (String::new(), 0);
                *outcomes[n].lock().unwrap() = Some(outcome);
            });
        }
    });
    done.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    let mut by_class: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (case, outcome) in cases.iter().zip(outcomes) {
        let outcome = outcome.into_inner().unwrap().expect("every case ran");
        let e = by_class.entry(case.class).or_default();
        match &case.expected {
            Expected::Recovered { .. } => e.0 += 1,
            _ => e.1 += 1,
        }
        if let Err(why) = outcome {
            e.2 += 1;
            // A few per class, so that one broken class does not hide the others.
            if e.2 <= 6 {
                failures.push(format!("{}: {why}", case.name));
            }
        }
    }
    println!("corruption matrix on {io:?}: {} cases", cases.len());
    for (class, (recovered, refused, failed)) in &by_class {
        println!(
            "  {class:<14} {:>5} cases: {recovered:>5} recovered, {refused:>5} refused, \
             {failed} failed",
            recovered + refused
        );
    }
    assert!(
        cases.len() >= 1000,
        "the matrix must hold at least 1000 cases"
    );
    let failed: usize = by_class.values().map(|c| c.2).sum();
    assert!(
        failed == 0,
        "{failed} of {} cases failed (at most 6 shown per class):\n{}",
        cases.len(),
        failures.join("\n")
    );
}

/// A one-segment log written byte by byte: header, an activation stating `first`, and records
/// sealed with the LSNs that follow (so every checksum is valid).
fn handmade_log(dir: &Path, first: u64, records: &[&[u8]]) -> PathBuf {
    let salt = 0x0BAD_5EED_0000_0001;
    let mut v = vec![0u8; 4096];
    let h = SegmentHeader {
        version: 1,
        index: 1,
        salt,
        capacity: 4096,
        created_nanos: 1_700_000_000_000_000_000,
    };
    v[0..64].copy_from_slice(&h.encode());
    v[64..76].copy_from_slice(&encode_activation(first, salt));
    let mut off = 128;
    for (i, data) in records.iter().enumerate() {
        let lsn = first.wrapping_add(i as u64);
        v[off..off + 4].copy_from_slice(&(data.len() as u32).to_le_bytes());
        v[off + 4] = 1;
        let crc = seal_crc(partial_crc(data), salt, lsn);
        v[off + 8..off + 12].copy_from_slice(&crc.to_le_bytes());
        v[off + 16..off + 16 + data.len()].copy_from_slice(data);
        off += (16 + data.len() + 7) & !7;
    }
    let path = dir.join(segment_file_name(h.created_nanos, 1, false));
    std::fs::write(&path, v).unwrap();
    path
}

common::both_io_paths!(a_first_lsn_whose_records_would_overflow_is_corruption_not_a_panic);
fn a_first_lsn_whose_records_would_overflow_is_corruption_not_a_panic(io: IoMode) {
    // Found by fuzzing (segment_scan): an activation block with a valid checksum stating a
    // first LSN near 2^64 made the scan's LSN arithmetic overflow (a panic in debug builds,
    // a wrapped next LSN in release).
    for first in [u64::MAX, u64::MAX - 1, 1 << 63] {
        let dir = tempfile::tempdir().unwrap();
        let file = handmade_log(dir.path(), first, &[b"one", b"two"]);
        let ins = inspect(dir.path()).unwrap();
        match ins.health() {
            Health::Corrupt(Error::Corruption {
                file: f,
                offset: 64,
                reason: CorruptionKind::BadActivation,
            }) => assert_eq!(f, &file),
            other => panic!("first LSN {first}: inspect says {other:?}"),
        }
        match Wal::open(dir.path(), opts(io)) {
            Err(Error::Corruption {
                offset: 64,
                reason: CorruptionKind::BadActivation,
                ..
            }) => {}
            other => panic!("first LSN {first}: expected BadActivation, got {other:?}"),
        }
    }
    // The largest first LSN the format accepts still works.
    let dir = tempfile::tempdir().unwrap();
    let first = (1 << 63) - 1;
    handmade_log(dir.path(), first, &[b"one", b"two"]);
    let wal = Wal::open(dir.path(), opts(io)).unwrap();
    let report = wal.recovery().clone();
    assert_eq!((report.first_lsn, report.next_lsn), (first, first + 2));
    assert_eq!(wal.read(first + 1).unwrap().data(), b"two");
}

/// A log whose tail segment is recycled (version 2), with the stale frames of the file's
/// earlier use after its chain, as a writer that died left it: records 1..=1000 acknowledged
/// (synced every 20 from 901 on), 1001..=1010 appended after the last sync (in the file on the
/// mmap path only). Returns the files, the tail's name and the offsets of its frames' headers
/// with their LSNs, and where its chain ends.
struct Recycled {
    files: Files,
    tail: String,
    frames: Vec<(u64, usize)>,
    end: usize,
    next_lsn: u64,
}

fn recycled_template(base: &Path, io: IoMode) -> Recycled {
    let dir = tempfile::tempdir_in(base).unwrap();
    let o = opts(io).with_spare_segments(1).with_recycle_segments(4);
    let wal = Wal::open(dir.path(), o).unwrap();
    for lsn in 1..=600 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.sync().unwrap();
    assert!(wal.truncate_front(550).unwrap() >= 4);
    for lsn in 601..=1010 {
        wal.append(&record(lsn)).unwrap();
        if lsn == 700 || lsn == 800 || (lsn > 900 && lsn <= 1000 && lsn % 20 == 0) {
            wal.sync().unwrap();
        }
    }
    assert!(wal.stats().segments_recycled >= 3);
    let tail_path = wal.read(1000).unwrap().segment().path().to_path_buf();
    // The rotation worker goes on after the writer stops: it prepares the one spare, taking a
    // pooled file and renaming it in. Wait until it has (it then stays idle), so the snapshot
    // below lists no file the worker is renaming.
    let next = parse_segment_name(&file_name(&tail_path)).unwrap().index + 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !segment_names(dir.path())
        .iter()
        .any(|n| parse_segment_name(n).is_some_and(|s| !s.pre && s.index == next))
    {
        assert!(
            Instant::now() < deadline,
            "the spare segment {next} was not installed within 60 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // Dies without closing: no final sync, no final marker. (The leaked writer keeps its
    // lock; the cases open copies.)
    std::mem::forget(wal);
    let files: Files = read_files(dir.path())
        .into_iter()
        .filter(|(n, _)| !n.ends_with("-pre.log"))
        .collect();
    let tail = file_name(&tail_path);
    let bytes = &files[&tail];
    assert_eq!(u32_at(bytes, 8), 2, "the tail is a recycled segment");
    let index = parse_segment_name(&tail).unwrap().index;
    let copy = tempfile::tempdir_in(base).unwrap();
    std::fs::write(copy.path().join(&tail), bytes).unwrap();
    let seg = vault_segment::Segment::open(
        &vault_segment::FsStorage,
        &copy.path().join(&tail),
        index,
        vault_segment::Access::Read,
    )
    .unwrap();
    let scan = seg.scan();
    assert_eq!(scan.stop, vault_segment::Stop::End);
    let frames: Vec<(u64, usize)> = seg
        .records_from(0)
        .map(|r| (r.lsn(), r.offset() - 16))
        .collect();
    let end = scan.end;
    assert!(bytes[end..end + 16].iter().all(|&b| b == 0), "terminator");
    assert!(
        bytes[end + 16..].iter().any(|&b| b != 0),
        "stale bytes of the earlier use follow the chain"
    );
    Recycled {
        files,
        tail,
        frames,
        end,
        next_lsn: scan.next_lsn,
    }
}

/// Opens a copy of `files` (and inspects it first, which must agree); returns the outcome and
/// the tail's bytes after the open.
fn open_copy(base: &Path, files: &Files, tail: &str, io: IoMode) -> (Result<Wal, Error>, Vec<u8>) {
    let dir = tempfile::tempdir_in(base).unwrap().keep();
    write_files(&dir, files);
    let seen = inspect(&dir).unwrap();
    let opened = Wal::open(&dir, opts(io));
    match (&opened, seen.health()) {
        (Ok(w), Health::Clean) => assert!(w.recovery().torn_tail.is_none(), "{w:?}"),
        (Ok(w), Health::TornTail(t)) => assert_eq!(w.recovery().torn_tail.as_ref(), Some(t)),
        (Err(e), Health::Corrupt(c)) => assert_eq!(e.to_string(), c.to_string()),
        (o, h) => panic!("open and inspect disagree: {o:?} vs {h:?}"),
    }
    let after = std::fs::read(dir.join(tail)).unwrap();
    (opened, after)
}

common::both_io_paths!(stale_frames_after_a_recycled_tail_are_told_from_torn_and_damaged_ones);
fn stale_frames_after_a_recycled_tail_are_told_from_torn_and_damaged_ones(io: IoMode) {
    let base_dir = tempfile::tempdir_in(scratch_base(io)).unwrap();
    let base = base_dir.path();
    let t = recycled_template(base, io);
    let tail = &t.tail;
    let bytes = &t.files[tail];
    let (&(last_lsn, last_at), _) = t.frames.split_last().unwrap();
    let expected_next = if io == IoMode::Mmap { 1011 } else { 1001 };
    assert_eq!(t.next_lsn, expected_next);
    // Bytes a cut may write: whole blocks on the direct path (its memory holds zeros past
    // the chain), single frame headers on the mmap path.
    let untouched = |from: usize| (from + 16).next_multiple_of(4096);

    // Clean: the chain ends at its terminator; the stale frames after it are not a torn tail.
    let (opened, after) = open_copy(base, &t.files, tail, io);
    let wal = opened.unwrap();
    let report = wal.recovery().clone();
    assert!(report.torn_tail.is_none(), "clean: {report:?}");
    assert_eq!(report.next_lsn, expected_next);
    common::assert_log(&wal, wal.first_lsn(), expected_next - 1);
    drop(wal);
    assert_eq!(
        after[t.end + 16..],
        bytes[t.end + 16..],
        "stale bytes left alone"
    );

    // A stale frame header where the terminator was: a chain that ends at a non-zero header
    // that does not validate is torn; nothing attests past it, so only those 16 bytes go.
    let mut files = t.files.clone();
    let stale_at = (t.end + 16..bytes.len() - 16)
        .step_by(8)
        .find(|&o| matches!(bytes[o + 4], 1 | 2) && bytes[o + 5..o + 8] == [0, 0, 0])
        .expect("a stale frame header after the chain");
    let stale: Vec<u8> = bytes[stale_at..stale_at + 16].to_vec();
    patch(&mut files, tail, t.end, &stale);
    let (opened, after) = open_copy(base, &files, tail, io);
    let wal = opened.unwrap();
    let report = wal.recovery().clone();
    let torn = report.torn_tail.clone().expect("torn");
    assert_eq!((torn.offset, torn.bytes_dropped), (t.end as u64, 16));
    assert_eq!(report.next_lsn, expected_next, "no record lost");
    drop(wal);
    assert!(after[t.end..t.end + 16].iter().all(|&b| b == 0));
    assert_eq!(after[untouched(t.end)..], bytes[untouched(t.end)..]);

    // The last frame torn (its checksum bytes lost): nothing on disk attests it, so the log
    // is cut before it, by zeroing its header.
    let mut files = t.files.clone();
    patch(&mut files, tail, last_at + 8, &[0xEE; 4]);
    let (opened, after) = open_copy(base, &files, tail, io);
    let wal = opened.unwrap();
    let report = wal.recovery().clone();
    let torn = report.torn_tail.clone().expect("torn");
    assert_eq!(torn.offset, last_at as u64);
    assert_eq!(report.next_lsn, last_lsn);
    common::assert_log(&wal, wal.first_lsn(), last_lsn - 1);
    drop(wal);
    assert!(after[last_at..last_at + 16].iter().all(|&b| b == 0));
    assert_eq!(after[untouched(t.end)..], bytes[untouched(t.end)..]);

    // Damage in the middle of the tail's chain, before records a later commit marker
    // attests: acknowledged records are lost, so `open` refuses, naming file and offset.
    let (lsn, at) = t.frames[0];
    assert!(lsn <= 980, "the marker attesting 980 follows record {lsn}");
    let mut files = t.files.clone();
    patch(&mut files, tail, at + 20, &[0x5A; 3]);
    let (opened, after) = open_copy(base, &files, tail, io);
    match opened {
        Err(Error::Corruption {
            file,
            offset,
            reason: CorruptionKind::AcknowledgedRecordLost { lsn: lost, .. },
        }) => {
            assert_eq!(file_name(&file), *tail);
            assert_eq!((offset, lost), (at as u64, lsn));
        }
        other => panic!("expected corruption at {tail}:{at}, got {other:?}"),
    }
    let mut damaged = bytes.clone();
    damaged[at + 20..at + 23].fill(0x5A);
    assert_eq!(after, damaged, "a refused open changes nothing");
}
