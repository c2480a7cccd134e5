//! `SimStorage`: an in-memory [`Storage`] that simulates power loss and I/O errors.
//!
//! It stands in for [`crate::FsStorage`] in tests. Every file lives in memory twice: the
//! **live** bytes (what the process sees: a heap buffer handed out by [`Region::as_ptr`], so
//! stores into it are stores into "the mapping") and the **durable** image (what the device
//! holds). The directory has a live view and a durable view too, with the log of directory
//! operations (create, rename, remove) made since the last [`Storage::sync_dir`].
//!
//! A crash ([`SimStorage::crash`], or [`Snapshot::crash`] on a state recorded earlier) builds a
//! fresh `SimStorage` from the durable state plus a chosen part of what was not yet durable:
//!
//! - any subset of the **dirty pages** (4 KiB pages whose live bytes differ from what the
//!   kernel believes is on disk), each written back whole, torn (only some of its 512-byte
//!   sectors written, the others keep their durable bytes), zeroed, or filled with garbage;
//! - a **prefix** of the pending directory operations.
//!
//! [`Snapshot::dirty_pages`] and [`Snapshot::pending_dir_ops`] list the candidates so a test can
//! enumerate them exhaustively; [`CrashChoice::random`] samples them from a seed.
//! [`SimStorage::record_snapshots`] captures the state before and after every storage operation,
//! so a test can crash "after operation k" for every k of one run.
//!
//! # Fault injection
//!
//! [`SimStorage::fail_nth`] makes the n-th call of one kind of operation ([`OpKind`]) fail with
//! `EIO` or `ENOSPC` ([`SimStorage::fail_from`] keeps failing from the n-th call on). A failed
//! operation changes nothing, with two exceptions that mirror Linux:
//!
//! - a failed `create_allocated` leaves the file created but empty (the `O_CREAT` succeeded,
//!   the `fallocate` did not), and so does a failed `write_file` (`O_CREAT|O_TRUNC` succeeded,
//!   the write did not);
//! - a failed [`Region::sync`] (or [`Storage::sync_file`]) marks the dirty pages of its range
//!   (the file) **clean without making them durable** (fsyncgate: the kernel drops the error and the pages). They stay visible in the
//!   live bytes, are never written back by a later sync, and a crash loses them.
//!
//! # What the model captures, and what it does not
//!
//! Captured:
//!
//! - `msync(MS_SYNC)` of a range makes exactly the pages of that range durable (Linux's
//!   behaviour: a sync of one range does not write other dirty pages); nothing else does.
//! - The kernel may write any dirty page back at any moment, in any order: a crash keeps any
//!   subset of them. Reordering of unsynced writes is covered by taking subsets.
//! - A page write may be torn at 512-byte sector granularity (any subset of sectors), and a
//!   page may come back zeroed or as garbage (an interrupted write on some devices).
//! - Directory operations become durable only with `sync_dir` of their directory, in the
//!   order they were made: a crash keeps a prefix of those not yet synced.
//! - fsyncgate, as above; and an unlinked file stays readable through an existing region.
//! - Whole-file writes ([`Storage::write_file`], for small files such as a metadata file that is
//!   replaced by rename): the new bytes and the new length are live at once and durable only
//!   after [`Storage::sync_file`] of that file (a failed one is fsyncgate: marked clean, never
//!   written). Until then the rewritten pages are dirty pages like a mapping's, so a crash keeps
//!   any subset of them, torn, zeroed or garbage; the new length reaches the disk with any of
//!   them (pages past the durable length read as zeros if not kept). A file `write_file`
//!   creates is a pending directory operation, as with `create_allocated`: after a crash it is
//!   absent, or present with whatever of its bytes survived (possibly none: an empty file).
//!
//! Unmapping: [`SimStorage::live_regions`] counts the regions still mapped, and with
//! [`SimStorage::poison_unmapped`] on, when the last region of a file that no longer has a name
//! drops, its live bytes are overwritten with [`UNMAPPED_POISON`]. The buffer itself stays
//! allocated, so a reader that kept a pointer into an unmapped segment reads the poison
//! (deterministically, where a real unmapped page would fault or be reused) and its content
//! check fails. The concurrency models use this to check that no reader uses a segment after
//! `truncate_front` let it go.
//!
//! Not captured:
//!
//! - Only the latest content of a dirty page can be written back, torn against its durable
//!   bytes: an intermediate version that was written back and then overwritten in memory is not
//!   produced (record snapshots at every operation to see earlier versions).
//! - Tearing is per sector, not per byte, and a synced page is never damaged afterwards (bit
//!   rot and misdirected writes are the corruption tests' business, not power loss).
//! - A file created by `create_allocated` appears after a crash with its full length of
//!   zeros, or not at all: never short or with a partial size.
//! - Directories are created durable at once and never removed; there is one lock flag per
//!   directory, held by the [`DirLock`] and released when it drops.
//! - Renames across directories are refused.
//! - A rewrite reaching the disk as a truncation with none of its new bytes (a shorter file of
//!   old bytes, the ext4 zero-length-file case for an existing file): the length goes with the
//!   pages. A file being rewritten must not be mapped, and a file is mapped only if its length
//!   is synced (both refused with `Unsupported`).
//!
//! Stores into the live bytes are plain memory writes the simulator cannot see; it learns what
//! changed by comparing live bytes with the durable image, at a sync, a snapshot or a crash.
//! Those comparisons read pages the region's user may be storing into at that moment, exactly
//! as the kernel's write-back reads a page a process is writing: the copy can hold old and new
//! bytes mixed, which is one more torn page.
//!
//! `SimStorage` is `Send + Sync` (a mutex guards its state) and cheap to clone (clones share
//! the state). `Arc<SimStorage>` coerces to `Arc<dyn Storage>`.
//!
//! ```
//! use std::path::Path;
//! use vault_segment::sim::{CrashChoice, SimStorage};
//! use vault_segment::{partial_crc, IoPath, Segment, Storage};
//!
//! let sim = SimStorage::new();
//! let dir = Path::new("/wal");
//! sim.create_dir_all(dir)?;
//! let mut app = Segment::create(&sim, dir, 1, 4096, IoPath::Mmap)?.activate(1);
//! app.append(b"hello", partial_crc(b"hello")).expect("room");
//! app.publish();
//! // Power fails before any sync: the record is in dirty pages only.
//! let snap = sim.snapshot();
//! assert!(!snap.dirty_pages().is_empty());
//! let lost = snap.crash(&CrashChoice::none());
//! let seg = lost.list(dir)?;
//! assert_eq!(seg.len(), 1); // the segment's name was synced by `create`
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::storage::{Access, DirLock, FileSystem, IoPath, Region, Storage};
use crate::sync::{PoisonError, StdArc as Arc, StdMutex as Mutex, StdMutexGuard as MutexGuard};

