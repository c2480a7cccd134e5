//! Life cycle of pooled buffers: reuse, release by drop, limits, detaching,
//! concurrent use, and a property test of the pool's invariants.

use std::io::Write;
use std::thread;

use proptest::prelude::*;
use vault_buffer::{Error, Pool, PoolConfig, PoolStats, PooledBuf};

fn pool(max_buffers: usize, initial_capacity: usize, max_capacity: usize) -> Pool {
    Pool::new(PoolConfig {
        max_buffers,
        initial_capacity,
        max_capacity,
    })
    .expect("valid config")
}

#[test]
fn released_buffer_is_reused_empty_with_the_capacity_it_grew_to() {
    let pool = pool(4, 16, 4096);
    let mut buf = pool.get();
    buf.extend_from_slice(&[7; 1000]);
    let grown = buf.capacity();
    let addr = buf.as_ptr();
    assert!(grown >= 1000);
    buf.must_release();

    let again = pool.get();
    assert_eq!(again.len(), 0);
    assert_eq!(again.capacity(), grown);
    assert_eq!(again.as_ptr(), addr, "a hit hands out the same allocation");
    let stats = pool.stats();
    assert_eq!((stats.gets, stats.hits, stats.misses), (2, 1, 1));
    assert_eq!(stats.released, 1);
}

#[test]
fn fresh_buffer_is_empty_with_initial_capacity() {
    let pool = pool(4, 256, 4096);
    let buf = pool.get();
    assert!(buf.is_empty());
    assert!(buf.capacity() >= 256);
    assert_eq!(pool.stats().misses, 1);
}

#[test]
fn dropping_a_buffer_returns_it_to_the_pool() {
    let pool = pool(4, 16, 4096);
    {
        let mut buf = pool.get();
        buf.push(1);
    }
    assert_eq!(pool.idle(), 1);
    assert_eq!(pool.stats().released, 1);
    assert_eq!(pool.stats().outstanding, 0);

    let again = pool.get();
    assert!(again.is_empty());
    assert_eq!(pool.stats().hits, 1);
}

#[test]
fn outstanding_counts_buffers_lent_and_not_yet_returned() {
    let pool = pool(8, 16, 4096);
    let a = pool.get();
    let b = pool.get();
    let c = pool.get();
    assert_eq!(pool.stats().outstanding, 3);
    a.must_release();
    assert_eq!(pool.stats().outstanding, 2);
    drop(b);
    assert_eq!(pool.stats().outstanding, 1);
    let _bytes = c.into_vec();
    assert_eq!(pool.stats().outstanding, 0);
}

#[test]
fn idle_never_exceeds_max_buffers_even_after_releasing_ten_times_as_many() {
    let max_buffers = 5;
    let pool = pool(max_buffers, 16, 4096);
    let bufs: Vec<PooledBuf> = (0..10 * max_buffers).map(|_| pool.get()).collect();
    for buf in bufs {
        buf.must_release();
        assert!(pool.idle() <= max_buffers);
    }
    assert_eq!(pool.idle(), max_buffers);
    let stats = pool.stats();
    assert_eq!(stats.released, max_buffers as u64);
    assert_eq!(stats.dropped, 9 * max_buffers as u64);
    assert_eq!(stats.outstanding, 0);
}

#[test]
fn buffer_grown_beyond_max_capacity_is_dropped_not_pooled() {
    let pool = pool(4, 16, 128);
    let mut buf = pool.get();
    buf.extend_from_slice(&[0; 129]);
    assert!(buf.capacity() > 128);
    buf.must_release();

    assert_eq!(pool.idle(), 0);
    let stats = pool.stats();
    assert_eq!(stats.dropped, 1);
    assert_eq!(stats.released, 0);
    assert_eq!(stats.outstanding, 0);

    let next = pool.get();
    assert!(next.capacity() <= 128, "the oversize buffer came back");
    assert_eq!(pool.stats().misses, 2);
}

#[test]
fn buffer_at_exactly_max_capacity_is_kept() {
    let pool = pool(4, 128, 128);
    let mut buf = pool.get();
    buf.extend_from_slice(&[1; 128]);
    assert_eq!(buf.capacity(), 128, "filling to capacity does not grow");
    buf.must_release();
    assert_eq!(pool.idle(), 1);
    assert_eq!(pool.stats().dropped, 0);
}

