//! What each platform's storage must do the same on real files, whatever the OS allows: drop
//! or replace a segment that a reader still maps (Windows refuses to delete or rename over a
//! mapped file: vault defers the removal until the last reader lets go), and lock the
//! directory. Run on Linux by `cargo test` and on Windows under wine by `cargo xtask cross`.

use std::path::Path;

use vault_core::{Error, Options, SyncPolicy, Wal};
use vault_segment::{parse_segment_name, IoPath};

fn options() -> Options {
    Options::default()
        .with_segment_size(64 * 1024)
        .with_sync(SyncPolicy::Always)
}

/// The segment files in `dir`, by name (no `-pre` spares, nothing else).
fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| parse_segment_name(n).is_some_and(|s| !s.pre))
        .collect();
    names.sort();
    names
}

/// Files in `dir` that vault set aside to delete later (Windows only ever makes them).
fn set_aside(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".vault-"))
        .collect()
}

fn record(lsn: u64) -> Vec<u8> {
    format!("record {lsn:06} ").repeat(100).into_bytes()
}

#[test]
fn truncate_front_succeeds_while_a_reader_holds_a_record_of_a_dropped_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = Wal::open(tmp.path(), options().with_io(vault_core::IoMode::Mmap)).unwrap();
    for lsn in 1..=200 {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
    }
    let before = segment_files(tmp.path());
    assert!(before.len() >= 3, "segments: {before:?}");
    let held = wal.read(1).expect("record 1");
    let dropped = wal.truncate_front(150).unwrap();
    assert!(dropped >= 1, "nothing dropped");
    // The record stays readable: its mapping lives while it does.
    assert_eq!(held.data(), &record(1)[..]);
    let after = segment_files(tmp.path());
    assert!(
        !after.contains(&before[0]),
        "the dropped segment's name is still there: {after:?}"
    );
    drop(held);
    assert!(
        set_aside(tmp.path()).is_empty(),
        "a dropped segment outlived its last reader: {:?}",
        set_aside(tmp.path())
    );
    wal.append(&record(201)).unwrap();
    wal.close().unwrap();
    let wal = Wal::open(tmp.path(), options()).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.next_lsn, 202);
    assert!(wal.first_lsn() > 1 && wal.first_lsn() <= 150);
    assert_eq!(wal.read(200).unwrap().data(), &record(200)[..]);
}

#[test]
fn truncate_back_replaces_a_segment_a_reader_still_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = Wal::open(tmp.path(), options().with_io(vault_core::IoMode::Mmap)).unwrap();
    for lsn in 1..=20 {
        wal.append(&record(lsn)).unwrap();
    }
    let held = wal.read(15).expect("record 15");
    wal.truncate_back(10).unwrap();
    assert_eq!(
        held.data(),
        &record(15)[..],
        "the old mapping keeps the old bytes"
    );
    assert_eq!(wal.append(b"after the cut").unwrap(), 10);
    drop(held);
    assert!(
        set_aside(tmp.path()).is_empty(),
        "the replaced file outlived its last reader: {:?}",
        set_aside(tmp.path())
    );
    wal.close().unwrap();
    let wal = Wal::open(tmp.path(), options()).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.next_lsn, 11);
    assert_eq!(wal.read(9).unwrap().data(), &record(9)[..]);
    assert_eq!(wal.read(10).unwrap().data(), b"after the cut");
}

#[test]
fn a_second_writer_is_refused_and_the_lock_goes_with_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = Wal::open(tmp.path(), options()).unwrap();
    assert!(matches!(
        Wal::open(tmp.path(), options()),
        Err(Error::Locked { .. })
    ));
    wal.close().unwrap();
    let wal = Wal::open(tmp.path(), options()).unwrap();
    wal.close().unwrap();
}

#[test]
fn auto_picks_a_path_this_platform_has() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = Wal::open(tmp.path(), options()).unwrap();
    let report = wal.recovery().clone();
    let fs = vault_segment::Storage::file_system(&vault_segment::FsStorage, tmp.path()).unwrap();
    let expected = if fs.direct_io {
        IoPath::Direct
    } else {
        IoPath::Mmap
    };
    assert_eq!(report.io_path, expected, "on {}", fs.name);
    wal.append(b"x").unwrap();
    wal.close().unwrap();
}

/// A crash between setting a mapped segment aside and renaming its replacement in leaves the
/// segment as `NAME.vault-replaced` with `NAME` free. The next writer's lock renames it back;
/// until then a reader without the lock (`inspect`, `vault verify`) sees the same log, not a
/// missing segment.
#[cfg(windows)]
#[test]
fn a_segment_set_aside_by_an_interrupted_replacement_is_read_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let last = 150;
    {
        let wal = Wal::open(dir.path(), options()).unwrap();
        for lsn in 1..=last {
            assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
        }
        wal.close().unwrap();
    }
    let names = segment_files(dir.path());
    assert!(
        names.len() >= 3,
        "the log spans several segments: {names:?}"
    );
    let middle = dir.path().join(&names[1]);
    let aside = dir.path().join(format!("{}.vault-replaced", names[1]));
    std::fs::rename(&middle, &aside).unwrap();
    let ins = vault_core::inspect(dir.path()).unwrap();
    assert!(
        matches!(ins.health(), vault_core::Health::Clean),
        "{:?}",
        ins.health()
    );
    let seen: Vec<Vec<u8>> = ins.records_from(1).map(|r| r.to_vec()).collect();
    assert_eq!(seen.len() as u64, last);
    assert!(seen.iter().zip(1..).all(|(r, lsn)| *r == record(lsn)));
    let wal = Wal::open(dir.path(), options()).unwrap();
    assert!(
        middle.exists() && !aside.exists(),
        "the lock renamed it back"
    );
    for lsn in 1..=last {
        assert!(wal.read(lsn).unwrap().data() == record(lsn), "record {lsn}");
    }
    wal.close().unwrap();
}
