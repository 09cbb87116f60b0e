//! The columns every view shows (terminal table, HTML table, comparison), with
//! the direction in which each is better, so all views mark the same cells.

use crate::units;
use records::{Platform, PlatformKey, Report, RunFlag, RunResult, Source};

/// Which way a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
    /// A fact about the run, not a score (events replayed, peak used bytes).
    Neither,
}

/// How a metric's value is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Count,
    Bytes,
    DurationNs,
    /// 0..=1, printed as a percentage.
    Fraction,
}

/// One column of the summary.
pub struct Metric {
    /// The field name in report.json (docs/design.md, section 5), for people matching numbers up.
    pub key: &'static str,
    /// Short column header.
    pub header: &'static str,
    pub kind: Kind,
    pub better: Better,
    /// `None` when the value means nothing for this run (latency of a run without moves).
    pub get: fn(&RunResult) -> Option<f64>,
}

impl Metric {
    /// The value as people read it.
    pub fn format(&self, value: f64) -> String {
        format_value(self.kind, value)
    }

    /// The cell text for a run: "–" when the value does not apply.
    pub fn cell(&self, run: &RunResult) -> String {
        (self.get)(run).map_or_else(|| "–".to_string(), |v| self.format(v))
    }
}

/// Formats a value of a kind (also used for differences, which may be negative).
pub fn format_value(kind: Kind, value: f64) -> String {
    let sign = if value < 0.0 { "-" } else { "" };
    let magnitude = value.abs();
    let body = match kind {
        Kind::Count => units::count(magnitude.round() as u64),
        Kind::Bytes => units::bytes(magnitude.round() as u64),
        Kind::DurationNs => units::duration_ns(magnitude.round() as u64),
        Kind::Fraction => format!("{:.1} %", magnitude * 100.0),
    };
    format!("{sign}{body}")
}

fn some(v: u64) -> Option<f64> {
    Some(v as f64)
}

/// A latency means something only when the run timed at least one move.
fn latency(r: &RunResult, v: u64) -> Option<f64> {
    (r.moves > 0).then_some(v as f64)
}

/// Every column, in display order.
pub const METRICS: &[Metric] = &[
    Metric {
        key: "events",
        header: "events",
        kind: Kind::Count,
        better: Better::Neither,
        get: |r| some(r.events),
    },
    Metric {
        key: "rule1_failures",
        header: "rule1 fail",
        kind: Kind::Count,
        better: Better::Lower,
        get: |r| some(r.rule1_failures),
    },
    Metric {
        key: "page_ins",
        header: "page-ins",
        kind: Kind::Count,
        better: Better::Lower,
        get: |r| some(r.page_ins),
    },
    Metric {
        key: "page_outs",
        header: "page-outs",
        kind: Kind::Count,
        better: Better::Lower,
        get: |r| some(r.page_outs),
    },
    Metric {
        key: "purges",
        header: "purges",
        kind: Kind::Count,
        better: Better::Lower,
        get: |r| some(r.purges),
    },
    Metric {
        key: "compaction_moves",
        header: "compactions",
        kind: Kind::Count,
        better: Better::Lower,
        get: |r| some(r.compaction_moves),
    },
    Metric {
        key: "moves",
        header: "moves",
        kind: Kind::Count,
        better: Better::Lower,
        get: |r| some(r.moves),
    },
    Metric {
        key: "bytes_moved",
        header: "moved",
        kind: Kind::Bytes,
        better: Better::Lower,
        get: |r| some(r.bytes_moved),
    },
    Metric {
        key: "peak_used_bytes",
        header: "peak used",
        kind: Kind::Bytes,
        better: Better::Neither,
        get: |r| some(r.peak_used_bytes),
    },
    Metric {
        key: "peak_overflow_bytes",
        header: "peak ovfl",
        kind: Kind::Bytes,
        better: Better::Lower,
        get: |r| some(r.peak_overflow_bytes),
    },
    Metric {
        key: "mean_fragmentation",
        header: "mean frag",
        kind: Kind::Fraction,
        better: Better::Lower,
        get: |r| Some(r.mean_fragmentation),
    },
    Metric {
        key: "move_latency_ns.p50",
        header: "lat p50",
        kind: Kind::DurationNs,
        better: Better::Lower,
        get: |r| latency(r, r.move_latency_ns.p50),
    },
    Metric {
        key: "move_latency_ns.p99",
        header: "lat p99",
        kind: Kind::DurationNs,
        better: Better::Lower,
        get: |r| latency(r, r.move_latency_ns.p99),
    },
    Metric {
        key: "move_latency_ns.max",
        header: "lat max",
        kind: Kind::DurationNs,
        better: Better::Lower,
        get: |r| latency(r, r.move_latency_ns.max),
    },
    Metric {
        key: "stall_ns",
        header: "stall",
        kind: Kind::DurationNs,
        better: Better::Lower,
        get: |r| some(r.stall_ns),
    },
    Metric {
        key: "compactions_delayed",
        header: "cmp delayed",
        kind: Kind::Count,
        better: Better::Lower,
        get: |r| some(r.compactions_delayed),
    },
    Metric {
        key: "replay_ns",
        header: "replay",
        kind: Kind::DurationNs,
        better: Better::Lower,
        get: |r| some(r.replay_ns),
    },
    Metric {
        key: "conditions.output_ns",
        header: "output",
        kind: Kind::DurationNs,
        better: Better::Neither,
        get: |r| r.conditions.as_ref().map(|c| c.output_ns as f64),
    },
    Metric {
        key: "verified_pages",
        header: "verified",
        kind: Kind::Count,
        better: Better::Neither,
        get: |r| some(r.verified_pages),
    },
    Metric {
        key: "corrupted_pages",
        header: "corrupt",
        kind: Kind::Count,
        better: Better::Lower,
        get: |r| some(r.corrupted_pages),
    },
    Metric {
        key: "dma_fallbacks",
        header: "dma fallb",
        kind: Kind::Count,
        better: Better::Lower,
        get: |r| some(r.dma_fallbacks),
    },
];

