//! Probe: CRC32C speed of `partial_crc` (this crate) vs the `crc32c` crate, per record size.
use std::hint::black_box;
use std::time::Instant;

fn main() {
    for len in [256usize, 1024, 4096, 65536] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let iters = (64 << 20) / len;
        let mut best = [f64::MAX; 2];
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
        }
        println!(
            "{len:>6} B: vault {:>8.1} ns ({:.1} GB/s), crc32c crate {:>8.1} ns ({:.1} GB/s)",
            best[0] * 1e9,
            len as f64 / best[0] / 1e9,
            best[1] * 1e9,
            len as f64 / best[1] / 1e9
        );
    }
}
