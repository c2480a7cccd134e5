//! Benchmarks of vault. This crate is not published. Its content is the benchmarks under
//! `benches/` and the harness they share:
//!
//! - `benches/append.rs` (criterion): single-thread append throughput of `vault-core`'s
//!   [`vault_core::Wal`] for 64 B..64 KiB records, unsynced, synced one by one, and through
//!   `must_write`. Criterion's statistics suit one number per benchmark and nothing more.
//! - `benches/compare.rs` (`harness = false`, driven by `cargo xtask bench`): vault's two I/O
//!   paths (`vault mmap`, `vault direct`) side by side with peer WALs (feature `peers`:
//!   raft-engine, okaywal, wal-db, raft-log, nodedb-wal) and with the machine's own limits (the
//!   memcpy ceiling, the `pwrite` + `fdatasync` and `O_DIRECT|O_DSYNC` floors, the device's
//!   sequential `O_DIRECT` bandwidth), on the same workloads in one run of interleaved rounds,
//!   reporting records/s (median and spread of the rounds), MiB/s, latency percentiles
//!   (hdrhistogram), heap allocations per record, the block device's writes and flushes per
//!   sync, and the memory a spilling log holds, and the issue's targets as ratios. It writes Markdown for `docs/PERFORMANCE.md` and SVG charts of the same figures for
//!   `docs/charts/` ([`charts`]). Criterion is not used there: it
//!   measures a mean per iteration of one thread, while this needs per-record percentiles,
//!   several writer threads and allocation counts.
//!
//! The crate also holds the `vault-stress` binary (`src/bin/vault-stress/`: the run in `main.rs`, the threads in `roles.rs`, the records in `records.rs`, the checks after the fact in `verify.rs`), the stress test
//! `cargo xtask stress` builds in release and runs: it checks correctness under load, it does
//! not measure anything worth comparing.
//!
//! ```text
//! cargo xtask bench [--quick]                 # the comparison, written to docs/PERFORMANCE.md
//! cargo bench -p vault-bench --bench append -- --quick
//! VAULT_BENCH_DIR=/mnt/nvme cargo xtask bench # put the logs on another disk
//! ```
//!
//! Logs live in temporary directories under `VAULT_BENCH_DIR`, or under Cargo's `target/tmp`
//! when that is unset, so the numbers are those of the disk holding the target directory (not
//! of a `/tmp` that may be tmpfs).
//!
//! `unsafe` is allowed only in [`subjects`], for the raw mapping of the memcpy ceiling.
#![deny(unsafe_code)]

pub mod charts;
pub mod harness;
#[cfg(feature = "peers")]
pub mod peers;
#[allow(unsafe_code)]
pub mod subjects;
pub mod suite;

/// The directory the benchmarks and probes put their logs under: `VAULT_BENCH_DIR` if set,
/// else the workspace's `target/tmp` (on the disk that holds the target directory, not a
/// `/tmp` that may be tmpfs). Created if missing.
///
/// # Panics
/// If the directory cannot be created.
#[must_use]
pub fn bench_root() -> std::path::PathBuf {
    let root = std::env::var_os("VAULT_BENCH_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&root)
        .unwrap_or_else(|e| panic!("cannot create the bench directory {}: {e}", root.display()));
    root
}
