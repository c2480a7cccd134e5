//! openraft client-write latency and throughput with three log stores, in one run:
//! `VaultLogStore`, an in-memory store (no disk: the ceiling), and databend's raft-log 0.4
//! (wrapped as a `RaftLogStorage` below; needs `--features bench-raft-log`).
//!
//! ```text
//! cargo bench -p vault-raft --bench log_stores --features bench-raft-log
//! cargo bench -p vault-raft --bench log_stores --features bench-raft-log -- --quick
//! VAULT_BENCH_DIR=/mnt/nvme cargo bench -p vault-raft --bench log_stores   # logs elsewhere
//! ```
//!
//! Each store runs a 1-node and a 3-node cluster (in-process network, one store per node, each
//! in its own directory under `$VAULT_BENCH_DIR` or the system temp dir). Latency: sequential client writes, one in
//! flight. Throughput: `IN_FLIGHT` concurrent client writes. A write returns once it is
//! committed (durable on a majority) and applied. The state machine is the in-memory KV of
//! `vault_raft::testing` for every store. A benchmark, not a test: it asserts no time.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use tokio::task::JoinSet;
use vault_raft::testing::{KvStateMachine, MemLogStore, NodeId, Request, Router, TypeConfig};
use vault_raft::VaultLogStore;

type Error = Box<dyn std::error::Error + Send + Sync>;

const VALUE_BYTES: usize = 100;
const IN_FLIGHT: usize = 256;

struct Plan {
    latency_writes: u64,
    throughput_writes: u64,
}

struct Row {
    store: &'static str,
    nodes: usize,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    throughput: f64,
}

fn request(i: u64) -> Request {
    Request {
        key: format!("key-{i}"),
        value: format!("{i:0>VALUE_BYTES$}"),
    }
}

async fn start_cluster<LS, F, Fut>(
    nodes: usize,
    open: &F,
) -> Result<(Router, Vec<Raft<TypeConfig>>), Error>
where
    LS: RaftLogStorage<TypeConfig>,
    F: Fn(NodeId) -> Fut,
    Fut: Future<Output = Result<LS, Error>>,
{
    let config = Arc::new(
        Config {
            // Generous timeouts: a loaded 2-core machine must not trigger elections mid-run.
            heartbeat_interval: 200,
            election_timeout_min: 2000,
            election_timeout_max: 4000,
            snapshot_policy: SnapshotPolicy::Never,
            ..Config::default()
        }
        .validate()?,
    );
    let router = Router::default();
    let mut rafts = Vec::new();
    for id in 1..=nodes as NodeId {
        let store = open(id).await?;
        let raft = Raft::new(
            id,
            Arc::clone(&config),
            router.clone(),
            store,
            KvStateMachine::default(),
        )
        .await?;
        router.add(id, raft.clone());
        rafts.push(raft);
    }
    let members: BTreeMap<NodeId, BasicNode> = (1..=nodes as NodeId)
        .map(|id| (id, BasicNode::default()))
        .collect();
    rafts[0].initialize(members).await?;
    rafts[0]
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.current_leader == Some(1), "node 1 leads")
        .await?;
    Ok((router, rafts))
}

