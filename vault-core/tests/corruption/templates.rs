//! The template logs the cases damage: written by this process (closed, or cut) or by a child
//! killed mid-stream, and parsed into their segments and frames.

use super::*;

pub(crate) const SEGMENT: u64 = 16 * 1024;
pub(crate) const RECORDS: u64 = 400;
pub(crate) const SYNC_AFTER: [u64; 2] = [100, 250];
pub(crate) const CHILD_ENV: &str = "VAULT_CORRUPTION_CHILD_DIR";
/// Set for the child that writes the "cut-killed" template.
pub(crate) const CHILD_CUT_ENV: &str = "VAULT_CORRUPTION_CHILD_CUT";
/// Where the "cut-closed" template is cut: in an older segment, so the segments after it are
/// removed and the records after it written again into the replaced segment and new ones.
pub(crate) const CUT_OLDER: u64 = 180;
/// Where the "cut-killed" template is cut: in the segment that becomes the tail, whose
/// records from here on are written again (unsynced) after the cut.
pub(crate) const CUT_TAIL: u64 = 392;

pub(crate) type Files = BTreeMap<String, Vec<u8>>;

pub(crate) fn opts(io: IoMode) -> Options {
    common::plain(SEGMENT, SyncPolicy::Manual, io)
}

pub(crate) fn write_template_records(wal: &Wal) {
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
pub(crate) fn write_template_records_with_cut(wal: &Wal, through: u64, cut: u64) {
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
pub(crate) fn corruption_template_child() {
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
pub(crate) fn segment_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| parse_segment_name(n).is_some())
        .collect()
}

pub(crate) fn read_files(dir: &Path) -> Files {
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

pub(crate) fn write_files(dir: &Path, files: &Files) {
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// One frame of a template, as written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) off: usize,
    pub(crate) len: usize,
    /// A record's LSN, or for a marker the LSN of the record after it.
    pub(crate) lsn: u64,
    /// For a commit marker, the LSN it attests.
    pub(crate) attests: Option<u64>,
}

impl Frame {
    /// The bytes the frame's checks cover: header and payload (padding is not checked).
    pub(crate) fn checked(&self) -> Range<usize> {
        self.off..self.off + 16 + self.len
    }
    pub(crate) fn end(&self) -> usize {
        self.off + ((16 + self.len + 7) & !7)
    }
}

/// One segment of a template, as written.
#[derive(Debug, Clone)]
pub(crate) struct Seg {
    pub(crate) name: String,
    pub(crate) index: u64,
    pub(crate) capacity: usize,
    pub(crate) salt: u64,
    /// First LSN, or `None` for an unactivated spare.
    pub(crate) first: Option<u64>,
    pub(crate) frames: Vec<Frame>,
    /// Where the frames end.
    pub(crate) end: usize,
    /// The LSN after its last record.
    pub(crate) next: u64,
}

impl Seg {
    pub(crate) fn records(&self) -> impl DoubleEndedIterator<Item = &Frame> {
        self.frames.iter().filter(|f| f.attests.is_none())
    }
}

/// A template log: its files and their layout, parsed by this test (independently of
/// vault-segment's scanner; the template is known to be valid).
pub(crate) struct Template {
    pub(crate) name: &'static str,
    pub(crate) files: Files,
    pub(crate) segs: Vec<Seg>,
    /// Segment 2 as it was when record 130 had just been appended (closed template only).
    pub(crate) older_copy: Option<Vec<u8>>,
}

pub(crate) fn parse_template(
    name: &'static str,
    files: Files,
    older_copy: Option<Vec<u8>>,
) -> Template {
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

pub(crate) fn closed_template(base: &Path, io: IoMode) -> Template {
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
pub(crate) fn cut_closed_template(base: &Path, io: IoMode) -> Template {
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

pub(crate) fn killed_template(base: &Path) -> Template {
    killed_template_of(base, "killed", false)
}

pub(crate) fn killed_template_of(base: &Path, name: &'static str, cut: bool) -> Template {
    let dir = tempfile::tempdir_in(base).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "templates::corruption_template_child",
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
