//! A proptest state machine: random sequences of append, append_batch, sync, truncate_front,
//! truncate_back, reset, power loss (a random subset of the unsynced pages, torn at sectors, and a prefix of the
//! unsynced directory operations) and clean reopen, on `SimStorage` with tiny segments, checked
//! against a model of what the log must hold.
//!
//! The invariant after every recovery: the log is every synced record, plus optionally some
//! later appended ones, contiguous and byte-exact; it starts later only where
//! `truncate_front` allowed. Records hold arbitrary bytes (empty and larger than a segment
//! included), so nothing about the content is assumed.

mod common;

use proptest::prelude::*;
use vault_core::{IoMode, SyncPolicy, Wal};
use vault_segment::sim::{CrashChoice, PageFate, SimStorage};

#[derive(Clone)]
enum Op {
    Append(Vec<u8>),
    Batch(Vec<Vec<u8>>),
    Sync,
    /// `truncate_front` at this share (in eighths) of the last LSN.
    Truncate(u64),
    /// `truncate_back` at this share (in eighths) of the last LSN, plus one (0: everything;
    /// 8: a no-op past the end).
    TruncateBack(u64),
    /// `reset` to the last LSN + this − 3 (at least 1): below, at or beyond the end.
    Reset(u64),
    /// Power loss; the seed picks which unsynced pages and directory operations survive.
    Crash(u64),
    /// Close and open again.
    Reopen,
}

/// Records show as their length and first byte, so a failing case reads as a short list.
impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rec = |r: &Vec<u8>| format!("{}B:{:02x}", r.len(), r.first().copied().unwrap_or(0));
        match self {
            Op::Append(r) => write!(f, "Append({})", rec(r)),
            Op::Batch(rs) => {
                let v: Vec<String> = rs.iter().map(rec).collect();
                write!(f, "Batch({})", v.join(", "))
            }
            Op::Sync => f.write_str("Sync"),
            Op::Truncate(e) => write!(f, "Truncate({e}/8)"),
            Op::TruncateBack(e) => write!(f, "TruncateBack({e}/8)"),
            Op::Reset(d) => write!(f, "Reset(end{:+})", *d as i64 - 3),
            Op::Crash(seed) => write!(f, "Crash({seed})"),
            Op::Reopen => f.write_str("Reopen"),
        }
    }
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..400),
        1 => proptest::collection::vec(any::<u8>(), 3000..6000),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => bytes().prop_map(Op::Append),
        3 => proptest::collection::vec(bytes(), 1..8).prop_map(Op::Batch),
        4 => Just(Op::Sync),
        1 => (1u64..8).prop_map(Op::Truncate),
        2 => (0u64..=8).prop_map(Op::TruncateBack),
        1 => (0u64..40).prop_map(Op::Reset),
        3 => any::<u64>().prop_map(Op::Crash),
        1 => Just(Op::Reopen),
    ]
}

/// What the log must hold.
#[derive(Debug, Default)]
struct Model {
    /// The bytes of every record appended, by LSN − 1 (records lost in a crash or discarded by
    /// `truncate_back`/`reset` removed; LSNs a `reset` skipped hold empty placeholders, below
    /// the log's first LSN).
    records: Vec<Vec<u8>>,
    /// Every record up to here was acknowledged durable.
    durable: u64,
    /// The highest LSN `truncate_front` was asked for.
    truncated: u64,
}

/// A crash choice with whole or sector-torn pages only (sectors are atomic: power loss alone
/// never damages bytes that were durable).
fn power_loss(sim: &SimStorage, seed: u64) -> SimStorage {
    let snap = sim.snapshot();
    let mut choice = CrashChoice::random(&snap, seed);
    for (_, fate) in &mut choice.pages {
        if matches!(fate, PageFate::Zeroed | PageFate::Garbage(_)) {
            *fate = PageFate::Whole;
        }
    }
    snap.crash(&choice)
}

/// Checks the recovered log against the model and adopts it: records past the recovered end
/// were lost (they were never acknowledged), and what was recovered is durable now.
fn recovered(wal: &Wal, m: &mut Model) -> Result<(), TestCaseError> {
    let first = wal.first_lsn();
    let last = wal.last_lsn();
    prop_assert!(
        first >= 1 && first <= m.truncated.max(1),
        "log starts at {first}: {m:?}"
    );
    prop_assert!(
        last >= m.durable,
        "synced records lost: recovered up to {last}, durable {}",
        m.durable
    );
    prop_assert!(
        last <= m.records.len() as u64,
        "record {last} recovered, only {} appended",
        m.records.len()
    );
    let mut expect = first;
    for r in wal.iter_from(first) {
        prop_assert_eq!(r.lsn(), expect, "gap");
        prop_assert!(
            r.data() == &m.records[(expect - 1) as usize][..],
            "record {} differs",
            expect
        );
        expect += 1;
    }
    prop_assert_eq!(expect, last + 1);
    m.records.truncate(last as usize);
    m.durable = last;
    Ok(())
}

