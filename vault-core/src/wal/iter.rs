//! [`Iter`]: records in LSN order across segments, from a live `Wal` or an inspection.

use vault_segment::{Record, Records, Segment};

use super::CutWatch;

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
