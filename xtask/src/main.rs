//! `cargo xtask <verb>`: everything a user or CI does, in one place.

mod a53;
mod bench;
mod bench_alloc;
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
mod sweep;
mod test;
mod trace_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Pool testbed: build, run and report",
    version,
    arg_required_else_help = true,
    after_help = "The two commands of the README:\n  \
                  cargo xtask run     # build the firmware, boot it under QEMU, replay the default trace, write the report\n  \
                  cargo xtask test    # host tests, then the tests that run on the target under QEMU\n\n\
                  `cargo xtask <verb> --help` explains a verb, with an example."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Every column in the end table of run, listen, sim and report (by default it
    /// fits 100 columns, or the terminal, with the columns read first)
    #[arg(long, global = true)]
    wide: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Build the firmware: ELF and kernel8.img.
    #[command(
        after_help = "Example:\n  cargo xtask build --trace traces/kmscube-rgba.log.gz --pool-size 24MiB"
    )]
    Build(firmware::BuildArgs),
    /// Build the firmware, boot it under QEMU raspi3b, decode its output and write the report.
    #[command(
        after_help = "Example:\n  cargo xtask run --trace traces/kmscube-rgba.log.gz --pool-size 24MiB"
    )]
    Run(run::RunArgs),
    /// Decode a real Pi's UART stream (a serial device or a capture file) and write the report.
    #[command(after_help = "Example:\n  cargo xtask listen /dev/ttyUSB0")]
    Listen(listen::ListenArgs),
    /// Fill a directory with what a Pi 3's SD card boot partition needs.
    #[command(after_help = "Example:\n  cargo xtask sdcard --mode bringup")]
    Sdcard(sdcard::SdcardArgs),
    /// Host tests, then the tests that run on the target under QEMU.
    #[command(after_help = "Example:\n  cargo xtask test --target-only --filter dma")]
    Test(test::TestArgs),
    /// cargo fmt --check and clippy -D warnings, host crates and firmware (what CI checks).
    #[command(after_help = "Example:\n  cargo xtask lint")]
    Lint(lint::LintArgs),
    /// Replay a trace through the pool core on the host with a modelled mover.
    #[command(
        after_help = "Example:\n  cargo xtask sim --trace traces/openarena-timedemo.log.gz --policy all --pool-size 64MiB"
    )]
    Sim(sim::SimArgs),
    /// How big must the pool be: one trace at every pool size of a range, every policy, in parallel.
    #[command(
        after_help = "Example:\n  cargo xtask sweep --trace traces/glmark2-es2-drm-default.log.gz --pool-sizes 32MiB..160MiB --step 8MiB"
    )]
    Sweep(sweep::SweepArgs),
    /// Speed figures: parse, replay and end to end per policy and trace, placement
    /// scaling, and (with SEED_GIT) the side by side with the reference implementations.
    #[command(
        after_help = "Example:\n  cargo xtask bench --trace traces/openarena-timedemo.log.gz --runs 3"
    )]
    Bench(bench::BenchArgs),
    /// Allocation latency and zeroing (issue 13): the alloc-bench mode under QEMU, beside the published dmabuf/ion figures.
    #[command(after_help = "Example:\n  cargo xtask bench-alloc --calls 100 --verify full")]
    BenchAlloc(bench_alloc::BenchAllocArgs),
    /// Convert recorder raw files (several processes merged) to a vc4 `@@@` trace.
    #[command(
        after_help = "Example:\n  cargo xtask record-convert kmscube-1234.vc4raw --out traces/mine.log.gz"
    )]
    RecordConvert(record_convert::RecordConvertArgs),
    /// Build the LD_PRELOAD recorder for the host or a Pi and print how to use it.
    #[command(after_help = "Example:\n  cargo xtask recorder --target aarch64-unknown-linux-gnu")]
    Recorder(recorder_cmd::RecorderArgs),
    /// Check a trace or print its statistics.
    #[command(
        after_help = "Example:\n  cargo xtask trace check --strict traces/glmark2-200k.log.gz"
    )]
    Trace(trace_cmd::TraceArgs),
    /// Render a saved report.json (or record stream) again.
    #[command(
        after_help = "Example:\n  cargo xtask report target/report/records.bin --out /tmp/again"
    )]
    Report(report_cmd::ReportArgs),
    /// Show two results side by side, with their differences.
    #[command(
        after_help = "Example:\n  cargo xtask compare target/report/report.json /tmp/other/report.json"
    )]
    Compare(report_cmd::CompareArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    report_out::set_wide(cli.wide);
    let outcome = match cli.command {
        Command::Build(args) => firmware::run(args).map(|_| ExitCode::SUCCESS),
        Command::Run(args) => run::run(args),
        Command::Listen(args) => listen::run(args),
        Command::Sdcard(args) => sdcard::run(args),
        Command::Test(args) => test::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchAlloc(args) => bench_alloc::run(args),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every verb's help ends with an example, and every example parses: a
    /// renamed or removed option cannot leave a help text that lies.
    #[test]
    fn every_verb_has_an_example_that_parses() {
        let cli = Cli::command();
        for verb in cli.get_subcommands() {
            let help = verb
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let examples: Vec<&str> = help
                .lines()
                .filter_map(|l| l.trim().strip_prefix("cargo xtask "))
                .collect();
            assert!(!examples.is_empty(), "{} has no example", verb.get_name());
            for example in examples {
                let args = std::iter::once("cargo-xtask").chain(example.split_whitespace());
                let parsed = Cli::try_parse_from(args);
                assert!(
                    parsed.is_ok(),
                    "`cargo xtask {example}`: {:?}",
                    parsed.err()
                );
            }
        }
    }
}
