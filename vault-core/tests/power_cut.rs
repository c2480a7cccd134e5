//! Power cut on real file systems: a writer appends with `SyncPolicy::Always` on a
//! loop-mounted ext4, xfs or btrfs image and prints each acknowledged LSN; the test freezes it
//! (`SIGSTOP`) at a random moment, copies the image (the copy holds what reached the "device",
//! not the page cache: a power cut), kills the writer, mounts the copy and checks that every
//! acknowledged record is there, byte-exact, in a contiguous log that takes more appends.
//!
//! Root only (it mounts file systems); it prints why it skips otherwise. tmpfs has no device
//! to copy: a power cut leaves nothing of it, and kill -9 (`crash_kill9.rs`) covers it. The
//! copy is not atomic: the frozen writer issues no I/O, but the kernel may still write back
//! its dirty pages during the copy, which only adds unacknowledged bytes, as a power cut in
//! the middle of a write-back would.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vault_core::{inspect, Health, IoMode, Options, SyncPolicy, Wal};

mod mounts;
use mounts::{need_root, run, Kind, Mount};

const CHILD_DIR: &str = "VAULT_POWER_CUT_CHILD_DIR";
const CHILD_IO: &str = "VAULT_POWER_CUT_CHILD_IO";

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Record `lsn`: 16 B to 8 KiB drawn from its hash, every byte a function of the LSN.
fn record(lsn: u64) -> Vec<u8> {
    let h = splitmix(lsn);
    let len = if h.is_multiple_of(50) {
        8192
    } else {
        16 + (h >> 8) as usize % 600
    };
    let mut v = Vec::with_capacity(len + 8);
    let mut s = h;
    v.extend_from_slice(&lsn.to_le_bytes());
    while v.len() < len {
        s = splitmix(s);
        v.extend_from_slice(&s.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Not a test of its own: the writer the power-cut test freezes.
#[test]
#[ignore = "run as a child process by the power-cut test"]
fn power_cut_writer_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let io: IoMode = std::env::var(CHILD_IO).unwrap().parse().unwrap();
    let opts = Options::default()
        .with_segment_size(64 * 1024)
        .with_sync(SyncPolicy::Always)
        .with_io(io);
    let wal = Wal::open(&dir, opts).unwrap();
    let report = wal.recovery().clone();
    let mut out = std::io::stdout().lock();
    writeln!(out, "path {}", report.io_path).unwrap();
    let mut lsn = report.next_lsn;
    loop {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
        writeln!(out, "ack {lsn}").unwrap();
        out.flush().unwrap();
        lsn += 1;
    }
}

/// One cut: returns (acknowledged, recovered) record counts.
fn cut_once(kind: Kind, io: &str, after_acks: u64, delay_us: u64) -> (u64, u64) {
    let mut m = Mount::new(kind, 16).unwrap();
    let dir = m.path().join("wal");
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "power_cut_writer_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, &dir)
        .env(CHILD_IO, io)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let max_ack = Arc::new(AtomicU64::new(0));
    let path = Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let (max_ack, path) = (Arc::clone(&max_ack), Arc::clone(&path));
        let stdout = c.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ack ") {
                    max_ack.fetch_max(n.parse().unwrap(), Ordering::SeqCst);
                } else if let Some(p) = line.strip_prefix("path ") {
                    *path.lock().unwrap() = p.to_string();
                }
            }
        })
    };
    let start = Instant::now();
    while max_ack.load(Ordering::SeqCst) < after_acks {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the writer acknowledged too little"
        );
        assert!(c.try_wait().unwrap().is_none(), "the writer exited");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_micros(delay_us));
    // Freeze, then read what was acknowledged by then: every ack printed before the freeze.
    let pid = c.id().to_string();
    run(Command::new("kill").args(["-STOP", &pid])).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let acked = max_ack.load(Ordering::SeqCst);
    let image = m.image().unwrap().to_path_buf();
    let copy = image.with_extension("cut.img");
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(&image)
        .arg(&copy))
    .unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    reader.join().unwrap();
    m.unmount();
    let point = tempfile::tempdir().unwrap();
    let mounted = run(Command::new("mount")
        .args(["-o", "loop"])
        .arg(&copy)
        .arg(point.path()));
    let result = mounted.map(|()| check(&point.path().join("wal"), acked, kind, io));
    let _ = Command::new("umount").arg(point.path()).status();
    let _ = std::fs::remove_file(&copy);
    let recovered = result.unwrap();
    println!(
        "power cut on {} ({io}, took the {} path): {acked} acknowledged, {recovered} recovered, \
         all acknowledged present",
        kind.name(),
        path.lock().unwrap()
    );
    (acked, recovered)
}

/// Recovers the copied log and checks it; returns the records it holds.
fn check(dir: &Path, acked: u64, kind: Kind, io: &str) -> u64 {
    let what = format!("{} ({io})", kind.name());
    let ins = inspect(dir).unwrap_or_else(|e| panic!("{what}: inspect failed: {e}"));
    assert!(
        !matches!(ins.health(), Health::Corrupt(_)),
        "{what}: corrupt after a power cut: {:?}",
        ins.health()
    );
    let opts = Options::default()
        .with_segment_size(64 * 1024)
        .with_sync(SyncPolicy::Always);
    let wal = Wal::open(dir, opts).unwrap_or_else(|e| panic!("{what}: open after a cut: {e}"));
    let report = wal.recovery().clone();
    assert!(
        report.next_lsn > acked,
        "{what}: acknowledged LSN {acked} lost: the log ends before {}",
        report.next_lsn
    );
    let mut want = 1;
    for r in wal.iter_from(1) {
        assert_eq!(r.lsn(), want, "{what}: LSNs must be contiguous");
        assert!(r.data() == record(want).as_slice(), "{what}: record {want}");
        want += 1;
    }
    assert_eq!(want, report.next_lsn);
    assert_eq!(wal.append(&record(want)).unwrap(), want);
    wal.close().unwrap();
    want - 1
}

fn power_cut_on(kind: Kind, test: &str) {
    if !need_root(test) {
        return;
    }
    if let Err(why) = Mount::new(kind, 16) {
        println!("SKIPPED {test}: {why}");
        return;
    }
    let paths: &[&str] = match kind {
        Kind::Btrfs => &["direct"],
        _ => &["mmap", "direct"],
    };
    let mut seed = splitmix(std::process::id().into());
    for io in paths {
        for _ in 0..2 {
            seed = splitmix(seed);
            cut_once(kind, io, 200 + seed % 1500, seed % 3000);
        }
    }
}

#[test]
fn acknowledged_records_survive_a_power_cut_on_ext4() {
    power_cut_on(
        Kind::Ext4,
        "acknowledged_records_survive_a_power_cut_on_ext4",
    );
}

#[test]
fn acknowledged_records_survive_a_power_cut_on_xfs() {
    power_cut_on(Kind::Xfs, "acknowledged_records_survive_a_power_cut_on_xfs");
}

#[test]
fn acknowledged_records_survive_a_power_cut_on_btrfs() {
    power_cut_on(
        Kind::Btrfs,
        "acknowledged_records_survive_a_power_cut_on_btrfs",
    );
}
