//! Power loss over the whole store, the metadata file included: the store runs on
//! `vault_segment::sim::SimStorage` (through `Options::storage`, which `raft-meta` now goes
//! through too), a snapshot is recorded before and after every storage operation of a
//! `save_vote` / `append` / `purge` sequence, each is crashed with every prefix of its pending
//! directory operations and several choices of its dirty pages, and the store is reopened on
//! the crashed image. What must hold: the metadata file is never torn (the store opens); a vote
//! whose `save_vote` returned is never lost nor rolled back, and the vote read is one that was
//! saved; `last_purged` is never behind a `purge` that returned; no entry at or below it is
//! served, the entries served have no hole and are the ones appended, and every entry whose
//! `LogFlushed` fired (and is not purged) is there.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{Entry, EntryPayload, RaftLogReader, Vote};
use vault_core::{Options, Storage};
use vault_raft::testing::{NodeId, Request, TypeConfig};
use vault_raft::VaultLogStore;
use vault_segment::sim::{CrashChoice, PageFate, SimStorage, Snapshot};

type Store = VaultLogStore<TypeConfig>;

const DIR: &str = "/node/raft";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

use vault_raft::testing::log_id;

/// A normal entry with a 100-byte value, so that 4 KiB segments hold about 25 entries.
fn entry(index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(Request {
            key: format!("k{index}"),
            value: format!("{index:0>100}"),
        }),
    }
}

fn options(sim: &SimStorage, segment_size: u64) -> Options {
    Store::options()
        .with_segment_size(segment_size)
        .with_storage(Arc::new(sim.clone()) as Arc<dyn Storage>)
}

/// What the store acknowledged by the time a snapshot was taken (its `mark` indexes these).
#[derive(Debug, Clone, Default)]
struct Acked {
    vote: Option<Vote<NodeId>>,
    purged: Option<u64>,
    /// Highest index whose `LogFlushed` fired.
    flushed: Option<u64>,
}

enum Step {
    Vote(Vote<NodeId>),
    Append(std::ops::Range<u64>),
    Purge(u64),
}

fn workload() -> Vec<Step> {
    vec![
        Step::Vote(Vote::new(1, 1)),
        Step::Append(0..30),
        Step::Vote(Vote::new(2, 1)),
        Step::Purge(20),
        Step::Append(30..60),
        Step::Vote(Vote::new_committed(2, 1)),
        Step::Purge(45),
        Step::Vote(Vote::new(3, 2)),
        // Past the end: the WAL is reset to continue after index 70.
        Step::Purge(70),
        Step::Append(71..80),
        Step::Vote(Vote::new(4, 1)),
        Step::Purge(75),
    ]
}

/// Every vote and purge point the workload asked for.
#[derive(Default)]
struct Saved {
    votes: Vec<Vote<NodeId>>,
    purges: Vec<u64>,
}

/// Runs the workload, recording a snapshot around every storage operation.
fn record(segment_size: u64) -> (Vec<Snapshot>, Vec<Acked>, Saved) {
    let sim = SimStorage::new();
    let mut history = vec![Acked::default()];
    let mut saved = Saved::default();
    sim.set_mark(0);
    sim.record_snapshots(true);
    rt().block_on(async {
        let mut store = Store::open(DIR, options(&sim, segment_size)).unwrap();
        let mut cur = Acked::default();
        for step in workload() {
            match step {
                Step::Vote(v) => {
                    saved.votes.push(v);
                    store.save_vote(&v).await.unwrap();
                    cur.vote = Some(v);
                }
                Step::Append(r) => {
                    let last = r.end - 1;
                    store.blocking_append(r.map(entry)).await.unwrap();
                    cur.flushed = Some(last);
                }
                Step::Purge(i) => {
                    saved.purges.push(i);
                    store.purge(log_id(1, i)).await.unwrap();
                    cur.purged = Some(i);
                }
            }
            history.push(cur.clone());
            sim.set_mark(history.len() as u64 - 1);
        }
        drop(store);
    });
    sim.record_snapshots(false);
    (sim.take_snapshots(), history, saved)
}

