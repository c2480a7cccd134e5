//! Power loss: the state a crash may keep ([`Snapshot`]), the choices of what reaches the
//! disk ([`CrashChoice`], [`PageFate`], [`CrashPoint`]), and building the storage a crash leaves.

use super::*;

/// One page that was dirty when a snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DirtyPage {
    /// The file.
    pub file: FileId,
    /// Page number in the file (byte offset / [`PAGE_SIZE`]).
    pub page: usize,
}

/// What reaches the disk of one dirty page at a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFate {
    /// The page is written back whole.
    Whole,
    /// Only the sectors whose bit is set (bit 0 = the first 512 bytes) are written back; the
    /// others keep their durable bytes. `(1 << n) - 1` is a write torn after `n` sectors.
    Sectors(u8),
    /// The page reads back as zeros.
    Zeroed,
    /// The page reads back as pseudo-random bytes from this seed.
    Garbage(u64),
}

impl PageFate {
    /// A write torn after its first `n` sectors (`1..8`).
    #[must_use]
    pub fn torn_after(n: usize) -> Self {
        PageFate::Sectors(((1u16 << n.min(SECTORS_PER_PAGE)) - 1) as u8)
    }
}

/// Which part of the unsynced state a crash keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashChoice {
    /// Dirty pages that reach the disk, and how. Pages not listed keep their durable bytes.
    pub pages: Vec<(DirtyPage, PageFate)>,
    /// How many of the pending directory operations (a prefix, oldest first) become durable.
    pub dir_ops: usize,
}

impl CrashChoice {
    /// Nothing unsynced survives: only the durable state.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Everything survives: every dirty page whole and every pending directory operation (the
    /// state a process crash with the page cache intact would leave).
    #[must_use]
    pub fn all(snapshot: &Snapshot) -> Self {
        Self {
            pages: snapshot
                .dirty_pages()
                .into_iter()
                .map(|p| (p, PageFate::Whole))
                .collect(),
            dir_ops: snapshot.pending.len(),
        }
    }

    /// A pseudo-random choice from `seed`: each dirty page survives with probability 1/2,
    /// mostly whole, else torn, zeroed or garbage; a random prefix of the directory operations.
    #[must_use]
    pub fn random(snapshot: &Snapshot, seed: u64) -> Self {
        let mut rng = SimRng::new(seed);
        let mut pages = Vec::new();
        for p in snapshot.dirty_pages() {
            if rng.below(2) == 0 {
                continue;
            }
            let fate = match rng.below(8) {
                0..=3 => PageFate::Whole,
                4 => PageFate::Sectors(rng.next_u64() as u8),
                5 => PageFate::torn_after(1 + rng.below(7) as usize),
                6 => PageFate::Zeroed,
                _ => PageFate::Garbage(rng.next_u64()),
            };
            pages.push((p, fate));
        }
        let dir_ops = rng.below(snapshot.pending.len() as u64 + 1) as usize;
        Self { pages, dir_ops }
    }
}

impl fmt::Display for CrashChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pending dir ops kept; pages [", self.dir_ops)?;
        for (i, (p, fate)) in self.pages.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}file {} page {}: {fate:?}", p.file, p.page)?;
        }
        f.write_str("]")
    }
}

/// A small deterministic pseudo-random generator (SplitMix64) for crash choices and
/// workloads, so a seed printed by a failing test replays the same choices.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator seeded with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// Where in a run a snapshot was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashPoint {
    /// Just before operation number `op` (counted from 1) started.
    Before {
        /// The operation's number.
        op: u64,
        /// Its kind.
        kind: OpKind,
        /// The file or directory it names.
        path: PathBuf,
    },
    /// Just after operation number `op` finished.
    After {
        /// The operation's number.
        op: u64,
        /// Its kind.
        kind: OpKind,
        /// The file or directory it names.
        path: PathBuf,
        /// Whether it succeeded.
        ok: bool,
    },
    /// Taken on request ([`SimStorage::snapshot`]) after `ops` operations.
    Now {
        /// Operations performed so far.
        ops: u64,
    },
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashPoint::Before { op, kind, path } => {
                write!(f, "before op {op} ({kind:?} {})", path.display())
            }
            CrashPoint::After { op, kind, path, ok } => {
                let r = if *ok { "ok" } else { "failed" };
                write!(f, "after op {op} ({kind:?} {}, {r})", path.display())
            }
            CrashPoint::Now { ops } => write!(f, "after {ops} ops (on request)"),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct FileImage {
    pub(super) durable: Arc<Vec<u8>>,
    /// The live length (differs from the durable one after an unsynced `write_file`).
    pub(super) live_len: usize,
    /// Dirty pages and their live bytes when the snapshot was taken.
    pub(super) dirty: Vec<(usize, Arc<[u8]>)>,
}

