//! `must_write` hands buffers back to their pool on success and to the caller on failure.

mod common;

use vault_core::{Error, IoMode, Options, Pool, PoolConfig, SyncPolicy, Wal};

common::both_io_paths!(must_write_returns_buffers_to_the_pool);
fn must_write_returns_buffers_to_the_pool(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        Options::default()
            .with_segment_size(1 << 20)
            .with_sync(SyncPolicy::Manual)
            .with_io(io),
    )
    .unwrap();
    let pool = Pool::new(PoolConfig {
        max_buffers: 4,
        initial_capacity: 64,
        max_capacity: 4096,
    })
    .unwrap();
    for i in 0..100u32 {
        let mut b = pool.get();
        b.extend_from_slice(&i.to_le_bytes());
        assert_eq!(wal.must_write(b).unwrap(), u64::from(i) + 1);
    }
    let s = pool.stats();
    assert_eq!(s.outstanding, 0);
    assert_eq!(s.misses, 1, "one buffer served every write");
    assert_eq!(s.hits, 99);
    assert_eq!(wal.read(42).unwrap().data(), &41u32.to_le_bytes());
}

common::both_io_paths!(must_write_hands_the_buffer_back_on_error);
fn must_write_hands_the_buffer_back_on_error(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        Options::default()
            .with_segment_size(1 << 20)
            .with_sync(SyncPolicy::Manual)
            .with_max_record_size(8)
            .with_io(io),
    )
    .unwrap();
    let pool = Pool::new(PoolConfig::default()).unwrap();
    let mut b = pool.get();
    b.extend_from_slice(b"far too long");
    let err = wal.must_write(b).unwrap_err();
    assert!(matches!(
        err.error,
        Error::RecordTooLarge { len: 12, max: 8 }
    ));
    assert_eq!(err.buf.as_slice(), b"far too long", "bytes intact");
    assert_eq!(pool.stats().outstanding, 1, "still the caller's");
    err.buf.must_release();
    assert_eq!(pool.stats().outstanding, 0);
    assert_eq!(wal.last_lsn(), 0, "nothing was appended");
}
