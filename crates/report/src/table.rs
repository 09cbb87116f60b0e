//! The end-of-run table: every run side by side, best value of each column marked.
//!
//! By default it fits [`DEFAULT_WIDTH`] columns (or a narrower terminal) and
//! shows the columns a driver engineer reads first, [`TERMINAL_COLUMNS`];
//! `wide` shows every column. report.json, the CSV and the page always hold
//! every value.

use crate::metrics::{
    any_flagged, best_flags, context_lines, flag_legend, flags_cell, Metric, METRICS,
};
use records::Report;
use std::io::IsTerminal;

/// The marker after a best value; the legend below the table explains it.
pub const BEST_MARK: char = '*';

/// The width the table fits when the terminal's is not known (or is wider).
pub const DEFAULT_WIDTH: usize = 100;

/// The metrics of the default table by their report.json key, most important
/// first: when even these do not fit, the last ones are left out first.
pub const TERMINAL_COLUMNS: &[&str] = &[
    "rule1_failures",
    "corrupted_pages",
    "page_outs",
    "bytes_moved",
    "peak_overflow_bytes",
    "mean_fragmentation",
    "move_latency_ns.p99",
    "move_latency_ns.p50",
];

/// Shown after [`TERMINAL_COLUMNS`] (room permitting) when some run waited
/// for moves in flight: a timed mover (`sim --latency`, the DMA engine) makes
/// the stall and the compactions it delayed part of the answer.
pub const TIMED_COLUMNS: &[&str] = &["stall_ns", "compactions_delayed"];

/// How the table is laid out.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Every column, whatever the width.
    pub wide: bool,
    /// Columns of text to fit (ignored when `wide`).
    pub width: usize,
    /// ANSI bold green on the best cells (the `*` stays, so the meaning
    /// survives copy and paste).
    pub colour: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            wide: false,
            width: DEFAULT_WIDTH,
            colour: false,
        }
    }
}

impl Layout {
    /// Every column, plain text.
    pub fn wide() -> Self {
        Layout {
            wide: true,
            ..Layout::default()
        }
    }

