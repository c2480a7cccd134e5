//! The hot path allocates nothing: `append`, `must_write` and an awaited append in steady
//! state, counted.
//!
//! allocation-counter replaces this binary's global allocator and counts per thread.

mod common;

use vault_core::{IoMode, Options, Pool, PoolConfig, SyncPolicy, Wal};

common::both_io_paths!(append_and_must_write_allocate_nothing_in_steady_state);
fn append_and_must_write_allocate_nothing_in_steady_state(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), common::plain(8 << 20, SyncPolicy::Manual, io)).unwrap();
    let pool = Pool::new(PoolConfig::default()).unwrap();
    let rec = [7u8; 256];
    for _ in 0..100 {
        wal.append(&rec).unwrap();
        let mut b = pool.get();
        b.extend_from_slice(&rec);
        wal.must_write(b).unwrap();
    }
    wal.sync().unwrap();
    let info = allocation_counter::measure(|| {
        for i in 0..10_000 {
            wal.append(&rec).unwrap();
            let mut b = pool.get();
            b.extend_from_slice(&rec);
            wal.must_write(b).unwrap();
            if i % 1000 == 0 {
                wal.sync().unwrap();
            }
        }
    });
    assert_eq!(
        info.count_total, 0,
        "allocations on the append path: {info:?}"
    );
    assert_eq!(wal.last_lsn(), 20_200);
}

common::both_io_paths!(large_appends_and_batches_allocate_nothing_in_steady_state);
/// Records longer than 512 bytes are copied and checksummed chunk by chunk under a free append
/// lock (one at a time, and in a batch): still nothing allocated.
fn large_appends_and_batches_allocate_nothing_in_steady_state(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), common::plain(64 << 20, SyncPolicy::Manual, io)).unwrap();
    let rec = vec![9u8; 64 << 10];
    let batch = [&rec[..4097], &rec[..513], &rec[..]];
    for _ in 0..10 {
        wal.append(&rec).unwrap();
        wal.append_batch(&batch).unwrap();
    }
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            wal.append(&rec).unwrap();
            wal.append_batch(&batch).unwrap();
        }
    });
    assert_eq!(
        info.count_total, 0,
        "allocations on the append path: {info:?}"
    );
    assert_eq!(wal.last_lsn(), 440);
    assert_eq!(
        wal.stats().rotations,
        0,
        "the test is about appends, not rotation"
    );
}

common::both_io_paths!(durable_appends_allocate_nothing_in_steady_state);
fn durable_appends_allocate_nothing_in_steady_state(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), common::plain(8 << 20, SyncPolicy::Always, io)).unwrap();
    for _ in 0..10 {
        wal.append(b"warm").unwrap();
    }
    let info = allocation_counter::measure(|| {
        for _ in 0..200 {
            wal.append(b"durable record").unwrap();
        }
    });
    assert_eq!(
        info.count_total, 0,
        "allocations on the durable path: {info:?}"
    );
}

common::both_io_paths!(appends_allocate_nothing_while_a_follower_waits_for_them);
fn appends_allocate_nothing_while_a_follower_waits_for_them(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), common::plain(8 << 20, SyncPolicy::Manual, io)).unwrap();
    let wal = std::sync::Arc::new(wal);
    wal.append(b"warm").unwrap();
    // The follower reads every record as it comes, waiting at the end in between: appends
    // find it waiting (and wake it) much of the time.
    let follower = {
        let mut f = wal.follow(1);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while n < 5001 {
                if f.next_timeout(std::time::Duration::from_secs(20))
                    .unwrap()
                    .is_some()
                {
                    n += 1;
                }
            }
        })
    };
    let info = allocation_counter::measure(|| {
        for _ in 0..5000 {
            wal.append(b"followed record").unwrap();
        }
    });
    follower.join().unwrap();
    assert_eq!(
        info.count_total, 0,
        "allocations on the append path with a follower: {info:?}"
    );
}

/// An append awaited with `Wal::durable` under `Manual` (the future arms a reused waker slot,
/// the committer flushes and wakes it): nothing allocated on the awaiting thread. The committer
/// thread is not counted here (allocation-counter counts per thread); what it does per pass
/// reuses its buffers (see `wal/durable.rs`).
#[test]
fn awaited_appends_allocate_nothing_in_steady_state() {
    use futures::executor::block_on;

    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        Options::default()
            .with_segment_size(8 << 20)
            .with_sync(SyncPolicy::Manual),
    )
    .unwrap();
    let rec = [5u8; 256];
    // Warm-up: starts the committer, sizes the slot table, sets up block_on's thread state.
    for _ in 0..100 {
        let lsn = wal.append(&rec).unwrap();
        block_on(wal.durable(lsn)).unwrap();
    }
    let flushes = wal.stats().flushes;
    let info = allocation_counter::measure(|| {
        for _ in 0..1000 {
            let lsn = wal.append(&rec).unwrap();
            assert!(block_on(wal.durable(lsn)).unwrap() >= lsn);
        }
    });
    assert_eq!(
        info.count_total, 0,
        "allocations per awaited append: {info:?}"
    );
    assert_eq!(wal.durable_lsn(), 1100);
    assert_eq!(
        wal.stats().flushes,
        flushes + 1000,
        "each future waited for a flush of its own (the path under test)"
    );
}
