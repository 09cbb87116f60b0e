//! `cargo xtask sweep`: how big must the pool be? One trace, parsed once,
//! replayed at every pool size of a range under every policy and the `fluid`
//! reference, in parallel over every core.

use crate::size::{parse_pool_size, parse_size};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pool::model::LatencyModel;
use pool::sweep::{run_point_with, Subject};
use rayon::prelude::*;
use report::sweep::{Sweep, SweepPoint};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use trace::Event;

#[derive(clap::Args)]
pub struct SweepArgs {
    /// Trace file: a vc4 `@@@` dmesg log, plain or gzip (.log, .log.gz).
    #[arg(long)]
    pub trace: PathBuf,
    /// Pool sizes MIN..MAX (both with units, e.g. 32MiB..160MiB; MAX included when on a step).
    #[arg(long, default_value = "32MiB..160MiB")]
    pub pool_sizes: String,
    /// Distance between pool sizes.
    #[arg(long, default_value = "8MiB", value_parser = parse_size)]
    pub step: u64,
    /// first-fit, compact, drm-mm, defrag, a comma-separated list, or all (the fluid reference is always added).
    #[arg(long, default_value = "all")]
    pub policy: String,
    /// Placement alignment (a power of two).
    #[arg(long, default_value = "4KiB", value_parser = parse_size)]
    pub alignment: u64,
    /// Move latency model SETUP_NS:BYTES_PER_S (e.g. 2000:400000000): moves
    /// complete asynchronously on a virtual clock, and stalls are counted.
    #[arg(long, value_parser = crate::sim::parse_latency)]
    pub latency: Option<LatencyModel>,
    /// Directory for sweep.json, sweep.csv, the curves and index.html (default target/sweep).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Stop at the first problem in the trace instead of warning and going on.
    #[arg(long)]
    pub strict: bool,
}

/// `MIN..MAX` into the grid's pool sizes, or a message that says what is wrong.
fn grid_sizes(range: &str, step: u64, alignment: u64) -> anyhow::Result<Vec<u64>> {
    let (min, max) = range
        .split_once("..")
        .with_context(|| format!("--pool-sizes `{range}` is not MIN..MAX (e.g. 32MiB..160MiB)"))?;
    let min = parse_pool_size(min.trim()).map_err(|e| anyhow::anyhow!("--pool-sizes: {e}"))?;
    let max = parse_pool_size(max.trim()).map_err(|e| anyhow::anyhow!("--pool-sizes: {e}"))?;
    report::sweep::pool_sizes(min, max, step, alignment)
        .map_err(|e| anyhow::anyhow!("--pool-sizes {range} --step {step}: {e}"))
}

/// One grid point, through the pool crate's record-free runner (the same
/// pool core and policies as `sim`; a test holds the two to the same figures).
fn point(
    events: &[Event],
    subject: Subject,
    pool_bytes: u64,
    args: &SweepArgs,
) -> anyhow::Result<SweepPoint> {
    let r = run_point_with(events, subject, pool_bytes, args.alignment, args.latency)
        .map_err(|e| anyhow::anyhow!("{} at {pool_bytes} bytes: {e}", subject.name()))?;
    let timed = args.latency.is_some() && subject != Subject::Fluid;
    Ok(SweepPoint {
        policy: subject.name().into(),
        pool_bytes,
        events: r.events,
        rule1_failures: r.counters.rule1_failures,
        page_outs: r.counters.page_outs,
        bytes_moved: r.counters.bytes_moved(),
        compaction_moves: r.counters.compaction_moves,
        purges: r.counters.purges,
        peak_overflow_bytes: r.peak_overflow_bytes,
        mean_fragmentation: r.mean_fragmentation,
        stall_ns: timed.then_some(r.stall_ns),
        compactions_delayed: timed.then_some(r.counters.compactions_delayed),
    })
}