mod crash;
mod faults;

use crash::FileImage;
pub use crash::{CrashChoice, CrashPoint, DirtyPage, PageFate, SimRng, Snapshot};
use faults::Fault;
pub use faults::{FaultError, OpKind};

/// Bytes per page: the unit the simulated kernel writes back.
pub const PAGE_SIZE: usize = 4096;
/// Bytes per sector: the unit a page write may be torn at.
pub const SECTOR_SIZE: usize = 512;
const SECTORS_PER_PAGE: usize = PAGE_SIZE / SECTOR_SIZE;

/// Identifies one file (an inode) of a simulated storage. Stable across crashes.
pub type FileId = u64;

/// A directory operation not yet made durable by `sync_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirOp {
    /// A file was created.
    Create {
        /// Its path.
        path: PathBuf,
        /// The new file.
        file: FileId,
    },
    /// A file was renamed (replacing `to` if it existed).
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
    },
    /// A name was removed.
    Remove {
        /// The removed name.
        path: PathBuf,
    },
}

impl DirOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            DirOp::Create { path, .. } | DirOp::Remove { path } => path.parent(),
            DirOp::Rename { to, .. } => to.parent(),
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, FileId>) {
        match self {
            DirOp::Create { path, file } => {
                names.insert(path.clone(), *file);
            }
            DirOp::Rename { from, to } => {
                if let Some(f) = names.remove(from) {
                    names.insert(to.clone(), f);
                }
            }
            DirOp::Remove { path } => {
                names.remove(path);
            }
        }
    }
}

