//! `cargo xtask run`: build, boot under QEMU, decode live, collect records.

use crate::decode::{Decoded, Decoder, LogLine};
use crate::firmware::{self, BuildOptions, Built};
use crate::qemu::{self, Ending, FirmwareCommand, Limits, QemuRun};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The check against the board's memory and the prediction of QEMU time.
pub mod preflight;

/// `cargo xtask run` arguments.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub build: BuildOptions,
    /// Give up after this many seconds in all (default: three times the
    /// predicted QEMU time plus two minutes; with --board, 120 s per wait).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Stop QEMU when the firmware sends no record or log line for this
    /// many seconds (it is stuck); the runs finished so far are reported.
    /// Default: 60 s, or three times the longest silence the simulator
    /// predicts (a tenth of the longest run) when that is more.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub watchdog: Option<u64>,
    /// Directory for the report (default target/report).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Push the trace over this serial line to a board running the card's
    /// firmware (the runner) instead of booting QEMU: /dev/ttyUSB0, or the
    /// pty of a QEMU started with `-serial pty`.
    #[arg(long, value_name = "DEVICE")]
    pub board: Option<PathBuf>,
    /// Baud rate of the --board line.
    #[arg(long, default_value_t = 921_600, requires = "board")]
    pub baud: u32,
    /// With --board: the firmware ELF the board runs, whose defmt table
    /// decodes its stream (default: the last `cargo xtask build`).
    #[arg(long, value_name = "FILE", requires = "board")]
    pub elf: Option<PathBuf>,
}

/// Everything one boot produced.
#[derive(Debug)]
pub struct Session {
    /// The records, in order, folded into a collector.
    pub collector: records::Collector,
    /// Every record as received (tests look at them directly).
    pub records: Vec<records::Record>,
    /// Every human log line.
    pub log: Vec<LogLine>,
    /// Descriptions of skipped bytes.
    pub malformed: Vec<String>,
    /// QEMU's exit code (the firmware's semihosting exit code).
    pub exit_code: i32,
    /// From launch to the first decoded line.
    pub first_line_after: Option<Duration>,
    /// From launch to the first byte on the serial port.
    pub first_byte_after: Option<Duration>,
    pub elapsed: Duration,
    /// Why the host stopped QEMU before the firmware ended the run
    /// (watchdog, overall limit, Ctrl-C, QEMU killed); None when it exited.
    pub stopped: Option<String>,
}

impl Session {
    /// Whether any log line contains `text`.
    pub fn log_contains(&self, text: &str) -> bool {
        self.log.iter().any(|l| l.message.contains(text))
    }
}

/// Boots `built` under QEMU with `command`, decoding as bytes arrive; every
/// decoded line and record is shown to `observe` as it arrives (the live
/// view). Fails if QEMU had to be stopped (`timeout` is the overall limit,
/// the watchdog has its default): for the target tests, where a stop is a
/// failure.
pub fn boot_and_collect(
    built: &Built,
    command: Option<FirmwareCommand>,
    timeout: Duration,
    observe: &mut dyn FnMut(&Decoded),
) -> Result<Session> {
    let session = boot_and_collect_with(built, command, Limits::with_overall(timeout), observe)?;
    if let Some(why) = &session.stopped {
        let last = session
            .log
            .last()
            .map_or("none".to_string(), |l| l.to_string());
        bail!("{why}; the firmware did not finish (last decoded line: {last})");
    }
    Ok(session)
}

/// As [`boot_and_collect`], but a stop (watchdog, limit, Ctrl-C, QEMU
/// killed) is no error: the session says why in `stopped` and holds what
/// arrived before it.
pub fn boot_and_collect_with(
    built: &Built,
    command: Option<FirmwareCommand>,
    limits: Limits,
    observe: &mut dyn FnMut(&Decoded),
) -> Result<Session> {
    boot_and_collect_with_argument(built, command, 0, limits, observe)
}

