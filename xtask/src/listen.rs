//! `cargo xtask listen`: the firmware's UART stream from a real Pi 3 (a serial
//! device, or a file captured from one), decoded and reported exactly as
//! `cargo xtask run` does for QEMU.

use crate::decode::{Decoded, Decoder};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::fs::FileTypeExt;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ListenArgs {
    /// A serial device (e.g. /dev/ttyUSB0), a FIFO, or a file holding a
    /// capture of the UART's bytes (several boots are several reports).
    pub source: PathBuf,
    /// Baud rate of a serial device (the firmware's rate with
    /// `init_uart_clock=48000000`).
    #[arg(long, default_value_t = 921_600, value_parser = parse_baud)]
    pub baud: u32,
    /// The firmware ELF the Pi runs: its defmt table decodes the stream
    /// (default: the last `cargo xtask build`); or that ELF's defmt table
    /// as JSON.
    #[arg(long, value_name = "FILE")]
    pub elf: Option<PathBuf>,
    /// Directory for the report (default target/report); earlier boots of
    /// a capture go to DIR/boot-N.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Give up on a serial device or a FIFO after this many seconds without
    /// a byte.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub silence: u64,
}

/// The slowest and fastest rates a Pi 3's PL011 can be set to: its 48 MHz
/// UART clock divided by 16 gives 3 Mbaud at most; below 50 baud nothing
/// the firmware sends would arrive within any silence limit.
pub const BAUD_RANGE: std::ops::RangeInclusive<u32> = 50..=3_000_000;

/// `--baud`: a number in [`BAUD_RANGE`].
fn parse_baud(text: &str) -> Result<u32, String> {
    let baud: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a baud rate (a whole number, e.g. 921600)"))?;
    if !BAUD_RANGE.contains(&baud) {
        return Err(format!(
            "{baud} baud is not a rate a Pi 3's UART can run at: use {} to {} (the firmware runs at 921600)",
            BAUD_RANGE.start(),
            BAUD_RANGE.end()
        ));
    }
    Ok(baud)
}

/// The firmware ELF of the last `cargo xtask build` (or `sdcard`).
pub fn default_elf() -> PathBuf {
    crate::firmware::target_dir()
        .join(crate::setup::TARGET)
        .join("release")
        .join("kernel8")
}

/// The streams of a line, split at boot banners (`records::Streams`, shared
/// with capture files and records.bin).
pub use records::Streams;

/// Gives `record` to `streams`: a collector's complaint is a warning, but a
/// stream of another record protocol is refused outright.
fn take_record(streams: &mut Streams, record: records::Record) -> Result<()> {
    match streams.push(record) {
        Ok(()) => Ok(()),
        Err(e @ records::CollectError::Protocol { .. }) => bail!("{e}"),
        Err(e) => {
            eprintln!("warning: {e}");
            Ok(())
        }
    }
}

/// Reads the board's stream on `link` until a stream finishes (plus half a
/// second for its last log lines), or until the line stays silent for
/// `silence`. Every event goes to `observe` first.
pub fn listen_serial(
    link: &mut crate::board::Link,
    silence: Duration,
    observe: &mut dyn FnMut(&Decoded),
) -> Result<Streams> {
    let mut streams = Streams::default();
    let mut finished_at: Option<Instant> = None;
    link.heard = Instant::now();
    loop {
        if let Some(event) = link.next_event(Duration::from_millis(100))? {
            observe(&event);
            if let Decoded::Record(record) = event {
                take_record(&mut streams, *record)?;
            }
        }
        if streams.finished() {
            let at = *finished_at.get_or_insert_with(Instant::now);
            if at.elapsed() > Duration::from_millis(500) {
                return Ok(streams);
            }
        } else if link.heard.elapsed() > silence {
            bail!(
                "the line was silent for {} s: is the Pi powered, running the firmware of this ELF, and wired to GPIO 14/15?",
                silence.as_secs()
            );
        }
    }
}

/// Reads a capture to its end, handing each read's bytes to the callback.
pub type ReadCapture<'a> = dyn FnMut(&mut dyn FnMut(&[u8])) -> Result<()> + 'a;

/// Decodes a whole capture (a file or a FIFO's bytes, as `read` delivers
/// them) into its streams; one code path with the serial line's: the same
/// decoder, the same split at boot banners.
pub fn decode_capture(
    decoder: &mut Decoder,
    read: &mut ReadCapture<'_>,
    observe: &mut dyn FnMut(&Decoded),
) -> Result<Streams> {
    let mut streams = Streams::default();
    let mut refused: Option<anyhow::Error> = None;
    let mut on_event = |event: Decoded| {
        observe(&event);
        if let Decoded::Record(record) = event {
            if refused.is_none() {
                refused = take_record(&mut streams, *record).err();
            }
        }
    };
    read(&mut |bytes| decoder.feed(bytes, &mut on_event))?;
    decoder.finish(&mut on_event);
    match refused {
        Some(e) => Err(e),
        None => Ok(streams),
    }
}

