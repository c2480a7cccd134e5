//! Recovery: read every segment, find where the log really ends, and tell a torn tail (cut it)
//! from corruption (refuse).
//!
//! # The rule
//!
//! Segments are read in index order; each frame's CRC32C binds its bytes to the segment's salt
//! and its LSN. The log is the chain of valid records from the first segment on. The chain
//! *breaks* at the first invalid frame, at a segment whose first LSN does not follow, or at a
//! segment whose activation block is missing (all zero, or torn with no frame after it).
//! Everything from the break on is the **tail candidate**. An activation block that is neither
//! zero nor valid with frames after it is corruption: the block is written before any frame.
//!
//! Unsynced stores reach the disk in any order, so a break alone does not tell a torn tail from
//! damage. Commit markers do: after a sync makes records up to LSN *d* durable, the next append
//! writes a marker attesting *d* (and `close` writes one for everything). A marker on disk
//! therefore proves that records up to *d* were durable before it was written. Recovery looks
//! for valid markers everywhere past the break (an aligned scan: a marker carries its own
//! checksum, salt-bound). If any attests an LSN at or beyond the break, an acknowledged record
//! is damaged: [`Error::Corruption`] naming the file and offset, and nothing is modified.
//! Otherwise every byte past the break was written after the last completed sync that anything
//! on disk attests, no acknowledged record can be there (a sync covers all bytes before it), and
//! the tail is cut: zeroed in the last kept segment, later segments removed.
//!
//! A recycled segment (format version 2) may hold stale bytes of its file's earlier use past
//! its chain: there "past the chain" means the frames past it that validate under the
//! segment's salt (stale ones never do), and the writer's zero terminator after its last frame
//! marks a clean end (see `Segment::scan_beyond` and `docs/ARCHITECTURE.md` §4.7).
//!
//! Under power loss alone (synced bytes stay intact) this never cuts a record whose sync
//! returned. Damage to the records of the very last completed sync, with nothing written after
//! it, cannot be told from a torn write by any on-disk evidence (Alagappan et al., FAST'18); it
//! is cut and reported in the [`RecoveryReport`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use vault_segment::{
    parse_segment_name, Access, Activation, CorruptionKind, IoPath, Scan, Segment, Stop, Storage,
    DATA_OFFSET,
};

use crate::error::{Error, Result};

/// What `open` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segments that make up the recovered log.
    pub segments: usize,
    /// Records in the recovered log.
    pub records: u64,
    /// First LSN of the log (the next LSN when empty).
    pub first_lsn: u64,
    /// The LSN the next append gets.
    pub next_lsn: u64,
    /// Half-made `-pre` segments found and removed.
    pub removed_pre: Vec<PathBuf>,
    /// Segments past the tail that were removed (unused spares, or unsynced records).
    pub removed_segments: Vec<PathBuf>,
    /// The torn tail that was cut, if any.
    pub torn_tail: Option<TornTail>,
    /// The I/O path the WAL writes through (what [`crate::IoMode`] chose).
    pub io_path: IoPath,
    /// The file system the directory is on, as `statfs` names it.
    pub file_system: String,
}

/// A torn tail: bytes past the last whole record, written after the last completed sync.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTail {
    /// The segment where the log now ends.
    pub file: PathBuf,
    /// Offset in that file where the cut was made.
    pub offset: u64,
    /// Bytes dropped: from the cut to the last non-zero byte of that segment, plus the same
    /// span (from the first frame) in each removed segment.
    pub bytes_dropped: u64,
    /// Why the chain stopped there.
    pub reason: String,
}

/// One segment's part of the analysis.
#[derive(Debug, Clone)]
pub(crate) struct Scanned {
    pub(crate) segment: Segment,
    pub(crate) scan: Scan,
}

/// The outcome of reading a directory, before anything is changed.
#[derive(Debug)]
pub(crate) struct Analysis {
    /// Segments of the log, in order, up to and including the tail segment.
    pub(crate) kept: Vec<Scanned>,
    /// Segments past the tail (to remove).
    pub(crate) past_tail: Vec<Segment>,
    /// `-pre` files.
    pub(crate) pre: Vec<PathBuf>,
    /// First LSN of the log.
    pub(crate) first_lsn: u64,
    /// The LSN after the last kept record.
    pub(crate) next_lsn: u64,
    /// Where the tail segment's records end.
    pub(crate) tail_end: usize,
    /// How far non-zero bytes reach past `tail_end` in the tail segment.
    pub(crate) tail_dirty_end: usize,
    /// The highest LSN attested by a marker among the kept records.
    pub(crate) attested: u64,
    /// The torn tail, if the log ends at a break with bytes to drop.
    pub(crate) torn: Option<TornTail>,
    /// Corruption found: the log is readable only up to `kept`'s end.
    pub(crate) problem: Option<Error>,
    /// Segments that exist but were not read because of `problem` (read-only inspection).
    pub(crate) unread: usize,
}

