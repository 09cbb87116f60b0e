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
    /// The firmware mode (default replay; e.g. bringup, boot-checks), placed
    /// by config.txt the way QEMU's loader places it.
    #[arg(long, value_name = "NAME")]
    pub mode: Option<String>,
}

/// `cargo xtask sdcard`.
pub fn run(args: SdcardArgs) -> Result<ExitCode> {
    let command = match &args.mode {
        None => Command::Replay,
        Some(name) => Command::from_name(name).with_context(|| {
            let names: Vec<_> = ALL_COMMANDS.iter().map(|c| c.name()).collect();
            format!("unknown mode `{name}`; modes: {}", names.join(", "))
        })?,
    };
    let built = firmware::build(&args.build)?;
    let out = args
        .out
        .unwrap_or_else(|| firmware::target_dir().join("sdcard"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::copy(&built.image, out.join("kernel8.img")).context("copying kernel8.img")?;

    // Always written, replay included: the page at COMMAND_ADDR survives a
    // warm reboot, so a card without the file could run the previous mode.
    write_command(&out, command)?;
    let config = config_txt();
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
fn command_bin(command: Command) -> [u8; 8] {
    command.loader_data().to_le_bytes()
}

fn write_command(out: &std::path::Path, command: Command) -> Result<()> {
    std::fs::write(out.join("command.bin"), command_bin(command)).context("writing command.bin")
}

/// `config.txt`: only what this firmware needs, each line with the reason
/// (the Raspberry Pi config.txt documentation for each option). What is
/// deliberately absent is said too.
pub fn config_txt() -> String {
    format!(
        "\
# poolbed: bare-metal firmware for the Raspberry Pi 3 (written by cargo xtask sdcard)
# Start the ARM cores in 64-bit mode (the default on a Pi 3 is 32-bit).
arm_64bit=1
# The image to load at 0x80000 (named explicitly rather than relying on the
# default name for 64-bit mode).
kernel=kernel8.img
# The PL011's clock: 48 MHz makes 921600 baud reachable (IBRD 3, FBRD 16,
# 0.16 % fast). Set rather than trusting the default of whatever boot
# firmware is on the card.
init_uart_clock=48000000
# The command word (the mode to run) at {addr:#x}, the page below the image;
# always present so that a warm reboot cannot run the previous mode again.
initramfs command.bin {addr:#x}
# Not here, on purpose:
# - enable_uart=1: with the mini UART primary (the Pi 3 default) it pins
#   core_freq to 250 MHz, the clock of the DMA engine; this firmware uses the
#   PL011 and routes it to GPIO 14/15 itself (ALT0).
# - dtoverlay=disable-bt: overlays apply to a device tree, and this card has
#   none; the firmware's own GPIO set-up is what frees GPIO 14/15.
# - clock settings: none are needed for the firmware's SET_CLOCK_RATE to the
#   maxima that GET_MAX_CLOCK_RATE reports (arm_freq and core_freq defaults);
#   force_turbo would only pin them.
",
        addr = COMMAND_ADDR
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings lines (no comments, no blank lines).
    fn settings(text: &str) -> Vec<&str> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    #[test]
    fn config_txt_holds_only_what_is_needed_each_with_a_reason() {
        let text = config_txt();
        assert_eq!(
            settings(&text),
            [
                "arm_64bit=1",
                "kernel=kernel8.img",
                "init_uart_clock=48000000",
                "initramfs command.bin 0x7f000",
            ]
        );
        // Every setting has a comment line right above it.
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.is_empty() && !line.starts_with('#') {
                assert!(
                    i > 0 && lines[i - 1].starts_with('#'),
                    "no reason above {line}"
                );
            }
        }
        assert!(!settings(&text).iter().any(|l| l.starts_with("enable_uart")
            || l.starts_with("dtoverlay")
            || l.starts_with("force_turbo")));
    }

    #[test]
    fn the_command_word_is_magic_then_number_little_endian() {
        assert_eq!(&command_bin(Command::Replay), b"PBCM\x01\0\0\0");
        assert_eq!(&command_bin(Command::Bringup)[4..], &[7, 0, 0, 0]);
        assert_eq!(
            protocol::CommandWord::decode(
                u32::from_le_bytes(command_bin(Command::Bringup)[..4].try_into().unwrap()),
                7
            ),
            protocol::CommandWord::Known(Command::Bringup)
        );
    }
}
