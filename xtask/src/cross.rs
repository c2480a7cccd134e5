//! `cargo xtask cross`: vault on Windows (built, and its tests run under wine) and on macOS
//! (type-checked), from a Debian 12 machine, with no rustup download.
//!
//! ```text
//! cargo xtask cross                # CI's run: Windows build + the CI set of tests under wine, macOS check
//! cargo xtask cross --all          # every Windows test under wine
//! cargo xtask cross --windows      # only Windows (or --macos: only the macOS checks)
//! ```
//!
//! What it needs (`.ci/run` installs it):
//! `apt-get install rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64-win32 wine64`.
//! Debian's security suite ships rustc 1.96 with the matching standard-library source, so the
//! standard library is built for each target with `-Zbuild-std` (`RUSTC_BOOTSTRAP=1`,
//! `RUSTC=/usr/bin/rustc`); the compiler and the source must be the same version exactly, which
//! this checks before building. Everything goes to `target/cross`, so the std builds (about a
//! minute per target) are done once and reused.
//!
//! Wine 8.0 lacks `bcryptprimitives.dll` (`ProcessPrng`), which every Rust program needs: a
//! stand-in built here with mingw forwards it to `SystemFunction036`. loom's models abort under
//! wine (stack switching while unwinding): `VAULT_UNDER_WINE` makes them skip with a printed
//! reason. wine accepts `FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH` but ignores both
//! (plain buffered writes), so the direct path's tests there check its logic, not its
//! durability; this is printed before the tests run. `--all` shows every test's output, so the
//! reason of any test half that skipped is in the log.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run_steps, Error, Step, Workspace};

const RUSTC: &str = "/usr/bin/rustc";
const RUSTDOC: &str = "/usr/bin/rustdoc";
const CARGO: &str = "/usr/bin/cargo";
const STD_SOURCE_VERSION: &str = "/usr/lib/rustlib/src/rust/src/version";
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";
const WINE: &str = "/usr/lib/wine/wine64";
const APT: &str =
    "apt-get install rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64-win32 wine64";

const WINDOWS: &str = "x86_64-pc-windows-gnu";
const MACOS: [&str; 2] = ["x86_64-apple-darwin", "aarch64-apple-darwin"];

/// The library crates and the CLI: what must build on every platform.
const CRATES: [&str; 6] = [
    "vault-buffer",
    "vault-segment",
    "vault-rotate",
    "vault-core",
    "vault-raft",
    "vault-cli",
];

/// The tests CI runs under wine (`--all` runs every test of [`CRATES`]): every test of the
/// seam and the rotation worker, and the WAL's tests that touch real files and the platform
/// module (platform, recovery, torn tail, truncation, rotation, I/O errors, followers), without
/// the long ones (the Raft suite, model checks, kill -9 generations, power-loss states) that
/// add wine time but no Windows-specific code beyond what these run.
const CI_TESTS: &[(&str, &[&str])] = &[
    ("vault-buffer", &["--lib"]),
    ("vault-segment", &["--lib", "--tests"]),
    ("vault-rotate", &["--lib", "--tests"]),
    (
        "vault-core",
        &[
            "--lib",
            "--test",
            "platform",
            "--test",
            "recovery",
            "--test",
            "torn_tail",
            "--test",
            "truncate_back",
            "--test",
            "rotation",
            "--test",
            "io_errors",
            "--test",
            "follow",
        ],
    ),
    ("vault-cli", &["--bins", "--tests"]),
];

/// The stand-in for wine's missing `bcryptprimitives.dll`.
const BCRYPTPRIMITIVES_C: &str = r"#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG len);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
";

/// Runs the cross builds.
pub(crate) fn cross(workspace: &Workspace, args: &[String]) -> Result<(), Error> {
    let (mut windows, mut macos, mut all) = (true, true, false);
    for arg in args {
        match arg.as_str() {
            "--all" => all = true,
            "--windows" => macos = false,
            "--macos" => windows = false,
            other => {
                return Err(Error::Usage(format!(
                    "`cross` takes [--all] [--windows | --macos], got `{other}`"
                )))
            }
        }
    }
    check_toolchain()?;
    if windows {
        println!(
            "xtask cross: wine accepts FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH but \
             ignores both (plain buffered writes): the direct path's tests under wine check its \
             logic, not that its writes bypass the cache or reach the media"
        );
    }
    let target_dir = workspace.root.join("target/cross");
    let mut steps = Vec::new();
    if windows {
        let prefix = wine_prefix(&target_dir)?;
        let mut build = cross_cargo(workspace, &target_dir, WINDOWS, "build");
        for krate in CRATES {
            build.args(["-p", krate]);
        }
        steps.push(Step::new("windows-build", build));
        if all {
            let mut test = cross_cargo(workspace, &target_dir, WINDOWS, "test");
            for krate in CRATES {
                test.args(["-p", krate]);
            }
            // Not the examples (Linux probes among them) nor doctests (std-built doctests
            // for another target are a separate, unstable story).
            test.args(["--lib", "--bins", "--tests", "--no-fail-fast"]);
            wine_env(&mut test, &prefix);
            test.args(["--", "--test-threads=2", "--show-output"]);
            steps.push(Step::new("windows-test-all", test));
        } else {
            for (krate, targets) in CI_TESTS {
                let mut test = cross_cargo(workspace, &target_dir, WINDOWS, "test");
                test.args(["-p", krate]).args(*targets);
                wine_env(&mut test, &prefix);
                test.args(["--", "--test-threads=2"]);
                steps.push(Step::new("windows-test", test));
            }
        }
    }
    if macos {
        for target in MACOS {
            let mut check = cross_cargo(workspace, &target_dir, target, "check");
            for krate in CRATES {
                check.args(["-p", krate]);
            }
            check.arg("--lib").arg("--bins");
            steps.push(Step::new("macos-check", check));
        }
    }
    run_steps(steps)
}

