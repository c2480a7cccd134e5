//! vault and the machine's own limits, as [`System`]s.
//!
//! - [`Vault`]: `vault_core::Wal` as a user runs it, on one I/O path (`vault mmap`,
//!   `vault direct`: `Options::with_io`). `never` = `SyncPolicy::Manual`;
//!   `each` = `SyncPolicy::Always` (concurrent appenders share flushes: group commit);
//!   `every N` = `Manual` and [`Wal::sync`] after every `N`th record of a thread.
//! - [`MemcpyCeiling`]: `memcpy` of each record into a pre-faulted `MAP_SHARED` mapping of
//!   shared memory (a memfd, which is never written back), nothing else: the most an unsynced
//!   append into a mapping can do.
//! - [`PwriteFloor`]: `pwrite` of each record into a preallocated, pre-zeroed (written and
//!   synced) file, and `fdatasync` when durability is asked: the least a durable append costs.
//!   Threads write disjoint ranges of the one file and sync it independently.
//! - [`DirectFloor`]: each sync is one `O_DIRECT|O_DSYNC` write of the blocks that hold the
//!   records since the last sync (one 4 KiB block for a small record, the record's aligned
//!   length for a large one) into pre-zeroed space: the device floor for a durable append.
//!   Threads are independent writers, each in its own region of the one file.
//! - [`measure_direct_bandwidth`]: the device's sequential `O_DIRECT` write bandwidth.
//! - [`measure_spill`]: what a log that spills gigabytes leaves in memory (page cache, `Dirty`,
//!   the process's resident set).
//! - [`HandWritten`]: `File::write_all` on an `O_APPEND` file and `sync_data`, behind a mutex:
//!   what a user writes by hand.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use memmap2::{Advice, MmapMut, MmapOptions, MmapRaw};
use vault_core::{IoMode, Options, Pool, PoolConfig, SyncPolicy, Wal};

use crate::harness::{Appender, Result, SegmentCounts, Subject, SyncMode, System, Workload};

/// vault's [`Wal`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Vault {
    /// The I/O path (`IoMode::Auto` picks by file system; the comparison names one).
    pub io: IoMode,
    /// Build each record in a pooled buffer and hand it to [`Wal::must_write`] instead of
    /// calling [`Wal::append`] with a slice.
    pub must_write: bool,
    /// Use 512 MiB segments (unless the workload sets a size), so that no rotation happens
    /// during a run (at most ~290 MiB): the append path alone, as the memcpy ceiling measures a
    /// mapping prepared beforehand. Not larger: two pre-faulted segments are that much dirty
    /// memory, and past the kernel's background threshold its writeback cleans the pages again.
    pub big_segments: bool,
}

struct VaultSubject {
    wal: Wal,
    sync: SyncMode,
    must_write: bool,
    pool: Pool,
    rotations_at_start: u64,
    waits_at_start: u64,
}

struct VaultAppender<'a> {
    subject: &'a VaultSubject,
}

impl Vault {
    /// `Wal::append` on the mmap path.
    #[must_use]
    pub fn mmap() -> Self {
        Vault {
            io: IoMode::Mmap,
            ..Vault::default()
        }
    }

    /// `Wal::append` on the direct-I/O path.
    #[must_use]
    pub fn direct() -> Self {
        Vault {
            io: IoMode::Direct,
            ..Vault::default()
        }
    }

    fn options(self, workload: &Workload) -> Options {
        let policy = match workload.sync {
            SyncMode::Each => SyncPolicy::Always,
            SyncMode::Never | SyncMode::Every(_) => SyncPolicy::Manual,
        };
        let mut options = Options::default().with_sync(policy).with_io(self.io);
        if let Some(size) = workload.segment_size {
            options = options.with_segment_size(size);
        }
        options
    }
}

