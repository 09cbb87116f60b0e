//! The allocation bench (issue 13) as people read it: one table beside the
//! published dmabuf/ion figures, a chart, and the directory
//! `cargo xtask bench-alloc` writes (`report.json` with its `alloc_bench`
//! rows, `records.bin`, `alloc_bench.svg`, `index.html`). Every output names
//! its source (QEMU or silicon) and the timer.

use crate::html::escape;
use crate::{stream, units};
use anyhow::{anyhow, Context};
use plotters::prelude::*;
use records::alloc_bench::PUBLISHED;
use records::{AllocBenchRow, Background, Collector, Platform, Source, ZeroVariant};
use serde::Serialize;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// What `report.json` holds for the bench.
#[derive(Debug, Serialize)]
pub struct AllocBenchReport<'a> {
    pub source: Source,
    /// "QEMU: emulated, not hardware" or "silicon".
    pub source_label: &'static str,
    pub timer: String,
    pub timer_hz: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<&'a Platform>,
    pub alloc_bench: &'a [AllocBenchRow],
    /// The published dmabuf-heap-bench figures the issue quotes (x86 VM):
    /// (size, dmabuf system heap ns/call, ion system heap ns/call).
    pub published_x86_vm: &'static [(u64, u64, u64)],
}

/// The source in words, for every title.
pub fn source_label(source: Source) -> &'static str {
    match source {
        Source::Qemu => "QEMU: emulated, not hardware",
        Source::Hardware => "silicon (Raspberry Pi 3)",
        Source::Sim => "simulator",
    }
}

fn timer_of(rows: &[AllocBenchRow]) -> (String, u64) {
    rows.first().map_or((String::from("unknown"), 0), |r| {
        (r.timer.clone(), r.timer_hz)
    })
}

/// The title line: source and timer.
pub fn title(collector: &Collector) -> String {
    let (timer, hz) = timer_of(&collector.alloc_bench);
    format!(
        "Allocation bench, {}; timer {timer} at {hz} Hz",
        source_label(collector.source())
    )
}

/// The terminal table: per background, size and variant, ns/call p50, p99,
/// max and mean, calls, zero failures, fallbacks and pre-zeroed serves,
/// with the published dmabuf and ion figures on each size's first line.
pub fn render(collector: &Collector) -> String {
    let mut out = format!("{}\n", title(collector));
    let _ =
        writeln!(
        out,
        "{:<10} {:>7} {:<8} {:>6} {:>12} {:>12} {:>12} {:>12} {:>5} {:>6} {:>6} | {:>12} {:>12}",
        "background", "size", "variant", "calls", "p50 ns", "p99 ns", "max ns", "mean ns",
        "fail", "fallbk", "prezr", "dmabuf x86VM", "ion x86VM"
    );
    for r in &collector.alloc_bench {
        let published = PUBLISHED.iter().find(|p| p.0 == r.size);
        let (dmabuf, ion) = match published {
            Some(p) if r.variant == ZeroVariant::None => (p.1.to_string(), p.2.to_string()),
            _ => (String::new(), String::new()),
        };
        let _ = writeln!(
            out,
            "{:<10} {:>7} {:<8} {:>6} {:>12} {:>12} {:>12} {:>12} {:>5} {:>6} {:>6} | {:>12} {:>12}",
            r.background.name(),
            units::bytes(r.size),
            r.variant.name(),
            r.calls,
            r.ns_per_call.p50,
            r.ns_per_call.p99,
            r.ns_per_call.max,
            r.ns_per_call.mean,
            r.zero_failures,
            r.fallbacks,
            r.served_prezeroed,
            dmabuf,
            ion
        );
    }
    let failures: u64 = collector.alloc_bench.iter().map(|r| r.zero_failures).sum();
    let _ = writeln!(
        out,
        "dmabuf/ion: dmabuf-heap-bench on an x86 VM, 5000 allocations per size (published with the dmabuf page-pool series; they zero every page)."
    );
    if failures > 0 {
        let _ = writeln!(
            out,
            "FAILED: {failures} allocations handed out non-zero memory"
        );
    }
    out
}

