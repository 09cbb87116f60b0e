//! `cargo xtask` runs this tiny binary (no dependencies, so cargo's own
//! fingerprint check of it is quick). It runs the real xtask (the dev
//! profile, whose workspace crates Cargo.toml optimizes), and asks cargo to
//! rebuild that binary only when one of its inputs changed since the last
//! build (see [`freshness`]).

mod freshness;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Where cargo puts the real xtask: the dev profile's directory.
const PROFILE_DIR: &str = "debug";
/// Set to 1 to skip the freshness check and always ask cargo.
const ALWAYS_BUILD_VAR: &str = "POOLBED_XTASK_ALWAYS_BUILD";

fn main() -> ExitCode {
    match launch() {
        Ok(code) => code,
        Err(why) => {
            eprintln!("error: cargo xtask: {why}");
            ExitCode::FAILURE
        }
    }
}

fn launch() -> Result<ExitCode, String> {
    let root = workspace_root()?;
    let target = target_dir()?;
    let paths = freshness::Paths::new(&root, &target, PROFILE_DIR);
    let always = std::env::var_os(ALWAYS_BUILD_VAR).is_some_and(|v| v == "1");
    if always || !freshness::is_fresh(&paths) {
        let build_start = std::time::SystemTime::now();
        build(&root, &target)?;
        // Only a stamp whose inputs all predate the binary is written, so an
        // edit made during the build is seen next time.
        freshness::write_stamp(&paths, build_start)
            .map_err(|e| format!("writing the build stamp: {e}"))?;
    }
    run(&paths.binary, std::env::args_os().skip(1).collect())
}

/// The checkout: `cargo run` tells its binary where its manifest is
/// (xtask/launcher), at run time, so a moved checkout still works.
fn workspace_root() -> Result<PathBuf, String> {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not xtask/launcher", manifest.display()))
}

/// Cargo's target directory: this binary sits in `<target>/debug/`.
fn target_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    exe.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not in a cargo target directory", exe.display()))
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Lets cargo bring xtask up to date (its output goes to the
/// user: a rebuild shows cargo's progress).
fn build(root: &Path, target: &Path) -> Result<(), String> {
    let status = Command::new(cargo())
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "--package", "xtask"])
        .status()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("building xtask failed ({status})"));
    }
    Ok(())
}

#[cfg(unix)]
fn run(binary: &Path, args: Vec<OsString>) -> Result<ExitCode, String> {
    use std::os::unix::process::CommandExt;
    // exec: the real xtask takes this process over (signals, exit code).
    let error = Command::new(binary).args(args).exec();
    Err(format!("running {}: {error}", binary.display()))
}

#[cfg(not(unix))]
fn run(binary: &Path, args: Vec<OsString>) -> Result<ExitCode, String> {
    let status = Command::new(binary)
        .args(args)
        .status()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(code.clamp(1, 255) as u8),
        None => ExitCode::FAILURE,
    })
}
