//! `cargo xtask sim`: replay a trace through the pool core on the host with a
//! modelled mover, one run per policy.

use anyhow::{bail, Context};
use pool::model::{LatencyModel, ModelMover};
use pool::replay::{replay, Clock, RecordSink, ReplayConfig};
use records::{Collector, Policy, Record, RunResult, Timer, TraceInfo};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct SimArgs {
    /// Trace file: a vc4 `@@@` dmesg log, plain or gzip (.log, .log.gz).
    #[arg(long)]
    pub trace: PathBuf,
    /// first-fit, compact, drm-mm, defrag, or all.
    #[arg(long, default_value = "all")]
    pub policy: String,
    /// Pool size: bytes or with a unit (16MiB, 128M, 1GiB, 4096K).
    #[arg(long, default_value = "128MiB", value_parser = parse_size)]
    pub pool_size: u64,
    /// Placement alignment (a power of two).
    #[arg(long, default_value = "4KiB", value_parser = parse_size)]
    pub alignment: u64,
    /// Move latency model SETUP_NS:BYTES_PER_S (e.g. 2000:400000000); moves
    /// then complete asynchronously on a virtual clock. Default: instantaneous.
    #[arg(long, value_parser = parse_latency)]
    pub latency: Option<LatencyModel>,
    /// Also write the result (DESIGN.md section 5a, "source": "sim") to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Stop at the first problem in the trace instead of warning and going on.
    #[arg(long)]
    pub strict: bool,
}

/// Parses `4096`, `4K`, `4KiB`, `16M`, `16MiB`, `1G`, `1GiB` (binary units).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 16MiB, 128M, 4096)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}` (use K, M, G, KiB, MiB, GiB)"
            ))
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

fn parse_latency(text: &str) -> Result<LatencyModel, String> {
    let err = || format!("`{text}` is not SETUP_NS:BYTES_PER_S (e.g. 2000:400000000)");
    let (setup, rate) = text.split_once(':').ok_or_else(err)?;
    let setup_ns = setup.trim().parse().map_err(|_| err())?;
    let bytes_per_s: u64 = rate.trim().parse().map_err(|_| err())?;
    if bytes_per_s == 0 {
        return Err("the throughput of the latency model must be above 0 bytes/s".into());
    }
    Ok(LatencyModel {
        setup_ns,
        bytes_per_s,
    })
}

fn policies(name: &str) -> anyhow::Result<Vec<Policy>> {
    if name == "all" {
        return Ok(Policy::ALL.to_vec());
    }
    name.split(',')
        .map(|n| {
            n.trim()
                .parse::<Policy>()
                .map_err(|e| anyhow::anyhow!("--policy {n}: {e}, all"))
        })
        .collect()
}

/// Records go into the collector; the first error is kept for later.
struct CollectSink<'a> {
    collector: &'a mut Collector,
    error: Option<records::CollectError>,
}

impl RecordSink for CollectSink<'_> {
    fn record(&mut self, record: &Record) {
        if self.error.is_none() {
            if let Err(e) = self.collector.push(record.clone()) {
                self.error = Some(e);
            }
        }
    }
}

/// Host wall time.
struct WallClock(Instant);

