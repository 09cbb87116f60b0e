//! `cargo xtask test`: the host tests (`cargo test`, the workspace's default
//! members), then the tests that run on the target under QEMU.
//!
//! A target test is one boot of the firmware with a command word, and a
//! checker that reads the decoded records and log lines (never raw bytes).
//! To add one, add an entry to [`target_tests`].

use crate::firmware::{self, BuildOptions};
use crate::qemu::{self, FirmwareCommand};
use crate::run::{boot_and_collect, Session};
use anyhow::{bail, Context, Result};
use object::{Object, ObjectSymbol};
use protocol::check::{self, BlockMode, DmaCheck, Route};
use protocol::exit_code;
use std::process::{Command, ExitCode};
use std::time::Duration;

mod alloc_bench;
mod board;
mod silicon;
mod stops;
use silicon::{check_bringup, check_conditions, check_uart_isolation};

/// `cargo xtask test` arguments.
#[derive(clap::Args)]
pub struct TestArgs {
    /// Only the host tests.
    #[arg(long, conflicts_with = "target_only")]
    pub host_only: bool,
    /// Only the tests on the target under QEMU.
    #[arg(long)]
    pub target_only: bool,
    /// Only target tests whose name contains this.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Limit for each QEMU boot, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = qemu::DEFAULT_TIMEOUT_SECS)]
    pub timeout: u64,
    /// Print the firmware's log of every target test, not only of failures.
    #[arg(long)]
    pub verbose: bool,
}

/// What a checker gets.
pub struct CheckContext<'a> {
    pub session: &'a Session,
    /// The firmware ELF's bytes (symbols for addresses).
    pub elf: &'a [u8],
}

/// A checker: Ok, or what was wrong.
pub type Checker = fn(&CheckContext<'_>) -> Result<(), String>;

/// One test on the target.
pub struct TargetTest {
    pub name: &'static str,
    pub command: FirmwareCommand,
    pub check: Checker,
}

/// The table of target tests, run in this order.
pub fn target_tests() -> Vec<TargetTest> {
    vec![
        TargetTest {
            name: "boot-checks",
            command: FirmwareCommand::BootChecks,
            check: check_boot,
        },
        TargetTest {
            name: "panic-report",
            command: FirmwareCommand::Panic,
            check: check_panic,
        },
        TargetTest {
            name: "data-abort-report",
            command: FirmwareCommand::DataAbort,
            check: check_data_abort,
        },
        TargetTest {
            name: "dma-mover",
            command: FirmwareCommand::DmaTests,
            check: check_dma,
        },
        TargetTest {
            name: "dma-faults",
            command: FirmwareCommand::FaultTests,
            check: check_dma_faults,
        },
        TargetTest {
            name: "replay-default-trace",
            command: FirmwareCommand::Replay,
            check: check_replay,
        },
        TargetTest {
            name: "uart-isolation",
            command: FirmwareCommand::UartIsolation,
            check: check_uart_isolation,
        },
        TargetTest {
            name: "bringup",
            command: FirmwareCommand::Bringup,
            check: check_bringup,
        },
    ]
}

/// `cargo xtask test`.
pub fn run(args: TestArgs) -> Result<ExitCode> {
    if !args.target_only {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        println!("== host tests: cargo test (the workspace's default members)");
        let status = Command::new(cargo)
            .current_dir(firmware::workspace_root())
            .arg("test")
            .status()
            .context("running cargo test")?;
        if !status.success() {
            bail!("host tests failed");
        }
        println!("== host tests: the launcher (a workspace of its own)");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(firmware::workspace_root())
            .args(["test", "--manifest-path", crate::lint::LAUNCHER_MANIFEST])
            .status()
            .context("running cargo test on the launcher")?;
        if !status.success() {
            bail!("the launcher's tests failed");
        }
    }
    if args.host_only {
        return Ok(ExitCode::SUCCESS);
    }

    println!("== target tests under QEMU raspi3b");
    let built = crate::setup::ensure_tools_during(|| firmware::build(&BuildOptions::default()))?;
    let elf =
        std::fs::read(&built.elf).with_context(|| format!("reading {}", built.elf.display()))?;
    // The build refuses an image with such a pair; said here as a result.
    let scan = crate::a53::check(&elf)?;
    println!(
        "firmware check erratum-835769 ... ok ({} instructions of .text, no load/store followed by a 64-bit multiply-accumulate)",
        scan.instructions
    );
    let tests: Vec<TargetTest> = target_tests()
        .into_iter()
        .filter(|t| args.filter.as_deref().is_none_or(|f| t.name.contains(f)))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for test in &tests {
        let outcome = boot_and_collect(
            &built,
            Some(test.command),
            Duration::from_secs(args.timeout),
            &mut |_| {},
        )
        .map_err(|e| format!("{e:#}"))
        .and_then(|session| {
            let verdict = (test.check)(&CheckContext {
                session: &session,
                elf: &elf,
            });
            if verdict.is_err() || args.verbose {
                for line in &session.log {
                    println!("    | {line}");
                }
            }
            verdict
        });
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("target test {} ... ok", test.name);
            }
            Err(why) => {
                failed += 1;
                println!("target test {} ... FAILED: {why}", test.name);
            }
        }
    }
    // The board path: the runner on a pty, as a Pi on a serial line.
    type BoardTest = fn(&firmware::Built, Duration) -> Result<String>;
    let board_tests: [(&str, BoardTest); 4] = [
        ("alloc-bench-short", alloc_bench::short),
        ("sdcard-image", board::sdcard_image),
        ("runner-push", board::runner_push),
        ("listen-reset", board::listen_reset),
    ];
    // Long runs and stops (issue 14); run-heap-too-small rebuilds the
    // firmware with its own trace (and the default one after), so it is last.
    let stop_tests: [(&str, BoardTest); 4] = [
        ("run-watchdog", stops::watchdog),
        ("run-interrupted", stops::interrupted),
        ("run-huge-timeout", stops::huge_timeout),
        ("run-heap-too-small", stops::heap_too_small),
    ];
    for (name, test) in board_tests.into_iter().chain(stop_tests) {
        if !args.filter.as_deref().is_none_or(|f| name.contains(f)) {
            continue;
        }
        let started = std::time::Instant::now();
        match test(&built, Duration::from_secs(args.timeout)) {
            Ok(what) => {
                passed += 1;
                println!(
                    "target test {name} ... ok ({what}; {:.1} s)",
                    started.elapsed().as_secs_f64()
                );
            }
            Err(why) => {
                failed += 1;
                println!("target test {name} ... FAILED: {why:#}");
            }
        }
    }
    println!("target tests: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn ensure(condition: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(why())
    }
}

