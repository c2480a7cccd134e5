//! Opening a log: the directory lock, recovery, and the threads a `Wal` starts.

use std::path::Path;

use vault_segment::{Access, FileMode, IoPath, Segment};

use crate::error::{Error, Result};
use crate::options::{Options, SyncPolicy};
use crate::recovery::{analyse, RecoveryReport};
use crate::sync::{
    Arc, AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, RotateConfig, Rotator, RwLock, StdArc,
};

use super::{
    budget, commit, follow, set_segment_mode, write_behind, Counters, Shared, SyncState, Wal,
    Writer,
};

impl Wal {
    /// Opens (creating if missing) the WAL in `dir` and recovers it.
    ///
    /// Takes an exclusive lock on the directory, removes half-made `-pre` segments, reads every
    /// segment (see the recovery rule in the crate docs), cuts a torn tail by zeroing it,
    /// removes segments past the tail, syncs everything it keeps, and starts the rotation
    /// worker. The returned WAL appends after the last valid record; what recovery found and
    /// did is in [`Wal::recovery`].
    ///
    /// Crash semantics: recovery only zeroes bytes past the last valid record and removes
    /// files past it, then syncs the data and the directory before returning; a crash during
    /// `open` leaves a directory that the next `open` recovers the same way.
    ///
    /// # Errors
    /// [`Error::Locked`] if another `Wal` holds the directory; [`Error::Corruption`] naming file
    /// and offset if bytes before the tail are damaged (nothing is modified then);
    /// [`Error::Io`] for I/O failures; [`Error::InvalidOptions`].
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!("vault_open", dir = %dir.display()).entered();
        let storage = StdArc::clone(&options.storage);
        let existed = storage.list(&dir).is_ok();
        storage
            .create_dir_all(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
        if !existed && options.file_mode != FileMode::Private {
            storage
                .set_mode(&dir, options.file_mode, true)
                .map_err(|e| Error::io("set the mode of", &dir, e))?;
        }
        let dir_lock = storage.lock_dir(&dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked { dir: dir.clone() }
            } else {
                Error::io("lock", &dir, e)
            }
        })?;
        let fs = storage
            .file_system(&dir)
            .map_err(|e| Error::io("inspect the file system of", &dir, e))?;
        let io = options.io.resolve(&fs, &dir)?;
        #[cfg(feature = "tracing")]
        tracing::info!(
            requested = ?options.io,
            file_system = %fs.name,
            o_direct = fs.direct_io,
            io = %io,
            "I/O path chosen"
        );
        // The direct path reads the log through read-only mappings and makes only the tail
        // writable (below), so that the segments it never writes take no process memory.
        let access = match io {
            IoPath::Mmap => Access::Write(IoPath::Mmap),
            IoPath::Direct => Access::Read,
        };
        let mut a = analyse(&*storage, &dir, access)?;
        if let Some(problem) = a.problem {
            #[cfg(feature = "tracing")]
            tracing::error!(error = %problem, "recovery found damaged durable records; not opening");
            return Err(problem);
        }
        let mut report = RecoveryReport {
            torn_tail: a.torn.clone(),
            io_path: io,
            file_system: fs.name.clone(),
            ..RecoveryReport::default()
        };
        let mut dir_changed = false;
        for p in &a.pre {
            storage.remove(p).map_err(|e| Error::io("remove", p, e))?;
            report.removed_pre.push(p.clone());
            dir_changed = true;
        }
        // Newest first: the removals become durable in order (all at the directory fsync
        // below, or any prefix of them if power fails before it), and removing from the end
        // keeps every prefix a contiguous run of segments. Oldest first, a crash could leave
        // segment n and n + 2 without n + 1, which the next open refuses as a gap.
        for s in a.past_tail.into_iter().rev() {
            let p = s.path().to_path_buf();
            drop(s);
            storage.remove(&p).map_err(|e| Error::io("remove", &p, e))?;
            report.removed_segments.push(p);
            dir_changed = true;
        }
        if dir_changed {
            storage
                .sync_dir(&dir)
                .map_err(|e| Error::io("sync directory", &dir, e))?;
        }
        let next_index = a.kept.last().map_or(1, |s| s.segment.index() + 1);
        let rotator = Rotator::start_with_spares(
            RotateConfig {
                dir: dir.clone(),
                segment_size: options.segment_size,
                first_index: next_index,
                storage: StdArc::clone(&storage),
                io,
                ring_bytes: options.direct_ring_bytes,
            },
            options.spares(),
        )?
        .with_recycling(options.recycled_segments());
        if io == IoPath::Direct {
            if let Some(tail) = a.kept.last_mut() {
                tail.segment = tail.segment.reopen(&*storage, Access::Write(io))?;
            }
        }
        let mut segments: Vec<Segment> = a.kept.iter().map(|s| s.segment.clone()).collect();
        for s in &segments {
            set_segment_mode(&*storage, s, options.file_mode);
        }
        let appender = if let Some(tail) = a.kept.last() {
            let first = match tail.segment.first_lsn() {
                0 => a.next_lsn,
                f => f,
            };
            tail.segment
                .resume(first, a.tail_end, a.next_lsn, a.tail_dirty_end)?
        } else {
            let app = rotator.next_segment()?.activate(1);
            set_segment_mode(&*storage, app.segment(), options.file_mode);
            segments.push(app.segment().clone());
            app
        };
        appender.segment().set_ring_bytes(options.direct_ring_bytes);
        // Records read back may sit in pages a killed process dirtied: make them durable
        // before calling them so.
        for s in &segments {
            s.sync_all()?;
        }
        report.segments = segments.len();
        report.first_lsn = a.first_lsn;
        report.next_lsn = a.next_lsn;
        report.records = a.next_lsn - a.first_lsn;
        #[cfg(feature = "tracing")]
        trace_recovery(&report);
        let durable = a.next_lsn - 1;
        let log_bytes = segments.iter().map(|s| s.limit() as u64).sum();
        let budget = budget::Budget::new(&options, log_bytes);
        let shared = Arc::new(Shared {
            dir,
            io,
            writer: Mutex::new(Writer {
                appender,
                rotator: Some(rotator),
                sealed: Vec::with_capacity(8),
                attested: a.attested,
                appends: 0,
                written_mark: 0,
                room_waiters: 0,
                #[cfg(feature = "metrics")]
                bytes: 0,
                #[cfg(feature = "metrics")]
                published: (0, 0),
            }),
            segments: RwLock::new(segments),
            sync_state: Mutex::new(SyncState {
                scratch: Vec::with_capacity(8),
                ..SyncState::default()
            }),
            sync_done: Condvar::new(),
            sync_waiters: AtomicUsize::new(0),
            durable: AtomicU64::new(durable),
            last_lsn: AtomicU64::new(durable),
            poisoned: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            truncation: Mutex::new(()),
            stop_flusher: Mutex::new(false),
            stop_flusher_cv: Condvar::new(),
            counters: Counters::default(),
            tail: follow::Tail::new(),
            commit: commit::Committer::new(),
            write_behind: (io == IoPath::Direct).then(|| {
                Arc::new(if options.write_behind {
                    write_behind::WriteBehind::every_chunk()
                } else {
                    write_behind::WriteBehind::ring(options.direct_ring_bytes)
                })
            }),
            options,
            dir_lock: Mutex::new(Some(dir_lock)),
            budget,
            room_cv: Condvar::new(),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::WalMetrics::register(io),
        });
        #[cfg(feature = "metrics")]
        {
            let w = crate::sync::lock(&shared.writer);
            if let Some(r) = &w.rotator {
                // The first segment of a brand-new log.
                shared.metrics.segment_waited(r.stats().waits);
            }
            shared.publish_state(&w);
        }
        let flusher = match shared.options.sync {
            SyncPolicy::Interval(every) => Some(super::group_commit::start_flusher(
                Arc::clone(&shared),
                every,
            )?),
            _ => None,
        };
        let write_behind = match &shared.write_behind {
            Some(wb) => Some(write_behind::start(Arc::clone(wb))?),
            None => None,
        };
        Ok(Self {
            shared,
            flusher,
            write_behind,
            recovery: report,
            closed: false,
        })
    }

    /// What `open` found and did: the records and segments recovered, a torn tail it cut,
    /// files it removed, the I/O path it chose.
    #[must_use]
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }
}

/// The `tracing` events of a recovery: what `open` found and cut, and where.
#[cfg(feature = "tracing")]
fn trace_recovery(report: &RecoveryReport) {
    for p in &report.removed_pre {
        tracing::info!(file = %p.display(), "removed a half-made segment");
    }
    for p in &report.removed_segments {
        tracing::info!(file = %p.display(), "removed a segment past the tail");
    }
    if let Some(t) = &report.torn_tail {
        tracing::warn!(
            file = %t.file.display(),
            offset = t.offset,
            bytes_dropped = t.bytes_dropped,
            reason = %t.reason,
            "recovery cut a torn tail"
        );
    }
    tracing::info!(
        segments = report.segments,
        records = report.records,
        first_lsn = report.first_lsn,
        next_lsn = report.next_lsn,
        removed_pre = report.removed_pre.len(),
        removed_segments = report.removed_segments.len(),
        torn_tail = report.torn_tail.is_some(),
        bytes_dropped = report.torn_tail.as_ref().map_or(0, |t| t.bytes_dropped),
        io_path = %report.io_path,
        file_system = %report.file_system,
        "recovered"
    );
}
