//! The crash-simulating storage: what survives a simulated power loss, and injected faults.
//!
//! These tests are about the simulator's own model, which is the same whichever I/O path a
//! segment names (see `SimStorage::file_system`), so they create their segments on the mmap
//! path; the tests of the code above it run on both paths.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use vault_segment::Access;
use vault_segment::IoPath;

use vault_segment::sim::{
    CrashChoice, CrashPoint, DirOp, DirtyPage, FaultError, OpKind, PageFate, SimStorage, PAGE_SIZE,
};
use vault_segment::{partial_crc, Activation, Segment, SegmentAppender, Stop, Storage};

const DIR: &str = "/wal";

fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

fn storage() -> SimStorage {
    let sim = SimStorage::new();
    sim.create_dir_all(&dir()).unwrap();
    sim
}

/// A segment of 4 pages holding one record that spans pages 0..=2, published, not synced.
fn segment_with_record(sim: &SimStorage) -> (SegmentAppender, Vec<u8>) {
    let mut app = Segment::create(sim, &dir(), 1, 4 * PAGE_SIZE as u64, IoPath::Mmap)
        .unwrap()
        .activate(1);
    let rec: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8 + 1).collect();
    app.append(&rec, partial_crc(&rec)).unwrap();
    app.publish();
    (app, rec)
}

fn records_after(crashed: &SimStorage, path: &Path) -> (Activation, u64) {
    let seg = Segment::open(crashed, path, 1, Access::Read).unwrap();
    let scan = seg.scan();
    (scan.activation, scan.records)
}

#[test]
fn a_crash_keeping_no_dirty_page_loses_every_unsynced_store() {
    let sim = storage();
    let (app, _) = segment_with_record(&sim);
    let path = app.segment().path().to_path_buf();
    let snap = sim.snapshot();
    let pages: Vec<usize> = snap.dirty_pages().iter().map(|p| p.page).collect();
    assert_eq!(pages, [0, 1, 2], "activation and record dirty pages 0..=2");

    let lost = snap.crash(&CrashChoice::none());
    assert_eq!(records_after(&lost, &path), (Activation::Missing, 0));

    let kept = snap.crash(&CrashChoice::all(&snap));
    assert_eq!(records_after(&kept, &path), (Activation::Valid(1), 1));
}

#[test]
fn a_sync_of_a_range_makes_exactly_its_pages_durable() {
    let sim = storage();
    let (app, _) = segment_with_record(&sim);
    app.segment().sync_to(PAGE_SIZE).unwrap();
    let pages: Vec<usize> = sim
        .snapshot()
        .dirty_pages()
        .iter()
        .map(|p| p.page)
        .collect();
    assert_eq!(pages, [1, 2], "page 0 was synced, pages 1 and 2 were not");

    app.segment().sync_to(app.offset()).unwrap();
    assert!(sim.snapshot().dirty_pages().is_empty());
    let crashed = sim.crash(&CrashChoice::none());
    assert_eq!(
        records_after(&crashed, app.segment().path()),
        (Activation::Valid(1), 1)
    );
}

