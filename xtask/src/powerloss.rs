//! `cargo xtask powerloss [--states N] [--first-seed S] [--io mmap|direct|both]`: the
//! power-loss model, long.
//!
//! Runs `vault-core/tests/power_loss/` in release with `VAULT_POWERLOSS_STATES=N` (default
//! 100,000 random crash states per I/O path, on top of the fixed exhaustive workloads; the
//! `truncate_back` and `reset` crash cases also sample N / 250 choices per crash state that
//! has too many to enumerate) and streams its output. Every test there runs once per I/O path
//! (`<test>::mmap`, `<test>::direct`); `--io` picks one path (a test-name filter) or both (the
//! default). `--first-seed S` starts the random workloads at seed `S`
//! (`VAULT_POWERLOSS_FIRST_SEED`), so repeated runs explore new ones. It prints the number of
//! crash states checked on each path, summed from the lines the tests print
//! (`power_loss <path> <name>: checked <n> states ...`).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

use crate::{seconds, Error, Workspace};

/// Random crash states checked when `--states` is not given.
const DEFAULT_STATES: u64 = 100_000;

/// The I/O paths the power-loss tests run on, as `--io` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IoPaths {
    Mmap,
    Direct,
    Both,
}

impl IoPaths {
    /// The libtest filter that selects this choice's tests (`None`: every test).
    fn filter(self) -> Option<&'static str> {
        match self {
            IoPaths::Mmap => Some("::mmap"),
            IoPaths::Direct => Some("::direct"),
            IoPaths::Both => None,
        }
    }

    /// The paths this choice covers, as the tests' summary lines name them.
    fn names(self) -> &'static [&'static str] {
        match self {
            IoPaths::Mmap => &["mmap"],
            IoPaths::Direct => &["direct"],
            IoPaths::Both => &["mmap", "direct"],
        }
    }
}

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    states: u64,
    first_seed: Option<u64>,
    io: IoPaths,
}

/// Runs the power-loss tests in release with a large state count and prints the total per
/// I/O path.
pub(crate) fn powerloss(workspace: &Workspace, args: &[String]) -> Result<(), Error> {
    let Args {
        states,
        first_seed,
        io,
    } = parse_args(args)?;
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
    if let Some(filter) = io.filter() {
        command.arg(filter);
    }
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
    let mut totals: Vec<(&str, u64)> = io.names().iter().map(|&name| (name, 0)).collect();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some((path, n)) = checked_states(&line) {
                if let Some(total) = totals.iter_mut().find(|(name, _)| *name == path) {
                    total.1 += n;
                }
            }
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
    let per_path: Vec<String> = totals
        .iter()
        .map(|(name, n)| format!("{n} on the {name} path"))
        .collect();
    println!(
        "<== powerloss: crash states checked: {}; 0 violations, in {}",
        per_path.join(", "),
        seconds(elapsed)
    );
    Ok(())
}

/// `--states N`, `--first-seed S` and `--io mmap|direct|both` (each also as
/// `--name=value`); nothing else.
fn parse_args(args: &[String]) -> Result<Args, Error> {
    let mut states = DEFAULT_STATES;
    let mut first_seed = None;
    let mut io = IoPaths::Both;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg.as_str(), None),
        };
        if name != "--states" && name != "--first-seed" && name != "--io" {
            return Err(Error::Usage(format!(
                "`powerloss` takes `--states N`, `--first-seed S` and `--io mmap|direct|both`, \
                 got `{arg}`"
            )));
        }
        let Some(value) = inline.or_else(|| it.next().map(String::as_str)) else {
            return Err(Error::Usage(format!("`{name}` needs a value")));
        };
        if name == "--io" {
            io = match value {
                "mmap" => IoPaths::Mmap,
                "direct" => IoPaths::Direct,
                "both" => IoPaths::Both,
                other => {
                    return Err(Error::Usage(format!(
                        "`--io` takes mmap, direct or both, got `{other}`"
                    )))
                }
            };
            continue;
        }
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
    Ok(Args {
        states,
        first_seed,
        io,
    })
}

/// The `<path>` and `<n>` of a `power_loss <path> <name>: checked <n> states` line.
fn checked_states(line: &str) -> Option<(&str, u64)> {
    let rest = line.strip_prefix("power_loss ")?;
    let (path, rest) = rest.split_once(' ')?;
    let after = rest.split_once(": checked ")?.1;
    Some((path, after.split_whitespace().next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_count_is_read_from_the_tests_summary_lines() {
        let line = "power_loss mmap random (seeds 1000..1005): checked 3857 states (3330 with ...)";
        assert_eq!(checked_states(line), Some(("mmap", 3857)));
        let cut =
            "power_loss direct truncate_back: checked 2806 states (2363 with sector-atomic ...)";
        assert_eq!(checked_states(cut), Some(("direct", 2806)));
        assert_eq!(checked_states("test foo ... ok"), None);
    }

    #[test]
    fn arguments_accept_both_spellings_and_reject_anything_else() {
        let args = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        let parsed = |states, first_seed, io| Args {
            states,
            first_seed,
            io,
        };
        assert_eq!(
            parse_args(&args(&[])).unwrap(),
            parsed(DEFAULT_STATES, None, IoPaths::Both)
        );
        assert_eq!(
            parse_args(&args(&["--states", "500_000", "--first-seed=9"])).unwrap(),
            parsed(500_000, Some(9), IoPaths::Both)
        );
        assert_eq!(
            parse_args(&args(&["--states=7", "--io", "direct"])).unwrap(),
            parsed(7, None, IoPaths::Direct)
        );
        assert_eq!(
            parse_args(&args(&["--io=mmap"])).unwrap(),
            parsed(DEFAULT_STATES, None, IoPaths::Mmap)
        );
        assert!(parse_args(&args(&["--states"])).is_err());
        assert!(parse_args(&args(&["--states", "many"])).is_err());
        assert!(parse_args(&args(&["--io", "page-cache"])).is_err());
        assert!(parse_args(&args(&["--fast"])).is_err());
    }
}