/// Waits until the rotation worker holds every spare segment ready (`spares` of them), as in a
/// log that has been running for a while below its preparation rate.
fn settle(wal: &Wal, spares: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = wal.stats();
        // The first segment of a new log came from the worker too.
        if s.segments_prepared >= s.rotations + 1 + spares {
            // The worker sends the spare and then parks on its request channel (whose first
            // wait registers a waker, an allocation of its own): let it get there first, so
            // a run's allocation count holds only what its appends cause.
            std::thread::sleep(Duration::from_millis(20));
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the rotation worker prepared no spare in 60 s: {s:?}").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl System for Vault {
    fn name(&self) -> &'static str {
        match (self.io, self.must_write, self.big_segments) {
            (IoMode::Mmap, true, _) => "vault mmap must_write",
            (IoMode::Mmap, false, true) => "vault mmap, 512 MiB segments",
            (IoMode::Mmap, false, false) => "vault mmap",
            (IoMode::Direct, true, _) => "vault direct must_write",
            (IoMode::Direct, false, true) => "vault direct, 512 MiB segments",
            (IoMode::Direct, false, false) => "vault direct",
            (_, true, _) => "vault must_write",
            (_, false, true) => "vault, 512 MiB segments",
            (_, false, false) => "vault",
        }
    }

    fn supports(&self, _sync: SyncMode) -> bool {
        true
    }

    fn open(&self, dir: &Path, workload: &Workload) -> Result<Box<dyn Subject>> {
        let mut options = self.options(workload);
        if self.big_segments && workload.segment_size.is_none() {
            options = options.with_segment_size(512 << 20);
        }
        let spares = vault_rotate::default_spares(options.segment_size()) as u64;
        let wal = Wal::open(dir, options)?;
        settle(&wal, spares)?;
        let s = wal.stats();
        Ok(Box::new(VaultSubject {
            wal,
            sync: workload.sync,
            must_write: self.must_write,
            pool: Pool::new(PoolConfig::default())?,
            rotations_at_start: s.rotations,
            waits_at_start: s.segment_waits,
        }))
    }

    fn replay(
        &self,
        dir: &Path,
        workload: &Workload,
        done: &mut dyn FnMut(),
    ) -> Option<Result<u64>> {
        Some((|| {
            let wal = Wal::open(dir, self.options(workload))?;
            let bytes = wal.iter_from(1).map(|r| r.len() as u64).sum();
            done();
            wal.close()?;
            Ok(bytes)
        })())
    }
}

impl Subject for VaultSubject {
    fn appender(&self, _thread: usize) -> Result<Box<dyn Appender + '_>> {
        Ok(Box::new(VaultAppender { subject: self }))
    }

    fn segments(&self) -> Option<SegmentCounts> {
        let s = self.wal.stats();
        Some(SegmentCounts {
            rotations: s.rotations - self.rotations_at_start,
            waits: s.segment_waits - self.waits_at_start,
        })
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.wal.close()?)
    }
}

impl Appender for VaultAppender<'_> {
    fn append(&mut self, record: &[u8], durable: bool) -> Result<()> {
        let s = self.subject;
        if s.must_write {
            let mut buf = s.pool.get();
            buf.extend_from_slice(record);
            s.wal.must_write(buf).map_err(|e| e.error)?;
        } else {
            s.wal.append(record)?;
        }
        // Under `Always` the append itself waited for its flush.
        if durable && s.sync != SyncMode::Each {
            s.wal.sync()?;
        }
        Ok(())
    }
}

/// Creates `path` with `len` bytes allocated with `fallocate` (not written).
fn allocated_file(path: &Path, len: u64) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len.max(4096))?;
    Ok(file)
}

/// The ceiling for unsynced appends: `memcpy` into a pre-faulted shared mapping.
#[derive(Debug, Default)]
pub struct MemcpyCeiling;

struct MemcpySubject {
    map: MmapRaw,
    per_thread: usize,
}

struct MemcpyAppender<'a> {
    /// Start of this thread's range of the mapping.
    base: *mut u8,
    len: usize,
    offset: usize,
    _subject: &'a MemcpySubject,
}

