//! vault side by side with peer WALs and the machine's limits; see `vault_bench::suite`.
//!
//! ```text
//! cargo xtask bench [--quick]      # builds with --features peers and updates docs/PERFORMANCE.md
//! cargo bench -p vault-bench --features peers --bench compare -- [--quick] [--only NAME,NAME] [--out FILE]
//! ```
//!
//! Without `--out` the report goes to standard output. Progress goes to standard error.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use vault_bench::suite::{self, Config};

/// Counts every allocation of the process, so the report can show allocations per record.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn main() -> ExitCode {
    let mut quick = false;
    let mut only = None;
    let mut out = None;
    let mut command = String::from("cargo bench -p vault-bench --features peers --bench compare");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => only = args.next(),
            "--out" => out = args.next().map(PathBuf::from),
            "--command" => command = args.next().unwrap_or(command),
            // cargo bench passes --bench to every harness = false target.
            "--bench" => {}
            other => {
                eprintln!("compare: unknown argument `{other}`");
                return ExitCode::from(2);
            }
        }
    }
    let root = std::env::var_os("VAULT_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    let config = Config {
        quick,
        root,
        command,
        only,
    };
    match suite::run(&config, GLOBAL) {
        Ok(report) => {
            if let Some(path) = out {
                if let Err(e) = std::fs::write(&path, report) {
                    eprintln!("compare: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            } else {
                print!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}
