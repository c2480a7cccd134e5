//! [`VaultLogStore`]: openraft's `RaftLogStorage` over one vault [`Wal`].

use std::fmt::{self, Debug};
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    ErrorSubject, ErrorVerb, LogId, NodeId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig,
    StorageError, Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use vault_core::{FileMode, Lsn, Options, Storage, Wal};

use crate::error::{Error, Result};
use crate::meta::{sync_dir, Metadata};

/// The subdirectory of the store's directory that holds the vault WAL.
pub const WAL_DIR: &str = "wal";

/// The LSN of the record that holds log index `index`.
#[must_use]
pub const fn lsn_of(index: u64) -> Lsn {
    index + 1
}

/// What the store and its readers share.
struct Shared<NID: NodeId> {
    wal: Wal,
    dir: PathBuf,
    /// The WAL's storage (`Options::storage`); the metadata file goes through it too.
    storage: Arc<dyn Storage>,
    /// `Options::file_mode`: the metadata file is widened to it after each write (it is
    /// created owner-only).
    file_mode: FileMode,
    /// LSN of the last purged entry (0: none). Records at or below it may still be in the WAL
    /// (`truncate_front` removes whole segments only); readers skip them.
    purged_lsn: AtomicU64,
    /// The metadata as last written, plus the committed id saved since (written with the next
    /// metadata write).
    meta: Mutex<Metadata<NID>>,
}

impl<NID: NodeId> Shared<NID> {
    fn meta(&self) -> MutexGuard<'_, Metadata<NID>> {
        self.meta.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `next` as the metadata file, after syncing the WAL so that the file never gets
    /// ahead of the log on disk (openraft asks that log and vote I/O be serialised).
    fn write_meta(&self, meta: &mut Metadata<NID>, next: Metadata<NID>) -> Result<()> {
        self.wal.sync()?;
        next.store(self.storage.as_ref(), &self.dir)?;
        if self.file_mode != FileMode::Private {
            let path = self.dir.join(crate::META_FILE);
            self.storage
                .set_mode(&path, self.file_mode, false)
                .map_err(|e| Error::io("set the mode of", &path, e))?;
        }
        *meta = next;
        Ok(())
    }

    fn decode<E: DeserializeOwned + RaftLogId<NID>>(&self, lsn: Lsn, bytes: &[u8]) -> Result<E> {
        let e: E =
            rmp_serde::from_slice(bytes).map_err(|source| Error::DecodeEntry { lsn, source })?;
        let index = e.get_log_id().index;
        if lsn_of(index) != lsn {
            return Err(Error::IndexMismatch { lsn, index });
        }
        Ok(e)
    }

    /// Entries with index in `range` that are in the log (not purged, not past the end).
    fn entries<E, RB>(&self, range: &RB) -> Result<Vec<E>>
    where
        E: DeserializeOwned + RaftLogId<NID>,
        RB: RangeBounds<u64>,
    {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        let from = lsn_of(start).max(self.purged_lsn.load(Ordering::Acquire) + 1);
        let to = lsn_of(end.min(u64::MAX - 1)); // exclusive
        let mut out = Vec::new();
        if from >= to || from > self.wal.last_lsn() {
            return Ok(out);
        }
        for r in self.wal.iter_from(from) {
            if r.lsn() >= to {
                break;
            }
            if r.lsn() < from {
                continue;
            }
            out.push(self.decode(r.lsn(), &r)?);
        }
        Ok(out)
    }
}

/// An openraft log store (`RaftLogStorage` + `RaftLogReader`) over one vault [`Wal`]; see the
/// crate docs for the layout and the crash semantics of each operation.
///
/// `C::Entry` must be serde-serialisable (openraft's `serde` feature makes `openraft::Entry`
/// so when `C::D` is). Dropping the store (with its readers) closes the WAL.
pub struct VaultLogStore<C: RaftTypeConfig> {
    shared: Arc<Shared<C::NodeId>>,
    _c: PhantomData<fn() -> C>,
}

/// A reader of a [`VaultLogStore`]'s log for openraft's replication tasks; it shares the WAL.
pub struct VaultLogReader<C: RaftTypeConfig> {
    shared: Arc<Shared<C::NodeId>>,
    _c: PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig> Clone for VaultLogReader<C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            _c: PhantomData,
        }
    }
}

