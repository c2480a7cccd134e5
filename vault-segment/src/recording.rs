//! [`RecordingStorage`]: a [`Storage`] that records every successful sync, for tests that
//! check a byte was covered by a sync before the WAL called it durable.

use crate::sync::{PoisonError, StdArc as Arc, StdMutex as Mutex};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::storage::{Access, DirLock, FileMode, FileSystem, IoPath, Region, Storage};

/// A durability event seen by [`RecordingStorage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// `Region::sync` of `len` bytes from `offset` in `path` returned `Ok`.
    Data {
        /// The file.
        path: PathBuf,
        /// First byte synced.
        offset: usize,
        /// Bytes synced.
        len: usize,
    },
    /// `sync_dir` of `dir` returned `Ok`.
    Dir {
        /// The directory.
        dir: PathBuf,
    },
    /// `sync_file` of `path` returned `Ok`.
    File {
        /// The file.
        path: PathBuf,
    },
}

/// A [`Storage`] that forwards to another and records every successful sync, so tests can
/// check that a byte was covered by a sync before the WAL called it durable.
#[derive(Debug, Clone, Default)]
pub struct RecordingStorage<S> {
    inner: S,
    events: Arc<Mutex<Vec<SyncEvent>>>,
}

impl<S: Storage> RecordingStorage<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            events: Arc::default(),
        }
    }

    /// The events so far, oldest first.
    #[must_use]
    pub fn events(&self) -> Vec<SyncEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether byte `offset` of `path` was covered by a data sync that happened after the
    /// first `after` events.
    #[must_use]
    pub fn synced_since(&self, after: usize, path: &Path, offset: usize) -> bool {
        self.events().iter().skip(after).any(|e| match e {
            SyncEvent::Data {
                path: p,
                offset: o,
                len,
            } => p == path && *o <= offset && offset < o + len,
            SyncEvent::Dir { .. } | SyncEvent::File { .. } => false,
        })
    }
}

#[derive(Debug)]
struct RecordingRegion {
    inner: Box<dyn Region>,
    path: PathBuf,
    events: Arc<Mutex<Vec<SyncEvent>>>,
}

// SAFETY: every method forwards to `inner`, which upholds the `Region` contract; the recording
// adds no access to the mapped bytes.
unsafe impl Region for RecordingRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.inner.as_ptr()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn writable(&self) -> bool {
        self.inner.writable()
    }
    fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        self.inner.sync(offset, len)?;
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SyncEvent::Data {
                path: self.path.clone(),
                offset,
                len,
            });
        Ok(())
    }
    fn prefault(&self) -> io::Result<()> {
        self.inner.prefault()
    }
    fn write_out(&self, offset: usize, len: usize) -> io::Result<()> {
        self.inner.write_out(offset, len)
    }
    fn will_read(&self) {
        self.inner.will_read();
    }
    fn ring_bytes(&self) -> usize {
        self.inner.ring_bytes()
    }
    fn set_ring_bytes(&self, bytes: usize) {
        self.inner.set_ring_bytes(bytes);
    }
    fn released(&self) -> usize {
        self.inner.released()
    }
    fn release(&self, upto: usize) -> io::Result<()> {
        self.inner.release(upto)
    }
    fn note_overflow(&self, end: usize) {
        self.inner.note_overflow(end);
    }
}

impl<S: Storage> Storage for RecordingStorage<S> {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<DirLock> {
        self.inner.lock_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        self.inner.list(dir)
    }
    fn create_allocated(&self, path: &Path, len: u64, io: IoPath) -> io::Result<()> {
        self.inner.create_allocated(path, len, io)
    }
    fn file_system(&self, dir: &Path) -> io::Result<FileSystem> {
        self.inner.file_system(dir)
    }
    fn not_regular(&self, path: &Path) -> io::Result<Option<&'static str>> {
        self.inner.not_regular(path)
    }
    fn set_mode(&self, path: &Path, mode: FileMode, dir: bool) -> io::Result<()> {
        self.inner.set_mode(path, mode, dir)
    }
    fn map(&self, path: &Path, access: Access) -> io::Result<Box<dyn Region>> {
        // Segments are renamed from `-pre` after mapping; record under the final name.
        let name = path.to_string_lossy().replace("-pre.log", ".log");
        Ok(Box::new(RecordingRegion {
            inner: self.inner.map(path, access)?,
            path: PathBuf::from(name),
            events: Arc::clone(&self.events),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)?;
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SyncEvent::Dir {
                dir: dir.to_path_buf(),
            });
        Ok(())
    }
    fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_file(path, bytes)
    }
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read_file(path)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_file(path)?;
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SyncEvent::File {
                path: path.to_path_buf(),
            });
        Ok(())
    }
}
