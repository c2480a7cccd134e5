//! The recovery scan: the chain of valid frames, what lies beyond it, and resuming an
//! appender at its end.

use super::*;

impl Segment {
    /// Reads the valid chain of frames and sets the readable end to where it stops.
    ///
    /// Only valid before an appender exists (at open); later calls return the published state.
    #[must_use]
    pub fn scan(&self) -> Scan {
        let inner = &*self.inner;
        let activation = decode_activation(
            read_bytes(&*inner.region, ACTIVATION_OFFSET, 12),
            inner.header.salt,
        );
        let Activation::Valid(first) = activation else {
            return Scan {
                activation,
                records: 0,
                end: DATA_OFFSET,
                next_lsn: 0,
                stop: Stop::End,
                attested: 0,
            };
        };
        let salt = inner.header.salt;
        let version = inner.header.version;
        let limit = inner.limit;
        let mut off = DATA_OFFSET;
        let mut lsn = first;
        let mut attested = 0;
        let stop = loop {
            if off + FRAME_HEADER_LEN > limit {
                break Stop::End;
            }
            let h = read_bytes(&*inner.region, off, FRAME_HEADER_LEN);
            if h.iter().all(|&b| b == 0) {
                break Stop::End;
            }
            let len = read_u32(h, 0) as usize;
            let kind = h[4];
            // A record's checksum uses its LSN, a marker's the next LSN: both `lsn` here.
            if h[5..8] != [0, 0, 0]
                || read_u32(h, 12) != lsn_tag(version, lsn)
                || (kind != KIND_RECORD && kind != KIND_MARKER)
            {
                break Stop::Invalid(CorruptionKind::BadFrameHeader);
            }
            if len > limit - off - FRAME_HEADER_LEN || len > MAX_PAYLOAD {
                break Stop::Invalid(CorruptionKind::LengthPastEnd { len: len as u64 });
            }
            let flen = frame_len(len).min(limit - off);
            let stored = read_u32(h, 8);
            let payload = read_bytes(&*inner.region, off + FRAME_HEADER_LEN, len);
            if kind == KIND_RECORD {
                let partial = crc32c::crc32c_append(crc32c::crc32c(&h[0..8]), payload);
                if seal_crc(partial, salt, lsn) != stored {
                    break Stop::Invalid(CorruptionKind::ChecksumMismatch);
                }
                if !inner.appender_taken.load(Ordering::Acquire) {
                    inner.index.note(first, lsn, off);
                }
                lsn += 1;
            } else {
                if len != MARKER_PAYLOAD_LEN {
                    break Stop::Invalid(CorruptionKind::BadMarker);
                }
                let mut p = [0u8; MARKER_PAYLOAD_LEN];
                p.copy_from_slice(payload);
                if marker_crc(&p, salt) != stored {
                    break Stop::Invalid(CorruptionKind::ChecksumMismatch);
                }
                let (att, next) = (read_u64(&p, 0), read_u64(&p, 8));
                if next != lsn || att >= lsn {
                    break Stop::Invalid(CorruptionKind::BadMarker);
                }
                attested = attested.max(att);
            }
            off += flen;
        };
        if !inner.appender_taken.load(Ordering::Acquire) {
            inner.witness.wrote(DATA_OFFSET, off - DATA_OFFSET);
            inner.first_lsn.store(first, Ordering::Release);
            inner.published_next_lsn.store(lsn, Ordering::Release);
            inner.published.store(off, Ordering::Release);
        }
        Scan {
            activation,
            records: lsn - first,
            end: off,
            next_lsn: lsn,
            stop,
            attested,
        }
    }

