//! `index.html`: one self-contained page (inline CSS, JS and SVG; nothing is
//! fetched) with the platform block, the summary table, the charts and the pool
//! animation. The style sheet and the animation's script are `assets/`,
//! built into the page.

use crate::charts::Chart;
use crate::metrics::{
    any_flagged, best_flags, flag_legend, flags_cell, missing_platform, run_context,
    source_description, METRICS,
};
use crate::{representative_runs, units};
use records::{
    BufferState, Collector, MoverKind, Policy, Report, RunDetail, Snapshot, SnapshotBuffer, Source,
};
use serde::Serialize;
use std::fmt::Write;

/// Upper bound on the snapshot JSON embedded in the page; snapshots are
/// thinned evenly over the trace to stay below it, so a huge trace still gives
/// a page of a few MB.
pub const SNAPSHOT_BUDGET_BYTES: usize = 3 << 20;

/// The page's style sheet.
pub(crate) const CSS: &str = include_str!("../assets/report.css");

/// Draws the pool animation from the `pool-data` element and drives its
/// controls; `window.poolAnimation` lets scripts (the browser test) drive it.
const ANIMATION_JS: &str = include_str!("../assets/animation.js");

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn page(report: &Report, collector: Option<&Collector>, charts: &[Chart]) -> String {
    let mut h = page_start(report, collector);
    page_end(&mut h, charts);
    h
}

/// The page up to its charts: the platform block, the table, the
/// verification block and the animation. It needs no chart, so a report can
/// build it while the charts are drawn (the animation's data is the
/// largest part of a report's work on a long trace).
pub fn page_start(report: &Report, collector: Option<&Collector>) -> String {
    let mut h = String::with_capacity(1 << 20);
    let title = format!(
        "Pool report: {} ({})",
        report.trace.name,
        report.source.as_str()
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    let _ = writeln!(h, "<h1>{}</h1>", escape(&title));
    platform_block(&mut h, report, collector);
    summary_table(&mut h, report);
    if let Some(c) = collector {
        verification_block(&mut h, c);
        animation(&mut h, report, c);
    } else {
        h.push_str(
            "<section><h2>Pool animation</h2><p class=\"note\">This page was rebuilt from report.json alone, \
             which holds no snapshots. Rebuild it from records.bin to see the animation.</p></section>\n",
        );
    }
    h
}

/// The charts and the end of the page, after [`page_start`].
pub fn page_end(h: &mut String, charts: &[Chart]) {
    h.push_str("<section><h2>Charts</h2>\n");
    for chart in charts {
        let svg = chart
            .svg
            .find("<svg")
            .map_or(chart.svg.as_str(), |i| &chart.svg[i..]);
        let _ = writeln!(
            h,
            "<figure id=\"chart-{}\">{svg}<figcaption>{} <span class=\"file\">({})</span></figcaption></figure>",
            chart.file.trim_end_matches(".svg"),
            escape(&chart.title),
            chart.file
        );
    }
    h.push_str("</section>\n");
    h.push_str(
        "<footer>Files beside this page: report.json (docs/design.md, section 5), records.bin (the record stream; \
         <code>cargo xtask report records.bin</code> rebuilds everything), timeline.csv, and the charts as SVG.\
         </footer>\n</body>\n</html>\n",
    );
}

fn platform_block(h: &mut String, report: &Report, collector: Option<&Collector>) {
    h.push_str("<section id=\"platform\"><h2>Where these numbers come from</h2>\n");
    let class = match report.source {
        Source::Sim => "src-sim",
        Source::Qemu => "src-qemu",
        Source::Hardware => "src-hw",
    };
    let _ = writeln!(
        h,
        "<p class=\"source {class}\">{}</p>",
        escape(source_description(report.source))
    );
    if report.incomplete {
        let _ = writeln!(
            h,
            "<p class=\"source incomplete\"><strong>Incomplete:</strong> {}</p>",
            escape(&crate::metrics::incomplete_text(report))
        );
    }
    let mut rows: Vec<(&str, String)> = run_context(report);
    if let Some(p) = &report.platform {
        rows.extend(p.fields().into_iter().map(|f| (f.label(), f.value)));
    } else if let Some(missing) = missing_platform(report) {
        rows.push(("board", missing.to_string()));
    }
    if let Some(fw) = collector.and_then(|c| c.firmware.as_ref()) {
        rows.push(("firmware", fw.clone()));
    }
    h.push_str("<table class=\"kv\">\n");
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(&v));
    }
    h.push_str("</table></section>\n");
}

