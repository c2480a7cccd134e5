//! The segment's single appender: frames copied into the region and published to readers.

use super::*;

/// [`SegmentAppender::append_and_checksum`] copies and checksums a longer payload in chunks of
/// this many bytes, so that the checksum reads each chunk while it is still in the cache
/// (measured against copying the whole payload first, and against other chunk sizes, in
/// `docs/PERFORMANCE.md`, "Copy and checksum under the append lock").
const INTERLEAVE_CHUNK: usize = 512;

impl SegmentAppender {
    /// The segment written to.
    #[must_use]
    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    /// The LSN the next record gets.
    #[must_use]
    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// The offset the next frame goes to.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes left for frames.
    #[must_use]
    pub fn room(&self) -> usize {
        self.limit - self.offset
    }

    /// Appends one record frame (unpublished until [`SegmentAppender::publish`]). `partial` is
    /// [`crate::partial_crc`] of `payload`.
    ///
    /// # Errors
    /// [`NoRoom`] if the frame does not fit; nothing is written then.
    pub fn append(&mut self, payload: &[u8], partial: u32) -> Result<u64, NoRoom> {
        let flen = frame_len(payload.len());
        if payload.len() > MAX_PAYLOAD || flen > self.room() {
            return Err(NoRoom);
        }
        self.write(self.offset + FRAME_HEADER_LEN, payload);
        Ok(self.finish_frame(payload.len(), partial, flen))
    }

    /// As [`SegmentAppender::append`], computing [`crate::partial_crc`] itself after it started
    /// copying the payload: the copy does not depend on the checksum, so the CPU overlaps the
    /// two (for a 256 B record the checksum's chain of `crc32` instructions is longer than the
    /// copy). A payload longer than 512 bytes is copied and checksummed 512 bytes at a time, so
    /// that each chunk's checksum runs while the stores of its copy drain to memory (whole, the
    /// copy of a 64 KiB payload fills the store buffer and then waits on memory, and the
    /// checksum after it overlaps little). For a caller that holds up no one by checksumming
    /// here (an uncontended append lock); concurrent appenders should checksum before they take
    /// the lock.
    ///
    /// # Errors
    /// [`NoRoom`] if the frame does not fit; nothing is written then.
    pub fn append_and_checksum(&mut self, payload: &[u8]) -> Result<u64, NoRoom> {
        let flen = frame_len(payload.len());
        if payload.len() > MAX_PAYLOAD || flen > self.room() {
            return Err(NoRoom);
        }
        let at = self.offset + FRAME_HEADER_LEN;
        let partial = if payload.len() <= INTERLEAVE_CHUNK {
            self.write(at, payload);
            crate::partial_crc(payload)
        } else {
            // Chunk by chunk: each chunk's checksum runs while the stores of its copy drain to
            // memory, and reads the source while it is still in L1. The first chunk is one word
            // short, so that with the prefix word it is 64 words like the others: each chunk is
            // one block of the CRC lanes, with no odd bytes to finish.
            let prefix = u64::from_le_bytes(frame_prefix(payload.len() as u32, KIND_RECORD));
            let (first, mut rest) = payload.split_at(INTERLEAVE_CHUNK - 8);
            self.write(at, first);
            let mut crc = crate::crc::crc32c_prefixed(prefix, first);
            let mut off = at + first.len();
            while !rest.is_empty() {
                let (chunk, after) = rest.split_at(rest.len().min(INTERLEAVE_CHUNK));
                self.write(off, chunk);
                crc = crate::crc::crc32c_append(crc, chunk);
                off += chunk.len();
                rest = after;
            }
            crc
        };
        Ok(self.finish_frame(payload.len(), partial, flen))
    }

    /// Writes the header of the frame whose payload is already at `offset + FRAME_HEADER_LEN`
    /// and moves past it.
    fn finish_frame(&mut self, payload_len: usize, partial: u32, flen: usize) -> u64 {
        let lsn = self.next_lsn;
        let crc = seal_crc(partial, self.seg.inner.header.salt, lsn);
        let mut h = [0u8; FRAME_HEADER_LEN];
        h[0..8].copy_from_slice(&frame_prefix(payload_len as u32, KIND_RECORD));
        h[8..12].copy_from_slice(&crc.to_le_bytes());
        h[12..16].copy_from_slice(&lsn_tag(self.version, lsn).to_le_bytes());
        self.write(self.offset, &h);
        self.seg.inner.index.note(self.first_lsn, lsn, self.offset);
        self.offset += flen;
        self.next_lsn += 1;
        lsn
    }

