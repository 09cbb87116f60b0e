//! SVG charts drawn with plotters: the policies over trace time, and move
//! latency against move size.
//!
//! Text is emitted as SVG `<text>` (no font files are read), so charts render
//! the same on any machine and in the self-contained HTML page.

use crate::{representative_runs, units};
use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use records::{Collector, MoverKind, Policy, Report, RunDetail, Sample};

/// One chart, ready to save or inline.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name in the report directory.
    pub file: &'static str,
    /// Heading for the HTML page.
    pub title: String,
    pub svg: String,
    /// Why the chart is empty or partial, when it is.
    pub note: Option<String>,
}

const SIZE: (u32, u32) = (960, 420);
/// Points kept per line: enough for a smooth line at the chart's width.
const MAX_LINE_POINTS: usize = 2000;
/// Points kept per mover in the scatter: keeps the SVG (and the page) small.
const MAX_SCATTER_POINTS: usize = 3000;

/// The colour of a policy, the same in every chart (Okabe-Ito, colour-blind safe).
pub fn policy_colour(p: Policy) -> RGBColor {
    match p {
        Policy::FirstFit => RGBColor(0xD5, 0x5E, 0x00),
        Policy::Compact => RGBColor(0x00, 0x72, 0xB2),
        Policy::DrmMm => RGBColor(0x00, 0x9E, 0x73),
        Policy::Defrag => RGBColor(0xCC, 0x79, 0xA7),
    }
}

/// The colour of a mover in the latency chart.
pub fn mover_colour(m: MoverKind) -> RGBColor {
    match m {
        MoverKind::Dma => RGBColor(0x00, 0x72, 0xB2),
        MoverKind::Cpu => RGBColor(0xE6, 0x9F, 0x00),
        MoverKind::Model => RGBColor(0x00, 0x9E, 0x73),
    }
}

fn source_name(report: &Report) -> &'static str {
    match report.source {
        records::Source::Sim => "simulation",
        records::Source::Qemu => "QEMU emulation",
        records::Source::Hardware => "hardware",
    }
}

/// "trace kmscube, pool 16 MiB, QEMU emulation": what every title names.
pub fn title_context(report: &Report) -> String {
    format!(
        "trace {}, pool {}, {}",
        report.trace.name,
        crate::metrics::pool_sizes(report),
        source_name(report)
    )
}

/// Every chart the data allows: the three timelines need a collector (samples);
/// the latency chart is drawn from move samples or, without them, from the
/// per-size-class latencies of the summary.
pub fn all(report: &Report, collector: Option<&Collector>) -> anyhow::Result<Vec<Chart>> {
    let mut charts = Vec::new();
    if let Some(c) = collector {
        let (mover, runs) = representative_runs(c);
        let runs: Vec<&RunDetail> = runs.into_iter().filter(|r| !r.samples.is_empty()).collect();
        let pool = runs.iter().map(|r| r.pool_bytes).max().unwrap_or(0);
        let by = mover.map_or(String::new(), |m| format!(" (mover {m})"));
        let ctx = title_context(report);
        charts.push(timeline_chart(
            "occupancy.svg",
            &format!("Pool occupancy: used bytes, {ctx}{by}"),
            "used in pool (MiB)",
            &runs,
            |s| units::mib(s.used_bytes),
            Some(units::mib(pool)),
        )?);
        charts.push(timeline_chart(
            "fragmentation.svg",
            &format!("Fragmentation (1 - largest hole / free), {ctx}{by}"),
            "fragmentation (%)",
            &runs,
            |s| f64::from(s.fragmentation) * 100.0,
            Some(100.0),
        )?);
        charts.push(timeline_chart(
            "overflow.svg",
            &format!("Overflow: bytes outside the pool, {ctx}{by}"),
            "overflow (MiB)",
            &runs,
            |s| units::mib(s.overflow_bytes),
            None,
        )?);
    }
    charts.push(latency_chart(report, collector)?);
    Ok(charts)
}

/// The legend every chart draws: one box, in the corner the chart's data leaves free.
fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// Keeps at most `max` points, preserving each bucket's minimum and maximum so
/// peaks survive the thinning.
fn thin_line(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let buckets = max / 2;
    let per = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(max + 2);
    for chunk in points.chunks(per) {
        let lo = chunk
            .iter()
            .enumerate()
            .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .map(|x| x.0)
            .unwrap_or(0);
        let hi = chunk
            .iter()
            .enumerate()
            .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .map(|x| x.0)
            .unwrap_or(0);
        let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(chunk[a]);
        if b != a {
            out.push(chunk[b]);
        }
    }
    if let (Some(last), Some(end)) = (out.last(), points.last()) {
        if last != end {
            out.push(*end);
        }
    }
    out
}

