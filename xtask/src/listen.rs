//! `cargo xtask listen`: the firmware's UART stream from a real Pi 3 (a serial
//! device, or a file captured from one), decoded and reported exactly as
//! `cargo xtask run` does for QEMU.

use crate::decode::{Decoded, Decoder};
use anyhow::{bail, Context, Result};
use std::cell::Cell;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ListenArgs {
    /// A serial device (e.g. /dev/ttyUSB0) or a file holding a capture of the
    /// UART's bytes.
    pub source: PathBuf,
    /// Baud rate of a serial device (the firmware's rate with
    /// `init_uart_clock=48000000`).
    #[arg(long, default_value_t = 921_600)]
    pub baud: u32,
    /// The firmware ELF the Pi runs: its defmt table decodes the stream
    /// (default: the last `cargo xtask build`).
    #[arg(long, value_name = "FILE")]
    pub elf: Option<PathBuf>,
    /// Directory for the report (default target/report).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Give up on a serial device after this many seconds without a byte.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub silence: u64,
}

/// The firmware ELF of the last `cargo xtask build` (or `sdcard`).
pub fn default_elf() -> PathBuf {
    crate::firmware::target_dir()
        .join(crate::setup::TARGET)
        .join("release")
        .join("kernel8")
}

/// `cargo xtask listen`.
pub fn run(args: ListenArgs) -> Result<ExitCode> {
    let elf_path = args.elf.clone().unwrap_or_else(default_elf);
    let elf = std::fs::read(&elf_path).with_context(|| {
        format!(
            "reading the firmware ELF {} (build it with `cargo xtask build`, or name it with --elf)",
            elf_path.display()
        )
    })?;
    let mut decoder = Decoder::from_elf(&elf).context("reading the defmt table of the ELF")?;
    let mut progress = report::live::Progress::new();
    let mut collector = records::Collector::new();
    let mut last_line = String::from("none");
    let finished = Cell::new(false);
    let mut on_event = |event: Decoded| match event {
        Decoded::Log(line) => {
            last_line = line.to_string();
            progress.println(&last_line);
        }
        Decoded::Record(record) => {
            progress.on_record(&record);
            finished.set(finished.get() || matches!(*record, records::Record::Finished { .. }));
            if let Err(e) = collector.push(*record) {
                progress.println(&format!("warning: {e}"));
            }
        }
        Decoded::Malformed(text) => progress.println(&format!("warning: {text}")),
    };

    let is_device = std::fs::metadata(&args.source)
        .with_context(|| format!("{}", args.source.display()))?
        .file_type()
        .is_char_device();
    if is_device {
        read_serial(&args, &finished, &mut |bytes| {
            decoder.feed(bytes, &mut on_event)
        })?;
    } else {
        let mut file = std::fs::File::open(&args.source)
            .with_context(|| format!("opening {}", args.source.display()))?;
        read_to_end(&mut file, &mut |bytes| decoder.feed(bytes, &mut on_event))?;
    }
    decoder.finish(&mut on_event);
    progress.finish();

    let Some(exit_code) = collector.exit_code else {
        bail!(
            "the stream from {} ended before the firmware finished (last line: {last_line})",
            args.source.display()
        );
    };
    if collector.trace.is_some() {
        let out = crate::report_out::dir(args.out);
        crate::report_out::write(&collector, &out)?;
    } else {
        crate::run::show_bringup(&collector, args.out)?;
    }
    println!("host: firmware exit code {exit_code}");
    Ok(ExitCode::from(exit_code.min(255) as u8))
}

fn read_to_end(input: &mut dyn Read, on_bytes: &mut dyn FnMut(&[u8])) -> Result<()> {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match input.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => on_bytes(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads a serial device (8N1, raw) until the firmware's `Finished` record
/// has been decoded (plus half a second for its last log lines: on silicon it
/// then parks), or until the line stays silent for `--silence` seconds.
fn read_serial(
    args: &ListenArgs,
    finished: &Cell<bool>,
    on_bytes: &mut dyn FnMut(&[u8]),
) -> Result<()> {
    let mut port = serialport::new(args.source.to_string_lossy(), args.baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(Duration::from_millis(100))
        .open()
        .with_context(|| format!("opening {} at {} baud", args.source.display(), args.baud))?;
    eprintln!(
        "listening on {} at {} baud: power the Pi on now",
        args.source.display(),
        args.baud
    );
    let silence = Duration::from_secs(args.silence);
    let mut buffer = [0u8; 4096];
    let mut heard = Instant::now();
    let mut finished_at: Option<Instant> = None;
    loop {
        match port.read(&mut buffer) {
            Ok(0) => {}
            Ok(n) => {
                heard = Instant::now();
                on_bytes(&buffer[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e).context(format!("reading {}", args.source.display())),
        }
        if finished.get() {
            let at = *finished_at.get_or_insert_with(Instant::now);
            if at.elapsed() > Duration::from_millis(500) {
                return Ok(());
            }
        }
        if heard.elapsed() > silence {
            bail!(
                "{} was silent for {} s: is the Pi powered, running the firmware of this ELF, and wired to GPIO 14/15?",
                args.source.display(),
                args.silence
            );
        }
    }
}
