//! The `vault` command (being written).
fn main() {}
