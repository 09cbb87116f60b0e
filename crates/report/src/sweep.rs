//! The capacity question, answered over a grid: one trace replayed at many
//! pool sizes under every policy (and the `fluid` reference), as a terminal
//! table, `sweep.json`, `sweep.csv`, two SVG curves and `index.html`.
//!
//! A grid point carries the field names of a run in `report.json`, so numbers
//! can be matched between a sweep and a single run.

use crate::{charts::policy_colour, html::escape, units};
use anyhow::{anyhow, Context};
use plotters::prelude::*;
use records::Policy;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The name of the capacity reference in a sweep.
pub const FLUID: &str = "fluid";

/// What the `fluid` reference is, wherever it is shown.
pub const FLUID_NOTE: &str = "fluid: the same events in a pool that never fragments (free space is \
     always one hole; purge and LRU eviction as the policies do). A reference, not a policy, and not a \
     lower bound: it may keep fewer buffers resident, and so pin fewer. Where a policy fails and fluid \
     does not, the failures are about the arrangement of free space; where fluid fails too, about its amount.";

/// One (policy, pool size) point: field names as in a run of `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub policy: String,
    pub pool_bytes: u64,
    pub events: u64,
    pub rule1_failures: u64,
    pub page_outs: u64,
    pub bytes_moved: u64,
    pub compaction_moves: u64,
    pub purges: u64,
    pub peak_overflow_bytes: u64,
    pub mean_fragmentation: f64,
    /// With a latency model: virtual time the pool waited for moves in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_ns: Option<u64>,
    /// With a latency model: compaction moves that had to wait for a move in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compactions_delayed: Option<u64>,
}

/// A whole sweep, as `sweep.json` holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// Always "sim": a sweep runs the pool core on the host.
    pub source: String,
    pub trace: String,
    pub trace_events: u64,
    pub alignment: u64,
    /// "instantaneous" or the latency model, e.g. "2000 ns + bytes at 400000000 B/s".
    pub mover: String,
    /// The policies (and `fluid`) in column order.
    pub subjects: Vec<String>,
    /// The pool sizes in row order.
    pub pool_sizes: Vec<u64>,
    pub points: Vec<SweepPoint>,
}

impl Sweep {
    /// The point of `subject` at `pool_bytes`.
    pub fn point(&self, subject: &str, pool_bytes: u64) -> Option<&SweepPoint> {
        self.points
            .iter()
            .find(|p| p.policy == subject && p.pool_bytes == pool_bytes)
    }

    /// The smallest pool size of the grid at which `subject` has no Rule 1
    /// failure and no larger size of the grid has one either.
    pub fn smallest_without_failures(&self, subject: &str) -> Option<u64> {
        let mut answer = None;
        for &size in self.pool_sizes.iter().rev() {
            match self.point(subject, size) {
                Some(p) if p.rule1_failures == 0 => answer = Some(size),
                _ => break,
            }
        }
        answer
    }
}

/// Why a pool-size range cannot be swept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeError {
    ZeroStep,
    MinAboveMax {
        min: u64,
        max: u64,
    },
    NotAligned {
        what: &'static str,
        value: u64,
        alignment: u64,
    },
    TooMany {
        points: u64,
    },
    Empty,
}

impl std::fmt::Display for RangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RangeError::ZeroStep => write!(f, "the step must be above 0"),
            RangeError::MinAboveMax { min, max } => write!(
                f,
                "the range starts above its end ({} > {})",
                units::bytes(*min),
                units::bytes(*max)
            ),
            RangeError::NotAligned {
                what,
                value,
                alignment,
            } => write!(
                f,
                "the {what} ({value} bytes) is not a multiple of the alignment ({alignment} bytes)"
            ),
            RangeError::TooMany { points } => write!(
                f,
                "{points} pool sizes: at most {MAX_POINTS} per sweep (use a larger --step)"
            ),
            RangeError::Empty => write!(f, "the range holds no pool size"),
        }
    }
}