/// The state of a simulated storage at one moment: what is durable, which pages are dirty
/// (with their live bytes), and which directory operations are pending. Crash it with any
/// [`CrashChoice`], as often as wanted.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Where it was taken.
    pub point: CrashPoint,
    /// The number set with [`SimStorage::set_mark`] when it was taken (for example the
    /// highest LSN acknowledged so far).
    pub mark: u64,
    pub(super) files: BTreeMap<FileId, FileImage>,
    pub(super) durable_names: BTreeMap<PathBuf, FileId>,
    pub(super) pending: Vec<DirOp>,
    pub(super) dirs: BTreeSet<PathBuf>,
    pub(super) names_seen: BTreeMap<FileId, PathBuf>,
}

impl Snapshot {
    /// Every dirty page of every file a crash could leave in the directory, in order.
    #[must_use]
    pub fn dirty_pages(&self) -> Vec<DirtyPage> {
        self.files
            .iter()
            .flat_map(|(&file, img)| {
                img.dirty
                    .iter()
                    .map(move |&(page, _)| DirtyPage { file, page })
            })
            .collect()
    }

    /// The directory operations not yet made durable, oldest first.
    #[must_use]
    pub fn pending_dir_ops(&self) -> &[DirOp] {
        &self.pending
    }

    /// A path the file was known under (for messages).
    #[must_use]
    pub fn file_name(&self, file: FileId) -> Option<&Path> {
        self.names_seen.get(&file).map(PathBuf::as_path)
    }

    /// The durable bytes of a page (`None` if the file or page is not in the snapshot).
    #[must_use]
    pub fn durable_page(&self, page: DirtyPage) -> Option<&[u8]> {
        let img = self.files.get(&page.file)?;
        let start = page.page.checked_mul(PAGE_SIZE)?;
        let end = (start + PAGE_SIZE).min(img.durable.len());
        img.durable.get(start..end)
    }

    /// The live bytes of a dirty page (`None` if it is not dirty here).
    #[must_use]
    pub fn live_page(&self, page: DirtyPage) -> Option<&[u8]> {
        let img = self.files.get(&page.file)?;
        img.dirty
            .iter()
            .find(|(n, _)| *n == page.page)
            .map(|(_, live)| &live[..])
    }

    /// A hash of everything a crash can produce from this snapshot (durable images, dirty
    /// pages, names, pending operations), so tests can skip states they already checked.
    /// Equal snapshots have equal fingerprints; `point` and `mark` are not included.
    #[must_use]
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (id, img) in &self.files {
            id.hash(&mut h);
            img.durable.hash(&mut h);
            img.live_len.hash(&mut h);
            for (n, live) in &img.dirty {
                n.hash(&mut h);
                live.hash(&mut h);
            }
        }
        self.durable_names.hash(&mut h);
        for op in &self.pending {
            op.to_string().hash(&mut h);
        }
        h.finish()
    }

    /// The storage a power failure at this moment leaves, with `choice` deciding which
    /// unsynced pages and directory operations reached the disk. Entries of `choice` naming
    /// pages that are not dirty here are ignored.
    #[must_use]
    pub fn crash(&self, choice: &CrashChoice) -> SimStorage {
        let mut names = self.durable_names.clone();
        for op in self.pending.iter().take(choice.dir_ops) {
            op.apply(&mut names);
        }
        let mut st = State::default();
        st.dirs.clone_from(&self.dirs);
        for &id in names.values() {
            if st.files.contains_key(&id) {
                continue;
            }
            let Some(img) = self.files.get(&id) else {
                continue;
            };
            let mut bytes: Vec<u8> = img.durable.as_ref().clone();
            // An unsynced length change (`write_file`) rides with the file's dirty pages: it
            // reaches the disk when any of them does.
            let kept = |(p, _): &&(DirtyPage, PageFate)| {
                p.file == id && img.dirty.iter().any(|(n, _)| *n == p.page)
            };
            if choice.pages.iter().any(|c| kept(&c)) {
                bytes.resize(img.live_len, 0);
            }
            for (p, fate) in choice.pages.iter().filter(|(p, _)| p.file == id) {
                let Some((_, live)) = img.dirty.iter().find(|(n, _)| *n == p.page) else {
                    continue;
                };
                let start = p.page * PAGE_SIZE;
                let page = &mut bytes[start..start + live.len()];
                apply_fate(page, live, *fate);
            }
            st.files.insert(id, FileState::new(bytes));
        }
        st.next_file = self.files.keys().max().map_or(1, |m| m + 1);
        st.names_seen.clone_from(&self.names_seen);
        st.live_names = names.clone();
        st.durable_names = names;
        SimStorage::from_state(st)
    }
}

fn apply_fate(page: &mut [u8], live: &[u8], fate: PageFate) {
    match fate {
        PageFate::Whole => page.copy_from_slice(live),
        PageFate::Sectors(mask) => {
            for (s, (dst, src)) in page
                .chunks_mut(SECTOR_SIZE)
                .zip(live.chunks(SECTOR_SIZE))
                .enumerate()
            {
                if mask & (1 << s) != 0 {
                    dst.copy_from_slice(src);
                }
            }
        }
        PageFate::Zeroed => page.fill(0),
        PageFate::Garbage(seed) => {
            let mut rng = SimRng::new(seed);
            for chunk in page.chunks_mut(8) {
                let r = rng.next_u64().to_le_bytes();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
        }
    }
}
