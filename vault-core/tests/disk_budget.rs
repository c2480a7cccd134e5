//! The disk budget (`Options::disk_budget`): appends at the bound wait for `truncate_front`
//! (`BudgetPolicy::Wait`, with a timeout) or fail at once (`Fail`); the async form is
//! `Wal::room`; nothing acknowledged is ever dropped; the files in the directory never pass
//! the bound; a reopen with a budget smaller than the log opens and refuses to grow until
//! truncated.
//!
//! Every test runs on both I/O paths: `IoMode::Auto` (direct I/O on a file system that takes
//! it, as the temp dir's ext4 here) and `IoMode::Mmap`.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_log, record};
use vault_core::{BudgetPolicy, Error, IoMode, Options, SyncPolicy, Wal};

const SEGMENT: u64 = 64 << 10;
const PATHS: [IoMode; 2] = [IoMode::Auto, IoMode::Mmap];

/// 64 KiB segments, one spare: the smallest budget is 4 segments (two for the log, one spare,
/// one for the copy `truncate_back` makes), so the log holds at most two segments.
fn opts(io: IoMode, sync: SyncPolicy, policy: BudgetPolicy) -> Options {
    let o = Options::default()
        .with_segment_size(SEGMENT)
        .with_spare_segments(1)
        .with_sync(sync)
        .with_io(io);
    let min = o.min_disk_budget();
    o.with_disk_budget(min, policy)
}

/// Bytes of every file in `dir` (segments, spares, `-pre` files), as `du` would count them.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len())
        .sum()
}

/// Appends `record(lsn)` until the budget refuses one; returns the last LSN appended. Checks
/// that the directory never holds more than the budget.
fn fill(wal: &Wal, budget: u64) -> u64 {
    fill_checking(wal, budget, true)
}

/// As [`fill`]; the directory's size is checked only if `check_dir`.
fn fill_checking(wal: &Wal, budget: u64, check_dir: bool) -> u64 {
    loop {
        let next = wal.last_lsn() + 1;
        match wal.append(&record(next)) {
            Ok(lsn) => assert_eq!(lsn, next),
            Err(Error::BudgetExhausted {
                log_bytes,
                needed,
                reserve,
                budget: b,
            }) => {
                assert_eq!(b, budget);
                assert!(log_bytes + needed + reserve > budget);
                assert_eq!(wal.last_lsn(), next - 1, "a refused append writes nothing");
                return next - 1;
            }
            Err(e) => panic!("append {next}: {e}"),
        }
        if check_dir {
            assert!(
                dir_bytes(wal.dir()) <= budget,
                "the directory passed the budget"
            );
        }
    }
}

#[test]
fn budget_below_the_minimum_is_refused_at_open() {
    for io in PATHS {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(io, SyncPolicy::Manual, BudgetPolicy::Fail);
        let min = o.min_disk_budget();
        assert_eq!(min, 4 * SEGMENT);
        let small = o.with_disk_budget(min - 1, BudgetPolicy::Fail);
        match Wal::open(dir.path(), small) {
            Err(Error::BudgetTooSmall { budget, needed }) => {
                assert_eq!((budget, needed), (min - 1, min));
            }
            other => panic!("{io:?}: expected BudgetTooSmall, got {other:?}"),
        }
    }
}

#[test]
fn append_fails_at_once_at_the_bound_and_succeeds_after_truncate_front() {
    for io in PATHS {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(io, SyncPolicy::Always, BudgetPolicy::Fail);
        let budget = o.disk_budget().unwrap();
        let wal = Wal::open(dir.path(), o).unwrap();
        let last = fill(&wal, budget);
        let stats = wal.stats();
        assert_eq!(stats.segments, 2, "{io:?}: the bound holds two segments");
        assert_eq!(stats.disk_budget, Some(budget));
        assert_eq!(stats.disk_bytes, 3 * SEGMENT, "two segments and the spare");
        assert_eq!(stats.budget_refusals, 1);
        // Refused again, still at once, still nothing written.
        assert!(matches!(
            wal.append(&record(last + 1)),
            Err(Error::BudgetExhausted { .. })
        ));
        assert_eq!(wal.last_lsn(), last);
        // The consumer is done with everything before `last`: the first segment goes.
        assert_eq!(wal.truncate_front(last).unwrap(), 1);
        assert_eq!(wal.append(&record(last + 1)).unwrap(), last + 1);
        let first = wal.first_lsn();
        assert_log(&wal, first, last + 1);
        wal.close().unwrap();
    }
}