    /// Appends a commit marker attesting that every record up to `attested` was durable before
    /// this marker was written (unpublished until [`SegmentAppender::publish`]).
    ///
    /// # Errors
    /// [`NoRoom`] if the marker does not fit.
    pub fn append_marker(&mut self, attested: u64) -> Result<(), NoRoom> {
        if MARKER_FRAME_LEN > self.room() {
            return Err(NoRoom);
        }
        debug_assert!(attested < self.next_lsn);
        let p = marker_payload(attested, self.next_lsn);
        let mut f = [0u8; MARKER_FRAME_LEN];
        f[0..8].copy_from_slice(&frame_prefix(MARKER_PAYLOAD_LEN as u32, KIND_MARKER));
        f[8..12].copy_from_slice(&marker_crc(&p, self.seg.inner.header.salt).to_le_bytes());
        f[12..16].copy_from_slice(&lsn_tag(self.version, self.next_lsn).to_le_bytes());
        f[FRAME_HEADER_LEN..].copy_from_slice(&p);
        self.write(self.offset, &f);
        self.offset += MARKER_FRAME_LEN;
        Ok(())
    }

    /// Forgets the record index entries of records `lsn..` (0 = not written). Whoever moves
    /// this appender back over published records (a truncation of the log's end) must call it
    /// before lowering the published end, so that no reader follows an entry to an offset the
    /// records rewritten after the cut no longer start at.
    pub fn forget_index_from(&mut self, lsn: u64) {
        self.seg.forget_index_from(lsn);
    }

    /// Makes every frame appended so far visible to readers and to sync.
    ///
    /// In a recycled segment (version 2) it first writes the terminator, a zero frame header
    /// right after the last frame (if 16 bytes are left): the bytes there may be stale, and a
    /// sync covers the terminator with the frames (see [`Segment::sync_to`]), so a synced
    /// chain always ends at a zero header.
    pub fn publish(&self) {
        let inner = &*self.seg.inner;
        if self.version >= FORMAT_VERSION && self.offset + FRAME_HEADER_LEN <= self.limit {
            // SAFETY: `[offset, offset + 16)` lies inside the mapping (checked against `limit`,
            // which is at most the region's length) and at or past the published end, which
            // moves to `offset` only below: no reader forms a slice over these bytes. The
            // appender is the segment's only writer, and `&self` here excludes the `&mut self`
            // of every other write.
            unsafe {
                std::ptr::write_bytes(self.base.add(self.offset), 0, FRAME_HEADER_LEN);
            }
            inner.witness.wrote(self.offset, FRAME_HEADER_LEN);
        }
        inner
            .published_next_lsn
            .store(self.next_lsn, Ordering::Release);
        inner.published.store(self.offset, Ordering::Release);
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        assert!(at >= self.seg.published_end() && at + bytes.len() <= self.limit);
        if at + bytes.len() > self.bound {
            self.make_room(at + bytes.len());
        }
        debug_assert!(at >= self.seg.inner.region.released());
        // SAFETY: the range is inside the mapping (`limit` ≤ region length, checked above) and
        // at or past the published end, so no reader forms a slice over it; this appender is
        // the segment's only writer and `&mut self` serialises its writes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(at), bytes.len());
        }
        self.seg.inner.witness.wrote(at, bytes.len());
    }

    /// The store up to `need` goes past the memory the direct path's ring gave it. Looks
    /// again (syncs and write-outs move the ring on); if the ring is still full, writes the
    /// published whole blocks out and gives their memory back itself, counted in
    /// [`Segment::ring_waits`]. Bytes not yet published cannot be given back: a batch larger
    /// than the ring goes past it, and its memory comes back once it is published and written.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, need: usize) {
        let seg = &self.seg;
        let region = &*seg.inner.region;
        let bound = |r: &dyn Region| match r.ring_bytes() {
            0 => usize::MAX,
            ring => r.released().saturating_add(ring),
        };
        self.bound = bound(region);
        if need <= self.bound {
            return;
        }
        seg.inner.ring_waits.fetch_add(1, Ordering::Relaxed);
        let _serial = seg
            .inner
            .sync_lock
            .lock()
            .unwrap_or_else(crate::sync::PoisonError::into_inner);
        // A failed write-out keeps the memory; the store below goes past the ring then,
        // and the next sync reports the failure if it persists.
        let _ = seg.write_out_locked(seg.published_end(), true);
        self.bound = bound(region);
        if need > self.bound {
            // Unpublished bytes past the ring: before any store there, so that no release
            // maps ring memory over them.
            region.note_overflow(need);
            self.bound = need;
        }
    }
}
