//! Options of a [`crate::Wal`].

use crate::sync::StdArc as Arc;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use vault_segment::{
    FileMode, FileSystem, FsStorage, IoPath, Storage, DEFAULT_RING_BYTES, MAX_PAYLOAD,
};

use crate::error::{Error, Result};

/// When appended records are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `append` returns only once its record is durable. Concurrent appenders share one flush
    /// (group commit): one thread syncs for everyone waiting.
    Always,
    /// A background thread syncs every interval; `append` returns once the record is in the
    /// mapping. A crash loses at most about one interval of records.
    Interval(Duration),
    /// Nothing syncs until the caller calls [`crate::Wal::sync`] (or closes the WAL).
    Manual,
}

/// Which I/O path a [`crate::Wal`] writes its segments through (see
/// `docs/ARCHITECTURE.md`, "The two I/O paths"). Both paths write the same on-disk format: a
/// log written on one opens on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// Chosen at open by a fixed rule from the directory's file system (no timing): direct
    /// I/O where the file system takes it and has a device behind it (ext4, xfs, btrfs, and
    /// other file systems that accept an `O_DIRECT` write; on Windows and macOS, a volume that
    /// takes the platform's direct write), the mapping elsewhere (tmpfs, or a storage without
    /// direct I/O). Never the mapping on a copy-on-write file system (btrfs, zfs, bcachefs,
    /// APFS, ReFS): there, without direct I/O, `open` fails with
    /// [`crate::Error::MmapUnsupported`]. The choice is in
    /// [`crate::RecoveryReport::io_path`] and [`crate::WalStats::io_path`].
    #[default]
    Auto,
    /// Memory-mapped segments: appends store into the page cache, syncs are `msync`. `open`
    /// refuses it with [`crate::Error::MmapUnsupported`] on a copy-on-write file system
    /// (btrfs, zfs, bcachefs, APFS, ReFS), where a store into a mapped page can need new space
    /// and a full disk turns it into `SIGBUS` (see `docs/ARCHITECTURE.md`, "File systems").
    Mmap,
    /// Direct I/O: appends copy into process memory, syncs write the dirty blocks with
    /// `O_DIRECT` + `RWF_DSYNC` (Windows: `FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH`;
    /// macOS: `F_NOCACHE` + `F_FULLFSYNC`), bypassing the page cache. `open` fails with
    /// [`crate::Error::DirectIoUnsupported`] where the file system cannot do it (tmpfs),
    /// never falling back silently.
    Direct,
}

impl IoMode {
    /// The I/O path this mode takes on `fs` for the log in `dir`, or the typed error that
    /// says why it cannot be taken.
    pub(crate) fn resolve(self, fs: &FileSystem, dir: &Path) -> Result<IoPath> {
        let no_direct = || Error::DirectIoUnsupported {
            dir: dir.to_path_buf(),
            file_system: fs.name.clone(),
            reason: fs
                .direct_io_error
                .clone()
                .unwrap_or_else(|| "direct I/O is not available".into()),
        };
        let no_mmap = |also: &str| Error::MmapUnsupported {
            dir: dir.to_path_buf(),
            file_system: fs.name.clone(),
            also: also.to_string(),
        };
        match self {
            IoMode::Mmap if fs.copy_on_write => Err(no_mmap("")),
            IoMode::Direct if fs.direct_io => Ok(IoPath::Direct),
            IoMode::Direct => Err(no_direct()),
            IoMode::Auto if fs.direct_io && fs.name != "sim" => Ok(IoPath::Direct),
            IoMode::Auto if fs.copy_on_write => Err(no_mmap(&format!(
                ", and direct I/O, the path vault takes there, is not available: {}",
                fs.direct_io_error.as_deref().unwrap_or("unknown reason")
            ))),
            IoMode::Mmap | IoMode::Auto => Ok(IoPath::Mmap),
        }
    }
}

impl std::str::FromStr for IoMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(IoMode::Auto),
            "mmap" => Ok(IoMode::Mmap),
            "direct" => Ok(IoMode::Direct),
            other => Err(format!(
                "unknown I/O mode {other:?}: use mmap, direct or auto"
            )),
        }
    }
}

