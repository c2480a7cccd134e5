//! How big a [`Pool`](crate::Pool) may get.

use crate::error::{Error, Result};

/// Limits for a [`Pool`](crate::Pool), checked once by
/// [`Pool::new`](crate::Pool::new).
///
/// Together they bound the memory the pool keeps idle to at most
/// `max_buffers * max_capacity` bytes of buffer capacity. Buffers that callers
/// hold are not limited: [`Pool::get`](crate::Pool::get) never blocks or
/// fails, it allocates when nothing idle is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most buffers the pool holds idle at once. A buffer released while the
    /// idle set is full is freed. Must be at least 1.
    pub max_buffers: usize,
    /// Capacity, in bytes, of a buffer allocated on a miss. Must not exceed
    /// `max_capacity`.
    pub initial_capacity: usize,
    /// Largest capacity, in bytes, a released buffer may have and still be
    /// kept. A buffer that grew beyond it is freed on release, so one large
    /// record does not pin a large allocation in the pool for good.
    pub max_capacity: usize,
}

impl Default for PoolConfig {
    /// 1024 idle buffers of 4 KiB to start with, each allowed to grow to
    /// 1 MiB and still be reused.
    fn default() -> Self {
        PoolConfig {
            max_buffers: 1024,
            initial_capacity: 4096,
            max_capacity: 1 << 20,
        }
    }
}

impl PoolConfig {
    /// Rejects limits the pool cannot honour, saying which field to change.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_buffers == 0 {
            return Err(Error::InvalidConfig(
                "max_buffers is 0; set it to at least 1 (it is how many idle buffers \
                 the pool may keep)"
                    .to_owned(),
            ));
        }
        if self.initial_capacity > self.max_capacity {
            return Err(Error::InvalidConfig(format!(
                "initial_capacity ({}) is larger than max_capacity ({}); lower \
                 initial_capacity or raise max_capacity, or every fresh buffer would \
                 be freed on its first release",
                self.initial_capacity, self.max_capacity
            )));
        }
        Ok(())
    }
}