#[test]
fn into_vec_detaches_the_buffer_with_its_bytes() {
    let pool = pool(4, 16, 4096);
    let mut buf = pool.get();
    buf.extend_from_slice(b"keep me");
    let bytes = buf.into_vec();

    assert_eq!(bytes, b"keep me");
    assert_eq!(pool.idle(), 0);
    let stats = pool.stats();
    assert_eq!(stats.outstanding, 0);
    assert_eq!(stats.released, 0);
    assert_eq!(stats.dropped, 0);
    drop(bytes);
    assert_eq!(pool.idle(), 0, "a detached Vec never comes back");
}

#[test]
fn write_appends_bytes_and_reads_back_through_every_view() {
    let pool = pool(4, 4, 4096);
    let mut buf = pool.get();
    buf.write_all(b"hello, ").unwrap();
    write!(buf, "{}", 42).unwrap();
    buf.flush().unwrap();
    assert_eq!(buf.as_slice(), b"hello, 42");
    assert_eq!(AsRef::<[u8]>::as_ref(&buf), b"hello, 42");
    assert_eq!(&buf[..], b"hello, 42");
    assert_eq!(
        format!("{buf:?}"),
        format!("PooledBuf {{ len: 9, capacity: {}, .. }}", buf.capacity())
    );
}

#[test]
fn zero_max_buffers_is_rejected_naming_the_field() {
    let err = Pool::new(PoolConfig {
        max_buffers: 0,
        ..PoolConfig::default()
    })
    .unwrap_err();
    let Error::InvalidConfig(msg) = &err else {
        panic!("unexpected error {err:?}");
    };
    assert!(msg.contains("max_buffers"), "{msg}");
    assert!(err.to_string().contains("max_buffers"), "{err}");
}

#[test]
fn initial_capacity_above_max_capacity_is_rejected_naming_both_fields() {
    let err = Pool::new(PoolConfig {
        max_buffers: 1,
        initial_capacity: 2048,
        max_capacity: 1024,
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("initial_capacity (2048)"), "{msg}");
    assert!(msg.contains("max_capacity (1024)"), "{msg}");
}

#[test]
fn default_config_is_1024_buffers_of_4_kib_up_to_1_mib() {
    let config = PoolConfig::default();
    assert_eq!(config.max_buffers, 1024);
    assert_eq!(config.initial_capacity, 4096);
    assert_eq!(config.max_capacity, 1 << 20);
    let pool = Pool::new(config.clone()).unwrap();
    assert_eq!(pool.config(), &config);
    assert_eq!(pool.stats(), PoolStats::default());
}

#[test]
fn pool_and_pooled_buf_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pool>();
    assert_send_sync::<PooledBuf>();
}

#[test]
fn clones_of_a_pool_share_one_idle_set() {
    let pool = pool(4, 16, 4096);
    let other = pool.clone();
    other.get().must_release();
    assert_eq!(pool.idle(), 1);
    drop(pool.get());
    assert_eq!(other.stats().hits, 1);
}

#[test]
fn buffer_released_after_every_pool_handle_is_gone_is_freed_quietly() {
    let pool = pool(4, 16, 4096);
    let mut buf = pool.get();
    drop(pool);
    buf.extend_from_slice(b"still usable");
    assert_eq!(buf.as_slice(), b"still usable");
    buf.must_release();
}

#[test]
fn concurrent_get_and_release_from_8_threads_keep_counters_consistent() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 2_000;
    let max_buffers = 4;
    let pool = pool(max_buffers, 32, 512);

    let detached: usize = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let pool = pool.clone();
                s.spawn(move || {
                    let mut detached = 0;
                    for i in 0..ROUNDS {
                        let mut a = pool.get();
                        assert!(a.is_empty(), "a lent buffer is always empty");
                        assert!(pool.idle() <= max_buffers);
                        // Some rounds outgrow max_capacity to exercise dropping.
                        let len = if i % 7 == 0 { 1024 } else { (t + i) % 100 };
                        a.resize(len, t as u8);
                        let b = pool.get();
                        match i % 3 {
                            0 => a.must_release(),
                            1 => drop(a),
                            _ => {
                                assert_eq!(a.into_vec().len(), len);
                                detached += 1;
                            }
                        }
                        b.must_release();
                    }
                    detached
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });

    let stats = pool.stats();
    let gets = (THREADS * ROUNDS * 2) as u64;
    assert_eq!(stats.gets, gets);
    assert_eq!(stats.gets, stats.hits + stats.misses);
    assert_eq!(stats.outstanding, 0);
    assert_eq!(
        stats.released + stats.dropped + detached as u64,
        gets,
        "every loan ended exactly once"
    );
    assert!(pool.idle() <= max_buffers);
    assert_eq!(pool.idle() as u64, stats.released - stats.hits);
    assert!(stats.dropped > 0, "oversize buffers were dropped");
}

