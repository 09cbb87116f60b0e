//! `cargo xtask record-convert RAW... --out trace.log`: the recorder's raw
//! files (one per process; several are merged by time) to a vc4 `@@@` trace,
//! through the model of the logging kernel branch in `capture::model`. The
//! trace is checked in strict mode and its statistics written beside it.

use anyhow::{bail, Context};
use capture::model::{self, Options, MEASURED_AND_MODELLED};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RecordConvertArgs {
    /// Raw files written by libpoolbed_recorder.so (`<comm>-<pid>.vc4raw`).
    #[arg(required = true)]
    pub raw: Vec<PathBuf>,
    /// The trace to write (`.log`, or `.log.gz` to compress it).
    #[arg(long)]
    pub out: PathBuf,
    /// Leave out the `use` of each first CPU touch after a job submission.
    #[arg(long)]
    pub no_touch: bool,
    /// Leave out the kernel's own buffers (binner, per-job exec and RCL BOs).
    #[arg(long)]
    pub no_kernel_bos: bool,
    /// Time of the first record in the trace, in seconds (the bundled traces start at 10).
    #[arg(long, default_value_t = 10.0)]
    pub start: f64,
}

/// `<dir>/<name>.stats.json` for `<dir>/<name>.log[.gz]`.
pub fn stats_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.trim_end_matches(".gz").trim_end_matches(".log");
    out.with_file_name(format!("{stem}.stats.json"))
}

pub fn run(args: RecordConvertArgs) -> anyhow::Result<ExitCode> {
    if !(args.start >= 0.0 && args.start < 1e9) {
        bail!("--start {} is not a time in seconds", args.start);
    }
    let mut files = Vec::new();
    for path in &args.raw {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let file =
            capture::raw::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if file.truncated_tail > 0 {
            eprintln!(
                "{}: the last {} bytes are a torn record (the process died while writing); ignored",
                path.display(),
                file.truncated_tail
            );
        }
        if file.unknown_records > 0 {
            eprintln!(
                "{}: {} records of kinds this converter does not know, skipped",
                path.display(),
                file.unknown_records
            );
        }
        files.push(file);
    }
    let opts = Options {
        touch: !args.no_touch,
        kernel_bos: !args.no_kernel_bos,
    };
    let conv = model::convert(&files, opts);
    for w in &conv.warnings {
        eprintln!("warning: {w}");
    }
    if conv.events.is_empty() {
        bail!("the recordings hold no buffer events (did the program use a vc4 device?)");
    }
    let text = conv.write_log((args.start * 1e6).round() as u64);
    write_trace(&args.out, text.as_bytes())?;

    // The trace must be what the parser accepts, strictly.
    let (stats, warnings) = trace::stats_file(&args.out, trace::Mode::Strict).map_err(|e| {
        anyhow::anyhow!("the converted trace fails the strict check (a converter bug): {e}")
    })?;
    let json_path = stats_path(&args.out);
    let json = stats_json(&conv, &stats, &warnings);
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;

    for (i, p) in conv.processes.iter().enumerate() {
        println!(
            "process {i}: pid {} {:?}: {} records ({} failed calls){}",
            p.pid,
            p.comm,
            p.records,
            p.failed_calls,
            if p.touch_tracked {
                ""
            } else {
                ", no touch tracking"
            }
        );
    }
    println!(
        "{}: {} events, {} buffers, peak live {:.1} MiB, {} GPU jobs, {} flips, {:.3} s (strict check passed)",
        args.out.display(),
        stats.events,
        stats.buffers,
        stats.peak_live_bytes as f64 / (1u64 << 20) as f64,
        conv.gpu_jobs,
        conv.scanout_flips,
        stats.duration_us() as f64 / 1e6
    );
    println!("{}: statistics", json_path.display());
    println!("{MEASURED_AND_MODELLED}");
    Ok(ExitCode::SUCCESS)
}

fn write_trace(out: &Path, text: &[u8]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    if out.to_string_lossy().ends_with(".gz") {
        let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::best());
        gz.write_all(text)?;
        gz.finish()?.flush()?;
    } else {
        w.write_all(text)?;
        w.flush()?;
    }
    Ok(())
}

fn size_stats(mut sizes: Vec<u64>) -> (u64, u64, u64) {
    sizes.sort_unstable();
    match sizes.len() {
        0 => (0, 0, 0),
        n => (sizes[0], sizes[(n - 1) / 2], sizes[n - 1]),
    }
}

/// What `cargo xtask trace stats --json` says of the trace, and what only
/// the converter knows: events by origin, BOs by kind, jobs, flips, processes.
fn stats_json(
    conv: &model::Conversion,
    stats: &trace::Stats,
    warnings: &trace::Warnings,
) -> serde_json::Value {
    let mut v = crate::trace_cmd::stats_json(stats, warnings);
    let user: Vec<u64> = conv
        .bos
        .iter()
        .filter(|b| b.kind.is_userspace())
        .map(|b| b.size)
        .collect();
    let (umin, umed, umax) = size_stats(user);
    let extra = json!({
        "events_by_source": conv.counts_by_source(),
        "bos_by_kind": conv.bos_by_kind(),
        "max_live_bytes_userspace_bos": conv.peak_live_userspace_bytes(),
        "user_bo_size_min": umin,
        "user_bo_size_median": umed,
        "user_bo_size_max": umax,
        "gpu_jobs": conv.gpu_jobs,
        "scanout_flips": conv.scanout_flips,
        "processes": conv.processes.iter().map(|p| json!({
            "pid": p.pid, "comm": p.comm, "exe": p.exe, "records": p.records,
            "failed_calls": p.failed_calls, "touch_tracked": p.touch_tracked,
        })).collect::<Vec<_>>(),
        "converter_warnings": conv.warnings.len(),
        "measured_and_modelled": MEASURED_AND_MODELLED,
    });
    if let (Some(m), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
        m.extend(e);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_sit_beside_the_trace() {
        assert_eq!(
            stats_path(Path::new("traces/x.log.gz")),
            Path::new("traces/x.stats.json")
        );
        assert_eq!(stats_path(Path::new("y.log")), Path::new("y.stats.json"));
    }

    #[test]
    fn medians_are_lower_medians() {
        assert_eq!(size_stats(vec![3, 1, 2, 4]), (1, 2, 4));
        assert_eq!(size_stats(vec![]), (0, 0, 0));
    }
}