/// What an append does when the log is at its disk budget ([`Options::disk_budget`]): when
/// taking a new segment would put the log's files past the bound.
///
/// Either way nothing already appended is dropped to make room; room comes only from
/// [`crate::Wal::truncate_front`] (or `truncate_back`/`reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPolicy {
    /// Wait for room, at most this long, then fail with [`Error::BudgetExhausted`]. The
    /// waiting append holds up the appends behind it (it waits without the append lock, so
    /// syncs, readers and truncations go on). `Duration::MAX`: no limit.
    Wait(Duration),
    /// Fail at once with [`Error::BudgetExhausted`]; nothing of that append is written. An
    /// async caller then awaits [`crate::Wal::room`] and appends again.
    Fail,
}

impl Default for BudgetPolicy {
    /// [`BudgetPolicy::Fail`]: an append never blocks on the budget unless asked to.
    fn default() -> Self {
        BudgetPolicy::Fail
    }
}

/// How a [`crate::Wal`] is set up: [`Options::default`] and the `with_*` methods set it, the
/// methods named after each setting read it.
#[derive(Clone)]
pub struct Options {
    /// Capacity of each segment file in bytes.
    pub(crate) segment_size: u64,
    /// When records become durable.
    pub(crate) sync: SyncPolicy,
    /// The largest record accepted.
    pub(crate) max_record_size: usize,
    /// The file-system seam.
    pub(crate) storage: Arc<dyn Storage>,
    /// Prepared segments kept ready; `None`: automatic.
    pub(crate) spare_segments: Option<usize>,
    /// The I/O path.
    pub(crate) io: IoMode,
    /// Direct path: write full blocks out as they fill.
    pub(crate) write_behind: bool,
    /// Direct path: the memory a segment being written may hold.
    pub(crate) direct_ring_bytes: usize,
    /// A bound on the bytes of the log's files.
    pub(crate) disk_budget: Option<u64>,
    /// What appends do at the budget.
    pub(crate) budget_policy: BudgetPolicy,
    /// Who may read the log.
    pub(crate) file_mode: FileMode,
    /// How many dropped files are kept for reuse; `None`: as many as the spares.
    pub(crate) recycle_segments: Option<usize>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("segment_size", &self.segment_size)
            .field("sync", &self.sync)
            .field("max_record_size", &self.max_record_size)
            .field("storage", &self.storage)
            .field("spare_segments", &self.spare_segments)
            .field("io", &self.io)
            .field("write_behind", &self.write_behind)
            .field("direct_ring_bytes", &self.direct_ring_bytes)
            .field("disk_budget", &self.disk_budget)
            .field("budget_policy", &self.budget_policy)
            .field("file_mode", &self.file_mode)
            .field("recycle_segments", &self.recycle_segments)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            sync: SyncPolicy::Always,
            max_record_size: 64 << 20,
            storage: Arc::new(FsStorage),
            spare_segments: None,
            io: IoMode::Auto,
            write_behind: false,
            direct_ring_bytes: DEFAULT_RING_BYTES,
            disk_budget: None,
            budget_policy: BudgetPolicy::Fail,
            file_mode: FileMode::Private,
            recycle_segments: None,
        }
    }
}

impl Options {
    /// Sets the segment capacity in bytes.
    #[must_use]
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets the sync policy.
    #[must_use]
    pub fn with_sync(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }

