//! Making a segment: a new file ([`Segment::create`]), a recycled one ([`Segment::recycle`]),
//! the replacement a cut writes ([`Segment::prepare_cut`], [`Segment::prepare_empty`]), and the
//! prepared segment's own steps (enlarge, activate, install).

use super::*;

impl Segment {
    /// Creates segment `index` in `dir`, ready for records.
    ///
    /// Steps, in order: create `gs-vault-{ts}-{index}-pre.log`; allocate `capacity` bytes for
    /// real; map it and pre-fault every page writable; write the header; `msync` the header's
    /// page (with the file's size and allocation, which `fdatasync` semantics include);
    /// rename to the final name; `fsync` the directory.
    ///
    /// Crash semantics: a crash before the rename leaves a `-pre` file, which `open` deletes. A
    /// crash after the rename leaves either name with a durable header and no records (an
    /// unactivated segment), which recovery removes if it lies past the log's tail. The
    /// returned segment's name is durable.
    ///
    /// # Errors
    /// I/O errors (disk full included) name the file; on failure the file is removed, under
    /// its `-pre` or (if only the directory fsync failed) its final name.
    pub fn create(
        storage: &dyn Storage,
        dir: &Path,
        index: u64,
        capacity: u64,
        io: IoPath,
    ) -> Result<PreparedSegment> {
        Self::try_create_at(storage, dir, index, capacity, now_nanos(), false, io)
            .map_err(|(e, _)| e)
    }

    /// Prepares segment `index` under the name made of `created`; the error also tells whether
    /// the new file had been renamed to the final name (replacing any file there) before the
    /// failure.
    ///
    /// `replacing`: the final name is that of a spare of this index (an enlargement, or its
    /// retry) which later spares may follow. A failure after the rename (the directory fsync)
    /// then leaves the new file under that name, a valid unactivated segment a retry replaces
    /// under the same name: removing it would leave the index without a file once any later
    /// directory fsync made the removal durable, a gap before those spares that `open`
    /// refuses. A fresh index's file is removed instead (a retry names it at a later time).
    fn try_create_at(
        storage: &dyn Storage,
        dir: &Path,
        index: u64,
        capacity: u64,
        created: u64,
        replacing: bool,
        io: IoPath,
    ) -> std::result::Result<PreparedSegment, (Error, bool)> {
        let capacity = round_capacity(capacity);
        let pre = dir.join(segment_file_name(created, index, true));
        let fin = dir.join(segment_file_name(created, index, false));
        let salt = random_salt(&pre).map_err(|e| (e, false))?;
        let mut renamed = false;
        let mut made = || {
            storage
                .create_allocated(&pre, capacity, io)
                .map_err(|e| Error::io("allocate", &pre, e))?;
            let region = storage
                .map(&pre, Access::Fresh(io))
                .map_err(|e| Error::io("map", &pre, e))?;
            region
                .prefault()
                .map_err(|e| Error::io("pre-fault", &pre, e))?;
            let header = SegmentHeader {
                version: FORMAT_VERSION_ZEROED,
                index,
                salt,
                capacity,
                created_nanos: created,
            };
            write_bytes(&*region, 0, &header.encode());
            // Only the header's page: the rest is allocated and reads as zeros after a crash
            // already (fallocate's unwritten extents, or zeros the fallback wrote and synced).
            // Syncing it all would write every zero to the disk and clean the pages the
            // pre-fault just dirtied, so the appender would take a write fault per page.
            region
                .sync(0, PAGE as usize)
                .map_err(|e| Error::io("sync", &pre, e))?;
            storage
                .rename(&pre, &fin)
                .map_err(|e| Error::io("rename", &pre, e))?;
            renamed = true;
            storage
                .sync_dir(dir)
                .map_err(|e| Error::io("sync directory", dir, e))?;
            let limit = usize::try_from(capacity)
                .unwrap_or(usize::MAX)
                .min(region.len());
            Ok(Segment::from_parts(
                fin.clone(),
                header,
                region,
                limit,
                Some(io),
            ))
        };
        let made = made();
        match made {
            Ok(seg) => {
                seg.inner.synced.store(seg.inner.limit, Ordering::Release);
                Ok(PreparedSegment { seg })
            }
            Err(e) => {
                // Remove the file under whichever name it has: left under the final name (the
                // directory fsync failed), it would become a second file of this index when
                // the retry, at a later time, gets a name with a later timestamp. Unless it
                // replaced a spare's file (`replacing`): then it stays, see above.
                if !renamed {
                    let _ = storage.remove(&pre);
                } else if !replacing {
                    let _ = storage.remove(&fin);
                }
                Err((e, renamed))
            }
        }
    }