/// The crash choices checked for one snapshot: for every prefix of the pending directory
/// operations, no dirty page, every dirty page, each dirty page alone (whole, torn after one
/// sector; a metadata file's page also zeroed or garbage), each pair of dirty pages (one whole,
/// one torn after three sectors), and every dirty page but one.
fn choices(snap: &Snapshot) -> Vec<CrashChoice> {
    let dirty = snap.dirty_pages();
    let mut out = Vec::new();
    for dir_ops in 0..=snap.pending_dir_ops().len() {
        let mut all = CrashChoice::all(snap);
        all.dir_ops = dir_ops;
        out.push(all);
        out.push(CrashChoice {
            pages: vec![],
            dir_ops,
        });
        for (i, &p) in dirty.iter().enumerate() {
            // A zeroed or garbage page also wipes the durable bytes that share it (a segment's
            // synced header): the WAL reports that as corruption, which is vault-core's
            // power_loss tests' business. Here only the metadata files' pages get them.
            let meta = snap
                .file_name(p.file)
                .is_some_and(|n| n.to_string_lossy().contains("raft-meta"));
            let fates: &[PageFate] = if meta {
                &[
                    PageFate::Whole,
                    PageFate::torn_after(1),
                    PageFate::Zeroed,
                    PageFate::Garbage(7),
                ]
            } else {
                &[PageFate::Whole, PageFate::torn_after(1)]
            };
            for &fate in fates {
                out.push(CrashChoice {
                    pages: vec![(p, fate)],
                    dir_ops,
                });
            }
            for &q in &dirty[i + 1..] {
                out.push(CrashChoice {
                    pages: vec![(p, PageFate::Whole), (q, PageFate::torn_after(3))],
                    dir_ops,
                });
            }
            if dirty.len() > 2 {
                let mut but_one = CrashChoice::all(snap);
                but_one.dir_ops = dir_ops;
                but_one.pages.remove(i);
                out.push(but_one);
            }
        }
    }
    out
}

/// Reopens the store on `crashed` and checks it against what was acknowledged.
fn check(crashed: &SimStorage, segment_size: u64, acked: &Acked, saved: &Saved, what: &str) {
    let votes = &saved.votes;
    rt().block_on(async {
        let mut store = Store::open(Path::new(DIR), options(crashed, segment_size))
            .unwrap_or_else(|e| panic!("{what}: the store does not reopen: {e}"));
        let vote = store.read_vote().await.unwrap();
        if let Some(a) = acked.vote {
            let v = vote.unwrap_or_else(|| panic!("{what}: vote {a} was saved and is lost"));
            assert!(v >= a, "{what}: vote rolled back from {a} to {v}");
        }
        if let Some(v) = vote {
            assert!(votes.contains(&v), "{what}: vote {v} was never saved");
        }
        let state = store.get_log_state().await.unwrap();
        let purged = state.last_purged_log_id.map(|l| l.index);
        if let Some(p) = purged {
            assert!(saved.purges.contains(&p), "{what}: purge {p} never asked");
        }
        assert!(
            purged >= acked.purged,
            "{what}: last purged {purged:?} is behind the acknowledged {:?}",
            acked.purged
        );
        let served = store.try_get_log_entries(..).await.unwrap();
        let first = purged.map_or(0, |p| p + 1);
        for (k, e) in served.iter().enumerate() {
            assert_eq!(
                e.log_id.index,
                first + k as u64,
                "{what}: hole or purged entry served (last purged {purged:?})"
            );
            assert_eq!(*e, entry(e.log_id.index), "{what}: wrong entry content");
        }
        let last = state.last_log_id.map(|l| l.index);
        let last_served = served.last().map(|e| e.log_id.index);
        assert_eq!(
            last,
            last_served.or(purged),
            "{what}: log state disagrees with the entries served"
        );
        if let Some(f) = acked.flushed {
            assert!(
                last.is_some_and(|l| l >= f),
                "{what}: flushed entry {f} lost (last {last:?})"
            );
        }
    });
}

#[test]
fn the_metadata_file_and_the_log_survive_power_loss_at_every_operation() {
    let started = Instant::now();
    let (mut recorded, mut distinct, mut states, mut meta_states) = (0, 0, 0usize, 0usize);
    // Two segment sizes (purges then drop different segments), and the background worker's
    // spare segments interleave differently from run to run.
    for segment_size in [4096, 4096, 8192] {
        let (snapshots, history, saved) = record(segment_size);
        assert!(
            snapshots.len() > 100,
            "too few operations recorded: {}",
            snapshots.len()
        );
        recorded += snapshots.len();
        let mut seen = HashSet::new();
        for snap in &snapshots {
            if !seen.insert((snap.fingerprint(), snap.mark)) {
                continue;
            }
            let acked = &history[usize::try_from(snap.mark).unwrap()];
            let meta_pending = snap
                .pending_dir_ops()
                .iter()
                .any(|op| op.to_string().contains("raft-meta"));
            for choice in choices(snap) {
                let crashed = snap.crash(&choice);
                let what = format!(
                    "{segment_size}-byte segments: crash {} with {choice}",
                    snap.point
                );
                check(&crashed, segment_size, acked, &saved, &what);
                states += 1;
                if meta_pending {
                    meta_states += 1;
                }
            }
        }
        distinct += seen.len();
    }
    // The metadata file's own write sequence must have been crossed by crash points.
    assert!(
        meta_states > 0,
        "no crash state with a raft-meta operation pending"
    );
    println!(
        "{} snapshots ({} distinct), {states} crash states checked \
         ({meta_states} with a raft-meta operation pending), {:.1} s",
        recorded,
        distinct,
        started.elapsed().as_secs_f64()
    );
}
