//! Appending from many threads: every thread waits for its own record to be durable, and the
//! threads share the device's durable writes (group commit).
//!
//! ```text
//! cargo run --release -p vault-core --example threads -- [THREADS] [RECORDS_PER_THREAD] [DIR]
//! ```
//!
//! Without `DIR` the log goes to a temporary directory that is removed at the end. Prints the
//! rate and how many records each durable write carried on average.

use std::sync::Arc;
use std::time::Instant;

use vault_core::{Options, SyncPolicy, Wal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: u64 = args.next().map_or(Ok(8), |a| a.parse())?;
    let per_thread: u64 = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let temp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| temp.path().to_path_buf(), Into::into);

    // `Always`: `append` returns once the record is durable. A `Wal` is `Send + Sync`: share
    // it in an `Arc` and append from any thread.
    let wal = Wal::open(&dir, Options::default().with_sync(SyncPolicy::Always))?;
    let wal = Arc::new(wal);
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || -> vault_core::Result<()> {
                for i in 0..per_thread {
                    let record = format!("thread {t} record {i}");
                    let lsn = wal.append(record.as_bytes())?;
                    // Durable here: a crash from now on keeps it.
                    debug_assert!(wal.durable_lsn() >= lsn);
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().expect("appender panicked")?;
    }
    let elapsed = start.elapsed();
    let stats = wal.stats();
    println!(
        "{} records from {threads} threads in {elapsed:.2?}: {:.0} records/s, {:.1} records per durable write ({} path)",
        stats.appends,
        stats.appends as f64 / elapsed.as_secs_f64(),
        stats.appends as f64 / stats.flushes.max(1) as f64,
        stats.io_path.name(),
    );
    // Every record is there once, in one LSN order across the threads.
    assert_eq!(wal.iter_from(1).count() as u64, threads * per_thread);
    Arc::try_unwrap(wal)
        .map_err(|_| "a thread still holds the log")?
        .close()?;
    Ok(())
}
