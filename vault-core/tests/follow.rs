//! Tail-following readers (`Wal::follow`): order across rotations with concurrent appenders,
//! wake-up on append, timeouts, close and `truncate_front`.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{record, small};
use vault_core::{Error, IoMode, SyncPolicy, Wal};

const LONG: Duration = Duration::from_secs(20);

common::both_io_paths!(
    a_follower_sees_every_record_in_order_across_rotations_with_concurrent_appenders
);
fn a_follower_sees_every_record_in_order_across_rotations_with_concurrent_appenders(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(8192, SyncPolicy::Manual, io)).unwrap();
    let wal = Arc::new(wal);
    const THREADS: u64 = 3;
    const EACH: u64 = 1500;
    let start = Arc::new(Barrier::new(THREADS as usize + 1));
    let follower = {
        let mut f = wal.follow(1);
        let start = Arc::clone(&start);
        thread::spawn(move || {
            start.wait();
            let mut got = Vec::new();
            while (got.len() as u64) < THREADS * EACH {
                let r = f
                    .next_timeout(LONG)
                    .unwrap()
                    .expect("an append within 20 s");
                got.push((r.lsn(), r.to_vec()));
            }
            got
        })
    };
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for i in 0..EACH {
                    // Contents name the writer and its sequence number; LSNs are assigned
                    // by the WAL.
                    let mut rec = record(t * EACH + i);
                    rec.extend_from_slice(&(t * EACH + i).to_le_bytes());
                    if i % 100 == 0 {
                        wal.append_batch(&[rec.clone(), rec]).unwrap();
                    } else {
                        wal.append(&rec).unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let got = follower.join().unwrap();
    assert!(wal.stats().rotations > 20, "{:?}", wal.stats());
    // In LSN order without a gap, each record exactly as a fresh read returns it.
    for (i, (lsn, data)) in got.iter().enumerate() {
        assert_eq!(*lsn, i as u64 + 1);
        assert_eq!(&wal.read(*lsn).unwrap().to_vec(), data);
    }
    // And everything was seen: the batches added 15 × 3 records beyond THREADS × EACH, which
    // the follower reads next.
    let mut f = wal.follow(got.len() as u64 + 1);
    let mut rest = 0;
    while f.try_next().unwrap().is_some() {
        rest += 1;
    }
    assert_eq!(got.len() as u64 + rest, wal.last_lsn());
}

common::both_io_paths!(a_waiting_follower_wakes_soon_after_an_append);
fn a_waiting_follower_wakes_soon_after_an_append(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(1 << 20, SyncPolicy::Manual, io)).unwrap();
    let wal = Arc::new(wal);
    let mut latencies = Vec::new();
    for round in 1..=20u64 {
        let mut f = wal.follow(round);
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = thread::spawn(move || {
            tx.send(()).unwrap();
            let r = f.next_timeout(LONG).unwrap().expect("woken by the append");
            (r.lsn(), Instant::now())
        });
        rx.recv().unwrap();
        thread::sleep(Duration::from_millis(5)); // let it block
        let appended = Instant::now();
        assert_eq!(wal.append(&record(round)).unwrap(), round);
        let (lsn, woke) = waiter.join().unwrap();
        assert_eq!(lsn, round);
        latencies.push(woke.duration_since(appended));
    }
    latencies.sort();
    // Measured, not asserted tightly: the wake-up is a condvar notify, not a poll.
    eprintln!(
        "follower wake-up after append: median {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies.last().unwrap()
    );
    // The outcome asserted is that each follower was woken by its append (`expect` above): a
    // lost wake-up leaves it waiting `LONG` and returning `None`.
}

common::both_io_paths!(next_timeout_returns_none_when_nothing_is_appended);
fn next_timeout_returns_none_when_nothing_is_appended(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(1 << 20, SyncPolicy::Manual, io)).unwrap();
    wal.append(b"one").unwrap();
    let mut f = wal.follow(1);
    assert_eq!(f.next_timeout(LONG).unwrap().unwrap().data(), b"one");
    assert_eq!(f.position(), 2);
    let t = Instant::now();
    assert!(f.next_timeout(Duration::from_millis(50)).unwrap().is_none());
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(f.try_next().unwrap().is_none());
    assert_eq!(f.position(), 2);
    // A follower positioned past the end waits for that LSN.
    let mut ahead = wal.follow(3);
    wal.append(b"two").unwrap();
    assert!(ahead.try_next().unwrap().is_none());
    wal.append(b"three").unwrap();
    assert_eq!(ahead.try_next().unwrap().unwrap().lsn(), 3);
}