#[test]
fn waiting_append_proceeds_once_truncate_front_frees_room() {
    for io in PATHS {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(
            io,
            SyncPolicy::Always,
            BudgetPolicy::Wait(Duration::from_secs(60)),
        );
        let budget = o.disk_budget().unwrap();
        let wal = Wal::open(dir.path(), o).unwrap();
        let wal = Arc::new(wal);
        // A producer that writes four segments' worth; the bound holds two.
        let total = 4 * SEGMENT / 200;
        let producer = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for lsn in 1..=total {
                    assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
                }
            })
        };
        // Wait until it blocks on the budget.
        let start = Instant::now();
        while wal.stats().budget_refusals == 0 {
            assert!(start.elapsed() < Duration::from_secs(60), "never blocked");
            std::thread::sleep(Duration::from_millis(5));
        }
        let blocked_at = wal.last_lsn();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            wal.last_lsn(),
            blocked_at,
            "{io:?}: it waits, appending nothing"
        );
        assert!(!producer.is_finished());
        assert!(dir_bytes(wal.dir()) <= budget);
        // Readers, syncs and truncations go on while it waits.
        assert_log(&wal, 1, blocked_at);
        wal.sync().unwrap();
        // Consume, then truncate behind the consumer: the producer goes on.
        let mut consumed = 0;
        while consumed < total {
            let first = wal.first_lsn();
            let last = wal.last_lsn();
            // The producer may append meanwhile: check what was there.
            let mut expect = first;
            for r in wal.iter_from(first).take_while(|r| r.lsn() <= last) {
                assert_eq!((r.lsn(), r.data()), (expect, &record(expect)[..]));
                expect += 1;
            }
            assert_eq!(expect, last + 1);
            consumed = last;
            wal.truncate_front(last).unwrap();
            assert!(
                dir_bytes(wal.dir()) <= budget,
                "the directory passed the budget"
            );
            if producer.is_finished() && wal.last_lsn() == total {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        producer.join().unwrap();
        assert_eq!(wal.last_lsn(), total);
        let first = wal.first_lsn();
        assert_log(&wal, first, total);
    }
}

#[test]
fn waiting_append_times_out_with_budget_exhausted() {
    for io in PATHS {
        let dir = tempfile::tempdir().unwrap();
        let timeout = Duration::from_millis(200);
        let o = opts(io, SyncPolicy::Manual, BudgetPolicy::Wait(timeout));
        let budget = o.disk_budget().unwrap();
        let wal = Wal::open(dir.path(), o).unwrap();
        let start = Instant::now();
        let last = fill(&wal, budget);
        // `fill` ends at the first refusal, which came after the whole wait.
        assert!(start.elapsed() >= timeout);
        assert_eq!(wal.stats().budget_refusals, 1);
        let first = wal.first_lsn();
        assert_log(&wal, first, last);
        // A second append behind no one waits its own timeout.
        let again = Instant::now();
        assert!(matches!(
            wal.append(&record(last + 1)),
            Err(Error::BudgetExhausted { .. })
        ));
        assert!(again.elapsed() >= timeout);
        wal.close().unwrap();
    }
}

