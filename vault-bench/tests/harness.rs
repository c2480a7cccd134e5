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
                let dir = bench_dir();
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
    for system in systems().iter().take(2) {
        let system = &**system;
        let w = tiny(SyncMode::Never, 2);
        let dir = bench_dir();
        let m = harness::run(system, &w, dir.path(), GLOBAL).unwrap();
        let segments = m.segments.expect("vault counts its segments");
        assert!(segments.rotations > 0, "{}: {segments:?}", system.name());
        assert_eq!(m.rounds.len(), 1);
        let mut done = false;
        let bytes = system
            .replay(dir.path(), &w, &mut || done = true)
            .expect("vault has a replay")
            .unwrap();
        assert!(done);
        assert_eq!(bytes, w.bytes_per_thread() * 2);
    }
    let names: Vec<&str> = systems().iter().take(2).map(|s| s.name()).collect();
    assert_eq!(names, ["vault mmap", "vault direct"]);
}

#[test]
fn durable_runs_count_their_syncs_and_keep_one_round() {
    for system in systems() {
        if !system.supports(SyncMode::Every(64)) {
            continue;
        }
        let w = tiny(SyncMode::Every(64), 2);
        let dir = bench_dir();
        let m = harness::run(&*system, &w, dir.path(), GLOBAL)
            .unwrap_or_else(|e| panic!("{}: {e}", system.name()));
        // 128 timed records per thread, every 64th durable: 2 per thread.
        assert_eq!(m.syncs, 4, "{}", system.name());
        assert_eq!(m.sync_latency.len(), 4, "{}", system.name());
        assert_eq!(m.rounds.len(), 1);
        assert!(m.rounds[0].sync_p50_ns.is_some());
    }
}

/// A directory on the disk of the target directory: the direct-I/O systems need a file system
/// that takes `O_DIRECT`, which a tmpfs `/tmp` does not.
fn bench_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}