fn check_boot(cx: &CheckContext<'_>) -> Result<(), String> {
    let s = cx.session;
    ensure(s.exit_code == 0, || {
        format!("exit code {} (want 0)", s.exit_code)
    })?;
    for name in check::boot::ALL {
        let found = s.collector.checks.iter().find(|(n, _, _)| n == name);
        match found {
            None => return Err(format!("no check record named {name}")),
            Some((_, false, detail)) => return Err(format!("check {name} failed: {detail}")),
            Some(_) => {}
        }
    }
    let failed: Vec<_> = s.collector.checks.iter().filter(|c| !c.1).collect();
    ensure(failed.is_empty(), || format!("failed checks: {failed:?}"))?;
    let platform = s.collector.platform.as_ref().ok_or("no platform record")?;
    ensure(platform.board_revision == Some(0xa02082), || {
        format!(
            "board revision {:?}, want 0xa02082 (QEMU raspi3b)",
            platform.board_revision
        )
    })?;
    ensure(
        platform.arm_memory.is_some() && platform.vc_memory.is_some(),
        || "memory split unavailable".into(),
    )?;
    ensure(platform.emulated, || {
        format!(
            "the firmware thinks it runs on silicon: {}",
            platform.detection
        )
    })?;
    let shows_revision = s.log.iter().any(|l| {
        l.message
            .starts_with(records::PlatformKey::BoardRevision.label())
            && l.message.trim_end().ends_with(" 0xa02082")
    });
    ensure(shows_revision, || {
        "the platform block does not show 0xa02082".into()
    })?;
    ensure(s.collector.exit_code == Some(0), || {
        format!("Finished record {:?}", s.collector.exit_code)
    })
}

