//! `cargo xtask lint`: the checks CI makes before the tests, runnable locally.
//!
//! 1. `cargo fmt --all -- --check`;
//! 2. clippy on every host crate (all targets: tests and benches too), every
//!    warning an error, `clippy::undocumented_unsafe_blocks` included;
//! 3. clippy on the firmware for `aarch64-unknown-none`, the same way. The
//!    firmware embeds a compiled trace, so the default trace is compiled first
//!    (what `cargo xtask build` does).

use crate::firmware::{self, BuildOptions};
use anyhow::{bail, Context, Result};
use std::process::{Command, ExitCode};

/// The launcher's manifest, relative to the checkout's root.
pub const LAUNCHER_MANIFEST: &str = "xtask/launcher/Cargo.toml";

/// `cargo xtask lint` arguments.
#[derive(clap::Args)]
pub struct LintArgs {}

/// Lints every step also when an earlier one failed, so one run shows all.
pub fn run(_args: LintArgs) -> Result<ExitCode> {
    crate::setup::ensure_target()?;
    let trace = firmware::trace_bin(&BuildOptions::default())?;
    let deny = [
        "--",
        "-D",
        "warnings",
        "-D",
        "clippy::undocumented_unsafe_blocks",
    ];
    let mut failed = Vec::new();
    let mut step =
        |name: &str, args: &[&str], env: Option<(&str, &std::path::Path)>| -> Result<()> {
            println!("== lint: {name}");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut command = Command::new(cargo);
            command.current_dir(firmware::workspace_root()).args(args);
            if let Some((key, value)) = env {
                command.env(key, value);
            }
            let status = command
                .status()
                .with_context(|| format!("running cargo {}", args.join(" ")))?;
            if !status.success() {
                failed.push(name.to_string());
            }
            Ok(())
        };
    step(
        "cargo fmt --check",
        &["fmt", "--all", "--", "--check"],
        None,
    )?;
    // The launcher is a workspace of its own (.cargo/config.toml says why):
    // `--all` and `--workspace` do not reach it.
    step(
        "cargo fmt --check, launcher",
        &["fmt", "--manifest-path", LAUNCHER_MANIFEST, "--", "--check"],
        None,
    )?;
    let host: Vec<&str> = [
        "clippy",
        "--workspace",
        "--exclude",
        "poolbed-firmware",
        "--all-targets",
    ]
    .into_iter()
    .chain(deny)
    .collect();
    step("clippy, host crates", &host, None)?;
    let launcher: Vec<&str> = [
        "clippy",
        "--manifest-path",
        LAUNCHER_MANIFEST,
        "--all-targets",
    ]
    .into_iter()
    .chain(deny)
    .collect();
    step("clippy, launcher", &launcher, None)?;
    let target: Vec<&str> = [
        "clippy",
        "--package",
        "poolbed-firmware",
        "--target",
        crate::setup::TARGET,
        "--release",
    ]
    .into_iter()
    .chain(deny)
    .collect();
    step(
        "clippy, firmware (aarch64-unknown-none)",
        &target,
        Some(("POOLBED_TRACE_BIN", trace.as_path())),
    )?;
    if !failed.is_empty() {
        bail!("lint failed: {}", failed.join(", "));
    }
    println!("lint: clean");
    Ok(ExitCode::SUCCESS)
}
