//! Helpers shared by the integration tests.
//!
//! A test of writing, syncing or reading a segment holds on both I/O paths: it is declared
//! once and run twice with [`both_io_paths!`].
#![allow(dead_code, unused_macros, unused_imports)]

use std::path::Path;

/// Runs a test once per I/O path (see [`vault_segment::both_io_paths`]): `both_io_paths!(name)`,
/// `both_io_paths!(sim name)`, with the test a function of an [`vault_segment::IoPath`].
macro_rules! both_io_paths {
    ($($test:tt)*) => {
        ::vault_segment::both_io_paths!(
            ::vault_segment::IoPath::Mmap, ::vault_segment::IoPath::Direct; $($test)*
        );
    };
}
pub(crate) use both_io_paths;
pub(crate) use vault_segment::testing::direct_io_in;

/// Overwrites `bytes` at `offset` of the file at `path` (positioned, on every platform).
#[allow(dead_code)] // Not every test file patches files.
pub(crate) fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}
