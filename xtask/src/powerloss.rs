//! `cargo xtask powerloss [--states N] [--first-seed S]`: the power-loss model, long.
//!
//! Runs `vault-core/tests/power_loss.rs` in release with `VAULT_POWERLOSS_STATES=N` (default
//! 100,000 random crash states, on top of the fixed exhaustive workloads; the `truncate_back`
//! and `reset` crash cases also sample N / 250 choices per crash state that has too many to
//! enumerate), streams its output,
//! and prints the total number of crash states checked. `--first-seed S` starts the random
//! workloads at seed `S` (`VAULT_POWERLOSS_FIRST_SEED`), so repeated runs explore new ones. It
//! prints the total number of crash states checked, summed from the lines the tests print
//! (`power_loss <name>: checked <n> states ...`).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

use crate::{seconds, Error, Workspace};

/// Random crash states checked when `--states` is not given.
const DEFAULT_STATES: u64 = 100_000;

/// Runs the power-loss tests in release with a large state count and prints the total.
pub(crate) fn powerloss(workspace: &Workspace, args: &[String]) -> Result<(), Error> {
    let (states, first_seed) = parse_args(args)?;
    let mut command = workspace.cargo([
        "test",
        "--release",
        "-p",
        "vault-core",
        "--test",
        "power_loss",
        "--",
        "--nocapture",
    ]);
    command
        .env("VAULT_POWERLOSS_STATES", states.to_string())
        .stdout(Stdio::piped());
    if let Some(seed) = first_seed {
        command.env("VAULT_POWERLOSS_FIRST_SEED", seed.to_string());
    }
    println!("==> powerloss: {}", crate::display_command(&command));
    let start = Instant::now();
    let mut child = command.spawn().map_err(|source| Error::Spawn {
        step: "powerloss",
        program: command.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    let mut total = 0u64;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            total += checked_states(&line).unwrap_or(0);
        }
    }
    let status = child.wait().map_err(|source| Error::Spawn {
        step: "powerloss",
        program: command.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(Error::StepFailed {
            step: "powerloss",
            status,
            elapsed,
        });
    }
    println!(
        "<== powerloss: {total} crash states checked, 0 violations, in {}",
        seconds(elapsed)
    );
    Ok(())
}

/// `--states N` and `--first-seed S` (each also as `--name=value`); nothing else.
fn parse_args(args: &[String]) -> Result<(u64, Option<u64>), Error> {
    let mut states = DEFAULT_STATES;
    let mut first_seed = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg.as_str(), None),
        };
        if name != "--states" && name != "--first-seed" {
            return Err(Error::Usage(format!(
                "`powerloss` takes `--states N` and `--first-seed S`, got `{arg}`"
            )));
        }
        let Some(value) = inline.or_else(|| it.next().map(String::as_str)) else {
            return Err(Error::Usage(format!("`{name}` needs a number")));
        };
        let number: u64 = value
            .replace('_', "")
            .parse()
            .map_err(|_| Error::Usage(format!("`{name}` needs a number, got `{value}`")))?;
        if name == "--states" {
            states = number;
        } else {
            first_seed = Some(number);
        }
    }
    Ok((states, first_seed))
}

/// The `<n>` of a `power_loss <name>: checked <n> states` line.
fn checked_states(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("power_loss ")?;
    let after = rest.split_once(": checked ")?.1;
    after.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_count_is_read_from_the_tests_summary_lines() {
        let line = "power_loss random (seeds 1000..1005): checked 3857 states (3330 with ...)";
        assert_eq!(checked_states(line), Some(3857));
        let cut = "power_loss truncate_back: checked 2806 states (2363 with sector-atomic ...)";
        assert_eq!(checked_states(cut), Some(2806));
        assert_eq!(checked_states("test foo ... ok"), None);
    }

    #[test]
    fn arguments_accept_both_spellings_and_reject_anything_else() {
        let args = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(parse_args(&args(&[])).unwrap(), (DEFAULT_STATES, None));
        assert_eq!(
            parse_args(&args(&["--states", "500_000", "--first-seed=9"])).unwrap(),
            (500_000, Some(9))
        );
        assert_eq!(parse_args(&args(&["--states=7"])).unwrap(), (7, None));
        assert!(parse_args(&args(&["--states"])).is_err());
        assert!(parse_args(&args(&["--states", "many"])).is_err());
        assert!(parse_args(&args(&["--fast"])).is_err());
    }
}
