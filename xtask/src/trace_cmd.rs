//! `cargo xtask trace check|stats|compile`: validate a vc4 `@@@` log, measure
//! it, or compile it to the binary form the firmware embeds.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use trace::{Mode, Stats, Warnings};

#[derive(Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    command: TraceCommand,
}

#[derive(Subcommand)]
enum TraceCommand {
    /// Validate a trace (.log or .log.gz): print warnings with line numbers and counts per kind.
    Check {
        /// The trace file.
        file: PathBuf,
        /// Fail on the first problem instead of warning and skipping.
        #[arg(long)]
        strict: bool,
    },
    /// Print a trace's statistics: events per kind, buffers, peak live bytes, sizes.
    Stats {
        /// The trace file.
        file: PathBuf,
        /// Print JSON (field names as in traces/*.stats.json) instead of a table.
        #[arg(long)]
        json: bool,
        /// Fail on the first problem instead of warning and skipping.
        #[arg(long)]
        strict: bool,
    },
    /// Compile a trace to the binary form the firmware replays.
    Compile {
        /// The trace file.
        file: PathBuf,
        /// Where to write the binary trace.
        #[arg(short, long)]
        output: PathBuf,
        /// Name stored in the binary (default: the file name without .log/.gz; at most 64 bytes).
        #[arg(long)]
        name: Option<String>,
        /// Fail on the first problem instead of warning and skipping.
        #[arg(long)]
        strict: bool,
    },
}

fn mode(strict: bool) -> Mode {
    if strict {
        Mode::Strict
    } else {
        Mode::Lenient
    }
}

pub fn run(args: TraceArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TraceCommand::Check { file, strict } => check(&file, mode(strict)),
        TraceCommand::Stats { file, json, strict } => stats(&file, json, mode(strict)),
        TraceCommand::Compile {
            file,
            output,
            name,
            strict,
        } => compile(&file, &output, name.as_deref(), mode(strict)),
    }
}

/// The line every verb that reads a trace prints about its problems: the
/// count of each kind with its first line, and where to see them all.
pub(crate) fn problems_line(file: &Path, summary: &str) -> String {
    format!(
        "{}: {summary} (lenient: each skipped or applied; `cargo xtask trace check {}` lists them all)",
        file.display(),
        file.display()
    )
}

/// A trace error as every verb shows it: an I/O error already names the
/// file, a problem in the log (strict mode) names only its line.
pub(crate) fn trace_error(file: &Path, error: trace::Error) -> anyhow::Error {
    match error {
        trace::Error::Io { .. } => anyhow::anyhow!("{error}"),
        _ => anyhow::anyhow!("{}: {error}", file.display()),
    }
}

/// What every verb says of a trace without a single event: there is nothing
/// to replay, measure or embed, so it is an error, never an empty success.
pub(crate) fn no_events(file: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: no `@@@` events, so nothing to replay (not a vc4 trace, or every trace line in it was a problem)",
        file.display()
    )
}

/// A trace compiled in lenient mode for the firmware (embedded or pushed to
/// a board), with the one line about its problems printed; a trace without
/// events is refused.
pub(crate) fn compile_lenient(source: &Path) -> anyhow::Result<Vec<u8>> {
    let (bytes, warnings) = trace::compile_file(source, Mode::Lenient, None)
        .map_err(|e| trace_error(source, e).context("compiling the trace"))?;
    if !warnings.is_empty() {
        eprintln!("{}", problems_line(source, &warnings.summary()));
    }
    let compiled = trace::binary::BinaryTrace::parse(&bytes)
        .context("the compiled trace does not decode (a bug)")?;
    if compiled.event_count() == 0 {
        return Err(no_events(source));
    }
    Ok(bytes)
}

/// The problems of a lenient read, listed (the first few with their lines,
/// then the counts), then the one-line summary every verb prints.
fn print_warnings(file: &Path, warnings: &Warnings) {
    if !warnings.is_empty() {
        eprint!(
            "{}: {} warning(s)\n{warnings}",
            file.display(),
            warnings.total()
        );
        eprintln!("{}", problems_line(file, &warnings.summary()));
    }
}

fn check(file: &Path, mode: Mode) -> anyhow::Result<ExitCode> {
    let (stats, warnings) = trace::stats_file(file, mode).map_err(|e| trace_error(file, e))?;
    print_warnings(file, &warnings);
    if stats.events == 0 {
        return Err(no_events(file));
    }
    println!(
        "{}: ok ({} events, {} buffers, {} warning(s), {} mode)",
        file.display(),
        stats.events,
        stats.buffers,
        warnings.total(),
        if mode == Mode::Strict {
            "strict"
        } else {
            "lenient"
        },
    );
    Ok(ExitCode::SUCCESS)
}

