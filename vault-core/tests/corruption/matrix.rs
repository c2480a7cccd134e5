//! Every case on both I/O paths.

use super::*;

common::both_io_paths!(every_damaged_log_is_cut_cleanly_or_refused_with_file_and_offset);
fn every_damaged_log_is_cut_cleanly_or_refused_with_file_and_offset(io: IoMode) {
    let base_dir = tempfile::tempdir_in(scratch_base(io)).unwrap();
    let base = base_dir.path();
    let closed = closed_template(base, io);
    let killed = killed_template(base);
    let mut cases = build_cases(&killed, &closed);
    cases.extend(build_cases(&closed, &killed));
    // Logs that went through `truncate_back`: damage before the cut (in the copied frames of
    // the replaced segment, or in the segments before it) and at the replaced tail follow the
    // same rule as in any log.
    let cut_closed = cut_closed_template(base, io);
    let cut_killed = killed_template_of(base, "cut-killed", true);
    // Its replaced segment is the tail: copied frames before the cut, unsynced ones after.
    assert_eq!(
        cut_killed.frame_of(CUT_TAIL).0.index,
        cut_killed.tail().index
    );
    assert_eq!(
        cut_killed.frame_of(CUT_TAIL - 1).0.index,
        cut_killed.tail().index
    );
    cases.extend(build_cases(&cut_closed, &killed));
    cases.extend(build_cases(&cut_killed, &closed));

    // Cases are independent directories, and most of a case's time is spent waiting for the
    // disk (the direct path's file system is a real one, with real fsyncs): a few workers run
    // them side by side, each taking the next case.
    const WORKERS: usize = 4;
    // A watchdog for hangs: no case may take minutes. Each worker's slot holds the case it
    // runs and when that started (seconds since `epoch`, 0 when idle).
    let slots: Arc<Vec<Mutex<(String, u64)>>> = Arc::new(
        (0..WORKERS)
            .map(|_| Mutex::new((String::new(), 0)))
            .collect(),
    );
    let epoch = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (slots, done) = (Arc::clone(&slots), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(5));
                for slot in slots.iter() {
                    let (name, since) = &*slot.lock().unwrap();
                    if *since != 0 && epoch.elapsed().as_secs().saturating_sub(*since) > 300 {
                        eprintln!("corruption case hangs: {name}");
                        std::process::abort();
                    }
                }
            }
        });
    }
    let next = AtomicU64::new(0);
    let outcomes: Vec<Mutex<Option<Result<(), String>>>> =
        cases.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for slot in slots.iter() {
            let (next, outcomes, cases) = (&next, &outcomes, &cases);
            scope.spawn(move || loop {
                let n = next.fetch_add(1, Ordering::SeqCst) as usize;
                let Some(case) = cases.get(n) else { break };
                *slot.lock().unwrap() = (case.name.clone(), epoch.elapsed().as_secs().max(1));
                let outcome = catch_unwind(AssertUnwindSafe(|| run_case(base, case, io)))
                    .unwrap_or_else(|p| {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| {
                                p.downcast_ref::<&str>()
                                    .map(std::string::ToString::to_string)
                            })
                            .unwrap_or_default();
                        Err(format!("PANIC: {msg}"))
                    });
                *slot.lock().unwrap() = (String::new(), 0);
                *outcomes[n].lock().unwrap() = Some(outcome);
            });
        }
    });
    done.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    let mut by_class: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (case, outcome) in cases.iter().zip(outcomes) {
        let outcome = outcome.into_inner().unwrap().expect("every case ran");
        let e = by_class.entry(case.class).or_default();
        match &case.expected {
            Expected::Recovered { .. } => e.0 += 1,
            _ => e.1 += 1,
        }
        if let Err(why) = outcome {
            e.2 += 1;
            // A few per class, so that one broken class does not hide the others.
            if e.2 <= 6 {
                failures.push(format!("{}: {why}", case.name));
            }
        }
    }
    println!("corruption matrix on {io:?}: {} cases", cases.len());
    for (class, (recovered, refused, failed)) in &by_class {
        println!(
            "  {class:<14} {:>5} cases: {recovered:>5} recovered, {refused:>5} refused, \
             {failed} failed",
            recovered + refused
        );
    }
    assert!(
        cases.len() >= 1000,
        "the matrix must hold at least 1000 cases"
    );
    let failed: usize = by_class.values().map(|c| c.2).sum();
    assert!(
        failed == 0,
        "{failed} of {} cases failed (at most 6 shown per class):\n{}",
        cases.len(),
        failures.join("\n")
    );
}