/// The flags of a run as its table cell: "" when none.
pub fn flags_cell(run: &RunResult) -> String {
    run.flags()
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether any run of the report is flagged (the tables then show a flags
/// column and its legend).
pub fn any_flagged(report: &Report) -> bool {
    report.runs.iter().any(|r| !r.flags().is_empty())
}

/// One line per flag that some run carries: what it means.
pub fn flag_legend(report: &Report) -> Vec<String> {
    let mut seen: Vec<RunFlag> = Vec::new();
    for f in report.runs.iter().flat_map(|r| r.flags()) {
        if !seen.contains(f) {
            seen.push(*f);
        }
    }
    seen.sort_by_key(|f| f.as_str());
    seen.iter()
        .map(|f| format!("{}: {}; its timings are suspect", f.as_str(), f.meaning()))
        .collect()
}

/// For each run, whether its value of `metric` is the best in the column.
/// Ties for best are all marked; nothing is marked when every run has the same
/// value, because then no run is better than another.
pub fn best_flags(metric: &Metric, runs: &[RunResult]) -> Vec<bool> {
    let values: Vec<Option<f64>> = runs.iter().map(|r| (metric.get)(r)).collect();
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let best = match metric.better {
        Better::Neither => None,
        Better::Lower => present.iter().copied().reduce(f64::min),
        Better::Higher => present.iter().copied().reduce(f64::max),
    };
    let all_equal = present.windows(2).all(|w| w[0] == w[1]);
    match best {
        Some(best) if present.len() > 1 && !all_equal => {
            values.iter().map(|v| *v == Some(best)).collect()
        }
        _ => vec![false; runs.len()],
    }
}

/// Where the numbers came from, in the words a reader needs.
pub fn source_description(source: Source) -> &'static str {
    match source {
        Source::Sim => {
            "simulator on the host (modelled mover): timings are model timings, not hardware"
        }
        Source::Qemu => "QEMU emulation: timings are emulation timings, not hardware",
        Source::Hardware => "hardware (Raspberry Pi 3 silicon): measured timings",
    }
}

/// The lines of the platform block that the terminal header sums up the board with.
pub const BOARD_SUMMARY: [PlatformKey; 4] = [
    PlatformKey::BoardRevision,
    PlatformKey::ArmClockSet,
    PlatformKey::DmaChannel,
    PlatformKey::RunningOn,
];

/// The board in one line, from the platform block's own values.
pub fn board_summary(platform: &Platform) -> String {
    BOARD_SUMMARY
        .iter()
        .map(|&key| format!("{} {}", key.label(), platform.value(key)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What stands in for the board when a result from a board has no platform
/// block (a simulation has no board, so nothing is said).
pub fn missing_platform(report: &Report) -> Option<&'static str> {
    (report.platform.is_none() && report.source != Source::Sim)
        .then_some("no platform block in this result")
}

/// The facts about the runs every view shows, as labelled values: the timer
/// that timed them, the trace and the pool.
pub fn run_context(report: &Report) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    let mut timers: Vec<String> = Vec::new();
    for r in &report.runs {
        let t = format!("{} at {}", r.timer.name, units::hertz(r.timer.hz));
        if !timers.contains(&t) {
            timers.push(t);
        }
    }
    if let Some(p) = &report.platform {
        if timers.is_empty() {
            timers.push(format!("CNTFRQ_EL0 {}", units::hertz(p.timer_hz)));
        }
    }
    if !timers.is_empty() {
        rows.push(("timer", timers.join("; ")));
    }
    let mut routines: Vec<String> = Vec::new();
    for r in &report.runs {
        if let Some(c) = &r.conditions {
            let line = format!("{}: {}", r.mover, c.copy_routine);
            if !routines.contains(&line) {
                routines.push(line);
            }
        }
    }
    if !routines.is_empty() {
        rows.push(("copy routine", routines.join("; ")));
    }
    if report.runs.iter().any(|r| r.conditions.is_some()) {
        rows.push((
            "output",
            "records are buffered in RAM and written between timed intervals; the output column is the UART \
             time kept out of each run's timings"
                .to_string(),
        ));
    }
    let t = &report.trace;
    rows.push((
        "trace",
        format!(
            "{} ({} events, {} buffers, peak live {})",
            t.name,
            units::count(t.events),
            units::count(t.buffers),
            units::bytes(t.peak_live_bytes)
        ),
    ));
    rows.push(("pool", pool_sizes(report)));
    rows
}

/// What an incomplete report is, for the table and the page.
pub const INCOMPLETE_TEXT: &str = "the stream ended before the firmware finished (the host stopped it, the firmware faulted, or a board reset or a new boot cut it off: the command's own output says which); only the runs that ended are shown";

/// Why `report` is incomplete, for the table and the page: frames lost on
/// the line (numbers that may be missing from any run), or a cut stream.
pub fn incomplete_text(report: &Report) -> String {
    if report.lost_frames > 0 {
        format!(
            "{} frame(s) of the stream were lost (damaged on the line, failing their CRC, or missing from the sequence numbers) and were not decoded: what they held (samples, a run's result, the end of the stream) is missing, so there may be fewer or thinner runs here than the firmware measured",
            report.lost_frames
        )
    } else {
        INCOMPLETE_TEXT.to_string()
    }
}

/// The header lines the terminal prints above the numbers: source, an
/// incomplete stream, board, timer, trace and pool.
pub fn context_lines(report: &Report) -> Vec<String> {
    let mut lines = vec![format!("source: {}", source_description(report.source))];
    if report.incomplete {
        lines.push(format!("INCOMPLETE: {}", incomplete_text(report)));
    }
    if let Some(p) = &report.platform {
        lines.push(format!("board: {}", board_summary(p)));
    } else if let Some(missing) = missing_platform(report) {
        lines.push(format!("board: {missing}"));
    }
    lines.extend(
        run_context(report)
            .into_iter()
            .map(|(label, value)| format!("{label}: {value}")),
    );
    lines
}

/// The pool size(s) of a report's runs, e.g. "16 MiB" or "16 MiB, 32 MiB".
pub fn pool_sizes(report: &Report) -> String {
    let mut sizes: Vec<u64> = report.runs.iter().map(|r| r.pool_bytes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() {
        return "no runs".to_string();
    }
    sizes
        .iter()
        .map(|&b| units::bytes(b))
        .collect::<Vec<_>>()
        .join(", ")
}
