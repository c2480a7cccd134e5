//! The `metrics` feature: what a WAL records after known operations, read through a local
//! `DebuggingRecorder` (so tests running in parallel do not share a global recorder).

mod common;

use std::collections::HashMap;

use common::small;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use vault_core::metrics::{
    ALL, APPENDED_BYTES, APPENDS, DISK_BUDGET_WAITS, DISK_BYTES, DURABLE_LAG, FLUSHES,
    FLUSH_RECORDS, FLUSH_SECONDS, IO_LABEL, RECYCLED_SEGMENTS, ROTATIONS, SEGMENT_WAITS,
};
use vault_core::{IoMode, Options, SyncPolicy, Wal};

/// What the recorder saw, accumulated over snapshots (a `DebuggingRecorder` snapshot resets
/// counters and gauges to 0 and drains histograms).
#[derive(Default)]
struct Seen {
    counters: HashMap<String, u64>,
    /// Gauges as of the last snapshot (0 if not set since the one before).
    gauges: HashMap<String, f64>,
    histograms: HashMap<String, Vec<f64>>,
    /// Every metric's `io` label.
    io_labels: HashMap<String, String>,
}

impl Seen {
    fn take(&mut self, snapshotter: &Snapshotter) {
        for (key, _unit, _desc, value) in snapshotter.snapshot().into_vec() {
            let name = key.key().name().to_string();
            let io = key
                .key()
                .labels()
                .find(|l| l.key() == IO_LABEL)
                .map(|l| l.value().to_string())
                .unwrap_or_default();
            self.io_labels.insert(name.clone(), io);
            match value {
                DebugValue::Counter(n) => *self.counters.entry(name).or_default() += n,
                DebugValue::Gauge(g) => {
                    self.gauges.insert(name, g.0);
                }
                DebugValue::Histogram(v) => self
                    .histograms
                    .entry(name)
                    .or_default()
                    .extend(v.into_iter().map(|f| f.0)),
            }
        }
    }

    fn counter(&self, name: &str) -> u64 {
        *self
            .counters
            .get(name)
            .unwrap_or_else(|| panic!("counter {name} not registered"))
    }

    fn gauge(&self, name: &str) -> f64 {
        *self
            .gauges
            .get(name)
            .unwrap_or_else(|| panic!("gauge {name} not registered"))
    }
}

/// Opens a WAL in `dir` with `recorder` as the recorder its metrics register with.
fn open(recorder: &DebuggingRecorder, dir: &std::path::Path, options: Options) -> Wal {
    metrics::with_local_recorder(recorder, || Wal::open(dir, options)).unwrap()
}

#[test]
fn every_documented_metric_is_registered_at_open_with_the_io_path_label() {
    for io in [IoMode::Mmap, IoMode::Auto] {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let dir = tempfile::tempdir().unwrap();
        let wal = open(&recorder, dir.path(), Options::default().with_io(io));
        let report = wal.recovery().clone();
        let mut seen = Seen::default();
        seen.take(&snapshotter);
        for name in ALL {
            assert_eq!(
                seen.io_labels.get(name).map(String::as_str),
                Some(report.io_path.name()),
                "{name} ({io:?})"
            );
        }
        assert_eq!(seen.counter(APPENDS), 0);
        assert_eq!(seen.counter(RECYCLED_SEGMENTS), 0);
        assert_eq!(seen.counter(DISK_BUDGET_WAITS), 0);
        assert!(
            seen.gauge(DISK_BYTES) >= 64.0 * 1024.0 * 1024.0,
            "one segment at least"
        );
        wal.close().unwrap();
    }
}

