//! The durability API: lost wake-ups of `wait_durable` with a timeout.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::record;
use vault_core::{IoMode, SyncPolicy, Wal};
use vault_segment::sim::SimStorage;

fn open(io: IoMode) -> Arc<Wal> {
    let opts = common::on_sim(&SimStorage::new(), 4096, SyncPolicy::Manual, io);
    Arc::new(Wal::open(common::sim_dir(), opts).unwrap())
}

common::both_io_paths!(sim wait_durable_with_a_timeout_wakes_a_committer_waiting_for_an_append);
/// The committer waits for an append (on `Tail`) while its only callback wants an LSN not
/// appended yet. A `wait_durable(lsn, timeout)` for an appended LSN records its wish and
/// notifies the committer's condition variable, where the committer is not waiting: nothing
/// wakes it, so no flush runs and the caller times out although one flush would do.
fn wait_durable_with_a_timeout_wakes_a_committer_waiting_for_an_append(io: IoMode) {
    let wal = open(io);
    wal.append(&record(1)).unwrap();
    // A callback for an LSN far ahead: the committer waits on `Tail` for its append.
    wal.on_durable(100, |_| {});
    thread::sleep(Duration::from_millis(100));
    wal.append(&record(2)).unwrap();
    thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let got = wal.wait_durable(2, Some(Duration::from_secs(2))).unwrap();
    assert!(
        got,
        "LSN 2 is appended; wait_durable(2, 2 s) timed out after {:?} (durable_lsn {})",
        t.elapsed(),
        wal.durable_lsn()
    );
}

common::both_io_paths!(sim wait_durable_with_a_timeout_returns_soon_after_another_flush_covers_it);
/// A `wait_durable(lsn, timeout)` caller sleeps on the committer's condition variable; when
/// another thread's flush makes `lsn` durable while the committer is busy running a callback,
/// the committer later finds nothing to do and goes back to sleep without waking the caller,
/// which then sleeps until its timeout although `lsn` was durable long before.
fn wait_durable_with_a_timeout_returns_soon_after_another_flush_covers_it(io: IoMode) {
    let wal = open(io);
    wal.append(&record(1)).unwrap();
    // Keep the committer busy in a callback for a while.
    wal.on_durable(1, |_| thread::sleep(Duration::from_millis(600)));
    thread::sleep(Duration::from_millis(100));
    wal.append(&record(2)).unwrap();
    let syncer = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            wal.sync().unwrap();
            Instant::now()
        })
    };
    let t = Instant::now();
    assert!(wal.wait_durable(2, Some(Duration::from_secs(5))).unwrap());
    let returned = Instant::now();
    let synced = syncer.join().unwrap();
    let late = returned.saturating_duration_since(synced);
    assert!(
        late < Duration::from_secs(2),
        "wait_durable returned {late:?} after the sync that made LSN 2 durable (waited {:?})",
        returned - t
    );
}