impl System for MemcpyCeiling {
    fn name(&self) -> &'static str {
        "memcpy into mmap (ceiling)"
    }

    fn supports(&self, sync: SyncMode) -> bool {
        sync == SyncMode::Never
    }

    fn open(&self, _dir: &Path, workload: &Workload) -> Result<Box<dyn Subject>> {
        let per_thread = usize::try_from(workload.bytes_per_thread())?.next_multiple_of(4096);
        let len = per_thread * workload.threads;
        // Shared memory that the kernel never writes back: a file on the disk under test gave
        // a ceiling that swung by 10x from run to run, whenever background writeback (other
        // processes' dirty data pushing past its threshold) cleaned the pre-faulted pages and
        // the copy took a write fault per page. vault's own runs keep that cost.
        let file = File::from(rustix::fs::memfd_create(
            "vault-bench-ceiling",
            rustix::fs::MemfdFlags::CLOEXEC,
        )?);
        file.set_len(len as u64)?;
        let map = MmapOptions::new().len(len).map_raw(&file)?;
        map.advise(Advice::PopulateWrite)?;
        Ok(Box::new(MemcpySubject { map, per_thread }))
    }
}

impl Subject for MemcpySubject {
    fn appender(&self, thread: usize) -> Result<Box<dyn Appender + '_>> {
        let start = self.per_thread * thread;
        if start + self.per_thread > self.map.len() {
            return Err("no range left for this thread".into());
        }
        Ok(Box::new(MemcpyAppender {
            // SAFETY: `start + per_thread <= len` (checked above), so the pointer stays inside
            // the mapping.
            base: unsafe { self.map.as_mut_ptr().add(start) },
            len: self.per_thread,
            offset: 0,
            _subject: self,
        }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl Appender for MemcpyAppender<'_> {
    fn append(&mut self, record: &[u8], _durable: bool) -> Result<()> {
        if record.len() > self.len - self.offset {
            return Err("record past the end of the thread's range".into());
        }
        // SAFETY: in bounds of this thread's range (checked above), which lies inside the
        // mapping that `_subject` keeps alive. Each thread has a disjoint range (one appender
        // per thread index) and nothing else in the process touches the file, so no other
        // access races with this copy.
        unsafe {
            std::ptr::copy_nonoverlapping(
                record.as_ptr(),
                self.base.add(self.offset),
                record.len(),
            );
        }
        self.offset += record.len();
        Ok(())
    }
}

/// The floor for durable appends: `pwrite` into a pre-zeroed file, `fdatasync`.
#[derive(Debug, Default)]
pub struct PwriteFloor;

struct PwriteSubject {
    file: File,
    per_thread: u64,
}

struct PwriteAppender<'a> {
    file: &'a File,
    offset: u64,
}

impl System for PwriteFloor {
    fn name(&self) -> &'static str {
        "pwrite + fdatasync (floor)"
    }

    fn supports(&self, _sync: SyncMode) -> bool {
        true
    }

    fn open(&self, dir: &Path, workload: &Workload) -> Result<Box<dyn Subject>> {
        let per_thread = workload.bytes_per_thread().next_multiple_of(4096);
        let len = per_thread * workload.threads as u64;
        let file = allocated_file(&dir.join("floor.bin"), len)?;
        // Pre-zero: written blocks, so a sync writes data and no extent metadata. 4 KiB writes
        // keep page-cache folios small (a large folio makes fdatasync write all of it).
        let zeros = [0u8; 4096];
        let mut off = 0;
        while off < len {
            file.write_all_at(&zeros, off)?;
            off += zeros.len() as u64;
        }
        file.sync_all()?;
        Ok(Box::new(PwriteSubject { file, per_thread }))
    }
}