#[test]
fn a_torn_page_holds_the_chosen_sectors_and_durable_bytes_elsewhere() {
    let sim = storage();
    let (app, _) = segment_with_record(&sim);
    let path = app.segment().path().to_path_buf();
    let snap = sim.snapshot();
    let durable = sim.durable_bytes(&path).unwrap();
    let page1 = snap.dirty_pages()[1];
    assert_eq!(page1.page, 1);
    let everything = snap
        .crash(&CrashChoice::all(&snap))
        .durable_bytes(&path)
        .unwrap();

    let torn = snap.crash(&CrashChoice {
        pages: vec![(page1, PageFate::torn_after(3))],
        dir_ops: 0,
    });
    let bytes = torn.durable_bytes(&path).unwrap();
    let (lo, cut, hi) = (PAGE_SIZE, PAGE_SIZE + 3 * 512, 2 * PAGE_SIZE);
    assert_eq!(
        bytes[lo..cut],
        everything[lo..cut],
        "first 3 sectors written"
    );
    assert_eq!(
        bytes[cut..hi],
        durable[cut..hi],
        "the rest kept its durable bytes"
    );
    assert_ne!(bytes[lo..cut], durable[lo..cut]);
    assert_eq!(bytes[..lo], durable[..lo], "other pages untouched");
    // The record's frame cannot validate with a torn page.
    assert_eq!(records_after(&torn, &path).1, 0);

    let zeroed = snap.crash(&CrashChoice {
        pages: vec![(page1, PageFate::Zeroed)],
        dir_ops: 0,
    });
    assert!(zeroed.durable_bytes(&path).unwrap()[lo..hi]
        .iter()
        .all(|&b| b == 0));
    let garbage = snap.crash(&CrashChoice {
        pages: vec![(page1, PageFate::Garbage(7))],
        dir_ops: 0,
    });
    let g = garbage.durable_bytes(&path).unwrap();
    assert_ne!(g[lo..hi], everything[lo..hi]);
    assert_ne!(g[lo..hi], durable[lo..hi]);
}

#[test]
fn unsynced_directory_operations_survive_only_up_to_the_chosen_prefix() {
    let sim = storage();
    let (a, b, c) = (dir().join("a"), dir().join("b"), dir().join("c"));
    sim.create_allocated(&a, 4096, IoPath::Mmap).unwrap();
    sim.create_allocated(&b, 4096, IoPath::Mmap).unwrap();
    sim.rename(&a, &c).unwrap();
    sim.remove(&b).unwrap();
    let snap = sim.snapshot();
    assert_eq!(snap.pending_dir_ops().len(), 4);
    assert!(matches!(snap.pending_dir_ops()[2], DirOp::Rename { .. }));
    let expect: [&[&PathBuf]; 5] = [&[], &[&a], &[&a, &b], &[&b, &c], &[&c]];
    for (k, names) in expect.iter().enumerate() {
        let crashed = snap.crash(&CrashChoice {
            pages: vec![],
            dir_ops: k,
        });
        let got = crashed.live_names(&dir());
        let want: Vec<PathBuf> = names.iter().map(|p| (*p).clone()).collect();
        assert_eq!(got, want, "prefix of {k} dir ops");
    }
    sim.sync_dir(&dir()).unwrap();
    assert!(sim.snapshot().pending_dir_ops().is_empty());
    assert_eq!(sim.crash(&CrashChoice::none()).live_names(&dir()), [c]);
}

#[test]
fn a_failed_sync_loses_its_pages_even_after_a_later_sync_succeeds() {
    let sim = storage();
    let (app, _) = segment_with_record(&sim);
    let path = app.segment().path().to_path_buf();
    let region = sim.map(&path, Access::Read).unwrap();
    sim.fail_nth(OpKind::Sync, sim.calls(OpKind::Sync) + 1, FaultError::Io);
    assert!(region.sync(0, 4 * PAGE_SIZE).is_err());
    // The kernel marked the pages clean: nothing is dirty, nothing will be written.
    assert!(sim.snapshot().dirty_pages().is_empty());
    region.sync(0, 4 * PAGE_SIZE).unwrap();
    let crashed = sim.crash(&CrashChoice::none());
    assert_eq!(records_after(&crashed, &path), (Activation::Missing, 0));
}

