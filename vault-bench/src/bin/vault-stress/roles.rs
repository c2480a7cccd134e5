//! The threads of a run: appenders, readers, the truncator, the cutter, followers and the
//! `on_durable` registrar.

use super::*;

pub(super) fn appender(run: &Run, id: u32, pool: &Pool) -> AppenderLog {
    let mut log = AppenderLog {
        latency_us: Histogram::new(3).expect("3 significant figures is valid"),
        lsns: VecDeque::new(),
        next_seq: 0,
    };
    let sizes = run.args.record_size;
    let always = run.args.sync == SyncPolicy::Always;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    // `cuts_done` before the previous append: its LSNs may go back only if a cut began since
    // (one in progress then counts: it may discard what that append gets).
    let mut prev_epoch = 0;
    while !run.stop.load(Ordering::Relaxed) {
        let seq = log.next_seq;
        let epoch = run.cuts_done.load(Ordering::SeqCst);
        let choice = mix(seed(id, seq) ^ 0xA5A5) % 10;
        let start = Instant::now();
        let (first, n, bytes) = match choice {
            // append_batch of 2..=4 records.
            0 | 1 => {
                let n = 2 + (choice + seq) % 3;
                batch.resize_with(usize::try_from(n).expect("small"), Vec::new);
                let mut bytes = 0;
                for (i, rec) in batch.iter_mut().enumerate() {
                    let s = seq + i as u64;
                    fill_record(rec, id, s, record_len(id, s, sizes));
                    bytes += rec.len() as u64;
                }
                run.batches.fetch_add(1, Ordering::Relaxed);
                (run.wal.append_batch(&batch), n, bytes)
            }
            // must_write from a pooled buffer.
            2 | 3 => {
                let mut buf = pool.get();
                fill_record(&mut buf, id, seq, record_len(id, seq, sizes));
                let bytes = buf.len() as u64;
                run.must_writes.fetch_add(1, Ordering::Relaxed);
                let r = run.wal.must_write(buf).map_err(|e| e.error);
                (r, 1, bytes)
            }
            _ => {
                let mut rec = batch.pop().unwrap_or_default();
                fill_record(&mut rec, id, seq, record_len(id, seq, sizes));
                let bytes = rec.len() as u64;
                let r = run.wal.append(&rec);
                batch.push(rec);
                (r, 1, bytes)
            }
        };
        let took = start.elapsed();
        let _ = log
            .latency_us
            .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        let first = match first {
            Ok(lsn) => lsn,
            Err(e) => {
                run.violations
                    .report(|| format!("appender {id}: append of seq {seq} failed: {e}"));
                run.stop.store(true, Ordering::Relaxed);
                break;
            }
        };
        // A cut racing the append may discard its records (and lower `durable`).
        if always
            && run.wal.durable_lsn() < first + n - 1
            && run.cuts_begun.load(Ordering::SeqCst) == epoch
        {
            run.violations.report(|| {
                format!(
                    "appender {id}: LSN {} returned under SyncPolicy::Always before durable \
                     (durable {})",
                    first + n - 1,
                    run.wal.durable_lsn()
                )
            });
        }
        if let Some(&(prev, _)) = log.lsns.back() {
            if first <= prev && run.cuts_begun.load(Ordering::SeqCst) == prev_epoch {
                run.violations
                    .report(|| format!("appender {id}: got LSN {first} after LSN {prev}"));
            }
        }
        for i in 0..n {
            log.lsns.push_back((first + i, seq + i));
        }
        log.next_seq += n;
        prev_epoch = epoch;
        run.appended.fetch_add(n, Ordering::Relaxed);
        run.bytes.fetch_add(bytes, Ordering::Relaxed);
        let gone = run.truncated_below.load(Ordering::Relaxed);
        while log.lsns.front().is_some_and(|&(lsn, _)| lsn < gone) {
            log.lsns.pop_front();
        }
    }
    log
}