/// Debian's cargo with Debian's rustc, building std from its source for `target`.
fn cross_cargo(workspace: &Workspace, target_dir: &Path, target: &str, verb: &str) -> Command {
    let mut command = Command::new(CARGO);
    command
        .current_dir(&workspace.root)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", RUSTC)
        .env("RUSTDOC", RUSTDOC)
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER", MINGW_GCC)
        .args([verb, "-Zbuild-std", "--target", target, "--target-dir"])
        .arg(target_dir);
    command
}

fn wine_env(command: &mut Command, prefix: &Path) {
    command
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", WINE)
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .env("VAULT_UNDER_WINE", "1");
}

/// Whether the packages `cross` needs are installed.
pub(crate) fn installed() -> bool {
    [RUSTC, CARGO, WINE, STD_SOURCE_VERSION]
        .iter()
        .all(|tool| Path::new(tool).exists())
}

/// Checks that the tools are installed and that Debian's rustc and its std source are the same
/// release.
fn check_toolchain() -> Result<(), Error> {
    for tool in [RUSTC, CARGO, WINE, STD_SOURCE_VERSION] {
        if !Path::new(tool).exists() {
            return Err(Error::Usage(format!("{tool} is missing: {APT}")));
        }
    }
    if Command::new(MINGW_GCC).arg("--version").output().is_err() {
        return Err(Error::Usage(format!("{MINGW_GCC} is missing: {APT}")));
    }
    let out = Command::new(RUSTC)
        .arg("-vV")
        .output()
        .map_err(|source| Error::Spawn {
            step: "toolchain",
            program: RUSTC.into(),
            source,
        })?;
    let release = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("release: ").map(str::to_owned))
        .unwrap_or_default();
    let source = std::fs::read_to_string(STD_SOURCE_VERSION).map_err(|source| Error::Io {
        what: "read",
        path: STD_SOURCE_VERSION.into(),
        source,
    })?;
    let source = source.trim();
    if release.is_empty() || release != source {
        return Err(Error::Usage(format!(
            "{RUSTC} is release `{release}` but the std source ({STD_SOURCE_VERSION}) is \
             `{source}`: -Zbuild-std needs them equal; install matching rustc-web and \
             rust-web-src"
        )));
    }
    println!("xtask cross: {RUSTC} {release}, std source {source}: match");
    Ok(())
}

/// A wine prefix under `target_dir` with the `bcryptprimitives.dll` stand-in, made once.
fn wine_prefix(target_dir: &Path) -> Result<PathBuf, Error> {
    let wine = target_dir.join("wine");
    let prefix = wine.join("prefix");
    let system32 = prefix.join("drive_c/windows/system32");
    let dll = system32.join("bcryptprimitives.dll");
    if dll.is_file() {
        return Ok(prefix);
    }
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    std::fs::create_dir_all(&wine).map_err(io("create", &wine))?;
    let source = wine.join("bcryptprimitives.c");
    std::fs::write(&source, BCRYPTPRIMITIVES_C).map_err(io("write", &source))?;
    let built = wine.join("bcryptprimitives.dll");
    let mut gcc = Command::new(MINGW_GCC);
    gcc.args(["-shared", "-O2", "-o"])
        .arg(&built)
        .arg(&source)
        .args(["-ladvapi32", "-Wl,--kill-at"]);
    Step::new("wine-dll", gcc).run()?;
    let mut boot = Command::new(WINE);
    boot.args(["wineboot", "--init"])
        .env("WINEPREFIX", &prefix)
        .env("WINEDEBUG", "-all");
    Step::new("wine-prefix", boot).run()?;
    // wineboot returns before wineserver has finished writing the prefix.
    let mut wait = Command::new("/usr/lib/wine/wineserver");
    wait.arg("-w").env("WINEPREFIX", &prefix);
    Step::new("wine-prefix-wait", wait).run()?;
    std::fs::copy(&built, &dll).map_err(io("copy", &dll))?;
    Ok(prefix)
}
