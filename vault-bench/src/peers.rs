//! The peer WALs, each used the way its documentation shows (see `shared/research/peers.md`).
//!
//! | peer | `never` | `each` | `every N` | threads |
//! |---|---|---|---|---|
//! | raft-engine 0.4 | `write(batch, false)` | `write(batch, true)` | `write(.., true)` on the `N`th | `Arc<Engine>`, one region per thread |
//! | okaywal 0.3 | – (its `commit` always fsyncs) | an entry of one chunk, `commit` | an entry of `N` chunks | a clone of the log per thread |
//! | wal-db 1.1 | `append` | `append_and_sync` | `append`, `sync` on the `N`th | shared `Wal` |
//! | raft-log 0.4 | `append` + `flush(false)` | `append`, `flush(true, cb)`, wait | the same on the `N`th | `Mutex<RaftLog>`, wait outside it |
//! | nodedb-wal 0.4 | `append` | `GroupCommitter::submit` | `append`, `sync` on the `N`th | `Mutex<WalWriter>` (its group commit's own shape) |
//!
//! raft-engine runs with `default-features = false` and compression off; its entries are
//! protobuf-2 `BytesValue`s with the record index in the first 8 bytes. raft-log runs with its
//! flush batch wait set to zero (its default 1 ms window would put 1 ms into every sync).
//! okaywal's log manager discards entries at recovery, except in the replay run, which keeps
//! them all and reads them back through its recovery callback.
//!
//! nodedb-wal runs its `WalWriter` with its default configuration: `O_DIRECT` with 4 KiB
//! alignment, a 2 MiB write buffer, its double-write buffer (torn-write protection, also
//! `O_DIRECT`) on. A `sync` writes the buffered records padded to whole blocks (each sync starts
//! a fresh block), then `fsync`s the double-write file and the log (`sync_all`): what it
//! acknowledges is durable, as for every other system here. `GroupCommitter::submit` is its
//! group commit: the first waiter appends every queued record and syncs once for all. 0.4.0 is
//! the newest release that builds on the workspace's toolchain (1.95); 0.6 needs 1.96. Its
//! `io-uring` feature (an io_uring writer) is left off: with it off, writes are `pwrite`.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protobuf::well_known_types::BytesValue;
use raft_engine::{Config, Engine, LogBatch, MessageExt, ReadableSize};

use crate::harness::{Appender, Result, Subject, SyncMode, System, Workload};

// ---------------------------------------------------------------------------------------------
// raft-engine

/// tikv/raft-engine 0.4.
#[derive(Debug, Default)]
pub struct RaftEngine;

/// raft-engine's entry type: a `BytesValue` whose first 8 bytes are the record's index.
#[derive(Debug, Clone)]
struct BytesEntry;

impl MessageExt for BytesEntry {
    type Entry = BytesValue;

    fn index(e: &BytesValue) -> u64 {
        let mut b = [0u8; 8];
        let v = e.get_value();
        let n = v.len().min(8);
        b[..n].copy_from_slice(&v[..n]);
        u64::from_le_bytes(b)
    }
}

fn raft_engine_config(dir: &Path) -> Result<Config> {
    Ok(Config {
        dir: dir.to_str().ok_or("non-UTF-8 path")?.to_owned(),
        batch_compression_threshold: ReadableSize(0),
        ..Config::default()
    })
}

struct RaftEngineSubject {
    engine: Engine,
}

struct RaftEngineAppender<'a> {
    engine: &'a Engine,
    region: u64,
    index: u64,
    entry: [BytesValue; 1],
    batch: LogBatch,
}