impl std::error::Error for RangeError {}

/// The most pool sizes one sweep takes.
pub const MAX_POINTS: u64 = 1000;

/// The pool sizes `min, min + step, ...` up to `max` (included when it falls
/// on a step), each a non-zero multiple of `alignment`.
pub fn pool_sizes(min: u64, max: u64, step: u64, alignment: u64) -> Result<Vec<u64>, RangeError> {
    if step == 0 {
        return Err(RangeError::ZeroStep);
    }
    if min > max {
        return Err(RangeError::MinAboveMax { min, max });
    }
    for (what, value) in [
        ("smallest size", min),
        ("largest size", max),
        ("step", step),
    ] {
        if alignment == 0 || value % alignment != 0 {
            return Err(RangeError::NotAligned {
                what,
                value,
                alignment,
            });
        }
    }
    if min == 0 {
        return Err(RangeError::Empty);
    }
    let points = (max - min) / step + 1;
    if points > MAX_POINTS {
        return Err(RangeError::TooMany { points });
    }
    Ok((0..points).map(|i| min + i * step).collect())
}

/// The terminal tables: Rule 1 failures, page-outs and bytes moved, one row
/// per pool size and one column per policy; then each policy's smallest pool
/// without failures.
pub fn render(sweep: &Sweep) -> String {
    let mut out = format!(
        "sweep: trace {} ({} events), {} pool sizes from {} to {}, mover {}, source: simulator on the host\n",
        sweep.trace,
        units::count(sweep.trace_events),
        sweep.pool_sizes.len(),
        units::bytes(sweep.pool_sizes.first().copied().unwrap_or(0)),
        units::bytes(sweep.pool_sizes.last().copied().unwrap_or(0)),
        sweep.mover
    );
    type Cell = fn(&SweepPoint) -> String;
    let mut tables: Vec<(&str, Cell)> = vec![
        ("Rule 1 failures", |p| units::count(p.rule1_failures)),
        ("page-outs", |p| units::count(p.page_outs)),
        ("bytes moved", |p| units::bytes(p.bytes_moved)),
    ];
    // With a latency model, what moves in flight cost (fluid copies nothing).
    if sweep.points.iter().any(|p| p.stall_ns.is_some()) {
        tables.push(("compaction moves delayed by a move in flight", |p| {
            p.compactions_delayed.map_or("–".into(), units::count)
        }));
        tables.push(("stall, waiting for moves in flight (virtual time)", |p| {
            p.stall_ns.map_or("–".into(), units::duration_ns)
        }));
    }
    for (title, cell) in tables {
        out.push_str(&format!("\n{title}\n"));
        let mut rows: Vec<Vec<String>> = vec![std::iter::once("pool".to_string())
            .chain(sweep.subjects.iter().cloned())
            .collect()];
        for &size in &sweep.pool_sizes {
            let mut row = vec![units::bytes(size)];
            for s in &sweep.subjects {
                row.push(sweep.point(s, size).map_or("–".into(), cell));
            }
            rows.push(row);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for (i, row) in rows.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (text, w))| {
                    if c == 0 {
                        format!("{text:<w$}")
                    } else {
                        format!("{text:>w$}")
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if i == 0 {
                out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
                out.push('\n');
            }
        }
    }
    out.push_str(
        "\nsmallest pool in the grid with no Rule 1 failure (at it and every larger size):\n",
    );
    for s in &sweep.subjects {
        let answer = sweep
            .smallest_without_failures(s)
            .map_or("none in range".to_string(), units::bytes);
        out.push_str(&format!("  {s:<12} {answer}\n"));
    }
    if sweep.subjects.iter().any(|s| s == FLUID) {
        out.push('\n');
        for line in crate::table::wrap(FLUID_NOTE, crate::table::DEFAULT_WIDTH) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// `sweep.csv`: one line per point, the columns of [`SweepPoint`].
pub fn csv(sweep: &Sweep) -> String {
    let mut out = String::from(
        "policy,pool_bytes,events,rule1_failures,page_outs,bytes_moved,compaction_moves,purges,peak_overflow_bytes,mean_fragmentation,stall_ns,compactions_delayed\n",
    );
    let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    for p in &sweep.points {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{:.6},{},{}\n",
            p.policy,
            p.pool_bytes,
            p.events,
            p.rule1_failures,
            p.page_outs,
            p.bytes_moved,
            p.compaction_moves,
            p.purges,
            p.peak_overflow_bytes,
            p.mean_fragmentation,
            opt(p.stall_ns),
            opt(p.compactions_delayed)
        ));
    }
    out
}

fn subject_colour(subject: &str) -> RGBColor {
    subject
        .parse::<Policy>()
        .map_or(RGBColor(0x55, 0x55, 0x55), policy_colour)
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a sweep chart: {e:?}")
}

/// One curve per subject over pool size; `log` for a log value axis, where a
/// zero is drawn at the bottom of the axis and labelled 0.
fn curve_chart(
    sweep: &Sweep,
    title: &str,
    y_desc: &str,
    value: fn(&SweepPoint) -> f64,
    log: bool,
) -> anyhow::Result<String> {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let x_lo = mib(sweep.pool_sizes.first().copied().unwrap_or(0));
    let x_hi = mib(sweep.pool_sizes.last().copied().unwrap_or(0)).max(x_lo + 1.0);
    let y_hi = sweep.points.iter().map(value).fold(0.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let caption = format!("{title}, trace {}, mover {}", sweep.trace, sweep.mover);
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(caption, ("sans-serif", 17))
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(76);
        // A zero on the log axis sits at its floor, half a unit below one.
        let floor = 0.5;
        let series: Vec<(String, Vec<(f64, f64)>)> = sweep
            .subjects
            .iter()
            .map(|s| {
                let pts = sweep
                    .pool_sizes
                    .iter()
                    .filter_map(|&size| sweep.point(s, size))
                    .map(|p| {
                        let v = value(p);
                        (mib(p.pool_bytes), if log { v.max(floor) } else { v })
                    })
                    .collect();
                (s.clone(), pts)
            })
            .collect();
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                for (subject, pts) in &series {
                    let colour = subject_colour(subject);
                    // The reference thinner than the policies.
                    let style = colour.stroke_width(if subject == FLUID { 1 } else { 2 });
                    chart
                        .draw_series(LineSeries::new(pts.iter().copied(), style))
                        .map_err(err)?
                        .label(subject.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 22, y)], colour.stroke_width(3))
                        });
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                        .map_err(err)?;
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(RGBColor(160, 160, 160))
                    .label_font(("sans-serif", 14))
                    .draw()
                    .map_err(err)?;
            }};
        }
        if log {
            let mut chart = builder
                .build_cartesian_2d(x_lo..x_hi, (floor..(y_hi.max(1.0) * 2.0)).log_scale())
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("pool size (MiB)")
                .y_desc(y_desc)
                .y_label_formatter(&|v| {
                    if *v <= floor {
                        "0".to_string()
                    } else {
                        units::count(v.round() as u64)
                    }
                })
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(err)?;
            draw!(chart);
        } else {
            let mut chart = builder
                .build_cartesian_2d(x_lo..x_hi, 0.0..(y_hi.max(1.0) * 1.05))
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("pool size (MiB)")
                .y_desc(y_desc)
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(err)?;
            draw!(chart);
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The two curves: Rule 1 failures (log scale) and bytes moved, against pool size.
pub fn charts(sweep: &Sweep) -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(vec![
        (
            "sweep_failures.svg",
            curve_chart(
                sweep,
                "Rule 1 failures against pool size",
                "Rule 1 failures (log scale, 0 at the floor)",
                |p| p.rule1_failures as f64,
                true,
            )?,
        ),
        (
            "sweep_bytes_moved.svg",
            curve_chart(
                sweep,
                "Bytes moved against pool size",
                "bytes moved (MiB)",
                |p| p.bytes_moved as f64 / (1u64 << 20) as f64,
                false,
            )?,
        ),
    ])
}

