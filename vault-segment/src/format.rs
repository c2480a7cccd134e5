//! The on-disk format: segment names, the segment header, the activation block and frames.
//!
//! Every integer is little-endian, converted explicitly with `to_le_bytes`/`from_le_bytes`.
//! `docs/ARCHITECTURE.md` describes the same layout byte by byte.
//!
//! ```text
//! offset  size  segment header (written once by the rotation worker, synced before install)
//!      0     8  magic "VAULTSEG"
//!      8     4  format version (1 or 2, see below)
//!     12     4  flags (0)
//!     16     8  segment index
//!     24     8  salt (random per segment)
//!     32     8  capacity: bytes of the file the format uses
//!     40     8  creation time, nanoseconds since the Unix epoch (informational)
//!     48    12  reserved, zero
//!     60     4  CRC32C of bytes 0..60
//!              activation block (written when the segment becomes the writer's tail)
//!     64     8  first LSN of the segment
//!     72     4  CRC32C of bytes 64..72 followed by the salt
//!     76    52  reserved, zero
//!    128        frames, each 8-byte aligned, until a frame header of 16 zero bytes
//! ```
//!
//! A frame is a 16-byte header, a payload and zero padding to the next multiple of 8:
//!
//! ```text
//!      0     4  payload length
//!      4     1  kind: 1 = record, 2 = commit marker (0 = end of frames)
//!      5     3  reserved, zero
//!      8     4  CRC32C of (bytes 0..8, payload, salt, LSN)
//!     12     4  version 1: zero; version 2: the low 32 bits of the frame's LSN (the LSN
//!               its checksum uses)
//!     16     n  payload
//! ```
//!
//! Version 1 segments were allocated as zeros: past the last frame the file reads as zeros
//! until the writer puts something there, so any non-zero byte past the chain was written by
//! this segment's writer. Version 2 marks a **recycled** segment (a file the log dropped,
//! re-headed with a new index and salt): past its frames lie the stale bytes of its earlier
//! use. Two rules keep a clean end recognisable there:
//!
//! - **the terminator**: the writer keeps a 16-byte zero frame header right after its last
//!   frame, made durable by the same sync as that frame, so a synced chain always ends at a
//!   zero header;
//! - **the LSN tag** (bytes 12..16): a frame can be checked without knowing the chain before
//!   it, so recovery finds every frame this use of the file wrote past the chain's end (stale
//!   frames carry the old salt and never validate) and tells them from stale bytes.
//!
//! New files are still written as version 1 (the file system hands them over as zeros); a
//! build that writes version 2 reads both.
//!
//! The LSN in the checksum of a record is its own LSN (the segment's first LSN plus the number
//! of records before it in the segment); a commit marker's payload is
//! `attested LSN (8) | next LSN (8)` and its checksum uses the next LSN. Salt and LSN tie a
//! frame to its place: bytes from another segment or from an earlier use of the same offsets
//! never validate.

use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;

/// Magic bytes at offset 0 of every segment.
pub const MAGIC: [u8; 8] = *b"VAULTSEG";
/// The newest format version this build writes and reads: 2, the version of a recycled
/// segment (see the module docs). Fresh segments are written as [`FORMAT_VERSION_ZEROED`].
pub const FORMAT_VERSION: u32 = 2;
/// The version of a segment whose file was allocated as zeros (every segment before
/// recycling existed, and every fresh one still).
pub const FORMAT_VERSION_ZEROED: u32 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Offset of the activation block.
pub const ACTIVATION_OFFSET: usize = 64;
/// Offset of the first frame.
pub const DATA_OFFSET: usize = 128;
/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 16;
/// Bytes of a whole commit-marker frame.
pub const MARKER_FRAME_LEN: usize = FRAME_HEADER_LEN + MARKER_PAYLOAD_LEN;
/// Bytes of a commit marker's payload.
pub const MARKER_PAYLOAD_LEN: usize = 16;
/// Frame alignment.
pub const FRAME_ALIGN: usize = 8;
/// The smallest segment capacity accepted (one page).
pub const MIN_CAPACITY: u64 = 4096;
/// The largest segment capacity accepted (frames are addressed with `u32` lengths).
pub const MAX_CAPACITY: u64 = 1 << 40;
/// The largest payload one frame can hold.
pub const MAX_PAYLOAD: usize = u32::MAX as usize - 64;
/// The largest first LSN an activation block may state. A segment holds fewer than 2^40
/// frames, so the LSNs of its records never overflow; a block stating more is invalid.
pub const MAX_FIRST_LSN: u64 = (1 << 63) - 1;

