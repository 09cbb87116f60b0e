//! `timeline.csv`: one line per sampled event of every run.

use records::Collector;
use std::fmt::Write;

/// The CSV header; units are in the column names.
pub const HEADER: &str =
    "run,policy,mover,event,time_s,used_bytes,overflow_bytes,largest_hole_bytes,holes,fragmentation";

/// The timeline of every run, in stream order.
pub fn csv(collector: &Collector) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for run in &collector.runs {
        for s in &run.samples {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "{},{},{},{},{:.6},{},{},{},{},{:.6}",
                run.run,
                run.policy,
                run.mover,
                s.event,
                s.time_us as f64 / 1e6,
                s.used_bytes,
                s.overflow_bytes,
                s.largest_hole,
                s.holes,
                s.fragmentation
            );
        }
    }
    out
}
