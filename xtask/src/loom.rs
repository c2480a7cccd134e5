//! `cargo xtask loom`: the loom models, deeper than a plain `cargo test` runs them.
//!
//! The models are the `src/**` unit tests of the crates with concurrency (vault-buffer,
//! vault-segment, vault-rotate, vault-core): under `cfg(test)` each crate's `sync` module is
//! loom's, so `cargo test` already model-checks them with a preemption bound of 2. This runs the
//! same tests in release with a higher bound (3 unless told otherwise), where loom explores
//! every interleaving with up to that many preemptions per execution.
//!
//! ```text
//! cargo xtask loom                          # bound 3, every model
//! cargo xtask loom --preemptions 4          # deeper (much slower)
//! cargo xtask loom -- group_commit          # only models whose name contains this
//! LOOM_MAX_PREEMPTIONS=2 LOOM_LOG=1 cargo xtask loom -- rotation   # LOOM_* variables win
//! ```

use crate::{Error, Step, Workspace};

/// The crates whose unit tests are loom models.
const CRATES: [&str; 4] = [
    "vault-buffer",
    "vault-segment",
    "vault-rotate",
    "vault-core",
];

/// The preemption bound when neither `--preemptions` nor `LOOM_MAX_PREEMPTIONS` gives one.
const DEFAULT_PREEMPTIONS: u32 = 3;

/// Runs the models in release with a deeper preemption bound.
pub(crate) fn loom(workspace: &Workspace, args: &[String]) -> Result<(), Error> {
    let mut preemptions = None;
    let mut profile = "--release";
    let mut rest = args.iter();
    let mut harness_args: Vec<&str> = Vec::new();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--preemptions" => {
                let value = rest.next().ok_or_else(|| {
                    Error::Usage("`loom --preemptions` needs a number".to_owned())
                })?;
                let n: u32 = value.parse().map_err(|_| {
                    Error::Usage(format!("`loom --preemptions {value}`: not a number"))
                })?;
                preemptions = Some(n);
            }
            "--debug" => profile = "--profile=dev",
            "--" => {
                harness_args.extend(rest.by_ref().map(String::as_str));
            }
            other => {
                return Err(Error::Usage(format!(
                    "`loom` takes [--preemptions N] [--debug] [-- TEST-FILTER...], got `{other}`"
                )))
            }
        }
    }

    let mut command = workspace.cargo(["test", profile, "--lib"]);
    for krate in CRATES {
        command.args(["-p", krate]);
    }
    command.arg("--").args(harness_args);
    // An explicit option wins over the environment; a LOOM_MAX_PREEMPTIONS already set wins
    // over the default, so every LOOM_* variable keeps working as loom documents it.
    match preemptions {
        Some(n) => {
            command.env("LOOM_MAX_PREEMPTIONS", n.to_string());
        }
        None if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() => {
            command.env("LOOM_MAX_PREEMPTIONS", DEFAULT_PREEMPTIONS.to_string());
        }
        None => {}
    }
    let elapsed = Step::new("loom", command).run()?;
    println!("\nloom models passed in {}", crate::seconds(elapsed));
    Ok(())
}