impl fmt::Display for DirOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirOp::Create { path, file } => write!(f, "create {} (file {file})", path.display()),
            DirOp::Rename { from, to } => {
                write!(f, "rename {} -> {}", from.display(), to.display())
            }
            DirOp::Remove { path } => write!(f, "remove {}", path.display()),
        }
    }
}

/// The live bytes of one file: a heap buffer allocated once, never moved or resized, freed
/// when the last file entry or region holding it drops.
struct LiveBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the buffer is a plain heap allocation owned by this value; sharing the pointer
// between threads is what a `MAP_SHARED` mapping does. Writes through it happen only through
// the `Region` handed out for the file (the `Region` contract); the simulator itself only reads.
unsafe impl Send for LiveBuf {}
// SAFETY: as for `Send`: `&LiveBuf` gives out only the raw pointer and a copying read.
unsafe impl Sync for LiveBuf {}

impl LiveBuf {
    /// Overwrites every byte with `byte`. Only called once no region maps the buffer, so no
    /// one may legitimately be reading or writing it.
    fn fill(&self, byte: u8) {
        // SAFETY: `ptr` is valid for `len` bytes (allocated in `new`, freed only in `drop`).
        // No region maps the file any more, so the only other access would be a user reading
        // through a pointer it kept past the unmapping: the bug this poison exposes.
        unsafe { std::ptr::write_bytes(self.ptr, byte, self.len) }
    }

    fn new(bytes: Vec<u8>) -> Self {
        let b: Box<[u8]> = bytes.into_boxed_slice();
        let len = b.len();
        Self {
            ptr: Box::into_raw(b).cast::<u8>(),
            len,
        }
    }

    /// Copies `out.len()` live bytes from `offset`.
    fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(offset <= self.len && out.len() <= self.len - offset);
        // SAFETY: in bounds (checked above) of an allocation that lives as long as `self`.
        // The region's user may be storing into these bytes right now (an appender writing
        // past its published end into a page being synced), as a process stores into a page
        // the kernel is writing back; the bytes are plain `u8`s, so the copy is at worst a mix
        // of old and new values, which the model treats as one more torn page.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.add(offset), out.as_mut_ptr(), out.len());
        }
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        self.read(0, &mut v);
        v
    }
}

