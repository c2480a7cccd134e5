//! A consumer that follows the log and frees what it has processed: a producer thread appends,
//! the consumer reads with `follow` (waking on each append, no polling), processes records,
//! and after each checkpoint calls `truncate_front` so that the log's disk use stays bounded
//! (dropped segment files are reused as later segments).
//!
//! ```text
//! cargo run --release -p vault-core --example consumer
//! ```

use std::sync::Arc;
use std::time::Duration;

use vault_core::{Options, SyncPolicy, Wal};

const RECORDS: u64 = 200_000;
const CHECKPOINT_EVERY: u64 = 20_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // Small segments so that truncation has whole segments to drop in a short run.
    let opts = Options::default()
        .with_segment_size(1 << 20)
        .with_sync(SyncPolicy::Interval(Duration::from_millis(10)));
    let wal = Wal::open(dir.path(), opts)?;
    let wal = Arc::new(wal);

    let producer = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || -> vault_core::Result<()> {
            for i in 1..=RECORDS {
                wal.append(format!("event {i:>8}: {}", "x".repeat(64)).as_bytes())?;
            }
            Ok(())
        })
    };

    let mut follower = wal.follow(1);
    let mut processed = 0u64;
    let mut bytes = 0usize;
    while processed < RECORDS {
        // Waits at the end of the log for the next append (or one second, then asks again).
        let Some(record) = follower.next_timeout(Duration::from_secs(1))? else {
            continue;
        };
        bytes += record.data().len();
        processed = record.lsn();
        if processed.is_multiple_of(CHECKPOINT_EVERY) {
            // Everything before `processed` is consumed: drop the segments that hold only
            // such records. The segment being written is never dropped.
            let dropped = wal.truncate_front(processed)?;
            let stats = wal.stats();
            println!(
                "consumed {processed:>7} records; dropped {dropped} segments; the log holds {} segments, LSNs {}..={}",
                stats.segments,
                wal.first_lsn(),
                wal.last_lsn()
            );
        }
    }
    producer.join().expect("producer panicked")?;
    println!("consumed {processed} records, {bytes} bytes");
    Arc::try_unwrap(wal)
        .map_err(|_| "a thread still holds the log")?
        .close()?;
    Ok(())
}