    /// Sets the largest record accepted.
    #[must_use]
    pub fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record_size = bytes;
        self
    }

    /// Sets the file-system seam.
    #[must_use]
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Sets the I/O path.
    #[must_use]
    pub fn with_io(mut self, io: IoMode) -> Self {
        self.io = io;
        self
    }

    /// Turns write-behind on or off (see [`Options::write_behind`]).
    #[must_use]
    pub fn with_write_behind(mut self, on: bool) -> Self {
        self.write_behind = on;
        self
    }

    /// Sets the direct path's memory bound per segment (see [`Options::direct_ring_bytes`]).
    #[must_use]
    pub fn with_direct_ring_bytes(mut self, bytes: usize) -> Self {
        self.direct_ring_bytes = bytes;
        self
    }

    /// Sets who may read the log's files.
    #[must_use]
    pub fn with_file_mode(mut self, mode: FileMode) -> Self {
        self.file_mode = mode;
        self
    }

    /// Sets how many prepared segments the worker keeps ready (1 to 64; unset: automatic,
    /// see [`Options::spares`]).
    #[must_use]
    pub fn with_spare_segments(mut self, n: usize) -> Self {
        self.spare_segments = Some(n);
        self
    }

    /// Sets how many dropped segment files are kept for reuse (see
    /// [`Options::recycle_segments`]; 0: never recycle).
    #[must_use]
    pub fn with_recycle_segments(mut self, n: usize) -> Self {
        self.recycle_segments = Some(n);
        self
    }

    /// The number of dropped segment files kept for reuse with these options: 0 with a disk
    /// budget (the space a truncation frees must be free at once), else
    /// [`Options::recycle_segments`] or, by default, [`Options::spares`].
    #[must_use]
    pub fn recycled_segments(&self) -> usize {
        if self.disk_budget.is_some() {
            return 0;
        }
        self.recycle_segments.unwrap_or_else(|| self.spares())
    }

    /// Bounds the bytes of the log's files (see [`Options::disk_budget`]), with `policy` at the
    /// bound.
    #[must_use]
    pub fn with_disk_budget(mut self, bytes: u64, policy: BudgetPolicy) -> Self {
        self.disk_budget = Some(bytes);
        self.budget_policy = policy;
        self
    }

    /// The bytes of one normal segment file with these options.
    #[must_use]
    pub fn segment_file_len(&self) -> u64 {
        vault_segment::round_capacity(self.segment_size)
    }

    /// Bytes the budget keeps for vault itself, whatever the log holds: the spares the worker
    /// keeps ready, and the copy of one segment `truncate_back` writes before it renames it
    /// over the original.
    #[must_use]
    pub fn budget_reserve(&self) -> u64 {
        (self.spares() as u64 + 1).saturating_mul(self.segment_file_len())
    }

    /// The smallest disk budget `open` accepts: [`Options::budget_reserve`] plus two normal
    /// segments, the tail and the one after it (with less, the log could never rotate: the
    /// tail segment is never truncated away).
    #[must_use]
    pub fn min_disk_budget(&self) -> u64 {
        self.budget_reserve()
            .saturating_add(2 * self.segment_file_len())
    }

    /// The number of spare segments the worker keeps ready with these options.
    #[must_use]
    pub fn spares(&self) -> usize {
        self.spare_segments
            .unwrap_or_else(|| crate::sync::default_spares(self.segment_size))
    }

    // The settings, one reader each (the `with_*` methods above set them).

    /// Capacity of each segment file in bytes (default 64 MiB). Records larger than a segment
    /// get a segment of their own size.
    #[must_use]
    pub fn segment_size(&self) -> u64 {
        self.segment_size
    }

    /// When records become durable (default [`SyncPolicy::Always`]).
    #[must_use]
    pub fn sync(&self) -> SyncPolicy {
        self.sync
    }

    /// The largest record accepted (default 64 MiB); larger appends fail with
    /// [`Error::RecordTooLarge`].
    #[must_use]
    pub fn max_record_size(&self) -> usize {
        self.max_record_size
    }

    /// The file-system seam (default the real file system).
    #[must_use]
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Prepared segments the rotation worker keeps ready ahead of the writer, if set; `None`
    /// (the default) means automatic: enough for 128 MiB, between one and four (see [`Options::spares`]).
    /// More absorb longer bursts of unsynced appends that outrun preparation.
    #[must_use]
    pub fn spare_segments(&self) -> Option<usize> {
        self.spare_segments
    }

    /// The I/O path (default [`IoMode::Auto`]).
    #[must_use]
    pub fn io(&self) -> IoMode {
        self.io
    }

    /// On the direct path, write full blocks of unsynced records to the file as they fill
    /// (every 256 KiB), without a sync, so that a process that dies loses at most the last
    /// 256 KiB of unsynced records (default off: a block written out before its sync may be
    /// written again by it; without write-behind, Linux's memory ring writes blocks out only
    /// once more than half of [`Options::direct_ring_bytes`] is pending, so a process that
    /// dies loses at most about a ring). No effect on the mmap path, whose unsynced records
    /// survive a process death in the page cache anyway.
    #[must_use]
    pub fn write_behind(&self) -> bool {
        self.write_behind
    }

    /// On the direct path, the memory a segment being written may hold (default
    /// [`vault_segment::DEFAULT_RING_BYTES`], 4 MiB; at least 4 KiB). As syncs and write-outs
    /// put a segment's bytes in the file, the memory under them is given back and the file
    /// is mapped read-only in its place (readers read the same bytes at the same addresses);
    /// an appender that finds the ring full writes out and gives back memory itself, counted
    /// in [`crate::WalStats::ring_waits`]. Linux only: on Windows and macOS a direct-path
    /// segment keeps its whole file in memory until it is durable. No effect on the mmap path.
    #[must_use]
    pub fn direct_ring_bytes(&self) -> usize {
        self.direct_ring_bytes
    }

    /// A bound on the bytes of the log's files (default `None`: unbounded): its segments,
    /// the spares the worker keeps, and room for the copy `truncate_back` makes. The log
    /// grows by whole segments, so the bound is checked where it grows, at rotation; at the
    /// bound, appends follow [`Options::budget_policy`]. At least
    /// [`Options::min_disk_budget`], or `open` fails with [`Error::BudgetTooSmall`]. See
    /// `docs/ARCHITECTURE.md`, "The disk budget".
    #[must_use]
    pub fn disk_budget(&self) -> Option<u64> {
        self.disk_budget
    }

    /// What appends do at the bound (default [`BudgetPolicy::Fail`]).
    #[must_use]
    pub fn budget_policy(&self) -> BudgetPolicy {
        self.budget_policy
    }

    /// Who may read the log (default [`FileMode::Private`]: segments `0600`, the directory
    /// `0700` when vault creates it). With [`FileMode::GroupReadable`] every segment the log
    /// holds is `0640` and a directory vault creates `0750`; spares and `-pre` files, which
    /// hold no records, stay `0600`. The mode of an existing directory is left alone.
    #[must_use]
    pub fn file_mode(&self) -> FileMode {
        self.file_mode
    }

    /// How many files dropped by [`crate::Wal::truncate_front`] are kept for reuse as later
    /// segments (default `None`: as many as [`Options::spares`]; `Some(0)`: never, every
    /// dropped file is removed). A recycled file is renamed out of the log, given a new
    /// header, index and salt by the rotation worker and appended to like a new segment: no
    /// allocation, and on ext4 and xfs no metadata write when its blocks are written (see
    /// `docs/ARCHITECTURE.md`, "Recycled segments"). Until they are overwritten, its old
    /// records stay in the file as stale bytes: turn recycling off where discarded records
    /// must leave the disk with `truncate_front`. Files the log dropped while a reader still
    /// held one of their records, files of another size (a segment enlarged for a large
    /// record), and every file of a log with a [`Options::disk_budget`] are removed instead.
    #[must_use]
    pub fn recycle_segments(&self) -> Option<usize> {
        self.recycle_segments
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self.spare_segments {
            Some(0) => {
                return Err(Error::InvalidOptions(
                    "spare_segments 0: the writer needs at least one prepared segment; leave it \
                     unset for the automatic count"
                        .into(),
                ))
            }
            Some(n) if n > 64 => {
                return Err(Error::InvalidOptions(format!(
                    "spare_segments {n} is more than 64: each spare is a whole segment file on disk"
                )))
            }
            _ => {}
        }
        if self.recycle_segments.is_some_and(|n| n > 64) {
            return Err(Error::InvalidOptions(format!(
                "recycle_segments {} is more than 64: each is a whole segment file on disk",
                self.recycle_segments.unwrap_or_default()
            )));
        }
        if self.segment_size < 4096 || self.segment_size > (1 << 40) {
            return Err(Error::InvalidOptions(format!(
                "segment_size {} is outside 4 KiB..=1 TiB",
                self.segment_size
            )));
        }
        if self.direct_ring_bytes < 4096 {
            return Err(Error::InvalidOptions(format!(
                "direct_ring_bytes {} is less than 4 KiB: the ring holds whole pages",
                self.direct_ring_bytes
            )));
        }
        if self.max_record_size > MAX_PAYLOAD {
            return Err(Error::InvalidOptions(format!(
                "max_record_size {} exceeds the format's limit of {MAX_PAYLOAD} bytes",
                self.max_record_size
            )));
        }
        if let Some(budget) = self.disk_budget {
            let needed = self.min_disk_budget();
            if budget < needed {
                return Err(Error::BudgetTooSmall { budget, needed });
            }
        }
        if let SyncPolicy::Interval(d) = self.sync {
            if d.is_zero() {
                return Err(Error::InvalidOptions(
                    "SyncPolicy::Interval needs a non-zero interval (use Always to sync each append)"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}
