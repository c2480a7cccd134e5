//! Disk full: appending until the file system (or the file-size limit) says no must give a
//! typed error, never a SIGBUS or SIGXFSZ; every acknowledged record must be readable after
//! reopen; and once space is back the WAL goes on.
//!
//! - On a small tmpfs and on loop-mounted ext4, xfs and btrfs images (root only: they mount
//!   file systems; the tests print why they skip otherwise), on each I/O path the file system
//!   allows. A writer process fills the file system, reports the error, keeps trying, waits
//!   while the test deletes a filler file it made first, then appends more with the same `Wal`
//!   and closes. Where a path is refused (direct I/O on tmpfs, the mapping on btrfs), the test
//!   checks that `open` says so with a typed error.
//! - Under `RLIMIT_FSIZE` (any user): a record larger than a segment needs an enlarged segment
//!   that the limit forbids (`EFBIG`, with SIGXFSZ ignored as a server would); the writer must
//!   get an error for that record and go on with the others.
//!
//! The writers are this test binary re-executed, so that a SIGBUS kills only the writer and the
//! test reports it.
//!
//! Linux only: it mounts tmpfs and ext4, sets `RLIMIT_FSIZE` and reads the writer's signal.
//! Other platforms' disk-full handling is the seam's typed `ENOSPC`-class error, which
//! `io_errors.rs` checks through `SimStorage` everywhere.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use vault_core::{inspect, Error, Health, IoMode, Options, SyncPolicy, Wal};

mod mounts;
use mounts::{need_root, Kind, Mount};

const CHILD_DIR: &str = "VAULT_DISK_FULL_CHILD_DIR";
const CHILD_MODE: &str = "VAULT_DISK_FULL_CHILD_MODE";
const CHILD_IO: &str = "VAULT_DISK_FULL_CHILD_IO";

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The record for LSN `lsn` (`len` bytes): the LSN, then bytes drawn from its hash.
fn record(lsn: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    v.extend_from_slice(&lsn.to_le_bytes());
    let mut s = lsn;
    while v.len() < len {
        s = splitmix(s);
        v.extend_from_slice(&s.to_le_bytes());
    }
    v.truncate(len.max(8));
    v
}

/// The length of LSN `lsn` in the tmpfs scenario: mostly small, every 97th larger than a
/// segment (so enlargements meet the full disk too).
fn fill_len(lsn: u64) -> usize {
    if lsn.is_multiple_of(97) {
        1536 * 1024
    } else {
        8 + (splitmix(lsn) % 3000) as usize
    }
}

/// The length of LSN `lsn` in the file-size-limit scenario: small records only.
fn small_len(lsn: u64) -> usize {
    8 + (splitmix(lsn) % 300) as usize
}