    /// Looks past the end of the valid chain (`from`): the highest LSN any valid commit marker
    /// there attests, and how far the bytes to drop reach. Used by recovery to tell a torn tail
    /// (nothing attested past it) from lost acknowledged records.
    ///
    /// In a segment allocated as zeros (version 1) every non-zero byte past the chain was
    /// written by its writer: `dirty_end` is the end of the last one. In a recycled segment
    /// (version 2) the bytes there may be stale, left by the file's earlier use; what counts
    /// is what this use wrote: `dirty_end` is the end of the last frame past `from` that
    /// validates under this segment's salt (found with the frames' LSN tags, see
    /// `docs/ARCHITECTURE.md` §4.7), or `from + 16` if the frame header at `from` is not zero
    /// (a torn frame), else `from`.
    ///
    /// Returns nothing useful once an appender exists (the bytes would be racing with it).
    #[must_use]
    pub fn scan_beyond(&self, from: usize) -> Beyond {
        let inner = &*self.inner;
        let limit = inner.limit;
        if inner.appender_taken.load(Ordering::Acquire) || from >= limit {
            return Beyond {
                attested: 0,
                dirty_end: from.min(limit),
            };
        }
        if self.is_recycled() {
            let mut beyond = Beyond {
                attested: 0,
                dirty_end: from,
            };
            if from + FRAME_HEADER_LEN <= limit
                && read_bytes(&*inner.region, from, FRAME_HEADER_LEN)
                    .iter()
                    .any(|&b| b != 0)
            {
                beyond.dirty_end = from + FRAME_HEADER_LEN;
            }
            self.stray_frames(from, |frame| {
                beyond.attested = beyond.attested.max(frame.attested);
                beyond.dirty_end = beyond.dirty_end.max(frame.end);
            });
            return beyond;
        }
        let bytes = read_bytes(&*inner.region, from, limit - from);
        let dirty_end = from + last_nonzero(bytes).map_or(0, |p| p + 1);
        let want = frame_prefix(MARKER_PAYLOAD_LEN as u32, KIND_MARKER);
        let mut attested = 0;
        let mut off = from.next_multiple_of(FRAME_ALIGN);
        // A marker's first byte (its length) is non-zero, so every marker starts before
        // `dirty_end`, though its last bytes may be zero and lie past it.
        while off < dirty_end && off + MARKER_FRAME_LEN <= limit {
            let h = read_bytes(&*inner.region, off, MARKER_FRAME_LEN);
            if h[0..8] == want && h[12..16] == [0; 4] {
                let mut p = [0u8; MARKER_PAYLOAD_LEN];
                p.copy_from_slice(&h[FRAME_HEADER_LEN..]);
                if marker_crc(&p, inner.header.salt) == read_u32(h, 8) {
                    attested = attested.max(read_u64(&p, 0));
                }
            }
            off += FRAME_ALIGN;
        }
        Beyond {
            attested,
            dirty_end,
        }
    }

    /// Calls `found` for every frame at or past `from` (8-byte aligned offsets) that
    /// validates under this segment's salt, in a recycled (version-2) segment: the frames this
    /// use of the file wrote past the end of its valid chain, found without the chain. A frame
    /// of version 2 carries the low 32 bits of the LSN its checksum uses, so a record
    /// validates against the LSNs at or after the segment's first LSN that end in those bits
    /// (a marker states its LSN in its payload). Bytes of the file's earlier use carry another
    /// salt and never validate. A record cannot be checked in a segment that was never
    /// activated (no first LSN): there only markers are found.
    ///
    /// Reads every byte from `from` to the end of the segment; a frame that validates is
    /// skipped whole, anything else one alignment step at a time. Only meaningful before an
    /// appender exists.
    fn stray_frames(&self, from: usize, mut found: impl FnMut(Stray)) {
        let inner = &*self.inner;
        let limit = inner.limit;
        let salt = inner.header.salt;
        let version = inner.header.version;
        let first = match decode_activation(read_bytes(&*inner.region, ACTIVATION_OFFSET, 12), salt)
        {
            Activation::Valid(first) => first,
            _ => 0,
        };
        // Records that fit in the space after the first frame: the largest LSN to try.
        let most = (limit.saturating_sub(DATA_OFFSET) / FRAME_HEADER_LEN) as u64;
        let mut off = from.max(DATA_OFFSET).next_multiple_of(FRAME_ALIGN);
        while off + FRAME_HEADER_LEN <= limit {
            let h = read_bytes(&*inner.region, off, FRAME_HEADER_LEN);
            let len = read_u32(h, 0) as usize;
            let kind = h[4];
            let plausible = h[5..8] == [0, 0, 0]
                && (kind == KIND_RECORD || kind == KIND_MARKER)
                && len <= limit - off - FRAME_HEADER_LEN
                && len <= MAX_PAYLOAD;
            if !plausible {
                off += FRAME_ALIGN;
                continue;
            }
            let tag = read_u32(h, 12);
            let stored = read_u32(h, 8);
            let payload = read_bytes(&*inner.region, off + FRAME_HEADER_LEN, len);
            let mut valid = None;
            if kind == KIND_MARKER && len == MARKER_PAYLOAD_LEN {
                let mut p = [0u8; MARKER_PAYLOAD_LEN];
                p.copy_from_slice(payload);
                if marker_crc(&p, salt) == stored && lsn_tag(version, read_u64(&p, 8)) == tag {
                    valid = Some(read_u64(&p, 0));
                }
            } else if kind == KIND_RECORD && first != 0 {
                let partial = crc32c::crc32c_append(crc32c::crc32c(&h[0..8]), payload);
                // The LSNs at or after `first` whose low 32 bits are the tag.
                let mut lsn = first + u64::from(tag.wrapping_sub(lsn_tag(version, first)));
                while lsn - first <= most {
                    if seal_crc(partial, salt, lsn) == stored {
                        valid = Some(0);
                        break;
                    }
                    lsn += 1 << 32;
                }
            }
            match valid {
                Some(attested) => {
                    let end = (off + frame_len(len)).min(limit);
                    found(Stray {
                        offset: off,
                        end,
                        attested,
                    });
                    off = end;
                }
                None => off += FRAME_ALIGN,
            }
        }
    }