/// As [`boot_and_collect_with`], with the command's argument.
pub fn boot_and_collect_with_argument(
    built: &Built,
    command: Option<FirmwareCommand>,
    argument: u16,
    limits: Limits,
    observe: &mut dyn FnMut(&Decoded),
) -> Result<Session> {
    crate::setup::ensure_qemu()?;
    let elf =
        std::fs::read(&built.elf).with_context(|| format!("reading {}", built.elf.display()))?;
    let mut decoder =
        Decoder::from_elf(&elf).context("reading the defmt table of the firmware ELF")?;
    let mut session = Session {
        collector: records::Collector::new(),
        records: Vec::new(),
        log: Vec::new(),
        malformed: Vec::new(),
        exit_code: -1,
        first_line_after: None,
        first_byte_after: None,
        elapsed: Duration::ZERO,
        stopped: None,
    };
    let start = std::time::Instant::now();
    // Returns whether the event is progress (a line or a record) for the watchdog.
    let mut on_event = |event: Decoded, session: &mut Session| -> bool {
        if session.first_line_after.is_none() {
            session.first_line_after = Some(start.elapsed());
        }
        observe(&event);
        match event {
            Decoded::Log(line) => session.log.push(line),
            Decoded::Record(record) => {
                // The runner repeats Ready while it waits for a trace that
                // cannot come over `-serial stdio`: waiting, not progress.
                let progress = !matches!(*record, records::Record::Ready { .. });
                if let Err(e) = session.collector.push((*record).clone()) {
                    eprintln!("warning: {e}");
                }
                session.records.push(*record);
                return progress;
            }
            Decoded::Malformed(text) => {
                eprintln!("warning: {text}");
                session.malformed.push(text);
                return false;
            }
        }
        true
    };
    let run = QemuRun {
        image: built.image.clone(),
        command,
        argument,
        limits,
    };
    let outcome = qemu::run(&run, &mut |bytes| {
        let mut progressed = false;
        decoder.feed(bytes, &mut |e| progressed |= on_event(e, &mut session));
        progressed
    })?;
    decoder.finish(&mut |e| {
        on_event(e, &mut session);
    });
    session.elapsed = outcome.elapsed;
    session.first_byte_after = outcome.first_byte_after;
    if let Some(why) = outcome.ending.stop_reason() {
        if !outcome.stderr.trim().is_empty() {
            eprintln!("QEMU said:\n{}", outcome.stderr.trim_end());
        }
        session.stopped = Some(why);
        return Ok(session);
    }
    if let Ending::Exited(code) = outcome.ending {
        session.exit_code = code;
        // QEMU's own failures (bad arguments, missing image) print to stderr.
        if session.log.is_empty() && session.records.is_empty() {
            bail!(
                "QEMU exited with code {code} before the firmware said anything{}",
                if outcome.stderr.trim().is_empty() {
                    String::new()
                } else {
                    format!(":\n{}", outcome.stderr.trim_end())
                }
            );
        }
        if let Some(finished) = session.collector.exit_code {
            if finished as i32 & 0xff != code {
                eprintln!(
                    "warning: the firmware reported exit code {finished} but QEMU exited with {code}"
                );
            }
        }
    }
    Ok(session)
}

