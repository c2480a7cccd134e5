//! Reading a segment's published records back: [`Record`], the [`Records`] iterator and the
//! sparse per-segment index that finds a record's frame without scanning.

use super::*;

/// The sparse record index keeps one entry per `2^INDEX_MIN_SHIFT` records or more.
const INDEX_MIN_SHIFT: u32 = 5;
/// At most this many entries (8 bytes each: 512 KiB) per segment; larger segments use a
/// coarser stride instead of more memory.
const INDEX_MAX_ENTRIES: usize = 1 << 16;

/// The sparse per-segment record index (see [`Segment::records_from`]).
///
/// Entry `k` holds the byte offset of the frame of record `first_lsn + k·2^shift`, or 0 while
/// that record is not written. Its size is fixed when the segment is mapped (on the rotation
/// worker, or at open), from the most records the segment could hold (one 16-byte frame each):
/// `entries = max_records / 2^shift + 1`, with the smallest `shift ≥ 5` that keeps `entries ≤
/// 65 536`. The appender only stores into it (no allocation on the append path): a Relaxed
/// store before the frame's Release publish, so a reader that loaded the published end with
/// Acquire sees every entry of the records before that end.
pub(super) struct RecordIndex {
    shift: u32,
    entries: Box<[AtomicU64]>,
}