impl<C: RaftTypeConfig> Debug for VaultLogStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultLogStore")
            .field("dir", &self.shared.dir)
            .field(
                "purged_lsn",
                &self.shared.purged_lsn.load(Ordering::Relaxed),
            )
            .field("last_lsn", &self.shared.wal.last_lsn())
            .field("durable_lsn", &self.shared.wal.durable_lsn())
            .finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> Debug for VaultLogReader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultLogReader")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> VaultLogStore<C> {
    /// Opens (creating if missing) the log store in `dir`: the vault WAL in `dir/wal`, opened
    /// with `options`, and the metadata file `dir/raft-meta`.
    ///
    /// Use [`vault_core::SyncPolicy::Manual`] (see [`VaultLogStore::options`]): durability
    /// then comes from `on_durable`'s group commit, which is what `append`'s `LogFlushed`
    /// waits for. With `SyncPolicy::Always` every `append` would block on its own sync.
    ///
    /// Crash semantics: opening recovers the WAL (cutting a torn tail of records whose
    /// `LogFlushed` was never called) and reads the metadata; it writes nothing else.
    ///
    /// # Errors
    /// [`Error::Wal`] (locked directory, corruption, I/O); [`Error::Io`] creating the
    /// directory; [`Error::CorruptMetadata`].
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        // Every file operation, the metadata file's included, goes through the WAL's storage.
        let storage = Arc::clone(options.storage());
        let existed = storage.list(&dir).is_ok();
        storage
            .create_dir_all(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
        let file_mode = options.file_mode();
        if !existed && file_mode != FileMode::Private {
            storage
                .set_mode(&dir, file_mode, true)
                .map_err(|e| Error::io("set the mode of", &dir, e))?;
        }
        if !existed {
            // The metadata file is renamed into `dir`: make `dir` itself durable first.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(storage.as_ref(), parent)?;
            }
        }
        // The WAL's directory lock also guards the metadata file: only one store per `dir`.
        let wal = Wal::open(dir.join(WAL_DIR), options)?;
        let meta = Metadata::<C::NodeId>::load(storage.as_ref(), &dir)?;
        let purged_lsn = meta.last_purged.as_ref().map_or(0, |l| lsn_of(l.index));
        let shared = Arc::new(Shared {
            wal,
            dir,
            storage,
            file_mode,
            purged_lsn: AtomicU64::new(purged_lsn),
            meta: Mutex::new(meta),
        });
        Ok(Self {
            shared,
            _c: PhantomData,
        })
    }

    /// The WAL options this store is meant for: the defaults with
    /// [`vault_core::SyncPolicy::Manual`].
    #[must_use]
    pub fn options() -> Options {
        Options::default().with_sync(vault_core::SyncPolicy::Manual)
    }

    /// The underlying WAL (for statistics, `durable_lsn`, or tests).
    #[must_use]
    pub fn wal(&self) -> &Wal {
        &self.shared.wal
    }

    /// The store's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Writes the committed log id saved by `save_committed` to the metadata file now (it is
    /// otherwise written with the next vote or purge).
    ///
    /// Crash semantics: as the metadata write (see the crate docs).
    ///
    /// # Errors
    /// [`Error::Wal`] if syncing the WAL first fails; [`Error::Io`].
    pub fn flush_metadata(&self) -> Result<()> {
        let mut meta = self.shared.meta();
        let next = meta.clone();
        self.shared.write_meta(&mut meta, next)
    }

    fn reader(&self) -> VaultLogReader<C> {
        VaultLogReader {
            shared: Arc::clone(&self.shared),
            _c: PhantomData,
        }
    }
}