fn io_code(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } | Error::NoSpace { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// The I/O mode the writer child was asked for.
fn child_io() -> IoMode {
    std::env::var(CHILD_IO)
        .ok()
        .map_or(IoMode::Auto, |s| s.parse().unwrap())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Not a test of its own: the writer processes of the tests below.
#[test]
#[ignore = "run as a child process by the disk-full tests"]
fn disk_full_writer_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    match std::env::var(CHILD_MODE).as_deref() {
        Ok("fill") => fill_writer(Path::new(&dir)),
        Ok("fsize") => fsize_writer(Path::new(&dir)),
        Ok("raw-mmap") => raw_mmap_writer(Path::new(&dir)),
        other => panic!("unknown mode {other:?}"),
    }
}

/// Appends until the file system is full: records up to 12 KiB with one in 97 larger than a
/// segment, and once a large one fails, small ones until three of those fail too (the worker
/// cannot prepare a normal segment any more). Then waits for `go` on stdin, appends at least
/// 300 more records and through two more rotations, and closes. Prints `ack LSN LEN`,
/// `error CODE LSN ...`, `pending LSN LEN` (a record appended whose sync found no space),
/// `full`, `resumed LSN`, `closed`.
fn fill_writer(dir: &Path) {
    let opts = Options::default()
        .with_segment_size(1 << 20)
        .with_sync(SyncPolicy::Always)
        .with_max_record_size(4 << 20)
        .with_io(child_io());
    let wal = Wal::open(dir, opts).unwrap();
    let report = wal.recovery().clone();
    say(&format!("path {}", report.io_path));
    let mut lsn = report.next_lsn;
    let mut small_only = false;
    let mut small_errors = 0;
    let append = |lsn: u64, len: usize| -> Result<(), Error> {
        let got = wal.append(&record(lsn, len))?;
        assert_eq!(got, lsn);
        say(&format!("ack {lsn} {len}"));
        Ok(())
    };
    while small_errors < 3 {
        let len = match fill_len(lsn) {
            n if small_only => n.min(12 * 1024),
            n => n,
        };
        match append(lsn, len) {
            Ok(()) => lsn += 1,
            Err(e) => {
                let code = io_code(&e).unwrap_or_else(|| panic!("not an I/O error: {e}"));
                assert!(e.is_disk_full(), "not a full disk: {e}");
                say(&format!("error {code} {lsn} {e}"));
                // On the direct path the record may be in the log, not yet durable: it
                // becomes durable with the first sync after space is freed.
                if let Error::NoSpace {
                    appended: Some(at), ..
                } = e
                {
                    assert_eq!(at, lsn);
                    say(&format!("pending {lsn} {len}"));
                    lsn += 1;
                    continue;
                }
                if len > 1 << 20 {
                    small_only = true;
                } else {
                    small_errors += 1;
                }
            }
        }
        assert!(lsn < 1_000_000, "the disk never filled up");
    }
    say("full");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "go");
    // Space is back: the same WAL goes on, into segments prepared after that.
    say(&format!("resumed {lsn}"));
    let rotations = wal.stats().rotations;
    let end = lsn + 300;
    while lsn < end || wal.stats().rotations < rotations + 2 {
        let len = fill_len(lsn).min(64 * 1024);
        append(lsn, len).unwrap_or_else(|e| panic!("append {lsn} after space was freed: {e}"));
        lsn += 1;
    }
    wal.close().unwrap();
    say("closed");
}

/// Under a file-size limit below an enlarged segment: small records, one too large for any
/// segment the limit allows (must fail with `EFBIG`), then more small records across several
/// rotations. Prints `ack LSN`, `error CODE LSN`, `closed`.
fn fsize_writer(dir: &Path) {
    let opts = Options::default()
        .with_segment_size(64 * 1024)
        .with_sync(SyncPolicy::Always)
        .with_max_record_size(1 << 20)
        .with_io(child_io());
    let wal = Wal::open(dir, opts).unwrap();
    let mut lsn = 1;
    for round in 0..3 {
        for _ in 0..150 {
            assert_eq!(wal.append(&record(lsn, small_len(lsn))).unwrap(), lsn);
            say(&format!("ack {lsn}"));
            lsn += 1;
        }
        if round < 2 {
            match wal.append(&record(lsn, 512 * 1024)) {
                Ok(got) => panic!("a 512 KiB record was appended ({got}) past the size limit"),
                Err(e) => {
                    let code = io_code(&e).unwrap_or_else(|| panic!("not an I/O error: {e}"));
                    say(&format!("error {code} {lsn} {e}"));
                }
            }
        }
    }
    wal.close().unwrap();
    say("closed");
}

/// Writes through vault-segment's mapping directly (the path `Wal::open` refuses on btrfs):
/// segments of 1 MiB, one sync per record, until a segment cannot be allocated; then goes on
/// into the last segment, syncing each record, until it is full. Prints `ack N`, `error ...`,
/// `done`.
fn raw_mmap_writer(dir: &Path) {
    use vault_segment::{FsStorage, IoPath, Segment};
    std::fs::create_dir_all(dir).unwrap();
    let mut lsn = 1u64;
    let mut index = 1;
    let mut app = Segment::create(&FsStorage, dir, index, 1 << 20, IoPath::Mmap)
        .unwrap()
        .activate(1);
    loop {
        if app.append_and_checksum(&record(lsn, 2000)).is_err() {
            index += 1;
            match Segment::create(&FsStorage, dir, index, 1 << 20, IoPath::Mmap) {
                Ok(next) => app = next.activate(lsn),
                Err(e) => {
                    say(&format!("error {e}"));
                    break;
                }
            }
            continue;
        }
        app.publish();
        app.segment().sync_to(app.offset()).unwrap();
        say(&format!("ack {lsn}"));
        lsn += 1;
    }
    // The disk is full: the last segment still has room, and every record rewrites the page
    // the previous sync wrote back.
    loop {
        if app.append_and_checksum(&record(lsn, 2000)).is_err() {
            break;
        }
        app.publish();
        app.segment().sync_to(app.offset()).unwrap();
        say(&format!("ack {lsn}"));
        lsn += 1;
    }
    say("done");
}