/// `cargo xtask run`: build, check that the replay fits the board's memory
/// and predict its time, boot, show the log and progress live, then the
/// table, and write the report directory. A run stopped before the firmware
/// ended it (watchdog, limit, Ctrl-C, a firmware fault, QEMU dying) still
/// writes the report of every run that finished, marked incomplete, and
/// exits non-zero.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    // Before the build and the replay, so neither ends in an error about where to write.
    crate::report_out::check_out(&crate::report_out::dir(args.out.clone()))?;
    if let Some(device) = args.board.clone() {
        return run_board(&args, &device);
    }
    let built = crate::setup::ensure_tools_during(|| firmware::build(&args.build))?;
    let work = preflight::check(&args.build, &built)?;
    let estimate = work.qemu_estimate();
    println!("{}", work.describe(estimate));
    let limits = Limits {
        watchdog: args
            .watchdog
            .map_or_else(|| work.watchdog(), Duration::from_secs),
        overall: Some(match args.timeout {
            Some(secs) => Duration::from_secs(secs),
            None => preflight::scaled_limit(estimate),
        }),
    };
    println!(
        "host: overall limit {} (--timeout), watchdog {} without a record (--watchdog)",
        limits.overall.map_or("none".into(), preflight::seconds),
        preflight::seconds(limits.watchdog)
    );
    let mut progress = report::live::Progress::new();
    progress.expect(work.run_plan());
    let mut session = boot_and_collect_with(&built, None, limits, &mut |event| match event {
        Decoded::Log(line) => progress.println(&line.to_string()),
        Decoded::Record(record) => progress.on_record(record),
        Decoded::Malformed(_) => {}
    })?;
    progress.finish();
    if let (Some(byte), Some(line)) = (session.first_byte_after, session.first_line_after) {
        println!(
            "host: first byte {:.3} s and first decoded line {:.3} s after launching QEMU; QEMU ran {:.2} s",
            byte.as_secs_f64(),
            line.as_secs_f64(),
            session.elapsed.as_secs_f64()
        );
    }
    let cut_short = why_incomplete(&session);
    session.collector.incomplete = cut_short.is_some();
    if session.collector.trace.is_some() {
        let out = crate::report_out::dir(args.out);
        crate::report_out::write(&session.collector, &out)?;
    } else if !show_bringup(&session.collector, args.out)? {
        println!("host: the firmware sent no trace record, so there is no report");
    }
    if let Some(why) = cut_short {
        let finished = session
            .collector
            .runs
            .iter()
            .filter(|r| r.result.is_some())
            .count();
        eprintln!(
            "error: the replay did not finish: {why}; the report is marked incomplete and holds the {finished} of {} runs that finished",
            work.runs()
        );
        return Ok(ExitCode::from(if session.stopped.is_some() {
            STOPPED_EXIT_CODE
        } else {
            session.exit_code.clamp(1, 255) as u8
        }));
    }
    println!("host: firmware exit code {}", session.exit_code);
    Ok(ExitCode::from(session.exit_code.clamp(0, 255) as u8))
}

/// `run`'s exit code when the host stopped QEMU (watchdog, limit, Ctrl-C,
/// QEMU killed): not one the firmware uses (`protocol::exit_code`).
pub const STOPPED_EXIT_CODE: u8 = 3;

/// Why a session's replay is not whole, if it is not: the host stopped
/// QEMU, the firmware ended (a panic, an exception) with a run unfinished
/// or without its Finished record, or frames were lost.
fn why_incomplete(session: &Session) -> Option<String> {
    if let Some(why) = &session.stopped {
        return Some(why.clone());
    }
    let unfinished = session.collector.runs.iter().find(|r| r.result.is_none());
    match (unfinished, session.collector.exit_code) {
        (Some(run), _) => Some(format!(
            "the firmware ended with exit code {} during run {} ({}/{}, {} of {} events; see its log above)",
            session.exit_code, run.run, run.policy, run.mover, run.events_done, run.events
        )),
        (None, None) if session.collector.trace.is_some() => Some(format!(
            "the firmware ended with exit code {} without its Finished record",
            session.exit_code
        )),
        // QEMU's UART loses nothing; a board's line can. What a lost frame
        // held is unknown, so the report cannot claim to be whole.
        _ if session.collector.lost_frames > 0 => Some(format!(
            "{} frame(s) of the record stream were lost on the line and not decoded",
            session.collector.lost_frames
        )),
        _ => None,
    }
}

/// Shows a bring-up stream's table and writes its directory (bringup.json,
/// records.bin, index.html); `false` when the stream is no bring-up.
pub fn show_bringup(collector: &records::Collector, out: Option<PathBuf>) -> Result<bool> {
    let Some(bringup) = collector.bringup_report() else {
        return Ok(false);
    };
    print!("{}", report::bringup::render(&bringup));
    let dir = crate::report_out::dir(out);
    if let Some(files) = crate::report_out::write_bringup(collector, &dir)? {
        println!(
            "report: {} ({} files; open index.html)",
            dir.display(),
            files.len()
        );
    }
    Ok(true)
}

/// What one trace pushed to a board gave.
pub struct BoardRun {
    pub push: crate::board::PushOutcome,
    /// The report stream (empty when the trace was refused).
    pub collector: records::Collector,
}

/// The compiled trace `build` names (the default trace without one), in
/// memory: `firmware::trace_bin`'s file is the firmware's embedded trace,
/// and rewriting it would rebuild the firmware on the next build.
fn compile_for_board(build: &BuildOptions) -> Result<Vec<u8>> {
    let source = build
        .trace
        .clone()
        .unwrap_or_else(|| firmware::workspace_root().join(firmware::DEFAULT_TRACE));
    let bytes = crate::trace_cmd::compile_lenient(&source)?;
    eprintln!(
        "host: pushing trace {} ({} bytes compiled)",
        source.display(),
        bytes.len()
    );
    Ok(bytes)
}