struct Break {
    /// Position in `segs` of the segment where the log ends.
    tail: usize,
    /// Where the bytes that end the chain are: what a `Corruption` names.
    file: PathBuf,
    offset: u64,
    reason: CorruptionKind,
}

/// Reads `dir` and decides where the log ends. Changes nothing.
pub(crate) fn analyse(storage: &dyn Storage, dir: &Path, access: Access) -> Result<Analysis> {
    let names = storage.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let (mut found, pre) = classify(dir, names);
    // Before anything is opened or removed: a name that claims a segment must be a regular
    // file (never follow a link out of the directory, never block on a FIFO).
    for path in found.iter().map(|(_, p)| p).chain(pre.iter()) {
        if let Some(what) = storage
            .not_regular(path)
            .map_err(|e| Error::io("inspect", path, e))?
        {
            return Err(Error::NotRegularFile {
                path: path.clone(),
                what,
            });
        }
    }
    found.sort_by_key(|(i, _)| *i);
    let mut a = Analysis {
        kept: Vec::new(),
        past_tail: Vec::new(),
        pre,
        first_lsn: 1,
        next_lsn: 1,
        tail_end: DATA_OFFSET,
        tail_dirty_end: DATA_OFFSET,
        attested: 0,
        torn: None,
        problem: None,
        unread: 0,
    };
    // Open every segment; stop at the first that is missing or unreadable.
    let mut segs: Vec<Scanned> = Vec::with_capacity(found.len());
    for (k, (index, path)) in found.iter().enumerate() {
        if k > 0 && found[k - 1].0 == *index {
            a.problem = Some(corrupt(
                path,
                0,
                CorruptionKind::IndexMismatch {
                    in_name: *index,
                    in_header: *index,
                },
            ));
        } else if k > 0 && found[k - 1].0 + 1 != *index {
            a.problem = Some(corrupt(
                path,
                0,
                CorruptionKind::MissingSegment {
                    index: found[k - 1].0 + 1,
                },
            ));
        } else {
            match Segment::open(storage, path, *index, access) {
                Ok(segment) => {
                    segment.prefetch();
                    let scan = segment.scan();
                    segs.push(Scanned { segment, scan });
                    continue;
                }
                Err(e) => a.problem = Some(e.into()),
            }
        }
        a.unread = found.len() - k;
        break;
    }
    if segs.is_empty() {
        return Ok(a);
    }
    // Walk the chain.
    let mut expected = 0u64;
    let mut brk: Option<Break> = None;
    for (i, s) in segs.iter().enumerate() {
        let path = s.segment.path();
        match s.scan.activation {
            Activation::Valid(first) => {
                if i == 0 {
                    a.first_lsn = first;
                } else if first < expected {
                    a.problem = Some(corrupt(
                        path,
                        64,
                        CorruptionKind::LsnDiscontinuity {
                            expected,
                            found: first,
                        },
                    ));
                    brk = Some(Break {
                        tail: i - 1,
                        file: path.to_path_buf(),
                        offset: 64,
                        reason: CorruptionKind::LsnDiscontinuity {
                            expected,
                            found: first,
                        },
                    });
                    break;
                } else if first > expected {
                    brk = Some(Break {
                        tail: i - 1,
                        file: segs[i - 1].segment.path().to_path_buf(),
                        offset: segs[i - 1].scan.end as u64,
                        reason: CorruptionKind::LsnDiscontinuity {
                            expected,
                            found: first,
                        },
                    });
                    break;
                }
            }
            // The block is written before any frame of the segment. A crash in the middle of
            // that 12-byte copy (a SIGKILL between its stores) leaves it neither zero nor
            // valid, but with nothing after it: that is judged like a missing block below.
            // With frames after it, it is damage, or another use of the file under a new
            // header, whose frames and markers no longer validate to say so.
            Activation::Invalid if s.segment.scan_beyond(DATA_OFFSET).dirty_end > DATA_OFFSET => {
                a.problem = Some(corrupt(path, 64, CorruptionKind::BadActivation));
                if i == 0 {
                    a.unread = segs.len();
                    return Ok(a);
                }
                brk = Some(Break {
                    tail: i - 1,
                    file: segs[i - 1].segment.path().to_path_buf(),
                    offset: segs[i - 1].scan.end as u64,
                    reason: CorruptionKind::BadActivation,
                });
                break;
            }
            Activation::Missing | Activation::Invalid => {
                if i == 0 {
                    // Only the first segment of a brand-new log may lack its first LSN.
                    if s.segment.index() != 1 {
                        a.problem = Some(corrupt(path, 64, CorruptionKind::BadActivation));
                        a.unread = segs.len();
                        return Ok(a);
                    }
                    expected = 1;
                    a.first_lsn = 1;
                    brk = Some(Break {
                        tail: 0,
                        file: path.to_path_buf(),
                        offset: 64,
                        reason: CorruptionKind::BadActivation,
                    });
                } else {
                    // The log ends at the previous segment's end, but the bytes at fault are
                    // this segment's first-LSN block: name them if this turns out corruption.
                    brk = Some(Break {
                        tail: i - 1,
                        file: path.to_path_buf(),
                        offset: 64,
                        reason: CorruptionKind::BadActivation,
                    });
                }
                break;
            }
        }
        a.attested = a.attested.max(s.scan.attested);
        expected = s.scan.next_lsn;
        if let Stop::Invalid(kind) = &s.scan.stop {
            brk = Some(Break {
                tail: i,
                file: path.to_path_buf(),
                offset: s.scan.end as u64,
                reason: kind.clone(),
            });
            break;
        }
    }
    let brk_tail = brk.as_ref().map_or(segs.len() - 1, |b| b.tail);
    a.next_lsn = expected;
    let tail = &segs[brk_tail];
    a.tail_end = tail.scan.end;
    if a.problem.is_some() {
        // Overlapping LSNs: keep the readable prefix, report the corruption.
        a.unread += segs.len() - brk_tail - 1;
        a.kept = segs.into_iter().take(brk_tail + 1).collect();
        a.tail_dirty_end = a.tail_end;
        return Ok(a);
    }
    // Evidence past the break: markers attesting durable records, and bytes to drop.
    let beyond = tail.segment.scan_beyond(tail.scan.end);
    a.tail_dirty_end = beyond.dirty_end;
    let mut attested_past = beyond.attested;
    let mut dropped = (beyond.dirty_end - tail.scan.end) as u64;
    for s in &segs[brk_tail + 1..] {
        let b = s.segment.scan_beyond(DATA_OFFSET.min(s.scan.end));
        attested_past = attested_past.max(s.scan.attested).max(b.attested);
        dropped += (b.dirty_end - DATA_OFFSET) as u64;
    }
    // A clean end followed by non-zero bytes means a zeroed frame header (a torn page, or
    // damage): judge it by the same evidence as any other break.
    let brk = brk.or_else(|| {
        (dropped > 0).then(|| Break {
            tail: brk_tail,
            file: tail.segment.path().to_path_buf(),
            offset: tail.scan.end as u64,
            reason: CorruptionKind::BadFrameHeader,
        })
    });
    if let Some(b) = &brk {
        if attested_past >= expected && expected > 0 {
            a.problem = Some(corrupt(
                &b.file,
                b.offset,
                CorruptionKind::AcknowledgedRecordLost {
                    lsn: expected,
                    attested: attested_past,
                    cause: Box::new(b.reason.clone()),
                },
            ));
            a.unread = segs.len() - brk_tail - 1;
            a.kept = segs.into_iter().take(brk_tail + 1).collect();
            return Ok(a);
        }
        if dropped > 0 {
            a.torn = Some(TornTail {
                file: tail.segment.path().to_path_buf(),
                offset: tail.scan.end as u64,
                bytes_dropped: dropped,
                reason: b.reason.to_string(),
            });
        }
    }
    let mut it = segs.into_iter();
    a.kept = it.by_ref().take(brk_tail + 1).collect();
    a.past_tail = it.map(|s| s.segment).collect();
    Ok(a)
}

fn corrupt(path: &Path, offset: u64, reason: CorruptionKind) -> Error {
    Error::Corruption {
        file: path.to_path_buf(),
        offset,
        reason,
    }
}

fn classify(dir: &Path, names: Vec<OsString>) -> (Vec<(u64, PathBuf)>, Vec<PathBuf>) {
    let mut segs = Vec::new();
    let mut pre = Vec::new();
    for n in names {
        let Some(s) = n.to_str() else { continue };
        if let Some(name) = parse_segment_name(s) {
            if name.pre {
                pre.push(dir.join(s));
            } else {
                segs.push((name.index, dir.join(s)));
            }
        }
    }
    pre.sort();
    (segs, pre)
}