/// What a writer printed.
#[derive(Debug, Default)]
struct Transcript {
    acks: Vec<u64>,
    /// Lengths the writer printed with its acks, by LSN.
    lens: std::collections::HashMap<u64, usize>,
    errors: Vec<(i32, u64, String)>,
    resumed: Option<u64>,
    closed: bool,
    /// The I/O path the writer's `Wal` took.
    path: Option<String>,
    /// Records acknowledged when the writer reported the disk full.
    acks_at_full: usize,
    /// Records appended whose sync found no space (durable later, after space was freed).
    pending: usize,
}

fn parse_line(t: &mut Transcript, line: &str) {
    let mut w = line.splitn(4, ' ');
    match (w.next(), w.next(), w.next()) {
        (Some("ack"), Some(n), len) => {
            let n = n.parse().unwrap();
            t.acks.push(n);
            if let Some(len) = len {
                t.lens.insert(n, len.parse().unwrap());
            }
        }
        (Some("error"), Some(code), Some(lsn)) => t.errors.push((
            code.parse().unwrap(),
            lsn.parse().unwrap(),
            w.next().unwrap_or_default().to_string(),
        )),
        (Some("resumed"), Some(n), _) => t.resumed = Some(n.parse().unwrap()),
        (Some("closed"), _, _) => t.closed = true,
        (Some("pending"), Some(n), Some(len)) => {
            t.pending += 1;
            t.lens.insert(n.parse().unwrap(), len.parse().unwrap());
        }
        (Some("path"), Some(p), _) => t.path = Some(p.to_string()),
        _ => {}
    }
}

fn child(dir: &Path, mode: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "disk_full_writer_child",
        "--ignored",
        "--nocapture",
    ])
    .env(CHILD_DIR, dir)
    .env(CHILD_MODE, mode)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

fn describe(status: ExitStatus, stderr: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(7) => format!("the writer died of SIGBUS\n{stderr}"),
        Some(25) => format!("the writer died of SIGXFSZ\n{stderr}"),
        Some(s) => format!("the writer died of signal {s}\n{stderr}"),
        None => format!("the writer failed ({status})\n{stderr}"),
    }
}

/// Reopens `dir` and checks that every acknowledged record is there, byte-exact, in order.
fn check_acknowledged(dir: &Path, t: &Transcript, len: impl Fn(u64) -> usize) {
    let max = *t
        .acks
        .iter()
        .max()
        .expect("the writer acknowledged records");
    let ins = inspect(dir).unwrap();
    assert!(
        !matches!(ins.health(), Health::Corrupt(_)),
        "the log is corrupt: {:?}",
        ins.health()
    );
    let opts = Options::default()
        .with_segment_size(64 * 1024)
        .with_sync(SyncPolicy::Manual)
        .with_max_record_size(4 << 20);
    let wal = Wal::open(dir, opts).unwrap_or_else(|e| panic!("reopen failed: {e}"));
    let report = wal.recovery().clone();
    assert!(
        report.next_lsn > max,
        "acknowledged LSN {max} lost: the log ends before {}",
        report.next_lsn
    );
    let mut want = 1;
    for r in wal.iter_from(1) {
        assert_eq!(r.lsn(), want, "LSNs must be contiguous");
        assert!(
            r.data() == record(want, len(want)).as_slice(),
            "record {want} differs from what was appended"
        );
        want += 1;
    }
    assert_eq!(want, report.next_lsn);
    // A reopened WAL goes on too.
    assert_eq!(wal.append(b"after reopen").unwrap(), want);
    wal.close().unwrap();
}

