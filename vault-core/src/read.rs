//! A read-only inspection of a log directory that changes nothing (what `vault cat`, `verify`
//! and `info` use).

use std::path::{Path, PathBuf};

use vault_segment::FsStorage;

use crate::error::{Error, Result};
use crate::recovery::{analyse, Analysis, TornTail};
use crate::wal::Iter;

/// One segment as [`inspect`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentSummary {
    /// Segment index.
    pub index: u64,
    /// File path.
    pub path: PathBuf,
    /// First LSN (0 if the segment was never activated).
    pub first_lsn: u64,
    /// Number of valid records.
    pub records: u64,
    /// Bytes used by the header and valid frames.
    pub bytes_used: u64,
    /// The segment's capacity.
    pub capacity: u64,
}

impl SegmentSummary {
    /// LSN of the last record, if the segment holds any.
    #[must_use]
    pub fn last_lsn(&self) -> Option<u64> {
        (self.records > 0).then(|| self.first_lsn + self.records - 1)
    }
}

/// What a read-only look at a WAL directory found.
#[derive(Debug)]
pub enum Health<'a> {
    /// Every segment is whole.
    Clean,
    /// Whole up to a torn tail that recovery would cut.
    TornTail(&'a TornTail),
    /// Recovery would refuse to open the log; the records before the problem are readable.
    /// Usually [`Error::Corruption`]; a segment that could not be read at all (an I/O error, or
    /// a format version this build does not read) is reported here too, with its own variant.
    Corrupt(&'a Error),
}

/// A read-only view of a WAL directory: the same analysis `open` makes, without changing a byte
/// and without taking the lock.
#[derive(Debug)]
#[non_exhaustive]
pub struct Inspection {
    dir: PathBuf,
    a: Analysis,
}

/// Reads the WAL in `dir` without modifying it.
///
/// # Errors
/// [`Error::Io`] if the directory cannot be listed. Corruption is not an error here: it is
/// reported by [`Inspection::health`], with the records before it still readable.
pub fn inspect(dir: impl AsRef<Path>) -> Result<Inspection> {
    let dir = dir.as_ref();
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::io(
                "open WAL directory",
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "not a directory (give the directory that holds the segment files)",
                ),
            ))
        }
        Err(e) => return Err(Error::io("open WAL directory", dir, e)),
    }
    let a = analyse(&FsStorage, dir, vault_segment::Access::Read)?;
    Ok(Inspection {
        dir: dir.to_path_buf(),
        a,
    })
}

impl Inspection {
    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The readable segments, in order (up to where the log ends or corruption starts).
    #[must_use]
    pub fn segments(&self) -> Vec<SegmentSummary> {
        self.a
            .kept
            .iter()
            .map(|s| SegmentSummary {
                index: s.segment.index(),
                path: s.segment.path().to_path_buf(),
                first_lsn: s.segment.first_lsn(),
                records: s.scan.records,
                bytes_used: s.scan.end as u64,
                capacity: s.segment.header().capacity,
            })
            .collect()
    }

    /// Whether the log is whole, has a torn tail, or is corrupt.
    #[must_use]
    pub fn health(&self) -> Health<'_> {
        match (&self.a.problem, &self.a.torn) {
            (Some(e), _) => Health::Corrupt(e),
            (None, Some(t)) => Health::TornTail(t),
            (None, None) => Health::Clean,
        }
    }

    /// First LSN of the log.
    #[must_use]
    pub fn first_lsn(&self) -> u64 {
        self.a.first_lsn
    }

    /// The LSN after the last readable record.
    #[must_use]
    pub fn next_lsn(&self) -> u64 {
        self.a.next_lsn
    }

    /// `-pre` files recovery would delete.
    #[must_use]
    pub fn pre_files(&self) -> &[PathBuf] {
        &self.a.pre
    }

    /// Segments past the end of the log that recovery would remove.
    #[must_use]
    pub fn past_tail(&self) -> Vec<PathBuf> {
        self.a
            .past_tail
            .iter()
            .map(|s| s.path().to_path_buf())
            .collect()
    }

    /// Segment files not read because of corruption before them.
    #[must_use]
    pub fn unread_segments(&self) -> usize {
        self.a.unread
    }

    /// The readable records from `lsn` on.
    #[must_use]
    pub fn records_from(&self, lsn: u64) -> Iter {
        Iter::new(self.a.kept.iter().map(|s| s.segment.clone()).collect(), lsn)
    }
}