/// Pushes the trace `build` names (compiled as `cargo xtask build` would) to
/// the runner on `link` and collects its report; `observe` sees every
/// decoded event as it arrives.
pub fn push_trace(
    link: &mut crate::board::Link,
    build: &BuildOptions,
    fault: crate::board::Fault,
    timeout: Duration,
    observe: &mut dyn FnMut(&Decoded),
) -> Result<BoardRun> {
    let trace = compile_for_board(build)?;
    let mut seen = |event: &Decoded| observe(event);
    let pool_bytes = build.effective_pool_size();
    let fits = |room: crate::board::BoardRoom| preflight::check_board(&trace, pool_bytes, room);
    let push = crate::board::push(link, &trace, pool_bytes, fault, timeout, &fits, &mut seen)?;
    let collector = match &push.result {
        crate::board::Pushed::Accepted { .. } => crate::board::collect(link, timeout, &mut seen)?,
        crate::board::Pushed::Refused(_) => records::Collector::new(),
    };
    Ok(BoardRun { push, collector })
}

/// `cargo xtask run --board DEVICE`: the same output and report as under
/// QEMU, from a board running the runner.
fn run_board(args: &RunArgs, device: &std::path::Path) -> Result<ExitCode> {
    if args.build.verify.is_some() {
        bail!("--verify is built into the firmware: build the card with `cargo xtask sdcard --verify ...`");
    }
    let elf_path = args.elf.clone().unwrap_or_else(crate::listen::default_elf);
    let elf = std::fs::read(&elf_path).with_context(|| {
        format!(
            "reading the firmware ELF {} (build it with `cargo xtask sdcard`, or name it with --elf)",
            elf_path.display()
        )
    })?;
    let mut link = crate::board::Link::open(device, args.baud, &elf)?;
    eprintln!(
        "host: waiting for the runner on {} at {} baud (reset the board if it is busy)",
        device.display(),
        args.baud
    );
    let mut progress = report::live::Progress::new();
    let board_run = push_trace(
        &mut link,
        &args.build,
        crate::board::Fault::None,
        Duration::from_secs(args.timeout.unwrap_or(qemu::DEFAULT_TIMEOUT_SECS)),
        &mut |event| match event {
            Decoded::Log(line) => progress.println(&line.to_string()),
            Decoded::Record(record) => progress.on_record(record),
            Decoded::Malformed(_) => {}
        },
    )?;
    let push = &board_run.push;
    if let crate::board::Pushed::Refused(reason) = &push.result {
        bail!("the board refused the trace: {reason}");
    }
    progress.finish();
    let collector = board_run.collector;
    let out = crate::report_out::dir(args.out.clone());
    crate::report_out::write(&collector, &out)?;
    let code = collector.exit_code.unwrap_or(u32::MAX);
    println!("host: firmware exit code {code}");
    Ok(ExitCode::from(code.min(255) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(collector: records::Collector, exit_code: i32) -> Session {
        Session {
            collector,
            records: Vec::new(),
            log: Vec::new(),
            malformed: Vec::new(),
            exit_code,
            first_line_after: None,
            first_byte_after: None,
            elapsed: Duration::ZERO,
            stopped: None,
        }
    }

    #[test]
    fn lost_frames_make_a_finished_replay_incomplete() {
        let whole = records::Collector {
            exit_code: Some(0),
            ..Default::default()
        };
        assert_eq!(why_incomplete(&session(whole.clone(), 0)), None);
        let lossy = records::Collector {
            lost_frames: 2,
            ..whole
        };
        let why = why_incomplete(&session(lossy, 0)).expect("lost frames are not a whole replay");
        assert!(
            why.starts_with("2 frame(s) of the record stream were lost"),
            "{why}"
        );
    }

    #[test]
    fn a_host_stop_is_named_first() {
        let mut s = session(records::Collector::default(), 0);
        s.stopped = Some("the watchdog fired".into());
        assert_eq!(why_incomplete(&s).as_deref(), Some("the watchdog fired"));
    }
}
