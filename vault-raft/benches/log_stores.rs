//! openraft client-write latency and throughput with four log stores, in one run:
//! `VaultLogStore`, an in-memory store (no disk: the ceiling), hiqlite's `hiqlite-wal` 0.15
//! (its own `RaftLogStorage`, an mmap log; in two sync modes, see [`HIQLITE_MODES`]), and
//! databend's raft-log 0.4 (wrapped as a `RaftLogStorage` below; needs
//! `--features bench-raft-log`).
//!
//! ```text
//! cargo bench -p vault-raft --bench log_stores --features bench-raft-log
//! cargo bench -p vault-raft --bench log_stores --features bench-raft-log -- --quick
//! cargo bench -p vault-raft --bench log_stores -- --quick --only hiqlite --nodes 1
//! VAULT_BENCH_DIR=/mnt/nvme cargo bench -p vault-raft --bench log_stores   # logs elsewhere
//! ```
//!
//! Each store runs a 1-node and a 3-node cluster (in-process network, one store per node, each
//! in its own directory under `$VAULT_BENCH_DIR` or the system temp dir). Latency: sequential client writes, one in
//! flight. Throughput: `IN_FLIGHT` concurrent client writes. A write returns once it is
//! committed (durable on a majority) and applied. The state machine is the in-memory KV of
//! `vault_raft::testing` for every store. A benchmark, not a test: it asserts no time.
//!
//! Equal durability: openraft 0.9 commits on a store's `LogFlushed`, which must mean "on disk".
//! The `durable at LogFlushed` column says whether it does for each row; a row where it does
//! not is printed, marked not comparable, and left out of the ratio printed under the table.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hiqlite_wal::{LogStore as HiqliteLogStore, LogSync, ShutdownHandle};
use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use tokio::task::JoinSet;
use vault_raft::testing::{KvStateMachine, MemLogStore, NodeId, Request, Router, TypeConfig};
use vault_raft::VaultLogStore;

type Error = Box<dyn std::error::Error + Send + Sync>;

const VALUE_BYTES: usize = 100;
const IN_FLIGHT: usize = 256;
/// hiqlite's default WAL file size (`NodeConfig::wal_size`).
const HIQLITE_WAL_SIZE: u32 = 2 * 1024 * 1024;

/// When a store's `LogFlushed` runs, relative to its data reaching the disk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// No disk at all: the ceiling, not a peer.
    NoDisk,
    /// After the data is synced (fsync, fdatasync or `msync(MS_SYNC)`).
    Synced,
    /// Before the data is known to be on disk: faster than a durable store can be, and not
    /// comparable with one.
    BeforeSync,
}

impl Durability {
    fn describe(self) -> &'static str {
        match self {
            Self::NoDisk => "no disk (ceiling)",
            Self::Synced => "yes",
            Self::BeforeSync => "NO: not comparable",
        }
    }
}