impl Clock for WallClock {
    fn now_ns(&mut self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
    fn timer(&self) -> Timer {
        Timer {
            name: "host monotonic clock (replay wall time)".into(),
            hz: 1_000_000_000,
        }
    }
}

/// Reads the trace and replays it under every requested policy. The returned
/// collector holds everything a report needs (trace, samples, snapshots,
/// moves, results); this is where a report directory builder hooks in.
pub fn simulate(args: &SimArgs) -> anyhow::Result<Collector> {
    let policies = policies(&args.policy)?;
    let mode = if args.strict {
        trace::Mode::Strict
    } else {
        trace::Mode::Lenient
    };
    let file = trace::read_file(&args.trace, mode)
        .with_context(|| format!("reading {}", args.trace.display()))?;
    if !file.warnings.is_empty() {
        eprint!("{}", file.warnings);
        eprintln!(
            "({} problems in {}; --strict makes them errors)",
            file.warnings.total(),
            args.trace.display()
        );
    }
    if file.events.is_empty() {
        bail!("{} holds no `@@@` events", args.trace.display());
    }
    let mut collector = Collector::new();
    collector
        .push(Record::Trace(TraceInfo {
            name: trace::default_name(&args.trace),
            events: file.stats.events,
            buffers: file.stats.buffers,
            peak_live_bytes: file.stats.peak_live_bytes,
        }))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut clock = WallClock(Instant::now());
    for (run, &policy) in policies.iter().enumerate() {
        let config = ReplayConfig {
            pool_bytes: args.pool_size,
            alignment: args.alignment,
            ..ReplayConfig::new(run as u16, policy, file.events.len() as u64)
        };
        let mut mover = match args.latency {
            Some(model) => ModelMover::with_latency(model),
            None => ModelMover::instant(),
        };
        let mut sink = CollectSink {
            collector: &mut collector,
            error: None,
        };
        replay(
            &config,
            file.events.iter().copied(),
            &mut mover,
            &mut sink,
            &mut clock,
        )
        .map_err(|e| anyhow::anyhow!("{policy}: {e}"))?;
        if let Some(e) = sink.error {
            bail!("{policy}: {e}");
        }
    }
    Ok(collector)
}

pub fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let collector = simulate(&args)?;
    let report = collector.report().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "trace {}: {} events, {} buffers, peak live {}; pool {} (alignment {}), mover {}",
        report.trace.name,
        report.trace.events,
        report.trace.buffers,
        mib(report.trace.peak_live_bytes),
        mib(args.pool_size),
        args.alignment,
        match args.latency {
            Some(m) => format!("model {} ns + {} B/s", m.setup_ns, m.bytes_per_s),
            None => "instantaneous".into(),
        }
    );
    print_table(&report.runs, args.latency.is_some());
    if let Some(path) = &args.json {
        write_json(path, &report)?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn write_json(path: &Path, report: &records::Report) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn print_table(runs: &[RunResult], timed: bool) {
    let mut header = vec![
        "policy",
        "events",
        "rule1",
        "page-ins",
        "page-outs",
        "purges",
        "compactions",
        "bytes moved",
        "peak used",
        "peak overflow",
        "mean frag",
        "replay",
    ];
    if timed {
        header.extend(["stall", "p50", "p99"]);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let mut row = vec![
                r.policy.to_string(),
                r.events.to_string(),
                r.rule1_failures.to_string(),
                r.page_ins.to_string(),
                r.page_outs.to_string(),
                r.purges.to_string(),
                r.compaction_moves.to_string(),
                mib(r.bytes_moved),
                mib(r.peak_used_bytes),
                mib(r.peak_overflow_bytes),
                format!("{:.3}", r.mean_fragmentation),
                format!("{:.1} ms", r.replay_ns as f64 / 1e6),
            ];
            if timed {
                row.push(format!("{:.3} ms", r.stall_ns as f64 / 1e6));
                row.push(format!("{} ns", r.move_latency_ns.p50));
                row.push(format!("{} ns", r.move_latency_ns.p99));
            }
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap()
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if c == 0 {
                    format!("{s:<w$}", w = widths[c])
                } else {
                    format!("{s:>w$}", w = widths[c])
                }
            })
            .collect();
        println!("{}", parts.join("  "));
    };
    line(header.clone());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn latency_model() {
        assert_eq!(
            parse_latency("2000:400000000"),
            Ok(LatencyModel {
                setup_ns: 2000,
                bytes_per_s: 400_000_000
            })
        );
        assert!(parse_latency("2000").is_err());
        assert!(parse_latency("1:0").is_err());
    }

    #[test]
    fn policy_names() {
        assert_eq!(policies("all").unwrap(), Policy::ALL);
        assert_eq!(
            policies("drm-mm,defrag").unwrap(),
            [Policy::DrmMm, Policy::Defrag]
        );
        assert!(policies("best").is_err());
    }
}