fn check_panic(cx: &CheckContext<'_>) -> Result<(), String> {
    let s = cx.session;
    ensure(s.exit_code == exit_code::PANIC as i32, || {
        format!("exit code {} (want {})", s.exit_code, exit_code::PANIC)
    })?;
    let line = s
        .log
        .iter()
        .find(|l| l.message.contains(protocol::PANIC_MESSAGE))
        .ok_or("no log line carries the panic message")?;
    // "panicked at FILE:LINE:COLUMN: message"
    let at = line
        .message
        .strip_prefix("panicked at ")
        .ok_or_else(|| format!("unexpected panic line: {}", line.message))?;
    let mut parts = at.splitn(4, ':');
    let (file, row, col) = (parts.next(), parts.next(), parts.next());
    ensure(file == Some(protocol::PANIC_FILE), || {
        format!(
            "panic location file {file:?}, want {}",
            protocol::PANIC_FILE
        )
    })?;
    ensure(
        row.and_then(|r| r.parse::<u32>().ok())
            .is_some_and(|r| r > 0),
        || format!("bad line number in {at}"),
    )?;
    ensure(col.and_then(|c| c.parse::<u32>().ok()).is_some(), || {
        format!("bad column in {at}")
    })?;
    ensure(line.level.as_deref() == Some("ERROR"), || {
        "the panic is not logged at error level".into()
    })
}

fn hex_after(text: &str, label: &str) -> Option<u64> {
    let rest = text.split(label).nth(1)?.trim_start();
    let hex = rest.strip_prefix("0x")?;
    let digits: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&digits, 16).ok()
}

fn check_data_abort(cx: &CheckContext<'_>) -> Result<(), String> {
    let s = cx.session;
    ensure(s.exit_code == exit_code::EXCEPTION as i32, || {
        format!("exit code {} (want {})", s.exit_code, exit_code::EXCEPTION)
    })?;
    let head = s
        .log
        .iter()
        .find(|l| l.message.starts_with("CPU exception:"))
        .ok_or("no CPU exception report")?;
    ensure(head.message.contains("data abort"), || {
        format!("not reported as a data abort: {}", head.message)
    })?;
    let regs = s
        .log
        .iter()
        .find(|l| l.message.contains("FAR "))
        .ok_or("no register line")?;
    let far = hex_after(&regs.message, "FAR ").ok_or("no FAR value")?;
    ensure(far == protocol::DATA_ABORT_ADDRESS, || {
        format!("FAR {far:#x}, want {:#x}", protocol::DATA_ABORT_ADDRESS)
    })?;
    let elr = hex_after(&regs.message, "ELR ").ok_or("no ELR value")?;
    let function = function_at(cx.elf, elr)
        .ok_or_else(|| format!("ELR {elr:#x} is in no function of the firmware"))?;
    ensure(function.contains(protocol::DATA_ABORT_FUNCTION), || {
        format!(
            "ELR {elr:#x} is in {function}, not in the function that reads the unmapped address"
        )
    })?;
    ensure(s.log_contains("translation fault"), || {
        "the fault status is not named a translation fault".into()
    })
}

/// Every check record passed, each of `wanted` (exact names) is among them,
/// and the firmware finished with exit code 0.
fn checks_passed(s: &Session, wanted: &[String]) -> Result<(), String> {
    let failed: Vec<_> = s.collector.checks.iter().filter(|c| !c.1).collect();
    ensure(failed.is_empty(), || format!("failed checks: {failed:?}"))?;
    for want in wanted {
        ensure(
            s.collector.checks.iter().any(|(name, _, _)| name == want),
            || format!("no check named `{want}`"),
        )?;
    }
    ensure(s.exit_code == 0, || {
        format!("exit code {} (want 0)", s.exit_code)
    })?;
    ensure(s.collector.exit_code == Some(0), || {
        format!("Finished record {:?}", s.collector.exit_code)
    })
}

/// The checks the DMA tests must report at the default 48 MiB pool (larger
/// pools run more sizes).
fn dma_checks_wanted() -> Vec<String> {
    const MIB: u64 = 1 << 20;
    let copy = |len, blocks| DmaCheck::Copy { len, blocks };
    let mover = |route, size| DmaCheck::Mover { route, size };
    let downward = |size, distance| DmaCheck::Downward { size, distance };
    let mut wanted: Vec<String> = [
        copy(4096, BlockMode::Full),
        copy(65_532, BlockMode::LiteSized),
        copy(32 * MIB, BlockMode::Full),
        copy(32 * MIB, BlockMode::LiteSized),
        copy(32 * MIB, BlockMode::LiteChannel),
        mover(Route::PoolToPool, 8 * MIB),
        mover(Route::HeapToPool, 32 * MIB),
        mover(Route::PoolToHeap, 32 * MIB),
        downward(32 * MIB, 4096),
        downward(32 * MIB, 16 * MIB),
        downward(8 * MIB, 8 * MIB),
    ]
    .iter()
    .map(DmaCheck::to_string)
    .collect();
    wanted.push(check::CHAINS_LONGER_THAN_CB_AREA.to_string());
    for name in [check::CPU_COPY_DISJOINT, check::CPU_COPY_DOWNWARD] {
        for memory in ["pool", "heap"] {
            wanted.push(format!("{name} ({memory})"));
        }
    }
    wanted
}