/// One client write through the current leader; if leadership moved (it should not with these
/// timeouts, but a loaded machine may stall a heartbeat), waits for the new leader and retries.
async fn write(rafts: &[Raft<TypeConfig>], req: Request) -> Result<(), Error> {
    for _ in 0..100 {
        let leader = rafts[0].metrics().borrow().current_leader;
        if let Some(l) = leader {
            match rafts[(l - 1) as usize].client_write(req.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if e.forward_to_leader::<BasicNode>().is_some() => {}
                Err(e) => return Err(e.into()),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("no leader accepted the write".into())
}

async fn measure<LS, F, Fut>(
    store: &'static str,
    nodes: usize,
    plan: &Plan,
    open: F,
) -> Result<Row, Error>
where
    LS: RaftLogStorage<TypeConfig>,
    F: Fn(NodeId) -> Fut,
    Fut: Future<Output = Result<LS, Error>>,
{
    let (_router, rafts) = start_cluster(nodes, &open).await?;
    let leader = rafts.clone();
    // Warm up (first segment, caches).
    for i in 0..100 {
        write(&leader, request(i)).await?;
    }
    let mut lat = Vec::with_capacity(plan.latency_writes as usize);
    for i in 0..plan.latency_writes {
        let t = Instant::now();
        write(&leader, request(i)).await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let mean = lat.iter().sum::<Duration>() / lat.len() as u32;
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];

    let t = Instant::now();
    let mut tasks = JoinSet::new();
    let mut next = 0;
    while next < plan.throughput_writes || !tasks.is_empty() {
        while next < plan.throughput_writes && tasks.len() < IN_FLIGHT {
            let rafts = leader.clone();
            let i = next;
            tasks.spawn(async move { write(&rafts, request(i)).await });
            next += 1;
        }
        if let Some(r) = tasks.join_next().await {
            r??;
        }
    }
    let throughput = plan.throughput_writes as f64 / t.elapsed().as_secs_f64();
    for r in &rafts {
        r.shutdown().await?;
    }
    Ok(Row {
        store,
        nodes,
        p50: pct(0.5),
        p99: pct(0.99),
        mean,
        throughput,
    })
}

async fn open_vault(dir: &Path, id: NodeId) -> Result<VaultLogStore<TypeConfig>, Error> {
    let (store, _) = VaultLogStore::open(
        dir.join(format!("vault-{id}")),
        VaultLogStore::<TypeConfig>::options(),
    )?;
    Ok(store)
}

#[cfg(feature = "bench-raft-log")]
mod raft_log_store {
    //! databend's raft-log 0.4 as an openraft 0.9 `RaftLogStorage`: entries are MessagePack
    //! payloads (as in `VaultLogStore`), log ids `((term, node), index)`, and openraft's
    //! `LogFlushed` is raft-log's flush callback, so it fires when raft-log's flush worker has
    //! fsynced the entries. The vote and purge go through raft-log's own records.

    use std::fmt::Debug;
    use std::io;
    use std::ops::{Bound, RangeBounds};
    use std::path::Path;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    use std::time::Duration;

    use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
    use openraft::{
        AnyError, CommittedLeaderId, Entry, LogId, OptionalSend, RaftLogReader, StorageError,
        StorageIOError, Vote,
    };
    use raft_log::api::raft_log_writer::RaftLogWriter;
    use vault_raft::testing::{NodeId, TypeConfig};

    #[derive(Debug, Default, PartialEq, Eq, Clone)]
    pub struct Types;

    /// raft-log's flush callback: openraft's `LogFlushed`, or a channel to wait on.
    pub enum Flushed {
        Raft(LogFlushed<TypeConfig>),
        Wait(std::sync::mpsc::SyncSender<io::Result<()>>),
    }

    impl raft_log::Callback for Flushed {
        fn send(self, res: Result<(), io::Error>) {
            match self {
                Self::Raft(cb) => cb.log_io_completed(res),
                // The waiter may have given up; nothing to report then.
                Self::Wait(tx) => std::sync::mpsc::SyncSender::send(&tx, res).unwrap_or(()),
            }
        }
    }

    impl raft_log::Types for Types {
        type LogId = ((u64, u64), u64);
        type LogPayload = Vec<u8>;
        type Vote = ((u64, u64), bool);
        type Callback = Flushed;
        type UserData = Vec<u8>;

        fn log_index(log_id: &Self::LogId) -> u64 {
            log_id.1
        }

        fn payload_size(payload: &Self::LogPayload) -> u64 {
            payload.len() as u64
        }
    }

    type Log = raft_log::RaftLog<Types>;

    #[derive(Clone)]
    pub struct RaftLogStore {
        log: Arc<Mutex<Log>>,
    }

    fn err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
        StorageIOError::write_logs(AnyError::new(&e)).into()
    }

    fn to_id(l: &LogId<NodeId>) -> ((u64, u64), u64) {
        ((l.leader_id.term, l.leader_id.node_id), l.index)
    }

    fn from_id(&((term, node), index): &((u64, u64), u64)) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    impl RaftLogStore {
        pub fn open(dir: &Path) -> io::Result<Self> {
            let mut config = raft_log::Config::new(dir.to_str().expect("UTF-8 path"));
            // As in vault-bench's comparison: flush as soon as asked (no batching delay).
            config.wal.flush_batch_wait = Some(Duration::ZERO);
            Ok(Self {
                log: Arc::new(Mutex::new(Log::open(Arc::new(config))?)),
            })
        }

        fn log(&self) -> MutexGuard<'_, Log> {
            self.log.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Flushes and waits for the fsync (a vote or truncation must be durable on return).
        fn flush_blocking(&self) -> io::Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            self.log().flush(true, Some(Flushed::Wait(tx)))?;
            rx.recv()
                .map_err(|_| io::Error::other("raft-log flush worker stopped"))?
        }
    }

    impl RaftLogReader<TypeConfig> for RaftLogStore {
        async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
            &mut self,
            range: RB,
        ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
            let from = match range.start_bound() {
                Bound::Included(&i) => i,
                Bound::Excluded(&i) => i + 1,
                Bound::Unbounded => 0,
            };
            let to = match range.end_bound() {
                Bound::Included(&i) => i + 1,
                Bound::Excluded(&i) => i,
                Bound::Unbounded => u64::MAX,
            };
            let log = self.log();
            let mut out = Vec::new();
            for r in log.read(from, to) {
                let (_, payload) = r.map_err(err)?;
                out.push(rmp_serde::from_slice(&payload).map_err(err)?);
            }
            Ok(out)
        }
    }

    impl RaftLogStorage<TypeConfig> for RaftLogStore {
        type LogReader = Self;

        async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
            let log = self.log();
            let st = log.log_state();
            let purged = st.purged().map(from_id);
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: st.last().map(from_id).or(purged),
            })
        }

        async fn get_log_reader(&mut self) -> Self::LogReader {
            self.clone()
        }

        async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
            let v = (
                (vote.leader_id.term, vote.leader_id.node_id),
                vote.committed,
            );
            self.log().save_vote(v).map_err(err)?;
            self.flush_blocking().map_err(err)
        }

        async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
            let log = self.log();
            Ok(log.log_state().vote().map(|&((term, node), committed)| {
                if committed {
                    Vote::new_committed(term, node)
                } else {
                    Vote::new(term, node)
                }
            }))
        }

        async fn append<I>(
            &mut self,
            entries: I,
            callback: LogFlushed<TypeConfig>,
        ) -> Result<(), StorageError<NodeId>>
        where
            I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
            I::IntoIter: OptionalSend,
        {
            let mut batch = Vec::new();
            for e in entries {
                batch.push((to_id(&e.log_id), rmp_serde::to_vec(&e).map_err(err)?));
            }
            let mut log = self.log();
            log.append(batch).map_err(err)?;
            log.flush(true, Some(Flushed::Raft(callback)))
                .map_err(err)?;
            Ok(())
        }

        async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
            self.log().truncate(log_id.index).map_err(err)?;
            self.flush_blocking().map_err(err)
        }

        async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
            self.log().purge(to_id(&log_id)).map_err(err)?;
            Ok(())
        }
    }
}