    /// Makes a file the log dropped into segment `index`, ready for records: the rotation
    /// worker's way to reuse a segment `truncate_front` gave up instead of allocating a new
    /// one. `from` is the dropped file, already renamed out of the log to a `-pre` name (and
    /// that rename made durable) by whoever dropped it; no one may map it any more.
    ///
    /// Steps, in order: map the file as it is (no allocation, and no zero-fill: past the new
    /// header its old frames stay as stale bytes); pre-fault it; write a version-2 header
    /// (this index, a new random salt, a new creation time) followed by zeros up to the end of
    /// the first page (the activation block and the first frame header, so the segment reads
    /// as unactivated and, once activated, as empty); sync that page; rename to the final name
    /// `gs-vault-{ts}-{index}.log`; `fsync` the directory.
    ///
    /// Crash semantics: before the rename the file keeps its `-pre` name, whatever its header
    /// holds (the old one, the new one or a torn mix), and `open` deletes it, as it deletes a
    /// half-prepared segment. After the rename the name holds a durable version-2 header with
    /// a zero activation block: an unactivated segment, removed by recovery if it lies past
    /// the log's tail. The stale frames never validate: every frame checksum binds the salt,
    /// and the salt is new.
    ///
    /// Cost: one page written and synced, one rename, one directory `fsync`; on the mmap path
    /// the pre-fault reads whatever of the file is not in the page cache.
    ///
    /// # Errors
    /// I/O errors name the file; a file whose length is not `capacity` is refused. On failure
    /// the file is removed, under whichever name it has.
    pub fn recycle(
        storage: &dyn Storage,
        dir: &Path,
        from: &Path,
        index: u64,
        capacity: u64,
        io: IoPath,
    ) -> Result<PreparedSegment> {
        let created = now_nanos();
        let fin = dir.join(segment_file_name(created, index, false));
        let mut renamed = false;
        let mut made = || -> Result<Segment> {
            let salt = random_salt(from)?;
            // The file holds stale bytes, not zeros, but nothing needs them: the direct path's
            // region starts as zeros without reading the file, and a mapping reads them in.
            let region = storage
                .map(from, Access::Fresh(io))
                .map_err(|e| Error::io("map", from, e))?;
            if region.len() as u64 != capacity || round_capacity(capacity) != capacity {
                return Err(Error::io(
                    "recycle",
                    from,
                    std::io::Error::other(format!(
                        "the file holds {} bytes, not the {capacity} of a segment",
                        region.len()
                    )),
                ));
            }
            region
                .prefault()
                .map_err(|e| Error::io("pre-fault", from, e))?;
            let header = SegmentHeader {
                version: FORMAT_VERSION,
                index,
                salt,
                capacity,
                created_nanos: created,
            };
            write_bytes(&*region, 0, &header.encode());
            fill_zero(&*region, HEADER_LEN, PAGE as usize - HEADER_LEN);
            region
                .sync(0, PAGE as usize)
                .map_err(|e| Error::io("sync", from, e))?;
            storage
                .rename(from, &fin)
                .map_err(|e| Error::io("rename", from, e))?;
            renamed = true;
            storage
                .sync_dir(dir)
                .map_err(|e| Error::io("sync directory", dir, e))?;
            let limit = usize::try_from(capacity)
                .unwrap_or(usize::MAX)
                .min(region.len());
            Ok(Segment::from_parts(
                fin.clone(),
                header,
                region,
                limit,
                Some(io),
            ))
        };
        match made() {
            Ok(seg) => {
                seg.inner.synced.store(seg.inner.limit, Ordering::Release);
                Ok(PreparedSegment { seg })
            }
            Err(e) => {
                let _ = storage.remove(if renamed { &fin } else { from });
                Err(e)
            }
        }
    }

    /// Prepares the replacement of this segment's file that keeps only its records before
    /// `lsn` (a `truncate_back` cut inside it): a new file with the same header (index,
    /// creation time hence name, salt, capacity), the activation block, and a byte copy of the
    /// frames before the cut, synced, under the `-pre` name. Nothing is renamed yet: call
    /// [`Replacement::install`] and then sync the directory (or [`Replacement::abandon`]).
    ///
    /// The salt is kept, so the copied frames and commit markers validate as they are (their
    /// CRCs bind salt and LSN, both unchanged); the new file never holds bytes of the old one
    /// past the cut, so reusing the salt cannot make a discarded frame validate.
    ///
    /// Cost: one file of this segment's capacity allocated and pre-faulted, and a copy and
    /// `msync` of the bytes before the cut (at most one segment).
    ///
    /// Crash semantics: until `install` renames it, a crash leaves a `-pre` file, which `open`
    /// deletes; this segment's file is untouched.
    ///
    /// # Errors
    /// `lsn` must lie in this segment's published records (`first_lsn..=published_next_lsn`);
    /// I/O errors (a full disk included) name the file, which is removed again.
    pub fn prepare_cut(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        lsn: u64,
        io: IoPath,
    ) -> Result<Replacement> {
        let first = self.first_lsn();
        let next = self.published_next_lsn();
        if first == 0 || lsn < first || lsn > next {
            return Err(Error::io(
                "cut",
                &self.inner.path,
                std::io::Error::other(format!(
                    "LSN {lsn} is not in this segment's records {first}..{next}"
                )),
            ));
        }
        let end = if lsn == next {
            self.published_end()
        } else {
            self.records_from(lsn)
                .next()
                .map_or(DATA_OFFSET, |r| r.offset() - FRAME_HEADER_LEN)
        };
        self.prepare_replacement(storage, dir, end, first, lsn, io)
    }

