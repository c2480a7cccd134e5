//! Power loss at every step: workloads run on `SimStorage`, which captures the disk state
//! before and after every storage operation; each captured state is then crashed in many ways
//! (subsets of the dirty pages, written whole, torn at sectors, zeroed or garbage, and prefixes
//! of the unsynced directory operations) and reopened.
//!
//! After each crash: `open` succeeds; every record whose sync returned (or whose append
//! returned under `SyncPolicy::Always`, or that `durable_lsn` covered) is there, byte-exact, in
//! order, without a gap; nothing that was never appended appears (a record's bytes are a
//! function of its LSN); the log starts later only if `truncate_front` asked for it; and the
//! WAL accepts appends that survive a second crash and reopen.
//!
//! A zeroed or garbage page destroys whatever it held, including bytes synced earlier (the
//! page is rewritten whole when it is written back). Where such a page held durable non-zero
//! bytes, losing acknowledged records is the crash model's doing, not the WAL's: those states
//! need only a clean outcome (a contiguous, byte-exact log or a typed error, never a panic).
//!
//! Every test runs on both I/O paths, as `<test>::mmap` and `<test>::direct`. The simulated
//! storage takes both; its crash model is the mmap one (any subset of the dirty pages may have
//! reached the disk), a superset of what a direct-path crash can leave, so the direct half
//! checks the direct path's own logic (a read-only open with only the tail writable, finished
//! segments swapped for read-only mappings) against the stricter model.
//!
//! `VAULT_POWERLOSS_STATES` sets how many crash states the random workloads check on each path
//! (default 4,000; the fixed small workloads and the cut cases add about 7,000 more per path);
//! `VAULT_POWERLOSS_FIRST_SEED` sets the first random workload's seed (default 1000);
//! `VAULT_POWERLOSS_SEED` replays one random workload. Each test prints `power_loss <path>
//! <name>: checked <n> states`. `cargo xtask powerloss --states N [--io mmap|direct|both]`
//! runs this file in release with a large N and sums those lines per path.

#[path = "../common/mod.rs"]
mod common;
mod cuts;
mod harness;
mod workloads;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use common::record;
use vault_core::{Error, IoMode, Options, SyncPolicy, Wal};
use vault_segment::sim::{
    CrashChoice, CrashPoint, DirtyPage, OpKind, PageFate, SimRng, SimStorage, Snapshot,
};
use vault_segment::Storage;

#[allow(unused_imports)]
use harness::*;
