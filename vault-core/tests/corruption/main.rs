//! The corruption matrix: thousands of damaged copies of real logs, each with the outcome the
//! recovery rule (docs/ARCHITECTURE.md §6) prescribes, asserted for both `Wal::open` and the
//! read-only `vault_core::inspect`.
//!
//! Two template logs are written for real with `SyncPolicy::Manual` and 16 KiB segments, so
//! which records are attested is known exactly:
//!
//! - **killed**: records 1..=400, synced after 100 and 250 (so commit markers attesting 100 and
//!   250 precede records 101 and 251), then the process aborts: 251..=400 are unsynced, and an
//!   unused spare segment may follow the tail.
//! - **closed**: the same records and syncs, then `close`, whose final marker attests all 400.
//!
//! Two more templates went through `Wal::truncate_back` (same records, same syncs):
//! **cut-closed** was cut at 180, in its second segment (the later segments removed, that one
//! replaced by a copy of its records before 180), then 180..=400 were appended again and the
//! log closed; **cut-killed** was written to 520, cut at 392 inside the segment that becomes
//! the tail, then 392..=400 were appended again (unsynced) and the process aborted.
//!
//! Each case copies a template, damages it, and derives the expected outcome from *what was
//! damaged*, not from how recovery is coded: the first record (in log order) whose bytes
//! changed is where the log must stop; if a commit marker that survived past that point attests
//! it, the damage is in acknowledged records and `open` must fail with `Error::Corruption`
//! naming the file and offset and change nothing; otherwise everything from there on was
//! written after the last sync anything on disk attests, and `open` must cut it (a torn tail),
//! keeping every record before it byte-exact. Damage to headers, activation blocks, file sizes
//! and the set of files has fixed, typed outcomes. Every case also checks that `inspect` says
//! the same as `open`, and after a successful open that appends continue and survive a reopen.
//!
//! The matrix runs on both I/O paths (`...::mmap`, `...::direct`): the closed templates are
//! written and every case is recovered on the path under test; the killed templates are
//! written on the mmap path, the only one whose unsynced records outlive a killed writer.
//!
//! No case may panic or hang: panics are caught and reported with the case, and a watchdog
//! aborts (naming the case) if one runs for minutes. The number of cases is printed.

mod cases;
#[path = "../common/mod.rs"]
mod common;
mod handmade;
mod matrix;
mod templates;

use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::record;
use vault_core::{inspect, CorruptionKind, Error, Health, IoMode, Options, SyncPolicy, Wal};
use vault_segment::format::{encode_activation, seal_crc, SegmentHeader, MAGIC};
use vault_segment::{parse_segment_name, partial_crc, segment_file_name};

#[allow(unused_imports)]
use cases::*;
#[allow(unused_imports)]
use templates::*;