impl System for RaftEngine {
    fn name(&self) -> &'static str {
        "raft-engine 0.4"
    }

    fn supports(&self, _sync: SyncMode) -> bool {
        true
    }

    fn open(&self, dir: &Path, _workload: &Workload) -> Result<Box<dyn Subject>> {
        let engine = Engine::open(raft_engine_config(dir)?)?;
        Ok(Box::new(RaftEngineSubject { engine }))
    }

    fn replay(
        &self,
        dir: &Path,
        workload: &Workload,
        done: &mut dyn FnMut(),
    ) -> Option<Result<u64>> {
        Some((|| {
            let engine = Engine::open(raft_engine_config(dir)?)?;
            let mut bytes = 0u64;
            let mut entries = Vec::new();
            for t in 0..workload.threads as u64 {
                let region = t + 1;
                let (Some(first), Some(last)) =
                    (engine.first_index(region), engine.last_index(region))
                else {
                    continue;
                };
                let mut at = first;
                while at <= last {
                    let end = (at + 4096).min(last + 1);
                    entries.clear();
                    engine.fetch_entries_to::<BytesEntry>(region, at, end, None, &mut entries)?;
                    bytes += entries
                        .iter()
                        .map(|e| e.get_value().len() as u64)
                        .sum::<u64>();
                    at = end;
                }
            }
            done();
            Ok(bytes)
        })())
    }
}

