//! The crate's one error type.

/// What can go wrong in `vault-buffer`.
///
/// Only building a [`Pool`](crate::Pool) can fail; once built, getting and
/// releasing buffers cannot.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A [`PoolConfig`](crate::PoolConfig) was rejected by
    /// [`Pool::new`](crate::Pool::new). The message names the field and says
    /// what to change.
    #[error("invalid pool configuration: {0}")]
    InvalidConfig(String),
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
