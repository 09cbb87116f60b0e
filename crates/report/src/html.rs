//! `index.html`: one self-contained page (inline CSS, JS and SVG; nothing is
//! fetched) with the platform block, the summary table, the charts and the pool
//! animation.

use crate::charts::Chart;
use crate::metrics::{best_flags, missing_platform, run_context, source_description, METRICS};
use crate::{representative_runs, units};
use records::{BufferState, Collector, Report, RunDetail, Snapshot, SnapshotBuffer, Source};
use serde_json::json;
use std::fmt::Write;

/// Upper bound on the snapshot JSON embedded in the page; snapshots are
/// thinned evenly over the trace to stay below it, so a huge trace still gives
/// a page of a few MB.
pub const SNAPSHOT_BUDGET_BYTES: usize = 3 << 20;

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
         <link rel=\"icon\" href=\"data:,\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
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
        "<footer>Files beside this page: report.json (DESIGN.md 5a), records.bin (the record stream; \
         <code>cargo xtask report records.bin</code> rebuilds everything), timeline.csv, and the charts as SVG.\
         </footer>\n</body>\n</html>\n",
    );
    h
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
    h.push_str("<div class=\"scroll\"><table class=\"runs\">\n<thead><tr><th>policy</th><th>mover</th><th>pool</th>");
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
         tie. – means no moves were timed.</p></section>\n",
    );
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
    let mut sorted: Vec<&SnapshotBuffer> = buffers.iter().collect();
    // Sorted by offset so that neighbours alternate shade in the drawing.
    sorted.sort_by_key(|b| b.offset);
    for b in sorted {
        v.extend([b.offset / unit, b.size / unit, state_code(b.state)]);
    }
    v
}

/// Builds the animation data: shared frames (event indices) and per policy the
/// snapshot each frame shows. Returns the JSON text.
pub fn animation_json(report: &Report, runs: &[&RunDetail], budget: usize) -> String {
    // Offsets and sizes in a common unit (usually 4 KiB pages) keep the numbers short.
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

    let encode = |frames: &[(u64, u64)]| -> String {
        let runs_json: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                let mut used: Vec<usize> = Vec::new();
                let frame: Vec<i64> = frames
                    .iter()
                    .map(|&(e, _)| {
                        // The latest snapshot taken at or before this frame's event.
                        let n = r.snapshots.partition_point(|s| s.event <= e);
                        if n == 0 {
                            return -1;
                        }
                        let idx = n - 1;
                        let pos = match used.iter().position(|&u| u == idx) {
                            Some(p) => p,
                            None => {
                                used.push(idx);
                                used.len() - 1
                            }
                        };
                        pos as i64
                    })
                    .collect();
                let snaps: Vec<serde_json::Value> = used
                    .iter()
                    .map(|&i| {
                        let s: &Snapshot = &r.snapshots[i];
                        json!([s.event, s.time_us, flat(&s.resident, unit), flat(&s.overflow, unit)])
                    })
                    .collect();
                json!({ "policy": r.policy.as_str(), "mover": r.mover.as_str(), "frame": frame, "snaps": snaps })
            })
            .collect();
        let frames_json: Vec<[u64; 2]> = frames.iter().map(|&(e, t)| [e, t]).collect();
        json!({
            "unit": unit,
            "pool": pool / unit,
            "overflowExtent": overflow_extent / unit,
            "events": report.trace.events,
            "frames": frames_json,
            "runs": runs_json,
        })
        .to_string()
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
        "<script type=\"application/json\" id=\"pool-data\">{}</script>\n<script>{ANIMATION_JS}</script>\n</section>",
        data.replace("</", "<\\/")
    );
}