/// Height of one policy's panel in a timeline chart.
const PANEL_HEIGHT: u32 = 136;
/// Room above the panels for the title.
const TITLE_HEIGHT: u32 = 36;
/// Room below the last panel for the time axis.
const X_AXIS_HEIGHT: u32 = 44;

/// A timeline as small multiples: one panel per policy, stacked, on one
/// shared time axis and one shared value axis. Policies often lie on top of
/// each other for most of a trace; in one plot only the last colour drawn
/// would show. Each panel draws the other policies in light grey behind its
/// own line, so differences stay readable without hiding anything; the
/// panel's title, in the policy's colour, names it.
fn timeline_chart(
    file: &'static str,
    title: &str,
    y_desc: &str,
    runs: &[&RunDetail],
    value: fn(&Sample) -> f64,
    y_full_scale: Option<f64>,
) -> anyhow::Result<Chart> {
    let series: Vec<(Policy, Vec<(f64, f64)>)> = runs
        .iter()
        .map(|r| {
            let pts: Vec<(f64, f64)> = r
                .samples
                .iter()
                .map(|s| (s.time_us as f64 / 1e6, value(s)))
                // The collector range-checks samples (records::validate);
                // this keeps a point plotters cannot place (negative, not
                // finite: its pixel arithmetic overflows) out of any chart
                // whatever the samples' origin.
                .filter(|&(x, y)| x.is_finite() && y.is_finite() && x >= 0.0 && y >= 0.0)
                .collect();
            (r.policy, thin_line(&pts, MAX_LINE_POINTS))
        })
        .collect();
    let x_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let y_data_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let y_max = y_full_scale.unwrap_or(0.0).max(y_data_max * 1.05);
    let x_max = if x_max > 0.0 { x_max } else { 1.0 };
    let y_max = if y_max > 0.0 { y_max } else { 1.0 };
    let note = series
        .is_empty()
        .then(|| format!("{file}: no samples in the records"));

    let panels = series.len().max(1) as u32;
    let size = (SIZE.0, TITLE_HEIGHT + panels * PANEL_HEIGHT + X_AXIS_HEIGHT);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(title, ("sans-serif", 17)).map_err(err)?;
        if series.is_empty() {
            empty_message(&root, "no samples in this report")?;
        }
        let (body, _) = root.split_vertically((panels * PANEL_HEIGHT + X_AXIS_HEIGHT) as i32);
        let last = series.len().saturating_sub(1);
        let mut rest = body;
        for (i, (policy, pts)) in series.iter().enumerate() {
            let height = PANEL_HEIGHT + if i == last { X_AXIS_HEIGHT } else { 0 };
            let (panel, below) = rest.split_vertically(height as i32);
            rest = below;
            let colour = policy_colour(*policy);
            let mut chart = ChartBuilder::on(&panel)
                .caption(
                    policy.as_str(),
                    ("sans-serif", 14).into_font().color(&colour),
                )
                .margin_left(14)
                .margin_right(14)
                .margin_top(6)
                .x_label_area_size(if i == last { X_AXIS_HEIGHT } else { 0 })
                .y_label_area_size(64)
                .build_cartesian_2d(0f64..x_max, 0f64..y_max)
                .map_err(err)?;
            let mut mesh = chart.configure_mesh();
            mesh.y_desc(y_desc)
                .y_labels(3)
                .light_line_style(RGBColor(240, 240, 240));
            if i == last {
                mesh.x_desc("trace time (s)");
            }
            mesh.draw().map_err(err)?;
            for (other, other_pts) in &series {
                if other != policy {
                    chart
                        .draw_series(LineSeries::new(
                            other_pts.iter().copied(),
                            CONTEXT_GREY.stroke_width(1),
                        ))
                        .map_err(err)?;
                }
            }
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(Chart {
        file,
        title: title.to_string(),
        svg,
        note,
    })
}

/// The other policies behind a panel's own line.
const CONTEXT_GREY: RGBColor = RGBColor(200, 200, 200);

fn empty_message(root: &DrawingArea<SVGBackend, Shift>, msg: &str) -> anyhow::Result<()> {
    let (w, h) = root.dim_in_pixel();
    let style = ("sans-serif", 18)
        .into_font()
        .color(&RGBColor(110, 110, 110));
    root.draw(&Text::new(
        msg.to_string(),
        (w as i32 / 2 - 150, h as i32 / 2),
        style,
    ))
    .map_err(err)
}

/// Evenly spaced subset of at most `max` items, always keeping the slowest
/// (the outliers are what a driver engineer looks for).
fn thin_scatter(points: &[(u64, u64)], max: usize) -> Vec<(u64, u64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let step = points.len() as f64 / max as f64;
    let mut out: Vec<(u64, u64)> = (0..max)
        .map(|i| points[(i as f64 * step) as usize])
        .collect();
    if let Some(slowest) = points.iter().max_by_key(|p| p.1) {
        out.push(*slowest);
    }
    out
}

/// One mover's points (move bytes, latency ns), and whether they are
/// individual moves (`true`) or size-class percentiles.
type LatencySeries = (MoverKind, Vec<(u64, u64)>, bool);

/// Latency against move size, log-log, one colour per mover.
fn latency_chart(report: &Report, collector: Option<&Collector>) -> anyhow::Result<Chart> {
    let title = format!("Move latency against move size, {}", title_context(report));
    // Per mover: the points and whether they are individual moves or class percentiles.
    let mut series: Vec<LatencySeries> = Vec::new();
    for mover in [MoverKind::Dma, MoverKind::Cpu, MoverKind::Model] {
        let samples: Vec<(u64, u64)> = collector
            .into_iter()
            .flat_map(|c| c.runs.iter())
            .filter(|r| r.mover == mover)
            .flat_map(|r| r.moves.iter().map(|m| (m.bytes, m.latency_ns)))
            .filter(|&(b, l)| b > 0 && l > 0)
            .collect();
        if !samples.is_empty() {
            series.push((mover, thin_scatter(&samples, MAX_SCATTER_POINTS), true));
            continue;
        }
        // Without individual moves, each size class's p50 and p99 still show the trend.
        let classes: Vec<(u64, u64)> = report
            .runs
            .iter()
            .filter(|r| r.mover == mover)
            .flat_map(|r| r.latency_by_size.iter())
            .filter(|c| c.moves > 0)
            .flat_map(|c| {
                let mean_size = (c.bytes / c.moves).max(1);
                [(mean_size, c.latency_ns.p50), (mean_size, c.latency_ns.p99)]
            })
            .filter(|&(b, l)| b > 0 && l > 0)
            .collect();
        if !classes.is_empty() {
            series.push((mover, classes, false));
        }
    }
    let all = series.iter().flat_map(|s| s.1.iter());
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (u64::MAX, 0u64, u64::MAX, 0u64);
    for &(b, l) in all {
        x_lo = x_lo.min(b);
        x_hi = x_hi.max(b);
        y_lo = y_lo.min(l);
        y_hi = y_hi.max(l);
    }
    if x_hi == 0 {
        (x_lo, x_hi, y_lo, y_hi) = (4096, 64 << 20, 1_000, 100_000_000);
    }
    // Pad a little on the log scale so points do not sit on the frame.
    let x_range = (x_lo as f64 / 1.5).max(1.0)..(x_hi as f64 * 1.5);
    let y_range = (y_lo as f64 / 1.5).max(1.0)..(y_hi as f64 * 1.5);
    let note = series.is_empty().then(|| {
        "move_latency.svg: no timed moves in this report (an instantaneous model mover times none)".to_string()
    });

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 17))
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(76)
            .build_cartesian_2d(x_range.log_scale(), y_range.log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("move size (bytes, log scale)")
            .y_desc("latency, submit to completion (log scale)")
            .x_label_formatter(&|v| units::bytes(v.round() as u64))
            .y_label_formatter(&|v| units::duration_ns(v.round() as u64))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        for (mover, points, individual) in &series {
            let colour = mover_colour(*mover);
            let label = if *individual {
                format!("{mover} ({} moves shown)", points.len())
            } else {
                format!("{mover} (p50 and p99 per size class)")
            };
            chart
                .draw_series(
                    points.iter().map(|&(b, l)| {
                        Circle::new((b as f64, l as f64), 3, colour.mix(0.55).filled())
                    }),
                )
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()));
        }
        if series.is_empty() {
            empty_message(&root, "no timed moves in this report")?;
        } else {
            draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        root.present().map_err(err)?;
    }
    Ok(Chart {
        file: "move_latency.svg",
        title,
        svg,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_peaks_and_ends() {
        let pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64, if i == 4321 { 99.0 } else { 1.0 }))
            .collect();
        let thin = thin_line(&pts, 100);
        assert!(thin.len() <= 102, "{} points", thin.len());
        assert!(thin.contains(&(4321.0, 99.0)));
        assert_eq!(thin.first(), Some(&(0.0, 1.0)));
        assert_eq!(thin.last(), Some(&(9999.0, 1.0)));
    }
}