fn summary_table(h: &mut String, report: &Report) {
    h.push_str("<section id=\"summary\"><h2>All runs</h2>\n");
    if report.runs.is_empty() {
        h.push_str("<p class=\"note\">No run finished.</p></section>\n");
        return;
    }
    let show_flags = any_flagged(report);
    h.push_str("<div class=\"scroll\"><table class=\"runs\">\n<thead><tr><th>policy</th><th>mover</th><th>pool</th>");
    if show_flags {
        h.push_str("<th>flags</th>");
    }
    for m in METRICS {
        let _ = write!(
            h,
            "<th title=\"{}\">{}</th>",
            escape(m.key),
            escape(m.header)
        );
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    let flags: Vec<Vec<bool>> = METRICS
        .iter()
        .map(|m| best_flags(m, &report.runs))
        .collect();
    for (i, r) in report.runs.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td class=\"label\">{}</td><td class=\"label\">{}</td><td>{}</td>",
            r.policy,
            r.mover,
            units::bytes(r.pool_bytes)
        );
        if show_flags {
            let cell = flags_cell(r);
            let class = if cell.is_empty() {
                "label"
            } else {
                "label flagged"
            };
            let _ = write!(h, "<td class=\"{class}\">{}</td>", escape(&cell));
        }
        for (m, f) in METRICS.iter().zip(&flags) {
            if f[i] {
                let _ = write!(h, "<td class=\"best\">{}&nbsp;*</td>", escape(&m.cell(r)));
            } else {
                let _ = write!(h, "<td>{}</td>", escape(&m.cell(r)));
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str(
        "</tbody></table></div>\n<p class=\"note\"><span class=\"best\">* best</span> in its column: lower is \
         better, except events, peak used and verified, which are not scored; nothing is marked where all runs \
         tie. – means no moves were timed.</p>\n",
    );
    for line in flag_legend(report) {
        let _ = writeln!(h, "<p class=\"note flagged\">flag {}</p>", escape(&line));
    }
    h.push_str("</section>\n");
}

fn verification_block(h: &mut String, c: &Collector) {
    let bad: Vec<&RunDetail> = c
        .runs
        .iter()
        .filter(|r| !r.corruptions.is_empty())
        .collect();
    if bad.is_empty() {
        return;
    }
    h.push_str("<section id=\"verification\"><h2>Data mismatches found by verification</h2>\n<table class=\"kv\">\n");
    h.push_str(
        "<tr><th>run</th><th>buffer</th><th>page</th><th>expected</th><th>found</th></tr>\n",
    );
    for r in bad {
        for (buffer, page, expected, found) in &r.corruptions {
            let _ = writeln!(
                h,
                "<tr><td>{}/{}</td><td>{buffer}</td><td>{page}</td><td>{expected:#018x}</td><td>{found:#018x}</td></tr>",
                r.policy, r.mover
            );
        }
    }
    h.push_str("</table></section>\n");
}

/// What `assets/animation.js` draws, embedded in the page as JSON:
///
/// ```text
/// {"unit", "pool", "overflowExtent", "events", "frames", "runs": [
///    {"policy", "mover", "frame", "snaps": [DrawnSnapshot, ...]}, ...]}
/// ```
///
/// Offsets and sizes are in `unit` bytes (the largest power that divides
/// them all, usually a 4 KiB page) to keep the numbers short. `frames` are
/// the frames every policy's row shares, (event index, trace time in µs);
/// `pool` is the largest pool of the runs and `overflowExtent` the end of
/// the furthest overflow buffer, both in units. This is the part before
/// `runs`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AnimationHeader<'a> {
    unit: u64,
    pool: u64,
    overflow_extent: u64,
    events: u64,
    frames: &'a [(u64, u64)],
}

/// One policy's row of the animation, before its `snaps`: per frame, the
/// index into `snaps` of the snapshot it shows (the latest taken at or
/// before the frame's event), or -1 before the first.
#[derive(Serialize)]
struct RowHeader<'a> {
    policy: Policy,
    mover: MoverKind,
    frame: &'a [i64],
}

