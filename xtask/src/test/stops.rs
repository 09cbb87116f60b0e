//! Long runs and stops under QEMU (issue 14, items 5, 6 and 8): each test
//! runs `cargo xtask run` as a user would (this very binary, as a child
//! process) or boots the firmware directly, and checks the message and the
//! exit code.
//!
//! - `run-watchdog`: the runner mode waits forever for a trace that cannot
//!   come over `-serial stdio`; a 2 s watchdog stops it, well before the
//!   overall limit.
//! - `run-interrupted`: SIGINT to `run` once its third run started:
//!   QEMU is gone, the report holds the finished runs and says incomplete,
//!   the exit code is `run::STOPPED_EXIT_CODE`.
//! - `run-huge-timeout`: `--timeout 18446744073709551615` replays the
//!   default trace to the end (no overflow panic).
//! - `run-heap-too-small`: a replay whose overflow the heap cannot hold is
//!   refused before the boot, with the numbers and the largest pool that
//!   fits; and a firmware booted without that check refuses 1 GiB live with
//!   the numbers (exit 90) instead of panicking in its first run. It
//!   rebuilds the firmware with its own traces, so it runs last and the
//!   default firmware is rebuilt after it.

use crate::firmware::{self, BuildOptions, Built};
use crate::qemu::{ChildGuard, FirmwareCommand, Limits};
use anyhow::{ensure, Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A scratch directory under target/, removed first and on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Result<Self> {
        let dir = firmware::target_dir().join(format!("test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary of this very process. `cargo xtask test` runs `cargo test`
/// first, which can relink `target/debug/xtask` (dev-dependencies unify
/// features differently), and then the path of the running image no longer
/// names it ("... (deleted)"); Linux's /proc/self/exe still does.
fn this_binary() -> Result<std::path::PathBuf> {
    let proc_self = std::path::Path::new("/proc/self/exe");
    if proc_self.exists() {
        return Ok(proc_self.to_path_buf());
    }
    std::env::current_exe().context("finding the xtask binary")
}

/// `xtask run ARGS` as a child process, its stdout and stderr captured.
fn xtask_run(args: &[&str]) -> Result<ChildGuard> {
    let exe = this_binary()?;
    let child = Command::new(&exe)
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} run {}", exe.display(), args.join(" ")))?;
    Ok(ChildGuard::new(child))
}

/// What a finished child said and how it ended.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Waits at most `limit` for the child, reading both streams.
fn finish(mut child: ChildGuard, limit: Duration) -> Result<Finished> {
    let mut stdout = child.child().stdout.take().context("stdout")?;
    let mut stderr = child.child().stderr.take().context("stderr")?;
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let code = wait_for(&mut child, limit)?;
    Ok(Finished {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// The child's exit code, waiting at most `limit` (then it is killed).
fn wait_for(child: &mut ChildGuard, limit: Duration) -> Result<Option<i32>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.child().try_wait()? {
            return Ok(status.code());
        }
        ensure!(
            Instant::now() < deadline,
            "xtask run did not end within {} s",
            limit.as_secs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every child process of `pid` (over all its threads).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Whether process `pid` still exists (and is no zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

/// The report.json in `dir`.
fn report_json(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join("report.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// `run-watchdog`: a firmware that makes no progress is stopped by the
/// watchdog, not by the overall limit, and the session says why.
pub fn watchdog(built: &Built, _timeout: Duration) -> Result<String> {
    let limits = Limits {
        watchdog: Duration::from_secs(2),
        overall: Some(Duration::from_secs(60)),
    };
    let started = Instant::now();
    let session = crate::run::boot_and_collect_with(
        built,
        Some(FirmwareCommand::Runner),
        limits,
        &mut |_| {},
    )?;
    let took = started.elapsed();
    let why = session
        .stopped
        .context("the runner's silence was not stopped")?;
    ensure!(
        why.contains("the watchdog stopped QEMU: no record or log line from the firmware for 2 s"),
        "stopped for another reason: {why}"
    );
    ensure!(
        took < Duration::from_secs(20),
        "the watchdog took {:.1} s",
        took.as_secs_f64()
    );
    ensure!(
        session
            .records
            .iter()
            .any(|r| matches!(r, records::Record::Ready { .. })),
        "the runner never said Ready, so the silence was not the one tested"
    );
    Ok(format!("stopped after {:.1} s: {why}", took.as_secs_f64()))
}

/// `run-interrupted`: Ctrl-C mid-run keeps what was measured.
pub fn interrupted(_built: &Built, timeout: Duration) -> Result<String> {
    let scratch = Scratch::new("interrupted")?;
    let out = scratch.0.join("report");
    let mut child = xtask_run(&["--out", out.to_str().context("path")?])?;
    let pid = child.child().id();
    let stderr = child.child().stderr.take().context("stderr")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let stdout = child.child().stdout.take().context("stdout")?;
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stdout).read_to_string(&mut text);
        text
    });
    // Two runs finished, the third started: then Ctrl-C.
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .context("run 2 never started before the limit")?;
        if line.starts_with("run 2 compact/dma: started") {
            break;
        }
    }
    let qemu: Vec<u32> = children_of(pid);
    ensure!(!qemu.is_empty(), "xtask run has no QEMU child mid-run");
    // SAFETY: kill(2) on the child this test started and has not reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGINT);
    }
    let code = wait_for(&mut child, Duration::from_secs(30))?;
    let stderr = reader.join().unwrap_or_default();
    let stdout = out_reader.join().unwrap_or_default();
    ensure!(
        code == Some(i32::from(crate::run::STOPPED_EXIT_CODE)),
        "exit code {code:?} after Ctrl-C, not {}:\n{stderr}",
        crate::run::STOPPED_EXIT_CODE
    );
    ensure!(
        stderr.contains("error: the replay did not finish: interrupted (Ctrl-C); QEMU was stopped; the report is marked incomplete and holds the"),
        "no stop message:\n{stderr}"
    );
    for pid in &qemu {
        ensure!(!alive(*pid), "QEMU (pid {pid}) outlived xtask run");
    }
    let report = report_json(&out)?;
    ensure!(
        report["incomplete"] == serde_json::Value::Bool(true),
        "report.json is not marked incomplete"
    );
    let runs = report["runs"]
        .as_array()
        .context("report.json has no runs")?;
    ensure!(
        runs.len() >= 2 && runs.len() < 8,
        "report.json holds {} runs, not the 2 to 7 that finished before Ctrl-C",
        runs.len()
    );
    ensure!(
        runs[0]["policy"] == "first-fit" && runs[1]["mover"] == "cpu",
        "the first runs in report.json are not first-fit dma and cpu"
    );
    ensure!(
        stdout.contains("INCOMPLETE")
            && (stdout.contains("note: run 2 (compact/dma) did not finish") || runs.len() > 2),
        "the table does not say incomplete, or not which run was cut:\n{stdout}"
    );
    Ok(format!(
        "Ctrl-C in run 2: exit {}, {} finished runs in the incomplete report, QEMU gone",
        crate::run::STOPPED_EXIT_CODE,
        runs.len()
    ))
}

/// `run-huge-timeout`: the largest `--timeout` is no overflow.
pub fn huge_timeout(_built: &Built, timeout: Duration) -> Result<String> {
    let scratch = Scratch::new("huge-timeout")?;
    let out = scratch.0.join("report");
    let child = xtask_run(&[
        "--timeout",
        "18446744073709551615",
        "--out",
        out.to_str().context("path")?,
    ])?;
    let done = finish(child, timeout)?;
    ensure!(
        done.code == Some(0),
        "exit code {:?}:\n{}{}",
        done.code,
        done.stdout,
        done.stderr
    );
    ensure!(
        !done.stderr.contains("panicked"),
        "it panicked:\n{}",
        done.stderr
    );
    ensure!(
        done.stdout
            .contains("host: overall limit 5124095576030431 h 0 min (--timeout)"),
        "the limit is not the one asked:\n{}",
        done.stdout
    );
    let runs = report_json(&out)?["runs"].as_array().map_or(0, Vec::len);
    ensure!(runs == 8, "{runs} runs in the report, not 8");
    Ok("--timeout u64::MAX: all 8 runs, exit 0".into())
}

/// A synthetic trace of `buffers` 128 MiB buffers, all live at once. With
/// seven (896 MiB live) a 890 MiB pool holds six; the seventh overflows
/// 128 MiB into a heap of 66 MiB. With eight (1 GiB) more than the pool
/// and the heap together is live: the firmware itself can tell.
fn big_trace(dir: &Path, buffers: u32) -> Result<PathBuf> {
    let path = dir.join(format!("{buffers}x128mib.log"));
    let mut text = String::new();
    for i in 0..buffers {
        text.push_str(&format!(
            "[{:5}.000000] @@@ create {:08x} {}\n",
            i + 1,
            0x1000 + i,
            128u32 << 20
        ));
    }
    for i in 0..7u32 {
        text.push_str(&format!(
            "[{:5}.000000] @@@ destroy {:08x}\n",
            i + 10,
            0x1000 + i
        ));
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `run-heap-too-small`: refused before the boot, with the numbers.
pub fn heap_too_small(_built: &Built, timeout: Duration) -> Result<String> {
    let scratch = Scratch::new("heap")?;
    let trace = big_trace(&scratch.0, 7)?;
    let out = scratch.0.join("report");
    let child = xtask_run(&[
        "--trace",
        trace.to_str().context("path")?,
        "--pool-size",
        "890MiB",
        "--out",
        out.to_str().context("path")?,
    ])?;
    let done = finish(child, timeout);
    // The firmware's own check, booted without the host's: 1 GiB live.
    let firmware_check = firmware_refuses(&scratch.0, timeout);
    // Both embedded their own trace: the default firmware again, for
    // whatever runs next from target/.
    let restored = firmware::build(&BuildOptions::default());
    let done = done?;
    let firmware_check = firmware_check?;
    restored.context("rebuilding the default firmware")?;
    ensure!(
        done.code == Some(1),
        "exit code {:?}, not 1:\n{}",
        done.code,
        done.stderr
    );
    for part in [
        "the backing heap cannot hold this replay's overflow: with a 890.0 MiB pool the firmware's heap is 66.0 MiB",
        "the simulator's peak overflow is 128.0 MiB (first-fit 128.0 MiB, compact 128.0 MiB, drm-mm 128.0 MiB, defrag 128.0 MiB) plus 4.0 MiB",
        "the largest pool that fits is 824.0 MiB (--pool-size 824MiB)",
    ] {
        ensure!(done.stderr.contains(part), "no `{part}` in:\n{}", done.stderr);
    }
    ensure!(
        !done.stderr.contains("booting") && !out.exists(),
        "QEMU booted or a report was written"
    );
    Ok(format!(
        "890 MiB pool for 128 MiB of overflow refused; 824 MiB offered; {firmware_check}"
    ))
}

/// Boots a firmware embedding 1 GiB live with a 890 MiB pool directly (no
/// pre-boot check): it must refuse with the numbers and exit code 90, not
/// panic in the first run.
fn firmware_refuses(dir: &Path, timeout: Duration) -> Result<String> {
    let options = BuildOptions {
        trace: Some(big_trace(dir, 8)?),
        pool_size: Some(890 << 20),
        verify: None,
    };
    let built = firmware::build(&options)?;
    let session = crate::run::boot_and_collect(&built, None, timeout, &mut |_| {})?;
    ensure!(
        session.exit_code == protocol::exit_code::TRACE_REFUSED as i32,
        "the firmware exited with {}, not {}",
        session.exit_code,
        protocol::exit_code::TRACE_REFUSED
    );
    let said = "the backing heap cannot hold this replay: 1048576 KiB live at the trace's peak, 911360 KiB pool, so at least 137216 KiB overflow plus 4096 KiB for the firmware, and the heap has 67584 KiB; no run is made";
    ensure!(
        session.log_contains(said),
        "the firmware did not say `{said}`"
    );
    ensure!(
        !session.log_contains("panicked") && session.collector.runs.is_empty(),
        "the firmware started a run or panicked"
    );
    Ok("the firmware alone refuses 1 GiB live (exit 90)".into())
}
