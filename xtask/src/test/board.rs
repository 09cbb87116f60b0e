//! The board path under QEMU: the runner on a pty, driven the way a Pi is.
//!
//! - `runner-push`: one boot of the runner; a truncated transfer (the host
//!   stops after a few frames) is refused without hanging, then
//!   `kmscube-rgba` (24 MiB pool) with one frame corrupted on its first
//!   sending (the test-only fault of `board::Fault`) is recovered by resend,
//!   then `kmscube-rgba-recorded` (24 MiB); each report is checked count for
//!   count against the simulator on the same trace and pool.
//! - `listen-reset`: the runner with a 1 s wait replays the embedded trace on
//!   its own; `listen` on the pty resets the board (QEMU's `system_reset`)
//!   after the first run starts; the cut stream is kept, marked incomplete,
//!   and the stream of the new boot is complete and separate.

use crate::board::{Fault, Link, Pushed};
use crate::decode::Decoded;
use crate::firmware::{BuildOptions, Built};
use crate::qemu::{FirmwareCommand, PtyBoard};
use anyhow::{bail, ensure, Context, Result};
use records::{Collector, Report, RunResult};
use std::time::Duration;

/// The traces pushed, with their pools (both fit the test image's 48 MiB
/// pool region).
const FIRST: (&str, u64) = ("traces/kmscube-rgba.log.gz", 24 << 20);
const SECOND: (&str, u64) = ("traces/kmscube-rgba-recorded.log.gz", 24 << 20);

fn options(trace: &str, pool: u64) -> BuildOptions {
    BuildOptions {
        trace: Some(crate::firmware::workspace_root().join(trace)),
        pool_size: Some(pool),
        verify: None,
    }
}

fn boot(built: &Built, argument: u16) -> Result<(PtyBoard, Link)> {
    let mut board = PtyBoard::start(&built.image, FirmwareCommand::Runner, argument)?;
    let elf = std::fs::read(&built.elf)?;
    let link = Link::open(&board.pty, 921_600, &elf)?;
    board.power_on()?;
    Ok((board, link))
}

/// `runner-push`.
pub fn runner_push(built: &Built, timeout: Duration) -> Result<String> {
    let (_board, mut link) = boot(built, 60)?;
    let mut log = Vec::new();
    let outcome = runner_push_on(&mut link, timeout, &mut |event: &Decoded| {
        if let Decoded::Log(line) = event {
            log.push(line.to_string());
        }
    });
    outcome.map_err(|e| {
        let tail = log[log.len().saturating_sub(25)..].join("\n    | ");
        anyhow::anyhow!("{e:#}\n    | {tail}")
    })
}

fn runner_push_on(
    link: &mut Link,
    timeout: Duration,
    quiet: &mut dyn FnMut(&Decoded),
) -> Result<String> {
    let (path, pool) = FIRST;
    let cut = crate::run::push_trace(
        link,
        &options(path, pool),
        Fault::TruncateAfter(3),
        timeout,
        quiet,
    )?;
    match &cut.push.result {
        Pushed::Refused(reason) if reason.contains("truncated") => {}
        other => bail!("a truncated transfer ended with {other:?}"),
    }

    let first = crate::run::push_trace(
        link,
        &options(path, pool),
        Fault::CorruptFrame(2),
        timeout,
        quiet,
    )?;
    ensure!(
        matches!(first.push.result, Pushed::Accepted { .. }),
        "{path}: {:?}",
        first.push.result
    );
    ensure!(
        !first.push.naks.is_empty() && first.push.resent_frames > 0,
        "the corrupted frame was not refused and resent (Naks {:?}, {} frames resent)",
        first.push.naks,
        first.push.resent_frames
    );
    let first_figures = check_against_sim(&first.collector, path, pool)?;

    let (path2, pool2) = SECOND;
    let second = crate::run::push_trace(link, &options(path2, pool2), Fault::None, timeout, quiet)?;
    ensure!(
        matches!(second.push.result, Pushed::Accepted { .. }),
        "{path2}: {:?}",
        second.push.result
    );
    check_against_sim(&second.collector, path2, pool2)?;
    Ok(format!(
        "truncated transfer refused: {:?}; {first_figures}; pushes {:.2} s ({} bytes, 1 corrupted frame, {} resent) and {:.2} s",
        match cut.push.result {
            Pushed::Refused(r) => r,
            _ => String::new(),
        },
        first.push.elapsed.as_secs_f64(),
        trace_bytes(path)?,
        first.push.resent_frames,
        second.push.elapsed.as_secs_f64()
    ))
}

