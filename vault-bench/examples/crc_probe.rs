//! Probe: CRC32C speed of `vault_segment::partial_crc` vs the `crc32c` crate, per record size.
//!
//! Two figures per size, best of 5: *throughput*, independent calls back to back (the CPU
//! overlaps one call's tail with the next call's head), and *latency*, each call's data
//! depending on the previous result (what an append that waits for its checksum sees).
use std::hint::black_box;
use std::time::Instant;

fn main() {
    for len in [64usize, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536] {
        let mut data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let iters = (64 << 20) / len;
        let mut best = [f64::MAX; 4];
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(vault_segment::partial_crc(black_box(&data)));
            }
            best[0] = best[0].min(t.elapsed().as_secs_f64() / iters as f64);
            let t = Instant::now();
            for _ in 0..iters {
                black_box(crc32c::crc32c(black_box(&data)));
            }
            best[1] = best[1].min(t.elapsed().as_secs_f64() / iters as f64);
            let t = Instant::now();
            let mut c = 0u32;
            for _ in 0..iters {
                data[0] = c as u8;
                c = vault_segment::partial_crc(&data);
            }
            black_box(c);
            best[2] = best[2].min(t.elapsed().as_secs_f64() / iters as f64);
            let t = Instant::now();
            for _ in 0..iters {
                data[0] = c as u8;
                c = crc32c::crc32c(&data);
            }
            black_box(c);
            best[3] = best[3].min(t.elapsed().as_secs_f64() / iters as f64);
        }
        println!(
            "{len:>6} B: vault {:>7.1} ns ({:>4.1} GB/s), latency {:>7.1} ns | crc32c crate {:>7.1} ns ({:>4.1} GB/s), latency {:>7.1} ns",
            best[0] * 1e9,
            len as f64 / best[0] / 1e9,
            best[2] * 1e9,
            best[1] * 1e9,
            len as f64 / best[1] / 1e9,
            best[3] * 1e9,
        );
    }
}