/// Kind byte of a record frame.
pub(crate) const KIND_RECORD: u8 = 1;
/// Kind byte of a commit-marker frame.
pub(crate) const KIND_MARKER: u8 = 2;

/// Bytes a frame with a payload of `payload_len` bytes occupies, padding included.
#[must_use]
pub const fn frame_len(payload_len: usize) -> usize {
    (FRAME_HEADER_LEN + payload_len + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

/// The fixed part of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The format version: [`FORMAT_VERSION_ZEROED`] (1) for a file allocated as zeros,
    /// [`FORMAT_VERSION`] (2) for a recycled one, whose bytes past its frames are stale.
    pub version: u32,
    /// The segment's sequence number; order comes from it alone.
    pub index: u64,
    /// Random per segment; mixed into every frame checksum.
    pub salt: u64,
    /// Bytes of the file the format uses.
    pub capacity: u64,
    /// Creation time in nanoseconds since the Unix epoch (informational only).
    pub created_nanos: u64,
}

/// The LSN tag a frame header of a segment of `version` carries in bytes 12..16.
#[must_use]
#[inline]
pub fn lsn_tag(version: u32, lsn: u64) -> u32 {
    // Truncation intended: the tag is the low 32 bits.
    let low = lsn as u32;
    if version >= FORMAT_VERSION {
        low
    } else {
        0
    }
}

/// Why a header does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    Magic,
    Checksum,
    Version(u32),
}

impl SegmentHeader {
    /// Encodes the header into the first [`HEADER_LEN`] bytes of a segment.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[16..24].copy_from_slice(&self.index.to_le_bytes());
        b[24..32].copy_from_slice(&self.salt.to_le_bytes());
        b[32..40].copy_from_slice(&self.capacity.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_nanos.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8; HEADER_LEN]) -> Result<Self, HeaderError> {
        if b[0..8] != MAGIC {
            return Err(HeaderError::Magic);
        }
        if crc32c::crc32c(&b[0..60]) != read_u32(b, 60) {
            return Err(HeaderError::Checksum);
        }
        let version = read_u32(b, 8);
        if version != FORMAT_VERSION_ZEROED && version != FORMAT_VERSION {
            return Err(HeaderError::Version(version));
        }
        Ok(Self {
            version,
            index: read_u64(b, 16),
            salt: read_u64(b, 24),
            capacity: read_u64(b, 32),
            created_nanos: read_u64(b, 40),
        })
    }
}

/// Encodes the activation block that states a segment's first LSN.
#[must_use]
pub fn encode_activation(first_lsn: u64, salt: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0..8].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&b[0..8]), &salt.to_le_bytes());
    b[8..12].copy_from_slice(&crc.to_le_bytes());
    b
}

/// What the activation block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// All zero: the segment was never used (or its activation never reached the disk).
    Missing,
    /// A valid first LSN (1 ..= [`MAX_FIRST_LSN`]).
    Valid(u64),
    /// Bytes that do not validate.
    Invalid,
}

pub(crate) fn decode_activation(b: &[u8], salt: u64) -> Activation {
    if b[0..12].iter().all(|&x| x == 0) {
        return Activation::Missing;
    }
    let first = read_u64(b, 0);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&b[0..8]), &salt.to_le_bytes());
    if crc == read_u32(b, 8) && (1..=MAX_FIRST_LSN).contains(&first) {
        Activation::Valid(first)
    } else {
        Activation::Invalid
    }
}

/// The first 8 bytes of a frame header, which the checksum covers.
pub(crate) fn frame_prefix(payload_len: u32, kind: u8) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[0..4].copy_from_slice(&payload_len.to_le_bytes());
    p[4] = kind;
    p
}

/// The checksum of a record's header prefix and payload, before salt and LSN are mixed in.
///
/// It does not depend on where the record lands, so writers compute it before they take the
/// append lock; [`seal_crc`] finishes it cheaply under the lock.
#[must_use]
pub fn partial_crc(payload: &[u8]) -> u32 {
    // A payload longer than MAX_PAYLOAD is refused before it reaches a segment; the truncating
    // cast only keeps this function total.
    let prefix = frame_prefix(payload.len() as u32, KIND_RECORD);
    crate::crc::crc32c_prefixed(u64::from_le_bytes(prefix), payload)
}

/// Mixes salt and LSN into a partial checksum.
#[must_use]
pub fn seal_crc(partial: u32, salt: u64, lsn: u64) -> u32 {
    // The salt's and then the LSN's little-endian bytes.
    crate::crc::crc32c_append_words(partial, salt, lsn)
}

