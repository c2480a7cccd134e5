//! Who may read the log: a fresh log is owner-only (`0700` directory, `0600` files) unless
//! `Options::file_mode` says group-readable; and a name in the log directory that claims a
//! segment but is a symbolic link, a directory or a FIFO is refused with a typed error naming
//! it, before anything is opened, followed or removed.
//!
//! Unix only: permission bits, FIFOs and unprivileged symbolic links are Unix notions; on
//! Windows a log's files inherit the directory's ACL (see `vault_segment::storage`).

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use vault_core::{inspect, Error, FileMode, Options, SyncPolicy, Wal};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn opts() -> Options {
    Options::default()
        .with_segment_size(64 * 1024)
        .with_sync(SyncPolicy::Always)
}

/// Writes a log of a few segments in `dir`; returns its files and their modes while it was
/// open (spares included: close removes them).
fn write_log(dir: &Path, o: Options) -> Vec<(PathBuf, u32)> {
    let wal = Wal::open(dir, o).unwrap();
    for i in 0..2000u32 {
        wal.append(&[i as u8; 100]).unwrap();
    }
    let files = entries(dir)
        .into_iter()
        .map(|f| (f.clone(), mode(&f)))
        .collect();
    println!(
        "{}",
        String::from_utf8_lossy(
            &Command::new("ls")
                .args(["-la", "--time-style=+"])
                .arg(dir)
                .output()
                .unwrap()
                .stdout
        )
    );
    wal.close().unwrap();
    files
}

#[test]
fn a_fresh_log_is_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let files = write_log(&dir, opts());
    assert_eq!(mode(&dir), 0o700, "the directory vault created");
    assert!(files.len() > 2, "segments and spares: {files:?}");
    for (f, m) in &files {
        assert_eq!(*m, 0o600, "{}", f.display());
    }
}

#[test]
fn a_group_readable_log_lets_the_group_read_its_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    write_log(&dir, opts().with_file_mode(FileMode::GroupReadable));
    assert_eq!(mode(&dir), 0o750);
    let ins = inspect(&dir).unwrap();
    let with_records: Vec<PathBuf> = ins
        .segments()
        .iter()
        .filter(|s| s.records > 0)
        .map(|s| s.path.clone())
        .collect();
    assert!(with_records.len() > 1);
    for f in entries(&dir) {
        let want = if with_records.contains(&f) {
            0o640
        } else {
            0o600
        };
        assert_eq!(mode(&f), want, "{}", f.display());
    }
}

#[test]
fn an_existing_directory_keeps_its_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let files = write_log(&dir, opts());
    assert_eq!(mode(&dir), 0o755);
    for (f, m) in &files {
        assert_eq!(*m, 0o600, "{}", f.display());
    }
}

/// A real segment's file name (of a log written elsewhere) and that log's directory.
fn a_segment_name(tmp: &Path) -> (PathBuf, std::ffi::OsString) {
    let real = tmp.join("real");
    write_log(&real, opts());
    let seg = inspect(&real).unwrap().segments()[0].path.clone();
    let name = seg.file_name().unwrap().to_owned();
    (seg, name)
}

/// Opens (and inspects) `dir`, expecting a refusal that names `entry` as `what`, and checks
/// that the directory is unchanged.
fn expect_refused(dir: &Path, entry: &Path, what: &str) {
    let before = entries(dir);
    for err in [
        Wal::open(dir, opts()).expect_err("open refuses"),
        inspect(dir).expect_err("inspect refuses"),
    ] {
        println!("{err}");
        match &err {
            Error::NotRegularFile { path, what: w } => {
                assert_eq!(path, entry);
                assert_eq!(*w, what);
            }
            other => panic!("not NotRegularFile: {other:?}"),
        }
        assert!(err.to_string().contains(&entry.display().to_string()));
    }
    assert_eq!(entries(dir), before, "the directory was modified");
}

#[test]
fn a_symbolic_link_named_like_a_segment_is_refused_and_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let (target, name) = a_segment_name(tmp.path());
    let bytes = std::fs::read(&target).unwrap();
    let dir = tmp.path().join("log");
    std::fs::create_dir(&dir).unwrap();
    let link = dir.join(&name);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    expect_refused(&dir, &link, "a symbolic link");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        bytes,
        "the link's target changed"
    );
    // A `-pre` name is refused too, rather than removed as a leftover.
    let dir2 = tmp.path().join("log2");
    std::fs::create_dir(&dir2).unwrap();
    let pre = dir2.join(name.to_str().unwrap().replace(".log", "-pre.log"));
    std::os::unix::fs::symlink(&target, &pre).unwrap();
    expect_refused(&dir2, &pre, "a symbolic link");
}

#[test]
fn a_directory_named_like_a_segment_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, name) = a_segment_name(tmp.path());
    let dir = tmp.path().join("log");
    std::fs::create_dir_all(dir.join(&name)).unwrap();
    expect_refused(&dir, &dir.join(&name), "a directory");
}

#[test]
fn a_fifo_named_like_a_segment_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, name) = a_segment_name(tmp.path());
    let dir = tmp.path().join("log");
    std::fs::create_dir(&dir).unwrap();
    let fifo = dir.join(&name);
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !matches!(made, Ok(s) if s.success()) {
        println!("SKIPPED a_fifo_named_like_a_segment_is_refused: mkfifo failed ({made:?})");
        return;
    }
    expect_refused(&dir, &fifo, "a FIFO");
}
