//! `cargo xtask crash`: the kill -9 generations test for as long as you like.
//!
//! It runs `vault-core/tests/crash_kill9.rs` in release with `VAULT_KILL9_CYCLES` set: a writer
//! process appends with `SyncPolicy::Always`, is SIGKILLed at a random moment, and the next
//! generation recovers the same directory and appends more. `cargo test` runs a few hundred
//! generations; this is for thousands.
//!
//! ```text
//! cargo xtask crash                      # 2000 generations
//! cargo xtask crash --cycles 20000       # a long run
//! cargo xtask crash --seed 12345         # replay the kill plan a failure printed
//! ```

use crate::{run_steps, Error, Step, Workspace};

/// Generations when `--cycles` is not given.
const DEFAULT_CYCLES: u64 = 2000;

/// Runs the kill -9 test with the cycle count and seed from `args`.
pub(crate) fn crash(workspace: &Workspace, args: &[String]) -> Result<(), Error> {
    let mut cycles = DEFAULT_CYCLES;
    let mut seed = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<u64, Error> {
            let value = args
                .next()
                .ok_or_else(|| Error::Usage(format!("`crash {flag}` needs a number")))?;
            value
                .parse()
                .map_err(|_| Error::Usage(format!("`crash {flag}`: `{value}` is not a number")))
        };
        match arg.as_str() {
            "--cycles" => cycles = number("--cycles")?,
            "--seed" => seed = Some(number("--seed")?),
            other => {
                return Err(Error::Usage(format!(
                    "`crash` takes `--cycles N` and `--seed S`, got `{other}`"
                )))
            }
        }
    }
    let mut test = workspace.cargo([
        "test",
        "--package",
        "vault-core",
        "--release",
        "--test",
        "crash_kill9",
        "--",
        // Both I/O paths: `...::mmap` and `...::direct`.
        "acknowledged_records_survive_kill9_across_generations::",
        "--nocapture",
    ]);
    test.env("VAULT_KILL9_CYCLES", cycles.to_string());
    if let Some(seed) = seed {
        test.env("VAULT_KILL9_SEED", seed.to_string());
    }
    run_steps(vec![Step::new("crash", test)])
}
