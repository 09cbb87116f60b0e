//! Making sure the tools a build and a QEMU run need are installed.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// The firmware's target.
pub const TARGET: &str = "aarch64-unknown-none";

/// Checks (and where it can, installs) the aarch64 target and QEMU, then
/// does `work` (the firmware build). `RUSTUP_AUTO_INSTALL=0` on these
/// machines means rust-toolchain.toml alone does not install the target;
/// QEMU comes from Debian's `qemu-system-arm`.
///
/// A missing QEMU is installed on another thread while `work` runs. On a new machine the two take
/// about as long as each other (apt-get's download and unpack against
/// cargo's build of the firmware), so a first `cargo xtask run` waits for the
/// longer of them, not for both. Where QEMU cannot be installed (not root),
/// it says so before any work starts.
pub fn ensure_tools_during<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    ensure_target()?;
    if on_path(QEMU) || !(on_path("apt-get") && is_root()) {
        ensure_qemu()?;
        return work();
    }
    std::thread::scope(|scope| {
        let install = scope.spawn(ensure_qemu);
        let done = work();
        let installed = install
            .join()
            .unwrap_or_else(|_| bail!("installing {QEMU} panicked"));
        let done = done?;
        installed?;
        Ok(done)
    })
}

/// The firmware target only (enough for `cargo xtask build`).
pub fn ensure_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if out.status.success() => {
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
            {
                return Ok(());
            }
            eprintln!("xtask: installing the Rust target {TARGET} (rustup target add {TARGET})");
            let status = Command::new("rustup")
                .args(["target", "add", TARGET])
                .status()
                .context("running rustup target add")?;
            if !status.success() {
                bail!("`rustup target add {TARGET}` failed; run it yourself and retry");
            }
            Ok(())
        }
        // No rustup: the target may still be there (e.g. a distribution
        // toolchain); the cargo build will say so clearly if it is not.
        _ => {
            eprintln!("xtask: rustup not found; assuming the toolchain has the {TARGET} target");
            Ok(())
        }
    }
}

/// The QEMU binary the runs use.
pub const QEMU: &str = "qemu-system-aarch64";

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `qemu-system-aarch64` on PATH, installed with apt-get when we are root.
pub fn ensure_qemu() -> Result<()> {
    if on_path(QEMU) {
        return Ok(());
    }
    // Only the emulator: QEMU's recommended packages (graphics, audio, video
    // codecs, firmware for other machines) are for devices raspi3b never uses,
    // and pulling them in tripled the time of a first `cargo xtask run`.
    let command =
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-system-arm";
    if on_path("apt-get") && is_root() {
        eprintln!(
            "xtask: {QEMU} not found. Installing Debian's qemu-system-arm without its \
             recommended packages, because the firmware runs under {QEMU} -M raspi3b \
             (the browser and the recorder's compilers are not needed for this):\n    {command}"
        );
        let status = Command::new("sh")
            .args(["-c", command])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if status.success() && on_path(QEMU) {
            return Ok(());
        }
        bail!("installing {QEMU} with `{command}` failed; install Debian's qemu-system-arm package and retry");
    }
    if on_path("apt-get") && on_path("sudo") {
        bail!("{QEMU} is not installed. Install it with:\n    sudo sh -c '{command}'\nthen retry");
    }
    bail!("{QEMU} is not installed. Install QEMU's system emulator for AArch64 (Debian/Ubuntu: the qemu-system-arm package), then retry")
}
