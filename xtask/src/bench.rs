//! `cargo xtask bench [--quick]`: runs the side-by-side comparison of vault with peer WALs and
//! the machine's limits (`vault-bench/benches/compare.rs`, built with the `peers` feature) and
//! puts its report into `docs/PERFORMANCE.md`, between two marker lines, keeping the
//! hand-written analysis around them.
//!
//! Benchmarks are never part of `cargo xtask ci`: they gate nothing on time.

use std::path::Path;

use crate::{Error, Step, Workspace};

/// The report goes between these lines of `docs/PERFORMANCE.md`.
const BEGIN: &str = "<!-- BEGIN cargo xtask bench: generated, do not edit by hand -->";
const END: &str = "<!-- END cargo xtask bench -->";
/// Where the benchmark writes its report before it is spliced in.
const REPORT: &str = "target/vault-bench/report.md";
const PERFORMANCE: &str = "docs/PERFORMANCE.md";

/// Runs the comparison and updates `docs/PERFORMANCE.md`.
pub(crate) fn bench(workspace: &Workspace, args: &[String]) -> Result<(), Error> {
    let mut quick = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            other => {
                return Err(Error::Usage(format!(
                    "`bench` takes only `--quick`, got `{other}`"
                )))
            }
        }
    }
    let report = workspace.root.join(REPORT);
    if let Some(dir) = report.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            what: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let shown = if quick {
        "cargo xtask bench --quick"
    } else {
        "cargo xtask bench"
    };
    let mut command = workspace.cargo([
        "bench",
        "-p",
        "vault-bench",
        "--features",
        "peers",
        "--bench",
        "compare",
        "--",
        "--command",
        shown,
    ]);
    // The benchmark runs from its package directory: give it an absolute path.
    command.arg("--out").arg(&report);
    if quick {
        command.arg("--quick");
    }
    Step::new("bench", command).run()?;
    splice(&workspace.root.join(PERFORMANCE), &report)?;
    println!("xtask bench: {PERFORMANCE} updated from {REPORT}");
    Ok(())
}

/// Replaces the text between [`BEGIN`] and [`END`] in `target` with the contents of `report`.
fn splice(target: &Path, report: &Path) -> Result<(), Error> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: "read",
            path: path.to_path_buf(),
            source,
        })
    };
    let doc = read(target)?;
    let generated = read(report)?;
    let (Some(begin), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        return Err(Error::Usage(format!(
            "{} has no `{BEGIN}` ... `{END}` section to replace",
            target.display()
        )));
    };
    if end < begin {
        return Err(Error::Usage(format!(
            "{}: the end marker comes before the begin marker",
            target.display()
        )));
    }
    let updated = format!(
        "{}{BEGIN}\n\n{}\n{}",
        &doc[..begin],
        generated.trim_end(),
        &doc[end..]
    );
    std::fs::write(target, updated).map_err(|source| Error::Io {
        what: "write",
        path: target.to_path_buf(),
        source,
    })
}
