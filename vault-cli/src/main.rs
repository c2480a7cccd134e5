//! `vault`: the command-line face of the vault write-ahead log.
//!
//! This binary is a thin tool over `vault-core`: it decides nothing about the log format or
//! recovery, it only drives the library and reports what it says. Its commands:
//!
//! - `vault demo` writes, syncs, reopens and reads back a log, checking every byte, and prints
//!   throughput, append latency, recovery time and the segments made.
//! - `vault write DIR` appends each line of stdin as one record (`--ack` reports durable LSNs).
//! - `vault cat DIR` prints the records; `vault verify DIR` checks the log; `vault info DIR`
//!   shows its segments and what recovery would do. These three only read: they never take the
//!   directory lock and never change a byte, so they are safe on a log another process writes.
//!
//! Exit codes: 0 success, 1 corruption or a failed verification, 2 usage or I/O errors (a
//! locked directory included). Errors go to stderr as one message that says what went wrong
//! and what to do; bad input never panics.
#![forbid(unsafe_code)]

mod cli;
mod demo;
mod failure;
mod human;
mod inspection;
mod sync;
mod write;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Prints help or version (exit 0) or the usage error (exit 2).
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Write(args) => write::run(&args),
        Command::Cat(args) => inspection::cat(&args),
        Command::Verify(args) => inspection::verify(&args),
        Command::Info(args) => inspection::info(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
