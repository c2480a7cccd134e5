//! Does a second durable write in flight pay for group commit on the direct path?
//!
//! A stand-in for vault's group commit, without vault: `threads` appenders copy `record`-byte
//! records into one aligned buffer under a mutex and wait until their record is durable. A
//! waiter whose record is not yet covered becomes a leader if fewer than `inflight` writes are
//! in flight, and writes everything published since the last write with one
//! `O_DIRECT | O_DSYNC` `pwrite` into a pre-zeroed file. The durable end advances only over a
//! contiguous prefix of completed writes.
//!
//! With `pad` each write starts on a fresh 512-byte block (the appenders' next record moves
//! to the next block once a write is issued), so writes in flight never share a block; without
//! it consecutive writes share the block that holds the earlier one's end, which is only safe
//! with one write in flight.
//!
//! ```text
//! cargo run --release -p vault-bench --example inflight_probe -- <threads> <inflight> <pad 0|1> <record> <seconds>
//! ```
//! A leader copies the range it writes into its own aligned buffer under the mutex (a few KiB),
//! which keeps the probe free of `unsafe`.
//! Linux only (x86_64 flag values); the file is `inflight-probe` under
//! [`vault_bench::bench_root`].

#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const O_DIRECT: i32 = 0o40000;
const O_DSYNC: i32 = 0o10000;
const BLOCK: usize = 512;
const FILE_BYTES: usize = 256 << 20;

struct State {
    published: usize,
    issued: usize,
    durable: usize,
    in_flight: usize,
    done: Vec<(usize, usize)>,
    writes: u64,
    records: u64,
}

struct Log {
    buf: Mutex<Vec<u8>>,
    file: std::fs::File,
    state: Mutex<State>,
    cv: Condvar,
    inflight: usize,
    pad: bool,
}

/// A buffer of `len` bytes whose start is 4096-aligned, as `O_DIRECT` needs.
struct Aligned {
    bytes: Vec<u8>,
    skip: usize,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let bytes = vec![0u8; len + 4096];
        let skip = (4096 - bytes.as_ptr() as usize % 4096) % 4096;
        Self { bytes, skip }
    }

    fn slice(&mut self, len: usize) -> &mut [u8] {
        &mut self.bytes[self.skip..self.skip + len]
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("number"))
        .collect();
    let [threads, inflight, pad, record, seconds] = args[..] else {
        eprintln!("usage: inflight_probe <threads> <inflight> <pad 0|1> <record> <seconds>");
        std::process::exit(2);
    };
    let path = vault_bench::bench_root().join("inflight-probe");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(O_DIRECT | O_DSYNC)
        .open(&path)
        .unwrap();
    let mut zeros = Aligned::new(1 << 20);
    for off in (0..FILE_BYTES).step_by(1 << 20) {
        file.write_all_at(zeros.slice(1 << 20), off as u64).unwrap();
    }
    let log = Arc::new(Log {
        buf: Mutex::new(vec![0u8; FILE_BYTES]),
        file,
        state: Mutex::new(State {
            published: 0,
            issued: 0,
            durable: 0,
            in_flight: 0,
            done: Vec::new(),
            writes: 0,
            records: 0,
        }),
        cv: Condvar::new(),
        inflight,
        pad: pad != 0,
    });
    let deadline = Instant::now() + Duration::from_secs(seconds as u64);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let payload = vec![7u8; record];
                let mut out = Aligned::new(FILE_BYTES.min(64 << 20));
                while Instant::now() < deadline {
                    if !append_durably(&log, &payload, &mut out) {
                        break;
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let s = log.state.lock().unwrap();
    println!(
        "threads {threads} inflight {inflight} pad {pad} record {record}: {:.1} k rec/s, {:.2} records/write, {:.2} file bytes/record",
        s.records as f64 / elapsed / 1e3,
        s.records as f64 / s.writes as f64,
        s.durable as f64 / s.records as f64,
    );
    std::fs::remove_file(path).ok();
}

fn append_durably(log: &Log, payload: &[u8], out: &mut Aligned) -> bool {
    let mut s = log.state.lock().unwrap();
    let at = s.published;
    if at + payload.len() + BLOCK > FILE_BYTES {
        return false;
    }
    log.buf.lock().unwrap()[at..at + payload.len()].copy_from_slice(payload);
    s.published = at + payload.len();
    s.records += 1;
    let mine = s.published;
    loop {
        if s.durable >= mine {
            return true;
        }
        if s.issued < mine && s.in_flight < log.inflight {
            let from = s.issued;
            let to = s.published;
            let aligned_from = from / BLOCK * BLOCK;
            let aligned_to = to.div_ceil(BLOCK) * BLOCK;
            s.issued = to;
            if log.pad {
                s.published = aligned_to;
                s.issued = aligned_to;
            }
            s.in_flight += 1;
            s.writes += 1;
            let bytes = out.slice(aligned_to - aligned_from);
            bytes.copy_from_slice(&log.buf.lock().unwrap()[aligned_from..aligned_to]);
            drop(s);
            log.file.write_all_at(bytes, aligned_from as u64).unwrap();
            s = log.state.lock().unwrap();
            s.in_flight -= 1;
            s.done.push((from, to));
            loop {
                let d = s.durable;
                let Some(i) = s.done.iter().position(|&(f, _)| f <= d) else {
                    break;
                };
                let (_, t) = s.done.swap_remove(i);
                let next = if log.pad {
                    t.div_ceil(BLOCK) * BLOCK
                } else {
                    t
                };
                s.durable = s.durable.max(next);
            }
            log.cv.notify_all();
            continue;
        }
        s = log.cv.wait(s).unwrap();
    }
}
