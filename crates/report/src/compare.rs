//! Two results side by side: QEMU against hardware, or two pool sizes.

use crate::metrics::{format_value, pool_sizes, Kind, METRICS};
use records::{Report, Source};

/// Warnings a reader must see before any number: results from different
/// sources or traces do not compare like for like.
pub fn warnings(a: &Report, b: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if a.source != b.source {
        let timing = |s: Source| match s {
            Source::Sim => "model timings",
            Source::Qemu => "emulated timings",
            Source::Hardware => "silicon timings",
        };
        out.push(format!(
            "WARNING: sources differ (A: {}, B: {}): {} and {} are not comparable; compare counts, not times",
            a.source.as_str(),
            b.source.as_str(),
            timing(a.source),
            timing(b.source)
        ));
    }
    if a.trace.name != b.trace.name || a.trace.events != b.trace.events {
        out.push(format!(
            "WARNING: traces differ (A: {} with {} events, B: {} with {} events)",
            a.trace.name, a.trace.events, b.trace.name, b.trace.events
        ));
    }
    let (pa, pb) = (pool_sizes(a), pool_sizes(b));
    if pa != pb {
        out.push(format!("note: pool sizes differ (A: {pa}, B: {pb})"));
    }
    out
}

/// Pairs the runs of A and B: the same (policy, mover) first; then a run left
/// over in A with the first left-over run of B under the same policy (a QEMU
/// DMA run against a simulator run, say: placements do not depend on the
/// mover, so counts compare; the sources warning says timings do not).
fn pair_runs<'r>(
    a: &'r Report,
    b: &'r Report,
) -> Vec<(&'r records::RunResult, &'r records::RunResult)> {
    let mut pairs: Vec<(&records::RunResult, &records::RunResult)> = Vec::new();
    let mut used_b = vec![false; b.runs.len()];
    let mut left_a = Vec::new();
    for ra in &a.runs {
        match b
            .runs
            .iter()
            .position(|rb| rb.policy == ra.policy && rb.mover == ra.mover)
        {
            Some(i) if !used_b[i] => {
                used_b[i] = true;
                pairs.push((ra, &b.runs[i]));
            }
            _ => left_a.push(ra),
        }
    }
    for ra in left_a {
        if let Some(i) = (0..b.runs.len()).find(|&i| !used_b[i] && b.runs[i].policy == ra.policy) {
            used_b[i] = true;
            pairs.push((ra, &b.runs[i]));
        }
    }
    pairs.sort_by_key(|(ra, rb)| (ra.policy, ra.mover, rb.mover));
    pairs
}

/// The comparison as text: per pair of runs (see [`pair_runs`]), each
/// metric's A, B, B - A and B / A.
pub fn render(a: &Report, b: &Report, name_a: &str, name_b: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "A: {name_a} ({}, trace {}, pool {})\n",
        a.source.as_str(),
        a.trace.name,
        pool_sizes(a)
    ));
    out.push_str(&format!(
        "B: {name_b} ({}, trace {}, pool {})\n",
        b.source.as_str(),
        b.trace.name,
        pool_sizes(b)
    ));
    for w in warnings(a, b) {
        out.push_str(&w);
        out.push('\n');
    }
    let pairs = pair_runs(a, b);
    let matched = pairs.len();
    for &(ra, rb) in &pairs {
        let mut rows: Vec<[String; 5]> = vec![[
            "metric".into(),
            "A".into(),
            "B".into(),
            "B - A".into(),
            "B / A".into(),
        ]];
        for m in METRICS {
            let (va, vb) = ((m.get)(ra), (m.get)(rb));
            let (diff, ratio) = match (va, vb) {
                (Some(x), Some(y)) => {
                    let d = y - x;
                    let diff = if d == 0.0 {
                        "0".to_string()
                    } else {
                        format!(
                            "{}{}",
                            if d > 0.0 { "+" } else { "" },
                            format_value(m.kind, d)
                        )
                    };
                    let ratio = if x != 0.0 {
                        format!("{:.3}", y / x)
                    } else if y == 0.0 {
                        "=".to_string()
                    } else {
                        "–".to_string()
                    };
                    (diff, ratio)
                }
                _ => ("–".to_string(), "–".to_string()),
            };
            rows.push([m.header.to_string(), m.cell(ra), m.cell(rb), diff, ratio]);
        }
        if ra.pool_bytes != rb.pool_bytes {
            let d = rb.pool_bytes as f64 - ra.pool_bytes as f64;
            rows.insert(
                1,
                [
                    "pool".into(),
                    format_value(Kind::Bytes, ra.pool_bytes as f64),
                    format_value(Kind::Bytes, rb.pool_bytes as f64),
                    format!(
                        "{}{}",
                        if d > 0.0 { "+" } else { "" },
                        format_value(Kind::Bytes, d)
                    ),
                    format!("{:.3}", rb.pool_bytes as f64 / ra.pool_bytes.max(1) as f64),
                ],
            );
        }
        if ra.mover == rb.mover {
            out.push_str(&format!("\n{} / {}\n", ra.policy, ra.mover));
        } else {
            out.push_str(&format!(
                "\n{} / {} (A) against {} (B)\n",
                ra.policy, ra.mover, rb.mover
            ));
        }
        let widths: Vec<usize> = (0..5)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let mut line = format!("  {:<w$}", row[0], w = widths[0]);
            for c in 1..5 {
                line.push_str(&format!("  {:>w$}", row[c], w = widths[c]));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    let only = |runs: &[records::RunResult],
                paired: &dyn Fn(&records::RunResult) -> bool|
     -> Vec<String> {
        runs.iter()
            .filter(|r| !paired(r))
            .map(|r| format!("{}/{}", r.policy, r.mover))
            .collect()
    };
    let only_a = only(&a.runs, &|r| pairs.iter().any(|p| std::ptr::eq(p.0, r)));
    let only_b = only(&b.runs, &|r| pairs.iter().any(|p| std::ptr::eq(p.1, r)));
    if !only_a.is_empty() {
        out.push_str(&format!("\nonly in A: {}\n", only_a.join(", ")));
    }
    if !only_b.is_empty() {
        out.push_str(&format!("\nonly in B: {}\n", only_b.join(", ")));
    }
    if matched == 0 {
        out.push_str("\nno run matches: the two results share no policy\n");
    }
    out
}
