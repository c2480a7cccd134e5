//! Three openraft nodes in one process, each with its log in its own vault WAL directory.
//!
//! It writes entries through the leader, stops one follower, writes more, restarts that
//! follower from its directory and shows it catching up until all three logs are identical.
//!
//! ```text
//! cargo run -p vault-raft --example cluster                      # in a temporary directory
//! cargo run -p vault-raft --example cluster -- --dir /tmp/c3     # keep the directories
//! cargo run -p vault-raft --example cluster -- --entries 5000
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Config, Raft, RaftLogReader, SnapshotPolicy};
use tokio::task::JoinSet;
use vault_raft::testing::{KvState, KvStateMachine, NodeId, Request, Router, TypeConfig};
use vault_raft::{VaultLogReader, VaultLogStore};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One running node: its Raft handle, a reader of its log and its state machine.
struct Node {
    raft: Raft<TypeConfig>,
    log: VaultLogReader<TypeConfig>,
    sm: KvStateMachine,
}

async fn start_node(
    id: NodeId,
    dir: &Path,
    config: &Arc<Config>,
    router: &Router,
) -> Result<Node, Error> {
    let node_dir = dir.join(format!("node-{id}"));
    // A stopped node's WAL is released once openraft's tasks drop their handles: retry briefly.
    let mut tries = 0;
    let mut store = loop {
        match VaultLogStore::<TypeConfig>::open(&node_dir, VaultLogStore::<TypeConfig>::options()) {
            Ok(s) => break s,
            Err(vault_raft::Error::Wal(vault_core::Error::Locked { .. })) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let state = store.get_log_state().await?;
    let vote = store.read_vote().await?;
    println!(
        "  node {id}: opened {} — WAL recovered {} records; last log id {}, vote {}",
        node_dir.display(),
        store.wal().recovery().records,
        state.last_log_id.map_or("none".into(), |l| l.to_string()),
        vote.map_or("none".into(), |v| v.to_string()),
    );
    let log = store.get_log_reader().await;
    let sm = KvStateMachine::default();
    let raft = Raft::new(id, Arc::clone(config), router.clone(), store, sm.clone()).await?;
    router.add(id, raft.clone());
    Ok(Node { raft, log, sm })
}

/// Sends `n` writes (`key-{first + i}`), `in_flight` at a time, through whichever node leads.
async fn write(router: &Router, ids: &[NodeId], first: u64, n: u64) -> Result<(), Error> {
    let in_flight = 64;
    let mut next = first;
    let end = first + n;
    let mut tasks = JoinSet::new();
    while next < end || !tasks.is_empty() {
        while next < end && tasks.len() < in_flight {
            let router = router.clone();
            let ids = ids.to_vec();
            let key = next;
            tasks.spawn(async move { write_one(&router, &ids, key).await });
            next += 1;
        }
        if let Some(r) = tasks.join_next().await {
            r??;
        }
    }
    Ok(())
}

async fn write_one(router: &Router, ids: &[NodeId], key: u64) -> Result<(), Error> {
    let req = Request {
        key: format!("key-{key}"),
        value: format!("value-{key}"),
    };
    for _attempt in 0..50 {
        let leader = ids
            .iter()
            .filter_map(|&id| router.get(id))
            .find_map(|r| r.metrics().borrow().current_leader)
            .and_then(|l| router.get(l));
        if let Some(raft) = leader {
            match raft.client_write(req.clone()).await {
                Ok(_) => return Ok(()),
                // Not the leader (any more): look again.
                Err(e) if e.forward_to_leader::<BasicNode>().is_some() => {}
                Err(e) => return Err(e.into()),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("no leader accepted write {key}").into())
}

fn leader_of(router: &Router, ids: &[NodeId]) -> Option<NodeId> {
    ids.iter()
        .filter_map(|&id| router.get(id))
        .find_map(|r| r.metrics().borrow().current_leader)
}

/// Every entry of a node's log, and a CRC32C over their serialised bytes.
async fn log_digest(node: &mut Node) -> Result<(usize, u64, u32), Error> {
    let entries = node.log.try_get_log_entries(0..).await?;
    let mut crc = 0u32;
    for e in &entries {
        crc = crc32c::crc32c_append(crc, &rmp_serde::to_vec(e)?);
    }
    let last = entries.last().map_or(0, |e| e.log_id.index);
    Ok((entries.len(), last, crc))
}

fn parse_args() -> Result<(Option<PathBuf>, u64), Error> {
    let mut dir = None;
    let mut entries = 3000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = Some(PathBuf::from(args.next().ok_or("--dir needs a path")?)),
            "--entries" => entries = args.next().ok_or("--entries needs a number")?.parse()?,
            "-h" | "--help" => {
                println!("usage: cluster [--dir PATH] [--entries N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (try --help)").into()),
        }
    }
    Ok((dir, entries))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let (dir_arg, n) = parse_args()?;
    let tmp;
    let dir = match dir_arg {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let t0 = Instant::now();
    println!("vault-raft cluster example: 3 openraft nodes, each logging to its own vault WAL");
    println!("directory: {}\n", dir.display());

    let config = Arc::new(
        Config {
            cluster_name: "vault-raft-example".into(),
            heartbeat_interval: 100,
            election_timeout_min: 500,
            election_timeout_max: 1000,
            // No snapshots, so no purges: every node keeps the whole log and we can compare it.
            snapshot_policy: SnapshotPolicy::Never,
            ..Config::default()
        }
        .validate()?,
    );
    let router = Router::default();
    let ids = [1, 2, 3];

    println!("1. Start three nodes (a vault WAL under node-<id>/wal, Raft metadata in node-<id>/raft-meta):");
    let mut nodes = BTreeMap::new();
    for id in ids {
        nodes.insert(id, start_node(id, &dir, &config, &router).await?);
    }

    println!("\n2. Initialise the cluster {{1, 2, 3}} on node 1 and wait for a leader:");
    let members: BTreeMap<NodeId, BasicNode> =
        ids.iter().map(|&id| (id, BasicNode::default())).collect();
    nodes[&1].raft.initialize(members).await?;
    nodes[&1]
        .raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await?;
    println!(
        "  leader: node {}",
        leader_of(&router, &ids).ok_or("no leader")?
    );

    println!("\n3. Write {n} entries through the leader (64 client writes in flight):");
    let t = Instant::now();
    write(&router, &ids, 0, n).await?;
    let el = t.elapsed();
    println!(
        "  {n} writes committed in {:.2} s ({:.0} writes/s); each is acknowledged once a majority's \
         vault group commit made it durable",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64()
    );

    let leader = leader_of(&router, &ids).ok_or("no leader")?;
    let stopped = *ids
        .iter()
        .rev()
        .find(|&&id| id != leader)
        .expect("a follower");
    println!("\n4. Stop follower node {stopped} (shut its Raft down, drop its log store):");
    {
        let node = nodes.remove(&stopped).expect("running");
        router.remove(stopped);
        let applied = node.raft.metrics().borrow().last_applied;
        node.raft.shutdown().await?;
        println!(
            "  node {stopped} stopped at applied log id {}",
            applied.map_or("none".into(), |l| l.to_string())
        );
        drop(node); // drops the Raft handle and its log reader: the WAL closes
    }

    let more = n / 2;
    println!("\n5. Write {more} more entries with node {stopped} down (2 of 3 are a majority):");
    write(&router, &ids, n, more).await?;
    let leader_last = nodes[&leader].raft.metrics().borrow().last_log_index;
    println!(
        "  done; the leader's last log index is now {}",
        leader_last.map_or("none".into(), |i| i.to_string())
    );

    println!("\n6. Restart node {stopped} from its directory (reopen its VaultLogStore):");
    nodes.insert(stopped, start_node(stopped, &dir, &config, &router).await?);
    let t = Instant::now();
    let want = nodes[&leader].raft.metrics().borrow().last_log_index;
    nodes[&stopped]
        .raft
        .wait(Some(Duration::from_secs(20)))
        .metrics(
            |m| m.last_log_index >= want && m.last_applied.map(|l| l.index) >= want,
            "the restarted node catches up",
        )
        .await?;
    println!(
        "  node {stopped} caught up to log index {} in {:.2} s (the leader replicated what it missed)",
        want.map_or("none".into(), |i| i.to_string()),
        t.elapsed().as_secs_f64()
    );

    println!(
        "\n7. Compare the three logs (read back from each node's vault WAL) and state machines:"
    );
    // Let the followers' last heartbeats settle, then compare.
    for node in nodes.values() {
        node.raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.last_log_index >= want, "all logs complete")
            .await?;
    }
    let mut digests = Vec::new();
    let mut states: Vec<KvState> = Vec::new();
    for (id, node) in &mut nodes {
        let (count, last, crc) = log_digest(node).await?;
        let state = node.sm.state();
        println!(
            "  node {id}: {count} entries, last index {last}, log CRC32C {crc:08x}; state machine {} keys",
            state.data.len()
        );
        digests.push((count, last, crc));
        states.push(state);
    }
    let same_logs = digests.windows(2).all(|w| w[0] == w[1]);
    let same_state = states.windows(2).all(|w| w[0].data == w[1].data);
    println!(
        "  logs identical: {same_logs}; state machines identical: {same_state}; expected keys: {}",
        n + more
    );

    println!("\n8. Shut down.");
    for node in nodes.values() {
        node.raft.shutdown().await?;
    }
    println!("finished in {:.1} s", t0.elapsed().as_secs_f64());
    if !(same_logs && same_state && states[0].data.len() as u64 == n + more) {
        return Err("the nodes disagree".into());
    }
    Ok(())
}