fn run(sync: SyncPolicy, ops: &[Op], io: IoMode) -> Result<(), TestCaseError> {
    let mut sim = SimStorage::new();
    let mut m = Model::default();
    let mut wal = common::open_sim(&sim, 4096, sync, io);
    for op in ops {
        match op {
            Op::Append(data) => {
                let lsn = wal.append(data).unwrap();
                m.records.push(data.clone());
                prop_assert_eq!(lsn, m.records.len() as u64);
                if sync == SyncPolicy::Always {
                    m.durable = lsn;
                }
            }
            Op::Batch(recs) => {
                let first = wal.append_batch(recs).unwrap();
                prop_assert_eq!(first, m.records.len() as u64 + 1);
                m.records.extend(recs.iter().cloned());
                if sync == SyncPolicy::Always {
                    m.durable = m.records.len() as u64;
                }
            }
            Op::Sync => {
                wal.sync().unwrap();
                m.durable = m.records.len() as u64;
            }
            Op::Truncate(eighths) => {
                let t = m.records.len() as u64 * eighths / 8;
                m.truncated = m.truncated.max(t);
                wal.truncate_front(t).unwrap();
                m.durable = m.records.len() as u64;
                prop_assert!(wal.first_lsn() <= m.truncated.max(1));
            }
            Op::TruncateBack(eighths) => {
                let lsn = m.records.len() as u64 * eighths / 8 + 1;
                wal.truncate_back(lsn).unwrap();
                if lsn <= m.records.len() as u64 {
                    m.records.truncate(lsn as usize - 1);
                    m.durable = m.durable.min(lsn - 1);
                }
                prop_assert_eq!(wal.last_lsn(), m.records.len() as u64);
                prop_assert!(wal.durable_lsn() <= wal.last_lsn());
            }
            Op::Reset(d) => {
                let n = (m.records.len() as u64 + d).saturating_sub(3).max(1);
                wal.reset(n).unwrap();
                m.records.resize(n as usize - 1, Vec::new());
                m.durable = n - 1;
                m.truncated = m.truncated.max(n);
                prop_assert_eq!((wal.first_lsn(), wal.last_lsn()), (n, n - 1));
                prop_assert_eq!(wal.durable_lsn(), n - 1);
            }
            Op::Crash(seed) => {
                let crashed = power_loss(&sim, *seed);
                drop(wal);
                sim = crashed;
                wal = Wal::open(common::sim_dir(), common::on_sim(&sim, 4096, sync, io))
                    .map_err(|e| TestCaseError::fail(format!("open after power loss: {e}")))?;
                recovered(&wal, &mut m)?;
            }
            Op::Reopen => {
                wal.close().unwrap();
                m.durable = m.records.len() as u64;
                wal = Wal::open(common::sim_dir(), common::on_sim(&sim, 4096, sync, io)).unwrap();
                recovered(&wal, &mut m)?;
                prop_assert_eq!(wal.last_lsn(), m.records.len() as u64);
            }
        }
        prop_assert!(wal.durable_lsn() >= m.durable);
    }
    // A final power loss after a sync keeps everything.
    wal.sync().unwrap();
    m.durable = m.records.len() as u64;
    let crashed = power_loss(&sim, 0);
    drop(wal);
    let wal = common::open_sim(&crashed, 4096, sync, io);
    recovered(&wal, &mut m)?;
    Ok(())
}

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 256;
    }
    c
}

// Each property runs on both I/O paths, as `<property>::mmap` and `<property>::direct` (the
// shape `both_io_paths!` gives the other tests).
mod recovered_log_is_the_synced_records_plus_some_later_ones_under_manual_sync {
    use super::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn mmap(ops in proptest::collection::vec(op(), 1..60)) {
            run(SyncPolicy::Manual, &ops, IoMode::Mmap)?;
        }

        #[test]
        fn direct(ops in proptest::collection::vec(op(), 1..60)) {
            run(SyncPolicy::Manual, &ops, IoMode::Direct)?;
        }
    }
}

mod recovered_log_keeps_every_acknowledged_append_under_always {
    use super::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn mmap(ops in proptest::collection::vec(op(), 1..40)) {
            run(SyncPolicy::Always, &ops, IoMode::Mmap)?;
        }

        #[test]
        fn direct(ops in proptest::collection::vec(op(), 1..40)) {
            run(SyncPolicy::Always, &ops, IoMode::Direct)?;
        }
    }
}