/// One step of a random pool workload. `slot` picks a live buffer modulo the
/// number alive; the step is skipped when none is.
#[derive(Debug, Clone)]
enum Op {
    Get,
    Grow { slot: usize, bytes: usize },
    Release { slot: usize },
    Drop { slot: usize },
    IntoVec { slot: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Get),
        3 => (any::<usize>(), 0usize..400).prop_map(|(slot, bytes)| Op::Grow { slot, bytes }),
        2 => any::<usize>().prop_map(|slot| Op::Release { slot }),
        2 => any::<usize>().prop_map(|slot| Op::Drop { slot }),
        1 => any::<usize>().prop_map(|slot| Op::IntoVec { slot }),
    ]
}

fn config() -> impl Strategy<Value = PoolConfig> {
    (1usize..6, 0usize..64, 0usize..256).prop_map(|(max_buffers, initial, extra)| PoolConfig {
        max_buffers,
        initial_capacity: initial,
        max_capacity: initial + extra,
    })
}

/// Gets a buffer and checks it against the model: a hit must come out of the
/// idle set (empty, within `max_capacity`), a miss is fresh.
fn get_checked(pool: &Pool, model: &mut PoolStats, idle: &mut usize) -> PooledBuf {
    let buf = pool.get();
    model.gets += 1;
    model.outstanding += 1;
    assert!(buf.is_empty());
    if *idle > 0 {
        *idle -= 1;
        model.hits += 1;
        assert!(buf.capacity() <= pool.config().max_capacity);
    } else {
        model.misses += 1;
        assert!(buf.capacity() >= pool.config().initial_capacity);
    }
    buf
}

/// Expected outcome of handing back a buffer whose capacity is `capacity`.
fn expect_release(config: &PoolConfig, capacity: usize, model: &mut PoolStats, idle: &mut usize) {
    model.outstanding -= 1;
    if capacity > config.max_capacity || *idle == config.max_buffers {
        model.dropped += 1;
    } else {
        model.released += 1;
        *idle += 1;
    }
}

proptest! {
    #[test]
    fn random_get_grow_release_sequences_keep_the_pool_invariants(
        config in config(),
        ops in prop::collection::vec(op(), 0..200),
    ) {
        let pool = Pool::new(config.clone()).unwrap();
        let mut live: Vec<PooledBuf> = Vec::new();
        let mut model = PoolStats::default();
        let mut idle = 0usize;

        for op in ops {
            match op {
                Op::Get => live.push(get_checked(&pool, &mut model, &mut idle)),
                Op::Grow { slot, bytes } if !live.is_empty() => {
                    let n = live.len();
                    live[slot % n].extend(std::iter::repeat_n(0xA5, bytes));
                }
                Op::Release { slot } if !live.is_empty() => {
                    let buf = live.swap_remove(slot % live.len());
                    expect_release(&config, buf.capacity(), &mut model, &mut idle);
                    buf.must_release();
                }
                Op::Drop { slot } if !live.is_empty() => {
                    let buf = live.swap_remove(slot % live.len());
                    expect_release(&config, buf.capacity(), &mut model, &mut idle);
                    drop(buf);
                }
                Op::IntoVec { slot } if !live.is_empty() => {
                    let buf = live.swap_remove(slot % live.len());
                    let len = buf.len();
                    model.outstanding -= 1;
                    prop_assert_eq!(buf.into_vec().len(), len);
                }
                _ => {}
            }
            prop_assert!(pool.idle() <= config.max_buffers);
            prop_assert_eq!(pool.idle(), idle);
            prop_assert_eq!(pool.stats(), model);
            prop_assert_eq!(pool.stats().outstanding, live.len() as u64);
        }

        // Every idle buffer is empty and within max_capacity: drain them all.
        let drained: Vec<PooledBuf> =
            (0..idle).map(|_| get_checked(&pool, &mut model, &mut idle)).collect();
        prop_assert_eq!(pool.idle(), 0);
        prop_assert_eq!(pool.stats(), model);
        prop_assert_eq!(pool.stats().outstanding, (live.len() + drained.len()) as u64);
    }
}