/// A snapshot as drawn, serialized as the array
/// `[event, time_us, resident, overflow]`. Each buffer list is flat, three
/// numbers a buffer, sorted by offset: offset and size in units, then the
/// state (0 movable, 1 pinned, 2 unmoveable).
#[derive(Serialize)]
pub struct DrawnSnapshot(pub u64, pub u64, pub Vec<u64>, pub Vec<u64>);

fn state_code(s: BufferState) -> u64 {
    match s {
        BufferState::Movable => 0,
        BufferState::Pinned => 1,
        BufferState::Unmoveable => 2,
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn flat(buffers: &[SnapshotBuffer], unit: u64) -> Vec<u64> {
    let mut v = Vec::with_capacity(buffers.len() * 3);
    let push = |b: &SnapshotBuffer| v.extend([b.offset / unit, b.size / unit, state_code(b.state)]);
    // Sorted by offset so that neighbours alternate shade in the drawing
    // (the pool's snapshots already are: then there is nothing to sort).
    if buffers.is_sorted_by_key(|b| b.offset) {
        buffers.iter().for_each(push);
    } else {
        let mut sorted: Vec<&SnapshotBuffer> = buffers.iter().collect();
        sorted.sort_by_key(|b| b.offset);
        sorted.into_iter().for_each(push);
    }
    v
}

/// A snapshot's [`DrawnSnapshot`] JSON, written directly: on the big traces
/// these arrays are most of the page (a million numbers for openarena's four
/// runs), and serde's generic sequence code costs several times what the
/// digits do.
fn drawn_json(s: &Snapshot, unit: u64) -> String {
    let mut out = String::with_capacity(32 + 12 * (s.resident.len() + s.overflow.len()));
    let mut digits = itoa::Buffer::new();
    let mut number = |out: &mut String, n: u64| out.push_str(digits.format(n));
    out.push('[');
    number(&mut out, s.event);
    out.push(',');
    number(&mut out, s.time_us);
    for list in [flat(&s.resident, unit), flat(&s.overflow, unit)] {
        out.push_str(",[");
        for (k, &n) in list.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            number(&mut out, n);
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// Strips the closing brace of a JSON object, so that more fields can follow.
fn open_object(mut json: String) -> String {
    debug_assert!(json.ends_with('}'));
    json.pop();
    json
}

/// Builds the animation data: shared frames (event indices) and per policy the
/// snapshot each frame shows, thinned until its JSON fits `budget` bytes.
/// Returns the JSON text.
///
/// Each snapshot's JSON is made once and kept: thinning the frames only
/// drops snapshots, so a second pass reuses the first's text (on the big
/// traces the snapshots are most of the page, and encoding them again on
/// every pass was most of the report's time).
pub fn animation_json(report: &Report, runs: &[&RunDetail], budget: usize) -> String {
    let mut unit = 0;
    for r in runs {
        unit = gcd(unit, r.pool_bytes);
        for s in &r.snapshots {
            for b in s.resident.iter().chain(&s.overflow) {
                unit = gcd(gcd(unit, b.offset), b.size);
            }
        }
    }
    let unit = unit.max(1);
    let pool = runs.iter().map(|r| r.pool_bytes).max().unwrap_or(0);
    let overflow_extent = runs
        .iter()
        .flat_map(|r| r.snapshots.iter())
        .flat_map(|s| s.overflow.iter().map(|b| b.offset + b.size))
        .max()
        .unwrap_or(0);
    let mut events: Vec<(u64, u64)> = runs
        .iter()
        .flat_map(|r| r.snapshots.iter().map(|s| (s.event, s.time_us)))
        .collect();
    events.sort_unstable();
    events.dedup_by_key(|e| e.0);

    // Per run, per snapshot: its JSON. The first pass shows every snapshot,
    // so all are made at once, on every core.
    let drawn: Vec<Vec<String>> = {
        use rayon::prelude::*;
        runs.par_iter()
            .map(|r| {
                r.snapshots
                    .par_iter()
                    .map(|s| drawn_json(s, unit))
                    .collect()
            })
            .collect()
    };
    let encode = |frames: &[(u64, u64)]| -> String {
        let header = AnimationHeader {
            unit,
            pool: pool / unit,
            overflow_extent: overflow_extent / unit,
            events: report.trace.events,
            frames,
        };
        let mut json =
            open_object(serde_json::to_string(&header).expect("numbers always serialize"));
        json.push_str(",\"runs\":[");
        for (k, (run, drawn)) in runs.iter().zip(&drawn).enumerate() {
            if k > 0 {
                json.push(',');
            }
            let (frame, used) = frames_of(run, frames);
            let row = RowHeader {
                policy: run.policy,
                mover: run.mover,
                frame: &frame,
            };
            json.push_str(&open_object(
                serde_json::to_string(&row).expect("names and numbers always serialize"),
            ));
            json.push_str(",\"snaps\":[");
            for (n, &i) in used.iter().enumerate() {
                if n > 0 {
                    json.push(',');
                }
                json.push_str(&drawn[i]);
            }
            json.push_str("]}");
        }
        json.push_str("]}");
        json
    };

    let mut frames = events.clone();
    loop {
        let text = encode(&frames);
        if text.len() <= budget || frames.len() <= 2 {
            return text;
        }
        // Thin evenly, keeping the last frame (the end state matters most).
        let keep = ((frames.len() as f64) * (budget as f64 / text.len() as f64) * 0.9)
            .floor()
            .max(2.0) as usize;
        let keep = keep.min(frames.len() - 1);
        let step = (events.len() - 1) as f64 / (keep - 1) as f64;
        frames = (0..keep)
            .map(|i| events[((i as f64 * step).round() as usize).min(events.len() - 1)])
            .collect();
        frames.dedup_by_key(|e| e.0);
    }
}

/// One policy's row over `frames`: for each frame the position in the row's
/// `snaps` of the snapshot it shows (-1 before the first), and which of the
/// run's snapshots those are, in the order of first use.
fn frames_of(run: &RunDetail, frames: &[(u64, u64)]) -> (Vec<i64>, Vec<usize>) {
    let mut used: Vec<usize> = Vec::new();
    let frame = frames
        .iter()
        .map(|&(event, _)| {
            let taken = run.snapshots.partition_point(|s| s.event <= event);
            let Some(latest) = taken.checked_sub(1) else {
                return -1;
            };
            let position = used.iter().position(|&u| u == latest).unwrap_or_else(|| {
                used.push(latest);
                used.len() - 1
            });
            position as i64
        })
        .collect();
    (frame, used)
}

fn animation(h: &mut String, report: &Report, c: &Collector) {
    let (mover, runs) = representative_runs(c);
    let runs: Vec<&RunDetail> = runs
        .into_iter()
        .filter(|r| !r.snapshots.is_empty())
        .collect();
    h.push_str("<section id=\"animation\"><h2>The pool over time</h2>\n");
    if runs.is_empty() {
        h.push_str("<p class=\"note\">The records hold no pool snapshots, so there is nothing to animate.</p></section>\n");
        return;
    }
    let data = animation_json(report, &runs, SNAPSHOT_BUDGET_BYTES);
    let _ = writeln!(
        h,
        "<p class=\"note\">Each bar is the {} pool under one policy (offset 0 at the left), replaying {} with the \
         {} mover; the thinner bar beneath it holds the buffers paged out to overflow memory. All policies share \
         the slider.</p>",
        units::bytes(runs.iter().map(|r| r.pool_bytes).max().unwrap_or(0)),
        escape(&report.trace.name),
        mover.map_or("?", |m| m.as_str())
    );
    h.push_str(
        "<div class=\"legend\"><span><i class=\"sw s0\"></i>movable</span><span><i class=\"sw s1\"></i>pinned \
         (in use, cannot move)</span><span><i class=\"sw s2\"></i>unmoveable</span><span><i class=\"sw free\"></i>free \
         pool space</span><span><i class=\"sw ovf\"></i>overflow (outside the pool)</span>\
         <span id=\"ovf-scale\" class=\"note\"></span></div>\n",
    );
    h.push_str(
        "<div class=\"controls\"><button id=\"anim-play\" type=\"button\">&#9654; play</button>\
         <label>speed <select id=\"anim-speed\"><option value=\"0.25\">0.25&times;</option>\
         <option value=\"0.5\">0.5&times;</option><option value=\"1\" selected>1&times;</option>\
         <option value=\"2\">2&times;</option><option value=\"4\">4&times;</option>\
         <option value=\"8\">8&times;</option></select></label>\
         <input id=\"anim-slider\" type=\"range\" min=\"0\" max=\"0\" value=\"0\" step=\"1\" aria-label=\"time\">\
         <span id=\"anim-time\"></span></div>\n<div id=\"anim-rows\">\n",
    );
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(
            h,
            "<div class=\"pool-row\"><div class=\"pool-label\"><b>{}</b><span id=\"pool-stat-{i}\"></span></div>\
             <canvas id=\"pool-canvas-{i}\" class=\"pool-canvas\" height=\"58\"></canvas></div>",
            r.policy
        );
    }
    h.push_str("</div>\n");
    // `</` cannot occur in this JSON (numbers and policy names), but escape it so
    // the script element can never be closed early.
    let _ = writeln!(
        h,
        "<script type=\"application/json\" id=\"pool-data\">{}</script>\n<script>\n{ANIMATION_JS}</script>\n</section>",
        data.replace("</", "<\\/")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn buffer(offset: u64, size: u64, state: u8) -> SnapshotBuffer {
        SnapshotBuffer {
            buffer: offset as u32,
            offset,
            size,
            state: match state % 3 {
                0 => BufferState::Movable,
                1 => BufferState::Pinned,
                _ => BufferState::Unmoveable,
            },
        }
    }

    proptest! {
        /// The hand-written snapshot JSON is exactly serde's encoding of
        /// [`DrawnSnapshot`], sorted or not, empty lists included.
        #[test]
        fn drawn_json_is_the_drawn_snapshot(
            event in any::<u64>(),
            time_us in any::<u64>(),
            resident in prop::collection::vec((0u64..1 << 40, 1u64..1 << 30, any::<u8>()), 0..20),
            overflow in prop::collection::vec((0u64..1 << 40, 1u64..1 << 30, any::<u8>()), 0..5),
            unit in prop::sample::select(vec![1u64, 4096]),
        ) {
            let list = |v: &[(u64, u64, u8)]| v.iter().map(|&(o, s, st)| buffer(o * unit, s * unit, st)).collect::<Vec<_>>();
            let snapshot = Snapshot { event, time_us, resident: list(&resident), overflow: list(&overflow) };
            let want = serde_json::to_string(&DrawnSnapshot(
                event,
                time_us,
                flat(&snapshot.resident, unit),
                flat(&snapshot.overflow, unit),
            ))
            .unwrap();
            prop_assert_eq!(drawn_json(&snapshot, unit), want);
        }
    }
}
