//! `Pool::get` on a hit, and the release that precedes it, do not allocate.
//!
//! `allocation-counter` replaces this test binary's global allocator and
//! counts per thread, so the other tests running alongside do not disturb it.

use std::io::Write;

use vault_buffer::{Pool, PoolConfig};

#[test]
fn get_on_a_hit_and_release_do_not_allocate() {
    let pool = Pool::new(PoolConfig {
        max_buffers: 2,
        initial_capacity: 256,
        max_capacity: 4096,
    })
    .unwrap();
    // Warm up: one miss allocates the buffer the rest will reuse.
    pool.get().must_release();

    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            let mut buf = pool.get();
            buf.write_all(&[1; 200]).unwrap();
            buf.must_release();
            drop(pool.get());
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");

    let stats = pool.stats();
    assert_eq!(stats.misses, 1);
    assert_eq!(stats.hits, 200);
}

#[test]
fn get_on_a_miss_allocates_once() {
    let pool = Pool::new(PoolConfig {
        max_buffers: 2,
        initial_capacity: 256,
        max_capacity: 4096,
    })
    .unwrap();
    let info = allocation_counter::measure(|| {
        pool.get().must_release();
    });
    // The allocation is kept in the pool, not leaked or freed.
    assert_eq!(info.count_total, 1, "{info:?}");
    assert_eq!(info.bytes_total, 256);
    assert_eq!(info.count_current, 1);
}
