//! `cargo xtask sim`: replay a trace through the pool core on the host with a
//! modelled mover, one run per policy.

use crate::size::mib;
use anyhow::Context;
use pool::model::{LatencyModel, ModelMover};
use pool::parallel::replay_all;
use pool::replay::{Clock, ReplayConfig};
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
    /// Zero every allocation: none (the vc4 pool), cpu, dma, or deferred (pool::zeroing);
    /// its time is added to the stall.
    #[arg(long, default_value = "none", value_parser = parse_zero)]
    pub zero: records::ZeroVariant,
    /// Also write the result (docs/design.md section 5, "source": "sim") to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Directory for the report (default target/report).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Stop at the first problem in the trace instead of warning and going on.
    #[arg(long)]
    pub strict: bool,
    /// Parse the log even if target/trace-cache holds it compiled (and do not store it).
    #[arg(long)]
    pub no_cache: bool,
    /// Print the wall time of loading, replaying and writing the report.
    #[arg(long)]
    pub timings: bool,
}

fn parse_zero(text: &str) -> Result<records::ZeroVariant, String> {
    records::ZeroVariant::from_name(text)
        .ok_or_else(|| format!("--zero {text}: want none, cpu, dma or deferred"))
}

pub(crate) fn parse_latency(text: &str) -> Result<LatencyModel, String> {
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

pub(crate) fn policies(name: &str) -> anyhow::Result<Vec<Policy>> {
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

/// Where compiled traces are kept between runs.
pub fn cache_dir() -> PathBuf {
    crate::firmware::target_dir().join("trace-cache")
}

/// Reads a trace for the simulator (from the compiled-trace cache when it
/// holds this exact file, unless `use_cache` is false) and prints the one
/// line about its problems.
pub fn load_trace(
    path: &std::path::Path,
    strict: bool,
    use_cache: bool,
) -> anyhow::Result<trace::cache::Compiled> {
    let mode = if strict {
        trace::Mode::Strict
    } else {
        trace::Mode::Lenient
    };
    let cache = use_cache.then(cache_dir);
    let compiled = trace::cache::load(path, mode, cache.as_deref())
        .map_err(|e| crate::trace_cmd::trace_error(path, e))?;
    if let Some(why) = &compiled.cache_error {
        eprintln!("warning: trace cache: {why}");
    }
    if compiled.warning_count > 0 {
        eprintln!(
            "{}",
            crate::trace_cmd::problems_line(path, &compiled.warnings)
        );
    }
    let events = compiled
        .trace()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .event_count();
    if events == 0 {
        return Err(crate::trace_cmd::no_events(path));
    }
    Ok(compiled)
}

/// Wall time of each phase of a simulation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Reading the trace: the cache, or inflate + parse + encode.
    pub load_s: f64,
    /// Every run, in parallel.
    pub replay_s: f64,
    /// Whether the trace came from the cache.
    pub cached: bool,
}

/// Reads the trace (from the compiled-trace cache when it holds this exact
/// file) and replays it under every requested policy at once. The returned
/// collector holds everything a report needs (trace, samples, snapshots,
/// moves, results), its runs in the order of `--policy`.
pub fn simulate(
    args: &SimArgs,
    progress: &mut Progress,
    timings: &mut Timings,
) -> anyhow::Result<Collector> {
    let policies = policies(&args.policy)?;
    let started = Instant::now();
    let compiled = load_trace(&args.trace, args.strict, !args.no_cache)?;
    let trace = compiled
        .trace()
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.trace.display()))?;
    timings.load_s = started.elapsed().as_secs_f64();
    timings.cached = compiled.from_cache;
    let mut collector = Collector::new();
    let trace_record = Record::Trace(TraceInfo {
        name: trace::default_name(&args.trace),
        events: trace.event_count(),
        buffers: trace.buffer_count() as u64,
        peak_live_bytes: trace.peak_live_bytes(),
    });
    progress.on_record(&trace_record);
    collector
        .push(trace_record)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let configs: Vec<ReplayConfig> = policies
        .iter()
        .enumerate()
        .map(|(run, &policy)| ReplayConfig {
            pool_bytes: args.pool_size,
            alignment: args.alignment,
            ..ReplayConfig::new(run as u16, policy, trace.event_count())
        })
        .collect();
    let started = Instant::now();
    // Records reach the live view as they come, and the collector run by run
    // afterwards, so the report's order does not depend on thread timing.
    let mut records: Vec<Vec<Record>> = vec![Vec::new(); configs.len()];
    let outcomes = replay_all(
        &configs,
        || trace.events(),
        |_| {
            let model = match args.latency {
                Some(model) => ModelMover::with_latency(model),
                None => ModelMover::instant(),
            };
            pool::replay::SimMover::new(model, args.zero, Default::default())
        },
        || WallClock(Instant::now()),
        |index, record| {
            progress.on_record(&record);
            records[index].push(record);
        },
    );
    timings.replay_s = started.elapsed().as_secs_f64();
    for ((config, outcome), records) in configs.iter().zip(outcomes).zip(records) {
        outcome.map_err(|e| anyhow::anyhow!("{}: {e}", config.policy))?;
        for record in records {
            collector
                .push(record)
                .map_err(|e| anyhow::anyhow!("{}: {e}", config.policy))?;
        }
    }
    Ok(collector)
}

/// `cargo xtask sim`.
pub fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    println!(
        "sim: pool {} (alignment {} B), zero {}, mover {}",
        mib(args.pool_size),
        args.alignment,
        args.zero.name(),
        match args.latency {
            Some(m) => format!(
                "modelled: {} ns setup + bytes at {} B/s, one engine",
                m.setup_ns, m.bytes_per_s
            ),
            None => "modelled: instantaneous".into(),
        }
    );
    // Before the replay, so a long run never ends in an error about where to write.
    let out = crate::report_out::dir(args.out.clone());
    crate::report_out::check_out(&out)?;
    let whole = Instant::now();
    let mut progress = Progress::new();
    let mut timings = Timings::default();
    let collector = simulate(&args, &mut progress, &mut timings)?;
    progress.finish();
    let report_started = Instant::now();
    let written = crate::report_out::write(&collector, &out)?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&written.report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if args.timings {
        let report_s = report_started.elapsed().as_secs_f64();
        let total_s = whole.elapsed().as_secs_f64();
        println!(
            "timings: load {:.1} ms ({}), replay {:.1} ms, report {:.1} ms ({:.1} % of {:.1} ms)",
            timings.load_s * 1e3,
            if timings.cached { "cached" } else { "parsed" },
            timings.replay_s * 1e3,
            report_s * 1e3,
            100.0 * report_s / total_s,
            total_s * 1e3
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_policy_names() {
        assert_eq!(parse_zero("none"), Ok(records::ZeroVariant::None));
        assert_eq!(parse_zero("deferred"), Ok(records::ZeroVariant::Deferred));
        assert!(parse_zero("zva").is_err());
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