impl Subject for PwriteSubject {
    fn appender(&self, thread: usize) -> Result<Box<dyn Appender + '_>> {
        Ok(Box::new(PwriteAppender {
            file: &self.file,
            offset: self.per_thread * thread as u64,
        }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl Appender for PwriteAppender<'_> {
    fn append(&mut self, record: &[u8], durable: bool) -> Result<()> {
        self.file.write_all_at(record, self.offset)?;
        self.offset += record.len() as u64;
        if durable {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

/// What a user writes by hand: `write_all` to an append-mode file, `sync_data`, one mutex.
#[derive(Debug, Default)]
pub struct HandWritten;

struct HandSubject {
    file: Mutex<File>,
}

struct HandAppender<'a> {
    file: &'a Mutex<File>,
}

impl System for HandWritten {
    fn name(&self) -> &'static str {
        "File::write_all + sync_data"
    }

    fn supports(&self, _sync: SyncMode) -> bool {
        true
    }

    fn open(&self, dir: &Path, _workload: &Workload) -> Result<Box<dyn Subject>> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(dir.join("hand.log"))?;
        Ok(Box::new(HandSubject {
            file: Mutex::new(file),
        }))
    }

    fn replay(
        &self,
        dir: &Path,
        _workload: &Workload,
        done: &mut dyn FnMut(),
    ) -> Option<Result<u64>> {
        let read = read_file(&dir.join("hand.log"));
        done();
        Some(read)
    }
}

/// Reads a whole file in 1 MiB chunks; returns its length.
fn read_file(path: &Path) -> Result<u64> {
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

impl Subject for HandSubject {
    fn appender(&self, _thread: usize) -> Result<Box<dyn Appender + '_>> {
        Ok(Box::new(HandAppender { file: &self.file }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl Appender for HandAppender<'_> {
    fn append(&mut self, record: &[u8], durable: bool) -> Result<()> {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(record)?;
        if durable {
            file.sync_data()?;
        }
        Ok(())
    }
}

/// The median and 99th percentile of `fdatasync` on a file with nothing dirty (one device
/// flush), and of `pwrite` 4 KiB + `fdatasync` into a pre-zeroed file, in `dir`.
///
/// # Errors
/// I/O errors.
pub fn measure_fdatasync(dir: &Path, rounds: u32) -> Result<[(Duration, Duration); 2]> {
    let path = dir.join("fdatasync-probe.bin");
    let file = allocated_file(&path, 4096 * u64::from(rounds))?;
    let zeros = [0u8; 4096];
    for i in 0..u64::from(rounds) {
        file.write_all_at(&zeros, i * 4096)?;
    }
    file.sync_all()?;
    let mut idle = Vec::with_capacity(rounds as usize);
    let mut write = Vec::with_capacity(rounds as usize);
    let page = [0x5au8; 4096];
    for i in 0..u64::from(rounds) {
        let t = Instant::now();
        file.sync_data()?;
        idle.push(t.elapsed());
        let t = Instant::now();
        file.write_all_at(&page, i * 4096)?;
        file.sync_data()?;
        write.push(t.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok([percentiles(&mut idle), percentiles(&mut write)])
}

fn percentiles(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// The block size of direct I/O: writes start and end on it. 4096 suits every device of the
/// machines this runs on (512 B and 4 KiB logical blocks).
const BLOCK: usize = 4096;

fn direct_flags(dsync: bool) -> i32 {
    let mut flags = rustix::fs::OFlags::DIRECT;
    if dsync {
        flags |= rustix::fs::OFlags::DSYNC;
    }
    // The flag bits fit an `i32` (`open(2)` takes an `int`).
    flags.bits() as i32
}

/// Creates `path` holding `len` zero bytes, written with `O_DIRECT` and made durable, so that
/// later overwrites change no file-system metadata and nothing of it sits in the page cache.
fn pre_zeroed_file(path: &Path, len: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(direct_flags(false))
        .open(path)?;
    let chunk = MmapMut::map_anon(1 << 20)?;
    let mut off = 0;
    while off < len {
        let n = (len - off).min(chunk.len() as u64) as usize;
        file.write_all_at(&chunk[..n.next_multiple_of(BLOCK)], off)?;
        off += n as u64;
    }
    file.sync_all()?;
    Ok(())
}

/// The floor for durable appends on the direct path: one `O_DIRECT|O_DSYNC` write per sync.
#[derive(Debug, Default)]
pub struct DirectFloor;

struct DirectSubject {
    file: File,
    per_thread: u64,
    /// Records per sync (1 for `each`, `N` for `every N`).
    per_sync: usize,
    record_len: usize,
}

struct DirectAppender<'a> {
    file: &'a File,
    /// Start of this thread's region in the file.
    region: u64,
    /// Bytes not yet durable, from `stage_off` (block-aligned, relative to `region`): the
    /// partly written tail block and the records since.
    stage: MmapMut,
    stage_off: u64,
    fill: usize,
}

impl System for DirectFloor {
    fn name(&self) -> &'static str {
        "O_DIRECT + O_DSYNC write (floor)"
    }

    fn supports(&self, sync: SyncMode) -> bool {
        sync != SyncMode::Never
    }

    fn open(&self, dir: &Path, workload: &Workload) -> Result<Box<dyn Subject>> {
        let per_sync = match workload.sync {
            SyncMode::Every(n) => n as usize,
            SyncMode::Each | SyncMode::Never => 1,
        };
        let per_thread = (workload.bytes_per_thread() + BLOCK as u64).next_multiple_of(1 << 20);
        let path = dir.join("direct-floor.bin");
        pre_zeroed_file(&path, per_thread * workload.threads as u64)?;
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(direct_flags(true))
            .open(&path)?;
        Ok(Box::new(DirectSubject {
            file,
            per_thread,
            per_sync,
            record_len: workload.record_len,
        }))
    }
}

impl Subject for DirectSubject {
    fn appender(&self, thread: usize) -> Result<Box<dyn Appender + '_>> {
        let len = (self.record_len * self.per_sync).next_multiple_of(BLOCK) + 2 * BLOCK;
        Ok(Box::new(DirectAppender {
            file: &self.file,
            region: self.per_thread * thread as u64,
            stage: MmapMut::map_anon(len)?,
            stage_off: 0,
            fill: 0,
        }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl DirectAppender<'_> {
    /// Writes the staged blocks with one `O_DSYNC` write and keeps the partly filled tail
    /// block staged, to be written again with the next records.
    fn write_out(&mut self) -> Result<()> {
        let end = self.fill.next_multiple_of(BLOCK);
        // The staged bytes past `fill` are zeros (a fresh anonymous map, and cleared below),
        // as the file holds there.
        self.file
            .write_all_at(&self.stage[..end], self.region + self.stage_off)?;
        let keep = self.fill - self.fill % BLOCK;
        self.stage.copy_within(keep..self.fill, 0);
        let left = self.fill - keep;
        self.stage[left..end].fill(0);
        self.stage_off += keep as u64;
        self.fill = left;
        Ok(())
    }
}

impl Appender for DirectAppender<'_> {
    fn append(&mut self, record: &[u8], durable: bool) -> Result<()> {
        if self.fill + record.len() > self.stage.len() {
            self.write_out()?;
            if self.fill + record.len() > self.stage.len() {
                return Err("record larger than the floor's staging buffer".into());
            }
        }
        self.stage[self.fill..self.fill + record.len()].copy_from_slice(record);
        self.fill += record.len();
        if durable {
            self.write_out()?;
        }
        Ok(())
    }
}

/// The device's sequential `O_DIRECT` write bandwidth in MiB/s: `bytes` written in 1 MiB
/// `O_DIRECT` writes to a new file in `dir`, then `fdatasync`, timed together. The median of
/// `runs` runs.
///
/// # Errors
/// I/O errors (among them `EINVAL` where the file system refuses `O_DIRECT`).
pub fn measure_direct_bandwidth(dir: &Path, bytes: u64, runs: u32) -> Result<f64> {
    let chunk = MmapMut::map_anon(1 << 20)?;
    let mut rates = Vec::new();
    for run in 0..runs {
        let path = dir.join(format!("direct-bandwidth-{run}.bin"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(direct_flags(false))
            .open(&path)?;
        let start = Instant::now();
        let mut off = 0;
        while off < bytes {
            file.write_all_at(&chunk, off)?;
            off += chunk.len() as u64;
        }
        file.sync_data()?;
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        drop(file);
        std::fs::remove_file(&path)?;
        rates.push(off as f64 / secs / f64::from(1 << 20));
    }
    Ok(crate::harness::median(rates.into_iter()))
}

/// What [`measure_spill`] saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spill {
    /// Payload bytes appended.
    pub bytes: u64,
    /// Seconds the appends took (open and close not included).
    pub secs: f64,
    /// Bytes of the log's files resident in the page cache at the end, before close.
    pub resident: Option<u64>,
    /// Growth of `Dirty` in `/proc/meminfo` (system-wide): at the end, and the highest seen.
    pub dirty_end: i64,
    /// See [`Spill::dirty_end`].
    pub dirty_max: i64,
    /// Growth of the process's resident set (`VmRSS`): at the end, and the highest seen.
    pub rss_end: i64,
    /// See [`Spill::rss_end`].
    pub rss_max: i64,
}

/// A `kB` field of a `/proc` file, in bytes.
fn proc_kb(file: &str, field: &str) -> i64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|r| r.trim().trim_end_matches(" kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn dirty_bytes() -> i64 {
    proc_kb("/proc/meminfo", "Dirty:")
}

fn rss_bytes() -> i64 {
    proc_kb("/proc/self/status", "VmRSS:")
}

/// Bytes of the files in `dir` resident in the page cache, from `fincore` (util-linux);
/// `None` if it cannot be run.
fn resident_bytes(dir: &Path) -> Option<u64> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Some(0);
    }
    let out = std::process::Command::new("fincore")
        .args(["--bytes", "--noheadings", "--raw", "--output", "RES"])
        .args(&files)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse::<u64>().ok())
        .sum()
}

/// Appends `bytes` of `record_len`-byte records to a new log in `dir` on the I/O path `io`,
/// with `SyncPolicy::Interval(1 s)`, as fast as one thread can, and reports what stays in
/// memory: the log's resident page-cache pages at the end (before close), and the growth of
/// `Dirty` and of the process's resident set, sampled every 50 ms.
///
/// # Errors
/// Errors of the WAL.
pub fn measure_spill(dir: &Path, io: IoMode, bytes: u64, record_len: usize) -> Result<Spill> {
    let options = Options::default()
        .with_sync(SyncPolicy::Interval(Duration::from_secs(1)))
        .with_io(io);
    let spares = vault_rotate::default_spares(options.segment_size()) as u64;
    let wal = Wal::open(dir, options)?;
    settle(&wal, spares)?;
    let record: Vec<u8> = (0..record_len).map(|i| (i % 251) as u8 + 1).collect();
    let (dirty0, rss0) = (dirty_bytes(), rss_bytes());
    let stop = AtomicBool::new(false);
    let records = bytes / record_len as u64;
    let mut spill = Spill {
        bytes: records * record_len as u64,
        ..Spill::default()
    };
    std::thread::scope(|scope| -> Result<()> {
        let sampler = scope.spawn(|| {
            let (mut dirty, mut rss) = (0i64, 0i64);
            while !stop.load(Ordering::Relaxed) {
                dirty = dirty.max(dirty_bytes() - dirty0);
                rss = rss.max(rss_bytes() - rss0);
                std::thread::sleep(Duration::from_millis(50));
            }
            (dirty, rss)
        });
        let start = Instant::now();
        let appended = (0..records).try_for_each(|_| wal.append(&record).map(drop));
        spill.secs = start.elapsed().as_secs_f64();
        spill.dirty_end = dirty_bytes() - dirty0;
        spill.rss_end = rss_bytes() - rss0;
        spill.resident = resident_bytes(dir);
        stop.store(true, Ordering::Relaxed);
        let (dirty, rss) = sampler.join().map_err(|_| "the sampler panicked")?;
        spill.dirty_max = dirty.max(spill.dirty_end);
        spill.rss_max = rss.max(spill.rss_end);
        Ok(appended?)
    })?;
    wal.close()?;
    Ok(spill)
}
