//! Benchmarks of vault. This crate is not published and has no API: its content is the
//! criterion benchmarks under `benches/`, which measure `vault-core`'s [`vault_core::Wal`] as a
//! user sees it.
//!
//! - `benches/append.rs`: single-thread append throughput in payload bytes per second, for
//!   records of 64 B, 256 B, 4 KiB and 64 KiB without syncing (`SyncPolicy::Manual`), for
//!   256 B records synced one by one (`SyncPolicy::Always`), and for 256 B records written
//!   from pooled buffers with `Wal::must_write`.
//!
//! The crate also holds the `vault-stress` binary (`src/bin/vault-stress.rs`), the stress test
//! `cargo xtask stress` builds in release and runs: it checks correctness under load, it does
//! not measure anything worth comparing.
//!
//! ```text
//! cargo bench -p vault-bench                  # every benchmark, criterion's full sampling
//! cargo bench -p vault-bench -- --quick       # a short run, well under a minute
//! VAULT_BENCH_DIR=/mnt/nvme cargo bench -p vault-bench   # put the WAL on another disk
//! ```
//!
//! The WAL under test lives in a temporary directory under `VAULT_BENCH_DIR`, or under Cargo's
//! `target/tmp` when that is unset. Opening it and trimming its front are kept out of the
//! timings; see the docs at the top of each benchmark file for what is timed.
//!
//! What this crate does not have yet: peers and baselines to compare vault against. They come
//! in a later issue (#6), with `docs/PERFORMANCE.md` recording results, commands and machine.
#![forbid(unsafe_code)]
