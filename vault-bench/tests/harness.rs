//! The comparison harness runs every built-in system end to end on a tiny workload: what it
//! counts adds up. Nothing here looks at a time.

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use vault_bench::harness::{self, SyncMode, Workload};
use vault_bench::suite::systems;

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn tiny(sync: SyncMode, threads: usize) -> Workload {
    Workload {
        record_len: 100,
        sync,
        threads,
        records_per_thread: 128,
        warmup_per_thread: 64,
        segment_size: Some(64 << 10),
        replayed: true,
    }
}

#[test]
fn every_system_runs_every_sync_mode_and_counts_each_record() {
    for system in systems() {
        for sync in [SyncMode::Never, SyncMode::Each, SyncMode::Every(64)] {
            if !system.supports(sync) {
                continue;
            }
            for threads in [1, 3] {
                let w = tiny(sync, threads);
                let dir = tempfile::tempdir().unwrap();
                let m = harness::run(&*system, &w, dir.path(), GLOBAL)
                    .unwrap_or_else(|e| panic!("{} {sync:?} x{threads}: {e}", system.name()));
                assert_eq!(
                    m.latency.len(),
                    128 * threads as u64,
                    "{} {sync:?}: one latency sample per timed record",
                    system.name()
                );
                assert!(m.records_per_sec > 0.0 && m.mib_per_sec > 0.0);
            }
        }
    }
}

#[test]
fn vault_replays_every_record_it_wrote_and_rotates_with_small_segments() {
    let system = &*systems().remove(0);
    assert_eq!(system.name(), "vault");
    let w = tiny(SyncMode::Never, 2);
    let dir = tempfile::tempdir().unwrap();
    let m = harness::run(system, &w, dir.path(), GLOBAL).unwrap();
    let notes = m.notes.unwrap();
    assert!(!notes.starts_with("0 rotations"), "{notes}");
    let mut done = false;
    let bytes = system
        .replay(dir.path(), &w, &mut || done = true)
        .expect("vault has a replay")
        .unwrap();
    assert!(done);
    assert_eq!(bytes, w.bytes_per_thread() * 2);
}