/// The full-disk scenario on the file system mounted at `root`, with the writer on `io`.
/// Returns what the writer printed.
fn fill_and_free(root: &Path, filler_mib: usize, io: &str, fs: &str) -> Transcript {
    // A filler file written first, deleted later to give the space back.
    let filler = root.join("filler");
    std::fs::write(&filler, vec![0xA5u8; filler_mib << 20]).unwrap();
    let dir = root.join(format!("wal-{io}"));
    let mut c = child(&dir, "fill")
        .env(CHILD_IO, io)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let stderr = c.stderr.take().unwrap();
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut t = Transcript::default();
    let mut full = false;
    for line in BufReader::new(c.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        parse_line(&mut t, &line);
        if line == "full" {
            full = true;
            t.acks_at_full = t.acks.len();
            // Let the writer's rotation worker finish the retry its last error asked for, so
            // that the space comes back after a failed attempt, not during one. (An ordering
            // aid, not a timing assertion: if the worker is slower, the case is only weaker.)
            std::thread::sleep(std::time::Duration::from_millis(200));
            std::fs::remove_file(&filler).unwrap();
            let _ = Command::new("sync").arg("-f").arg(root).status();
            writeln!(stdin, "go").unwrap();
            stdin.flush().unwrap();
        }
    }
    let status = c.wait().unwrap();
    let stderr = err.join().unwrap();
    println!(
        "disk full on {fs} ({io}, took the {} path): {} records acknowledged before the first error, \
         {} when the disk was full, {} in all, {} appended while the disk was full and made durable after; writer {}; \
         errors: {:#?}",
        t.path.as_deref().unwrap_or("?"),
        t.errors.first().map_or(0, |(_, lsn, _)| lsn - 1),
        t.acks_at_full,
        t.acks.len(),
        t.pending,
        if status.success() { "exit 0".to_string() } else { describe(status, "") },
        t.errors
    );
    assert!(status.success(), "{}", describe(status, &stderr));
    assert!(
        full && t.closed,
        "the writer did not finish: {t:?}\n{stderr}"
    );
    for (code, lsn, msg) in &t.errors {
        assert_eq!(
            *code, 28,
            "append {lsn} failed with errno {code}, not ENOSPC: {msg}"
        );
        assert!(
            msg.contains("No space left on device"),
            "the error of append {lsn} does not say the disk is full: {msg}"
        );
    }
    assert!(t.resumed.is_some(), "the writer resumed");
    check_acknowledged(&dir, &t, |l| t.lens[&l]);
    t
}

/// Opens a WAL on `root` with `io` and expects a typed refusal; returns its text.
fn refused(root: &Path, io: IoMode) -> String {
    let dir = root.join(format!("refused-{io:?}"));
    match Wal::open(&dir, Options::default().with_io(io)) {
        Ok(wal) => panic!(
            "{io:?} was not refused (took the {} path)",
            wal.recovery().io_path
        ),
        Err(e) => {
            println!("refused {io:?}: {e}");
            e.to_string()
        }
    }
}

/// The disk-full scenario on `kind` on every I/O path: the paths the file system allows fill
/// it and go on after space is freed; the others must be refused at open; `Auto` must take
/// the direct path wherever the file system has a device, the mapping on tmpfs.
fn disk_full_on(kind: Kind, test: &str) {
    if !need_root(test) {
        return;
    }
    let paths = kind.io_paths();
    for io in paths {
        let Some(m) = Mount::or_skip(kind, 16, test) else {
            return;
        };
        // Loop images larger than the writer needs keep only a few MiB free (tmpfs and the
        // 16 MiB ext4 are small already).
        m.ballast(12);
        let t = fill_and_free(m.path(), 3, io, kind.name());
        assert_eq!(t.path.as_deref(), Some(*io), "{io} on {}", kind.name());
    }
    let m = Mount::or_skip(kind, 16, test).unwrap();
    let wal = Wal::open(
        m.path().join("auto"),
        Options::default().with_segment_size(1 << 20),
    )
    .unwrap();
    let report = wal.recovery().clone();
    let want = if kind == Kind::Tmpfs {
        "mmap"
    } else {
        "direct"
    };
    assert_eq!(report.io_path.name(), want, "auto on {}", kind.name());
    wal.close().unwrap();
    match kind {
        Kind::Tmpfs => {
            let msg = refused(m.path(), IoMode::Direct);
            assert!(msg.contains("direct I/O is not available"), "{msg}");
        }
        Kind::Btrfs => {
            let msg = refused(m.path(), IoMode::Mmap);
            assert!(msg.contains("copy-on-write"), "{msg}");
        }
        Kind::Ext4 | Kind::Xfs => {}
    }
}

