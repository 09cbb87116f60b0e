//! `cargo xtask <verb>`: everything a user or CI does, in one place.

mod a53;
mod board;
mod boot_files;
mod card_image;
mod decode;
mod firmware;
mod lint;
mod listen;
mod qemu;
mod record_convert;
mod recorder_cmd;
mod report_cmd;
mod report_out;
mod run;
mod sdcard;
mod setup;
mod sim;
mod size;
mod test;
mod trace_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Pool testbed: build, run and report",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the firmware: ELF and kernel8.img.
    Build(firmware::BuildArgs),
    /// Build the firmware, boot it under QEMU raspi3b, decode its output and write the report.
    Run(run::RunArgs),
    /// Decode a real Pi's UART stream (a serial device or a capture file) and write the report.
    Listen(listen::ListenArgs),
    /// Fill a directory with what a Pi 3's SD card boot partition needs.
    Sdcard(sdcard::SdcardArgs),
    /// Host tests, then the tests that run on the target under QEMU.
    Test(test::TestArgs),
    /// cargo fmt --check and clippy -D warnings, host crates and firmware (what CI checks).
    Lint(lint::LintArgs),
    /// Replay a trace through the pool core on the host with a modelled mover.
    Sim(sim::SimArgs),
    /// Convert recorder raw files (several processes merged) to a vc4 `@@@` trace.
    RecordConvert(record_convert::RecordConvertArgs),
    /// Build the LD_PRELOAD recorder for the host or a Pi and print how to use it.
    Recorder(recorder_cmd::RecorderArgs),
    /// Check a trace or print its statistics.
    Trace(trace_cmd::TraceArgs),
    /// Render a saved report.json (or record stream) again.
    Report(report_cmd::ReportArgs),
    /// Show two results side by side, with their differences.
    Compare(report_cmd::CompareArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Build(args) => firmware::run(args).map(|_| ExitCode::SUCCESS),
        Command::Run(args) => run::run(args),
        Command::Listen(args) => listen::run(args),
        Command::Sdcard(args) => sdcard::run(args),
        Command::Test(args) => test::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Sim(args) => sim::run(args),
        Command::RecordConvert(args) => record_convert::run(args),
        Command::Recorder(args) => recorder_cmd::run(args),
        Command::Trace(args) => trace_cmd::run(args),
        Command::Report(args) => report_cmd::report(args),
        Command::Compare(args) => report_cmd::compare(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
