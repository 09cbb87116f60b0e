//! `cargo xtask recorder --target TARGET`: builds `libpoolbed_recorder.so`
//! for the host or for a Raspberry Pi's userland and says how to use it.
//!
//! Raspberry Pi OS has two userlands: 64-bit (`aarch64-unknown-linux-gnu`,
//! Pi 3 and later) and 32-bit (`armv7-unknown-linux-gnueabihf`, every Pi 2 and
//! later; a Pi 0/1 is ARMv6 and needs `arm-unknown-linux-gnueabihf`, built the
//! same way). Cross builds install the Rust target with rustup and link with
//! Debian's cross gcc, set per target through `CARGO_TARGET_<TRIPLE>_LINKER`.

use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

#[derive(clap::Args)]
pub struct RecorderArgs {
    /// `host`, `aarch64-unknown-linux-gnu`, `armv7-unknown-linux-gnueabihf` or `arm-unknown-linux-gnueabihf`.
    #[arg(long, default_value = "host")]
    pub target: String,
    /// Build without optimisations (faster to build, slower to run).
    #[arg(long)]
    pub debug: bool,
}

/// A cross target: its triple, the Debian package with its linker, the linker.
pub struct Cross {
    pub triple: &'static str,
    pub package: &'static str,
    pub linker: &'static str,
}

pub const CROSS: [Cross; 3] = [
    Cross {
        triple: "aarch64-unknown-linux-gnu",
        package: "gcc-aarch64-linux-gnu",
        linker: "aarch64-linux-gnu-gcc",
    },
    Cross {
        triple: "armv7-unknown-linux-gnueabihf",
        package: "gcc-arm-linux-gnueabihf",
        linker: "arm-linux-gnueabihf-gcc",
    },
    Cross {
        triple: "arm-unknown-linux-gnueabihf",
        package: "gcc-arm-linux-gnueabihf",
        linker: "arm-linux-gnueabihf-gcc",
    },
];

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn rustup_target(triple: &str) -> anyhow::Result<()> {
    let root = crate::firmware::workspace_root();
    let installed = Command::new("rustup")
        .current_dir(&root)
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == triple)
    {
        return Ok(());
    }
    println!("installing the Rust target {triple} (rustup target add {triple})");
    let status = Command::new("rustup")
        .current_dir(&root)
        .args(["target", "add", triple])
        .status()
        .context("running rustup")?;
    if !status.success() {
        bail!("rustup target add {triple} failed");
    }
    Ok(())
}

/// Builds the recorder; returns the `.so`'s path.
pub fn build(target: &str, release: bool) -> anyhow::Result<PathBuf> {
    let root = crate::firmware::workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--package", "poolbed-recorder"]);
    if release {
        cmd.arg("--release");
    }
    let profile = if release { "release" } else { "debug" };
    let dir = if target == "host" {
        root.join("target").join(profile)
    } else {
        let Some(cross) = CROSS.iter().find(|c| c.triple == target) else {
            let names: Vec<&str> = CROSS.iter().map(|c| c.triple).collect();
            bail!(
                "unknown target {target}: use host or one of {}",
                names.join(", ")
            );
        };
        if !on_path(cross.linker) {
            bail!(
                "the linker {} is missing: install Debian's {} (apt-get install --no-install-recommends {})",
                cross.linker,
                cross.package,
                cross.package
            );
        }
        rustup_target(cross.triple)?;
        let var = format!(
            "CARGO_TARGET_{}_LINKER",
            cross.triple.to_uppercase().replace('-', "_")
        );
        cmd.env(var, cross.linker).args(["--target", cross.triple]);
        root.join("target").join(cross.triple).join(profile)
    };
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("building the recorder for {target} failed");
    }
    let so = dir.join("libpoolbed_recorder.so");
    if !so.exists() {
        bail!("the build left no {}", so.display());
    }
    Ok(so)
}

pub fn run(args: RecorderArgs) -> anyhow::Result<ExitCode> {
    let so = build(&args.target, !args.debug)?;
    println!("built {}", so.display());
    let name = so.file_name().unwrap_or_default().to_string_lossy();
    if args.target == "host" {
        println!(
            "record a program here:\n  LD_PRELOAD={} POOLBED_RECORD_DIR=/tmp PROGRAM ARGS...",
            so.display()
        );
    } else {
        println!("copy it to the Pi and record a program there:");
        println!("  scp {} pi@raspberrypi:", so.display());
        println!("  LD_PRELOAD=$HOME/{name} POOLBED_RECORD_DIR=$HOME PROGRAM ARGS...");
        println!("then copy $HOME/*.vc4raw back and run: cargo xtask record-convert FILE.vc4raw... --out trace.log");
    }
    Ok(ExitCode::SUCCESS)
}