fn mib(bytes: u64) -> String {
    let (value, unit) = if bytes >= 1 << 20 {
        (bytes as f64 / (1u64 << 20) as f64, "MiB")
    } else {
        (bytes as f64 / 1024.0, "KiB")
    };
    format!("{bytes} ({value:.1} {unit})")
}

pub(crate) fn stats_json(stats: &Stats, warnings: &Warnings) -> serde_json::Value {
    let per_kind: serde_json::Map<_, _> = stats
        .per_kind
        .by_op()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    let problems: serde_json::Map<_, _> = warnings
        .counts()
        .map(|(k, n)| (k.name().to_string(), json!(n)))
        .collect();
    json!({
        "events": stats.events,
        "events_per_kind": per_kind,
        "madv_willneed": stats.per_kind.madv_willneed,
        "madv_dontneed": stats.per_kind.madv_dontneed,
        "distinct_bos": stats.buffers,
        "unmoveable_bos": stats.unmoveable,
        "max_live_bytes": stats.peak_live_bytes,
        "total_created_bytes": stats.total_created_bytes,
        "live_bos_at_end": stats.live_buffers_at_end,
        "live_bytes_at_end": stats.live_bytes_at_end,
        "size_min": stats.size_min,
        "size_median": stats.size_median,
        "size_max": stats.size_max,
        "distinct_sizes": stats.distinct_sizes,
        "duration_s": stats.duration_us() as f64 / 1e6,
        "warnings": problems,
    })
}

fn stats(file: &Path, as_json: bool, mode: Mode) -> anyhow::Result<ExitCode> {
    let (stats, warnings) = trace::stats_file(file, mode).map_err(|e| trace_error(file, e))?;
    print_warnings(file, &warnings);
    if stats.events == 0 {
        return Err(no_events(file));
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats_json(&stats, &warnings))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let k = &stats.per_kind;
    let rows: Vec<(&str, String)> = vec![
        ("events", stats.events.to_string()),
        ("  create", k.create.to_string()),
        ("  destroy", k.destroy.to_string()),
        ("  use", k.use_.to_string()),
        ("  add_usecnt", k.add_usecnt.to_string()),
        ("  remove_usecnt", k.remove_usecnt.to_string()),
        ("  madv willneed", k.madv_willneed.to_string()),
        ("  madv dontneed", k.madv_dontneed.to_string()),
        ("buffers", stats.buffers.to_string()),
        ("  unmoveable", stats.unmoveable.to_string()),
        (
            "  live at end",
            format!(
                "{} buffers, {}",
                stats.live_buffers_at_end,
                mib(stats.live_bytes_at_end)
            ),
        ),
        ("peak live bytes", mib(stats.peak_live_bytes)),
        ("total created bytes", mib(stats.total_created_bytes)),
        ("size min", mib(stats.size_min)),
        ("size median", mib(stats.size_median)),
        ("size max", mib(stats.size_max)),
        ("distinct sizes", stats.distinct_sizes.to_string()),
        (
            "duration",
            format!("{:.6} s", stats.duration_us() as f64 / 1e6),
        ),
        ("warnings", warnings.total().to_string()),
    ];
    println!("{}", file.display());
    for (label, value) in rows {
        println!("  {label:<22} {value}");
    }
    Ok(ExitCode::SUCCESS)
}

fn compile(file: &Path, output: &Path, name: Option<&str>, mode: Mode) -> anyhow::Result<ExitCode> {
    let (bytes, warnings) =
        trace::compile_file(file, mode, name).map_err(|e| trace_error(file, e))?;
    print_warnings(file, &warnings);
    // Check what was written decodes, before anything embeds it.
    let decoded = trace::binary::BinaryTrace::parse(&bytes)
        .context("the compiled trace does not decode (a bug)")?;
    if decoded.event_count() == 0 {
        return Err(no_events(file));
    }
    std::fs::write(output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "{} -> {}: {:?}, {} events, {} buffers, peak {}, {} bytes",
        file.display(),
        output.display(),
        decoded.name(),
        decoded.event_count(),
        decoded.buffer_count(),
        mib(decoded.peak_live_bytes()),
        bytes.len()
    );
    Ok(ExitCode::SUCCESS)
}