impl Drop for LiveBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` came from `Box::into_raw` of a boxed slice in `new`, and this
        // is the only place that frees it, once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.len)) });
    }
}

struct FileState {
    live: Arc<LiveBuf>,
    durable: Arc<Vec<u8>>,
    /// What the kernel believes is on disk, where it differs from `durable` (after a failed
    /// sync marked pages clean without writing them). `None`: the same as `durable`.
    clean: Option<Vec<u8>>,
}

impl FileState {
    fn new(bytes: Vec<u8>) -> Self {
        Self {
            live: Arc::new(LiveBuf::new(bytes.clone())),
            durable: Arc::new(bytes),
            clean: None,
        }
    }

    /// A file whose live bytes are `live` and durable bytes `durable` (a `write_file` not yet
    /// synced).
    fn written(live: Vec<u8>, durable: Arc<Vec<u8>>) -> Self {
        Self {
            live: Arc::new(LiveBuf::new(live)),
            durable,
            clean: None,
        }
    }

    fn clean(&self) -> &[u8] {
        self.clean.as_deref().unwrap_or(&self.durable)
    }

    /// Dirty pages (live differs from clean) with their live bytes. A page past the clean
    /// length is dirty. If only the length differs (a shorter rewrite of the same prefix), the
    /// last live page is reported dirty, to carry the length change (see `Snapshot::crash`).
    fn dirty_pages(&self) -> Vec<(usize, Arc<[u8]>)> {
        let live = self.live.to_vec();
        let clean = self.clean();
        let mut dirty: Vec<(usize, Arc<[u8]>)> = live
            .chunks(PAGE_SIZE)
            .enumerate()
            .filter(|&(n, l)| clean.get(n * PAGE_SIZE..n * PAGE_SIZE + l.len()) != Some(l))
            .map(|(n, l)| (n, Arc::from(l)))
            .collect();
        if dirty.is_empty() && live.len() != clean.len() {
            let n = live.len().saturating_sub(1) / PAGE_SIZE;
            let start = (n * PAGE_SIZE).min(live.len());
            dirty.push((n, Arc::from(&live[start..])));
        }
        dirty
    }
}

#[derive(Default)]
struct State {
    dirs: BTreeSet<PathBuf>,
    files: HashMap<FileId, FileState>,
    next_file: FileId,
    live_names: BTreeMap<PathBuf, FileId>,
    durable_names: BTreeMap<PathBuf, FileId>,
    pending: Vec<DirOp>,
    locked: BTreeSet<PathBuf>,
    /// Every name a file was ever given, for messages.
    names_seen: BTreeMap<FileId, PathBuf>,
    ops: u64,
    calls: HashMap<OpKind, u64>,
    faults: Vec<Fault>,
    log: Vec<CrashPoint>,
    recording: bool,
    snapshots: Vec<Snapshot>,
    mark: u64,
    /// Regions currently mapped, per file.
    regions: HashMap<FileId, usize>,
    /// Whether unmapping the last region of a nameless file poisons its live bytes.
    poison_unmapped: bool,
    /// Called at the start of every `Region::sync`, with no lock held.
    sync_hook: Option<fn()>,
}

impl State {
    fn snapshot(&self, point: CrashPoint) -> Snapshot {
        let mut ids: BTreeSet<FileId> = self.durable_names.values().copied().collect();
        for op in &self.pending {
            if let DirOp::Create { file, .. } = op {
                ids.insert(*file);
            }
        }
        let files = ids
            .into_iter()
            .filter_map(|id| {
                let f = self.files.get(&id)?;
                Some((
                    id,
                    FileImage {
                        durable: Arc::clone(&f.durable),
                        live_len: f.live.len,
                        dirty: f.dirty_pages(),
                    },
                ))
            })
            .collect();
        Snapshot {
            point,
            mark: self.mark,
            files,
            durable_names: self.durable_names.clone(),
            pending: self.pending.clone(),
            dirs: self.dirs.clone(),
            names_seen: self.names_seen.clone(),
        }
    }

    fn dir_exists(&self, dir: &Path) -> io::Result<()> {
        if self.dirs.contains(dir) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory {}", dir.display()),
            ))
        }
    }

    fn parent_exists(&self, path: &Path) -> io::Result<()> {
        self.dir_exists(path.parent().unwrap_or(Path::new("")))
    }

    fn file(&self, path: &Path) -> io::Result<FileId> {
        self.live_names.get(path).copied().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no file {}", path.display()),
            )
        })
    }
}

/// A callback run after every operation (see [`SimStorage::set_hook`]).
pub type Hook = Arc<dyn Fn(&CrashPoint) + Send + Sync>;

struct Shared {
    state: Mutex<State>,
    hook: Mutex<Option<Hook>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one storage operation: counts it, takes the snapshots around it when recording,
    /// and passes it the injected error if this call is one to fail.
    fn op<T>(
        &self,
        kind: OpKind,
        path: &Path,
        f: impl FnOnce(&mut State, Option<io::Error>) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut st = self.lock();
        st.ops += 1;
        let op = st.ops;
        let nth = {
            let n = st.calls.entry(kind).or_insert(0);
            *n += 1;
            *n
        };
        if st.recording {
            let snap = st.snapshot(CrashPoint::Before {
                op,
                kind,
                path: path.to_path_buf(),
            });
            st.snapshots.push(snap);
        }
        let fault = st
            .faults
            .iter()
            .find(|x| x.kind == kind && (x.nth == nth || (x.sticky && nth >= x.nth)))
            .map(|x| x.error.to_io());
        let result = f(&mut st, fault);
        let after = CrashPoint::After {
            op,
            kind,
            path: path.to_path_buf(),
            ok: result.is_ok(),
        };
        if st.recording {
            let snap = st.snapshot(after.clone());
            st.snapshots.push(snap);
        }
        st.log.push(after.clone());
        drop(st);
        let hook = self
            .hook
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            hook(&after);
        }
        result
    }
}

/// An in-memory, crash-simulating [`Storage`]. See the [module docs](self) for the model.
#[derive(Clone)]
pub struct SimStorage {
    shared: Arc<Shared>,
}

impl Default for SimStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("SimStorage")
            .field("files", &st.live_names.len())
            .field("ops", &st.ops)
            .field("pending_dir_ops", &st.pending.len())
            .finish_non_exhaustive()
    }
}

impl SimStorage {
    /// An empty storage: no directories, no files.
    #[must_use]
    pub fn new() -> Self {
        Self::from_state(State {
            next_file: 1,
            ..State::default()
        })
    }

    fn from_state(state: State) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                hook: Mutex::new(None),
            }),
        }
    }

    /// The state now, to crash later (possibly many times).
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let st = self.shared.lock();
        st.snapshot(CrashPoint::Now { ops: st.ops })
    }

    /// The storage a power failure now leaves: `self.snapshot().crash(choice)`.
    #[must_use]
    pub fn crash(&self, choice: &CrashChoice) -> SimStorage {
        self.snapshot().crash(choice)
    }

    /// Starts (or stops) capturing a [`Snapshot`] just before and just after every operation.
    pub fn record_snapshots(&self, on: bool) {
        self.shared.lock().recording = on;
    }

    /// The snapshots captured so far, oldest first; clears the list.
    #[must_use]
    pub fn take_snapshots(&self) -> Vec<Snapshot> {
        std::mem::take(&mut self.shared.lock().snapshots)
    }

    /// Runs `hook` after every later operation, on the thread that made it, with no lock of
    /// the storage held (so it may call the storage, and the WAL above it, itself; it runs
    /// for those calls too). Lets a test act at an exact point, for example append from inside
    /// a sync. `None` removes it. A crashed storage starts without a hook.
    pub fn set_hook(&self, hook: Option<Hook>) {
        *self
            .shared
            .hook
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = hook;
    }

    /// Sets the number later snapshots carry in [`Snapshot::mark`].
    pub fn set_mark(&self, mark: u64) {
        self.shared.lock().mark = mark;
    }

    /// Makes the `nth` call (counted from 1 since this storage was made) of `kind` fail.
    pub fn fail_nth(&self, kind: OpKind, nth: u64, error: FaultError) {
        self.shared.lock().faults.push(Fault {
            kind,
            nth,
            error,
            sticky: false,
        });
    }

    /// Makes every call of `kind` from the `nth` on fail (a disk that stays full or broken).
    pub fn fail_from(&self, kind: OpKind, nth: u64, error: FaultError) {
        self.shared.lock().faults.push(Fault {
            kind,
            nth,
            error,
            sticky: true,
        });
    }

    /// Removes every injected fault (space is back).
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// How many calls of `kind` were made so far (failed ones included).
    #[must_use]
    pub fn calls(&self, kind: OpKind) -> u64 {
        self.shared.lock().calls.get(&kind).copied().unwrap_or(0)
    }

    /// How many operations were made so far.
    #[must_use]
    pub fn ops(&self) -> u64 {
        self.shared.lock().ops
    }

    /// Every operation so far, as "after op k" points, oldest first.
    #[must_use]
    pub fn op_log(&self) -> Vec<CrashPoint> {
        self.shared.lock().log.clone()
    }

    /// Names in the live directory `dir` (what `list` returns), without counting an operation.
    #[must_use]
    pub fn live_names(&self, dir: &Path) -> Vec<PathBuf> {
        let st = self.shared.lock();
        st.live_names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect()
    }

    /// How many regions ([`Storage::map`] results) are mapped now, over all files: a model of
    /// open mappings, to check that nothing keeps a segment mapped after its last user.
    #[must_use]
    pub fn live_regions(&self) -> usize {
        self.shared.lock().regions.values().sum()
    }

    /// Turns poisoning on (or off): from now on, when the last region of a file that has no
    /// name in the live directory (it was removed) is dropped, the file's live bytes become
    /// [`UNMAPPED_POISON`], so any later read through a pointer into it sees garbage.
    pub fn poison_unmapped(&self, on: bool) {
        self.shared.lock().poison_unmapped = on;
    }

    /// Sets a function called at the start of every [`Region::sync`] (`msync`), before the
    /// simulator takes its lock. A model checker's yield here lets other threads run while a
    /// sync is in flight, as they do while the kernel writes pages back; without it the whole
    /// sync is one indivisible step to the checker.
    pub fn set_sync_hook(&self, hook: Option<fn()>) {
        self.shared.lock().sync_hook = hook;
    }

    /// The durable bytes of the file named `path` in the live directory, if any.
    #[must_use]
    pub fn durable_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.shared.lock();
        let id = st.live_names.get(path)?;
        st.files.get(id).map(|f| f.durable.as_ref().clone())
    }
}

struct LockGuard {
    shared: Arc<Shared>,
    dir: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.shared.lock().locked.remove(&self.dir);
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.shared.op(OpKind::CreateDir, dir, |st, fault| {
            if let Some(e) = fault {
                return Err(e);
            }
            for a in dir.ancestors() {
                st.dirs.insert(a.to_path_buf());
            }
            Ok(())
        })
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<DirLock> {
        self.shared.op(OpKind::Lock, dir, |st, fault| {
            if let Some(e) = fault {
                return Err(e);
            }
            st.dir_exists(dir)?;
            if !st.locked.insert(dir.to_path_buf()) {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "directory is locked by another vault writer",
                ));
            }
            Ok(())
        })?;
        Ok(DirLock::new(Box::new(LockGuard {
            shared: Arc::clone(&self.shared),
            dir: dir.to_path_buf(),
        })))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        self.shared.op(OpKind::List, dir, |st, fault| {
            if let Some(e) = fault {
                return Err(e);
            }
            st.dir_exists(dir)?;
            Ok(st
                .live_names
                .keys()
                .filter(|p| p.parent() == Some(dir))
                .filter_map(|p| p.file_name().map(ToOwned::to_owned))
                .collect())
        })
    }

    /// A simulated file system that takes both I/O paths. Its crash model is the mmap one
    /// (any subset of dirty pages may reach the disk at any moment), which includes every
    /// state a direct-path crash can leave (only the blocks of a write in flight, whole, torn
    /// or missing), so tests of the direct path run against a stricter model.
    fn file_system(&self, _dir: &Path) -> io::Result<FileSystem> {
        Ok(FileSystem {
            name: "sim".into(),
            direct_io: true,
            direct_io_error: None,
            copy_on_write: false,
        })
    }

    fn create_allocated(&self, path: &Path, len: u64, _io: IoPath) -> io::Result<()> {
        self.shared.op(OpKind::Allocate, path, |st, fault| {
            st.parent_exists(path)?;
            if st.live_names.contains_key(path) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", path.display()),
                ));
            }
            // A failed allocation leaves the file created but empty (O_CREAT worked).
            let len = if fault.is_some() {
                0
            } else {
                usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?
            };
            let id = st.next_file;
            st.next_file += 1;
            st.files.insert(id, FileState::new(vec![0; len]));
            st.live_names.insert(path.to_path_buf(), id);
            st.names_seen.insert(id, path.to_path_buf());
            st.pending.push(DirOp::Create {
                path: path.to_path_buf(),
                file: id,
            });
            fault.map_or(Ok(()), Err)
        })
    }

    fn map(&self, path: &Path, access: Access) -> io::Result<Box<dyn Region>> {
        let writable = access.writable();
        let (file, live) = self.shared.op(OpKind::Map, path, |st, fault| {
            if let Some(e) = fault {
                return Err(e);
            }
            let id = st.file(path)?;
            let f = &st.files[&id];
            let live = Arc::clone(&f.live);
            if live.len == 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "empty file"));
            }
            if live.len != f.clean().len() {
                // Region syncs write pages in place; a mapped file's length must be durable.
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "SimStorage maps only files whose length is synced",
                ));
            }
            *st.regions.entry(id).or_insert(0) += 1;
            Ok((id, live))
        })?;
        Ok(Box::new(SimRegion {
            shared: Arc::clone(&self.shared),
            file,
            path: path.to_path_buf(),
            live,
            writable,
            ring: (access.io_path() == Some(IoPath::Direct)).then(|| SimRing {
                bytes: crate::sync::AtomicUsize::new(crate::direct::DEFAULT_RING_BYTES),
                released: crate::sync::AtomicUsize::new(0),
            }),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.shared.op(OpKind::Rename, from, |st, fault| {
            if let Some(e) = fault {
                return Err(e);
            }
            if from.parent() != to.parent() {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "SimStorage renames only within a directory",
                ));
            }
            let id = st.file(from)?;
            st.live_names.remove(from);
            st.live_names.insert(to.to_path_buf(), id);
            st.names_seen.insert(id, to.to_path_buf());
            st.pending.push(DirOp::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
            });
            Ok(())
        })
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.shared.op(OpKind::Remove, path, |st, fault| {
            if let Some(e) = fault {
                return Err(e);
            }
            st.file(path)?;
            st.live_names.remove(path);
            st.pending.push(DirOp::Remove {
                path: path.to_path_buf(),
            });
            Ok(())
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.shared.op(OpKind::SyncDir, dir, |st, fault| {
            if let Some(e) = fault {
                return Err(e);
            }
            st.dir_exists(dir)?;
            let pending = std::mem::take(&mut st.pending);
            for op in pending {
                if op.dir() == Some(dir) {
                    op.apply(&mut st.durable_names);
                } else {
                    st.pending.push(op);
                }
            }
            Ok(())
        })
    }

    fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.shared.op(OpKind::WriteFile, path, |st, fault| {
            st.parent_exists(path)?;
            // A failed write leaves the file created and truncated (O_CREAT|O_TRUNC worked).
            let live = if fault.is_some() {
                Vec::new()
            } else {
                bytes.to_vec()
            };
            if let Some(&id) = st.live_names.get(path) {
                if st.regions.contains_key(&id) {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "SimStorage rewrites only files that are not mapped",
                    ));
                }
                let old = &st.files[&id];
                // The kernel still believes the clean bytes are on disk (fsyncgate included).
                let clean = old.clean.clone();
                let mut f = FileState::written(live, Arc::clone(&old.durable));
                f.clean = clean;
                st.files.insert(id, f);
            } else {
                let id = st.next_file;
                st.next_file += 1;
                st.files
                    .insert(id, FileState::written(live, Arc::new(Vec::new())));
                st.live_names.insert(path.to_path_buf(), id);
                st.names_seen.insert(id, path.to_path_buf());
                st.pending.push(DirOp::Create {
                    path: path.to_path_buf(),
                    file: id,
                });
            }
            fault.map_or(Ok(()), Err)
        })
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.shared.op(OpKind::ReadFile, path, |st, fault| {
            if let Some(e) = fault {
                return Err(e);
            }
            let id = st.file(path)?;
            Ok(st.files[&id].live.to_vec())
        })
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.shared.op(OpKind::SyncFile, path, |st, fault| {
            let id = st.file(path)?;
            let Some(f) = st.files.get_mut(&id) else {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            };
            let live = f.live.to_vec();
            if fault.is_some() {
                // fsyncgate: the kernel marks the bytes clean; they never reach the disk.
                f.clean = Some(live);
                return fault.map_or(Ok(()), Err);
            }
            // Writes what the kernel believes is dirty: the length if it changed, and the
            // pages that differ from the clean bytes (not those a failed sync marked clean).
            let clean = f.clean();
            let mut durable = f.durable.as_ref().clone();
            if live.len() != clean.len() {
                durable.resize(live.len(), 0);
            }
            for (n, l) in live.chunks(PAGE_SIZE).enumerate() {
                let start = n * PAGE_SIZE;
                let end = start + l.len();
                if clean.get(start..end) != Some(l) {
                    if durable.len() < end {
                        durable.resize(end, 0);
                    }
                    durable[start..end].copy_from_slice(l);
                }
            }
            f.durable = Arc::new(durable);
            if f.clean.is_some() {
                f.clean = Some(live);
            }
            Ok(())
        })
    }
}

/// A file's live bytes, as a mapping.
struct SimRegion {
    shared: Arc<Shared>,
    file: FileId,
    path: PathBuf,
    live: Arc<LiveBuf>,
    writable: bool,
    /// A writable direct-path region keeps the direct path's ring bookkeeping (its bound and
    /// released front; the memory stays, as the bytes are the same either way), so that the
    /// appender's giving back runs on the simulator too, under loom included.
    ring: Option<SimRing>,
}

/// Its atomics are the segment's kind (loom's in this crate's models), so that a model sees
/// the happens-before a real region's release/acquire pair gives.
#[derive(Debug)]
struct SimRing {
    bytes: crate::sync::AtomicUsize,
    released: crate::sync::AtomicUsize,
}

impl fmt::Debug for SimRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimRegion")
            .field("file", &self.file)
            .field("path", &self.path)
            .field("len", &self.live.len)
            .finish_non_exhaustive()
    }
}

impl SimRegion {
    /// The name the file has now (it may have been renamed since it was mapped), for the
    /// operation log.
    fn current_name(&self) -> PathBuf {
        let st = self.shared.lock();
        st.names_seen
            .get(&self.file)
            .cloned()
            .unwrap_or_else(|| self.path.clone())
    }
}

impl Drop for SimRegion {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let left = st.regions.get_mut(&self.file).map_or(0, |n| {
            *n -= 1;
            *n
        });
        if left == 0 {
            st.regions.remove(&self.file);
            let named = st.live_names.values().any(|&id| id == self.file);
            if st.poison_unmapped && !named {
                self.live.fill(UNMAPPED_POISON);
            }
        }
    }
}

/// The byte [`SimStorage::poison_unmapped`] fills an unmapped, removed file with.
pub const UNMAPPED_POISON: u8 = 0xEE;

// SAFETY: `live` is a heap buffer of `len` bytes allocated once and never moved or resized; the
// region holds an `Arc` to it, so it stays valid for the region's life even after the file is
// removed or the storage dropped. While any region maps the file the simulator never writes
// its live bytes (it only reads them, at syncs, snapshots and crashes), so the only writes are
// the user's, through this pointer. (Poisoning writes them only once no region is left.)
unsafe impl Region for SimRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.live.ptr
    }

    fn len(&self) -> usize {
        self.live.len
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        let hook = self.shared.lock().sync_hook;
        if let Some(hook) = hook {
            hook();
        }
        let path = self.current_name();
        self.shared.op(OpKind::Sync, &path, |st, fault| {
            let total = self.live.len;
            let end = offset.saturating_add(len).min(total);
            if offset >= end {
                return fault.map_or(Ok(()), Err);
            }
            let Some(f) = st.files.get_mut(&self.file) else {
                // The file is gone from every view of the directory: nothing to make durable.
                return fault.map_or(Ok(()), Err);
            };
            let first = offset / PAGE_SIZE;
            let last = end.div_ceil(PAGE_SIZE);
            let mut page = vec![0u8; PAGE_SIZE];
            for n in first..last {
                let start = n * PAGE_SIZE;
                let plen = PAGE_SIZE.min(total - start);
                let live = &mut page[..plen];
                self.live.read(start, live);
                if live == &f.clean()[start..start + plen] {
                    continue;
                }
                if fault.is_some() {
                    // fsyncgate: the page is marked clean, its bytes never reach the disk.
                    let durable = Arc::clone(&f.durable);
                    let clean = f.clean.get_or_insert_with(|| durable.as_ref().clone());
                    clean[start..start + plen].copy_from_slice(live);
                } else {
                    Arc::make_mut(&mut f.durable)[start..start + plen].copy_from_slice(live);
                    if let Some(clean) = &mut f.clean {
                        clean[start..start + plen].copy_from_slice(live);
                    }
                }
            }
            fault.map_or(Ok(()), Err)
        })
    }

    fn prefault(&self) -> io::Result<()> {
        let path = self.current_name();
        self.shared.op(OpKind::Prefault, &path, |_, fault| {
            fault.map_or(Ok(()), Err)
        })
    }

    fn ring_bytes(&self) -> usize {
        self.ring
            .as_ref()
            .map_or(0, |r| r.bytes.load(crate::sync::Ordering::Acquire))
    }

    fn set_ring_bytes(&self, bytes: usize) {
        if let Some(r) = &self.ring {
            let bytes = bytes.max(1).div_ceil(PAGE_SIZE) * PAGE_SIZE;
            r.bytes.store(bytes, crate::sync::Ordering::Release);
        }
    }

    fn released(&self) -> usize {
        self.ring
            .as_ref()
            .map_or(0, |r| r.released.load(crate::sync::Ordering::Acquire))
    }

    fn release(&self, upto: usize) -> io::Result<()> {
        if let Some(r) = &self.ring {
            let upto = upto.min(self.live.len);
            r.released
                .fetch_max(upto - upto % PAGE_SIZE, crate::sync::Ordering::AcqRel);
        }
        Ok(())
    }
}
