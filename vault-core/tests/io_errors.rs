//! I/O errors at every fault point: each `msync`, allocation, map, pre-fault, rename, remove
//! and directory `fsync` a workload makes fails once, in turn (through `SimStorage`).
//!
//! What must hold: a failed data sync is never followed by an acknowledgement (the WAL is
//! poisoned: `Error::Poisoned` for every later append and sync, `durable_lsn` frozen); a
//! failure while preparing a segment (allocation, rename, directory fsync, ...) is a typed
//! error of the append that needed it and the WAL goes on once the fault is gone; and after a
//! power loss of the failed storage, a reopen recovers every acknowledged record.

mod common;

use common::record;
use vault_core::{Error, IoMode, SyncPolicy, Wal};
use vault_segment::sim::{CrashChoice, CrashPoint, FaultError, OpKind, SimStorage};

/// Record `lsn`'s bytes: small, except every 17th, which needs an enlarged segment.
fn payload(lsn: u64) -> Vec<u8> {
    let r = record(lsn);
    if lsn % 17 == 9 {
        r.iter()
            .copied()
            .cycle()
            .take(5000 + lsn as usize)
            .collect()
    } else {
        r
    }
}

/// What the workload saw.
#[derive(Debug, Default)]
struct Seen {
    last: u64,
    acked: u64,
    /// `durable_lsn` when the WAL first said it was poisoned.
    poisoned: Option<u64>,
    /// Typed errors other than `Poisoned`, as text.
    errors: Vec<String>,
}

impl Seen {
    fn poison(&mut self, wal: &Wal, what: &str) {
        let durable = wal.durable_lsn();
        assert!(
            durable <= self.last,
            "{what}: durable_lsn {durable} past the last record {}",
            self.last
        );
        if let Some(d) = self.poisoned {
            assert_eq!(
                durable, d,
                "{what}: durable_lsn moved after the WAL was poisoned"
            );
        }
        self.poisoned = Some(durable);
    }

    fn ack(&mut self, wal: &Wal, lsn: u64, what: &str) {
        assert!(
            self.poisoned.is_none(),
            "{what}: acknowledged record {lsn} after the WAL was poisoned"
        );
        assert!(
            wal.durable_lsn() >= lsn,
            "{what}: acknowledged but not durable"
        );
        self.acked = self.acked.max(lsn);
    }

    /// A failure that is not a failed sync: typed, nothing appended, WAL not poisoned.
    fn other_error(&mut self, wal: &Wal, e: &Error, what: &str) {
        assert!(
            matches!(e, Error::Io { .. }),
            "{what}: expected a typed I/O error, got {e:?}"
        );
        assert!(
            self.poisoned.is_none(),
            "{what}: a poisoned WAL must answer Poisoned, got {e}"
        );
        assert_eq!(
            wal.last_lsn(),
            self.last,
            "{what}: a failed append appended"
        );
        self.errors.push(e.to_string());
    }
}

fn append(wal: &Wal, seen: &mut Seen, sync: SyncPolicy) {
    let lsn = seen.last + 1;
    for attempt in 0..2 {
        let what = format!("append {lsn} (attempt {attempt})");
        match wal.append(&payload(lsn)) {
            Ok(got) => {
                assert_eq!(got, lsn, "{what}");
                seen.last = got;
                if sync == SyncPolicy::Always {
                    seen.ack(wal, got, &what);
                }
                return;
            }
            Err(Error::Poisoned { .. }) => {
                // The record is in the log but not acknowledged.
                seen.last = wal.last_lsn();
                assert!(wal.durable_lsn() < lsn || sync != SyncPolicy::Always);
                seen.poison(wal, &what);
                return;
            }
            // The fault fires once: the next attempt must succeed (space is back).
            Err(e) if attempt == 0 => seen.other_error(wal, &e, &what),
            Err(e) => panic!("{what}: the WAL did not go on after a one-shot fault: {e}"),
        }
    }
}

fn sync(wal: &Wal, seen: &mut Seen) {
    let target = seen.last;
    match wal.sync() {
        Ok(()) => seen.ack(wal, target, "sync"),
        Err(Error::Poisoned { .. }) => seen.poison(wal, "sync"),
        Err(e) => panic!("sync failed without poisoning: {e:?}"),
    }
}

