//! A segment whose preparation fails leaves nothing behind: no `-pre` file and no file under
//! the final name, whichever step failed. A leftover final-named file would be a second file
//! with that index once the worker retries at a later time (the name carries the creation
//! time), and `open` refuses a log with two files of one index.

mod common;

use std::path::PathBuf;
use vault_segment::IoPath;

use vault_segment::sim::{CrashChoice, FaultError, OpKind, SimStorage};
use vault_segment::{Segment, Storage};

fn dir() -> PathBuf {
    PathBuf::from("/wal")
}

common::both_io_paths!(sim a_failed_step_of_segment_creation_leaves_no_file_under_either_name);
fn a_failed_step_of_segment_creation_leaves_no_file_under_either_name(io: IoPath) {
    for kind in [
        OpKind::Allocate,
        OpKind::Map,
        OpKind::Prefault,
        OpKind::Sync,
        OpKind::Rename,
        OpKind::SyncDir,
    ] {
        let sim = SimStorage::new();
        sim.create_dir_all(&dir()).unwrap();
        sim.fail_nth(kind, 1, FaultError::Io);
        assert!(
            Segment::create(&sim, &dir(), 7, 8192, io).is_err(),
            "{kind:?} failed but create succeeded"
        );
        assert_eq!(sim.live_names(&dir()), Vec::<PathBuf>::new(), "{kind:?}");
        // Once the removal is durable, nothing of it is left on disk either.
        sim.sync_dir(&dir()).unwrap();
        let after = sim.crash(&CrashChoice::none());
        assert_eq!(after.live_names(&dir()), Vec::<PathBuf>::new(), "{kind:?}");
        // And the retry succeeds.
        Segment::create(&sim, &dir(), 7, 8192, io).unwrap();
        assert_eq!(sim.live_names(&dir()).len(), 1, "{kind:?}");
    }
}

/// The segment indexes of the files in `sim`'s directory.
fn indexes(sim: &SimStorage) -> Vec<u64> {
    let mut v: Vec<u64> = sim
        .live_names(&dir())
        .iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.strip_suffix(".log")?;
            name.rsplit('-').next()?.parse().ok()
        })
        .collect();
    v.sort_unstable();
    v
}

common::both_io_paths!(sim a_failed_enlargement_never_leaves_its_index_without_a_file);
/// An enlargement replaces a spare whose index the worker's later spares follow. Whichever
/// step fails, the index keeps a file (the old spare or the new one, both unactivated) on disk
/// too: with none, a later directory fsync (the worker's next preparation) would make a gap
/// before those spares, and `open` refuses a log with a missing segment.
fn a_failed_enlargement_never_leaves_its_index_without_a_file(io: IoPath) {
    for kind in [
        OpKind::Allocate,
        OpKind::Map,
        OpKind::Prefault,
        OpKind::Sync,
        OpKind::Rename,
        OpKind::SyncDir,
    ] {
        let sim = SimStorage::new();
        sim.create_dir_all(&dir()).unwrap();
        let spare = Segment::create(&sim, &dir(), 7, 8192, io).unwrap();
        let _later = Segment::create(&sim, &dir(), 8, 8192, io).unwrap();
        sim.fail_nth(kind, sim.calls(kind) + 1, FaultError::Io);
        let Err((_, kept)) = spare.enlarge(&sim, &dir(), 1 << 20) else {
            panic!("{kind:?} failed but the enlargement succeeded");
        };
        drop(kept);
        assert_eq!(indexes(&sim), vec![7, 8], "{kind:?}: live");
        // The worker goes on: its next preparation fsyncs the directory.
        let _next = Segment::create(&sim, &dir(), 9, 8192, io).unwrap();
        let after = sim.crash(&CrashChoice::none());
        assert_eq!(indexes(&after), vec![7, 8, 9], "{kind:?}: after a crash");
    }
}
