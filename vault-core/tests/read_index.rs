//! Random reads by LSN through the per-segment record index: `read(lsn)` agrees with a full
//! iteration, across many segments, enlarged segments and a reopen, and reads a bounded number
//! of frames.

mod common;

use common::{record, small};
use vault_core::{IoMode, SyncPolicy, Wal};

/// Record `lsn`'s bytes: small, and every 97th larger than a 16 KiB segment (enlarged).
fn payload(lsn: u64) -> Vec<u8> {
    let r = record(lsn);
    if lsn % 97 == 50 {
        r.iter().copied().cycle().take(20_000).collect()
    } else {
        r
    }
}

fn check_all(wal: &Wal, first: u64, last: u64) {
    let all: Vec<(u64, Vec<u8>)> = wal
        .iter_from(first)
        .map(|r| (r.lsn(), r.to_vec()))
        .collect();
    assert_eq!(all.len() as u64, last - first + 1);
    for (lsn, data) in &all {
        let r = wal
            .read(*lsn)
            .unwrap_or_else(|| panic!("LSN {lsn} not found"));
        assert_eq!((&r.lsn(), r.data()), (lsn, &data[..]));
        assert_eq!(data, &payload(*lsn));
        // `iter_from` starts at the same record.
        let mut it = wal.iter_from(*lsn);
        assert_eq!(it.next().unwrap().lsn(), *lsn);
        let stride = r.segment().index_stride();
        assert!(
            it.frames_read() <= stride + stride / 8 + 2, // markers: one per 10 records
            "LSN {lsn}: {} frames read for a stride of {stride}",
            it.frames_read()
        );
    }
    assert!(wal.read(last + 1).is_none());
    assert!(wal.read(0).is_none());
}

common::both_io_paths!(read_of_every_lsn_over_many_segments_matches_iteration_and_survives_reopen);
fn read_of_every_lsn_over_many_segments_matches_iteration_and_survives_reopen(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let last = 6000;
    {
        let wal = Wal::open(dir.path(), small(16 * 1024, SyncPolicy::Manual, io)).unwrap();
        for lsn in 1..=last {
            if lsn % 10 == 0 {
                // A sync now and then puts commit markers among the frames.
                wal.sync().unwrap();
            }
            assert_eq!(wal.append(&payload(lsn)).unwrap(), lsn);
        }
        assert!(wal.stats().segments > 50, "{:?}", wal.stats());
        check_all(&wal, 1, last);
        wal.close().unwrap();
    }
    // After reopening, the index comes from the recovery scan.
    let wal = Wal::open(dir.path(), small(16 * 1024, SyncPolicy::Manual, io)).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.next_lsn, last + 1);
    check_all(&wal, 1, last);
    // Random reads (a fixed pseudo-random order), then appends after the reopen.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let lsn = 1 + x % last;
        assert_eq!(wal.read(lsn).unwrap().data(), &payload(lsn)[..]);
    }
    for lsn in last + 1..=last + 500 {
        assert_eq!(wal.append(&payload(lsn)).unwrap(), lsn);
    }
    check_all(&wal, 1, last + 500);
    // After truncate_front, reads before the first LSN find nothing; the rest still match.
    wal.truncate_front(3000).unwrap();
    let first = wal.first_lsn();
    assert!(first > 1);
    assert!(wal.read(first - 1).is_none());
    check_all(&wal, first, last + 500);
}

common::both_io_paths!(the_index_bounds_the_frames_a_read_reads_in_a_large_segment);
fn the_index_bounds_the_frames_a_read_reads_in_a_large_segment(io: IoMode) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small(8 << 20, SyncPolicy::Manual, io)).unwrap();
    for lsn in 1..=20_000u64 {
        wal.append(&lsn.to_le_bytes()).unwrap();
    }
    assert_eq!(wal.stats().segments, 1);
    let stride = wal.read(1).unwrap().segment().index_stride();
    let mut worst = 0;
    for lsn in (1..=20_000).step_by(7) {
        let mut it = wal.iter_from(lsn);
        assert_eq!(it.next().unwrap().data(), lsn.to_le_bytes());
        worst = worst.max(it.frames_read());
    }
    assert!(worst <= stride, "worst {worst} frames, stride {stride}");
    // Without the index the last record needs every frame before it.
    let seg = wal.read(20_000).unwrap().segment().clone();
    let mut scan = seg.records_from_start(20_000);
    assert_eq!(scan.next().unwrap().lsn(), 20_000);
    assert_eq!(scan.frames_read(), 20_000);
}