/// Appends 70 records (rotations every ~20, enlarged segments every 17th record), with syncs,
/// a batch and a `truncate_front`; then closes.
fn workload(sim: &SimStorage, policy: SyncPolicy, io: IoMode) -> (Seen, Option<String>) {
    let mut seen = Seen::default();
    let wal = match Wal::open(common::sim_dir(), common::on_sim(sim, 4096, policy, io)) {
        Ok(w) => w,
        Err(e) => {
            assert!(matches!(e, Error::Io { .. }), "open: {e:?}");
            return (seen, Some(format!("open: {e}")));
        }
    };
    for i in 0..70u64 {
        append(&wal, &mut seen, policy);
        if policy == SyncPolicy::Manual && i % 6 == 5 {
            sync(&wal, &mut seen);
        }
        if i == 40 {
            match wal.truncate_front(20) {
                Ok(_) => seen.ack(&wal, seen.last, "truncate_front"),
                Err(Error::Poisoned { .. }) => seen.poison(&wal, "truncate_front"),
                Err(e) => seen.other_error(&wal, &e, "truncate_front"),
            }
        }
        if i == 50 {
            let recs: Vec<Vec<u8>> = (seen.last + 1..=seen.last + 5).map(payload).collect();
            match wal.append_batch(&recs) {
                Ok(first) => {
                    assert_eq!(first, seen.last + 1);
                    seen.last += 5;
                    if policy == SyncPolicy::Always {
                        seen.ack(&wal, seen.last, "append_batch");
                    }
                }
                Err(Error::Poisoned { .. }) => {
                    seen.last = wal.last_lsn();
                    seen.poison(&wal, "append_batch");
                }
                Err(e) => {
                    // A rotation failed inside the batch: a prefix may be in the log.
                    assert!(matches!(e, Error::Io { .. }), "append_batch: {e:?}");
                    assert!(seen.poisoned.is_none(), "append_batch after poison: {e}");
                    seen.last = wal.last_lsn();
                    seen.errors.push(e.to_string());
                }
            }
        }
    }
    sync(&wal, &mut seen);
    if seen.poisoned.is_some() {
        assert!(matches!(wal.append(b"x"), Err(Error::Poisoned { .. })));
        assert!(matches!(wal.sync(), Err(Error::Poisoned { .. })));
    }
    let closed = wal.close();
    if seen.poisoned.is_some() {
        assert!(closed.is_err(), "close of a poisoned WAL reported success");
    }
    (seen, closed.err().map(|e| e.to_string()))
}

/// Whether the failed operation was a data sync (an `msync` of a segment holding records, not
/// of a `-pre` file being prepared).
fn failed_data_sync(sim: &SimStorage) -> bool {
    sim.op_log().iter().any(|p| match p {
        CrashPoint::After {
            kind: OpKind::Sync,
            ok: false,
            path,
            ..
        } => !path.to_string_lossy().ends_with("-pre.log"),
        _ => false,
    })
}

/// Power fails after the workload: only durable state survives. Every acknowledged record
/// must be read back, byte-exact, without a gap.
fn check_recovery(sim: &SimStorage, policy: SyncPolicy, seen: &Seen, case: &str, io: IoMode) {
    let crashed = sim.crash(&CrashChoice::none());
    let wal = Wal::open(
        common::sim_dir(),
        common::on_sim(&crashed, 4096, policy, io),
    )
    .unwrap_or_else(|e| panic!("{case}: reopen after the failure and a power loss: {e}"));
    let report = wal.recovery().clone();
    let first = wal.first_lsn();
    let last = wal.last_lsn();
    assert!(first <= 21, "{case}: log starts at {first}");
    assert!(
        last >= seen.acked,
        "{case}: acknowledged up to {} but recovered up to {last} ({report:?})",
        seen.acked
    );
    assert!(
        last <= seen.last,
        "{case}: recovered {last} of {}",
        seen.last
    );
    let mut expect = first;
    for r in wal.iter_from(first) {
        assert_eq!(r.lsn(), expect, "{case}: gap");
        assert_eq!(r.data(), &payload(expect)[..], "{case}: record {expect}");
        expect += 1;
    }
    assert_eq!(expect, last + 1, "{case}");
    wal.append(b"after").unwrap();
    wal.close().unwrap();
}

