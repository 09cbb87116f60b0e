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

/// The streams of a line, split at boot banners (the Hello record): a board
/// reset in the middle of a stream ends that stream, which is kept and
/// marked incomplete; the new boot starts a fresh one. Nothing of two boots
/// is ever mixed in one report.
#[derive(Default)]
pub struct Streams {
    /// The stream being received.
    pub current: records::Collector,
    /// Streams cut off by a new boot, each marked incomplete.
    pub incomplete: Vec<records::Collector>,
}

impl Streams {
    /// Takes one record; a collector error is returned as a warning.
    pub fn push(&mut self, record: records::Record) -> Result<(), records::CollectError> {
        if matches!(record, records::Record::Hello { .. }) {
            let old = std::mem::take(&mut self.current);
            let started = old.trace.is_some()
                || !old.runs.is_empty()
                || old.bringup.is_some()
                || !old.checks.is_empty();
            // A stream with nothing but its banner (the runner's boot before
            // the Hello of its first report) is no report at all.
            if started && old.exit_code.is_none() {
                let mut old = old;
                old.incomplete = true;
                self.incomplete.push(old);
            }
        }
        self.current.push(record)
    }

    /// Whether the current stream has finished.
    pub fn finished(&self) -> bool {
        self.current.exit_code.is_some()
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
                if let Err(e) = streams.push(*record) {
                    eprintln!("warning: {e}");
                }
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

/// `cargo xtask listen`.
pub fn run(args: ListenArgs) -> Result<ExitCode> {
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

    let is_device = std::fs::metadata(&args.source)
        .with_context(|| format!("{}", args.source.display()))?
        .file_type()
        .is_char_device();
    let streams = if is_device {
        let mut link = crate::board::Link::open(&args.source, args.baud, &elf)?;
        eprintln!(
            "listening on {} at {} baud: power the Pi on now",
            args.source.display(),
            args.baud
        );
        listen_serial(&mut link, Duration::from_secs(args.silence), &mut show)?
    } else {
        let mut decoder = Decoder::from_elf(&elf).context("reading the defmt table of the ELF")?;
        let mut streams = Streams::default();
        let mut on_event = |event: Decoded| {
            show(&event);
            if let Decoded::Record(record) = event {
                if let Err(e) = streams.push(*record) {
                    eprintln!("warning: {e}");
                }
            }
        };
        let mut file = std::fs::File::open(&args.source)
            .with_context(|| format!("opening {}", args.source.display()))?;
        read_to_end(&mut file, &mut |bytes| decoder.feed(bytes, &mut on_event))?;
        decoder.finish(&mut on_event);
        streams
    };
    progress.finish();

    let out = crate::report_out::dir(args.out);
    for (i, cut) in streams.incomplete.iter().enumerate() {
        let dir = out.join(format!("incomplete-{}", i + 1));
        println!(
            "host: a new boot cut stream {} off; its report is marked incomplete",
            i + 1
        );
        if cut.trace.is_some() {
            crate::report_out::write(cut, &dir)?;
        } else {
            crate::run::show_bringup(cut, Some(dir))?;
        }
    }
    let collector = streams.current;
    let Some(exit_code) = collector.exit_code else {
        bail!(
            "the stream from {} ended before the firmware finished (last line: {last_line})",
            args.source.display()
        );
    };
    if collector.trace.is_some() {
        crate::report_out::write(&collector, &out)?;
    } else {
        crate::run::show_bringup(&collector, Some(out))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use records::Record;

    fn hello() -> Record {
        Record::Hello {
            protocol: records::PROTOCOL_VERSION,
            firmware: "fw".into(),
        }
    }

    fn trace() -> Record {
        Record::Trace(records::TraceInfo {
            name: "t".into(),
            events: 10,
            buffers: 1,
            peak_live_bytes: 4096,
        })
    }

    #[test]
    fn a_new_banner_cuts_a_started_stream_and_drops_a_bare_one() {
        let mut streams = Streams::default();
        // The runner's boot banner, then its first report's banner: the
        // bare first stream is no report.
        streams.push(hello()).unwrap();
        streams.push(hello()).unwrap();
        assert!(streams.incomplete.is_empty());
        streams.push(trace()).unwrap();
        // A reset: the started stream is kept, marked incomplete.
        streams.push(hello()).unwrap();
        assert_eq!(streams.incomplete.len(), 1);
        assert!(streams.incomplete[0].incomplete);
        assert!(streams.incomplete[0].report().unwrap().incomplete);
        assert!(streams.current.trace.is_none() && !streams.current.incomplete);
        streams.push(trace()).unwrap();
        streams.push(Record::Finished { exit_code: 0 }).unwrap();
        assert!(streams.finished());
        // A finished stream followed by a banner is not incomplete.
        streams.push(hello()).unwrap();
        assert_eq!(streams.incomplete.len(), 1);
    }
}
