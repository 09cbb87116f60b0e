//! `cargo xtask sim`: replay a trace through the pool core on the host with a
//! modelled mover, one run per policy.

use crate::size::mib;
use anyhow::{bail, Context};
use pool::model::{LatencyModel, ModelMover};
use pool::replay::{replay, Clock, RecordSink, ReplayConfig};
use records::{Collector, Policy, Record, Timer, TraceInfo};
use report::live::Progress;
use std::path::PathBuf;
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
    #[arg(long, default_value = "128MiB", value_parser = crate::size::parse_pool_size)]
    pub pool_size: u64,
    /// Placement alignment (a power of two).
    #[arg(long, default_value = "4KiB", value_parser = crate::size::parse_size)]
    pub alignment: u64,
    /// Move latency model SETUP_NS:BYTES_PER_S (e.g. 2000:400000000); moves
    /// then complete asynchronously on a virtual clock. Default: instantaneous.
    #[arg(long, value_parser = parse_latency)]
    pub latency: Option<LatencyModel>,
    /// Also write the result (docs/design.md section 5, "source": "sim") to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Directory for the report (default target/report).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Stop at the first problem in the trace instead of warning and going on.
    #[arg(long)]
    pub strict: bool,
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

/// Records go into the collector and the live view; the first error is kept
/// for later.
struct CollectSink<'a> {
    collector: &'a mut Collector,
    progress: &'a mut Progress,
    error: Option<records::CollectError>,
}

impl RecordSink for CollectSink<'_> {
    fn record(&mut self, record: &Record) {
        self.progress.on_record(record);
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
pub fn simulate(args: &SimArgs, progress: &mut Progress) -> anyhow::Result<Collector> {
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
    let trace_record = Record::Trace(TraceInfo {
        name: trace::default_name(&args.trace),
        events: file.stats.events,
        buffers: file.stats.buffers,
        peak_live_bytes: file.stats.peak_live_bytes,
    });
    progress.on_record(&trace_record);
    collector
        .push(trace_record)
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
            progress: &mut *progress,
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

/// `cargo xtask sim`.
pub fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    println!(
        "sim: pool {} (alignment {} B), mover {}",
        mib(args.pool_size),
        args.alignment,
        match args.latency {
            Some(m) => format!(
                "modelled: {} ns setup + bytes at {} B/s, one engine",
                m.setup_ns, m.bytes_per_s
            ),
            None => "modelled: instantaneous".into(),
        }
    );
    let mut progress = Progress::new();
    let collector = simulate(&args, &mut progress)?;
    progress.finish();
    let out = crate::report_out::dir(args.out.clone());
    let written = crate::report_out::write(&collector, &out)?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&written.report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

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