fn every_fault_point(kind: OpKind, error: FaultError, io: IoMode) -> u64 {
    let mut cases = 0;
    for policy in [SyncPolicy::Always, SyncPolicy::Manual] {
        let clean = SimStorage::new();
        let (seen, closed) = workload(&clean, policy, io);
        assert!(
            seen.errors.is_empty() && closed.is_none(),
            "{seen:?} {closed:?}"
        );
        let calls = clean.calls(kind);
        assert!(calls > 0, "the workload makes no {kind:?} call");
        // Fault points past the clean run's count may still exist in a faulted run, which
        // makes extra calls (retries); a few more cover them.
        for n in 1..=calls + 3 {
            let sim = SimStorage::new();
            sim.fail_nth(kind, n, error);
            let case = format!("{kind:?} call {n} fails with {error:?} under {policy:?} on {io:?}");
            let (seen, closed) = workload(&sim, policy, io);
            let open_failed = closed.as_deref().is_some_and(|c| c.starts_with("open: "));
            if open_failed {
                // The fault hit open itself (its sync of the new log, for instance): a typed
                // error, nothing acknowledged; recovery below must still work.
                assert_eq!(seen.acked, 0, "{case}");
            } else if failed_data_sync(&sim) {
                // Poisoned, or it was close's own final sync, which close reports.
                assert!(
                    seen.poisoned.is_some() || closed.is_some(),
                    "{case}: a data sync failed and nobody was told: {seen:?}"
                );
            } else {
                assert!(
                    seen.poisoned.is_none(),
                    "{case}: poisoned without a failed data sync: {seen:?}"
                );
            }
            check_recovery(&sim, policy, &seen, &case, io);
            cases += 1;
        }
    }
    cases
}

common::both_io_paths!(sim a_failed_msync_poisons_the_wal_and_nothing_after_it_is_acknowledged);
fn a_failed_msync_poisons_the_wal_and_nothing_after_it_is_acknowledged(io: IoMode) {
    let n = every_fault_point(OpKind::Sync, FaultError::Io, io);
    println!("io_errors {io:?}: {n} sync fault points");
}

common::both_io_paths!(sim a_failed_allocation_fails_only_the_append_that_needed_it);
fn a_failed_allocation_fails_only_the_append_that_needed_it(io: IoMode) {
    let n = every_fault_point(OpKind::Allocate, FaultError::NoSpace, io);
    println!("io_errors {io:?}: {n} allocation fault points");
}

common::both_io_paths!(sim a_failed_rename_fails_only_the_append_that_needed_it);
fn a_failed_rename_fails_only_the_append_that_needed_it(io: IoMode) {
    let n = every_fault_point(OpKind::Rename, FaultError::Io, io);
    println!("io_errors {io:?}: {n} rename fault points");
}

common::both_io_paths!(sim a_failed_directory_fsync_is_a_typed_error_and_the_wal_goes_on);
fn a_failed_directory_fsync_is_a_typed_error_and_the_wal_goes_on(io: IoMode) {
    let n = every_fault_point(OpKind::SyncDir, FaultError::Io, io);
    println!("io_errors {io:?}: {n} directory fsync fault points");
}

common::both_io_paths!(sim failed_maps_prefaults_and_removals_are_typed_errors);
fn failed_maps_prefaults_and_removals_are_typed_errors(io: IoMode) {
    let mut n = every_fault_point(OpKind::Map, FaultError::Io, io);
    n += every_fault_point(OpKind::Prefault, FaultError::Io, io);
    n += every_fault_point(OpKind::Remove, FaultError::Io, io);
    println!("io_errors {io:?}: {n} map, pre-fault and remove fault points");
}

