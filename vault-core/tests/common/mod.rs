//! Helpers shared by the integration tests.
//!
//! Most guarantees must hold on both I/O paths: a test of one is declared once and run twice
//! with [`both_io_paths!`].
#![allow(dead_code, unused_imports, unused_macros)]

use std::path::{Path, PathBuf};

use vault_core::{FsStorage, IoMode, IoPath, Options, Storage, SyncPolicy};

/// Runs a test once per I/O path (see [`vault_segment::both_io_paths`]): the test is a
/// function of an [`IoMode`], declared with `both_io_paths!(name)`, `both_io_paths!(sim name)`
/// or `both_io_paths!(name in dir)`; it runs as `name::mmap` and `name::direct`.
macro_rules! both_io_paths {
    ($($test:tt)*) => {
        ::vault_segment::both_io_paths!(
            ::vault_core::IoMode::Mmap, ::vault_core::IoMode::Direct; $($test)*
        );
    };
}
pub(crate) use both_io_paths;
pub(crate) use vault_segment::testing::direct_io_in;

/// The path a mode that is not `Auto` names.
pub(crate) fn io_path(io: IoMode) -> IoPath {
    match io {
        IoMode::Mmap => IoPath::Mmap,
        IoMode::Direct => IoPath::Direct,
        IoMode::Auto => panic!("tests name their I/O path"),
    }
}

/// Deterministic record contents for `lsn`: every byte depends on the LSN, lengths vary.
pub(crate) fn record(lsn: u64) -> Vec<u8> {
    let len = 1 + (lsn as usize * 37) % 300;
    (0..len)
        .map(|i| (lsn.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect()
}

/// Options with a segment size, a sync policy and an I/O path, and nothing else changed.
pub(crate) fn plain(segment_size: u64, sync: SyncPolicy, io: IoMode) -> Options {
    Options::default()
        .with_io(io)
        .with_segment_size(segment_size)
        .with_sync(sync)
}

/// Options with small segments, a sync policy and an I/O path; on the direct path a 16 KiB
/// memory ring, so that the tests' small segments give memory back and fill the ring as a
/// 64 MiB segment does with the default one.
pub(crate) fn small(segment_size: u64, sync: SyncPolicy, io: IoMode) -> Options {
    Options::default()
        .with_segment_size(segment_size)
        .with_sync(sync)
        .with_io(io)
        .with_direct_ring_bytes(16 << 10)
}

/// The log directory of the tests on `SimStorage` (the simulator's file system is its own).
pub(crate) fn sim_dir() -> PathBuf {
    PathBuf::from("/wal")
}

/// Options on the simulator `sim`: the segment size, sync policy and I/O path given.
pub(crate) fn on_sim(
    sim: &vault_segment::sim::SimStorage,
    segment_size: u64,
    sync: SyncPolicy,
    io: IoMode,
) -> Options {
    Options::default()
        .with_io(io)
        .with_segment_size(segment_size)
        .with_sync(sync)
        .with_storage(std::sync::Arc::new(sim.clone()) as std::sync::Arc<dyn Storage>)
}

/// Opens the log in [`sim_dir`] on the simulator `sim` with [`on_sim`]'s options.
pub(crate) fn open_sim(
    sim: &vault_segment::sim::SimStorage,
    segment_size: u64,
    sync: SyncPolicy,
    io: IoMode,
) -> vault_core::Wal {
    vault_core::Wal::open(sim_dir(), on_sim(sim, segment_size, sync, io)).unwrap()
}

/// Segment files of `dir`, sorted by name (which sorts by index).
pub(crate) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("gs-vault-") && n.ends_with(".log") && !n.ends_with("-pre.log")
        })
        .collect();
    v.sort();
    v
}

/// Reads back every record and asserts it is exactly `record(lsn)` for `first..=last`.
pub(crate) fn assert_log(wal: &vault_core::Wal, first: u64, last: u64) {
    let mut expect = first;
    for r in wal.iter_from(first) {
        assert_eq!(r.lsn(), expect, "LSNs must be contiguous");
        assert_eq!(r.data(), &record(expect)[..], "record {expect} differs");
        expect += 1;
    }
    assert_eq!(expect, last + 1, "expected records {first}..={last}");
}

pub(crate) use vault_segment::testing::FileAt;