pub fn run(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let sizes = grid_sizes(&args.pool_sizes, args.step, args.alignment)?;
    let mut subjects: Vec<Subject> = crate::sim::policies(&args.policy)?
        .into_iter()
        .map(Subject::Policy)
        .collect();
    subjects.push(Subject::Fluid);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::firmware::target_dir().join("sweep"));
    // Before the replay, so a long sweep never ends in an error about where to write.
    crate::report_out::check_out(&out)?;

    let started = Instant::now();
    let compiled = crate::sim::load_trace(&args.trace, args.strict, true)?;
    let trace = compiled
        .trace()
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.trace.display()))?;
    // Parsed once; every grid point reads the same events (load_trace
    // refused a trace without any).
    let events: Vec<Event> = trace.events().collect();
    let load_s = started.elapsed().as_secs_f64();

    let grid: Vec<(Subject, u64)> = sizes
        .iter()
        .flat_map(|&size| subjects.iter().map(move |&s| (s, size)))
        .collect();
    let bar = ProgressBar::new(grid.len() as u64).with_style(
        ProgressStyle::with_template("sweep {bar:40} {pos}/{len} points, {elapsed} (eta {eta})")
            .expect("a valid template"),
    );
    let started = Instant::now();
    let points: Vec<SweepPoint> = grid
        .par_iter()
        .map(|&(subject, size)| {
            let p = point(&events, subject, size, &args);
            bar.inc(1);
            p
        })
        .collect::<anyhow::Result<_>>()?;
    bar.finish_and_clear();
    let replay_s = started.elapsed().as_secs_f64();

    let sweep = Sweep {
        source: "sim".into(),
        trace: trace::default_name(&args.trace),
        trace_events: events.len() as u64,
        alignment: args.alignment,
        mover: args.latency.map_or("instantaneous".to_string(), |m| {
            format!(
                "modelled, {} ns + bytes at {} B/s",
                m.setup_ns, m.bytes_per_s
            )
        }),
        subjects: subjects.iter().map(|s| s.name().to_string()).collect(),
        pool_sizes: sizes,
        points,
    };
    print!("{}", report::sweep::render(&sweep));
    let files = crate::report_out::write_sweep(&sweep, &out)?;
    println!(
        "\n{} points in {:.2} s on {} threads (trace read in {:.2} s)",
        grid.len(),
        replay_s,
        rayon::current_num_threads(),
        load_s
    );
    println!(
        "sweep: {} ({} files; open index.html)",
        out.display(),
        files
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records are not kept: the test wants each run's result only.
    struct Discard;

    impl pool::replay::RecordSink for Discard {
        fn record(&mut self, _: records::Record) {}
    }

    struct NoClock;

    impl pool::replay::Clock for NoClock {
        fn now_ns(&mut self) -> u64 {
            0
        }
        fn timer(&self) -> records::Timer {
            records::Timer {
                name: "none".into(),
                hz: 1_000_000_000,
            }
        }
    }

    /// A sweep point comes from the pool crate's record-free runner; `sim`
    /// runs the replay loop with its records and sink. On a real trace, at
    /// sizes where it pages, with and without a latency model, they agree.
    #[test]
    fn points_agree_with_the_replay_loop_of_sim() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let path = root.join("traces/kmscube-msaa4.log.gz");
        let compiled = trace::cache::load(&path, trace::Mode::Lenient, None).unwrap();
        let events: Vec<Event> = compiled.trace().unwrap().events().collect();
        let mut paged = 0;
        for latency in [
            None,
            Some(LatencyModel {
                setup_ns: 20_000,
                bytes_per_s: 50_000_000,
            }),
        ] {
            let args = SweepArgs {
                trace: path.clone(),
                pool_sizes: String::new(),
                step: 1,
                policy: "all".into(),
                alignment: 4096,
                latency,
                out: None,
                strict: false,
            };
            for size in [16u64 << 20, 56 << 20] {
                for policy in records::Policy::ALL {
                    let ours = point(&events, Subject::Policy(policy), size, &args).unwrap();
                    let config = pool::replay::ReplayConfig {
                        pool_bytes: size,
                        samples: 0,
                        snapshots: 0,
                        progress_updates: 0,
                        ..pool::replay::ReplayConfig::new(0, policy, events.len() as u64)
                    };
                    let mut mover = match latency {
                        Some(m) => pool::model::ModelMover::with_latency(m),
                        None => pool::model::ModelMover::instant(),
                    };
                    let sim = pool::replay::replay(
                        &config,
                        events.iter().copied(),
                        &mut mover,
                        &mut Discard,
                        &mut NoClock,
                    )
                    .unwrap();
                    let what = format!("{policy} at {size}, latency {latency:?}");
                    assert_eq!(
                        (
                            ours.rule1_failures,
                            ours.page_outs,
                            ours.bytes_moved,
                            ours.compaction_moves
                        ),
                        (
                            sim.rule1_failures,
                            sim.page_outs,
                            sim.bytes_moved,
                            sim.compaction_moves
                        ),
                        "{what}"
                    );
                    assert_eq!(ours.purges, sim.purges, "{what}");
                    assert_eq!(ours.peak_overflow_bytes, sim.peak_overflow_bytes, "{what}");
                    if latency.is_some() {
                        assert_eq!(ours.stall_ns, Some(sim.stall_ns), "{what}");
                        assert_eq!(
                            ours.compactions_delayed,
                            Some(sim.compactions_delayed),
                            "{what}"
                        );
                    }
                    paged += ours.page_outs;
                }
            }
        }
        assert!(
            paged > 0,
            "no size of the test pages out: it would prove little"
        );
    }

    #[test]
    fn ranges_with_units_and_clear_refusals() {
        assert_eq!(
            grid_sizes("32MiB..48MiB", 8 << 20, 4096).unwrap(),
            vec![32 << 20, 40 << 20, 48 << 20]
        );
        let e = grid_sizes("48MiB..32MiB", 8 << 20, 4096)
            .unwrap_err()
            .to_string();
        assert!(e.contains("starts above its end"), "{e}");
        let e = grid_sizes("32MiB", 8 << 20, 4096).unwrap_err().to_string();
        assert!(e.contains("is not MIN..MAX"), "{e}");
        let e = grid_sizes("4KiB..8GiB", 4096, 4096)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 1000"), "{e}");
        let e = grid_sizes("32MiB..48MiB", 1000, 4096)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a multiple of the alignment"), "{e}");
    }
}