#[test]
fn a_full_tmpfs_is_a_typed_error_and_the_wal_goes_on_after_space_is_freed() {
    disk_full_on(
        Kind::Tmpfs,
        "a_full_tmpfs_is_a_typed_error_and_the_wal_goes_on_after_space_is_freed",
    );
}

#[test]
fn a_full_ext4_is_a_typed_error_and_the_wal_goes_on_after_space_is_freed() {
    disk_full_on(
        Kind::Ext4,
        "a_full_ext4_is_a_typed_error_and_the_wal_goes_on_after_space_is_freed",
    );
}

#[test]
fn a_full_xfs_is_a_typed_error_and_the_wal_goes_on_after_space_is_freed() {
    disk_full_on(
        Kind::Xfs,
        "a_full_xfs_is_a_typed_error_and_the_wal_goes_on_after_space_is_freed",
    );
}

#[test]
fn a_full_btrfs_is_a_typed_error_and_the_wal_goes_on_after_space_is_freed() {
    disk_full_on(
        Kind::Btrfs,
        "a_full_btrfs_is_a_typed_error_and_the_wal_goes_on_after_space_is_freed",
    );
}

/// Why `IoMode::Mmap` is refused on btrfs: stores through a mapping of a file on a full btrfs
/// die of `SIGBUS` (copy-on-write: a store into a page that was written back needs new space,
/// and the page fault cannot report that it has none). This drives vault-segment's mapping
/// directly, below the `Wal` that refuses it, and expects the writer to be killed. Ignored
/// because it asserts the kernel's behaviour, not vault's: run it with `--ignored` (as root).
#[test]
#[ignore = "demonstrates the kernel behaviour behind Error::MmapUnsupported (root, btrfs)"]
fn stores_through_a_mapping_on_a_full_btrfs_die_of_sigbus() {
    if !need_root("stores_through_a_mapping_on_a_full_btrfs_die_of_sigbus") {
        return;
    }
    let Some(m) = Mount::or_skip(Kind::Btrfs, 16, "stores_through_a_mapping_on_a_full_btrfs")
    else {
        return;
    };
    m.ballast(12);
    let out = child(&m.path().join("wal"), "raw-mmap").output().unwrap();
    let acks = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("ack"))
        .count();
    println!(
        "the mapping on a full btrfs: {acks} records synced, then {}",
        describe(out.status, "")
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(7),
        "expected SIGBUS; stdout tail: {}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
    );
}

#[test]
fn a_file_size_limit_is_a_typed_error_for_the_record_that_needs_it() {
    for io in ["mmap", "direct"] {
        file_size_limit_on(io);
    }
}

fn file_size_limit_on(io: &str) {
    // RLIMIT_FSIZE of 256 KiB: 64 KiB segments are fine, the 512 KiB records' enlarged
    // segments are not. SIGXFSZ is ignored (as servers do), so the limit shows up as EFBIG.
    let tmp = tempfile::tempdir().unwrap();
    if io == "direct"
        && !vault_core::Storage::file_system(&vault_core::FsStorage, tmp.path())
            .unwrap()
            .direct_io
    {
        println!("skipped the direct half: no direct I/O in the temporary directory");
        return;
    }
    let dir = tmp.path().join("wal");
    let exe = std::env::current_exe().unwrap();
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg("ulimit -f 256 && trap '' XFSZ && exec \"$0\" \"$@\"")
        .arg(&exe)
        .args([
            "--exact",
            "disk_full_writer_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, &dir)
        .env(CHILD_MODE, "fsize")
        .env(CHILD_IO, io);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", describe(out.status, &stderr));
    let mut t = Transcript::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        parse_line(&mut t, line);
    }
    assert!(t.closed, "{io}: the writer did not finish: {t:?}\n{stderr}");
    assert_eq!(t.errors.len(), 2, "{io}: {t:?}");
    for (code, lsn, msg) in &t.errors {
        assert_eq!(
            *code, 27,
            "append {lsn} failed with errno {code}, not EFBIG: {msg}"
        );
    }
    assert_eq!(t.acks.len(), 450);
    // The two refused records took no LSN: the log is the 450 small records.
    check_acknowledged(&dir, &t, small_len);
}
