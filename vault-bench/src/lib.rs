//! Benchmarks of vault.