#[test]
fn counters_follow_appends_syncs_and_rotations() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        &recorder,
        dir.path(),
        small(64 * 1024, SyncPolicy::Manual, IoMode::Auto).with_spare_segments(1),
    );
    let mut seen = Seen::default();
    seen.take(&snapshotter);

    // 3000 records of 100 bytes: about 350 KiB of frames, so several rotations of 64 KiB
    // segments.
    const N: u64 = 3000;
    for _ in 0..N {
        wal.append(&[7u8; 100]).unwrap();
    }
    let batch: Vec<&[u8]> = vec![&[1u8; 10]; 5];
    wal.append_batch(&batch).unwrap();
    let before_sync = wal.stats();
    seen.take(&snapshotter);
    assert_eq!(
        seen.counter(APPENDS),
        N + 5,
        "stats() publishes the appends"
    );
    assert_eq!(seen.counter(APPENDED_BYTES), N * 100 + 50);
    assert_eq!(
        seen.gauge(DURABLE_LAG),
        (before_sync.last_lsn - before_sync.durable_lsn) as f64
    );
    assert!(seen.gauge(DURABLE_LAG) > 0.0, "nothing was synced");

    wal.sync().unwrap();
    wal.sync().unwrap(); // covered already: no second flush
    seen.take(&snapshotter);
    let stats = wal.stats();
    assert!(
        stats.rotations >= 1,
        "the test must fill segments: {stats:?}"
    );
    assert_eq!(seen.counter(FLUSHES), stats.flushes);
    assert!(seen.counter(FLUSHES) >= 1);
    assert_eq!(seen.counter(ROTATIONS), stats.rotations);
    assert_eq!(seen.counter(SEGMENT_WAITS), stats.segment_waits);
    assert_eq!(seen.gauge(DURABLE_LAG), 0.0, "lag after a sync");
    let per_flush = &seen.histograms[FLUSH_RECORDS];
    assert_eq!(per_flush.len() as u64, stats.flushes);
    assert_eq!(per_flush.iter().sum::<f64>(), (N + 5) as f64);
    assert_eq!(seen.histograms[FLUSH_SECONDS].len() as u64, stats.flushes);
    assert!(seen.histograms[FLUSH_SECONDS].iter().all(|&s| s >= 0.0));

    // The disk gauge: the log's segments plus prepared spares (and dropped files pooled for
    // recycling), and less after truncate_front.
    seen.take(&snapshotter);
    let _ = wal.stats();
    seen.take(&snapshotter);
    let disk = seen.gauge(DISK_BYTES);
    assert!(
        disk >= (stats.segments as f64) * 64.0 * 1024.0,
        "{disk} bytes for {} segments",
        stats.segments
    );
    let removed = wal.truncate_front(wal.last_lsn()).unwrap() as f64;
    assert!(removed >= 2.0, "{removed} segments removed");
    let pooled = wal.stats().recycle_pool as f64;
    assert!(pooled <= 1.0, "one file pooled at most (the spare count)");
    seen.take(&snapshotter);
    // The worker may have prepared one more spare meanwhile (`with_spare_segments(1)`).
    let after = seen.gauge(DISK_BYTES);
    let segment = 64.0 * 1024.0;
    assert!(
        after <= disk - (removed - 1.0 - pooled) * segment && after < disk,
        "truncate_front of {removed} segments took the disk gauge from {disk} to {after}"
    );
    assert_eq!(
        seen.counter(RECYCLED_SEGMENTS),
        0,
        "no rotation since the truncation"
    );
    assert_eq!(seen.counter(APPENDS), N + 5, "counted once");
    // Rotations after it use the pooled file: counted as they take it.
    for _ in 0..2000 {
        wal.append(&[7u8; 100]).unwrap();
    }
    let s = wal.stats();
    seen.take(&snapshotter);
    let recycled = seen.counter(RECYCLED_SEGMENTS);
    assert!(
        recycled >= 1 && recycled <= s.segments_recycled,
        "{recycled} rotations into recycled segments, {} prepared",
        s.segments_recycled
    );
    wal.close().unwrap();
}

#[test]
fn always_policy_records_one_histogram_sample_per_flush() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        &recorder,
        dir.path(),
        small(1 << 20, SyncPolicy::Always, IoMode::Auto),
    );
    for _ in 0..20 {
        wal.append(b"durable").unwrap();
    }
    let mut seen = Seen::default();
    seen.take(&snapshotter);
    assert_eq!(
        seen.counter(FLUSHES),
        20,
        "one flush per lone Always append"
    );
    assert_eq!(seen.counter(APPENDS), 20, "flushes publish the appends");
    assert_eq!(seen.histograms[FLUSH_RECORDS], vec![1.0; 20]);
    assert_eq!(seen.gauge(DURABLE_LAG), 0.0);
    wal.close().unwrap();
}
