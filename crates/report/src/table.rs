//! The end-of-run table: every run side by side, best value of each column marked.

use crate::metrics::{any_flagged, best_flags, context_lines, flag_legend, flags_cell, METRICS};
use records::Report;
use std::io::IsTerminal;

/// The marker after a best value; the legend below the table explains it.
pub const BEST_MARK: char = '*';

/// The table as plain text (best values marked with `*`), for logs and files.
pub fn render(report: &Report) -> String {
    render_with(report, false)
}

/// The table for stdout: bold green best values when stdout is a terminal.
pub fn render_for_stdout(report: &Report) -> String {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    render_with(report, colour)
}

/// The table; `colour` adds ANSI bold/green to the best cells (the `*` stays, so
/// the meaning survives copy and paste).
pub fn render_with(report: &Report, colour: bool) -> String {
    let mut out = String::new();
    for line in context_lines(report) {
        out.push_str(&line);
        out.push('\n');
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
    headers.extend(METRICS.iter().map(|m| m.header.to_string()));

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
    for metric in METRICS {
        let flags = best_flags(metric, &report.runs);
        for ((row, run), best) in rows.iter_mut().zip(&report.runs).zip(flags) {
            row.push((metric.cell(run), best));
        }
    }

    let widths: Vec<usize> = (0..headers.len())
        .map(|c| {
            let cells = rows.iter().map(|row| row[c].0.chars().count() + 1);
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
            if *best && colour {
                line.push_str(&format!("\x1b[1;32m{marked}\x1b[0m"));
            } else {
                line.push_str(&marked);
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{BEST_MARK} best in its column (lower is better, except events, peak used and verified, which are \
         not scored; nothing is marked where all runs tie). – : no moves were timed.\n"
    ));
    for line in flag_legend(report) {
        out.push_str(&format!("flag {line}\n"));
    }
    out
}