pub(super) fn reader(run: &Run, id: u32) {
    let mut next = run.wal.first_lsn();
    // Per appender, the last sequence number seen; cleared when truncation skipped records.
    let mut last_seq: HashMap<u32, u64> = HashMap::new();
    // `cuts_done` at the previous pass: if a cut began since, the records from here on may
    // follow discarded ones, so each appender's sequence restarts.
    let mut done_before = run.cuts_done.load(Ordering::SeqCst);
    loop {
        let stopping = run.stop.load(Ordering::Relaxed);
        if run.cuts_begun.load(Ordering::SeqCst) != done_before {
            last_seq.clear();
        }
        done_before = run.cuts_done.load(Ordering::SeqCst);
        let mut seen = 0u64;
        for rec in run.wal.iter_from(next) {
            let lsn = rec.lsn();
            if lsn != next {
                // Only truncation may skip LSNs: the log must now start at or after this one.
                let first = run.wal.first_lsn();
                if lsn < next || first < lsn {
                    run.violations.report(|| {
                        format!(
                            "reader {id}: expected LSN {next}, got {lsn} (log starts at {first})"
                        )
                    });
                }
                last_seq.clear();
            }
            match check_record(rec.data()) {
                Ok((appender, seq)) => {
                    if let Some(prev) = last_seq.insert(appender, seq) {
                        // Cuts leave gaps (discarded records) in an appender's sequence.
                        if seq != prev + 1 && !(run.cuts_on() && seq > prev) {
                            run.violations.report(|| {
                                format!(
                                    "reader {id}: LSN {lsn} holds appender {appender} seq \
                                     {seq}, after its seq {prev}"
                                )
                            });
                        }
                    }
                }
                Err(e) => run
                    .violations
                    .report(|| format!("reader {id}: LSN {lsn}: {e}")),
            }
            next = lsn + 1;
            seen += 1;
        }
        run.read_verified.fetch_add(seen, Ordering::Relaxed);
        if stopping {
            return;
        }
        if seen == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

pub(super) fn truncator(run: &Run) {
    let every = Duration::from_millis(run.args.truncate_every.max(1));
    let mut next = Instant::now() + every;
    while !run.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(20)));
            continue;
        }
        next = now + every;
        let upto = run.wal.last_lsn().saturating_sub(run.args.keep);
        match run.wal.truncate_front(upto) {
            Ok(removed) => {
                run.truncations.fetch_add(1, Ordering::Relaxed);
                run.segments_removed
                    .fetch_add(removed as u64, Ordering::Relaxed);
                let first = run.wal.first_lsn();
                if removed > 0 && first > upto {
                    run.violations.report(|| {
                        format!("truncate_front({upto}) removed LSNs up to {}", first - 1)
                    });
                }
                run.truncated_below.fetch_max(first, Ordering::Relaxed);
            }
            Err(e) => {
                run.violations
                    .report(|| format!("truncate_front({upto}) failed: {e}"));
                run.stop.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Cuts the log's end every `--cut-every` ms at a random LSN among the last `--cut-depth`
/// records (and, `--reset-percent` of the time, resets it past its end). Before each cut it
/// checks that the durable records it read earlier, below every cut since, are unchanged.
/// Returns the witnesses still standing, for the reopen to check.
pub(super) fn cutter(run: &Run) -> Vec<Witness> {
    let every = Duration::from_millis(run.args.cut_every.max(1));
    let mut witnesses: Vec<Witness> = Vec::new();
    let mut next = Instant::now() + every;
    let mut rng = 0x5EED_u64;
    while !run.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(20)));
            continue;
        }
        next = now + every;
        check_witnesses(run, &mut witnesses);
        rng = mix(rng);
        let last = run.wal.last_lsn();
        let reset = rng % 100 < run.args.reset_percent;
        let (at, model) = if reset {
            (last + 1 + (rng >> 8) % 100, 0)
        } else {
            // One cut in eight goes ten times deeper.
            let depth = run.args.cut_depth.max(1) * if rng.is_multiple_of(8) { 10 } else { 1 };
            let at = last
                .saturating_sub((rng >> 8) % depth)
                .max(run.truncated_below.load(Ordering::Relaxed))
                .max(1);
            (at, at)
        };
        let k = {
            let mut m = run.cut_model.lock().expect("not poisoned");
            m.push(model);
            m.len() as u64
        };
        // The records on either side of the cut, as they are before it (only this thread
        // changes a published record, so they are stable until the call).
        let read = |lsn: u64| run.wal.read(lsn).map(|r| r.data().to_vec());
        let (below, above) = if reset {
            (None, None)
        } else {
            (read(at - 1), read(at))
        };
        run.cuts_begun.store(k, Ordering::SeqCst);
        let r = if reset {
            run.wal.reset(at)
        } else {
            run.wal.truncate_back(at)
        };
        run.cuts_done.store(k, Ordering::SeqCst);
        if let Err(e) = r {
            run.violations.report(|| {
                format!(
                    "{}({at}) failed: {e}",
                    if reset { "reset" } else { "truncate_back" }
                )
            });
            run.stop.store(true, Ordering::Relaxed);
            break;
        }
        if reset {
            run.resets.fetch_add(1, Ordering::Relaxed);
            run.truncated_below.fetch_max(at, Ordering::Relaxed);
            let (first, last_now) = (run.wal.first_lsn(), run.wal.last_lsn());
            if first != at || last_now + 1 < at {
                run.violations.report(|| {
                    format!("reset({at}): log now starts at {first}, ends at {last_now}")
                });
            }
            witnesses.clear();
        } else {
            // The record before the cut stays (unless `truncate_front` removed it since); the
            // one at the cut is gone (a record appended there since is another record, with
            // another header).
            if let Some(old) = &below {
                let now = read(at - 1);
                if now.as_ref() != Some(old) && run.wal.first_lsn() < at {
                    run.violations.report(|| {
                        format!(
                            "truncate_back({at}): LSN {} changed or vanished ({})",
                            at - 1,
                            now.as_deref()
                                .map_or_else(|| "gone".into(), describe_record)
                        )
                    });
                }
            }
            if let (Some(old), Some(now)) = (&above, read(at)) {
                if *old == now {
                    run.violations.report(|| {
                        format!(
                            "truncate_back({at}): the record at {at} is still there ({})",
                            describe_record(&now)
                        )
                    });
                }
            }
            witnesses.retain(|w| w.lsn < at);
        }
        // New witnesses: the last durable record and one at random below it.
        let durable = run.wal.durable_lsn();
        let first = run.wal.first_lsn();
        if durable >= first {
            for lsn in [durable, first + (rng >> 16) % (durable - first + 1)] {
                if let Some(rec) = run.wal.read(lsn) {
                    witnesses.push(Witness {
                        lsn,
                        data: rec.data().to_vec(),
                    });
                }
            }
        }
        if witnesses.len() > 256 {
            witnesses.drain(..witnesses.len() - 256);
        }
    }
    check_witnesses(run, &mut witnesses);
    witnesses
}

