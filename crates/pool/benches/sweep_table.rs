//! Figures, not a timed test: `cargo bench -p pool --bench sweep_table`.
//!
//! The sweep table of every policy on every bundled trace: pool sizes 32 to
//! 160 MiB in 8 MiB steps, Rule 1 failures, page-outs and bytes moved per
//! policy, with the `fluid` capacity reference (docs/design.md 4.12) beside
//! them, and whether `defrag` keeps its rule (4.7) at every point. Every
//! (trace, size, policy) point runs in parallel (rayon). `SWEEP_TRACES` (a
//! comma-separated list of file names in traces/) limits the traces.

use pool::sweep::{run_point, PointResult, Subject};
use rayon::prelude::*;
use records::Policy;
use std::path::PathBuf;
use std::time::Instant;
use trace::Event;

const MIB: u64 = 1 << 20;

fn traces() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../traces");
    let only: Option<Vec<String>> = std::env::var("SWEEP_TRACES")
        .ok()
        .map(|s| s.split(',').map(str::to_owned).collect());
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            (n.ends_with(".log") || n.ends_with(".log.gz"))
                && only.as_ref().is_none_or(|o| o.contains(&n))
        })
        .collect();
    out.sort();
    out
}

const SUBJECTS: [Subject; 5] = [
    Subject::Policy(Policy::FirstFit),
    Subject::Policy(Policy::Compact),
    Subject::Policy(Policy::DrmMm),
    Subject::Policy(Policy::Defrag),
    Subject::Fluid,
];

fn main() {
    let t0 = Instant::now();
    let paths = traces();
    let loaded: Vec<(String, Vec<Event>)> = paths
        .par_iter()
        .map(|p| {
            let events = trace::read_file(p, trace::Mode::Lenient)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .events;
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                events,
            )
        })
        .collect();
    let parse_s = t0.elapsed().as_secs_f64();
    let sizes: Vec<u64> = (32..=160).step_by(8).map(|m| m * MIB).collect();
    let points: Vec<(usize, u64, Subject)> = (0..loaded.len())
        .flat_map(|t| {
            sizes
                .iter()
                .flat_map(move |&s| SUBJECTS.iter().map(move |&p| (t, s, p)))
        })
        .collect();
    let t1 = Instant::now();
    let results: Vec<PointResult> = points
        .par_iter()
        .map(|&(t, size, subject)| run_point(&loaded[t].1, subject, size, 4096).unwrap())
        .collect();
    let grid_s = t1.elapsed().as_secs_f64();
    let at = |t: usize, size: u64, subject: Subject| -> &PointResult {
        let k = points
            .iter()
            .position(|&p| p == (t, size, subject))
            .unwrap();
        &results[k]
    };
    let mut misses = Vec::new();
    for (t, (name, events)) in loaded.iter().enumerate() {
        println!("\n== {name} ({} events)", events.len());
        let head: Vec<String> = SUBJECTS
            .iter()
            .map(|s| format!("{:>12}", s.name()))
            .collect();
        println!("Rule 1 failures / page-outs / MiB moved");
        println!("{:>8} {}", "pool", head.join(" "));
        for &size in &sizes {
            let cells: Vec<String> = SUBJECTS
                .iter()
                .map(|&s| {
                    let r = at(t, size, s);
                    format!("{:>12}", r.counters.rule1_failures)
                })
                .collect();
            let outs: Vec<String> = SUBJECTS
                .iter()
                .map(|&s| format!("{:>12}", at(t, size, s).counters.page_outs))
                .collect();
            let moved: Vec<String> = SUBJECTS
                .iter()
                .map(|&s| {
                    format!(
                        "{:>12.1}",
                        at(t, size, s).counters.bytes_moved() as f64 / MIB as f64
                    )
                })
                .collect();
            println!("{:>5}MiB {}", size / MIB, cells.join(" "));
            println!("{:>8} {}", "outs", outs.join(" "));
            println!("{:>8} {}", "MiB", moved.join(" "));
            let fewest = SUBJECTS[..3]
                .iter()
                .map(|&s| at(t, size, s).counters.rule1_failures)
                .min()
                .unwrap();
            let defrag = at(t, size, Subject::Policy(Policy::Defrag))
                .counters
                .rule1_failures;
            if defrag > fewest {
                misses.push(format!(
                    "{name} at {} MiB: defrag {defrag} > {fewest}",
                    size / MIB
                ));
            }
        }
        let smallest: Vec<String> = SUBJECTS
            .iter()
            .map(|&s| {
                sizes
                    .iter()
                    .find(|&&z| at(t, z, s).counters.rule1_failures == 0)
                    .map_or_else(
                        || format!("{:>12}", "none"),
                        |z| format!("{:>9}MiB", z / MIB),
                    )
            })
            .collect();
        println!("{:>8} {}", "0 at", smallest.join(" "));
    }
    println!(
        "\n{} points in {grid_s:.1} s (parse {parse_s:.1} s) on {} threads; load {}",
        points.len(),
        rayon::current_num_threads(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if misses.is_empty() {
        println!("defrag: no more Rule 1 failures than the fewest of first-fit, compact, drm-mm at every point");
    } else {
        println!("defrag misses its rule at {} points:", misses.len());
        for m in misses {
            println!("  {m}");
        }
    }
}
