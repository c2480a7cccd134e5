//! What a platform without the direct path's memory ring provides in its place (macOS and
//! Windows; see `crate::storage::DIRECT_RING`): the constant that turns the ring off, and
//! functions that the ring code names but never calls there.

use std::fs::File;
use std::io;

use memmap2::MmapRaw;

/// No memory ring here: replacing memory under live readers needs `MAP_FIXED`'s guarantee.
pub(crate) const DIRECT_RING: bool = false;

/// Never called where [`DIRECT_RING`] is false.
///
/// # Safety
///
/// As on Linux.
pub(crate) unsafe fn map_anon_fixed(_addr: *mut u8, _len: usize, _bytes: &[u8]) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no memory ring on this platform",
    ))
}

/// Never called where [`DIRECT_RING`] is false.
pub(crate) fn ring_file(_len: usize) -> io::Result<File> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no memory ring on this platform",
    ))
}

/// Never called where [`DIRECT_RING`] is false.
///
/// # Safety
///
/// As on Linux.
pub(crate) unsafe fn map_fixed(
    _addr: *mut u8,
    _len: usize,
    _file: &File,
    _offset: u64,
    _writable: bool,
) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no memory ring on this platform",
    ))
}

/// Never called where [`DIRECT_RING`] is false.
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn populate(_map: &MmapRaw, _offset: usize, _len: usize) -> io::Result<bool> {
    Ok(false)
}

/// The unit the ring would map in (never used where [`DIRECT_RING`] is false).
pub(crate) fn page_size() -> usize {
    4096
}
