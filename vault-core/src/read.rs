//! Reading records back: an iterator across segments, and a read-only inspection of a
//! directory that changes nothing (what `vault cat`, `verify` and `info` use).

use std::path::{Path, PathBuf};

use vault_segment::{FsStorage, Record, Records, Segment};

use crate::error::{Error, Result};
use crate::recovery::{analyse, Analysis, TornTail};
use crate::wal::CutWatch;

/// Iterator over records in LSN order, across segments. It sees the records published when it
/// reaches each segment, and never a record still being written.
#[derive(Debug)]
pub struct Iter {
    segments: Vec<Segment>,
    pos: usize,
    current: Option<Records>,
    from: u64,
    /// Frame headers read by the segments finished so far.
    frames_read: u64,
    /// For an iterator over a live `Wal`: the cuts of the log's end since it was made.
    cuts: Option<CutWatch>,
}

impl Iter {
    pub(crate) fn new(segments: Vec<Segment>, from: u64) -> Self {
        // The last segment whose first LSN is at or before `from` holds it (if anything does).
        let pos = segments
            .partition_point(|s| s.first_lsn() <= from)
            .saturating_sub(1);
        Self {
            segments,
            pos,
            current: None,
            from,
            frames_read: 0,
            cuts: None,
        }
    }

    /// Makes the iterator stop before any record a later `truncate_back`/`reset` discarded,
    /// also in segment handles that `truncate_front` already dropped from the log (which the
    /// cut cannot mark). `watch` must be taken after `segments` was read from the log.
    pub(crate) fn watching(mut self, watch: CutWatch) -> Self {
        self.cuts = Some(watch);
        self
    }

    /// Frame headers read so far (records returned or skipped, commit markers): with the
    /// record index, finding the first record reads at most one index stride of them.
    #[must_use]
    pub fn frames_read(&self) -> u64 {
        self.frames_read + self.current.as_ref().map_or(0, Records::frames_read)
    }
}

impl Iterator for Iter {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(r) = self.current.as_mut().and_then(Iterator::next) {
                // Checked after the record's bytes were read: a cut noted by now is seen.
                if self.cuts.as_mut().is_some_and(|c| !c.allows(r.lsn())) {
                    self.segments.clear();
                    self.current = None;
                    return None;
                }
                return Some(r);
            }
            let seg = self.segments.get(self.pos)?;
            self.frames_read += self.current.as_ref().map_or(0, Records::frames_read);
            self.current = Some(seg.records_from(self.from));
            self.pos += 1;
        }
    }
}

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
