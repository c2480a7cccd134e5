//! Helpers shared by the integration tests.
//!
//! Most guarantees must hold on both I/O paths: a test of one is declared once and run twice
//! with [`both_io_paths!`].
#![allow(dead_code, unused_imports, unused_macros)]

use std::path::{Path, PathBuf};

use vault_core::{FsStorage, IoMode, IoPath, Options, Storage, SyncPolicy};

/// Runs a test once per I/O path. Write the test as a plain function of the mode and declare
/// it with the macro:
///
/// ```ignore
/// both_io_paths!(torn_tail_is_truncated);
/// fn torn_tail_is_truncated(io: IoMode) { /* Options::default().with_io(io) ... */ }
/// ```
///
/// This adds a module `torn_tail_is_truncated` with the tests `mmap` and `direct`, which call
/// the function with `IoMode::Mmap` and `IoMode::Direct`: a failure names its path
/// (`torn_tail_is_truncated::direct`). A test on the real file system writes under the temp
/// dir, so its `direct` half runs only where that takes `O_DIRECT`, and elsewhere passes after
/// printing why it skipped. Other forms:
///
/// - `both_io_paths!(sim name)`: the test runs on `SimStorage`, which takes both paths
///   everywhere, so nothing is skipped;
/// - `both_io_paths!(name in dir)`: the test writes under `dir` (an expression giving a
///   `&Path`), which is the directory probed for `O_DIRECT`;
/// - attributes before the name (`#[ignore = "..."] name`) go on both tests.
///
/// A module and a function may share a name (they live in different namespaces), so the
/// function keeps its behaviour-stating name and rustfmt formats its body as usual.
macro_rules! both_io_paths {
    ($(#[$meta:meta])* sim $name:ident) => {
        mod $name {
            #[test]
            $(#[$meta])*
            fn mmap() {
                super::$name(::vault_core::IoMode::Mmap);
            }

            #[test]
            $(#[$meta])*
            fn direct() {
                super::$name(::vault_core::IoMode::Direct);
            }
        }
    };
    ($(#[$meta:meta])* $name:ident) => {
        $crate::common::both_io_paths!($(#[$meta])* $name in &::std::env::temp_dir());
    };
    ($(#[$meta:meta])* $name:ident in $dir:expr) => {
        mod $name {
            #[test]
            $(#[$meta])*
            fn mmap() {
                super::$name(::vault_core::IoMode::Mmap);
            }

            #[test]
            $(#[$meta])*
            fn direct() {
                if $crate::common::direct_io_in($dir, stringify!($name)) {
                    super::$name(::vault_core::IoMode::Direct);
                }
            }
        }
    };
}
pub(crate) use both_io_paths;

/// Whether the real file system under `dir` takes `O_DIRECT`; if not, prints that `test`
/// skips its direct half, and why.
pub(crate) fn direct_io_in(dir: &Path, test: &str) -> bool {
    match FsStorage.file_system(dir) {
        Ok(fs) if fs.direct_io => true,
        Ok(fs) => {
            println!(
                "skipping {test} on the direct path: {} ({}) does not take O_DIRECT: {}",
                dir.display(),
                fs.name,
                fs.direct_io_error.as_deref().unwrap_or("no reason given")
            );
            false
        }
        Err(e) => {
            println!(
                "skipping {test} on the direct path: cannot probe {}: {e}",
                dir.display()
            );
            false
        }
    }
}

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
    vault_core::Wal::open(sim_dir(), on_sim(sim, segment_size, sync, io))
        .unwrap()
        .0
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

/// Positioned reads and writes that build on every platform (`std::os::unix::fs::FileExt` is
/// Unix-only); the tests here need no atomicity from them.
pub(crate) trait FileAt {
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()>;
    /// Fills `buf` from `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl FileAt for std::fs::File {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = self;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(buf)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = self;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
}