const CSS: &str = r##"
:root { --fg:#1d1f21; --muted:#5f6368; --line:#d0d4d9; --bg:#fff; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); margin: 24px auto; max-width: 1280px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 17px; margin: 26px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.source { padding: 8px 12px; border-radius: 4px; font-weight: 600; }
.src-sim { background: #eef5ff; border-left: 4px solid #0072B2; }
.src-qemu { background: #fff5e6; border-left: 4px solid #E69F00; }
.src-hw { background: #eafaf1; border-left: 4px solid #009E73; }
table { border-collapse: collapse; }
table.kv th { text-align: left; font-weight: 500; color: var(--muted); padding: 2px 18px 2px 0; vertical-align: top; }
table.kv td { padding: 2px 12px 2px 0; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
table.runs { font-variant-numeric: tabular-nums; white-space: nowrap; }
table.runs th { font-weight: 600; padding: 4px 8px; border-bottom: 2px solid var(--line); text-align: right; }
table.runs th:nth-child(-n+2) { text-align: left; }
table.runs td { padding: 3px 8px; text-align: right; border-bottom: 1px solid #eceff1; }
table.runs td.label { text-align: left; }
table.runs tbody tr:hover { background: #f6f8fa; }
.best { font-weight: 700; color: #00643f; background: #e3f6ec; }
.note { color: var(--muted); }
figure { margin: 12px 0 22px; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eceff1; }
figcaption { color: var(--muted); font-size: 13px; }
.file { font-family: ui-monospace, monospace; }
.legend { display: flex; flex-wrap: wrap; gap: 18px; margin: 8px 0; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.sw { display: inline-block; width: 18px; height: 12px; border: 1px solid #888; }
.sw.s0 { background: #0072B2; } .sw.s1 { background: #E69F00; } .sw.s2 { background: #D55E00; }
.sw.free { background: #e9ecef; } .sw.ovf { background: #f7f2fb; border-style: dashed; }
.controls { display: flex; align-items: center; gap: 14px; margin: 10px 0; position: sticky; top: 0; background: var(--bg); padding: 6px 0; z-index: 1; }
.controls button { font: inherit; padding: 4px 14px; min-width: 92px; cursor: pointer; }
#anim-slider { flex: 1; }
#anim-time { font-variant-numeric: tabular-nums; min-width: 330px; }
.pool-row { display: flex; align-items: center; gap: 12px; margin: 6px 0; }
.pool-label { width: 190px; flex: none; display: flex; flex-direction: column; }
.pool-label span { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.pool-canvas { flex: 1; min-width: 0; width: 100%; height: 58px; }
footer { margin-top: 30px; color: var(--muted); font-size: 12px; }
"##;

const ANIMATION_JS: &str = r##"
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("pool-data").textContent);
  // movable, pinned, unmoveable; two shades so neighbouring buffers stay distinct.
  var COLOURS = [["#0072B2", "#3d97cc"], ["#E69F00", "#f4bd4d"], ["#D55E00", "#e98a45"]];
  var POOL_H = 30, GAP = 6, OVF_H = 18;
  var slider = document.getElementById("anim-slider");
  var playBtn = document.getElementById("anim-play");
  var speedSel = document.getElementById("anim-speed");
  var timeLbl = document.getElementById("anim-time");
  var rows = D.runs.map(function (run, i) {
    return { run: run, canvas: document.getElementById("pool-canvas-" + i), stat: document.getElementById("pool-stat-" + i) };
  });
  var nFrames = D.frames.length;
  var overflowScale = Math.max(D.pool, D.overflowExtent, 1);
  var frame = 0, playing = false, lastTs = null, acc = 0;
  slider.max = String(Math.max(nFrames - 1, 0));
  document.getElementById("ovf-scale").textContent = D.overflowExtent > D.pool
    ? "The overflow bars are drawn to their own scale: full width = " + mib(overflowScale) + "."
    : "The overflow bars use the pool's scale (full width = " + mib(D.pool) + ").";

  function mib(units) { return (units * D.unit / 1048576).toFixed(1) + " MiB"; }

  function fit(canvas) {
    var dpr = window.devicePixelRatio || 1;
    var w = Math.max(Math.round(canvas.clientWidth * dpr), 1);
    var h = Math.round((POOL_H + GAP + OVF_H + 4) * dpr);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    return dpr;
  }

  function bar(ctx, flatList, x0, y, width, h, scale) {
    var total = 0, count = 0;
    for (var k = 0; k + 2 < flatList.length; k += 3) {
      var x = x0 + flatList[k] / scale * width;
      var w = Math.max(flatList[k + 1] / scale * width, 1);
      ctx.fillStyle = COLOURS[flatList[k + 2]][count % 2];
      ctx.fillRect(x, y, w, h);
      total += flatList[k + 1]; count++;
    }
    return { bytes: total, count: count };
  }

  function drawRow(row) {
    var dpr = fit(row.canvas);
    var ctx = row.canvas.getContext("2d");
    var W = row.canvas.width, s = dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, W, row.canvas.height);
    ctx.fillStyle = "#e9ecef";
    ctx.fillRect(0, 1 * s, W, POOL_H * s);
    var oy = (1 + POOL_H + GAP) * s;
    ctx.fillStyle = "#f7f2fb";
    ctx.fillRect(0, oy, W, OVF_H * s);
    var idx = nFrames ? row.run.frame[frame] : -1;
    var res = { bytes: 0, count: 0 }, ovf = { bytes: 0, count: 0 };
    if (idx >= 0) {
      var snap = row.run.snaps[idx];
      res = bar(ctx, snap[2], 0, 1 * s, W, POOL_H * s, D.pool);
      ovf = bar(ctx, snap[3], 0, oy, W, OVF_H * s, overflowScale);
    }
    ctx.strokeStyle = "#7a7f85"; ctx.lineWidth = 1;
    ctx.strokeRect(0.5, 1 * s + 0.5, W - 1, POOL_H * s - 1);
    ctx.setLineDash([4 * s, 3 * s]);
    ctx.strokeRect(0.5, oy + 0.5, W - 1, OVF_H * s - 1);
    ctx.setLineDash([]);
    row.stat.textContent = "used " + mib(res.bytes) + " of " + mib(D.pool) + " (" + res.count + " buffers), overflow " +
      mib(ovf.bytes) + " (" + ovf.count + ")";
  }

  function draw() {
    rows.forEach(drawRow);
    if (nFrames) {
      var f = D.frames[frame];
      timeLbl.textContent = "event " + f[0].toLocaleString("en") + " of " + D.events.toLocaleString("en") +
        ", trace time " + (f[1] / 1e6).toFixed(3) + " s (frame " + (frame + 1) + "/" + nFrames + ")";
    }
    slider.value = String(frame);
    document.getElementById("animation").setAttribute("data-frame", String(frame));
  }

  function setFrame(i) { frame = Math.min(Math.max(i | 0, 0), Math.max(nFrames - 1, 0)); draw(); }

  function tick(ts) {
    if (!playing) { return; }
    if (lastTs !== null) {
      acc += (ts - lastTs) / 1000 * 12 * parseFloat(speedSel.value);
      var step = Math.floor(acc);
      if (step > 0) {
        acc -= step;
        if (frame + step >= nFrames - 1) { setFrame(nFrames - 1); pause(); return; }
        setFrame(frame + step);
      }
    }
    lastTs = ts;
    window.requestAnimationFrame(tick);
  }

  function play() {
    if (playing || nFrames < 2) { return; }
    if (frame >= nFrames - 1) { setFrame(0); }
    playing = true; lastTs = null; acc = 0;
    playBtn.innerHTML = "&#10074;&#10074; pause";
    window.requestAnimationFrame(tick);
  }

  function pause() { playing = false; playBtn.innerHTML = "&#9654; play"; }

  playBtn.addEventListener("click", function () { if (playing) { pause(); } else { play(); } });
  slider.addEventListener("input", function () { pause(); setFrame(parseInt(slider.value, 10)); });
  document.addEventListener("keydown", function (e) {
    if (e.target && e.target.tagName === "SELECT") { return; }
    if (e.key === " ") { e.preventDefault(); if (playing) { pause(); } else { play(); } }
    else if (e.key === "ArrowRight") { pause(); setFrame(frame + 1); }
    else if (e.key === "ArrowLeft") { pause(); setFrame(frame - 1); }
  });
  window.addEventListener("resize", draw);
  // For scripted checks (tests, screenshots): read and drive the animation.
  window.poolAnimation = {
    frames: nFrames,
    frame: function () { return frame; },
    setFrame: setFrame,
    play: play,
    pause: pause,
    playing: function () { return playing; }
  };
  draw();
})();
"##;
