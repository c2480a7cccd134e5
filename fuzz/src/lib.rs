//! Helpers shared by the fuzz targets: turning fuzz input into segment files that get past the
//! checksums often enough to reach the interesting code, and a scratch directory on tmpfs.
//!
//! Random bytes almost never carry a valid CRC32C, so a fuzzer mutating real segments would
//! spend its time on the first checksum. Each input therefore starts with a flags byte that asks
//! the harness to *repair* some checksums after the mutation: the header's, the activation
//! block's, and those of the frames along the chain the scanner will walk. A mutated length,
//! kind or marker field then reaches the checks behind the CRC.

use std::path::{Path, PathBuf};

use vault_segment::format::{encode_activation, seal_crc, MAGIC};
use vault_segment::{frame_len, DATA_OFFSET};

/// Recompute the header CRC (bytes 60..64).
pub const FIX_HEADER: u8 = 1;
/// Recompute the activation CRC (bytes 72..76), keeping the first LSN the input holds.
pub const FIX_ACTIVATION: u8 = 2;
/// Recompute the CRC of every frame along the chain from byte 128.
pub const FIX_FRAMES: u8 = 4;
/// Write the magic and format version 1 before fixing the header CRC.
pub const FIX_MAGIC: u8 = 8;
/// Make each commit marker's "next LSN" the one its position implies.
pub const FIX_MARKERS: u8 = 16;
/// Set the header's capacity to the file's length (a shorter file is refused as truncated).
pub const FIX_CAPACITY: u8 = 32;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Repairs the checksums `flags` asks for in the segment image `b` (see the `FIX_*` flags).
/// With `index` set, the header's index is set to it first (so that it matches the file name).
pub fn repair_segment(b: &mut [u8], flags: u8, index: Option<u64>) {
    if b.len() < 64 {
        return;
    }
    if flags & FIX_MAGIC != 0 {
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
    }
    if let Some(i) = index {
        b[16..24].copy_from_slice(&i.to_le_bytes());
    }
    if flags & FIX_CAPACITY != 0 {
        let len = b.len() as u64;
        b[32..40].copy_from_slice(&len.to_le_bytes());
    }
    if flags & (FIX_HEADER | FIX_CAPACITY) != 0 || index.is_some() {
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
    }
    if b.len() < DATA_OFFSET {
        return;
    }
    let salt = u64_at(b, 24);
    if flags & FIX_ACTIVATION != 0 {
        let first = u64_at(b, 64).max(1);
        b[64..76].copy_from_slice(&encode_activation(first, salt));
    }
    if flags & FIX_FRAMES == 0 {
        return;
    }
    let capacity = usize::try_from(u64_at(b, 32)).unwrap_or(usize::MAX);
    let limit = capacity.min(b.len());
    let mut lsn = u64_at(b, 64);
    let mut off = DATA_OFFSET;
    while off + 16 <= limit {
        if b[off..off + 16].iter().all(|&x| x == 0) {
            break;
        }
        let len = u32_at(b, off) as usize;
        if len > limit - off - 16 {
            break;
        }
        let kind = b[off + 4];
        if kind == 2 && len == 16 && flags & FIX_MARKERS != 0 {
            b[off + 24..off + 32].copy_from_slice(&lsn.to_le_bytes());
        }
        let partial = crc32c::crc32c_append(
            crc32c::crc32c(&b[off..off + 8]),
            &b[off + 16..off + 16 + len],
        );
        let crc = match kind {
            1 => {
                lsn += 1;
                seal_crc(partial, salt, lsn - 1)
            }
            2 if len == 16 => seal_crc(partial, salt, u64_at(b, off + 24)),
            _ => break,
        };
        b[off + 8..off + 12].copy_from_slice(&crc.to_le_bytes());
        off += frame_len(len).min(limit - off);
    }
}

/// A fresh, empty directory for one execution, on tmpfs when `/dev/shm` exists (the targets
/// write files on every run; a disk would make them slow, not more thorough).
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("vault-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// As [`scratch_dir`], but on the temporary directory's file system (a disk, not tmpfs), so
/// that the direct I/O path can run there.
pub fn disk_scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vault-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Whether an `open_dir` input asks for the direct I/O path (bit 5 of its layout byte).
pub fn wants_direct(data: &[u8]) -> bool {
    data.first().is_some_and(|b| b & 32 != 0)
}

/// One file of an `open_dir` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirFile {
    /// Segment index in the file name.
    pub index: u64,
    /// Whether the name carries `-pre`.
    pub pre: bool,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// Splits an `open_dir` input into segment files.
///
/// Layout: byte 0 = `(files - 1) | last_is_pre << 2 | first_index_is_2 << 3 | set_index << 4
/// | direct_io << 5`,
/// byte 1 = repair flags (as [`repair_segment`]), then `files - 1` little-endian `u16` lengths,
/// then the files' bytes back to back (the last file takes the rest).
pub fn split_dir(data: &[u8]) -> Option<Vec<DirFile>> {
    let (&layout, rest) = data.split_first()?;
    let (&flags, mut rest) = rest.split_first()?;
    let files = usize::from(layout & 3) + 1;
    let first = if layout & 8 != 0 { 2 } else { 1 };
    let mut lens = Vec::with_capacity(files);
    for _ in 1..files {
        if rest.len() < 2 {
            return None;
        }
        lens.push(usize::from(u16::from_le_bytes([rest[0], rest[1]])));
        rest = &rest[2..];
    }
    let mut out = Vec::with_capacity(files);
    for i in 0..files {
        let n = lens.get(i).copied().unwrap_or(rest.len()).min(rest.len());
        let (mine, tail) = rest.split_at(n);
        rest = tail;
        let index = first + i as u64;
        let mut bytes = mine.to_vec();
        let set_index = (layout & 16 != 0).then_some(index);
        repair_segment(&mut bytes, flags, set_index);
        out.push(DirFile {
            index,
            pre: i + 1 == files && layout & 4 != 0,
            bytes,
        });
    }
    Some(out)
}

/// The inverse of [`split_dir`] (used to seed the corpus from real logs).
pub fn join_dir(files: &[Vec<u8>], flags: u8) -> Vec<u8> {
    assert!((1..=4).contains(&files.len()));
    let mut out = vec![(files.len() - 1) as u8 | 16, flags];
    for f in &files[..files.len() - 1] {
        out.extend_from_slice(
            &u16::try_from(f.len())
                .expect("seed files fit u16")
                .to_le_bytes(),
        );
    }
    for f in files {
        out.extend_from_slice(f);
    }
    out
}
