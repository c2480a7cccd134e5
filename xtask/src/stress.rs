//! `cargo xtask stress`: builds the `vault-stress` driver (a binary of vault-bench) in release
//! and runs it with the given arguments.
//!
//! ```text
//! cargo xtask stress                                   # 30 s with the defaults
//! cargo xtask stress --duration 600 --threads 8 --readers 2 --record-size 16..4096 \
//!     --segment-size 64K --sync always
//! cargo xtask stress --help                            # every option
//! ```
//!
//! The driver, not xtask, parses the options, so xtask keeps to std. It exits non-zero on any
//! violation, and so does this command.

use std::process::Command;

use crate::{Error, Step, Workspace};

/// Runs `vault-stress` in release with `args`.
pub(crate) fn stress(workspace: &Workspace, args: &[String]) -> Result<(), Error> {
    Step::new("stress", command(workspace, args)).run()?;
    Ok(())
}

/// The command that builds and runs `vault-stress` in release with `args`.
pub(crate) fn command<S: AsRef<std::ffi::OsStr>>(workspace: &Workspace, args: &[S]) -> Command {
    let mut command = workspace.cargo([
        "run",
        "--release",
        "--package",
        "vault-bench",
        "--bin",
        "vault-stress",
        "--",
    ]);
    command.args(args);
    command
}
