//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use vault_core::{Options, SyncPolicy};

/// Deterministic record contents for `lsn`: every byte depends on the LSN, lengths vary.
pub fn record(lsn: u64) -> Vec<u8> {
    let len = 1 + (lsn as usize * 37) % 300;
    (0..len)
        .map(|i| (lsn.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect()
}

pub fn small(segment_size: u64, sync: SyncPolicy) -> Options {
    Options::default()
        .with_segment_size(segment_size)
        .with_sync(sync)
}

/// Segment files of `dir`, sorted by name (which sorts by index).
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
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
pub fn assert_log(wal: &vault_core::Wal, first: u64, last: u64) {
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
pub trait FileAt {
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