#[test]
fn acknowledged_records_are_never_dropped_to_make_room() {
    for io in PATHS {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(io, SyncPolicy::Always, BudgetPolicy::Fail);
        let budget = o.disk_budget().unwrap();
        let wal = Wal::open(dir.path(), o.clone()).unwrap();
        // Two rounds at the bound, truncating only what was consumed (up to `consumed`).
        let last = fill(&wal, budget);
        let consumed = last / 2;
        wal.truncate_front(consumed).unwrap();
        let first = wal.first_lsn();
        assert!(first <= consumed, "only consumed records may go");
        let last = fill(&wal, budget);
        // Every acknowledged (durable, under `Always`) record from `first` on is still there.
        assert_eq!(wal.durable_lsn(), last);
        assert_eq!(wal.first_lsn(), first, "refusals dropped nothing");
        assert_log(&wal, first, last);
        drop(wal);
        let wal = Wal::open(dir.path(), o).unwrap();
        let report = wal.recovery().clone();
        assert_eq!((report.first_lsn, report.next_lsn), (first, last + 1));
        assert_log(&wal, first, last);
        assert!(dir_bytes(dir.path()) <= budget);
        wal.close().unwrap();
    }
}

#[test]
fn reopen_with_a_budget_smaller_than_the_log_opens_and_grows_only_after_truncation() {
    for io in PATHS {
        let dir = tempfile::tempdir().unwrap();
        let unbounded = Options::default()
            .with_segment_size(SEGMENT)
            .with_spare_segments(1)
            .with_sync(SyncPolicy::Manual)
            .with_io(io);
        let wal = Wal::open(dir.path(), unbounded).unwrap();
        let total = 6 * SEGMENT / 200;
        for lsn in 1..=total {
            wal.append(&record(lsn)).unwrap();
        }
        wal.close().unwrap();
        let o = opts(io, SyncPolicy::Manual, BudgetPolicy::Fail);
        let budget = o.disk_budget().unwrap();
        // The log is past the bound: it opens, every record readable, and takes no new
        // segment until truncated.
        let wal = Wal::open(dir.path(), o).unwrap();
        let report = wal.recovery().clone();
        assert_eq!(report.next_lsn, total + 1);
        assert!(report.segments > 3);
        assert!(wal.stats().disk_bytes > budget);
        assert_log(&wal, 1, total);
        let last = fill_checking(&wal, budget, false);
        assert!(last >= total);
        assert_log(&wal, 1, last);
        // Truncate down to the tail segment: room again.
        wal.truncate_front(last).unwrap();
        assert!(wal.stats().disk_bytes <= budget);
        let lsn = wal.append(&vec![1u8; 30_000]).unwrap();
        assert_eq!(lsn, last + 1);
        let more = fill(&wal, budget);
        let first = wal.first_lsn();
        assert!(more > lsn && first <= last);
        wal.close().unwrap();
    }
}

#[test]
fn truncate_back_works_at_the_bound() {
    for io in PATHS {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(io, SyncPolicy::Always, BudgetPolicy::Fail);
        let budget = o.disk_budget().unwrap();
        let wal = Wal::open(dir.path(), o).unwrap();
        let last = fill(&wal, budget);
        // Cut inside the tail segment: a copy of it is written beside it (the reserve).
        wal.truncate_back(last - 3).unwrap();
        assert!(dir_bytes(dir.path()) <= budget);
        assert_eq!(wal.last_lsn(), last - 4);
        let last = fill(&wal, budget);
        assert_log(&wal, 1, last);
        wal.close().unwrap();
    }
}

