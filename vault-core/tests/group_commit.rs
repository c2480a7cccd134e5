//! Group commit under load on the real file system: many appenders under
//! `SyncPolicy::Always`, sharing flushes. Every append must return with its record durable, and
//! the run must end: a flush whose success is never applied to `durable_lsn` leaves every later
//! appender waiting or flushing forever. (Written for a pipelined group commit, since reverted,
//! that dropped the result of a flush finishing behind a slow older one; it hung about one round
//! in three of these.)

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use vault_core::{IoMode, SyncPolicy, Wal};

common::both_io_paths!(
/// Several rounds: a race between flushes needs the disk's latency to line up, which one round
/// of this size did about one time in three.
    eight_durable_appenders_finish_and_everything_they_got_is_durable
        in std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
);
fn eight_durable_appenders_finish_and_everything_they_got_is_durable(io: IoMode) {
    for _ in 0..6 {
        one_round(io);
    }
}

fn one_round(io: IoMode) {
    const THREADS: u64 = 8;
    const EACH: u64 = 300;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let wal = Wal::open(dir.path(), common::plain(1 << 20, SyncPolicy::Always, io)).unwrap();
    let wal = Arc::new(wal);
    let (done_tx, done_rx) = mpsc::channel();
    for t in 0..THREADS {
        let wal = Arc::clone(&wal);
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let mut max = 0;
            for i in 0..EACH {
                let lsn = wal.append(&[(t * EACH + i) as u8; 64]).unwrap();
                let durable = wal.durable_lsn();
                assert!(durable >= lsn, "append {lsn} returned at durable {durable}");
                max = max.max(lsn);
            }
            done.send(max).unwrap();
        });
    }
    let mut last = 0;
    for _ in 0..THREADS {
        let max = done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("durable appenders stopped making progress (a flush never applied?)");
        last = last.max(max);
    }
    assert_eq!(last, THREADS * EACH);
    assert_eq!(wal.durable_lsn(), THREADS * EACH);
    let stats = wal.stats();
    assert!(
        stats.flushes >= 1 && stats.flushes <= THREADS * EACH,
        "{stats:?}"
    );
}
