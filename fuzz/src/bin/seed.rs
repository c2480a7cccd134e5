//! Writes the seed corpus from real logs: `cargo run --manifest-path fuzz/Cargo.toml --bin seed`
//! (any toolchain). Seeds go to `fuzz/seeds/<target>/`; pass that directory after the working
//! corpus when fuzzing: `cargo +nightly fuzz run segment_scan fuzz/corpus/segment_scan
//! fuzz/seeds/segment_scan`.

use std::path::{Path, PathBuf};

use vault_core::{Options, SyncPolicy, Wal};

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

fn payload(i: u64) -> Vec<u8> {
    (0..(i * 37 % 200) as usize)
        .map(|j| (i as usize * 13 + j) as u8)
        .collect()
}

/// A closed log (every record attested by the final marker), syncs every 7 records.
fn closed_log(dir: &Path) {
    let opts = Options::default()
        .with_segment_size(4096)
        .with_sync(SyncPolicy::Manual);
    let wal = Wal::open(dir, opts).expect("open");
    for i in 1..=90 {
        wal.append(&payload(i)).expect("append");
        if i % 7 == 0 {
            wal.sync().expect("sync");
        }
    }
    wal.close().expect("close");
}

/// A log with one record larger than a segment (an enlarged segment), synced per append.
fn large_record_log(dir: &Path) {
    let opts = Options::default()
        .with_segment_size(4096)
        .with_sync(SyncPolicy::Always);
    let wal = Wal::open(dir, opts).expect("open");
    for i in 1..=20 {
        wal.append(&payload(i)).expect("append");
    }
    wal.append(&vec![0xAB; 6000]).expect("append large");
    wal.append(b"after").expect("append");
    wal.close().expect("close");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let scan = root.join("segment_scan");
    let open = root.join("open_dir");
    std::fs::create_dir_all(&scan).expect("mkdir");
    std::fs::create_dir_all(&open).expect("mkdir");
    let mut n = 0;
    for (name, build) in [
        ("closed", closed_log as fn(&Path)),
        ("large", large_record_log),
    ] {
        let dir = std::env::temp_dir().join(format!("vault-seed-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        build(&dir);
        let files: Vec<Vec<u8>> = segment_files(&dir)
            .iter()
            .map(|p| std::fs::read(p).expect("read"))
            .collect();
        for (i, f) in files.iter().enumerate() {
            for flags in [0u8, 0x3f] {
                let mut seed = vec![flags];
                seed.extend_from_slice(f);
                std::fs::write(scan.join(format!("{name}-{i}-{flags:02x}")), seed).expect("write");
                n += 1;
            }
        }
        for start in 0..files.len().saturating_sub(1) {
            let end = (start + 3).min(files.len());
            let mut seed = vault_fuzz::join_dir(&files[start..end], 0);
            std::fs::write(open.join(format!("{name}-{start}")), &seed).expect("write");
            // The same directory, opened on the direct I/O path.
            seed[0] |= 32;
            std::fs::write(open.join(format!("{name}-{start}-direct")), seed).expect("write");
            n += 2;
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
    println!("wrote {n} seeds under {}", root.display());
}