common::both_io_paths!(sim a_disk_full_for_a_while_fails_rotations_until_space_is_back);
fn a_disk_full_for_a_while_fails_rotations_until_space_is_back(io: IoMode) {
    let sim = SimStorage::new();
    let wal = common::open_sim(&sim, 4096, SyncPolicy::Always, io);
    let mut last = 0;
    for lsn in 1..=10 {
        last = wal.append(&record(lsn)).unwrap();
    }
    sim.fail_from(
        OpKind::Allocate,
        sim.calls(OpKind::Allocate) + 1,
        FaultError::NoSpace,
    );
    let mut failures = 0;
    // The prepared spare is used up by the first rotation; every later one fails.
    for _ in 0..200 {
        match wal.append(&record(last + 1)) {
            Ok(lsn) => last = lsn,
            Err(e) => {
                assert!(
                    matches!(&e, Error::Io { source, .. } if source.raw_os_error() == Some(FaultError::NoSpace.raw_os_error())),
                    "{e:?}"
                );
                failures += 1;
            }
        }
    }
    assert!(
        failures > 100,
        "only {failures} appends failed on a full disk"
    );
    assert_eq!(
        wal.durable_lsn(),
        last,
        "what was acknowledged stays durable"
    );
    sim.clear_faults();
    for _ in 0..60 {
        last = wal.append(&record(last + 1)).unwrap();
    }
    wal.close().unwrap();
    let crashed = sim.crash(&CrashChoice::none());
    let wal = Wal::open(
        common::sim_dir(),
        common::on_sim(&crashed, 4096, SyncPolicy::Always, io),
    )
    .unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.next_lsn, last + 1);
    common::assert_log(&wal, 1, last);
}

common::both_io_paths!(sim a_failed_open_is_a_typed_error_and_a_later_open_recovers_everything);
fn a_failed_open_is_a_typed_error_and_a_later_open_recovers_everything(io: IoMode) {
    let sim = SimStorage::new();
    let wal = common::open_sim(&sim, 4096, SyncPolicy::Manual, io);
    for lsn in 1..=50 {
        wal.append(&record(lsn)).unwrap();
    }
    // Leave a torn tail for recovery to cut: only what the worker's retirements synced.
    let crashed = sim.crash(&CrashChoice::none());
    drop(wal);
    let clean = crashed.crash(&CrashChoice::none());
    let probe = common::open_sim(&clean, 4096, SyncPolicy::Manual, io);
    let recovered = probe.last_lsn();
    drop(probe);
    let mut points = 0;
    for kind in [
        OpKind::List,
        OpKind::Map,
        OpKind::Sync,
        OpKind::Remove,
        OpKind::SyncDir,
    ] {
        for n in 1..=clean.calls(kind) {
            let sim = crashed.crash(&CrashChoice::none());
            sim.fail_nth(kind, n, FaultError::Io);
            match Wal::open(
                common::sim_dir(),
                common::on_sim(&sim, 4096, SyncPolicy::Manual, io),
            ) {
                Ok(wal) => {
                    // The failed call was the worker's (preparing a spare): open succeeded.
                    assert_eq!(wal.last_lsn(), recovered);
                }
                Err(e) => assert!(matches!(e, Error::Io { .. }), "{kind:?} {n}: {e:?}"),
            }
            let again = sim.crash(&CrashChoice::none());
            let wal = Wal::open(
                common::sim_dir(),
                common::on_sim(&again, 4096, SyncPolicy::Manual, io),
            )
            .unwrap_or_else(|e| panic!("{kind:?} {n}: reopen: {e}"));
            common::assert_log(&wal, 1, recovered);
            points += 1;
        }
    }
    assert!(points > 5);
}

