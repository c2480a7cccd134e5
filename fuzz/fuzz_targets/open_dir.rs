//! Recovery on arbitrary directory contents: a few segment files (and maybe a `-pre` file) built
//! from the input, then `vault_core::inspect` (read-only) and `Wal::open`.
//!
//! Checked on every input: nothing panics; `inspect` and `open` agree (same verdict, same next
//! LSN, same records); a refused open changes no byte; after a successful open an append gets
//! the next LSN and survives close and reopen with every recovered record unchanged.
//!
//! Input layout: see `vault_fuzz::split_dir`; bit 5 of the layout byte runs the input on the
//! direct I/O path (on the temporary directory's disk), else on the mmap path (on tmpfs).
#![no_main]

use std::cell::Cell;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vault_core::{inspect, Error, Health, IoMode, Options, SyncPolicy, Wal};
use vault_segment::segment_file_name;

thread_local! {
    static RUN: Cell<u64> = const { Cell::new(0) };
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}

fn records(it: impl Iterator<Item = vault_core::Record>) -> Vec<(u64, Vec<u8>)> {
    it.map(|r| (r.lsn(), r.to_vec())).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some(files) = vault_fuzz::split_dir(data) else {
        return;
    };
    let run = RUN.with(|r| {
        r.set(r.get() + 1);
        r.get()
    });
    // The direct path needs a file system that takes O_DIRECT (tmpfs does not): those inputs
    // run on the temporary directory's disk, the others on tmpfs for speed.
    let direct = vault_fuzz::wants_direct(data);
    let dir = if direct {
        vault_fuzz::disk_scratch_dir(&format!("open-direct-{}", run % 2))
    } else {
        vault_fuzz::scratch_dir(&format!("open-{}", run % 2))
    };
    for f in &files {
        let name = segment_file_name(1_700_000_000_000_000_000 + f.index, f.index, f.pre);
        std::fs::write(dir.join(name), &f.bytes).expect("write");
    }
    let opts = Options::default()
        .with_segment_size(4096)
        .with_sync(SyncPolicy::Manual)
        .with_io(if direct { IoMode::Direct } else { IoMode::Mmap });
    let before = snapshot(&dir);
    let ins = inspect(&dir).expect("inspect lists the directory");
    let seen = records(ins.records_from(0));
    match Wal::open(&dir, opts.clone()) {
        Ok(wal) => {
            let report = wal.recovery().clone();
            assert!(
                !matches!(ins.health(), Health::Corrupt(_)),
                "inspect: corrupt, open: ok"
            );
            assert_eq!(report.next_lsn, ins.next_lsn());
            assert_eq!(report.first_lsn, ins.first_lsn());
            match ins.health() {
                Health::TornTail(t) => assert_eq!(report.torn_tail.as_ref(), Some(t)),
                _ => assert_eq!(report.torn_tail, None),
            }
            let got = records(wal.iter_from(0));
            assert_eq!(got, seen, "open and inspect read different records");
            assert_eq!(got.len() as u64, report.records);
            let lsn = wal
                .append(b"after recovery")
                .expect("append after recovery");
            assert_eq!(lsn, report.next_lsn);
            wal.close().expect("close");
            let wal = Wal::open(&dir, opts).expect("reopen after append");
            let again = wal.recovery().clone();
            assert_eq!(again.torn_tail, None, "a recovered log reopens clean");
            assert_eq!(again.next_lsn, lsn + 1);
            let mut want = seen;
            want.push((lsn, b"after recovery".to_vec()));
            let first = want.first().map_or(lsn, |r| r.0);
            assert_eq!(records(wal.iter_from(first)), want);
            wal.close().expect("close");
        }
        Err(Error::Corruption {
            file,
            offset,
            reason,
        }) => {
            match ins.health() {
                Health::Corrupt(Error::Corruption {
                    file: f,
                    offset: o,
                    reason: r,
                }) => {
                    assert_eq!((f, *o, r), (&file, offset, &reason));
                }
                other => panic!("open: corrupt at {offset} ({reason}), inspect: {other:?}"),
            }
            assert_eq!(
                snapshot(&dir),
                before,
                "a refused open modified the directory"
            );
        }
        Err(Error::UnsupportedVersion { .. }) => {
            assert!(matches!(
                ins.health(),
                Health::Corrupt(Error::UnsupportedVersion { .. })
            ));
            assert_eq!(
                snapshot(&dir),
                before,
                "a refused open modified the directory"
            );
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
});
