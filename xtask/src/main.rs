//! `cargo xtask`: the project's automation, written in Rust so it runs wherever cargo does.
//!
//! This follows the [cargo-xtask] convention: `.cargo/config.toml` aliases `cargo xtask` to
//! `cargo run --package xtask --`, so there is nothing to install. It is a tool for people
//! working on vault, not part of the library, and is never published.
//!
//! ```text
//! cargo xtask            # list the commands
//! cargo xtask ci         # the checks of .ci/run (the fs matrix in its test step, as root), cross
//! cargo xtask crash      # thousands of kill -9 generations (release)
//! cargo xtask powerloss  # the power-loss model in release, 100,000+ crash states per I/O path
//! cargo xtask loom       # the loom models in release, preemption bound 3
//! cargo xtask stress     # the stress driver (`--help` for its options)
//! cargo xtask bench      # vault side by side with peers and limits -> docs/PERFORMANCE.md
//! cargo xtask cross      # Windows build + tests under wine, macOS type-check (Debian packages)
//! ```
//!
//! Every command runs from the workspace root and calls cargo through `$CARGO` (which cargo
//! sets to itself), so `cargo +nightly xtask ...` uses the nightly toolchain throughout.
//! Dependencies are std only: this crate is built before anything else can be checked, so it
//! should build fast and never be the thing that breaks.
//!
//! To add a command, write a `fn(&Workspace, &[String]) -> Result<(), Error>` and add a
//! [`Task`] for it to [`TASKS`]; help is generated from that table.
//!
//! [cargo-xtask]: https://github.com/matklad/cargo-xtask

mod bench;
mod powerloss;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::time::{Duration, Instant};

mod crash;
mod cross;
mod loom;
mod stress;

/// A command `cargo xtask` understands.
struct Task {
    /// What the user types after `cargo xtask`.
    name: &'static str,
    /// One line for the help listing.
    summary: &'static str,
    /// Runs the task with the arguments that followed its name.
    run: fn(&Workspace, &[String]) -> Result<(), Error>,
}

/// Every command, in the order help lists them.
const TASKS: &[Task] = &[
    Task {
        name: "ci",
        summary: "run what CI runs: fmt, clippy, tests, docs, kill -9, disk full, CLI contract",
        run: ci,
    },
    Task {
        name: "crash",
        summary: "kill -9 a writer over many generations: --cycles N (default 2000), --seed S",
        run: crash::crash,
    },
    Task {
        name: "powerloss",
        summary: "power-loss model in release: [--states N (default 100000)] [--first-seed S] \
                  [--io mmap|direct|both (default both)]",
        run: powerloss::powerloss,
    },
    Task {
        name: "loom",
        summary:
            "run the loom models in release, preemption bound 3 ([--preemptions N] [-- FILTER])",
        run: loom::loom,
    },
    Task {
        name: "stress",
        summary: "build and run the vault-stress driver in release (`stress --help` for options)",
        run: stress::stress,
    },
    Task {
        name: "bench",
        summary:
            "[--quick] compare vault with peer WALs and machine limits; update docs/PERFORMANCE.md",
        run: bench::bench,
    },
    Task {
        name: "cross",
        summary: "[--all] [--windows|--macos] build for Windows (tests under wine), check macOS",
        run: cross::cross,
    },
];

/// Where the CLI contract check lives, relative to the workspace root. It is shared with other
/// checkouts, so it sits beside the repository rather than in it, and may be absent.
const CLI_CONTRACT: &str = "../shared/checks/cli-contract";

/// How long CI's stress run lasts, in seconds (`.ci/run` says the same).
const CI_STRESS_SECONDS: &str = "20";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        print!("{}", help());
        return ExitCode::SUCCESS;
    };
    if matches!(name.as_str(), "help" | "--help" | "-h") {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    let Some(task) = TASKS.iter().find(|task| task.name == name) else {
        eprintln!("xtask: unknown command `{name}`\n");
        eprint!("{}", help());
        return ExitCode::from(2);
    };

    let workspace = Workspace::locate();
    match (task.run)(&workspace, &args[1..]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask {}: {error}", task.name);
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                eprintln!("  caused by: {inner}");
                cause = inner.source();
            }
            error.exit_code()
        }
    }
}

/// The help text: usage and one line per command in [`TASKS`].
fn help() -> String {
    use std::fmt::Write as _;

    let entries = TASKS
        .iter()
        .map(|task| (task.name, task.summary))
        .chain([("help", "print this help")]);
    let width = entries
        .clone()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    let mut text = String::from("Usage: cargo xtask <command>\n\nCommands:\n");
    for (name, summary) in entries {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "  {name:width$}  {summary}");
    }
    text
}

