//! The names of the metrics a [`Wal`](crate::Wal) records with the crate's `metrics` feature,
//! and (with it) the handles that record them.
//!
//! With the feature on, a WAL records through the [`metrics`](https://docs.rs/metrics) facade
//! into whatever recorder the program installed (for example `metrics-exporter-prometheus`;
//! see `examples/metrics.rs`). Every metric carries the label [`IO_LABEL`] = `"direct"` or
//! `"mmap"`, the I/O path the WAL writes through. The handles are registered at
//! [`Wal::open`](crate::Wal::open), so install the recorder before opening (a WAL opened with
//! no recorder records nothing, and pays only for no-op calls at the points below). Several
//! WALs on the same I/O path in one process share each series: their counters and histograms
//! add up, and a gauge shows the WAL that set it last.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `vault_appends_total` | counter | records appended |
//! | `vault_appended_bytes_total` | counter | payload bytes of those records (without framing) |
//! | `vault_flushes_total` | counter | group-commit flushes that succeeded |
//! | `vault_flush_records` | histogram | records each flush made durable |
//! | `vault_flush_seconds` | histogram | how long each flush took (its syncs), in seconds |
//! | `vault_segment_waits_total` | counter | rotations that had to wait for a segment |
//! | `vault_rotations_total` | counter | segment rotations |
//! | `vault_recycled_segments_total` | counter | rotations into a recycled segment (a file `truncate_front` dropped, reused instead of a new one) |
//! | `vault_disk_bytes` | gauge | bytes the log's files occupy: its segments, the prepared spares and the dropped files waiting to be recycled |
//! | `vault_durable_lag_records` | gauge | `last_lsn − durable_lsn`: records appended but not yet durable |
//! | `vault_disk_budget_waits_total` | counter | appends that waited for the disk budget (`BudgetPolicy::Wait`) |
//!
//! The append path records nothing itself, so that it stays as fast as without the feature
//! (it adds the record's length to a byte count it already holds the lock for). The counts of
//! appends and bytes are published from the WAL's own counters, and the gauges are set, at
//! every flush, rotation, truncation and call to [`Wal::stats`](crate::Wal::stats): under
//! [`SyncPolicy::Manual`](crate::SyncPolicy::Manual) with no syncs, appends show up at the next
//! rotation or `stats()` call.

/// The label every metric carries: the I/O path, `"direct"` or `"mmap"`.
pub const IO_LABEL: &str = "io";

/// Counter: records appended.
pub const APPENDS: &str = "vault_appends_total";
/// Counter: payload bytes appended (the records' lengths, without framing).
pub const APPENDED_BYTES: &str = "vault_appended_bytes_total";
/// Counter: group-commit flushes that succeeded.
pub const FLUSHES: &str = "vault_flushes_total";
/// Histogram: records each flush made durable.
pub const FLUSH_RECORDS: &str = "vault_flush_records";
/// Histogram: duration of each flush (its syncs), in seconds.
pub const FLUSH_SECONDS: &str = "vault_flush_seconds";
/// Counter: rotations that had to wait for a segment (none was prepared, the record needed an
/// enlarged one, or the first segment of a new log).
pub const SEGMENT_WAITS: &str = "vault_segment_waits_total";
/// Counter: segment rotations.
pub const ROTATIONS: &str = "vault_rotations_total";
/// Counter: rotations into a recycled segment, a file `truncate_front` dropped that the rotation
/// worker reused instead of creating a new one (`Options::recycle_segments`).
pub const RECYCLED_SEGMENTS: &str = "vault_recycled_segments_total";
/// Gauge: bytes the log's files occupy (segments of the log by their capacity, plus the spares
/// the rotation worker has prepared and the dropped files it holds for recycling).
pub const DISK_BYTES: &str = "vault_disk_bytes";
/// Gauge: `last_lsn − durable_lsn`, records appended but not yet durable.
pub const DURABLE_LAG: &str = "vault_durable_lag_records";
/// Counter: appends that had to wait for the disk budget to free space
/// ([`crate::BudgetPolicy::Wait`]).
pub const DISK_BUDGET_WAITS: &str = "vault_disk_budget_waits_total";

/// Every metric name above, in the order of the table.
pub const ALL: [&str; 11] = [
    APPENDS,
    APPENDED_BYTES,
    FLUSHES,
    FLUSH_RECORDS,
    FLUSH_SECONDS,
    SEGMENT_WAITS,
    ROTATIONS,
    RECYCLED_SEGMENTS,
    DISK_BYTES,
    DURABLE_LAG,
    DISK_BUDGET_WAITS,
];

#[cfg(feature = "metrics")]
pub(crate) use recording::WalMetrics;

#[cfg(feature = "metrics")]
mod recording {
    use std::time::Duration;

    use metrics::{Counter, Gauge, Histogram, Unit};
    use vault_segment::IoPath;

    use super::{
        APPENDED_BYTES, APPENDS, DISK_BUDGET_WAITS, DISK_BYTES, DURABLE_LAG, FLUSHES,
        FLUSH_RECORDS, FLUSH_SECONDS, IO_LABEL, RECYCLED_SEGMENTS, ROTATIONS, SEGMENT_WAITS,
    };