impl RecordIndex {
    pub(super) fn for_limit(limit: usize) -> Self {
        let max_records = limit.saturating_sub(DATA_OFFSET) / FRAME_HEADER_LEN + 1;
        let mut shift = INDEX_MIN_SHIFT;
        while (max_records >> shift) + 1 > INDEX_MAX_ENTRIES {
            shift += 1;
        }
        let n = (max_records >> shift) + 1;
        Self {
            shift,
            entries: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Notes that record `lsn` (of a segment starting at `first`) has its frame at `offset`.
    /// Called by the single writer (appender or recovery scan) before it publishes the frame.
    #[inline]
    pub(super) fn note(&self, first: u64, lsn: u64, offset: usize) {
        let rel = lsn.wrapping_sub(first);
        if rel & ((1 << self.shift) - 1) == 0 {
            if let Some(e) = usize::try_from(rel >> self.shift)
                .ok()
                .and_then(|k| self.entries.get(k))
            {
                e.store(offset as u64, Ordering::Relaxed);
            }
        }
    }
}

/// One record read from a segment. It keeps the segment mapped while it lives.
#[derive(Clone)]
pub struct Record {
    seg: Segment,
    lsn: u64,
    offset: usize,
    len: usize,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("lsn", &self.lsn)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Record {
    /// The record's LSN.
    #[must_use]
    pub fn lsn(&self) -> u64 {
        self.lsn
    }

    /// The record's bytes, straight from the mapping.
    #[must_use]
    pub fn data(&self) -> &[u8] {
        self.seg.published_slice(self.offset, self.len)
    }

    /// Byte offset of the record's payload in its segment file (its frame header is the 16
    /// bytes before).
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The segment the record lives in.
    #[must_use]
    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl std::ops::Deref for Record {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data()
    }
}

impl AsRef<[u8]> for Record {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl Segment {
    /// Records of this segment from `from_lsn` on, as published when the iterator was made.
    ///
    /// The start is found with the segment's sparse record index: the iterator begins at the
    /// indexed record at or before `from_lsn` and reads at most `2^shift − 1` frames (plus
    /// commit markers between them) before it reaches `from_lsn`; see
    /// [`Segment::index_stride`] and [`Records::frames_read`].
    #[must_use]
    pub fn records_from(&self, from_lsn: u64) -> Records {
        let end = self.published_end();
        let (offset, lsn) = self.index_start(from_lsn, end);
        Records {
            seg: self.clone(),
            offset,
            end,
            lsn,
            from_lsn,
            frames_read: 0,
        }
    }

    /// As [`Segment::records_from`], but without the index: reads every frame from the start
    /// of the segment. The reference the index is checked and benchmarked against.
    #[must_use]
    pub fn records_from_start(&self, from_lsn: u64) -> Records {
        let end = self.published_end();
        Records {
            seg: self.clone(),
            offset: DATA_OFFSET,
            end,
            lsn: self.first_lsn(),
            from_lsn,
            frames_read: 0,
        }
    }

    /// Records between two index entries: a lookup reads at most this many frames minus one
    /// (commit markers aside) after the indexed one.
    #[must_use]
    pub fn index_stride(&self) -> u64 {
        1 << self.inner.index.shift
    }

    /// Forgets the record index entries of records `lsn..` (see
    /// [`SegmentAppender::forget_index_from`]): lookups of those records then start from an
    /// earlier entry. Only the code that moves the segment's end back calls this.
    pub fn forget_index_from(&self, lsn: u64) {
        let index = &self.inner.index;
        let first = self.first_lsn();
        let rel = lsn.saturating_sub(first);
        let k = usize::try_from(rel.div_ceil(1 << index.shift)).unwrap_or(usize::MAX);
        for e in index.entries.iter().skip(k) {
            e.store(0, Ordering::Relaxed);
        }
    }

    /// Copies `from`'s record index entries of the records before `next_lsn` into this
    /// segment's index, for a segment whose frames before `next_lsn` are a byte copy of
    /// `from`'s at the same offsets, with the same first LSN and capacity (a file that replaces
    /// `from` with its records cut at `next_lsn`). Call it before the copy is published.
    /// Without it lookups stay correct (an unwritten entry makes them start earlier), only
    /// slower.
    #[allow(dead_code)] // for the replacement file of `truncate_back`
    pub(crate) fn adopt_index(&self, from: &Segment, next_lsn: u64) {
        let (to, src) = (&self.inner.index, &from.inner.index);
        let first = from.first_lsn();
        if to.shift != src.shift || first == 0 {
            return;
        }
        for (k, (t, f)) in to.entries.iter().zip(src.entries.iter()).enumerate() {
            if first + ((k as u64) << src.shift) >= next_lsn {
                break;
            }
            t.store(f.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Bytes the record index takes (fixed when the segment is mapped).
    #[must_use]
    pub fn index_bytes(&self) -> usize {
        self.inner.index.entries.len() * std::mem::size_of::<u64>()
    }

    /// The frame offset and LSN of the indexed record at or before `lsn` that lies below the
    /// published end `end`; the start of the segment if there is none.
    fn index_start(&self, lsn: u64, end: usize) -> (usize, u64) {
        let inner = &*self.inner;
        let first = self.first_lsn();
        let from_start = (DATA_OFFSET, first);
        if first == 0 || lsn <= first {
            return from_start;
        }
        let shift = inner.index.shift;
        let Ok(k) = usize::try_from((lsn - first) >> shift) else {
            return from_start;
        };
        // Past the last entry, or an entry not written below `end` yet (then `lsn` is not
        // published either): use the last entry that is, scanning further only in that case.
        let mut k = k.min(inner.index.entries.len() - 1);
        while k > 0 {
            // Relaxed: `end` was loaded with Acquire, which orders the stores of every entry
            // of a record before `end` (each made before the Release publish) before this.
            let off = inner.index.entries[k].load(Ordering::Relaxed);
            match usize::try_from(off) {
                Ok(off) if off >= DATA_OFFSET && off < end => {
                    return (off, first + ((k as u64) << shift))
                }
                _ => k -= 1,
            }
        }
        from_start
    }
}

/// Iterator over the published records of one segment.
#[derive(Debug)]
pub struct Records {
    seg: Segment,
    offset: usize,
    end: usize,
    lsn: u64,
    from_lsn: u64,
    frames_read: u64,
}

impl Records {
    /// Frame headers read so far (records and commit markers, skipped or returned): what the
    /// index bounds.
    #[must_use]
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// The LSN of the next record this iterator reads (whether or not it is published yet).
    #[must_use]
    pub fn next_lsn(&self) -> u64 {
        self.lsn.max(self.from_lsn)
    }

    /// The segment read.
    #[must_use]
    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    /// Extends the iterator to the segment's current published end, so that records published
    /// since it was made (or last extended) are read too. Returns whether it grew.
    pub fn extend_to_published(&mut self) -> bool {
        let end = self.seg.published_end();
        if end > self.end {
            self.end = end;
            true
        } else {
            false
        }
    }
}

impl Iterator for Records {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if self.lsn == 0 || self.offset + FRAME_HEADER_LEN > self.end {
                return None;
            }
            self.frames_read += 1;
            self.seg.inner.witness.read(self.offset, FRAME_HEADER_LEN);
            let h = read_bytes(&*self.seg.inner.region, self.offset, FRAME_HEADER_LEN);
            let len = read_u32(h, 0) as usize;
            let kind = h[4];
            let start = self.offset + FRAME_HEADER_LEN;
            if len > self.end - start {
                // Published frames were written or validated by us; this cannot happen unless
                // the file changed under the mapping contract. Stop rather than read past.
                return None;
            }
            self.offset = (self.offset + frame_len(len)).min(self.end);
            if kind == KIND_RECORD {
                let lsn = self.lsn;
                if lsn >= self.seg.discarded_from() {
                    // Truncated away after this iterator was made: the bytes are still mapped
                    // (the old file), but they are no longer the log's.
                    self.end = self.offset;
                    return None;
                }
                self.lsn += 1;
                if lsn >= self.from_lsn {
                    return Some(Record {
                        seg: self.seg.clone(),
                        lsn,
                        offset: start,
                        len,
                    });
                }
            }
        }
    }
}