/// `index.html`: the sweep section (tables and curves), self-contained.
pub fn page(sweep: &Sweep, charts: &[(&'static str, String)]) -> String {
    let mut body = String::new();
    body.push_str(&format!(
        "<h1>Pool-size sweep: {}</h1>\n<p>Source: simulator on the host (pool core, mover {}); \
         {} events; alignment {} bytes. Counts are exact; there are no timings here.</p>\n",
        escape(&sweep.trace),
        escape(&sweep.mover),
        units::count(sweep.trace_events),
        sweep.alignment
    ));
    body.push_str("<section id=\"sweep\">\n<h2>Smallest pool without Rule 1 failures</h2>\n<table><tr><th>policy</th><th>smallest pool in the grid</th></tr>\n");
    for s in &sweep.subjects {
        let answer = sweep
            .smallest_without_failures(s)
            .map_or("none in range".to_string(), units::bytes);
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>\n",
            escape(s),
            escape(&answer)
        ));
    }
    body.push_str("</table>\n");
    for (_, svg) in charts {
        body.push_str("<figure>");
        body.push_str(svg);
        body.push_str("</figure>\n");
    }
    body.push_str("<h2>Every point</h2>\n<table><tr><th>pool</th>");
    for s in &sweep.subjects {
        body.push_str(&format!(
            "<th>{0} failures</th><th>{0} page-outs</th><th>{0} moved</th>",
            escape(s)
        ));
    }
    body.push_str("</tr>\n");
    for &size in &sweep.pool_sizes {
        body.push_str(&format!("<tr><td>{}</td>", units::bytes(size)));
        for s in &sweep.subjects {
            match sweep.point(s, size) {
                Some(p) => body.push_str(&format!(
                    "<td>{}</td><td>{}</td><td>{}</td>",
                    p.rule1_failures,
                    p.page_outs,
                    units::bytes(p.bytes_moved)
                )),
                None => body.push_str("<td>–</td><td>–</td><td>–</td>"),
            }
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</table>\n");
    if sweep.subjects.iter().any(|s| s == FLUID) {
        body.push_str(&format!("<p>{}</p>\n", escape(FLUID_NOTE)));
    }
    body.push_str("</section>\n");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>poolbed sweep: {}</title>\n<style>\n{}\n</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(&sweep.trace),
        crate::html::CSS
    )
}

/// Writes `sweep.json`, `sweep.csv`, the curves and `index.html` into `dir`;
/// returns the files written.
pub fn write_dir(sweep: &Sweep, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let charts = charts(sweep)?;
    let mut files: Vec<(String, String)> = vec![
        (
            "sweep.json".into(),
            serde_json::to_string_pretty(sweep)? + "\n",
        ),
        ("sweep.csv".into(), csv(sweep)),
    ];
    files.extend(charts.iter().map(|(n, s)| (n.to_string(), s.clone())));
    files.push(("index.html".into(), page(sweep, &charts)));
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn sizes_of_a_range() {
        assert_eq!(
            pool_sizes(32 * MIB, 48 * MIB, 8 * MIB, 4096),
            Ok(vec![32 * MIB, 40 * MIB, 48 * MIB])
        );
        // The end is kept only when it falls on a step.
        assert_eq!(
            pool_sizes(32 * MIB, 44 * MIB, 8 * MIB, 4096),
            Ok(vec![32 * MIB, 40 * MIB])
        );
        assert_eq!(pool_sizes(8 * MIB, 8 * MIB, MIB, 4096), Ok(vec![8 * MIB]));
    }

    #[test]
    fn bad_ranges_are_refused_with_a_reason() {
        assert_eq!(pool_sizes(MIB, MIB, 0, 4096), Err(RangeError::ZeroStep));
        assert_eq!(
            pool_sizes(2 * MIB, MIB, MIB, 4096),
            Err(RangeError::MinAboveMax {
                min: 2 * MIB,
                max: MIB
            })
        );
        assert!(matches!(
            pool_sizes(MIB + 1, 2 * MIB, MIB, 4096),
            Err(RangeError::NotAligned {
                what: "smallest size",
                ..
            })
        ));
        assert!(matches!(
            pool_sizes(MIB, 2 * MIB, 1000, 4096),
            Err(RangeError::NotAligned { what: "step", .. })
        ));
        assert_eq!(pool_sizes(0, MIB, 4096, 4096), Err(RangeError::Empty));
        assert_eq!(
            pool_sizes(4096, 1001 * 4096, 4096, 4096),
            Err(RangeError::TooMany { points: 1001 })
        );
        assert_eq!(
            pool_sizes(4096, 1000 * 4096, 4096, 4096).map(|v| v.len()),
            Ok(1000)
        );
        let text = pool_sizes(2 * MIB, MIB, MIB, 4096).unwrap_err().to_string();
        assert!(text.contains("starts above its end"), "{text}");
    }

    fn point(policy: &str, pool_bytes: u64, rule1_failures: u64) -> SweepPoint {
        SweepPoint {
            policy: policy.into(),
            pool_bytes,
            events: 10,
            rule1_failures,
            page_outs: rule1_failures * 2,
            bytes_moved: rule1_failures * MIB,
            compaction_moves: 0,
            purges: 0,
            peak_overflow_bytes: 0,
            mean_fragmentation: 0.1,
            stall_ns: None,
            compactions_delayed: None,
        }
    }

    fn sample() -> Sweep {
        let sizes = vec![8 * MIB, 16 * MIB, 24 * MIB, 32 * MIB];
        // first-fit: 5, 0, 1, 0 (a failure comes back at 24 MiB); compact: 3, 0, 0, 0;
        // fluid: never fails; drm-mm: always fails.
        let mut points = Vec::new();
        for (i, &s) in sizes.iter().enumerate() {
            points.push(point("first-fit", s, [5, 0, 1, 0][i]));
            points.push(point("compact", s, [3, 0, 0, 0][i]));
            points.push(point("drm-mm", s, 1));
            points.push(point(FLUID, s, 0));
        }
        Sweep {
            source: "sim".into(),
            trace: "t".into(),
            trace_events: 10,
            alignment: 4096,
            mover: "instantaneous".into(),
            subjects: vec![
                "first-fit".into(),
                "compact".into(),
                "drm-mm".into(),
                FLUID.into(),
            ],
            pool_sizes: sizes,
            points,
        }
    }

    #[test]
    fn smallest_size_without_failures_holds_for_every_larger_size() {
        let s = sample();
        assert_eq!(s.smallest_without_failures("first-fit"), Some(32 * MIB));
        assert_eq!(s.smallest_without_failures("compact"), Some(16 * MIB));
        assert_eq!(s.smallest_without_failures("drm-mm"), None);
        assert_eq!(s.smallest_without_failures(FLUID), Some(8 * MIB));
        let text = render(&s);
        assert!(text.contains("drm-mm       none in range"), "{text}");
        assert!(text.contains("compact      16 MiB"), "{text}");
        assert!(text.contains("not a lower bound"), "{text}");
    }

    #[test]
    fn files_parse_and_agree() {
        let s = sample();
        let dir = std::env::temp_dir().join(format!("poolbed-sweep-{}", std::process::id()));
        let files = write_dir(&s, &dir).unwrap();
        assert_eq!(files.len(), 5);
        let back: Sweep =
            serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap())
                .unwrap();
        assert_eq!(back, s);
        let csv = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + s.points.len());
        assert!(csv.contains("first-fit,8388608,10,5,10,5242880,"), "{csv}");
        for svg in ["sweep_failures.svg", "sweep_bytes_moved.svg"] {
            let text = std::fs::read_to_string(dir.join(svg)).unwrap();
            roxmltree::Document::parse(&text).unwrap();
        }
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(html.contains("<section id=\"sweep\">"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
