//! The mmap path: a segment file mapped `MAP_SHARED` for its whole length, stores into the
//! mapping, `msync(MS_SYNC)` (per platform, see `crate::storage`) to make a range durable.
//! Readers of either path map finished files read-only through here too.
//!
//! The mapping contract it relies on is written once, in [the `storage` module](super).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use memmap2::{MmapOptions, MmapRaw};

use super::{platform, Region};

#[derive(Debug)]
struct MmapRegion {
    map: MmapRaw,
    writable: bool,
    /// The mapped file: a read-only mapping's sync goes through it (`fdatasync` on Linux), and
    /// macOS's sync issues `F_FULLFSYNC` on it.
    file: File,
    // Declared last so it drops after the mapping and the descriptor: on Windows it carries out
    // a removal deferred until the file is no longer mapped.
    _mapped: platform::Mapped,
}

// SAFETY: `MmapRaw` maps the whole file once at a fixed address until dropped, so the pointer
// is valid for `len` bytes and never moves. The mapping contract in `crate::storage`'s docs (locked
// directory, no truncation while mapped) guarantees no other writer in this process.
unsafe impl Region for MmapRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        let end = offset.saturating_add(len).min(self.map.len());
        if offset >= end {
            return Ok(());
        }
        platform::sync_mapping(&self.map, &self.file, self.writable, offset, end - offset)
    }

    fn will_read(&self) {
        platform::will_read(&self.map);
    }

    fn prefault(&self) -> io::Result<()> {
        platform::prefault(&self.map)
    }
}

/// Maps the file at `path` for its whole length: writable for the mmap path's writer, else
/// read-only (a reader, or a finished segment of either path).
pub(crate) fn open(path: &Path, writable: bool) -> io::Result<Box<dyn Region>> {
    // A reader may find a file under another name on some platforms (`list`); a writer
    // holds the lock, which has put every file back under its own.
    let read_path;
    let path = if writable {
        path
    } else {
        read_path = platform::read_path(path);
        &read_path
    };
    let file = platform::open_no_wait(path, OpenOptions::new().read(true).write(writable))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let len = meta.len();
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty file"));
    }
    let map = if writable {
        MmapOptions::new().map_raw(&file)?
    } else {
        MmapOptions::new().map_raw_read_only(&file)?
    };
    Ok(Box::new(MmapRegion {
        map,
        writable,
        file,
        _mapped: platform::mapped(path),
    }))
}
