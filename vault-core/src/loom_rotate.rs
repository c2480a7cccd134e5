//! vault-rotate's worker compiled from its own source files into this crate's unit tests, so
//! that their models run the real hand-off under loom (see [`crate::sync`]). Only built under
//! `cfg(test)`; normal builds use the `vault-rotate` crate.

// Its loom half also gives this crate's models their `model()` helper and thread builder.
#[path = "../../vault-rotate/src/sync.rs"]
pub(crate) mod sync;

#[path = "../../vault-rotate/src/rotator.rs"]
mod rotator;

pub(crate) use rotator::{default_spares, Error, RotateConfig, Rotator};