    /// Prepares the replacement of this segment's file by an empty one activated at
    /// `first_lsn` (the log emptied by `truncate_back` or `reset`): as
    /// [`Segment::prepare_cut`], without records.
    ///
    /// # Errors
    /// As [`Segment::prepare_cut`]; `first_lsn` must be a valid first LSN (1..2⁶³).
    pub fn prepare_empty(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        first_lsn: u64,
        io: IoPath,
    ) -> Result<Replacement> {
        if !(1..=crate::format::MAX_FIRST_LSN).contains(&first_lsn) {
            return Err(Error::io(
                "cut",
                &self.inner.path,
                std::io::Error::other(format!("{first_lsn} is not a valid first LSN")),
            ));
        }
        self.prepare_replacement(storage, dir, DATA_OFFSET, first_lsn, first_lsn, io)
    }

    fn prepare_replacement(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        end: usize,
        first_lsn: u64,
        next_lsn: u64,
        io: IoPath,
    ) -> Result<Replacement> {
        let header = self.inner.header;
        let pre = dir.join(segment_file_name(header.created_nanos, header.index, true));
        let fin = self.inner.path.clone();
        let made = || -> Result<Segment> {
            storage
                .create_allocated(&pre, header.capacity, io)
                .map_err(|e| Error::io("allocate", &pre, e))?;
            let region = storage
                .map(&pre, Access::Fresh(io))
                .map_err(|e| Error::io("map", &pre, e))?;
            region
                .prefault()
                .map_err(|e| Error::io("pre-fault", &pre, e))?;
            let limit = usize::try_from(header.capacity)
                .unwrap_or(usize::MAX)
                .min(region.len());
            if end > limit {
                return Err(Error::io(
                    "cut",
                    &pre,
                    std::io::Error::other("the new file is smaller than the frames to keep"),
                ));
            }
            write_bytes(&*region, 0, &header.encode());
            write_bytes(
                &*region,
                ACTIVATION_OFFSET,
                &encode_activation(first_lsn, header.salt),
            );
            // Published frames of the old file: immutable, and below what any appender writes.
            write_bytes(
                &*region,
                DATA_OFFSET,
                self.published_slice(DATA_OFFSET, end - DATA_OFFSET),
            );
            // Header, activation and kept frames in one msync; the rest of the file is
            // allocated zeros, as after `create`.
            region
                .sync(0, end.max(DATA_OFFSET))
                .map_err(|e| Error::io("sync", &pre, e))?;
            let seg = Segment::from_parts(fin.clone(), header, region, limit, Some(io));
            // The kept frames sit at the same offsets: their index entries carry over (a
            // replacement starting at another LSN keeps no frame, so there is nothing to take).
            if first_lsn == self.first_lsn() {
                seg.adopt_index(self, next_lsn);
            }
            seg.inner.witness.wrote(DATA_OFFSET, end - DATA_OFFSET);
            seg.inner.synced.store(end, Ordering::Release);
            Ok(seg)
        };
        match made() {
            Ok(seg) => Ok(Replacement {
                seg,
                pre,
                end,
                first_lsn,
                next_lsn,
            }),
            Err(e) => {
                let _ = storage.remove(&pre);
                Err(e)
            }
        }
    }
}

impl PreparedSegment {
    /// The segment index.
    #[must_use]
    pub fn index(&self) -> u64 {
        self.seg.index()
    }

