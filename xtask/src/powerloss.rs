//! `cargo xtask powerloss [--states N]`: the power-loss model, long.
//!
//! Runs `vault-core/tests/power_loss.rs` in release with `VAULT_POWERLOSS_STATES=N` (default
//! 100,000 random crash states, on top of the fixed exhaustive workloads), streams its output,
//! and prints the total number of crash states checked, summed from the lines the tests print
//! (`power_loss <name>: checked <n> states ...`).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

use crate::{seconds, Error, Workspace};

/// Random crash states checked when `--states` is not given.
const DEFAULT_STATES: u64 = 100_000;

/// Runs the power-loss tests in release with a large state count and prints the total.
pub(crate) fn powerloss(workspace: &Workspace, args: &[String]) -> Result<(), Error> {
    let states = parse_states(args)?;
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
    println!(
        "==> powerloss: VAULT_POWERLOSS_STATES={states} {}",
        crate::display_command(&command)
    );
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

/// `--states N` (or `--states=N`); nothing else is accepted.
fn parse_states(args: &[String]) -> Result<u64, Error> {
    let mut states = DEFAULT_STATES;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = match arg.as_str() {
            "--states" => it.next().map(String::as_str),
            other => other.strip_prefix("--states="),
        };
        let Some(value) = value else {
            return Err(Error::Usage(format!(
                "`powerloss` takes `--states N`, got `{arg}`"
            )));
        };
        states = value
            .replace('_', "")
            .parse()
            .map_err(|_| Error::Usage(format!("`--states` needs a number, got `{value}`")))?;
    }
    Ok(states)
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
        assert_eq!(checked_states("test foo ... ok"), None);
    }

    #[test]
    fn states_accepts_both_spellings_and_rejects_anything_else() {
        let args = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(parse_states(&args(&[])).unwrap(), DEFAULT_STATES);
        assert_eq!(
            parse_states(&args(&["--states", "500_000"])).unwrap(),
            500_000
        );
        assert_eq!(parse_states(&args(&["--states=7"])).unwrap(), 7);
        assert!(parse_states(&args(&["--states"])).is_err());
        assert!(parse_states(&args(&["--fast"])).is_err());
    }
}
