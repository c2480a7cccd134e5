//! The metadata file: the vote, the committed log id and the last purged log id, replaced
//! crash-safely as a whole.
//!
//! Format (integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `VRMD` |
//! | 4..8 | format version, `u32` (1) |
//! | 8..12 | body length `n`, `u32` |
//! | 12..16 | CRC32C of the body, `u32` |
//! | 16..16+n | body: [`Metadata`] as MessagePack (rmp-serde, positional) |

use std::io;
use std::path::{Path, PathBuf};

use openraft::{LogId, NodeId, Vote};
use serde::{Deserialize, Serialize};
use vault_core::Storage;

use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"VRMD";
const VERSION: u32 = 1;
const HEADER: usize = 16;

/// The name of the metadata file in the store's directory.
pub const META_FILE: &str = "raft-meta";
const META_TMP: &str = "raft-meta.tmp";

/// What the metadata file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct Metadata<NID: NodeId> {
    /// The last vote saved by `save_vote`.
    pub vote: Option<Vote<NID>>,
    /// The committed log id as of the last metadata write (a lower bound: see the crate docs).
    pub committed: Option<LogId<NID>>,
    /// The last purged log id.
    pub last_purged: Option<LogId<NID>>,
}

impl<NID: NodeId> Default for Metadata<NID> {
    fn default() -> Self {
        Self {
            vote: None,
            committed: None,
            last_purged: None,
        }
    }
}

impl<NID: NodeId> Metadata<NID> {
    /// Reads the metadata file of `dir`; a missing file is the empty metadata (nothing was
    /// ever saved: the first write is a rename, so a crash cannot leave a half file).
    pub(crate) fn load(storage: &dyn Storage, dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILE);
        let bytes = match storage.read_file(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io("read metadata file", path, e)),
        };
        let corrupt = |reason: String| Error::CorruptMetadata {
            path: path.clone(),
            reason,
        };
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return Err(corrupt("no VRMD header".into()));
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let (version, len, crc) = (word(4), word(8) as usize, word(12));
        if version != VERSION {
            return Err(corrupt(format!(
                "format version {version}; this build reads {VERSION}"
            )));
        }
        let body = bytes
            .get(HEADER..)
            .filter(|b| b.len() == len)
            .ok_or_else(|| {
                corrupt(format!(
                    "body is {} bytes, header says {len}",
                    bytes.len() - HEADER
                ))
            })?;
        if crc32c::crc32c(body) != crc {
            return Err(corrupt("body checksum mismatch".into()));
        }
        rmp_serde::from_slice(body).map_err(|e| corrupt(format!("body does not decode: {e}")))
    }

    /// Replaces the metadata file of `dir` with `self`, through `storage` (the WAL's, so a
    /// simulated power loss covers this file too).
    ///
    /// Crash semantics: writes `raft-meta.tmp`, fsyncs it, renames it over `raft-meta` and
    /// fsyncs the directory. A crash before the rename leaves the old file (the temporary one is
    /// ignored and replaced by the next write); after the rename is durable, the new one.
    /// Never a mix: `rename` replaces the name atomically.
    pub(crate) fn store(&self, storage: &dyn Storage, dir: &Path) -> Result<()> {
        let body = rmp_serde::to_vec(self).map_err(|source| Error::Encode {
            what: "metadata",
            source,
        })?;
        let len = u32::try_from(body.len()).map_err(|_| Error::CorruptMetadata {
            path: dir.join(META_FILE),
            reason: "metadata larger than 4 GiB".into(),
        })?;
        let mut bytes = Vec::with_capacity(HEADER + body.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        bytes.extend_from_slice(&body);

        let tmp = dir.join(META_TMP);
        let path = dir.join(META_FILE);
        storage
            .write_file(&tmp, &bytes)
            .map_err(|e| Error::io("write", &tmp, e))?;
        storage
            .sync_file(&tmp)
            .map_err(|e| Error::io("fsync", &tmp, e))?;
        storage
            .rename(&tmp, &path)
            .map_err(|e| Error::io("rename metadata file to", &path, e))?;
        sync_dir(storage, dir)
    }
}

/// fsyncs a directory, so that a rename or a new entry in it survives power loss.
pub(crate) fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<()> {
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", PathBuf::from(dir), e))
}