#[test]
fn room_future_resolves_after_truncate_front_under_tokio() {
    for io in PATHS {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(io, SyncPolicy::Manual, BudgetPolicy::Fail);
        let budget = o.disk_budget().unwrap();
        let wal = Wal::open(dir.path(), o).unwrap();
        let wal = Arc::new(wal);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let total = 5 * SEGMENT / 200;
        rt.block_on(async {
            // The producer: appends without blocking the runtime; at the bound it awaits room,
            // and it awaits durability of what it appended.
            let producer = {
                let wal = Arc::clone(&wal);
                tokio::spawn(async move {
                    let mut waits = 0;
                    let mut lsn = 1;
                    while lsn <= total {
                        match wal.append(&record(lsn)) {
                            Ok(got) => {
                                assert_eq!(got, lsn);
                                lsn += 1;
                            }
                            Err(Error::BudgetExhausted { .. }) => {
                                wal.durable(lsn - 1).await.unwrap();
                                wal.room().await.unwrap();
                                waits += 1;
                            }
                            Err(e) => panic!("append {lsn}: {e}"),
                        }
                    }
                    wal.durable(total).await.unwrap();
                    waits
                })
            };
            // The consumer: follows the log and truncates behind what it read.
            let consumer = {
                let wal = Arc::clone(&wal);
                tokio::task::spawn_blocking(move || {
                    // Start behind: let the producer reach the bound first.
                    while wal.stats().budget_refusals == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    let mut follower = wal.follow(1);
                    let mut next = 1;
                    while next <= total {
                        if let Some(r) = follower.next_timeout(Duration::from_secs(30)).unwrap() {
                            assert_eq!((r.lsn(), r.data()), (next, &record(next)[..]));
                            next += 1;
                            if next % 64 == 0 {
                                wal.truncate_front(next).unwrap();
                                assert!(dir_bytes(wal.dir()) <= budget);
                            }
                        }
                    }
                })
            };
            let waits = producer.await.unwrap();
            consumer.await.unwrap();
            assert!(waits > 0, "{io:?}: the producer never reached the bound");
        });
        assert_eq!(wal.last_lsn(), total);
        // A pending `room` resolves with `Closed` at close.
        let _ = fill(&wal, budget);
        let room = wal.room();
        Arc::into_inner(wal).unwrap().close().unwrap();
        assert!(matches!(
            futures::executor::block_on(room),
            Err(Error::Closed)
        ));
    }
}

#[test]
fn without_a_budget_room_is_ready_and_stats_count_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .with_segment_size(SEGMENT)
        .with_spare_segments(2)
        .with_sync(SyncPolicy::Manual);
    let wal = Wal::open(dir.path(), o).unwrap();
    for lsn in 1..=3 * SEGMENT / 200 {
        wal.append(&record(lsn)).unwrap();
    }
    futures::executor::block_on(wal.room()).unwrap();
    let s = wal.stats();
    assert_eq!(s.disk_budget, None);
    assert_eq!(s.disk_bytes, (s.segments as u64 + 2) * SEGMENT);
    wal.close().unwrap();
}

#[test]
fn appends_queue_behind_a_waiting_batch_which_keeps_contiguous_lsns() {
    for io in PATHS {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(
            io,
            SyncPolicy::Manual,
            BudgetPolicy::Wait(Duration::from_secs(60)),
        );
        // Fill up to the bound (failing rather than waiting there), then reopen to wait.
        let fail = o
            .clone()
            .with_disk_budget(o.disk_budget().unwrap(), BudgetPolicy::Fail);
        let wal = Wal::open(dir.path(), fail).unwrap();
        fill(&wal, o.disk_budget().unwrap());
        wal.close().unwrap();
        let wal = Wal::open(dir.path(), o).unwrap();
        let wal = Arc::new(wal);
        // Small records first, which may fit the tail, then large ones, which wait for room.
        // 50 KiB in all: one new segment holds what does not fit the tail.
        let batch: Vec<Vec<u8>> = (0..50)
            .map(|i| vec![i as u8; if i < 5 { 10 } else { 1000 }])
            .collect();
        let batcher = {
            let (wal, batch) = (Arc::clone(&wal), batch.clone());
            std::thread::spawn(move || wal.append_batch(&batch).unwrap())
        };
        let start = Instant::now();
        while wal.stats().budget_refusals == 0 {
            assert!(start.elapsed() < Duration::from_secs(60), "never blocked");
            std::thread::sleep(Duration::from_millis(5));
        }
        // A lone append now queues behind the batch, though it would fit the tail.
        let single = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || wal.append(b"after the batch").unwrap())
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!single.is_finished(), "{io:?}: it jumped the queue");
        let blocked_at = wal.last_lsn();
        wal.truncate_front(blocked_at).unwrap();
        let first = batcher.join().unwrap();
        let after = single.join().unwrap();
        assert_eq!(
            after,
            first + 50,
            "the lone append comes after the whole batch"
        );
        for (i, want) in batch.iter().enumerate() {
            assert_eq!(wal.read(first + i as u64).unwrap().data(), &want[..]);
        }
        assert_eq!(wal.read(after).unwrap().data(), b"after the batch");
    }
}
