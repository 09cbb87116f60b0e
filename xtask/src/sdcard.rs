//! `cargo xtask sdcard`: a card image a Pi 3 boots this firmware from
//! (`target/sdcard/poolbed-sdcard.img`: MBR, one FAT32 partition, written
//! without root by `card_image`) and the same files in `target/sdcard/boot/`
//! for copying onto a card that already has a FAT partition. The Pi's boot
//! files come from `boot_files` (given, installed, cached, or fetched with
//! apt-get download).

use crate::firmware::{self, BuildOptions};
use anyhow::{Context, Result};
use protocol::{Command, ALL_COMMANDS, COMMAND_ADDR};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The image's file name inside the output directory.
pub const IMAGE_NAME: &str = "poolbed-sdcard.img";

#[derive(clap::Args)]
pub struct SdcardArgs {
    #[command(flatten)]
    pub build: BuildOptions,
    /// Output directory: the image and boot/ go here (default target/sdcard).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where bootcode.bin, start.elf and fixup.dat are (default: Debian's
    /// raspi-firmware if installed, else fetched with apt-get download and
    /// cached under target/).
    #[arg(long, value_name = "DIR")]
    pub boot_firmware: Option<PathBuf>,
    /// The firmware mode (default runner: take traces from `cargo xtask run
    /// --board`; e.g. replay, bringup, boot-checks), placed by config.txt the
    /// way QEMU's loader places it.
    #[arg(long, value_name = "NAME")]
    pub mode: Option<String>,
}

/// What [`build_card`] wrote.
pub struct Card {
    pub image: PathBuf,
    pub boot_dir: PathBuf,
    /// (name, bytes) of every file on the card.
    pub files: Vec<(String, Vec<u8>)>,
    pub elf: PathBuf,
    pub boot_files: String,
    /// Writing the image and boot/ (the firmware build and the boot files'
    /// lookup not included).
    pub write_time: Duration,
}

/// Builds the firmware and writes the card image and boot/ into `out`.
pub fn build_card(
    build: &BuildOptions,
    command: Command,
    boot_firmware: Option<&Path>,
    out: &Path,
) -> Result<Card> {
    let built = firmware::build(build)?;
    let boot = crate::boot_files::locate(boot_firmware)?;
    let kernel = std::fs::read(&built.image)
        .with_context(|| format!("reading {}", built.image.display()))?;
    let config = format!("{}{}", config_txt(), boot.config_comment());
    let mut files: Vec<(String, Vec<u8>)> = boot
        .card_files()
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect();
    files.push(("config.txt".into(), config.into_bytes()));
    files.push(("kernel8.img".into(), kernel));
    // Always written, replay included: the page at COMMAND_ADDR survives a
    // warm reboot, so a card without the file could run the previous mode.
    files.push(("command.bin".into(), command_bin(command).to_vec()));
    let pairs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let started = Instant::now();
    let image = out.join(IMAGE_NAME);
    crate::card_image::write_image(&image, &pairs)?;
    let boot_dir = out.join("boot");
    crate::card_image::write_boot_dir(&boot_dir, &pairs, &[])?;
    Ok(Card {
        image,
        boot_dir,
        files,
        elf: built.elf,
        boot_files: boot.describe(),
        write_time: started.elapsed(),
    })
}

/// `cargo xtask sdcard`.
pub fn run(args: SdcardArgs) -> Result<ExitCode> {
    let command = match &args.mode {
        None => Command::Runner,
        Some(name) => Command::from_name(name).with_context(|| {
            let names: Vec<_> = ALL_COMMANDS.iter().map(|c| c.name()).collect();
            format!("unknown mode `{name}`; modes: {}", names.join(", "))
        })?,
    };
    let out = args
        .out
        .unwrap_or_else(|| firmware::target_dir().join("sdcard"));
    let started = Instant::now();
    let card = build_card(&args.build, command, args.boot_firmware.as_deref(), &out)?;
    println!("boot files: {}", card.boot_files);
    println!(
        "card image: {} ({} MiB; written in {:.2} s, {:.1} s in all)",
        card.image.display(),
        std::fs::metadata(&card.image)?.len() >> 20,
        card.write_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "the same files for an existing FAT partition: {}",
        card.boot_dir.display()
    );
    println!(
        "write it (replace sdX with the card; every byte on it is lost): sudo dd if={} of=/dev/sdX bs=4M conv=fsync",
        card.image.display()
    );
    let elf = card.elf.display();
    if command == Command::Runner {
        println!("then: cargo xtask run --board /dev/ttyUSB0 --elf {elf} [--trace F]");
    } else {
        println!("then: cargo xtask listen /dev/ttyUSB0 --elf {elf}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The command word, as the firmware reads it at COMMAND_ADDR: the same eight
/// bytes QEMU's loader writes.
fn command_bin(command: Command) -> [u8; 8] {
    command.loader_data().to_le_bytes()
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
