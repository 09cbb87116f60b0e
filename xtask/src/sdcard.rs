//! `cargo xtask sdcard`: everything the FAT32 boot partition of a Pi 3 needs
//! to boot this firmware, in one directory.

use crate::firmware::{self, BuildOptions};
use anyhow::{Context, Result};
use protocol::{Command, ALL_COMMANDS, COMMAND_ADDR};
use std::path::PathBuf;
use std::process::ExitCode;

/// The Pi's own boot firmware: Debian's `raspi-firmware` package (component
/// non-free-firmware) installs these here.
const RASPI_FIRMWARE: &str = "/usr/lib/raspi-firmware";
const BOOT_FILES: [&str; 3] = ["bootcode.bin", "start.elf", "fixup.dat"];

#[derive(clap::Args)]
pub struct SdcardArgs {
    #[command(flatten)]
    pub build: BuildOptions,
    /// Directory to fill; copy its contents to the card's boot partition
    /// (default target/sdcard).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where bootcode.bin, start.elf and fixup.dat are.
    #[arg(long, value_name = "DIR", default_value = RASPI_FIRMWARE)]
    pub boot_firmware: PathBuf,
    /// A firmware mode other than the replay (e.g. boot-checks), placed by
    /// config.txt the way QEMU's loader places it.
    #[arg(long, value_name = "NAME")]
    pub mode: Option<String>,
}

/// `cargo xtask sdcard`.
pub fn run(args: SdcardArgs) -> Result<ExitCode> {
    let built = firmware::build(&args.build)?;
    let out = args
        .out
        .unwrap_or_else(|| firmware::target_dir().join("sdcard"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::copy(&built.image, out.join("kernel8.img")).context("copying kernel8.img")?;

    // 921600 baud needs the 48 MHz UART clock; Bluetooth must let go of the
    // PL011 (disable-bt) so it reaches GPIO 14/15.
    let mut config = String::from(
        "# poolbed: 64-bit bare metal, PL011 on GPIO 14/15 at 921600 baud\n\
         arm_64bit=1\nkernel=kernel8.img\nenable_uart=1\ndtoverlay=disable-bt\ninit_uart_clock=48000000\n",
    );
    if let Some(name) = &args.mode {
        let command = Command::from_name(name).with_context(|| {
            let names: Vec<_> = ALL_COMMANDS.iter().map(|c| c.name()).collect();
            format!("unknown mode `{name}`; modes: {}", names.join(", "))
        })?;
        write_command(&out, command)?;
        config.push_str(&format!("initramfs command.bin {COMMAND_ADDR:#x}\n"));
    } else {
        let _ = std::fs::remove_file(out.join("command.bin"));
    }
    std::fs::write(out.join("config.txt"), config).context("writing config.txt")?;

    let mut missing = Vec::new();
    for name in BOOT_FILES {
        let from = args.boot_firmware.join(name);
        if from.is_file() {
            std::fs::copy(&from, out.join(name)).with_context(|| format!("copying {name}"))?;
        } else {
            missing.push(name);
        }
    }
    println!("boot partition contents: {}", out.display());
    println!(
        "decode the Pi's UART with: cargo xtask listen /dev/ttyUSB0 --elf {}",
        built.elf.display()
    );
    if missing.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "missing from {}: {} — install Debian's raspi-firmware package (component non-free-firmware) \
         or pass --boot-firmware DIR, then run this again",
        args.boot_firmware.display(),
        missing.join(", ")
    );
    Ok(ExitCode::FAILURE)
}

/// The command word, as the firmware reads it at COMMAND_ADDR: the same eight
/// bytes QEMU's loader writes.
fn write_command(out: &std::path::Path, command: Command) -> Result<()> {
    std::fs::write(out.join("command.bin"), command.loader_data().to_le_bytes())
        .context("writing command.bin")
}
