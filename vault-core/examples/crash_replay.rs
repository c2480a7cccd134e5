//! Replay after a crash: a child process appends records, syncing every 100th, and kills
//! itself mid-stream (`abort`, like a kill -9: nothing is closed or flushed); the parent then
//! opens the log, which recovers it, and replays every record.
//!
//! ```text
//! cargo run --release -p vault-core --example crash_replay
//! ```
//!
//! Every record the child saw durable is replayed. Records after its last sync may be there
//! too: on the mmap path the page cache keeps what the child stored; on the direct path only
//! blocks already written out survive a process death (a power cut keeps neither). Nothing
//! after the first missing record comes back.

use std::process::Command;

use vault_core::{Options, SyncPolicy, Wal};

const RECORDS: u64 = 1_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, dir] = &args[..] {
        if role == "child" {
            child(dir);
        }
    }
    let dir = tempfile::tempdir()?;
    let status = Command::new(std::env::current_exe()?)
        .arg("child")
        .arg(dir.path())
        .status()?;
    println!("child ended with {status} (it aborts on purpose)");
    let durable: u64 = std::fs::read_to_string(dir.path().join("durable"))?
        .trim()
        .parse()?;

    // Opening recovers: it cuts a torn tail (bytes of a record that was being written) and
    // refuses corruption anywhere else with an error that names the file and offset.
    let wal = Wal::open(dir.path(), Options::default())?;
    let report = wal.recovery().clone();
    println!(
        "recovered {} records in {} segments on the {} path; torn tail cut: {}",
        report.records,
        report.segments,
        report.io_path.name(),
        report
            .torn_tail
            .as_ref()
            .map_or("none".to_string(), |t| format!(
                "{} bytes at {}",
                t.bytes_dropped, t.offset
            )),
    );
    let mut next = 1;
    for record in wal.iter_from(1) {
        assert_eq!(record.lsn(), next, "LSNs are contiguous");
        assert_eq!(
            record.data(),
            payload(next).as_bytes(),
            "records are byte-exact"
        );
        next += 1;
    }
    let replayed = next - 1;
    assert!(
        replayed >= durable,
        "a record the child saw durable is missing"
    );
    println!("replayed {replayed} records; the child had seen {durable} durable");
    wal.close()?;
    Ok(())
}

fn payload(lsn: u64) -> String {
    format!("record {lsn}")
}

/// Appends, records how far it saw durable, and dies without closing anything.
fn child(dir: &str) -> ! {
    let opts = Options::default().with_sync(SyncPolicy::Manual);
    let wal = Wal::open(dir, opts).expect("open");
    for lsn in 1..=RECORDS {
        assert_eq!(wal.append(payload(lsn).as_bytes()).expect("append"), lsn);
        if lsn.is_multiple_of(100) {
            wal.sync().expect("sync");
            // Written after the sync returned: records up to `lsn` are durable.
            std::fs::write(std::path::Path::new(dir).join("durable"), lsn.to_string())
                .expect("note");
        }
        if lsn == RECORDS * 3 / 4 + 17 {
            std::process::abort();
        }
    }
    unreachable!("the child aborts before the end");
}