/// A chart line: label, colour, points.
type Line = (String, RGBColor, Vec<(f64, f64)>);

/// The chart: p50 ns/call against size per variant on the empty pool, with
/// the published dmabuf and ion lines, log-log.
pub fn chart(collector: &Collector) -> anyhow::Result<String> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing the alloc-bench chart: {e}");
    let rows = &collector.alloc_bench;
    let mut series: Vec<Line> = Vec::new();
    let colours = [
        RGBColor(0x00, 0x00, 0x00),
        RGBColor(0xE6, 0x9F, 0x00),
        RGBColor(0x00, 0x72, 0xB2),
        RGBColor(0x00, 0x9E, 0x73),
    ];
    for (variant, colour) in ZeroVariant::ALL.into_iter().zip(colours) {
        for background in Background::ALL {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.variant == variant && r.background == background && r.calls > 0)
                .map(|r| (r.size as f64, r.ns_per_call.p50.max(1) as f64))
                .collect();
            if !pts.is_empty() {
                series.push((
                    format!("{} ({} pool), p50", variant.name(), background.name()),
                    colour,
                    pts,
                ));
            }
        }
    }
    series.push((
        "dmabuf system heap (x86 VM, published)".into(),
        RGBColor(0xCC, 0x79, 0xA7),
        PUBLISHED.iter().map(|p| (p.0 as f64, p.1 as f64)).collect(),
    ));
    series.push((
        "ion system heap (x86 VM, published)".into(),
        RGBColor(0xD5, 0x5E, 0x00),
        PUBLISHED.iter().map(|p| (p.0 as f64, p.2 as f64)).collect(),
    ));
    let ys = series.iter().flat_map(|s| s.2.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::MAX, 1.0f64), |(l, h), y| (l.min(y), h.max(y)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title(collector), ("sans-serif", 16))
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(76)
            .build_cartesian_2d(
                (2048f64..64.0 * 1048576.0).log_scale(),
                ((lo / 2.0).max(1.0)..hi * 2.0).log_scale(),
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("allocation size (log scale)")
            .y_desc("ns per create + destroy (log scale)")
            .x_label_formatter(&|v| units::bytes(v.round() as u64))
            .y_label_formatter(&|v| units::duration_ns(v.round() as u64))
            .draw()
            .map_err(|e| err(&e))?;
        for (label, colour, pts) in &series {
            let colour = *colour;
            let dashed = label.contains("fragmented");
            chart
                .draw_series(LineSeries::new(
                    pts.iter().copied(),
                    colour.stroke_width(if dashed { 1 } else { 2 }),
                ))
                .map_err(|e| err(&e))?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// The page: title, the table, the chart.
pub fn page(collector: &Collector, svg: &str) -> String {
    let title = title(collector);
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{0}</title>\n\
         <style>\n{1}</style>\n</head>\n<body>\n<h1>{0}</h1>\n<section id=\"alloc-bench\">\n<h2>ns per call</h2>\n\
         <table class=\"runs\">\n<thead><tr><th>background</th><th>size</th><th>variant</th><th>calls</th>\
         <th>p50</th><th>p99</th><th>max</th><th>mean</th><th>zero failures</th><th>fallbacks</th>\
         <th>served pre-zeroed</th><th>waited for fill</th><th>dmabuf (x86 VM)</th><th>ion (x86 VM)</th><th>note</th></tr></thead>\n<tbody>\n",
        escape(&title),
        crate::html::CSS
    );
    for r in &collector.alloc_bench {
        let p = PUBLISHED.iter().find(|p| p.0 == r.size);
        let (d, i) = match p {
            Some(p) if r.variant == ZeroVariant::None => (p.1.to_string(), p.2.to_string()),
            _ => (String::new(), String::new()),
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"label\">{}</td><td class=\"label\">{}</td><td class=\"label\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"label\">{}</td></tr>",
            r.background.name(),
            escape(&units::bytes(r.size)),
            r.variant.name(),
            r.calls,
            r.ns_per_call.p50,
            r.ns_per_call.p99,
            r.ns_per_call.max,
            r.ns_per_call.mean,
            r.zero_failures,
            r.fallbacks,
            r.served_prezeroed,
            r.waited_for_fill,
            d,
            i,
            escape(&r.note)
        );
    }
    h.push_str("</tbody></table>\n<p>dmabuf/ion: dmabuf-heap-bench on an x86 VM, 5000 allocations per size, as published with the dmabuf page-pool series.</p>\n<h2>Chart</h2>\n");
    h.push_str(svg);
    h.push_str("\n</section>\n</body>\n</html>\n");
    h
}

/// Writes `report.json`, `records.bin`, `alloc_bench.svg` and `index.html`;
/// `None` when the stream has no bench rows.
pub fn write_dir(collector: &Collector, dir: &Path) -> anyhow::Result<Option<Vec<PathBuf>>> {
    if collector.alloc_bench.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
        Ok(())
    };
    let (timer, timer_hz) = timer_of(&collector.alloc_bench);
    let report = AllocBenchReport {
        source: collector.source(),
        source_label: source_label(collector.source()),
        timer,
        timer_hz,
        platform: collector.platform.as_ref(),
        alloc_bench: &collector.alloc_bench,
        published_x86_vm: &PUBLISHED,
    };
    let mut json = serde_json::to_string_pretty(&report)?;
    json.push('\n');
    put("report.json", json.as_bytes())?;
    let mut bin = Vec::new();
    stream::write(&mut bin, &stream::records_of(collector))?;
    put("records.bin", &bin)?;
    let svg = chart(collector)?;
    put("alloc_bench.svg", svg.as_bytes())?;
    put("index.html", page(collector, &svg).as_bytes())?;
    Ok(Some(files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use records::{NsPerCall, Record};

    fn row(size: u64, variant: ZeroVariant, p50: u64) -> AllocBenchRow {
        AllocBenchRow {
            size,
            variant,
            background: Background::Empty,
            calls: 3,
            ns_per_call: NsPerCall::of(&mut [p50, p50, p50 + 1]),
            zero_failures: 0,
            fallbacks: 0,
            served_prezeroed: 0,
            waited_for_fill: 0,
            verify_full: false,
            background_buffers: 0,
            timer: "CNTPCT_EL0".into(),
            timer_hz: 62_500_000,
            note: String::new(),
        }
    }

    #[test]
    fn the_json_has_the_issue_fields_and_the_page_the_rows() {
        let mut c = Collector::new();
        c.push(Record::AllocBench(row(4096, ZeroVariant::None, 1234)))
            .unwrap();
        c.push(Record::AllocBench(row(1 << 20, ZeroVariant::Cpu, 98765)))
            .unwrap();
        let dir = std::env::temp_dir().join(format!("alloc-bench-{}", std::process::id()));
        let files = write_dir(&c, &dir).unwrap().unwrap();
        assert_eq!(files.len(), 4);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        let r = &json["alloc_bench"][1];
        for field in [
            "size",
            "variant",
            "calls",
            "ns_per_call",
            "zero_failures",
            "fallbacks",
        ] {
            assert!(!r[field].is_null(), "{field} missing: {r}");
        }
        assert_eq!(r["variant"], "cpu");
        assert_eq!(r["ns_per_call"]["p50"], 98765);
        assert_eq!(json["timer"], "CNTPCT_EL0");
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(html.contains("98765") && html.contains("<svg"));
        let table = render(&c);
        assert!(table.contains("1234") && table.contains("17314"), "{table}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
