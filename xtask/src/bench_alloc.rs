//! `cargo xtask bench-alloc`: boots the firmware under QEMU in its
//! `alloc-bench` mode (issue 13), prints the table beside the published
//! dmabuf/ion figures and writes the report directory. The numbers are
//! QEMU's: emulated, not hardware; `cargo xtask sdcard --mode alloc-bench`
//! runs the same mode on a Pi (read with `cargo xtask listen`).

use crate::firmware::{self, BuildOptions};
use crate::qemu::{FirmwareCommand, Limits};
use anyhow::{bail, Result};
use clap::Args;
use protocol::command::ALLOC_BENCH_VERIFY_FULL;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct BenchAllocArgs {
    /// At most this many calls per size (1 to 32767; default: the firmware's
    /// own counts, 2000/200/24/8 under QEMU for 4 KiB/1 MiB/8 MiB/32 MiB)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=32767))]
    pub calls: Option<u16>,
    /// `full`: check every word of every allocation (default: a sample per page)
    #[arg(long, value_parser = ["full", "sample"], default_value = "sample")]
    pub verify: String,
    /// Report directory (default target/report)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overall limit in seconds
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
}

/// The firmware argument: the call cap in the low 15 bits, bit 15 verify-full.
pub fn argument(calls: Option<u16>, verify_full: bool) -> u16 {
    calls.unwrap_or(0) & !ALLOC_BENCH_VERIFY_FULL
        | if verify_full {
            ALLOC_BENCH_VERIFY_FULL
        } else {
            0
        }
}

pub fn run(args: BenchAllocArgs) -> Result<ExitCode> {
    let built = crate::setup::ensure_tools_during(|| firmware::build(&BuildOptions::default()))?;
    let session = crate::run::boot_and_collect_with_argument(
        &built,
        Some(FirmwareCommand::AllocBench),
        argument(args.calls, args.verify == "full"),
        Limits::with_overall(Duration::from_secs(args.timeout)),
        &mut |_| {},
    )?;
    if let Some(why) = &session.stopped {
        bail!("{why}");
    }
    let c = &session.collector;
    if c.alloc_bench.is_empty() {
        for line in &session.log {
            eprintln!("    | {line}");
        }
        bail!(
            "the firmware sent no alloc-bench rows (exit code {})",
            session.exit_code
        );
    }
    print!("{}", report::alloc_bench::render(c));
    let dir = crate::report_out::dir(args.out);
    if let Some(files) = report::alloc_bench::write_dir(c, &dir)? {
        for f in files {
            println!("wrote {}", f.display());
        }
    }
    Ok(if session.exit_code == 0 {
        ExitCode::SUCCESS
    } else {
        for line in session
            .log
            .iter()
            .filter(|l| l.to_string().contains("alloc-bench:"))
            .take(20)
        {
            eprintln!("    | {line}");
        }
        eprintln!(
            "the bench failed: exit code {} (non-zero memory handed out, or a DMA failure; see the log)",
            session.exit_code
        );
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argument_packs_calls_and_verify() {
        assert_eq!(argument(None, false), 0);
        assert_eq!(argument(Some(5), false), 5);
        assert_eq!(argument(Some(5), true), 5 | ALLOC_BENCH_VERIFY_FULL);
        assert_eq!(
            argument(Some(32767), true) & !ALLOC_BENCH_VERIFY_FULL,
            32767
        );
    }
}