fn check_dma(cx: &CheckContext<'_>) -> Result<(), String> {
    checks_passed(cx.session, &dma_checks_wanted())
}

fn check_dma_faults(cx: &CheckContext<'_>) -> Result<(), String> {
    let wanted: Vec<String> = check::fault::ALL.iter().map(|n| n.to_string()).collect();
    checks_passed(cx.session, &wanted)
}

/// The (mangled) name of the function symbol containing `address`.
fn function_at(elf: &[u8], address: u64) -> Option<String> {
    let file = object::File::parse(elf).ok()?;
    file.symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 0)
        .find(|s| s.address() <= address && address < s.address() + s.size())
        .and_then(|s| s.name().ok().map(str::to_string))
}

/// The default trace replays under every policy with both movers: every run
/// replays every event of the trace, verifies pages and finds none corrupted,
/// and the policies really differ on it. Reads the results, not the log.
fn check_replay(cx: &CheckContext<'_>) -> Result<(), String> {
    let s = cx.session;
    ensure(s.exit_code == 0, || {
        format!("exit code {} (want 0)", s.exit_code)
    })?;
    let report = s.collector.report().map_err(|e| e.to_string())?;
    ensure(report.source == records::Source::Qemu, || {
        format!("source {:?}, want qemu", report.source)
    })?;
    ensure(report.trace.events > 0, || "the trace has no events".into())?;
    for policy in records::Policy::ALL {
        for mover in [records::MoverKind::Dma, records::MoverKind::Cpu] {
            let run = report
                .runs
                .iter()
                .find(|r| r.policy == policy && r.mover == mover)
                .ok_or_else(|| format!("no result for {policy}/{mover}"))?;
            let name = format!("{policy}/{mover}");
            ensure(run.events == report.trace.events, || {
                format!(
                    "{name} replayed {} of {} events",
                    run.events, report.trace.events
                )
            })?;
            ensure(run.corrupted_pages == 0, || {
                format!("{name}: {} corrupted pages", run.corrupted_pages)
            })?;
            ensure(run.verified_pages > 0, || {
                format!("{name}: no page verified")
            })?;
            ensure(run.moves == 0 || run.move_latency_ns.max > 0, || {
                format!("{name}: {} moves but no latency measured", run.moves)
            })?;
            check_conditions(&name, run)?;
        }
    }
    // The pool core is deterministic: both movers must see the same moves.
    for policy in records::Policy::ALL {
        let of = |mover| {
            report
                .runs
                .iter()
                .find(|r| r.policy == policy && r.mover == mover)
        };
        if let (Some(dma), Some(cpu)) = (of(records::MoverKind::Dma), of(records::MoverKind::Cpu)) {
            ensure(
                (
                    dma.page_outs,
                    dma.compaction_moves,
                    dma.bytes_moved,
                    dma.rule1_failures,
                ) == (
                    cpu.page_outs,
                    cpu.compaction_moves,
                    cpu.bytes_moved,
                    cpu.rule1_failures,
                ),
                || format!("{policy}: DMA and CPU runs made different moves"),
            )?;
        }
    }
    ensure(report.runs.iter().any(|r| r.page_outs > 0), || {
        "no run paged anything out: the default trace does not exercise eviction".into()
    })?;
    ensure(report.runs.iter().any(|r| r.compaction_moves > 0), || {
        "no run compacted: the default trace does not exercise compaction".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_values_are_read_after_their_label() {
        let line =
            "  ESR 0x96000005  FAR 0x0000000080000000  ELR 0x00000000000812a4  SPSR 0x000003c5";
        assert_eq!(hex_after(line, "FAR "), Some(0x8000_0000));
        assert_eq!(hex_after(line, "ELR "), Some(0x812a4));
        assert_eq!(hex_after(line, "PC "), None);
    }

    #[test]
    fn test_names_are_unique() {
        let tests = target_tests();
        let mut names: Vec<_> = tests.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), tests.len());
    }
}