impl<C> VaultLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    fn log_state(&self) -> Result<LogState<C>> {
        let s = &self.shared;
        let last_purged_log_id = s.meta().last_purged.clone();
        let purged = s.purged_lsn.load(Ordering::Acquire);
        let last = s.wal.last_lsn();
        let last_log_id = if last > purged {
            let r = s.wal.read(last).ok_or(Error::Missing { lsn: last })?;
            let e: C::Entry = s.decode(last, &r)?;
            Some(e.get_log_id().clone())
        } else {
            last_purged_log_id.clone()
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    /// Makes the WAL's next LSN `lsn_of(first_index)`: a no-op when it already is; a `reset`
    /// when the log holds no live entry (everything purged, e.g. after a snapshot install).
    fn prepare_append(&self, first_index: u64) -> Result<()> {
        let s = &self.shared;
        let want = lsn_of(first_index);
        let next = s.wal.last_lsn() + 1;
        if want == next {
            return Ok(());
        }
        if s.wal.last_lsn() <= s.purged_lsn.load(Ordering::Acquire) {
            s.wal.reset(want)?;
            return Ok(());
        }
        Err(Error::NotContiguous {
            index: first_index,
            next: next - 1,
        })
    }

    fn append_entries<I>(&self, entries: I) -> Result<Option<Lsn>>
    where
        I: IntoIterator<Item = C::Entry>,
    {
        let mut bufs: Vec<Vec<u8>> = Vec::new();
        let mut first_index = None;
        let mut expect = 0;
        for e in entries {
            let index = e.get_log_id().index;
            if first_index.is_none() {
                first_index = Some(index);
            } else if index != expect {
                return Err(Error::NotContiguous {
                    index,
                    next: expect,
                });
            }
            expect = index + 1;
            bufs.push(rmp_serde::to_vec(&e).map_err(|source| Error::Encode {
                what: "entry",
                source,
            })?);
        }
        let Some(first_index) = first_index else {
            return Ok(None);
        };
        self.prepare_append(first_index)?;
        let first = self.shared.wal.append_batch(&bufs)?;
        if first != lsn_of(first_index) {
            // Only another writer of this WAL could cause this; `&mut self` rules it out.
            return Err(Error::IndexMismatch {
                lsn: first,
                index: first_index,
            });
        }
        Ok(Some(first + bufs.len() as u64 - 1))
    }

    fn truncate_from(&self, log_id: &LogId<C::NodeId>) -> Result<()> {
        self.shared.wal.truncate_back(lsn_of(log_id.index))?;
        Ok(())
    }

    fn purge_upto(&self, log_id: &LogId<C::NodeId>) -> Result<()> {
        let s = &self.shared;
        let lsn = lsn_of(log_id.index);
        {
            let mut meta = s.meta();
            if meta
                .last_purged
                .as_ref()
                .is_some_and(|p| p.index >= log_id.index)
            {
                return Ok(());
            }
            let next = Metadata {
                last_purged: Some(log_id.clone()),
                ..meta.clone()
            };
            s.write_meta(&mut meta, next)?;
            s.purged_lsn.store(lsn, Ordering::Release);
        }
        if lsn >= s.wal.last_lsn() {
            // Everything in the WAL is purged (or the purge is past its end, after a snapshot
            // install): start an empty log at the next index.
            s.wal.reset(lsn + 1)?;
        } else {
            s.wal.truncate_front(lsn + 1)?;
        }
        Ok(())
    }

    fn save_vote_now(&self, vote: &Vote<C::NodeId>) -> Result<()> {
        let mut meta = self.shared.meta();
        let next = Metadata {
            vote: Some(vote.clone()),
            ..meta.clone()
        };
        self.shared.write_meta(&mut meta, next)
    }
}

fn storage_err<NID: NodeId>(
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
) -> impl FnOnce(Error) -> StorageError<NID> {
    move |e| e.into_storage_error(subject, verb)
}

impl<C> RaftLogReader<C> for VaultLogReader<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.shared
            .entries(&range)
            .map_err(storage_err(ErrorSubject::Logs, ErrorVerb::Read))
    }
}

impl<C> RaftLogReader<C> for VaultLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.shared
            .entries(&range)
            .map_err(storage_err(ErrorSubject::Logs, ErrorVerb::Read))
    }
}

impl<C> RaftLogStorage<C> for VaultLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    LogFlushed<C>: Send,
{
    type LogReader = VaultLogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        self.log_state()
            .map_err(storage_err(ErrorSubject::Logs, ErrorVerb::Read))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    /// Crash semantics: durable when this returns (WAL synced first, then the metadata
    /// file replaced by rename).
    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.save_vote_now(vote)
            .map_err(storage_err(ErrorSubject::Vote, ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.shared.meta().vote.clone())
    }

    /// Kept in memory and written with the next metadata write (see the crate docs).
    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.shared.meta().committed = committed;
        Ok(())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.shared.meta().committed.clone())
    }

    /// Appends without waiting for the disk; `callback` runs on vault's committer thread once
    /// a group-commit flush made the last entry durable.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        match self.append_entries(entries) {
            Ok(Some(last)) => {
                self.shared.wal.on_durable(last, move |r| {
                    callback.log_io_completed(r.map(drop).map_err(io::Error::other));
                });
                Ok(())
            }
            Ok(None) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                callback.log_io_completed(Err(io::Error::other(msg)));
                Err(e.into_storage_error(ErrorSubject::Logs, ErrorVerb::Write))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.truncate_from(&log_id)
            .map_err(storage_err(ErrorSubject::Log(log_id), ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.purge_upto(&log_id)
            .map_err(storage_err(ErrorSubject::Log(log_id), ErrorVerb::Delete))
    }
}