#[test]
fn only_the_chosen_call_of_a_kind_fails() {
    let sim = storage();
    sim.fail_nth(OpKind::Allocate, 2, FaultError::NoSpace);
    let names: Vec<PathBuf> = (0..3).map(|i| dir().join(format!("f{i}"))).collect();
    let results: Vec<bool> = names
        .iter()
        .map(|p| sim.create_allocated(p, 4096, IoPath::Mmap).is_ok())
        .collect();
    assert_eq!(results, [true, false, true]);
    let err = sim.create_allocated(&dir().join("x"), 4096, IoPath::Mmap);
    assert!(err.is_ok());
    sim.fail_from(OpKind::SyncDir, 1, FaultError::Io);
    for _ in 0..3 {
        let e = sim.sync_dir(&dir()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(FaultError::Io.raw_os_error()), "EIO");
    }
    sim.clear_faults();
    sim.sync_dir(&dir()).unwrap();
    assert_eq!(sim.calls(OpKind::SyncDir), 4);
}

#[test]
fn a_failed_allocation_leaves_an_empty_file_that_cannot_be_mapped() {
    let sim = storage();
    sim.fail_nth(OpKind::Allocate, 1, FaultError::NoSpace);
    let p = dir().join("f");
    let e = sim.create_allocated(&p, 8192, IoPath::Mmap).unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(FaultError::NoSpace.raw_os_error()),
        "ENOSPC"
    );
    assert_eq!(sim.live_names(&dir()), std::slice::from_ref(&p));
    assert_eq!(
        sim.map(&p, Access::Write(IoPath::Mmap)).unwrap_err().kind(),
        std::io::ErrorKind::InvalidData
    );
    // Segment::create cleans up after itself.
    sim.fail_nth(OpKind::Allocate, 2, FaultError::NoSpace);
    assert!(Segment::create(&sim, &dir(), 1, 4096, IoPath::Mmap).is_err());
    assert_eq!(sim.live_names(&dir()), [p]);
}