    /// Takes the segment's single appender after recovery, continuing at `end` with `next_lsn`.
    /// Writes the activation block if `first_lsn` is not already there, and clears what lies
    /// past `end` up to `zero_to` (the [`Beyond::dirty_end`] of the scan) so that later appends
    /// never sit before bytes this use of the file wrote: in a segment allocated as zeros
    /// (version 1) by zeroing all of `[end, zero_to)`; in a recycled one (version 2) by zeroing
    /// only the frame header at `end` (the terminator) and the header of every frame past it
    /// that validates under the salt (the rest is stale, and cannot validate). No write is
    /// synced here: the caller syncs ([`Segment::sync_all`] covers them; recovery syncs every
    /// segment before it returns).
    ///
    /// # Errors
    /// Fails if the segment is read-only or already has an appender.
    pub fn resume(
        &self,
        first_lsn: u64,
        end: usize,
        next_lsn: u64,
        zero_to: usize,
    ) -> Result<SegmentAppender> {
        let inner = &*self.inner;
        if !inner.region.writable() || inner.appender_taken.swap(true, Ordering::AcqRel) {
            return Err(Error::io(
                "append to",
                &inner.path,
                std::io::Error::other("segment is read-only or already has a writer"),
            ));
        }
        let end = end.clamp(DATA_OFFSET, inner.limit);
        let zero_to = zero_to.min(inner.limit);
        if self.is_recycled() {
            // The headers are found before any is zeroed, so the search sees what the scan saw.
            let mut headers = Vec::new();
            self.stray_frames(end, |frame| headers.push(frame.offset));
            if end + FRAME_HEADER_LEN <= inner.limit {
                headers.push(end);
            }
            let mut zeroed = end;
            for at in headers {
                fill_zero(&*inner.region, at, FRAME_HEADER_LEN);
                zeroed = zeroed.max(at + FRAME_HEADER_LEN);
            }
            inner
                .zeroed_end
                .store(zeroed.max(zero_to).min(inner.limit), Ordering::Release);
            inner.synced.fetch_min(end, Ordering::AcqRel);
        } else if zero_to > end {
            fill_zero(&*inner.region, end, zero_to - end);
            inner.zeroed_end.store(zero_to, Ordering::Release);
            inner.synced.fetch_min(end, Ordering::AcqRel);
        }
        let current = decode_activation(
            read_bytes(&*inner.region, ACTIVATION_OFFSET, 12),
            inner.header.salt,
        );
        if current != Activation::Valid(first_lsn) {
            write_bytes(
                &*inner.region,
                ACTIVATION_OFFSET,
                &encode_activation(first_lsn, inner.header.salt),
            );
            inner.synced.store(0, Ordering::Release);
        }
        inner.first_lsn.store(first_lsn, Ordering::Release);
        inner.published_next_lsn.store(next_lsn, Ordering::Release);
        inner.published.store(end, Ordering::Release);
        Ok(SegmentAppender {
            bound: 0,
            seg: self.clone(),
            base: inner.region.as_ptr(),
            offset: end,
            next_lsn,
            limit: inner.limit,
            first_lsn,
            version: inner.header.version,
        })
    }
}