/// `cargo xtask ci`: the checks CI runs, in CI's order, stopping at the first failure.
///
/// Keep this in step with `.ci/run`, which runs the same checks without building xtask first.
fn ci(workspace: &Workspace, args: &[String]) -> Result<(), Error> {
    reject_args("ci", args)?;

    let mut markers = Command::new("bash");
    markers
        .args(["-c", r#"! git grep -nE "^(<<<<<<<|>>>>>>>)( |$)""#])
        .current_dir(&workspace.root);
    let mut steps = vec![
        Step::new("conflict-markers", markers),
        Step::new("fmt", workspace.cargo(["fmt", "--all", "--", "--check"])),
        Step::new(
            "clippy",
            workspace.cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        Step::new("test", workspace.cargo(["test", "--workspace"])),
        Step::new("doc", {
            let mut doc = workspace.cargo(["doc", "--workspace", "--no-deps"]);
            doc.env("RUSTDOCFLAGS", "-D warnings");
            doc
        }),
        Step::new(
            "clippy-features",
            workspace.cargo([
                "clippy",
                "-p",
                "vault-core",
                "--all-targets",
                "--features",
                "metrics,tracing",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        Step::new(
            "test-features",
            workspace.cargo([
                "test",
                "-p",
                "vault-core",
                "--features",
                "metrics,tracing",
                "--test",
                "metrics",
                "--test",
                "tracing",
            ]),
        ),
        Step::new(
            "metrics-example",
            workspace.cargo([
                "run",
                "-p",
                "vault-core",
                "--example",
                "metrics",
                "--features",
                "metrics",
            ]),
        ),
    ];
    let contract = workspace.root.join(CLI_CONTRACT);
    if contract.is_file() {
        let mut bash = Command::new("bash");
        bash.arg(CLI_CONTRACT).current_dir(&workspace.root);
        steps.push(Step::new("cli-contract", bash));
    } else {
        println!("xtask: {CLI_CONTRACT} not found; the cli-contract step will be skipped");
    }
    steps.push(Step::new("crash-kill9", {
        let mut crash = workspace.cargo([
            "test",
            "-p",
            "vault-core",
            "--test",
            "crash_kill9",
            "--",
            // Both I/O paths: `...::mmap` and `...::direct`.
            "acknowledged_records_survive_kill9_across_generations::",
            "--nocapture",
        ]);
        crash.env("VAULT_KILL9_CYCLES", "300");
        crash
    }));
    // The file-system matrix (disk full, power cut, kill -9 on tmpfs and loop-mounted ext4,
    // xfs and btrfs) mounts file systems, so it needs root; it runs inside the test step, and
    // skips there with the reason printed otherwise. Say which up front.
    if is_root() {
        println!("xtask: root, so the test step runs the file-system matrix");
    } else {
        println!(
            "xtask: not root, so the tmpfs, ext4, xfs and btrfs cases of the file-system matrix \
             will skip (run as root to include them)"
        );
    }
    steps.push(Step::new(
        "stress",
        stress::command(workspace, &["--duration", CI_STRESS_SECONDS]),
    ));
    // The log shipper example: kill -9 of its writing child and a restart; it exits non-zero
    // on any acknowledged record lost or shipped twice.
    steps.push(Step::new(
        "shipper",
        workspace.cargo([
            "run",
            "--release",
            "-p",
            "vault-core",
            "--example",
            "shipper",
        ]),
    ));
    if cross::installed() {
        steps.push(Step::new(
            "cross",
            workspace.cargo(["run", "--package", "xtask", "--", "cross"]),
        ));
    } else {
        println!(
            "xtask: the cross step will be skipped: Debian's rustc-web, rust-web-src, mingw-w64 \
             and wine64 are not installed (.ci/run installs them)"
        );
    }

    run_steps(steps)
}

/// Whether this process runs as root (`id -u` prints 0); false if that cannot be told.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Fails with a usage error if a command that takes no arguments was given some.
fn reject_args(task: &str, args: &[String]) -> Result<(), Error> {
    match args.first() {
        None => Ok(()),
        Some(arg) => Err(Error::Usage(format!(
            "`{task}` takes no arguments, got `{arg}`"
        ))),
    }
}

/// The workspace xtask belongs to: where commands run from and which cargo they call.
struct Workspace {
    /// The directory holding the workspace `Cargo.toml`.
    root: PathBuf,
    /// The cargo that invoked us (`$CARGO`), so every step uses the same toolchain.
    cargo: OsString,
}

impl Workspace {
    /// Finds the workspace root from where this crate was built: xtask sits directly in it.
    fn locate() -> Workspace {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .parent()
            .expect("xtask's manifest directory has a parent: xtask is a workspace member")
            .to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Workspace { root, cargo }
    }

    /// A `cargo` command with these arguments, to run from the workspace root.
    fn cargo<const N: usize>(&self, args: [&str; N]) -> Command {
        let mut command = Command::new(&self.cargo);
        command.args(args).current_dir(&self.root);
        command
    }
}

/// One named command within a task.
struct Step {
    /// Short name used in progress lines and failure messages.
    name: &'static str,
    /// What to run; inherits stdio so its output streams as it happens.
    command: Command,
}

impl Step {
    /// A step called `name` that runs `command`.
    fn new(name: &'static str, command: Command) -> Step {
        Step { name, command }
    }

    /// Runs the step to completion, printing its name beforehand and its time afterwards.
    fn run(mut self) -> Result<Duration, Error> {
        println!("==> {}: {}", self.name, display_command(&self.command));
        let start = Instant::now();
        let status = self.command.status().map_err(|source| Error::Spawn {
            step: self.name,
            program: self.command.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        let elapsed = start.elapsed();
        if !status.success() {
            return Err(Error::StepFailed {
                step: self.name,
                status,
                elapsed,
            });
        }
        println!("<== {}: ok in {}", self.name, seconds(elapsed));
        Ok(elapsed)
    }
}

/// Runs steps in order, stopping at the first failure, then prints how long each one took.
fn run_steps(steps: Vec<Step>) -> Result<(), Error> {
    let start = Instant::now();
    let mut times = Vec::with_capacity(steps.len());
    for step in steps {
        let name = step.name;
        times.push((name, step.run()?));
    }
    let width = times.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    println!("\nall steps passed in {}:", seconds(start.elapsed()));
    for (name, elapsed) in times {
        println!("  {name:width$}  {:>8}", seconds(elapsed));
    }
    Ok(())
}

/// A command as a user would type it, with any environment it sets. The program is shown by
/// name only: `$CARGO` is usually a long toolchain path that says nothing useful.
fn display_command(command: &Command) -> String {
    let mut words: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| {
            Some(format!(
                "{}=\"{}\"",
                key.to_string_lossy(),
                value?.to_string_lossy()
            ))
        })
        .collect();
    let program = Path::new(command.get_program());
    let program = program.file_name().unwrap_or(program.as_os_str());
    words.push(program.to_string_lossy().into_owned());
    words.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    words.join(" ")
}

/// A duration as seconds with one decimal place, e.g. `12.3s`.
fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// Why a task stopped.
#[derive(Debug)]
enum Error {
    /// The task was called with arguments it does not accept.
    Usage(String),
    /// A step's program could not be started at all (not installed, not executable).
    Spawn {
        /// The step that was starting.
        step: &'static str,
        /// The program that could not be started.
        program: String,
        /// Why the OS refused.
        source: io::Error,
    },
    /// A file could not be read or written.
    Io {
        /// What was being done: "read", "write", "create".
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why the OS refused.
        source: io::Error,
    },
    /// A step ran and exited unsuccessfully; its own output says why.
    StepFailed {
        /// The step that failed.
        step: &'static str,
        /// How it exited.
        status: ExitStatus,
        /// How long it ran before failing.
        elapsed: Duration,
    },
}

impl Error {
    /// The process exit code: 2 for a usage mistake, as for an unknown command; 1 otherwise.
    fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::from(2),
            Error::Spawn { .. } | Error::Io { .. } | Error::StepFailed { .. } => ExitCode::FAILURE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => write!(f, "{message}\n\n{}", help()),
            Error::Spawn { step, program, .. } => {
                write!(f, "step `{step}` failed: could not run `{program}`")
            }
            Error::Io { what, path, .. } => write!(f, "cannot {what} {}", path.display()),
            Error::StepFailed {
                step,
                status,
                elapsed,
            } => {
                write!(
                    f,
                    "step `{step}` failed ({status}) after {}",
                    seconds(*elapsed)
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } | Error::Io { source, .. } => Some(source),
            Error::Usage(_) | Error::StepFailed { .. } => None,
        }
    }
}