#[test]
fn the_directory_lock_is_exclusive_until_dropped() {
    let sim = storage();
    let held = sim.lock_dir(&dir()).unwrap();
    assert_eq!(
        sim.lock_dir(&dir()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    // A crashed storage is a new machine: no lock held.
    let crashed = sim.crash(&CrashChoice::none());
    drop(crashed.lock_dir(&dir()).unwrap());
    drop(held);
    drop(sim.lock_dir(&dir()).unwrap());
}

#[test]
fn recorded_snapshots_bracket_every_operation() {
    let sim = storage();
    sim.record_snapshots(true);
    sim.set_mark(41);
    let p = dir().join("f");
    sim.create_allocated(&p, 4096, IoPath::Mmap).unwrap();
    sim.set_mark(42);
    sim.sync_dir(&dir()).unwrap();
    let snaps = sim.take_snapshots();
    assert_eq!(snaps.len(), 4);
    assert!(matches!(
        snaps[0].point,
        CrashPoint::Before {
            op: 2,
            kind: OpKind::Allocate,
            ..
        }
    ));
    assert!(matches!(
        snaps[3].point,
        CrashPoint::After {
            op: 3,
            kind: OpKind::SyncDir,
            ok: true,
            ..
        }
    ));
    assert_eq!(
        snaps.iter().map(|s| s.mark).collect::<Vec<_>>(),
        [41, 41, 42, 42]
    );
    assert!(snaps[0].pending_dir_ops().is_empty());
    assert_eq!(snaps[1].pending_dir_ops().len(), 1);
    assert!(snaps[3].pending_dir_ops().is_empty());
}

#[test]
fn random_choices_replay_from_their_seed_and_name_only_dirty_pages() {
    let sim = storage();
    let (_app, _) = segment_with_record(&sim);
    let snap = sim.snapshot();
    let dirty = snap.dirty_pages();
    let mut seen_some = false;
    for seed in 0..64 {
        let c = CrashChoice::random(&snap, seed);
        assert_eq!(c, CrashChoice::random(&snap, seed));
        assert!(c.pages.iter().all(|(p, _)| dirty.contains(p)));
        seen_some |= !c.pages.is_empty();
    }
    assert!(seen_some);
    let unknown = DirtyPage { file: 999, page: 0 };
    let c = CrashChoice {
        pages: vec![(unknown, PageFate::Whole)],
        dir_ops: 0,
    };
    assert_eq!(snap.crash(&c).live_names(&dir()).len(), 1);
}

#[test]
fn one_storage_serves_many_threads_as_a_dyn_storage() {
    let sim = Arc::new(storage());
    let dynamic: Arc<dyn Storage> = Arc::clone(&sim) as Arc<dyn Storage>;
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let s = Arc::clone(&dynamic);
            std::thread::spawn(move || {
                let mut app = Segment::create(&*s, Path::new(DIR), t + 1, 8192, IoPath::Mmap)
                    .unwrap()
                    .activate(1);
                for i in 0..20u8 {
                    app.append(&[i; 100], partial_crc(&[i; 100])).unwrap();
                    app.publish();
                    app.segment().sync_to(app.offset()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let crashed = sim.crash(&CrashChoice::none());
    assert_eq!(crashed.live_names(&dir()).len(), 4);
    for name in crashed.live_names(&dir()) {
        let idx = vault_segment::parse_segment_name(name.file_name().unwrap().to_str().unwrap())
            .unwrap()
            .index;
        let scan = Segment::open(&crashed, &name, idx, Access::Read)
            .unwrap()
            .scan();
        assert_eq!((scan.records, scan.stop), (20, Stop::End));
    }
}

#[test]
fn the_hook_runs_after_every_operation_and_may_call_the_storage() {
    use std::sync::Mutex;

    let sim = storage();
    let seen = Arc::new(Mutex::new(Vec::new()));
    {
        let (inner, seen) = (sim.clone(), Arc::clone(&seen));
        sim.set_hook(Some(Arc::new(move |p: &CrashPoint| {
            let CrashPoint::After { kind, .. } = p else {
                panic!("hooks see only 'after' points");
            };
            seen.lock().unwrap().push(*kind);
            // Calling the storage from the hook does not deadlock; the hook sees that call too.
            if *kind == OpKind::Allocate {
                inner.sync_dir(&dir()).unwrap();
            }
        })));
    }
    sim.create_allocated(&dir().join("f"), 4096, IoPath::Mmap)
        .unwrap();
    sim.set_hook(None);
    sim.remove(&dir().join("f")).unwrap();
    assert_eq!(*seen.lock().unwrap(), [OpKind::Allocate, OpKind::SyncDir]);
    // The hook's directory fsync made the creation durable.
    assert_eq!(sim.crash(&CrashChoice::none()).live_names(&dir()).len(), 1);
}

/// `write_file` + `sync_file` + `rename` + `sync_dir`: each step's crash outcome.
#[test]
fn whole_file_writes_are_durable_only_after_sync_file_and_names_after_sync_dir() {
    let sim = storage();
    let tmp = dir().join("meta.tmp");
    let path = dir().join("meta");
    let old: Vec<u8> = (0..5000u32).map(|i| (i % 13) as u8 + 1).collect();
    sim.write_file(&path, &old).unwrap();
    assert_eq!(sim.read_file(&path).unwrap(), old);
    // Created, neither synced: a crash keeps no name, or the name with an empty file.
    let snap = sim.snapshot();
    assert_eq!(snap.pending_dir_ops().len(), 1);
    assert!(snap.crash(&CrashChoice::none()).read_file(&path).is_err());
    let c = CrashChoice {
        pages: vec![],
        dir_ops: 1,
    };
    assert!(snap.crash(&c).read_file(&path).unwrap().is_empty());
    // Page 1 alone (of 2): the new length comes with it, page 0 reads as zeros.
    let page1 = DirtyPage { file: 1, page: 1 };
    assert_eq!(
        snap.dirty_pages(),
        vec![DirtyPage { file: 1, page: 0 }, page1]
    );
    let c = CrashChoice {
        pages: vec![(page1, PageFate::Whole)],
        dir_ops: 1,
    };
    let got = snap.crash(&c).read_file(&path).unwrap();
    assert_eq!(got.len(), old.len());
    assert!(got[..PAGE_SIZE].iter().all(|&b| b == 0));
    assert_eq!(got[PAGE_SIZE..], old[PAGE_SIZE..]);
    // Synced, name durable: survives everything.
    sim.sync_file(&path).unwrap();
    sim.sync_dir(&dir()).unwrap();
    assert!(sim.snapshot().dirty_pages().is_empty());
    assert_eq!(
        sim.crash(&CrashChoice::none()).read_file(&path).unwrap(),
        old
    );

    // Replace by rename: a shorter new content in a temporary name.
    let new = b"new content".to_vec();
    sim.write_file(&tmp, &new).unwrap();
    let before_sync = sim.snapshot();
    sim.sync_file(&tmp).unwrap();
    sim.rename(&tmp, &path).unwrap();
    let before_dir_sync = sim.snapshot();
    // Renamed but the rename not durable: old content; the rename kept: new content (it was
    // synced before the rename). Never a mix.
    assert_eq!(before_dir_sync.pending_dir_ops().len(), 2);
    for dir_ops in 0..=2 {
        let c = CrashChoice {
            pages: vec![],
            dir_ops,
        };
        let got = before_dir_sync.crash(&c).read_file(&path).unwrap();
        assert_eq!(&got, if dir_ops == 2 { &new } else { &old });
    }
    // Before the file sync the rename had not happened; the temporary file may be torn.
    let c = CrashChoice::all(&before_sync);
    assert_eq!(before_sync.crash(&c).read_file(&tmp).unwrap(), new);
    assert_eq!(before_sync.crash(&c).read_file(&path).unwrap(), old);

    // Rewriting in place, shorter, without a sync: the length goes with the pages.
    sim.sync_dir(&dir()).unwrap();
    sim.write_file(&path, b"x").unwrap();
    let snap = sim.snapshot();
    let dirty = snap.dirty_pages();
    assert_eq!(dirty.len(), 1);
    assert_eq!(
        snap.crash(&CrashChoice::none()).read_file(&path).unwrap(),
        new
    );
    assert_eq!(
        snap.crash(&CrashChoice::all(&snap))
            .read_file(&path)
            .unwrap(),
        b"x"
    );
}

/// A failed `sync_file` is fsyncgate: the bytes are marked clean and a crash loses them; a
/// failed `write_file` leaves the file created and empty.
#[test]
fn whole_file_write_faults_follow_linux() {
    let sim = storage();
    let path = dir().join("meta");
    sim.fail_nth(OpKind::WriteFile, 1, FaultError::NoSpace);
    assert!(sim.write_file(&path, b"abc").is_err());
    assert!(sim.read_file(&path).unwrap().is_empty());
    sim.write_file(&path, b"abc").unwrap();
    sim.sync_dir(&dir()).unwrap();
    sim.fail_nth(OpKind::SyncFile, 1, FaultError::Io);
    assert!(sim.sync_file(&path).is_err());
    assert!(sim.snapshot().dirty_pages().is_empty(), "marked clean");
    sim.sync_file(&path).unwrap();
    let crashed = sim.crash(&CrashChoice::none());
    assert!(crashed.read_file(&path).unwrap().is_empty(), "fsyncgate");
    assert_eq!(sim.read_file(&path).unwrap(), b"abc");
}

/// `FsStorage` does the same operations on a real directory.
#[test]
fn fs_storage_whole_file_operations() {
    let d = tempfile::tempdir().unwrap();
    let fs = vault_segment::FsStorage;
    let path = d.path().join("meta");
    fs.write_file(&path, b"hello world").unwrap();
    fs.sync_file(&path).unwrap();
    fs.write_file(&path, b"bye").unwrap();
    assert_eq!(fs.read_file(&path).unwrap(), b"bye");
    assert_eq!(
        fs.read_file(&d.path().join("none")).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
}