    /// Usable bytes.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.seg.limit()
    }

    /// The prepared segment's handle.
    #[must_use]
    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    /// Replaces this (unused) segment with one of at least `capacity` bytes under the same
    /// name, for a record larger than a normal segment holds.
    ///
    /// Crash semantics: the larger file is prepared as `-pre` exactly like [`Segment::create`],
    /// then renamed over the old file and the directory synced: after a crash the name holds
    /// either the old or the new segment, both valid and unactivated.
    ///
    /// # Errors
    /// As [`Segment::create`], with this segment given back unchanged when the failure came
    /// before the rename (a full disk, typically): its file was not touched, so it can still
    /// serve a normal-size record without allocating anything. `None` when the rename had
    /// replaced its file (only the directory fsync failed): the new file stays under the name,
    /// so the index is never left without a file, and [`PreparedSegment::recreate`] replaces
    /// it.
    #[allow(clippy::result_large_err)] // the error path of a rare, already slow operation
    pub fn enlarge(
        self,
        storage: &dyn Storage,
        dir: &Path,
        capacity: u64,
    ) -> std::result::Result<Self, (Error, Option<Self>)> {
        let h = *self.seg.header();
        let io = self.seg.io_path().unwrap_or(IoPath::Mmap);
        match Segment::try_create_at(storage, dir, h.index, capacity, h.created_nanos, true, io) {
            Ok(bigger) => Ok(bigger),
            Err((e, false)) => Err((e, Some(self))),
            Err((e, true)) => Err((e, None)),
        }
    }

    /// Prepares segment `header.index` again, under the name of the file `header` describes
    /// (same index and creation time), replacing that file if it is still there. This is how
    /// the writer retries an [`PreparedSegment::enlarge`] that failed: the index was taken,
    /// and skipping it would leave an unactivated segment inside the log.
    ///
    /// Crash semantics: as [`PreparedSegment::enlarge`].
    ///
    /// # Errors
    /// As [`Segment::create`].
    pub fn recreate(
        storage: &dyn Storage,
        dir: &Path,
        header: &SegmentHeader,
        capacity: u64,
        io: IoPath,
    ) -> Result<Self> {
        Segment::try_create_at(
            storage,
            dir,
            header.index,
            capacity,
            header.created_nanos,
            true,
            io,
        )
        .map_err(|(e, _)| e)
    }

    /// Makes the segment the writer's tail, starting at `first_lsn`.
    ///
    /// Crash semantics: the activation block is a plain store into the mapping; it becomes
    /// durable with the segment's next sync, which always covers offset 0 of a newly activated
    /// segment. Until then, a crash leaves the segment unactivated and recovery treats it as
    /// past the tail.
    #[must_use]
    pub fn activate(self, first_lsn: u64) -> SegmentAppender {
        let inner = &*self.seg.inner;
        inner.appender_taken.store(true, Ordering::Release);
        write_bytes(
            &*inner.region,
            ACTIVATION_OFFSET,
            &encode_activation(first_lsn, inner.header.salt),
        );
        inner.synced.store(0, Ordering::Release);
        inner.first_lsn.store(first_lsn, Ordering::Release);
        inner.published_next_lsn.store(first_lsn, Ordering::Release);
        inner.published.store(DATA_OFFSET, Ordering::Release);
        SegmentAppender {
            bound: 0,
            base: inner.region.as_ptr(),
            offset: DATA_OFFSET,
            next_lsn: first_lsn,
            limit: inner.limit,
            first_lsn,
            version: inner.header.version,
            seg: self.seg,
        }
    }
}

impl Replacement {
    /// The LSN the first record appended to the replacement gets.
    #[must_use]
    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// Renames the replacement over the segment's file; returns its appender, continuing
    /// after the kept frames. The caller makes the rename durable with a directory `fsync`.
    ///
    /// Crash semantics: `rename` replaces the name atomically, so a crash leaves the old file
    /// or the new one under it (before the directory `fsync`, either; after it, the new one),
    /// both valid segments; a `-pre` file left over is deleted by `open`. The old file's
    /// mappings (other [`Segment`] handles) keep showing the old bytes.
    ///
    /// # Errors
    /// The rename's error; the `-pre` file is then removed and the old file stays in place.
    pub fn install(self, storage: &dyn Storage) -> Result<SegmentAppender> {
        let fin = self.seg.inner.path.clone();
        if let Err(e) = storage.rename(&self.pre, &fin) {
            let _ = storage.remove(&self.pre);
            return Err(Error::io("rename", &self.pre, e));
        }
        let inner = &*self.seg.inner;
        inner.appender_taken.store(true, Ordering::Release);
        inner.first_lsn.store(self.first_lsn, Ordering::Release);
        inner
            .published_next_lsn
            .store(self.next_lsn, Ordering::Release);
        inner.published.store(self.end, Ordering::Release);
        let appender = SegmentAppender {
            bound: 0,
            base: inner.region.as_ptr(),
            offset: self.end,
            next_lsn: self.next_lsn,
            limit: inner.limit,
            first_lsn: self.first_lsn,
            version: inner.header.version,
            seg: self.seg,
        };
        // The replacement was allocated as zeros: its terminator is there already.
        Ok(appender)
    }

    /// Removes the `-pre` file (the truncation was given up before it was installed).
    pub fn abandon(self, storage: &dyn Storage) {
        let pre = self.pre.clone();
        drop(self);
        let _ = storage.remove(&pre);
    }
}
