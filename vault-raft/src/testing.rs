//! Small, non-durable pieces for tests, the `cluster` example and the benchmark: a type config,
//! an in-memory key-value state machine, an in-memory log store to compare against, and an
//! in-process network ([`Router`]) that delivers RPCs by calling the target's `Raft` handle.
//!
//! Nothing here is durable. A real application brings its own state machine (and persists it
//! or its snapshots); only [`crate::VaultLogStore`] is meant for production.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, Raft,
    RaftLogId, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};

/// A client command: set `key` to `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The key.
    pub key: String,
    /// The new value.
    pub value: String,
}

/// The state machine's answer: the key's previous value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The value `key` had before, if any.
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// The type config of the tests, the example and the benchmark: `u64` node ids,
    /// [`BasicNode`], `openraft::Entry`, tokio.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The node id of [`TypeConfig`].
pub type NodeId = u64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the key-value state machine holds (and its snapshots serialise).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KvState {
    /// The last applied log id.
    pub last_applied: Option<LogId<NodeId>>,
    /// The membership as of the last applied membership entry.
    pub last_membership: StoredMembership<NodeId, BasicNode>,
    /// The data.
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct KvInner {
    state: KvState,
    snapshot: Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>,
    snapshot_seq: u64,
}

/// An in-memory key-value state machine (clones share it).
#[derive(Debug, Clone, Default)]
pub struct KvStateMachine {
    inner: Arc<Mutex<KvInner>>,
}

impl KvStateMachine {
    /// A copy of the current state.
    #[must_use]
    pub fn state(&self) -> KvState {
        lock(&self.inner).state.clone()
    }
}

fn sm_err(e: &rmp_serde::decode::Error) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::Snapshot(None),
        ErrorVerb::Read,
        AnyError::new(e),
    )
    .into()
}

impl RaftSnapshotBuilder<TypeConfig> for KvStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let mut g = lock(&self.inner);
        let data = rmp_serde::to_vec(&g.state).map_err(|e| {
            StorageError::from(StorageIOError::new(
                ErrorSubject::Snapshot(None),
                ErrorVerb::Write,
                AnyError::new(&e),
            ))
        })?;
        g.snapshot_seq += 1;
        let snapshot_id = match &g.state.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, g.snapshot_seq),
            None => format!("--{}", g.snapshot_seq),
        };
        let meta = SnapshotMeta {
            last_log_id: g.state.last_applied,
            last_membership: g.state.last_membership.clone(),
            snapshot_id,
        };
        g.snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for KvStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let g = lock(&self.inner);
        Ok((g.state.last_applied, g.state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut g = lock(&self.inner);
        let mut out = Vec::new();
        for e in entries {
            g.state.last_applied = Some(e.log_id);
            let previous = match e.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(req) => g.state.data.insert(req.key, req.value),
                EntryPayload::Membership(m) => {
                    g.state.last_membership = StoredMembership::new(Some(e.log_id), m);
                    None
                }
            };
            out.push(Response { previous });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let state: KvState = rmp_serde::from_slice(&data).map_err(|e| sm_err(&e))?;
        let mut g = lock(&self.inner);
        g.state = state;
        g.snapshot = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let g = lock(&self.inner);
        Ok(g.snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}

#[derive(Debug, Default)]
struct MemLog {
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

/// An in-memory log store: a `BTreeMap` of entries, `LogFlushed` called at once. It is the
/// no-disk baseline of the benchmark (openraft 0.9's own `openraft-memstore` implements the v1
/// `RaftStorage`, whose adaptor the `storage-v2` feature that vault-raft needs removes).
#[derive(Debug, Clone, Default)]
pub struct MemLogStore {
    inner: Arc<Mutex<MemLog>>,
}

impl RaftLogReader<TypeConfig> for MemLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(lock(&self.inner)
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let g = lock(&self.inner);
        let last = g.entries.values().next_back().map(|e| *e.get_log_id());
        Ok(LogState {
            last_purged_log_id: g.last_purged,
            last_log_id: last.or(g.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        lock(&self.inner).vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(lock(&self.inner).vote)
    }

    async fn save_committed(
        &mut self,
        c: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        lock(&self.inner).committed = c;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(lock(&self.inner).committed)
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
        {
            let mut g = lock(&self.inner);
            for e in entries {
                g.entries.insert(e.log_id.index, e);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        lock(&self.inner).entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut g = lock(&self.inner);
        g.entries = g.entries.split_off(&(log_id.index + 1));
        g.last_purged = Some(log_id);
        Ok(())
    }
}

/// An in-process network: the `Raft` handles of the running nodes by id. An RPC to a node that
/// is not in the map (stopped) fails as `Unreachable`, as a dead peer would.
#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<TypeConfig>>>>,
}

impl Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<NodeId> = lock(&self.nodes).keys().copied().collect();
        f.debug_struct("Router").field("nodes", &ids).finish()
    }
}

impl Router {
    /// Makes `raft` reachable as node `id`.
    pub fn add(&self, id: NodeId, raft: Raft<TypeConfig>) {
        lock(&self.nodes).insert(id, raft);
    }

    /// Makes node `id` unreachable; returns its handle.
    pub fn remove(&self, id: NodeId) -> Option<Raft<TypeConfig>> {
        lock(&self.nodes).remove(&id)
    }

    /// The handle of node `id`, if it is reachable.
    #[must_use]
    pub fn get(&self, id: NodeId) -> Option<Raft<TypeConfig>> {
        lock(&self.nodes).get(&id).cloned()
    }
}

/// A connection of [`Router`] to one target node.
#[derive(Debug)]
pub struct Connection {
    router: Router,
    target: NodeId,
}

impl Connection {
    fn target(&self) -> Option<Raft<TypeConfig>> {
        self.router.get(self.target)
    }

    fn down<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        let e = std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            format!("node {} is down", self.target),
        );
        RPCError::Unreachable(Unreachable::new(&e))
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.clone(),
            target,
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.target().ok_or_else(|| self.down())?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let raft = self.target().ok_or_else(|| self.down())?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.target().ok_or_else(|| self.down())?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// The log id of the entry at `index` written in `term` by node 1.
#[must_use]
pub fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
}
