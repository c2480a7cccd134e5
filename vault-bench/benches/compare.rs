//! vault side by side with peer WALs and the machine's limits; see `vault_bench::suite`.
//!
//! ```text
//! cargo xtask bench [--quick]      # builds with --features peers and updates docs/PERFORMANCE.md
//! cargo bench -p vault-bench --features peers --bench compare -- [--quick] [--only NAME,NAME] [--out FILE]
//! ```
//!
//! With `--out FILE`, the report goes to FILE and its SVG charts to a `charts` directory beside
//! it, where the report's image links point. Without `--out` the report goes to standard output
//! and no chart is written. Progress goes to standard error.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
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
    let root = vault_bench::bench_root();
    let config = Config {
        quick,
        root,
        command,
        only,
    };
    match suite::run(&config, GLOBAL) {
        Ok(report) => {
            if let Some(path) = out {
                if let Err(e) = write(&path, &report) {
                    eprintln!("compare: {e}");
                    return ExitCode::FAILURE;
                }
            } else {
                print!("{}", report.markdown);
                eprintln!("compare: no --out, so no charts");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the report to `path` and its charts to `charts/` beside it, replacing the SVG files
/// of an earlier run there.
fn write(path: &Path, report: &suite::Report) -> Result<(), String> {
    let fail =
        |what: &str, p: &Path, e: std::io::Error| format!("cannot {what} {}: {e}", p.display());
    let dir = path.parent().unwrap_or(Path::new(".")).join("charts");
    std::fs::create_dir_all(&dir).map_err(|e| fail("create", &dir, e))?;
    std::fs::write(path, &report.markdown).map_err(|e| fail("write", path, e))?;
    for entry in std::fs::read_dir(&dir).map_err(|e| fail("read", &dir, e))? {
        let old = entry.map_err(|e| fail("read", &dir, e))?.path();
        if old.extension().is_some_and(|x| x == "svg") {
            std::fs::remove_file(&old).map_err(|e| fail("remove", &old, e))?;
        }
    }
    for chart in &report.charts {
        let file = dir.join(&chart.file);
        std::fs::write(&file, &chart.svg).map_err(|e| fail("write", &file, e))?;
    }
    Ok(())
}