/// hiqlite-wal's sync modes measured: `Immediate` (`msync(MS_SYNC)` of the WAL file, then
/// `LogFlushed`) and `ImmediateAsync`, hiqlite's default, which starts the writeback with
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)` and calls `LogFlushed` without waiting for it.
/// (`IntervalMillis` calls `LogFlushed` before any flush and is not measured.)
const HIQLITE_MODES: [(&str, LogSync, Durability); 2] = [
    (
        "hiqlite-wal 0.15 (Immediate)",
        LogSync::Immediate,
        Durability::Synced,
    ),
    (
        "hiqlite-wal 0.15 (ImmediateAsync, the default)",
        LogSync::ImmediateAsync,
        Durability::BeforeSync,
    ),
];

struct Plan {
    latency_writes: u64,
    throughput_writes: u64,
}

struct Row {
    store: &'static str,
    durability: Durability,
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
    durability: Durability,
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
        durability,
        nodes,
        p50: pct(0.5),
        p99: pct(0.99),
        mean,
        throughput,
    })
}

/// Opens a fresh `VaultLogStore` and waits until its worker has prepared the first segment and
/// the spares. A new log's worker allocates and prefaults those segments (64 MiB each, zeroed
/// page by page) right after open; a running store has them ready and prepares one more per
/// segment filled. Measuring before they are ready would time the log's creation competing for
/// the two cores, not its steady state.
async fn open_vault(dir: &Path, id: NodeId) -> Result<VaultLogStore<TypeConfig>, Error> {
    let options = VaultLogStore::<TypeConfig>::options();
    let ready = options.spares() as u64 + 1;
    let store = VaultLogStore::open(dir.join(format!("vault-{id}")), options)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.wal().stats().segments_prepared < ready && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(store)
}

/// The lowest nice value among this process's threads (Linux `/proc`; `None` elsewhere).
/// hiqlite-wal's writer thread asks for `ThreadPriority::Max`, which is nice -20 where the
/// process may raise priority (root, `CAP_SYS_NICE`) and is silently refused elsewhere.
fn lowest_thread_nice() -> Option<i64> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        // Field 19 of `stat`, counting from the pid; the command name before it may hold spaces.
        .filter_map(|stat| {
            stat.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(16)?
                .parse()
                .ok()
        })
        .min()
}

/// One hiqlite-wal row: the stores are opened as hiqlite opens them (`LogStore::start` with the
/// default WAL size), and their writer threads are shut down before the directory goes. Also
/// returns the lowest thread nice value seen while they ran (see [`lowest_thread_nice`]).
async fn measure_hiqlite(
    (store, sync, durability): (&'static str, LogSync, Durability),
    nodes: usize,
    plan: &Plan,
) -> Result<(Row, Option<i64>), Error> {
    let dir = bench_dir()?;
    let handles = Arc::new(std::sync::Mutex::new(Vec::<ShutdownHandle>::new()));
    let row = measure(store, durability, nodes, plan, |id| {
        let path = dir.path().join(format!("hiqlite-{id}"));
        let (sync, handles) = (sync.clone(), Arc::clone(&handles));
        async move {
            let path = path.to_str().ok_or("non-UTF-8 bench dir")?.to_owned();
            let store = HiqliteLogStore::<TypeConfig>::start(path, sync, HIQLITE_WAL_SIZE).await?;
            handles
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(store.shutdown_handle());
            Ok(store)
        }
    })
    .await?;
    let nice = lowest_thread_nice();
    let handles = std::mem::take(
        &mut *handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for h in handles {
        h.shutdown().await?;
    }
    Ok((row, nice))
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
    println!("| store | durable at LogFlushed | nodes | p50 latency | p99 latency | mean latency | throughput ({IN_FLIGHT} in flight) |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} writes/s |",
            r.store,
            r.durability.describe(),
            r.nodes,
            r.p50.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() * 1e6,
            r.mean.as_secs_f64() * 1e6,
            r.throughput
        );
    }
    println!();
    for nodes in [1, 3] {
        let vault = rows
            .iter()
            .find(|r| r.nodes == nodes && r.store == VAULT)
            .map(|r| r.throughput);
        let peer = rows
            .iter()
            .filter(|r| r.nodes == nodes && r.store != VAULT && r.durability == Durability::Synced)
            .max_by(|a, b| a.throughput.total_cmp(&b.throughput));
        if let (Some(vault), Some(peer)) = (vault, peer) {
            println!(
                "{nodes} node(s): vault-raft / best durable peer ({}) = {:.2}x writes/s",
                peer.store,
                vault / peer.throughput
            );
        }
    }
}

const MEMORY: &str = "in-memory (no disk)";
const VAULT: &str = "vault-raft VaultLogStore";
#[cfg(feature = "bench-raft-log")]
const RAFT_LOG: &str = "raft-log 0.4";

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return Ok(()); // `cargo test --benches` asks for the list of tests; there are none.
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--only TEXT`: measure only the stores whose name contains TEXT (for profiling one).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let wanted = |store: &str| only.as_ref().is_none_or(|o| store.contains(o.as_str()));
    // `--nodes N`: only the N-node clusters.
    let node_counts: Vec<usize> = match args.iter().position(|a| a == "--nodes") {
        Some(i) => vec![args.get(i + 1).ok_or("--nodes needs a number")?.parse()?],
        None => vec![1, 3],
    };
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
    let mut hiqlite_nice: Option<i64> = None;
    let rows = rt.block_on(async {
        let mut rows = Vec::new();
        for &nodes in &node_counts {
            if wanted(MEMORY) {
                rows.push(
                    measure(MEMORY, Durability::NoDisk, nodes, &plan, |_| async {
                        Ok(MemLogStore::default())
                    })
                    .await?,
                );
            }
            if wanted(VAULT) {
                let dir = bench_dir()?;
                let d = dir.path().to_path_buf();
                rows.push(
                    measure(VAULT, Durability::Synced, nodes, &plan, |id| {
                        open_vault(&d, id)
                    })
                    .await?,
                );
            }
            for mode in HIQLITE_MODES.into_iter().filter(|m| wanted(m.0)) {
                let (row, nice) = measure_hiqlite(mode, nodes, &plan).await?;
                rows.push(row);
                hiqlite_nice = match (hiqlite_nice, nice) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            #[cfg(feature = "bench-raft-log")]
            if wanted(RAFT_LOG) {
                let dir = bench_dir()?;
                let d = dir.path().to_path_buf();
                rows.push(
                    measure(RAFT_LOG, Durability::Synced, nodes, &plan, |id| {
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
    if let Some(nice) = hiqlite_nice {
        println!(
            "hiqlite-wal's writer threads ran at nice {nice} (the other stores' threads at the \
             process's own; run under `capsh --drop=cap_sys_nice --` for equal priority)"
        );
    }
    Ok(())
}
