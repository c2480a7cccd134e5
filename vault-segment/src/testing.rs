//! Test support for the workspace's crates (feature `testing`): running one test on both I/O
//! paths, and the probe that decides whether a real directory can take the direct one.

use std::path::Path;

use crate::storage::{FsStorage, Storage};

/// Runs a test once per I/O path. Write the test as a plain function of the path (or mode) and
/// declare it with the macro, giving the two values to call it with first:
///
/// ```ignore
/// vault_segment::both_io_paths!(IoPath::Mmap, IoPath::Direct; appended_records_read_back);
/// fn appended_records_read_back(io: IoPath) { /* ... */ }
/// ```
///
/// This adds a module of the test's name with the tests `mmap` and `direct`, so a failure
/// names its path (`appended_records_read_back::direct`). A test on the real file system
/// writes under the temp dir, so its `direct` half runs only where that takes `O_DIRECT` and
/// elsewhere passes after printing why it skipped. Other forms:
///
/// - `sim name`: the test runs on `SimStorage`, which takes both paths everywhere;
/// - `name in dir`: the test writes under `dir` (an expression giving a `&Path`), the
///   directory probed for `O_DIRECT`;
/// - attributes before the name (`#[ignore = "..."] name`) go on both tests.
///
/// A module and a function may share a name (they live in different namespaces), so the
/// function keeps its behaviour-stating name.
#[macro_export]
macro_rules! both_io_paths {
    ($mmap:expr, $direct:expr; $(#[$meta:meta])* sim $name:ident) => {
        mod $name {
            #[test]
            $(#[$meta])*
            fn mmap() {
                super::$name($mmap);
            }

            #[test]
            $(#[$meta])*
            fn direct() {
                super::$name($direct);
            }
        }
    };
    ($mmap:expr, $direct:expr; $(#[$meta:meta])* $name:ident) => {
        $crate::both_io_paths!($mmap, $direct; $(#[$meta])* $name in &::std::env::temp_dir());
    };
    ($mmap:expr, $direct:expr; $(#[$meta:meta])* $name:ident in $dir:expr) => {
        mod $name {
            #[test]
            $(#[$meta])*
            fn mmap() {
                super::$name($mmap);
            }

            #[test]
            $(#[$meta])*
            fn direct() {
                if $crate::testing::direct_io_in($dir, stringify!($name)) {
                    super::$name($direct);
                }
            }
        }
    };
}

/// Whether the real file system under `dir` takes `O_DIRECT`; if not, prints that `test`
/// skips its direct half, and why.
#[must_use]
pub fn direct_io_in(dir: &Path, test: &str) -> bool {
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

/// Runs the loom model `f` with a default preemption bound of 2, unless a `LOOM_*` variable
/// (read by `Builder::new`, e.g. `LOOM_MAX_PREEMPTIONS`) already set one. `f` runs on a loom
/// thread with `stack` bytes of stack (loom's own first thread has only 32 KiB), which takes
/// one of the 5 threads loom allows: a model may start 3 more. Under wine (`VAULT_UNDER_WINE`,
/// set by `cargo xtask cross`) it skips, saying so: loom switches stacks, which aborts while
/// unwinding there.
pub fn loom_model<F>(stack: usize, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    if std::env::var_os("VAULT_UNDER_WINE").is_some() {
        eprintln!(
            "skipped: loom model under wine (loom switches stacks, which aborts while \
             unwinding there); it runs on Linux"
        );
        return;
    }
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    // std's `Arc` and counter: made outside the model, shared by every execution.
    let f = std::sync::Arc::new(f);
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&executions);
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let f = std::sync::Arc::clone(&f);
        loom::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || f())
            .expect("loom spawns")
            .join()
            .unwrap();
    });
    // Shown with `--nocapture`: how much of the state space the bound let loom explore.
    eprintln!(
        "loom: {} executions",
        executions.load(std::sync::atomic::Ordering::Relaxed)
    );
}