/// A fresh directory under `$VAULT_BENCH_DIR` (as vault-bench's comparison) or the temp dir.
fn bench_dir() -> std::io::Result<tempfile::TempDir> {
    match std::env::var_os("VAULT_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
}

fn print_table(rows: &[Row]) {
    println!("| store | nodes | p50 latency | p99 latency | mean latency | throughput ({IN_FLIGHT} in flight) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} writes/s |",
            r.store,
            r.nodes,
            r.p50.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() * 1e6,
            r.mean.as_secs_f64() * 1e6,
            r.throughput
        );
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return Ok(()); // `cargo test --benches` asks for the list of tests; there are none.
    }
    let quick = args.iter().any(|a| a == "--quick");
    let plan = if quick {
        Plan {
            latency_writes: 300,
            throughput_writes: 3_000,
        }
    } else {
        Plan {
            latency_writes: 2_000,
            throughput_writes: 30_000,
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let rows = rt.block_on(async {
        let mut rows = Vec::new();
        for nodes in [1, 3] {
            rows.push(
                measure("in-memory (no disk)", nodes, &plan, |_| async {
                    Ok(MemLogStore::default())
                })
                .await?,
            );
            let dir = bench_dir()?;
            let d = dir.path().to_path_buf();
            rows.push(
                measure("vault-raft VaultLogStore", nodes, &plan, |id| {
                    open_vault(&d, id)
                })
                .await?,
            );
            drop(dir);
            #[cfg(feature = "bench-raft-log")]
            {
                let dir = bench_dir()?;
                let d = dir.path().to_path_buf();
                rows.push(
                    measure("raft-log 0.4", nodes, &plan, |id| {
                        let p = d.join(format!("raft-log-{id}"));
                        async move {
                            std::fs::create_dir_all(&p)?;
                            Ok(raft_log_store::RaftLogStore::open(&p)?)
                        }
                    })
                    .await?,
                );
            }
        }
        Ok::<_, Error>(rows)
    })?;
    #[cfg(not(feature = "bench-raft-log"))]
    println!("(raft-log skipped: run with --features bench-raft-log)");
    print_table(&rows);
    Ok(())
}
