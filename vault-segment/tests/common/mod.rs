//! Helpers shared by the integration tests.
//!
//! A test of writing, syncing or reading a segment holds on both I/O paths: it is declared
//! once and run twice with [`both_io_paths!`].
#![allow(dead_code, unused_macros, unused_imports)]

use std::path::Path;

use vault_segment::{FsStorage, Storage};

/// Runs a test once per I/O path: write the test as a plain function of the path and declare
/// it with the macro,
///
/// ```ignore
/// both_io_paths!(appended_records_read_back);
/// fn appended_records_read_back(io: IoPath) { /* Segment::create(.., io) ... */ }
/// ```
///
/// which adds a module of that name with the tests `mmap` and `direct` (a failure names its
/// path: `appended_records_read_back::direct`). The test writes under the temp dir, so its
/// `direct` half runs only where that takes `O_DIRECT`, and elsewhere passes after printing why
/// it skipped; `both_io_paths!(sim name)` is for a test on `SimStorage`, which takes both paths
/// everywhere. Attributes before the name go on both tests.
macro_rules! both_io_paths {
    ($(#[$meta:meta])* sim $name:ident) => {
        mod $name {
            #[test]
            $(#[$meta])*
            fn mmap() {
                super::$name(::vault_segment::IoPath::Mmap);
            }

            #[test]
            $(#[$meta])*
            fn direct() {
                super::$name(::vault_segment::IoPath::Direct);
            }
        }
    };
    ($(#[$meta:meta])* $name:ident) => {
        mod $name {
            #[test]
            $(#[$meta])*
            fn mmap() {
                super::$name(::vault_segment::IoPath::Mmap);
            }

            #[test]
            $(#[$meta])*
            fn direct() {
                if $crate::common::direct_io_in(&::std::env::temp_dir(), stringify!($name)) {
                    super::$name(::vault_segment::IoPath::Direct);
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

/// Overwrites `bytes` at `offset` of the file at `path` (positioned, on every platform).
#[allow(dead_code)] // Not every test file patches files.
pub(crate) fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}