fn trace_bytes(path: &str) -> Result<u64> {
    let source = crate::firmware::workspace_root().join(path);
    let (bytes, _) = trace::compile_file(&source, trace::Mode::Lenient, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(bytes.len() as u64)
}

/// Every count of every run equal to the simulator's for the same policy
/// on the same trace and pool (placement does not depend on the mover).
fn check_against_sim(collector: &Collector, path: &str, pool: u64) -> Result<String> {
    ensure!(
        collector.exit_code == Some(0),
        "{path}: Finished with {:?}",
        collector.exit_code
    );
    let board = collector.report().map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        board.source == records::Source::Qemu && !board.incomplete,
        "{path}: source {:?}, incomplete {}",
        board.source,
        board.incomplete
    );
    let sim = simulate(path, pool)?;
    ensure!(
        board.trace.events == sim.trace.events,
        "{path}: {} events on the board, {} in the simulator",
        board.trace.events,
        sim.trace.events
    );
    ensure!(board.runs.len() >= 4, "{path}: {} runs", board.runs.len());
    for run in &board.runs {
        let model = sim
            .runs
            .iter()
            .find(|r| r.policy == run.policy)
            .with_context(|| format!("no simulator run for {}", run.policy))?;
        ensure!(
            counts(run) == counts(model),
            "{path} {}/{}: board {:?} != sim {:?}",
            run.policy,
            run.mover,
            counts(run),
            counts(model)
        );
        ensure!(run.pool_bytes == pool, "{path}: pool {}", run.pool_bytes);
    }
    Ok(format!(
        "{path}: {} runs equal to the simulator",
        board.runs.len()
    ))
}

fn counts(r: &RunResult) -> [u64; 13] {
    [
        r.events,
        r.rule1_failures,
        r.page_ins,
        r.page_outs,
        r.purges,
        r.compaction_moves,
        r.moves,
        r.bytes_moved,
        r.bytes_by_kind.page_in,
        r.bytes_by_kind.page_out,
        r.bytes_by_kind.compaction,
        r.peak_used_bytes,
        r.peak_overflow_bytes,
    ]
}

fn simulate(path: &str, pool: u64) -> Result<Report> {
    let args = crate::sim::SimArgs {
        trace: crate::firmware::workspace_root().join(path),
        policy: "all".into(),
        pool_size: pool,
        alignment: 4096,
        latency: None,
        zero: records::ZeroVariant::None,
        json: None,
        out: None,
        strict: false,
        no_cache: false,
        timings: false,
    };
    let mut progress = report::live::Progress::plain(Box::new(std::io::sink()));
    let mut timings = crate::sim::Timings::default();
    let collector = crate::sim::simulate(&args, &mut progress, &mut timings)?;
    collector.report().map_err(|e| anyhow::anyhow!("{e}"))
}

/// `listen-reset`.
pub fn listen_reset(built: &Built, timeout: Duration) -> Result<String> {
    let (mut board, mut link) = boot(built, 1)?;
    let mut reset_done = false;
    let mut reset_error = None;
    let streams = crate::listen::listen_serial(&mut link, timeout, &mut |event| {
        if let Decoded::Record(record) = event {
            if !reset_done && matches!(**record, records::Record::RunStart { run: 1, .. }) {
                reset_done = true;
                reset_error = board.reset().err();
            }
        }
    })?;
    if let Some(e) = reset_error {
        return Err(e);
    }
    ensure!(reset_done, "no run started, so no reset was made");
    ensure!(
        streams.incomplete().count() == 1,
        "{} incomplete streams, want 1",
        streams.incomplete().count()
    );
    let cut = streams.earlier[0]
        .report()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(cut.incomplete, "the cut stream is not marked incomplete");
    let json = serde_json::to_value(&cut)?;
    ensure!(
        json["incomplete"] == serde_json::json!(true),
        "report.json lacks incomplete: true"
    );
    ensure!(
        cut.runs.len() <= 1,
        "the cut stream has {} finished runs (the reset came at the second's start)",
        cut.runs.len()
    );
    let whole = streams
        .current
        .report()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        !whole.incomplete && streams.current.exit_code == Some(0),
        "the new boot's stream: incomplete {}, exit {:?}",
        whole.incomplete,
        streams.current.exit_code
    );
    // Never mixed: the new stream's runs are numbered from 0, once each.
    let numbers: Vec<u16> = streams.current.runs.iter().map(|r| r.run).collect();
    ensure!(
        numbers.iter().enumerate().all(|(i, &n)| n as usize == i)
            && whole.runs.len() == numbers.len(),
        "the new stream's runs are {numbers:?}"
    );
    Ok(format!(
        "cut stream kept with {} finished run(s), marked incomplete; the new boot's {} runs complete",
        cut.runs.len(),
        whole.runs.len()
    ))
}

