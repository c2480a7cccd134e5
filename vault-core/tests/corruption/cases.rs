//! The cases: one damage each to a copy of a template, the outcome the recovery rule
//! prescribes, and the check that `open` and `inspect` both reach it.

use super::*;

/// What recovery must do with a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expected {
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
pub(crate) enum Kind {
    /// A reason with this variant name (its fields are not checked).
    Named(&'static str),
    /// `AcknowledgedRecordLost` for this LSN.
    AckLost(u64),
    /// `MissingSegment` for this index.
    Missing(u64),
}

impl Kind {
    pub(crate) fn matches(&self, reason: &CorruptionKind) -> bool {
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

pub(crate) fn corrupt(file: &str, offset: usize, kind: Kind) -> Expected {
    Expected::Corrupt {
        file: file.to_string(),
        offset: offset as u64,
        kind,
    }
}

impl Template {
    pub(crate) fn activated(&self) -> impl Iterator<Item = &Seg> {
        self.segs.iter().filter(|s| s.first.is_some())
    }
    pub(crate) fn tail(&self) -> &Seg {
        self.activated().last().unwrap()
    }
    pub(crate) fn middle(&self) -> &Seg {
        &self.segs[1]
    }
    pub(crate) fn spare(&self) -> Option<&Seg> {
        self.segs.iter().find(|s| s.first.is_none())
    }
    /// Every prepared, unactivated segment past the tail (the worker keeps several).
    pub(crate) fn spares(&self) -> impl Iterator<Item = &Seg> {
        self.segs.iter().filter(|s| s.first.is_none())
    }
    pub(crate) fn frame_of(&self, lsn: u64) -> (&Seg, Frame) {
        for s in &self.segs {
            if let Some(f) = s.records().find(|f| f.lsn == lsn) {
                return (s, *f);
            }
        }
        panic!("no record {lsn}")
    }
    pub(crate) fn markers(&self) -> Vec<(&Seg, Frame)> {
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
    pub(crate) fn max_index(&self) -> u64 {
        self.segs.last().unwrap().index
    }

    /// The outcome the recovery rule prescribes for byte damage (file set unchanged): see the
    /// module docs.
    pub(crate) fn model(&self, m: &Files) -> Expected {
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
pub(crate) struct Case {
    pub(crate) class: &'static str,
    pub(crate) name: String,
    pub(crate) files: Files,
    pub(crate) expected: Expected,
}

pub(crate) fn dir_digest(dir: &Path) -> Files {
    read_files(dir)
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

pub(crate) fn ensure(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(msg())
    }
}

/// The readable records of a log are `first..next` and byte-exact.
pub(crate) fn check_records(
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

pub(crate) fn run_case(base: &Path, case: &Case, io: IoMode) -> Result<(), String> {
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
pub(crate) struct Builder<'a> {
    pub(crate) t: &'a Template,
    pub(crate) cases: Vec<Case>,
}

impl Builder<'_> {
    /// A byte-level damage whose outcome the model derives.
    pub(crate) fn damage(&mut self, class: &'static str, name: String, f: impl FnOnce(&mut Files)) {
        let mut files = self.t.files.clone();
        f(&mut files);
        let expected = self.t.model(&files);
        self.push(class, name, files, expected);
    }

    pub(crate) fn push(
        &mut self,
        class: &'static str,
        name: String,
        files: Files,
        expected: Expected,
    ) {
        self.cases.push(Case {
            class,
            name: format!("{}/{name}", self.t.name),
            files,
            expected,
        });
    }

    pub(crate) fn unchanged(&self, mut f: impl FnMut(&mut Expected)) -> Expected {
        let mut e = self.t.model(&self.t.files);
        f(&mut e);
        e
    }
}

pub(crate) fn patch(files: &mut Files, name: &str, at: usize, bytes: &[u8]) {
    files.get_mut(name).unwrap()[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A header for `s` with some fields changed and a valid checksum.
pub(crate) fn rewrite_header(files: &mut Files, s: &Seg, f: impl FnOnce(&mut SegmentHeader)) {
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

pub(crate) fn garbage(seed: u64, len: usize) -> Vec<u8> {
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

pub(crate) fn build_cases(t: &Template, other: &Template) -> Vec<Case> {
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

pub(crate) fn crc32c_of(b: &[u8]) -> u32 {
    crc32c_append(0, b)
}

/// CRC32C (Castagnoli), bitwise: the test's own, independent of the crate under test.
pub(crate) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
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

pub(crate) fn scratch_base(io: IoMode) -> PathBuf {
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
