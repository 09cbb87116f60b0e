//! The bring-up check as people read it: one table, in the terminal and in
//! `index.html`, and the directory `cargo xtask run`/`listen` write for it
//! (`bringup.json`, `records.bin`, `index.html`).

use crate::html::escape;
use crate::metrics::{board_summary, source_description};
use crate::{stream, units};
use anyhow::Context;
use records::bringup::{CopyEngine, CopyRoute, CopyThroughput};
use records::{BringupReport, Collector, PlatformKey, Source};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The platform lines the bring-up shows (clocks and throttling), by key.
const CLOCK_LINES: [PlatformKey; 10] = [
    PlatformKey::ArmClock,
    PlatformKey::ArmMaxClock,
    PlatformKey::ArmClockSet,
    PlatformKey::ArmClockMeasured,
    PlatformKey::CoreClock,
    PlatformKey::CoreMaxClock,
    PlatformKey::CoreClockSet,
    PlatformKey::CoreClockMeasured,
    PlatformKey::Throttled,
    PlatformKey::Temperature,
];

/// Where the numbers come from, in one word for the table's title.
fn machine(source: Source) -> &'static str {
    match source {
        Source::Qemu => "QEMU",
        Source::Hardware => "silicon",
        Source::Sim => "simulator",
    }
}

/// Throughput in decimal megabytes per second, or "–".
fn throughput(c: Option<&CopyThroughput>) -> String {
    match c {
        Some(c) if !c.correct => "WRONG DATA".to_string(),
        Some(c) => c
            .bytes_per_s()
            .map_or("–".to_string(), |b| format!("{:.1} MB/s", b as f64 / 1e6)),
        None => "–".to_string(),
    }
}

/// The labelled lines above the throughput rows.
pub fn facts(report: &BringupReport) -> Vec<(String, String)> {
    let mut rows = vec![(
        "source".to_string(),
        source_description(report.source).to_string(),
    )];
    let emulated = report.source != Source::Hardware;
    if let Some(p) = &report.platform {
        rows.push(("board".into(), board_summary(p)));
        for key in CLOCK_LINES {
            rows.push((key.label().into(), p.value(key)));
        }
        rows.push((
            PlatformKey::CycleCounter.label().into(),
            p.value(PlatformKey::CycleCounter),
        ));
    }
    let b = &report.bringup;
    if let Some(c) = &b.calibration {
        let verdict = match (emulated, report.platform.as_ref().and_then(|p| p.arm_clock_set_hz)) {
            (true, _) => "QEMU: the cycle counter does not run at the ARM clock; moves are timed with CNTPCT_EL0".to_string(),
            (false, Some(arm)) => c.deviation_from(arm.into()).map_or("no rate".into(), |d| {
                format!("{:.2} % from the ARM clock set (1 % allowed)", d * 100.0)
            }),
            (false, None) => "no ARM clock to compare with".into(),
        };
        rows.push(("calibration".into(), format!("{}; {verdict}", c.describe())));
    }
    rows.push(("cache coherency".into(), b.coherency_verdict(emulated).1));
    for engine in CopyEngine::ALL {
        if let Some(c) = b.copies.iter().find(|c| c.engine == engine) {
            rows.push((format!("routine, {}", engine.label()), c.routine.clone()));
        }
    }
    for note in &b.notes {
        rows.push(("note".into(), note.clone()));
    }
    rows
}

/// The throughput rows: (size, route, one cell per engine).
fn rows(report: &BringupReport) -> Vec<(String, &'static str, Vec<String>)> {
    let copies = &report.bringup.copies;
    let mut sizes: Vec<u64> = copies.iter().map(|c| c.bytes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut out = Vec::new();
    for size in sizes {
        for route in CopyRoute::ALL {
            let cells = CopyEngine::ALL
                .iter()
                .map(|&e| {
                    throughput(
                        copies
                            .iter()
                            .find(|c| c.engine == e && c.route == route && c.bytes == size),
                    )
                })
                .collect();
            out.push((units::bytes(size), route.label(), cells));
        }
    }
    out
}

/// The title of the table, which says QEMU or silicon.
pub fn title(report: &BringupReport) -> String {
    format!("Bring-up check ({})", machine(report.source))
}

/// The table as text for the terminal.
pub fn render(report: &BringupReport) -> String {
    let mut out = format!("{}\n", title(report));
    let facts = facts(report);
    let width = facts
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in &facts {
        let _ = writeln!(out, "  {k:<width$}  {v}");
    }
    let _ = writeln!(
        out,
        "\ncopy throughput, best of {} (DMA includes the heap side's cache maintenance):",
        report.bringup.copies.first().map_or(0, |c| c.repeats)
    );
    let mut header = vec!["size".to_string(), "route".to_string()];
    header.extend(CopyEngine::ALL.iter().map(|e| e.label().to_string()));
    let body: Vec<Vec<String>> = rows(report)
        .into_iter()
        .map(|(size, route, cells)| {
            let mut row = vec![size, route.to_string()];
            row.extend(cells);
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            body.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, line) in std::iter::once(&header).chain(&body).enumerate() {
        let mut text = String::from("  ");
        for (c, cell) in line.iter().enumerate() {
            if c < 2 {
                let _ = write!(text, "{cell:<w$}  ", w = widths[c]);
            } else {
                let _ = write!(text, "{cell:>w$}  ", w = widths[c]);
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
        if i == 0 {
            let _ = writeln!(out, "  {}", "-".repeat(text.trim().chars().count()));
        }
    }
    if report.source == Source::Qemu {
        out.push_str("  (QEMU: emulation timings, which say nothing about silicon)\n");
    }
    out
}

/// The page.
pub fn page(report: &BringupReport) -> String {
    let title = title(report);
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{0}</title>\n\
         <style>\n{1}</style>\n</head>\n<body>\n<h1>{0}</h1>\n<section id=\"bringup\">\n<table class=\"kv\">\n",
        escape(&title),
        crate::html::CSS
    );
    for (k, v) in facts(report) {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", escape(&k), escape(&v));
    }
    h.push_str("</table>\n<table class=\"runs\">\n<thead><tr><th>size</th><th>route</th>");
    for e in CopyEngine::ALL {
        let _ = write!(h, "<th>{}</th>", escape(e.label()));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (size, route, cells) in rows(report) {
        let _ = write!(
            h,
            "<tr><td class=\"label\">{}</td><td class=\"label\">{}</td>",
            escape(&size),
            escape(route)
        );
        for cell in cells {
            let _ = write!(h, "<td>{}</td>", escape(&cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n</section>\n</body>\n</html>\n");
    h
}

/// Writes `bringup.json`, `records.bin` and `index.html` for a bring-up
/// stream and returns the files written; `None` when the stream holds no
/// bring-up records.
pub fn write_dir(collector: &Collector, dir: &Path) -> anyhow::Result<Option<Vec<PathBuf>>> {
    let Some(report) = collector.bringup_report() else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
        Ok(())
    };
    let mut json = serde_json::to_string_pretty(&report)?;
    json.push('\n');
    put("bringup.json", json.as_bytes())?;
    let mut bin = Vec::new();
    stream::write(&mut bin, &stream::records_of(collector))?;
    put("records.bin", &bin)?;
    put("index.html", page(&report).as_bytes())?;
    Ok(Some(files))
}
