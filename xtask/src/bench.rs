//! `cargo xtask bench [--quick]`: runs the side-by-side comparison of vault with peer WALs and
//! the machine's limits (`vault-bench/benches/compare.rs`, built with the `peers` feature) and
//! puts its report into `docs/PERFORMANCE.md`, between two marker lines, keeping the
//! hand-written analysis around them, and its SVG charts into `docs/charts/`, where the report's
//! image links (`charts/<file>.svg`) point.
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
/// Where the benchmark writes its charts (beside [`REPORT`]), and where they are copied to (beside
/// [`PERFORMANCE`]).
const CHARTS: &str = "target/vault-bench/charts";
const DOC_CHARTS: &str = "docs/charts";

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
    let copied = copy_charts(
        &workspace.root.join(CHARTS),
        &workspace.root.join(DOC_CHARTS),
    )?;
    println!("xtask bench: {PERFORMANCE} updated from {REPORT}, {copied} charts in {DOC_CHARTS}");
    Ok(())
}

/// Replaces the SVG files in `to` with those in `from`, so that no chart of an earlier run's
/// workloads stays behind. Returns how many were copied.
fn copy_charts(from: &Path, to: &Path) -> Result<usize, Error> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    let svgs = |dir: &Path| -> Result<Vec<std::path::PathBuf>, Error> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io("read", dir))? {
            let path = entry.map_err(io("read", dir))?.path();
            if path.extension().is_some_and(|x| x == "svg") {
                found.push(path);
            }
        }
        Ok(found)
    };
    std::fs::create_dir_all(to).map_err(io("create", to))?;
    for old in svgs(to)? {
        std::fs::remove_file(&old).map_err(io("remove", &old))?;
    }
    let new = svgs(from)?;
    for chart in &new {
        let target = to.join(chart.file_name().unwrap_or_default());
        std::fs::copy(chart, &target).map_err(io("copy", &target))?;
    }
    Ok(new.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copying_charts_replaces_every_earlier_svg_and_nothing_else() {
        let root = std::env::temp_dir().join(format!("xtask-charts-{}", std::process::id()));
        let (from, to) = (root.join("from"), root.join("to"));
        std::fs::create_dir_all(&from).unwrap();
        std::fs::create_dir_all(&to).unwrap();
        for (dir, file) in [
            (&from, "latency.svg"),
            (&from, "throughput.svg"),
            (&from, "notes.txt"),
            (&to, "stale.svg"),
            (&to, "README.md"),
        ] {
            std::fs::write(dir.join(file), file).unwrap();
        }
        assert_eq!(copy_charts(&from, &to).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(&to)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["README.md", "latency.svg", "throughput.svg"]);
        assert_eq!(
            std::fs::read_to_string(to.join("latency.svg")).unwrap(),
            "latency.svg"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
