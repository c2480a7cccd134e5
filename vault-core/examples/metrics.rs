//! Exports a WAL's metrics in the Prometheus text format.
//!
//! ```text
//! cargo run -p vault-core --example metrics --features metrics
//! ```
//!
//! Installs `metrics-exporter-prometheus` as the global recorder (without its HTTP listener: a
//! service would serve `handle.render()` from its own `/metrics` endpoint, or enable the
//! exporter's `http-listener` feature), opens a WAL with small segments, appends from four
//! threads (each waiting for durability, so that group commit runs), truncates the front, and
//! prints the rendered text. Exits non-zero if any metric name vault documents
//! (`vault_core::metrics::ALL`) is missing from it.
use std::process::ExitCode;
use std::sync::Arc;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use vault_core::{metrics, Options, SyncPolicy, Wal};

const THREADS: usize = 4;
const RECORDS_PER_THREAD: usize = 2_000;

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    // Before `Wal::open`: the WAL registers its metrics with the recorder installed then.
    // Buckets make the two histograms Prometheus histograms (without them the exporter renders
    // summaries over a rolling window).
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(metrics::FLUSH_SECONDS.into()),
            &[
                50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3,
            ],
        )?
        .set_buckets_for_metric(
            Matcher::Full(metrics::FLUSH_RECORDS.into()),
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0],
        )?
        .install_recorder()?;

    let dir = tempfile::tempdir()?;
    let options = Options::default()
        .with_sync(SyncPolicy::Always)
        .with_segment_size(256 << 10);
    let wal = Wal::open(dir.path(), options)?;
    let report = wal.recovery().clone();
    let wal = Arc::new(wal);
    println!(
        "# vault WAL in {} ({} path on {}): {THREADS} threads x {RECORDS_PER_THREAD} records",
        dir.path().display(),
        report.io_path,
        report.file_system
    );
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || -> vault_core::Result<()> {
                let record = vec![u8::try_from(t).unwrap_or(0); 200];
                for _ in 0..RECORDS_PER_THREAD {
                    wal.append(&record)?;
                }
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.join().map_err(|_| "a writer panicked")??;
    }
    // Drop the older half of the log, as a consumer's checkpoint would.
    let removed = wal.truncate_front(wal.last_lsn() / 2)?;
    // `stats` also brings the metrics up to date (appends, gauges).
    let stats = wal.stats();
    println!(
        "# appends {} flushes {} rotations {} segments {} (truncate_front removed {removed})",
        stats.appends, stats.flushes, stats.rotations, stats.segments
    );

    let text = handle.render();
    print!("{text}");

    let missing: Vec<&str> = metrics::ALL
        .into_iter()
        .filter(|name| !text.lines().any(|l| exported_name(l) == Some(*name)))
        .collect();
    if missing.is_empty() {
        println!(
            "# ok: all {} documented metrics exported",
            metrics::ALL.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: documented metrics missing from the export: {missing:?}");
        Ok(ExitCode::FAILURE)
    }
}

/// The metric a sample line of the Prometheus text format is for: its name without the
/// `_sum`/`_count` a summary or histogram adds; `None` for comments and blank lines.
fn exported_name(line: &str) -> Option<&str> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let name = line.split(['{', ' ']).next()?;
    Some(
        ["_sum", "_count", "_bucket"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name),
    )
}
