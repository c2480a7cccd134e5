//! Probe: the rotation-heavy unsynced run of the benchmark (256 B records, `SyncPolicy::Manual`,
//! small segments), alone, so that it can be repeated and compared quickly.
//!
//! `cargo run --release -p vault-bench --example rotation_probe -- [DIR] [SEGMENT_BYTES] [RECORDS] [ROUNDS]`
//!
//! Prints per round: records/s of the timed part, rotations and segment waits in it.

use std::time::Instant;
use vault_core::{Options, SyncPolicy, Wal};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).map_or("target/tmp/rotprobe", String::as_str));
    let segment: u64 = args.get(2).map_or(11_411_456, |s| s.parse().unwrap());
    let records: u64 = args.get(3).map_or(524_288, |s| s.parse().unwrap());
    let rounds: u32 = args.get(4).map_or(3, |s| s.parse().unwrap());
    let rec = [0x5a_u8; 256];
    for _ in 0..rounds {
        let _ = std::fs::remove_dir_all(&dir);
        let opts = Options::default()
            .with_segment_size(segment)
            .with_sync(SyncPolicy::Manual);
        let wal = Wal::open(&dir, opts).unwrap();
        for _ in 0..records / 10 {
            wal.append(&rec).unwrap();
        }
        let before = wal.stats();
        let t = Instant::now();
        for _ in 0..records {
            wal.append(&rec).unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        let after = wal.stats();
        println!(
            "{:.2} M rec/s ({:.0} MiB/s), {} rotations, {} waited",
            records as f64 / secs / 1e6,
            records as f64 * 256.0 / secs / f64::from(1 << 20),
            after.rotations - before.rotations,
            after.segment_waits - before.segment_waits
        );
        wal.close().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