common::both_io_paths!(close_wakes_followers_which_drain_then_get_closed);
fn close_wakes_followers_which_drain_then_get_closed(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(4096, SyncPolicy::Manual, io)).unwrap();
    for lsn in 1..=50 {
        wal.append(&record(lsn)).unwrap();
    }
    // One waits at the end; another has 50 records still to read across several segments.
    let mut waiting = wal.follow(51);
    let mut behind = wal.follow(1);
    let waiter = thread::spawn(move || {
        let t = Instant::now();
        let r = waiting.next_timeout(LONG);
        (r.map(|o| o.map(|r| r.lsn())), t.elapsed())
    });
    thread::sleep(Duration::from_millis(20));
    wal.close().unwrap();
    let (r, waited) = waiter.join().unwrap();
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    assert!(waited < LONG / 2, "close did not wake the follower");
    // The directory lock is released although followers still exist.
    let again = Wal::open(dir.path(), small(4096, SyncPolicy::Manual, io))
        .expect("close released the directory lock");
    for lsn in 1..=50 {
        let r = behind.next_timeout(LONG).unwrap().unwrap();
        assert_eq!((r.lsn(), r.to_vec()), (lsn, record(lsn)));
    }
    assert!(matches!(behind.next_timeout(LONG), Err(Error::Closed)));
    assert!(matches!(behind.try_next(), Err(Error::Closed)));
    drop(again);
}

common::both_io_paths!(dropping_the_wal_wakes_a_waiting_follower);
fn dropping_the_wal_wakes_a_waiting_follower(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(1 << 20, SyncPolicy::Manual, io)).unwrap();
    let mut f = wal.follow(1);
    let waiter = thread::spawn(move || f.next_timeout(LONG).map(|o| o.is_some()));
    thread::sleep(Duration::from_millis(20));
    drop(wal);
    assert!(matches!(waiter.join().unwrap(), Err(Error::Closed)));
}

common::both_io_paths!(truncate_front_past_a_follower_gives_truncated);
fn truncate_front_past_a_follower_gives_truncated(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(4096, SyncPolicy::Manual, io)).unwrap();
    for lsn in 1..=100 {
        wal.append(&record(lsn)).unwrap();
    }
    let mut slow = wal.follow(1);
    assert_eq!(slow.try_next().unwrap().unwrap().lsn(), 1);
    let mut at_end = wal.follow(101);
    // A follower waiting at the end is woken by the truncation, and is not affected by it.
    let waiter = thread::spawn(move || {
        let r = at_end.next_timeout(LONG).map(|o| o.map(|r| r.lsn()));
        (r, at_end)
    });
    thread::sleep(Duration::from_millis(20));
    let removed = wal.truncate_front(60).unwrap();
    assert!(removed > 0);
    let first = wal.first_lsn();
    assert!(first > 2 && first <= 60, "first {first}");
    match slow.try_next() {
        Err(Error::Truncated {
            lsn,
            first_lsn,
            next_lsn,
        }) => assert_eq!((lsn, first_lsn, next_lsn), (2, first, 101)),
        other => panic!("expected Truncated, got {other:?}"),
    }
    // It stays so; `next_timeout` says the same without waiting.
    assert!(matches!(
        slow.next_timeout(LONG),
        Err(Error::Truncated { lsn: 2, .. })
    ));
    // A follower created before the first LSN fails the same way.
    assert!(matches!(
        wal.follow(1).try_next(),
        Err(Error::Truncated { lsn: 1, .. })
    ));
    wal.append(&record(101)).unwrap();
    let (r, _at_end) = waiter.join().unwrap();
    assert_eq!(r.unwrap(), Some(101));
    // A follower at a kept position reads on.
    let mut kept = wal.follow(first);
    assert_eq!(kept.try_next().unwrap().unwrap().lsn(), first);
}

common::both_io_paths!(a_follower_reads_records_larger_than_a_segment);
fn a_follower_reads_records_larger_than_a_segment(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(4096, SyncPolicy::Manual, io)).unwrap();
    let mut f = wal.follow(1);
    let big = vec![7u8; 20_000];
    let w = thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(f.next_timeout(LONG).unwrap().unwrap().to_vec());
        }
        got
    });
    wal.append(b"small").unwrap();
    wal.append(&big).unwrap();
    wal.append(b"after").unwrap();
    assert_eq!(
        w.join().unwrap(),
        vec![b"small".to_vec(), big, b"after".to_vec()]
    );
}
