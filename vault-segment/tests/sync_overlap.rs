//! Overlapping syncs of one segment: a sync whose range starts where an unfinished one ends runs
//! its `msync` at the same time, but returns only once the older range is durable too, and a
//! failure of the older one fails it.
//!
//! The storage is the real file system with a gate in front of `msync`: a sync of the range
//! starting at offset 0 is held until the test releases it (with success or an error), so the
//! order "younger `msync` returns first" happens every run, not by luck of the schedule.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use vault_segment::{partial_crc, DirLock, FsStorage, Region, Segment, Storage};

/// How the held sync ends: `None` while held.
#[derive(Debug, Default)]
struct Gate {
    hold: AtomicBool,
    entered: AtomicUsize,
    release: Mutex<Option<bool>>,
    released: Condvar,
}

impl Gate {
    fn open(&self, ok: bool) {
        *self.release.lock().unwrap() = Some(ok);
        self.released.notify_all();
    }
}

#[derive(Debug)]
struct Gated {
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedRegion {
    inner: Box<dyn Region>,
    gate: Arc<Gate>,
}

// SAFETY: every pointer and length comes from the wrapped region, which upholds the contract.
unsafe impl Region for GatedRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.inner.as_ptr()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn writable(&self) -> bool {
        self.inner.writable()
    }
    fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        self.gate.entered.fetch_add(1, Ordering::SeqCst);
        if offset == 0 && self.gate.hold.load(Ordering::SeqCst) {
            let mut r = self.gate.release.lock().unwrap();
            while r.is_none() {
                r = self.gate.released.wait(r).unwrap();
            }
            if *r == Some(false) {
                return Err(io::Error::from_raw_os_error(5));
            }
        }
        self.inner.sync(offset, len)
    }
    fn prefault(&self) -> io::Result<()> {
        self.inner.prefault()
    }
}

impl Storage for Gated {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        FsStorage.create_dir_all(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<DirLock> {
        FsStorage.lock_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        FsStorage.list(dir)
    }
    fn create_allocated(&self, path: &Path, len: u64) -> io::Result<()> {
        FsStorage.create_allocated(path, len)
    }
    fn map(&self, path: &Path, writable: bool) -> io::Result<Box<dyn Region>> {
        Ok(Box::new(GatedRegion {
            inner: FsStorage.map(path, writable)?,
            gate: Arc::clone(&self.gate),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        FsStorage.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        FsStorage.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        FsStorage.sync_dir(dir)
    }
}

/// A segment with two records: the first spans pages 0 and 1, the second ends in page 2.
/// Returns it with both records' ends, the gate armed.
fn two_records(dir: &Path) -> (Segment, Arc<Gate>, usize, usize) {
    let gate = Arc::new(Gate::default());
    let storage = Gated {
        gate: Arc::clone(&gate),
    };
    let mut app = Segment::create(&storage, dir, 1, 64 * 1024)
        .unwrap()
        .activate(1);
    let mut ends = [0; 2];
    for (i, fill) in [1u8, 2].into_iter().enumerate() {
        let p = vec![fill; 5000];
        app.append(&p, partial_crc(&p)).unwrap();
        app.publish();
        ends[i] = app.offset();
    }
    gate.hold.store(true, Ordering::SeqCst);
    (app.segment().clone(), gate, ends[0], ends[1])
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_younger_sync_overlaps_the_older_but_returns_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, gate, end1, end2) = two_records(dir.path());
    let older = {
        let seg = seg.clone();
        std::thread::spawn(move || seg.sync_to(end1))
    };
    wait_for("the older msync starts", || {
        gate.entered.load(Ordering::SeqCst) >= 1
    });
    let younger_done = Arc::new(AtomicBool::new(false));
    let younger = {
        let (seg, done) = (seg.clone(), Arc::clone(&younger_done));
        std::thread::spawn(move || {
            let r = seg.sync_to(end2);
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    // The younger range starts in page 1, so its msync is not held: it runs while the older
    // one is in flight.
    wait_for("the younger msync runs alongside the older", || {
        gate.entered.load(Ordering::SeqCst) >= 2
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !younger_done.load(Ordering::SeqCst),
        "the younger sync returned while the older range was not durable"
    );
    assert_eq!(seg.synced_end(), 0, "synced moved past a range in flight");
    gate.open(true);
    older.join().unwrap().unwrap();
    younger.join().unwrap().unwrap();
    assert_eq!(seg.synced_end(), end2);
}

#[test]
fn a_failed_older_sync_fails_the_younger_one_whose_msync_succeeded() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, gate, end1, end2) = two_records(dir.path());
    let older = {
        let seg = seg.clone();
        std::thread::spawn(move || seg.sync_to(end1))
    };
    wait_for("the older msync starts", || {
        gate.entered.load(Ordering::SeqCst) >= 1
    });
    let younger = {
        let seg = seg.clone();
        std::thread::spawn(move || seg.sync_to(end2))
    };
    wait_for("the younger msync runs", || {
        gate.entered.load(Ordering::SeqCst) >= 2
    });
    gate.open(false);
    assert!(older.join().unwrap().is_err());
    assert!(
        younger.join().unwrap().is_err(),
        "the younger sync reported success over a range whose msync failed"
    );
    assert!(seg.sync_failed());
    assert!(seg.synced_end() < end1);
}