/// `sdcard-image`: `cargo xtask sdcard` (the boot files fetched if need be)
/// read back with fatfs: a valid table, every file byte-identical to its
/// source, boot/ the same; the image's kernel8.img boots under QEMU to the
/// platform block.
pub fn sdcard_image(built: &Built, timeout: Duration) -> Result<String> {
    let out = crate::firmware::target_dir().join("test-sdcard");
    let started = std::time::Instant::now();
    let card = crate::sdcard::build_card(
        &BuildOptions::default(),
        protocol::Command::Runner,
        None,
        &out,
    )?;
    let build_time = started.elapsed();
    let image = crate::card_image::read_image(&card.image)?;
    let p = image.partitions[0];
    ensure!(
        p.partition_type == 0x0c && p.start_lba == 8192 && u64::from(p.sectors) * 512 >= 64 << 20,
        "partition 1: {p:?}"
    );
    ensure!(
        image.partitions[1..].iter().all(|p| p.is_empty()),
        "more than one partition: {:?}",
        image.partitions
    );
    ensure!(
        image.fat_type == fatfs::FatType::Fat32
            && image.cluster_bytes == 512
            && image.total_clusters >= 65_525
            && image.hidden_sectors == p.start_lba
            && image.disk_signature != 0
            && !image.volume_label.is_empty(),
        "file system {:?}, {} B clusters, {} clusters, {} hidden sectors, signature {:#x}, label {:?}",
        image.fat_type,
        image.cluster_bytes,
        image.total_clusters,
        image.hidden_sectors,
        image.disk_signature,
        image.volume_label
    );
    ensure!(
        image.files.len() == card.files.len(),
        "{} files in the image, {} written",
        image.files.len(),
        card.files.len()
    );
    for (name, bytes) in &card.files {
        let found = image
            .files
            .iter()
            .find(|f| &f.name == name)
            .with_context(|| format!("{name} is not in the image"))?;
        ensure!(&found.bytes == bytes, "{name} differs in the image");
        ensure!(
            found.short_name == name.to_uppercase(),
            "{name} has the short name {}",
            found.short_name
        );
        let copy = std::fs::read(card.boot_dir.join(name))?;
        ensure!(&copy == bytes, "{name} differs in boot/");
    }
    let config = &card
        .files
        .iter()
        .find(|(n, _)| n == "config.txt")
        .unwrap()
        .1;
    let config = String::from_utf8_lossy(config);
    for name in crate::boot_files::BOOT_FILES {
        ensure!(
            config
                .lines()
                .any(|l| l.starts_with("# sha256 ") && l.ends_with(name)),
            "config.txt records no sha256 of {name}"
        );
    }
    // The kernel as the Pi would load it, booted under QEMU.
    let kernel = &image
        .files
        .iter()
        .find(|f| f.name == "kernel8.img")
        .context("no kernel8.img")?
        .bytes;
    let extracted = out.join("kernel8-from-image.img");
    std::fs::write(&extracted, kernel)?;
    let from_card = Built {
        elf: built.elf.clone(),
        image: extracted,
    };
    let session = crate::run::boot_and_collect(
        &from_card,
        Some(FirmwareCommand::BootChecks),
        timeout,
        &mut |_| {},
    )?;
    let platform = session
        .collector
        .platform
        .as_ref()
        .context("the image's kernel sent no platform record")?;
    ensure!(
        platform.board_revision == Some(0xa02082)
            && session.log_contains("------------------")
            && session.exit_code == 0,
        "the image's kernel: revision {:?}, exit {}",
        platform.board_revision,
        session.exit_code
    );
    Ok(format!(
        "{} MiB image, {} files byte-identical, boot files {}; built in {:.2} s (writing {:.2} s); its kernel8.img boots under QEMU",
        image.image_bytes >> 20,
        card.files.len(),
        card.boot_files,
        build_time.as_secs_f64(),
        card.write_time.as_secs_f64()
    ))
}