/// A tail-following reader: `Wal::follow` + `next_timeout`. Every record must be the next
/// LSN and well formed; `Error::Truncated` only when a truncation removed its position or a
/// cut discarded a record it returned (it then follows again from there); `Error::Closed` at
/// the end, and nothing after it.
/// Follows until the run is quiesced (every other thread stopped) and it has caught up;
/// returns the follower for [`drain`].
pub(super) fn follower(run: &Run, id: u32) -> vault_core::Follower {
    let wait = Duration::from_millis(20);
    // `cuts_done` just before the follower was made: cuts numbered above may be reported.
    let mut made_after = run.cuts_done.load(Ordering::SeqCst);
    let mut f = run.wal.follow(run.wal.first_lsn());
    let mut start = f.position();
    let mut last_seq: HashMap<u32, u64> = HashMap::new();
    // `cuts_begun` after the previous call returned.
    let mut begun_after = run.cuts_begun.load(Ordering::SeqCst);
    let mut seen = 0u64;
    let mut since_pause = 0u64;
    loop {
        if run.cuts_on() && since_pause >= 2000 && run.wal.last_lsn() < f.position() + 64 {
            // Near the tail: stand still until a whole cut has happened between two calls, so
            // that the `required` check below has something to check.
            since_pause = 0;
            let deadline = Instant::now() + Duration::from_millis(300);
            while run.cuts_done.load(Ordering::SeqCst) <= begun_after
                && Instant::now() < deadline
                && !run.stop.load(Ordering::Relaxed)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let quiesced = run.quiesced.load(Ordering::SeqCst);
        let pos = f.position();
        let done_before = run.cuts_done.load(Ordering::SeqCst);
        // Cuts that began after the previous call and ended before this one: the position
        // stood still, so one that discarded a returned record must be reported now.
        let required = start < pos && {
            let m = run.cut_model.lock().expect("not poisoned");
            (begun_after + 1..=done_before).any(|k| m[usize::try_from(k - 1).expect("small")] < pos)
        };
        let r = f.next_timeout(wait);
        begun_after = run.cuts_begun.load(Ordering::SeqCst);
        match r {
            Ok(Some(rec)) => {
                if required {
                    run.violations.report(|| {
                        format!(
                            "follower {id}: returned LSN {} after a cut discarded records it \
                             had returned ({start}..{pos})",
                            rec.lsn()
                        )
                    });
                }
                let lsn = rec.lsn();
                if lsn != pos {
                    run.violations
                        .report(|| format!("follower {id}: expected LSN {pos}, got {lsn}"));
                }
                match check_record(rec.data()) {
                    Ok((appender, seq)) => {
                        if let Some(prev) = last_seq.insert(appender, seq) {
                            let ok = seq == prev + 1 || (run.cuts_on() && seq > prev);
                            if !ok {
                                run.violations.report(|| {
                                    format!(
                                        "follower {id}: LSN {lsn} holds appender {appender} \
                                         seq {seq}, after its seq {prev}"
                                    )
                                });
                            }
                        }
                    }
                    Err(e) => run
                        .violations
                        .report(|| format!("follower {id}: LSN {lsn}: {e}")),
                }
                seen += 1;
                since_pause += 1;
            }
            Ok(None) if quiesced && !required => break,
            Ok(None) => {
                if required {
                    run.violations.report(|| {
                        format!(
                            "follower {id}: no Truncated at {pos} after a cut discarded \
                             records it had returned ({start}..{pos})"
                        )
                    });
                }
            }
            Err(Error::Truncated {
                lsn,
                first_lsn,
                next_lsn,
            }) => {
                run.follow_truncated.fetch_add(1, Ordering::Relaxed);
                if required {
                    run.follow_truncated_required
                        .fetch_add(1, Ordering::Relaxed);
                }
                let justified = first_lsn > pos || {
                    let m = run.cut_model.lock().expect("not poisoned");
                    start < pos
                        && m[usize::try_from(made_after).expect("small")..]
                            .iter()
                            .any(|&c| c < pos)
                };
                if lsn != pos || !justified {
                    run.violations.report(|| {
                        format!(
                            "follower {id}: Truncated at {lsn} (position {pos}, returned \
                             {start}..{pos}, log {first_lsn}..{next_lsn}) with no truncation \
                             or cut to explain it"
                        )
                    });
                }
                made_after = run.cuts_done.load(Ordering::SeqCst);
                let from = pos.min(run.wal.last_lsn() + 1).max(run.wal.first_lsn());
                f = run.wal.follow(from);
                start = f.position();
                begun_after = run.cuts_begun.load(Ordering::SeqCst);
                last_seq.clear();
            }
            Err(e) => {
                run.violations
                    .report(|| format!("follower {id}: unexpected error before close: {e}"));
                break;
            }
        }
    }
    run.followed.fetch_add(seen, Ordering::Relaxed);
    f
}

/// After the run let go of the WAL: read what is left, in order, until `Error::Closed`
/// (which must come once `close` ran, and again on every later call). Returns violations.
pub(super) fn drain(mut f: vault_core::Follower, id: u32) -> Vec<String> {
    let mut bad = Vec::new();
    loop {
        let pos = f.position();
        match f.next_timeout(Duration::from_secs(30)) {
            Ok(Some(rec)) => {
                if rec.lsn() != pos {
                    bad.push(format!(
                        "follower {id}: expected LSN {pos}, got {}",
                        rec.lsn()
                    ));
                }
                if let Err(e) = check_record(rec.data()) {
                    bad.push(format!("follower {id}: LSN {}: {e}", rec.lsn()));
                }
            }
            Ok(None) => {
                bad.push(format!("follower {id}: no Closed 30 s after the run ended"));
                return bad;
            }
            Err(Error::Closed) => {
                if !matches!(f.try_next(), Err(Error::Closed)) {
                    bad.push(format!("follower {id}: a call after Closed did not fail"));
                }
                return bad;
            }
            Err(e) => {
                bad.push(format!("follower {id}: {e} after the run ended"));
                return bad;
            }
        }
    }
}

/// Registers `on_durable` callbacks for appended LSNs (and now and then one not appended yet)
/// until the run stops; returns each callback's call count, checked after `close`.
pub(super) fn registrar(run: &Run, cbs: &Arc<Callbacks>) -> Vec<(u64, Arc<AtomicU8>)> {
    let mut calls = Vec::new();
    let mut i = 0u64;
    while !run.stop.load(Ordering::Relaxed) {
        i += 1;
        let lsn = run.wal.last_lsn() + u64::from(i.is_multiple_of(16));
        let count = Arc::new(AtomicU8::new(0));
        let (c, cb) = (Arc::clone(&count), Arc::clone(cbs));
        run.wal.on_durable(lsn, move |r| {
            if c.fetch_add(1, Ordering::SeqCst) != 0 {
                cb.violations
                    .report(|| format!("on_durable({lsn}): called more than once"));
            }
            match r {
                Ok(d) if d >= lsn => {
                    cb.ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok(d) => cb
                    .violations
                    .report(|| format!("on_durable({lsn}): called with Ok({d}), below it")),
                Err(Error::Closed) => {
                    cb.err.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => cb
                    .violations
                    .report(|| format!("on_durable({lsn}): unexpected error {e}")),
            }
        });
        cbs.registered.fetch_add(1, Ordering::Relaxed);
        calls.push((lsn, count));
        std::thread::sleep(Duration::from_micros(500));
    }
    calls
}
