//! The `vault` binary driven as a user drives it: real processes, real directories, and the
//! exit codes and messages of the CLI contract (0 ok, 1 corruption, 2 usage or I/O errors).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn vault() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vault"))
}

fn run(args: &[&str]) -> Output {
    retry_spawn(|| vault().args(args).output()).expect("run vault")
}

/// Runs `spawn`, again (up to three times in all) where wine's `CreateProcess` fails with
/// `ERROR_INTERNAL_ERROR` (1359), which wine 8 does now and then under `cargo xtask cross`.
/// Everywhere else the first result is the result.
fn retry_spawn<T>(mut spawn: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let mut tries = 1;
    loop {
        match spawn() {
            Err(e) if cfg!(windows) && e.raw_os_error() == Some(1359) && tries < 3 => {
                eprintln!("spawn failed with wine's ERROR_INTERNAL_ERROR, trying again: {e}");
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Runs `vault write DIR extra…` with `input` on stdin.
fn write(dir: &Path, input: &[u8], extra: &[&str]) -> Output {
    let mut child = retry_spawn(|| {
        vault()
            .arg("write")
            .arg(dir)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    })
    .expect("spawn vault write");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Feed from another thread so a large input cannot deadlock against a full stdout pipe.
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait for vault write");
    // A writer that refuses to start (locked, corrupt) exits without reading its input.
    if let Err(e) = feeder.join().expect("feeder") {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    out
}

fn cat(dir: &Path, extra: &[&str]) -> Output {
    vault()
        .arg("cat")
        .arg(dir)
        .args(extra)
        .output()
        .expect("run vault cat")
}

fn lines(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(r);
        out.push(b'\n');
    }
    out
}

fn rec(i: usize) -> Vec<u8> {
    format!("REC-{i:09}-{}", "x".repeat(i * 7 % 48)).into_bytes()
}

/// Segment files (not `-pre`) in index order.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("gs-vault-") && n.ends_with(".log") && !n.ends_with("-pre.log")
        })
        .collect();
    segs.sort();
    segs
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every file's name and bytes, to show a command changed nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (file_name(&p), fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_no_panic(out: &Output) {
    let err = text(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

/// A log of many 1 MiB segments: 20 000 lines, then a line of 3 MiB, then 5 000 more lines
/// written by a second `vault write`.
fn multi_segment_log(dir: &Path) -> Vec<Vec<u8>> {
    let seg = ["--segment-size", "1048576"];
    let mut first: Vec<Vec<u8>> = (1..=20_000).map(rec).collect();
    first.push(vec![b'B'; 3 << 20]);
    let out = write(dir, &lines(&first), &seg);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second: Vec<Vec<u8>> = (20_002..=25_000).map(rec).collect();
    let out = write(dir, &lines(&second), &seg);
    assert!(out.status.success(), "{}", text(&out.stderr));
    first.extend(second);
    first
}

#[test]
fn write_then_cat_round_trips_across_segments_and_a_record_larger_than_a_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let records = multi_segment_log(&dir);
    assert!(segments(&dir).len() >= 3, "{:?}", segments(&dir));
    let out = cat(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout == lines(&records), "cat printed something else");
}

#[test]
fn write_keeps_bytes_that_are_not_utf8_and_a_last_line_without_newline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let input = b"\xff\xfe binary\r\n\nmiddle\x00zero\nno newline at the end";
    let out = write(&dir, input, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cat(&dir, &["--lsn"]);
    assert!(out.status.success());
    assert_eq!(
        out.stdout,
        b"1\t\xff\xfe binary\r\n2\t\n3\tmiddle\x00zero\n4\tno newline at the end\n"
    );
}

#[test]
fn cat_with_lsn_and_from_starts_at_that_lsn_and_numbers_across_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let records = multi_segment_log(&dir);
    let out = cat(&dir, &["--lsn", "--from", "19999"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
    for (k, line) in printed.iter().take(4).enumerate() {
        let lsn = 19_999 + k;
        let mut want = format!("{lsn}\t").into_bytes();
        want.extend_from_slice(&records[lsn - 1]);
        assert!(*line == &want[..], "line {k} is not LSN {lsn}");
    }
    // 25 000 records from LSN 19 999, then the empty piece after the last newline.
    assert_eq!(printed.len(), 25_000 - 19_999 + 1 + 1);
}

#[test]
fn write_ack_with_sync_always_acknowledges_every_record_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let records: Vec<Vec<u8>> = (1..=100).map(rec).collect();
    let out = write(&dir, &lines(&records), &["--sync", "always", "--ack"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want: String = (1..=100).fold(String::new(), |s, i| s + &format!("ack {i}\n"));
    assert_eq!(text(&out.stdout), want);
    // A second run acknowledges only its own records, continuing the LSNs.
    let out = write(&dir, b"one\ntwo\n", &["--sync", "always", "--ack"]);
    assert_eq!(text(&out.stdout), "ack 101\nack 102\n");
}

#[test]
fn write_ack_with_manual_sync_acknowledges_each_line_before_more_input_arrives() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut child = vault()
        .arg("write")
        .arg(&dir)
        .arg("--ack")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut acks = BufReader::new(child.stdout.take().unwrap());
    for i in 1..=3 {
        // The input stays open: the ack must come without end of input.
        writeln!(stdin, "interactive {i}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        acks.read_line(&mut line).unwrap();
        assert_eq!(line, format!("ack {i}\n"));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(
        cat(&dir, &[]).stdout,
        b"interactive 1\ninteractive 2\ninteractive 3\n"
    );
}

#[test]
fn verify_passes_a_clean_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    multi_segment_log(&dir);
    let before = snapshot(&dir);
    let out = run(&["verify", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("25000 records"),
        "{}",
        text(&out.stdout)
    );
    assert!(snapshot(&dir) == before, "verify changed the directory");
}

#[test]
fn verify_reports_a_flipped_byte_inside_the_records_with_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let records: Vec<Vec<u8>> = (1..=30_000).map(rec).collect();
    let out = write(&dir, &lines(&records), &["--segment-size", "262144"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let segs = segments(&dir);
    assert!(segs.len() >= 2, "{segs:?}");
    // The middle of the first segment's records: whole records follow it, and a commit
    // marker written later attests them, so this is corruption, not a torn tail.
    let first = &segs[0];
    let mut bytes = fs::read(first).unwrap();
    bytes[128 * 1024] ^= 0x5a;
    fs::write(first, &bytes).unwrap();
    let before = snapshot(&dir);

    let out = run(&["verify", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains(&file_name(first)), "{err}");
    let offset: u64 = err
        .split("at byte ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in: {err}"));
    assert!(
        (128..=128 * 1024).contains(&offset) && 128 * 1024 - offset < 4096,
        "offset {offset} is not the frame holding byte 131072"
    );
    assert_no_panic(&out);

    // cat prints the records before the damage, then fails the same way.
    let out = cat(&dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stdout.is_empty() && records_prefix(&out.stdout, &records));
    assert!(text(&out.stderr).contains(&file_name(first)));
    // info shows the log and says recovery would refuse.
    let out = run(&["info", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("refuse"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        snapshot(&dir) == before,
        "read-only commands changed the directory"
    );
    // A writer refuses to open it, and says why.
    let out = write(&dir, b"more\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&file_name(first)));
    assert!(
        snapshot(&dir) == before,
        "a refused writer changed the directory"
    );
}

/// Whether `printed` is `records[..k]`, one per line, for some k.
fn records_prefix(printed: &[u8], records: &[Vec<u8>]) -> bool {
    let got: Vec<&[u8]> = printed.split(|&b| b == b'\n').collect();
    let (last, whole) = got.split_last().unwrap();
    last.is_empty() && whole.iter().zip(records).all(|(a, b)| *a == &b[..])
}

#[test]
fn a_torn_tail_is_reported_but_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let records: Vec<Vec<u8>> = (1..=100).map(rec).collect();
    let out = write(&dir, &lines(&records), &["--segment-size", "65536"]);
    assert!(out.status.success());
    // Bytes past the last record that no commit marker attests: what a crash mid-write
    // leaves behind.
    let seg = segments(&dir).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    bytes[40_000..40_010].fill(0xab);
    fs::write(&seg, &bytes).unwrap();
    let before = snapshot(&dir);

    let out = run(&["verify", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("torn tail") && said.contains(&file_name(&seg)),
        "{said}"
    );
    let out = cat(&dir, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, lines(&records));
    let out = run(&["info", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("cut the torn tail"));
    assert!(
        snapshot(&dir) == before,
        "read-only commands changed the directory"
    );

    // The next writer cuts it and continues after the last whole record.
    let out = write(&dir, b"after\n", &["--ack", "--sync", "always"]);
    assert_eq!(text(&out.stdout), "ack 101\n");
    assert!(text(&out.stderr).contains("torn tail"));
}

#[test]
fn verify_of_a_missing_directory_exits_2_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    for cmd in ["verify", "cat", "info"] {
        let out = run(&[cmd, missing.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(text(&out.stderr).contains("no such directory"), "{cmd}");
        assert_no_panic(&out);
    }
    assert!(
        !missing.exists(),
        "a read-only command created the directory"
    );
}

#[test]
fn bad_input_gets_a_message_and_exit_2_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    assert!(write(&dir, b"x\n", &[]).status.success());
    let seg = segments(&dir).pop().unwrap();
    // A segment file given where the directory belongs.
    let out = run(&["verify", seg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a log directory"));
    // A directory that is not a log.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let out = run(&["info", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no vault segments"));
    // Usage errors.
    for args in [
        &["write", dir.to_str().unwrap(), "--sync", "sometimes"][..],
        &["write", dir.to_str().unwrap(), "--segment-size", "lots"],
        &["cat"],
        &["frobnicate"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_no_panic(&out);
    }
    // A segment size the library refuses.
    let out = write(&dir, b"", &["--segment-size", "100"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("segment_size"));
    // A file named like a segment that is not one.
    let fake = tmp.path().join("fake");
    fs::create_dir(&fake).unwrap();
    fs::write(
        fake.join("gs-vault-20250101T000000Z-00000000000000000001.log"),
        b"not a segment",
    )
    .unwrap();
    let out = run(&["verify", fake.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("gs-vault-20250101T000000Z-00000000000000000001.log"));
    assert_no_panic(&out);
}

#[test]
fn info_on_a_clean_log_lists_its_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    multi_segment_log(&dir);
    let out = run(&["info", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for seg in segments(&dir) {
        assert!(said.contains(&file_name(&seg)), "{said}");
    }
    assert!(
        said.contains("25000 records") && said.contains("next LSN 25001"),
        "{said}"
    );
    assert!(said.contains("recovery would: nothing"), "{said}");
}

#[test]
fn demo_with_a_small_workload_checks_everything_and_keeps_its_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = run(&[
        "demo",
        "--dir",
        dir.to_str().unwrap(),
        "--records",
        "3000",
        "--threads",
        "3",
        "--record-size",
        "100",
        "--segment-size",
        "65536",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for part in [
        "p50",
        "p99.9",
        "records/s",
        "Wal::open",
        "rotation",
        "result: OK",
    ] {
        assert!(said.contains(part), "no {part} in {said}");
    }
    assert!(
        segments(&dir).len() >= 4,
        "the demo should rotate 64 KiB segments"
    );
    let out = cat(&dir, &[]);
    assert_eq!(out.stdout.len(), 3000 * 101);
    assert_eq!(
        run(&["verify", dir.to_str().unwrap()]).status.code(),
        Some(0)
    );
}

#[test]
fn demo_without_dir_leaves_no_trace_in_the_working_or_temporary_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let tmpdir = tempfile::tempdir().unwrap();
    let out = vault()
        .args(["demo", "--records", "500", "--sync", "interval:2"])
        .current_dir(cwd.path())
        .env("TMPDIR", tmpdir.path())
        // Where Windows' `temp_dir` looks.
        .env("TMP", tmpdir.path())
        .env("TEMP", tmpdir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&tmpdir.path().display().to_string()));
    assert_eq!(fs::read_dir(cwd.path()).unwrap().count(), 0);
    assert_eq!(fs::read_dir(tmpdir.path()).unwrap().count(), 0);
}

#[test]
fn a_second_writer_on_a_locked_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut holder = vault()
        .arg("write")
        .arg(&dir)
        .arg("--ack")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    let mut acks = BufReader::new(holder.stdout.take().unwrap());
    writeln!(stdin, "held").unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    acks.read_line(&mut line).unwrap();
    assert_eq!(
        line, "ack 1\n",
        "the first writer holds the log once it acknowledges"
    );

    let out = write(&dir, b"intruder\n", &[]);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("lock"), "{err}");
    assert_no_panic(&out);

    drop(stdin);
    assert!(holder.wait().unwrap().success());
    assert_eq!(cat(&dir, &[]).stdout, b"held\n");
}

#[test]
fn cat_into_a_closed_pipe_exits_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let records: Vec<Vec<u8>> = (1..=200_000).map(rec).collect();
    assert!(write(&dir, &lines(&records), &[]).status.success());
    let mut child = vault()
        .arg("cat")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout); // like `| head`
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}