    /// For stdout: colour and the terminal's width when stdout is a terminal.
    pub fn for_stdout(wide: bool) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let width = terminal
            .then(|| console::Term::stdout().size_checked())
            .flatten()
            .map_or(DEFAULT_WIDTH, |(_, cols)| {
                usize::from(cols).min(DEFAULT_WIDTH)
            });
        Layout {
            wide,
            width,
            colour: terminal && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// The default table as plain text (best values marked with `*`), for logs and files.
pub fn render(report: &Report) -> String {
    render_with(report, Layout::default())
}

/// The table for stdout (see [`Layout::for_stdout`]).
pub fn render_for_stdout(report: &Report, wide: bool) -> String {
    render_with(report, Layout::for_stdout(wide))
}

/// Cell width of a metric's column: its header or its widest cell with the mark.
fn metric_width(metric: &Metric, report: &Report) -> usize {
    report
        .runs
        .iter()
        .map(|r| metric.cell(r).chars().count() + 1)
        .chain([metric.header.chars().count()])
        .max()
        .unwrap_or(0)
}

/// The metrics to show, in display order, and the ones left out.
fn choose_metrics(
    report: &Report,
    layout: Layout,
    label_width: usize,
) -> (Vec<&'static Metric>, Vec<&'static Metric>) {
    if layout.wide {
        return (METRICS.iter().collect(), Vec::new());
    }
    let mut used = label_width;
    let mut shown: Vec<&str> = Vec::new();
    let timed = report
        .runs
        .iter()
        .any(|r| r.stall_ns > 0 || r.compactions_delayed > 0);
    let extra: &[&str] = if timed { TIMED_COLUMNS } else { &[] };
    for key in TERMINAL_COLUMNS.iter().chain(extra) {
        let Some(metric) = METRICS.iter().find(|m| m.key == *key) else {
            continue;
        };
        let width = SEPARATOR + metric_width(metric, report);
        if used + width <= layout.width {
            used += width;
            shown.push(key);
        }
    }
    METRICS.iter().partition(|m| shown.contains(&m.key))
}

/// Spaces between columns.
const SEPARATOR: usize = 2;

/// Breaks `text` into lines of at most `width` characters at spaces.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// The table laid out as `layout` says.
pub fn render_with(report: &Report, layout: Layout) -> String {
    let width = if layout.wide {
        usize::MAX
    } else {
        layout.width
    };
    let mut out = String::new();
    for line in context_lines(report) {
        for l in wrap(&line, width) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    if report.runs.is_empty() {
        out.push_str("no run finished\n");
        return out;
    }
    let show_pool = report
        .runs
        .iter()
        .any(|r| r.pool_bytes != report.runs[0].pool_bytes);

    // Columns: labels first, then metrics. Each cell is (text, is_best).
    let show_flags = any_flagged(report);
    let mut headers: Vec<String> = vec!["policy".into(), "mover".into()];
    if show_pool {
        headers.push("pool".into());
    }
    if show_flags {
        headers.push("flags".into());
    }
    let label_columns = headers.len();

    let mut rows: Vec<Vec<(String, bool)>> = report
        .runs
        .iter()
        .map(|r| {
            let mut row = vec![(r.policy.to_string(), false), (r.mover.to_string(), false)];
            if show_pool {
                row.push((crate::units::bytes(r.pool_bytes), false));
            }
            if show_flags {
                row.push((flags_cell(r), false));
            }
            row
        })
        .collect();
    let label_width: usize = (0..label_columns)
        .map(|c| {
            let cells = rows.iter().map(|row| row[c].0.chars().count());
            cells.chain([headers[c].chars().count()]).max().unwrap_or(0)
        })
        .sum::<usize>()
        + SEPARATOR * label_columns.saturating_sub(1);
    let (metrics, hidden) = choose_metrics(report, layout, label_width);
    headers.extend(metrics.iter().map(|m| m.header.to_string()));
    for metric in metrics {
        let flags = best_flags(metric, &report.runs);
        for ((row, run), best) in rows.iter_mut().zip(&report.runs).zip(flags) {
            row.push((metric.cell(run), best));
        }
    }

    let widths: Vec<usize> = (0..headers.len())
        .map(|c| {
            // Metric cells carry the best mark (or a space) after the number.
            let mark = usize::from(c >= label_columns);
            let cells = rows.iter().map(|row| row[c].0.chars().count() + mark);
            cells.chain([headers[c].chars().count()]).max().unwrap_or(0)
        })
        .collect();

    let mut header_line = String::new();
    for (c, h) in headers.iter().enumerate() {
        if c < label_columns {
            header_line.push_str(&format!("{h:<w$}  ", w = widths[c]));
        } else {
            header_line.push_str(&format!("{h:>w$}  ", w = widths[c]));
        }
    }
    out.push('\n');
    out.push_str(header_line.trim_end());
    out.push('\n');
    out.push_str(&"-".repeat(header_line.trim_end().chars().count()));
    out.push('\n');
    for row in &rows {
        let mut line = String::new();
        for (c, (text, best)) in row.iter().enumerate() {
            if c < label_columns {
                line.push_str(&format!("{text:<w$}  ", w = widths[c]));
                continue;
            }
            // Numbers right-aligned; the marker (or a space) sits after the number
            // so the digits of a column stay aligned.
            let marked = format!("{text}{}", if *best { BEST_MARK } else { ' ' });
            let pad = widths[c].saturating_sub(marked.chars().count());
            line.push_str(&" ".repeat(pad));
            if *best && layout.colour {
                line.push_str(&format!("\x1b[1;32m{marked}\x1b[0m"));
            } else {
                line.push_str(&marked);
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    let mut notes = vec![format!(
        "{BEST_MARK} best in its column (lower is better, except events, peak used and verified, which are \
         not scored; nothing is marked where all runs tie). – : no moves were timed."
    )];
    if !hidden.is_empty() {
        let names: Vec<&str> = hidden.iter().map(|m| m.header).collect();
        notes.push(format!(
            "Not shown: {} (--wide shows them; report.json, timeline.csv and index.html hold every value).",
            names.join(", ")
        ));
    }
    notes.extend(flag_legend(report).iter().map(|l| format!("flag {l}")));
    for note in notes {
        for l in wrap(&note, width) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}