/// `cargo xtask listen`.
pub fn run(args: ListenArgs) -> Result<ExitCode> {
    // Before a board's minutes of output, not after them.
    crate::report_out::check_out(&crate::report_out::dir(args.out.clone()))?;
    let elf_path = args.elf.clone().unwrap_or_else(default_elf);
    let elf = std::fs::read(&elf_path).with_context(|| {
        format!(
            "reading the firmware ELF {} (build it with `cargo xtask build`, or name it with --elf)",
            elf_path.display()
        )
    })?;
    let mut progress = report::live::Progress::new();
    let mut last_line = String::from("none");
    let mut show = |event: &Decoded| match event {
        Decoded::Log(line) => {
            last_line = line.to_string();
            progress.println(&last_line);
        }
        Decoded::Record(record) => progress.on_record(record),
        Decoded::Malformed(text) => progress.println(&format!("warning: {text}")),
    };

    let file_type = std::fs::metadata(&args.source)
        .with_context(|| format!("{}", args.source.display()))?
        .file_type();
    let silence = Duration::from_secs(args.silence);
    let streams = if file_type.is_char_device() {
        let mut link = crate::board::Link::open(&args.source, args.baud, &elf)?;
        eprintln!(
            "listening on {} at {} baud: power the Pi on now",
            args.source.display(),
            args.baud
        );
        listen_serial(&mut link, silence, &mut show)?
    } else {
        let mut decoder = Decoder::from_elf(&elf).context("reading the defmt table of the ELF")?;
        let source = &args.source;
        let mut read = |on_bytes: &mut dyn FnMut(&[u8])| -> Result<()> {
            if file_type.is_fifo() {
                read_fifo(source, silence, on_bytes)
            } else {
                let mut file = std::fs::File::open(source)
                    .with_context(|| format!("opening {}", source.display()))?;
                read_to_end(&mut file, on_bytes)
            }
        };
        decode_capture(&mut decoder, &mut read, &mut show)?
    };
    progress.finish();
    write_streams(
        streams,
        &crate::report_out::dir(args.out),
        &args.source,
        &last_line,
    )
}

/// Writes the report of every boot in `streams`: the last in `out`, the
/// earlier ones in `out/boot-N`. The exit code is the last boot's; a boot
/// cut short or with lost frames makes the whole an error, after every
/// report is written.
fn write_streams(
    streams: Streams,
    out: &std::path::Path,
    source: &std::path::Path,
    last_line: &str,
) -> Result<ExitCode> {
    let all = streams.into_all();
    let Some((last, earlier)) = all.split_last() else {
        bail!(
            "the stream from {} held no report (last line: {last_line})",
            source.display()
        );
    };
    let mut problems = Vec::new();
    for (i, (collector, dir)) in earlier
        .iter()
        .enumerate()
        .map(|(i, c)| (c, out.join(format!("boot-{}", i + 1))))
        .chain(std::iter::once((last, out.to_path_buf())))
        .enumerate()
    {
        let boot = i + 1;
        if all.len() > 1 {
            println!(
                "host: boot {boot} of {}, report in {}",
                all.len(),
                dir.display()
            );
        }
        if collector.trace.is_some() {
            crate::report_out::write(collector, &dir)?;
        } else {
            crate::run::show_bringup(collector, Some(dir.clone()))?;
        }
        if collector.exit_code.is_none() {
            problems.push(format!(
                "boot {boot} ended before the firmware finished (its report in {} is marked incomplete)",
                dir.display()
            ));
        } else if collector.lost_frames > 0 {
            problems.push(format!(
                "boot {boot} lost {} frame(s) on the line (its report in {} is marked incomplete)",
                collector.lost_frames,
                dir.display()
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the stream from {}: {} (last line: {last_line})",
            source.display(),
            problems.join("; ")
        );
    }
    let exit_code = last.exit_code.unwrap_or(1);
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

/// Reads a FIFO to its end without blocking in `open` or `read`: opened
/// non-blocking, a FIFO with no writer yet reads as empty, so a wait for
/// the first writer and a writer that stays quiet are both bounded by
/// `silence`. The end is the writer closing after it wrote something.
fn read_fifo(
    path: &std::path::Path,
    silence: Duration,
    on_bytes: &mut dyn FnMut(&[u8]),
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("opening the FIFO {}", path.display()))?;
    let mut buffer = [0u8; 64 * 1024];
    let mut heard_anything = false;
    let mut heard = Instant::now();
    loop {
        match fifo.read(&mut buffer) {
            Ok(0) if heard_anything => return Ok(()),
            Ok(n) if n > 0 => {
                heard_anything = true;
                heard = Instant::now();
                on_bytes(&buffer[..n]);
                continue;
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        if heard.elapsed() > silence {
            bail!(
                "the FIFO {} was silent for {} s ({})",
                path.display(),
                silence.as_secs(),
                if heard_anything {
                    "its writer stopped writing"
                } else {
                    "no writer opened it"
                }
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