impl Subject for RaftEngineSubject {
    fn appender(&self, thread: usize) -> Result<Box<dyn Appender + '_>> {
        Ok(Box::new(RaftEngineAppender {
            engine: &self.engine,
            region: thread as u64 + 1,
            index: 0,
            entry: [BytesValue::new()],
            batch: LogBatch::default(),
        }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl Appender for RaftEngineAppender<'_> {
    fn append(&mut self, record: &[u8], durable: bool) -> Result<()> {
        self.index += 1;
        let value = self.entry[0].mut_value();
        // The buffer is reused: after the first record it only changes in place.
        if value.len() == record.len() {
            value.copy_from_slice(record);
        } else {
            value.clear();
            value.extend_from_slice(record);
        }
        let n = value.len().min(8);
        value[..n].copy_from_slice(&self.index.to_le_bytes()[..n]);
        self.batch
            .add_entries::<BytesEntry>(self.region, &self.entry)?;
        self.engine.write(&mut self.batch, durable)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// okaywal

/// khonsulabs/okaywal 0.3.
#[derive(Debug, Default)]
pub struct OkayWal;

/// Keeps every entry (no checkpoint discards) and, at recovery, counts the bytes of every chunk.
#[derive(Debug, Clone, Default)]
struct ReplayCounter(Arc<AtomicU64>);

impl okaywal::LogManager for ReplayCounter {
    fn recover(&mut self, entry: &mut okaywal::Entry<'_>) -> io::Result<()> {
        if let Some(chunks) = entry.read_all_chunks()? {
            let n: usize = chunks.iter().map(Vec::len).sum();
            self.0.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last: okaywal::EntryId,
        _entries: &mut okaywal::SegmentReader,
        _wal: &okaywal::WriteAheadLog,
    ) -> io::Result<()> {
        Ok(())
    }
}

struct OkayWalSubject {
    wal: okaywal::WriteAheadLog,
}

struct OkayWalAppender<'a> {
    wal: &'a okaywal::WriteAheadLog,
    entry: Option<okaywal::EntryWriter<'a>>,
}

impl System for OkayWal {
    fn name(&self) -> &'static str {
        "okaywal 0.3"
    }

    fn supports(&self, sync: SyncMode) -> bool {
        sync != SyncMode::Never
    }

    fn open(&self, dir: &Path, workload: &Workload) -> Result<Box<dyn Subject>> {
        let wal = if workload.replayed {
            // The replay run: never checkpoint, so that every entry is there to read back.
            okaywal::Configuration::default_for(dir)
                .checkpoint_after_bytes(u64::MAX)
                .open(ReplayCounter::default())?
        } else {
            okaywal::WriteAheadLog::recover(dir, okaywal::LogVoid)?
        };
        Ok(Box::new(OkayWalSubject { wal }))
    }

    fn replay(
        &self,
        dir: &Path,
        _workload: &Workload,
        done: &mut dyn FnMut(),
    ) -> Option<Result<u64>> {
        Some((|| {
            let counter = ReplayCounter::default();
            let wal = okaywal::Configuration::default_for(dir)
                .checkpoint_after_bytes(u64::MAX)
                .open(counter.clone())?;
            done();
            wal.shutdown()?;
            Ok(counter.0.load(Ordering::Relaxed))
        })())
    }
}

impl Subject for OkayWalSubject {
    fn appender(&self, _thread: usize) -> Result<Box<dyn Appender + '_>> {
        Ok(Box::new(OkayWalAppender {
            wal: &self.wal,
            entry: None,
        }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.wal.shutdown()?)
    }
}

impl Appender for OkayWalAppender<'_> {
    fn append(&mut self, record: &[u8], durable: bool) -> Result<()> {
        let entry = match &mut self.entry {
            Some(e) => e,
            None => self.entry.insert(self.wal.begin_entry()?),
        };
        entry.write_chunk(record)?;
        if durable {
            if let Some(e) = self.entry.take() {
                e.commit()?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// wal-db

/// wal-db 1.1 (one file, `Wal::open`).
#[derive(Debug, Default)]
pub struct WalDb;

struct WalDbSubject {
    wal: wal_db::Wal,
    each: bool,
}

struct WalDbAppender<'a> {
    wal: &'a wal_db::Wal,
    each: bool,
}

impl System for WalDb {
    fn name(&self) -> &'static str {
        "wal-db 1.1"
    }

    fn supports(&self, _sync: SyncMode) -> bool {
        true
    }

    fn open(&self, dir: &Path, workload: &Workload) -> Result<Box<dyn Subject>> {
        let wal = wal_db::Wal::open(dir.join("wal-db.log"))?;
        Ok(Box::new(WalDbSubject {
            wal,
            each: workload.sync == SyncMode::Each,
        }))
    }

    fn replay(
        &self,
        dir: &Path,
        _workload: &Workload,
        done: &mut dyn FnMut(),
    ) -> Option<Result<u64>> {
        Some((|| {
            let wal = wal_db::Wal::open(dir.join("wal-db.log"))?;
            let mut bytes = 0u64;
            for r in wal.iter()? {
                bytes += r?.len() as u64;
            }
            done();
            Ok(bytes)
        })())
    }
}

impl Subject for WalDbSubject {
    fn appender(&self, _thread: usize) -> Result<Box<dyn Appender + '_>> {
        Ok(Box::new(WalDbAppender {
            wal: &self.wal,
            each: self.each,
        }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.wal.sync()?)
    }
}

impl Appender for WalDbAppender<'_> {
    fn append(&mut self, record: &[u8], durable: bool) -> Result<()> {
        if durable && self.each {
            let _ = self.wal.append_and_sync(record)?;
            return Ok(());
        }
        let _ = self.wal.append(record)?;
        if durable {
            self.wal.sync()?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// raft-log

/// databendlabs/raft-log 0.4.
#[derive(Debug, Default)]
pub struct RaftLog;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RaftLogTypes;

impl raft_log::Types for RaftLogTypes {
    type LogId = (u64, u64);
    type LogPayload = Vec<u8>;
    type Vote = (u64, u64);
    type Callback = SyncSender<io::Result<()>>;
    type UserData = Vec<u8>;

    fn log_index(log_id: &Self::LogId) -> u64 {
        log_id.1
    }

    fn payload_size(payload: &Self::LogPayload) -> u64 {
        payload.len() as u64
    }
}

type RaftLogInner = raft_log::RaftLog<RaftLogTypes>;

fn raft_log_open(dir: &Path) -> Result<RaftLogInner> {
    let mut config = raft_log::Config::new(dir.to_str().ok_or("non-UTF-8 path")?);
    config.wal.flush_batch_wait = Some(Duration::ZERO);
    Ok(RaftLogInner::open(Arc::new(config))?)
}

struct RaftLogSubject {
    log: Mutex<RaftLogInner>,
    next_index: AtomicU64,
}

struct RaftLogAppender<'a> {
    subject: &'a RaftLogSubject,
}

impl System for RaftLog {
    fn name(&self) -> &'static str {
        "raft-log 0.4"
    }

    fn supports(&self, _sync: SyncMode) -> bool {
        true
    }

    fn open(&self, dir: &Path, _workload: &Workload) -> Result<Box<dyn Subject>> {
        Ok(Box::new(RaftLogSubject {
            log: Mutex::new(raft_log_open(dir)?),
            next_index: AtomicU64::new(0),
        }))
    }

    fn replay(
        &self,
        dir: &Path,
        _workload: &Workload,
        done: &mut dyn FnMut(),
    ) -> Option<Result<u64>> {
        Some((|| {
            let log = raft_log_open(dir)?;
            let mut bytes = 0u64;
            for r in log.read(0, u64::MAX) {
                bytes += r?.1.len() as u64;
            }
            done();
            Ok(bytes)
        })())
    }
}

impl Subject for RaftLogSubject {
    fn appender(&self, _thread: usize) -> Result<Box<dyn Appender + '_>> {
        Ok(Box::new(RaftLogAppender { subject: self }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        use raft_log::api::raft_log_writer::RaftLogWriter;
        let mut log = self
            .log
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let (tx, rx) = sync_channel(1);
        log.flush(true, Some(tx))?;
        rx.recv()??;
        Ok(())
    }
}

impl Appender for RaftLogAppender<'_> {
    fn append(&mut self, record: &[u8], durable: bool) -> Result<()> {
        use raft_log::api::raft_log_writer::RaftLogWriter;
        let wait = {
            let mut log = self
                .subject
                .log
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Indexes must follow each other in the one log: take the next under the lock.
            let index = self.subject.next_index.fetch_add(1, Ordering::Relaxed);
            // The API takes the payload by value: one `Vec` per record is the caller's cost.
            log.append([((1, index), record.to_vec())])?;
            if durable {
                let (tx, rx) = sync_channel(1);
                log.flush(true, Some(tx))?;
                Some(rx)
            } else {
                log.flush(false, None)?;
                None
            }
        };
        if let Some(rx) = wait {
            rx.recv()??;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// nodedb-wal

/// NodeDB-Lab/nodedb's `nodedb-wal` 0.4 (`WalWriter`, one file).
#[derive(Debug, Default)]
pub struct NodeDbWal;

const NODEDB_FILE: &str = "nodedb.wal";

struct NodeDbSubject {
    writer: Mutex<nodedb_wal::WalWriter>,
    committer: nodedb_wal::GroupCommitter,
    each: bool,
}

struct NodeDbAppender<'a> {
    subject: &'a NodeDbSubject,
    tenant: u64,
}

impl System for NodeDbWal {
    fn name(&self) -> &'static str {
        "nodedb-wal 0.4"
    }

    fn supports(&self, _sync: SyncMode) -> bool {
        true
    }

    fn open(&self, dir: &Path, workload: &Workload) -> Result<Box<dyn Subject>> {
        let writer = nodedb_wal::WalWriter::open(
            &dir.join(NODEDB_FILE),
            nodedb_wal::writer::WalWriterConfig::default(),
        )?;
        Ok(Box::new(NodeDbSubject {
            writer: Mutex::new(writer),
            committer: nodedb_wal::GroupCommitter::new(),
            each: workload.sync == SyncMode::Each,
        }))
    }

    fn replay(
        &self,
        dir: &Path,
        _workload: &Workload,
        done: &mut dyn FnMut(),
    ) -> Option<Result<u64>> {
        Some((|| {
            let reader = nodedb_wal::reader::WalReader::open(&dir.join(NODEDB_FILE))?;
            let mut bytes = 0u64;
            for r in reader.records() {
                bytes += r?.payload.len() as u64;
            }
            done();
            Ok(bytes)
        })())
    }
}

impl Subject for NodeDbSubject {
    fn appender(&self, thread: usize) -> Result<Box<dyn Appender + '_>> {
        Ok(Box::new(NodeDbAppender {
            subject: self,
            tenant: thread as u64 + 1,
        }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        let mut writer = self
            .writer
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(writer.sync()?)
    }
}

impl Appender for NodeDbAppender<'_> {
    fn append(&mut self, record: &[u8], durable: bool) -> Result<()> {
        let put = nodedb_wal::RecordType::Put as u32;
        let s = self.subject;
        if durable && s.each {
            // Its group commit takes the payload by value: one `Vec` per record.
            let done = s.committer.submit(
                &s.writer,
                nodedb_wal::group_commit::PendingWrite {
                    record_type: put,
                    tenant_id: self.tenant,
                    vshard_id: 0,
                    database_id: 0,
                    payload: record.to_vec(),
                },
            )?;
            if !done.durable {
                return Err("nodedb-wal: group commit returned a record not durable".into());
            }
            return Ok(());
        }
        let mut writer = s.writer.lock().unwrap_or_else(PoisonError::into_inner);
        writer.append(put, self.tenant, 0, 0, record)?;
        if durable {
            writer.sync()?;
        }
        Ok(())
    }
}