    /// One WAL's metric handles, registered with the recorder installed at open.
    #[derive(Debug)]
    pub(crate) struct WalMetrics {
        appends: Counter,
        appended_bytes: Counter,
        flushes: Counter,
        flush_records: Histogram,
        flush_seconds: Histogram,
        segment_waits: Counter,
        rotations: Counter,
        recycled: Counter,
        disk_bytes: Gauge,
        durable_lag: Gauge,
        disk_budget_waits: Counter,
    }

    impl WalMetrics {
        /// Describes and registers every metric with the current recorder, labelled with `io`.
        pub(crate) fn register(io: IoPath) -> Self {
            describe();
            let io = io.name();
            let recycled = metrics::counter!(RECYCLED_SEGMENTS, IO_LABEL => io);
            recycled.increment(0);
            let disk_budget_waits = metrics::counter!(DISK_BUDGET_WAITS, IO_LABEL => io);
            disk_budget_waits.increment(0);
            let m = Self {
                appends: metrics::counter!(APPENDS, IO_LABEL => io),
                appended_bytes: metrics::counter!(APPENDED_BYTES, IO_LABEL => io),
                flushes: metrics::counter!(FLUSHES, IO_LABEL => io),
                flush_records: metrics::histogram!(FLUSH_RECORDS, IO_LABEL => io),
                flush_seconds: metrics::histogram!(FLUSH_SECONDS, IO_LABEL => io),
                segment_waits: metrics::counter!(SEGMENT_WAITS, IO_LABEL => io),
                rotations: metrics::counter!(ROTATIONS, IO_LABEL => io),
                recycled,
                disk_bytes: metrics::gauge!(DISK_BYTES, IO_LABEL => io),
                durable_lag: metrics::gauge!(DURABLE_LAG, IO_LABEL => io),
                disk_budget_waits,
            };
            // Counters appear in an export once touched; touch them all at 0.
            for c in [&m.appends, &m.appended_bytes, &m.flushes, &m.segment_waits] {
                c.increment(0);
            }
            m.rotations.increment(0);
            m
        }

        /// Appends and their payload bytes since the last call.
        pub(crate) fn appended(&self, records: u64, bytes: u64) {
            if records > 0 {
                self.appends.increment(records);
                self.appended_bytes.increment(bytes);
            }
        }

        /// A flush that made `records` durable in `took`.
        pub(crate) fn flushed(&self, records: u64, took: Duration) {
            self.flushes.increment(1);
            self.flush_records.record(records as f64);
            self.flush_seconds.record(took.as_secs_f64());
        }

        /// A rotation, into a recycled segment or not.
        pub(crate) fn rotated(&self, recycled: bool) {
            self.rotations.increment(1);
            if recycled {
                self.recycled.increment(1);
            }
        }

        /// `n` more waits for a segment.
        pub(crate) fn segment_waited(&self, n: u64) {
            if n > 0 {
                self.segment_waits.increment(n);
            }
        }

        /// Sets the bytes-on-disk gauge.
        pub(crate) fn disk_bytes(&self, bytes: u64) {
            self.disk_bytes.set(bytes as f64);
        }

        /// Sets the durable-lag gauge.
        pub(crate) fn durable_lag(&self, records: u64) {
            self.durable_lag.set(records as f64);
        }

        /// An append began to wait for the disk budget to free space.
        pub(crate) fn disk_budget_waited(&self) {
            self.disk_budget_waits.increment(1);
        }
    }

    /// Registers each metric's unit and description with the current recorder.
    fn describe() {
        metrics::describe_counter!(APPENDS, Unit::Count, "Records appended");
        metrics::describe_counter!(
            APPENDED_BYTES,
            Unit::Bytes,
            "Payload bytes appended (without framing)"
        );
        metrics::describe_counter!(FLUSHES, Unit::Count, "Group-commit flushes that succeeded");
        metrics::describe_histogram!(
            FLUSH_RECORDS,
            Unit::Count,
            "Records each flush made durable"
        );
        metrics::describe_histogram!(FLUSH_SECONDS, Unit::Seconds, "Duration of each flush");
        metrics::describe_counter!(
            SEGMENT_WAITS,
            Unit::Count,
            "Rotations that had to wait for a segment"
        );
        metrics::describe_counter!(ROTATIONS, Unit::Count, "Segment rotations");
        metrics::describe_counter!(
            RECYCLED_SEGMENTS,
            Unit::Count,
            "Rotations into a recycled segment (a dropped file reused instead of a new one)"
        );
        metrics::describe_gauge!(
            DISK_BYTES,
            Unit::Bytes,
            "Bytes the log's segment files, prepared spares and files pooled for recycling occupy"
        );
        metrics::describe_gauge!(
            DURABLE_LAG,
            Unit::Count,
            "Records appended but not yet durable (last_lsn - durable_lsn)"
        );
        metrics::describe_counter!(
            DISK_BUDGET_WAITS,
            Unit::Count,
            "Appends that waited for the disk budget"
        );
    }
}