/// Builds a log of 45 records (synced up to 30) over several segments, then cuts it at `cut`
/// (`truncate_back`, or `reset` to `cut`) with the `n`-th call of `kind` failing, counted from
/// the cut's start. Checks what the WAL says right after; returns the outcome, the storage
/// and the number of records appended before the cut.
fn cut_with_fault(
    cut: u64,
    reset: bool,
    fault: Option<(OpKind, u64)>,
    io: IoMode,
) -> (vault_core::Result<()>, SimStorage, u64) {
    let sim = SimStorage::new();
    let wal = common::open_sim(&sim, 4096, SyncPolicy::Manual, io);
    for lsn in 1..=45 {
        assert_eq!(wal.append(&payload(lsn)).unwrap(), lsn);
        if lsn == 30 {
            wal.sync().unwrap();
        }
    }
    // Let the worker finish its spare, so that the calls counted are the cut's.
    // (The worker keeps several spares: wait for all of them.)
    let spares = common::on_sim(&sim, 4096, SyncPolicy::Manual, io).spares() as u64;
    while wal.stats().segments_prepared < wal.stats().segments as u64 + spares {
        std::thread::yield_now();
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    if let Some((kind, n)) = fault {
        sim.fail_nth(kind, sim.calls(kind) + n, FaultError::NoSpace);
    }
    let result = if reset {
        wal.reset(cut)
    } else {
        wal.truncate_back(cut)
    };
    let case = format!("cut at {cut} (reset: {reset}) with {fault:?} failing: {result:?}");
    match &result {
        Ok(()) => {
            // The fault hit the worker's background work (the next spare), or nothing.
            assert_eq!(wal.last_lsn(), cut - 1, "{case}");
            assert_eq!(wal.append(b"next").unwrap(), cut, "{case}");
        }
        Err(Error::Poisoned { .. }) => {
            // The log may be half cut: nothing more is accepted.
            assert!(
                matches!(wal.append(b"x"), Err(Error::Poisoned { .. })),
                "{case}"
            );
            assert!(
                matches!(wal.truncate_back(1), Err(Error::Poisoned { .. })),
                "{case}"
            );
        }
        Err(Error::Io { .. }) => {
            // Failed before it changed anything: the log is whole and goes on.
            assert_eq!(wal.last_lsn(), 45, "{case}");
            assert_eq!(wal.append(&payload(46)).unwrap(), 46, "{case}");
            for lsn in [1, 30, 45, 46] {
                assert!(wal.read(lsn).unwrap().data() == payload(lsn), "{case}");
            }
        }
        Err(e) => panic!("{case}: unexpected error {e:?}"),
    }
    drop(wal);
    (result, sim, 45)
}

common::both_io_paths!(sim a_fault_at_each_step_of_truncate_back_is_an_error_and_reopen_recovers_a_valid_log);
fn a_fault_at_each_step_of_truncate_back_is_an_error_and_reopen_recovers_a_valid_log(io: IoMode) {
    let mut cases = 0;
    let mut outcomes = std::collections::BTreeMap::<String, u64>::new();
    for (cut, reset) in [(3, false), (40, false), (10, true)] {
        // Without a fault the cut succeeds.
        cut_with_fault(cut, reset, None, io).0.unwrap();
        for kind in [
            OpKind::Allocate,
            OpKind::Map,
            OpKind::Prefault,
            OpKind::Sync,
            OpKind::Remove,
            OpKind::Rename,
            OpKind::SyncDir,
        ] {
            for n in 1..=6 {
                let (result, sim, appended) = cut_with_fault(cut, reset, Some((kind, n)), io);
                let case = format!("cut {cut} reset {reset}: {kind:?} call {n}: {result:?}");
                let what = match &result {
                    Ok(()) => "ok",
                    Err(Error::Poisoned { .. }) => "poisoned",
                    _ => "io error, nothing changed",
                };
                *outcomes.entry(format!("{kind:?}: {what}")).or_default() += 1;
                // Power fails now; whatever the step, the next open finds a valid log.
                let crashed = sim.crash(&CrashChoice::none());
                let wal = Wal::open(
                    common::sim_dir(),
                    common::on_sim(&crashed, 4096, SyncPolicy::Manual, io),
                )
                .unwrap_or_else(|e| panic!("{case}: reopen: {e}"));
                let (first, last) = (wal.first_lsn(), wal.last_lsn());
                let cut_done = result.is_ok();
                let new_first = if reset { cut } else { 1 };
                if cut_done {
                    assert_eq!(first, new_first, "{case}");
                } else {
                    assert!(first == 1 || first == new_first, "{case}: first {first}");
                }
                if first == 1 && !reset {
                    // Durable records before the cut are intact.
                    assert!(last >= 30.min(cut - 1), "{case}: last {last}");
                }
                let mut read = 0;
                for (expect, r) in (first..).zip(wal.iter_from(first)) {
                    assert_eq!(r.lsn(), expect, "{case}: gap");
                    if r.lsn() >= cut && !reset {
                        // Only the record appended after a successful cut can be here.
                        assert!(
                            !cut_done || r.data() == b"next",
                            "{case}: discarded came back"
                        );
                    }
                    if r.data() != b"next" {
                        assert!(r.data() == payload(expect), "{case}: record {expect}");
                    }
                    read += 1;
                }
                assert_eq!(first + read, last + 1, "{case}");
                assert!(last <= appended + 1, "{case}");
                assert_eq!(wal.append(b"more").unwrap(), last + 1, "{case}");
                cases += 1;
            }
        }
    }
    println!("io_errors {io:?} truncate_back: {cases} fault points: {outcomes:?}");
    assert!(
        outcomes.keys().any(|k| k.ends_with("poisoned")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.keys().any(|k| k.ends_with("nothing changed")),
        "{outcomes:?}"
    );
}

/// A full disk on the direct path: the records whose write found no space stay in memory, the
/// WAL is not poisoned, appends fail (appending nothing) until space is back, and then the same
/// WAL writes them and goes on; a reopen finds every record.
#[test]
fn a_full_disk_on_the_direct_path_is_retried_once_space_is_back() {
    let sim = SimStorage::new();
    let opts = common::on_sim(&sim, 4096, SyncPolicy::Always, vault_core::IoMode::Direct);
    let wal = Wal::open(common::sim_dir(), opts.clone()).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.io_path, vault_core::IoPath::Direct);
    for lsn in 1..=20 {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
    }
    sim.fail_from(
        OpKind::Sync,
        sim.calls(OpKind::Sync) + 1,
        FaultError::NoSpace,
    );
    // The record is appended (LSN 21) but not durable.
    match wal.append(&record(21)) {
        Err(e @ Error::NoSpace { .. }) => {
            assert!(e.is_disk_full());
            // The OS's own text for a full disk ("No space left on device", "Disk full.").
            let full = std::io::Error::from_raw_os_error(FaultError::NoSpace.raw_os_error());
            let full = full.to_string();
            let full = full.split(" (os error").next().unwrap();
            assert!(e.to_string().contains(full), "{e}");
            let Error::NoSpace {
                durable,
                last,
                appended,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!((durable, last, appended), (20, 21, Some(21)));
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert_eq!(wal.durable_lsn(), 20);
    assert!(wal.read(21).unwrap().data() == record(21));
    // While there is no space, an append appends nothing.
    for _ in 0..3 {
        match wal.append(&record(22)) {
            Err(Error::NoSpace { appended: None, .. }) => {}
            other => panic!("expected NoSpace without an append, got {other:?}"),
        }
        assert_eq!(wal.last_lsn(), 21);
    }
    assert!(matches!(wal.sync(), Err(Error::NoSpace { .. })));
    // Space is back: the next append writes 21 and itself.
    sim.clear_faults();
    assert_eq!(wal.append(&record(22)).unwrap(), 22);
    assert_eq!(wal.durable_lsn(), 22);
    for lsn in 23..=60 {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
    }
    wal.close().unwrap();
    let wal = Wal::open(common::sim_dir(), opts).unwrap();
    let report = wal.recovery().clone();
    assert_eq!(report.next_lsn, 61);
    for lsn in 1..=60 {
        assert!(wal.read(lsn).unwrap().data() == record(lsn), "record {lsn}");
    }
}

/// The same fault on the mapping poisons the WAL: the kernel may have dropped the pages.
#[test]
fn a_full_disk_in_a_sync_of_the_mapping_poisons_the_wal() {
    let sim = SimStorage::new();
    let opts = common::on_sim(&sim, 4096, SyncPolicy::Always, vault_core::IoMode::Mmap);
    let wal = Wal::open(common::sim_dir(), opts).unwrap();
    for lsn in 1..=5 {
        assert_eq!(wal.append(&record(lsn)).unwrap(), lsn);
    }
    // Every sync from now on, so that the append's is one of them whatever the rotation
    // worker (syncing a spare's header) does meanwhile.
    sim.fail_from(
        OpKind::Sync,
        sim.calls(OpKind::Sync) + 1,
        FaultError::NoSpace,
    );
    assert!(matches!(
        wal.append(&record(6)),
        Err(Error::Poisoned { .. })
    ));
    sim.clear_faults();
    assert!(matches!(
        wal.append(&record(7)),
        Err(Error::Poisoned { .. })
    ));
}
