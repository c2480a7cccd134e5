//! The `tracing` feature: the events of open and recovery, truncations and poisoning, captured
//! by a small test layer.

mod common;

use std::collections::HashMap;
use std::fmt::Debug;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use common::{record, small};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use vault_core::{inspect, IoMode, SyncPolicy, Wal};

/// One captured event: its level and fields (`message` included), as text.
#[derive(Debug, Clone)]
struct Captured {
    level: tracing::Level,
    fields: HashMap<String, String>,
}

impl Captured {
    fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }

    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("event {:?} has no field {name}", self.message()))
    }
}

/// Records every event it sees.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    fn events(&self) -> Vec<Captured> {
        self.0.lock().unwrap().clone()
    }

    fn find(&self, message: &str) -> Captured {
        let events = self.events();
        events
            .iter()
            .find(|e| e.message() == message)
            .cloned()
            .unwrap_or_else(|| panic!("no event {message:?} among {events:#?}"))
    }

    /// Runs `f` with this layer as the thread's subscriber.
    fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        let subscriber = tracing_subscriber::registry().with(self.clone());
        tracing::subscriber::with_default(subscriber, f)
    }
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            fields,
        });
    }
}

#[test]
fn recovery_event_reports_the_torn_tail_it_cut_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(64 * 1024, SyncPolicy::Manual, IoMode::Mmap);
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    for lsn in 1..=50 {
        wal.append(&record(lsn)).unwrap();
    }
    wal.close().unwrap();
    // Bytes past the end of the log, in the last segment: what a write torn by a crash leaves.
    let ins = inspect(dir.path()).unwrap();
    let last = ins.records_from(50).next().unwrap();
    let file = last.segment().path().to_path_buf();
    let garbage_at = (last.offset() + last.data().len() + 4096) as u64;
    drop((last, ins));
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.write_all_at(&[0xEE; 16], garbage_at).unwrap();
    drop(f);

    let capture = Capture::default();
    let wal = capture.during(|| Wal::open(dir.path(), opts.clone()).unwrap());
    let report = wal.recovery().clone();
    let torn = report
        .torn_tail
        .clone()
        .expect("the report has a torn tail");

    let cut = capture.find("recovery cut a torn tail");
    assert_eq!(cut.level, tracing::Level::WARN);
    assert_eq!(cut.field("file"), file.display().to_string());
    assert_eq!(cut.field("offset"), torn.offset.to_string());
    assert_eq!(cut.field("bytes_dropped"), torn.bytes_dropped.to_string());
    assert!(torn.bytes_dropped > 0);
    let recovered = capture.find("recovered");
    assert_eq!(recovered.field("torn_tail"), "true");
    assert_eq!(recovered.field("records"), "50");
    assert_eq!(recovered.field("next_lsn"), "51");
    assert_eq!(recovered.field("io_path"), "mmap");
    let chosen = capture.find("I/O path chosen");
    assert_eq!(chosen.field("io"), "mmap");
    assert_eq!(chosen.field("requested"), "Mmap");
    wal.close().unwrap();

    // A clean reopen reports no torn tail.
    let capture = Capture::default();
    let wal = capture.during(|| Wal::open(dir.path(), opts).unwrap());
    let report = wal.recovery().clone();
    assert_eq!(report.torn_tail, None);
    assert_eq!(capture.find("recovered").field("torn_tail"), "false");
    assert!(capture
        .events()
        .iter()
        .all(|e| e.message() != "recovery cut a torn tail"));
    wal.close().unwrap();
}

#[test]
fn truncations_are_traced_with_their_positions() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        small(64 * 1024, SyncPolicy::Manual, IoMode::Auto),
    )
    .unwrap();
    for lsn in 1..=2000 {
        wal.append(&record(lsn)).unwrap();
    }
    let capture = Capture::default();
    capture.during(|| {
        wal.truncate_back(1500).unwrap();
        wal.truncate_front(1000).unwrap();
        wal.reset(5000).unwrap();
    });
    let back = capture.find("truncate_back");
    assert_eq!((back.field("lsn"), back.field("changed")), ("1500", "true"));
    let front = capture.find("truncate_front");
    assert_eq!(front.field("lsn"), "1000");
    assert_ne!(front.field("removed"), "0", "whole segments before 1000");
    assert_eq!(capture.find("reset").field("next_lsn"), "5000");
    wal.close().unwrap();
}

#[test]
fn a_failed_sync_is_traced_as_poisoning_with_its_cause() {
    use vault_segment::sim::{FaultError, OpKind, SimStorage};
    let sim = SimStorage::new();
    let opts = small(64 * 1024, SyncPolicy::Manual, IoMode::Auto)
        .with_storage(Arc::new(sim.clone()) as Arc<dyn vault_core::Storage>);
    let wal = Wal::open("/wal", opts).unwrap();
    wal.append(b"lost").unwrap();
    // Every sync from now on fails (the rotation worker's syncs of spares too, which may run
    // at any moment, so a single fault could land on one of them instead).
    sim.fail_from(OpKind::Sync, sim.calls(OpKind::Sync) + 1, FaultError::Io);
    let capture = Capture::default();
    let failed = capture.during(|| wal.sync());
    assert!(
        matches!(failed, Err(vault_core::Error::Poisoned { .. })),
        "{failed:?}"
    );
    let poisoned = capture.find("WAL poisoned: a sync failed");
    assert_eq!(poisoned.level, tracing::Level::ERROR);
    assert!(!poisoned.field("cause").is_empty());
    assert_eq!(poisoned.field("durable_lsn"), "0");
    // Reported once, not at every later failure.
    let _ = capture.during(|| wal.sync());
    let n = capture
        .events()
        .iter()
        .filter(|e| e.message().starts_with("WAL poisoned"))
        .count();
    assert_eq!(n, 1);
}

#[test]
fn a_rotation_that_waits_for_a_segment_is_traced_with_its_duration() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        small(64 * 1024, SyncPolicy::Manual, IoMode::Auto),
    )
    .unwrap();
    wal.append(b"first").unwrap();
    let waits = wal.stats().segment_waits;
    let capture = Capture::default();
    // Larger than a segment: the rotation must wait for an enlarged one, whatever is ready.
    capture.during(|| wal.append(&vec![3u8; 100 * 1024]).unwrap());
    assert!(wal.stats().segment_waits > waits);
    let waited = capture.find("rotation waited for a segment");
    assert_eq!(waited.level, tracing::Level::DEBUG);
    assert!(waited.field("waited_us").parse::<u64>().is_ok());
    assert!(waited.field("capacity").parse::<u64>().unwrap() > 100 * 1024);
    wal.close().unwrap();
}
