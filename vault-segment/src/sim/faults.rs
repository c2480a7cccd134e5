//! Fault injection: which operation fails, and how ([`SimStorage::fail_nth`],
//! [`SimStorage::fail_from`]).

use super::*;

/// A kind of storage operation, for fault injection and the operation log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// [`Storage::create_dir_all`].
    CreateDir,
    /// [`Storage::lock_dir`].
    Lock,
    /// [`Storage::list`].
    List,
    /// [`Storage::create_allocated`].
    Allocate,
    /// [`Storage::map`].
    Map,
    /// [`Region::prefault`].
    Prefault,
    /// [`Region::sync`] (`msync`).
    Sync,
    /// [`Storage::rename`].
    Rename,
    /// [`Storage::remove`].
    Remove,
    /// [`Storage::sync_dir`] (directory `fsync`).
    SyncDir,
    /// [`Storage::write_file`].
    WriteFile,
    /// [`Storage::read_file`].
    ReadFile,
    /// [`Storage::sync_file`] (file `fsync`).
    SyncFile,
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// `EIO` (`ERROR_IO_DEVICE` on Windows).
    Io,
    /// `ENOSPC` (`ERROR_DISK_FULL` on Windows).
    NoSpace,
}

impl FaultError {
    pub(super) fn to_io(self) -> io::Error {
        io::Error::from_raw_os_error(self.raw_os_error())
    }

    /// The raw OS error code the fault reports: `EIO` or `ENOSPC` on POSIX,
    /// `ERROR_IO_DEVICE` or `ERROR_DISK_FULL` on Windows.
    #[must_use]
    pub fn raw_os_error(self) -> i32 {
        match self {
            FaultError::Io => crate::storage::RAW_EIO,
            FaultError::NoSpace => crate::storage::RAW_ENOSPC,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Fault {
    pub(super) kind: OpKind,
    pub(super) nth: u64,
    pub(super) error: FaultError,
    pub(super) sticky: bool,
}
