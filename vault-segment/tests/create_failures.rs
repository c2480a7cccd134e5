//! A segment whose preparation fails leaves nothing behind: no `-pre` file and no file under
//! the final name, whichever step failed. A leftover final-named file would be a second file
//! with that index once the worker retries at a later time (the name carries the creation
//! time), and `open` refuses a log with two files of one index.

use std::path::PathBuf;

use vault_segment::sim::{CrashChoice, FaultError, OpKind, SimStorage};
use vault_segment::{Segment, Storage};

fn dir() -> PathBuf {
    PathBuf::from("/wal")
}

#[test]
fn a_failed_step_of_segment_creation_leaves_no_file_under_either_name() {
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
            Segment::create(&sim, &dir(), 7, 8192).is_err(),
            "{kind:?} failed but create succeeded"
        );
        assert_eq!(sim.live_names(&dir()), Vec::<PathBuf>::new(), "{kind:?}");
        // Once the removal is durable, nothing of it is left on disk either.
        sim.sync_dir(&dir()).unwrap();
        let after = sim.crash(&CrashChoice::none());
        assert_eq!(after.live_names(&dir()), Vec::<PathBuf>::new(), "{kind:?}");
        // And the retry succeeds.
        Segment::create(&sim, &dir(), 7, 8192).unwrap();
        assert_eq!(sim.live_names(&dir()).len(), 1, "{kind:?}");
    }
}