pub(crate) fn marker_payload(attested: u64, next_lsn: u64) -> [u8; MARKER_PAYLOAD_LEN] {
    let mut p = [0u8; MARKER_PAYLOAD_LEN];
    p[0..8].copy_from_slice(&attested.to_le_bytes());
    p[8..16].copy_from_slice(&next_lsn.to_le_bytes());
    p
}

pub(crate) fn marker_crc(payload: &[u8; MARKER_PAYLOAD_LEN], salt: u64) -> u32 {
    let prefix = frame_prefix(MARKER_PAYLOAD_LEN as u32, KIND_MARKER);
    let partial = crc32c::crc32c_append(crc32c::crc32c(&prefix), payload);
    seal_crc(partial, salt, read_u64(payload, 8))
}

pub(crate) fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

pub(crate) fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// A parsed segment file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentName {
    /// The segment index in the name.
    pub index: u64,
    /// Whether the name carries `-pre`: a segment still being prepared.
    pub pre: bool,
}

fn name_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^gs-vault-(\d{8}T\d{6}Z)-(\d{20})(-pre)?\.log$").expect("static regex")
    })
}

/// Parses `gs-vault-{timestamp}-{index}.log` or its `-pre` form; `None` for other names.
#[must_use]
pub fn parse_segment_name(name: &str) -> Option<SegmentName> {
    let caps = name_regex().captures(name)?;
    let index = caps.get(2)?.as_str().parse().ok()?;
    Some(SegmentName {
        index,
        pre: caps.get(3).is_some(),
    })
}

/// The file name of segment `index` created at `created_nanos` (UTC, seconds resolution).
#[must_use]
pub fn segment_file_name(created_nanos: u64, index: u64, pre: bool) -> String {
    let secs = (created_nanos / 1_000_000_000) as i64;
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "gs-vault-{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:020}{}.log",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        index,
        if pre { "-pre" } else { "" }
    )
}

/// Whether `path`'s file name parses as a segment name.
#[must_use]
pub fn is_segment_path(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_segment_name)
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip_and_sort_by_index_width() {
        let n = segment_file_name(1_764_064_935_000_000_000, 42, false);
        assert_eq!(n, "gs-vault-20251125T100215Z-00000000000000000042.log");
        assert_eq!(
            parse_segment_name(&n),
            Some(SegmentName {
                index: 42,
                pre: false
            })
        );
        let p = segment_file_name(0, 7, true);
        assert_eq!(
            parse_segment_name(&p),
            Some(SegmentName {
                index: 7,
                pre: true
            })
        );
        assert_eq!(parse_segment_name("gs-vault-x-1.log"), None);
        assert_eq!(parse_segment_name("notes.txt"), None);
    }

    proptest! {
        #[test]
        fn header_round_trips(index: u64, salt: u64, capacity: u64, created: u64) {
            let h = SegmentHeader { version: FORMAT_VERSION, index, salt, capacity, created_nanos: created };
            prop_assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
            let v1 = SegmentHeader { version: FORMAT_VERSION_ZEROED, ..h };
            prop_assert_eq!(SegmentHeader::decode(&v1.encode()), Ok(v1));
        }

        #[test]
        fn any_header_bit_flip_is_detected(index: u64, salt: u64, bit in 0usize..512) {
            let h = SegmentHeader {
                version: FORMAT_VERSION,
                index,
                salt,
                capacity: 1 << 20,
                created_nanos: 1,
            };
            let mut b = h.encode();
            b[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(SegmentHeader::decode(&b).is_err());
        }

        #[test]
        fn activation_round_trips_and_depends_on_salt(
            first in 1u64..=MAX_FIRST_LSN,
            salt: u64,
            other: u64,
        ) {
            let b = encode_activation(first, salt);
            prop_assert_eq!(decode_activation(&b, salt), Activation::Valid(first));
            if other != salt {
                prop_assert_eq!(decode_activation(&b, other), Activation::Invalid);
            }
        }

        #[test]
        fn an_activation_past_the_largest_first_lsn_is_invalid(
            first in MAX_FIRST_LSN + 1..,
            salt: u64,
        ) {
            prop_assert_eq!(
                decode_activation(&encode_activation(first, salt), salt),
                Activation::Invalid
            );
        }

        #[test]
        fn record_crc_binds_salt_and_lsn(payload: Vec<u8>, salt: u64, lsn: u64) {
            let c = seal_crc(partial_crc(&payload), salt, lsn);
            prop_assert_ne!(c, seal_crc(partial_crc(&payload), salt ^ 1, lsn));
            prop_assert_ne!(c, seal_crc(partial_crc(&payload), salt, lsn ^ 1));
        }
    }
}
