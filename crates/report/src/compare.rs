//! Two results side by side: QEMU against hardware, or two pool sizes.

use crate::metrics::{format_value, pool_sizes, Kind, METRICS};
use records::{MoverKind, Policy, Report, Source};

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

/// The comparison as text: per (policy, mover) present in both, each metric's
/// A, B, B - A and B / A.
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
    let key = |r: &records::RunResult| (r.policy, r.mover);
    let mut keys: Vec<(Policy, MoverKind)> = a.runs.iter().map(key).collect();
    keys.sort();
    keys.dedup();
    let mut matched = 0;
    for k in &keys {
        let (Some(ra), Some(rb)) = (a.runs.iter().find(|r| key(r) == *k), b.runs.iter().find(|r| key(r) == *k))
        else {
            continue;
        };
        matched += 1;
        let mut rows: Vec<[String; 5]> =
            vec![["metric".into(), "A".into(), "B".into(), "B - A".into(), "B / A".into()]];
        for m in METRICS {
            let (va, vb) = ((m.get)(ra), (m.get)(rb));
            let (diff, ratio) = match (va, vb) {
                (Some(x), Some(y)) => {
                    let d = y - x;
                    let diff = if d == 0.0 {
                        "0".to_string()
                    } else {
                        format!("{}{}", if d > 0.0 { "+" } else { "" }, format_value(m.kind, d))
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
                    format!("{}{}", if d > 0.0 { "+" } else { "" }, format_value(Kind::Bytes, d)),
                    format!("{:.3}", rb.pool_bytes as f64 / ra.pool_bytes.max(1) as f64),
                ],
            );
        }
        out.push_str(&format!("\n{} / {}\n", k.0, k.1));
        let widths: Vec<usize> =
            (0..5).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        for row in &rows {
            let mut line = format!("  {:<w$}", row[0], w = widths[0]);
            for c in 1..5 {
                line.push_str(&format!("  {:>w$}", row[c], w = widths[c]));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    let only = |x: &Report, y: &Report| -> Vec<String> {
        x.runs
            .iter()
            .filter(|r| !y.runs.iter().any(|o| key(o) == key(r)))
            .map(|r| format!("{}/{}", r.policy, r.mover))
            .collect()
    };
    let (only_a, only_b) = (only(a, b), only(b, a));
    if !only_a.is_empty() {
        out.push_str(&format!("\nonly in A: {}\n", only_a.join(", ")));
    }
    if !only_b.is_empty() {
        out.push_str(&format!("\nonly in B: {}\n", only_b.join(", ")));
    }
    if matched == 0 {
        out.push_str("\nno run matches: the two results share no (policy, mover) pair\n");
    }
    out
}
