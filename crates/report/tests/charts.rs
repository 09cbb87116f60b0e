//! The timeline charts tell the policies apart, even where their lines coincide.

mod common;

use common::*;
use records::Policy;
use std::collections::HashSet;

/// The points of an SVG polyline, as written by plotters ("x,y x,y ...").
fn points(node: roxmltree::Node) -> HashSet<(i64, i64)> {
    node.attribute("points")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|p| {
            let (x, y) = p.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect()
}

/// A policy's colour as plotters writes it in a stroke attribute.
fn stroke(policy: Policy) -> String {
    let c = report::charts::policy_colour(policy);
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// Every policy's line is drawn, and no line drawn after it covers all of its
/// points: each stays visible. The samples are the same for every policy, so
/// in a single plot the last policy drawn would hide the other three.
#[test]
fn every_policy_stays_visible_in_every_timeline_chart() {
    let shape = Shape {
        identical_samples: true,
        ..Shape::default()
    };
    let collector = collector(shape);
    let report = collector.report().unwrap();
    let charts = report::charts::all(&report, Some(&collector)).unwrap();
    for file in ["occupancy.svg", "fragmentation.svg", "overflow.svg"] {
        let chart = charts.iter().find(|c| c.file == file).expect(file);
        let doc = roxmltree::Document::parse(&chart.svg).unwrap();
        let lines: Vec<(String, HashSet<(i64, i64)>)> = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .map(|n| (n.attribute("stroke").unwrap_or("").to_string(), points(n)))
            .collect();
        let mut bands = Vec::new();
        for policy in Policy::ALL {
            let colour = stroke(policy);
            let own: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].0 == colour).collect();
            assert_eq!(own.len(), 1, "{file}: {policy} drawn {} times", own.len());
            let (i, pts) = (own[0], &lines[own[0]].1);
            assert!(
                pts.len() >= 2,
                "{file}: {policy}'s line has {} points",
                pts.len()
            );
            for (later_colour, later) in &lines[i + 1..] {
                assert!(
                    !pts.is_subset(later),
                    "{file}: {policy}'s line is covered by a later {later_colour} line"
                );
            }
            let ys: Vec<i64> = pts.iter().map(|p| p.1).collect();
            bands.push((policy, *ys.iter().min().unwrap(), *ys.iter().max().unwrap()));
        }
        // Identical data, yet each policy's line sits in its own panel.
        for (a, b) in bands.iter().zip(bands.iter().skip(1)) {
            assert!(
                a.2 < b.1,
                "{file}: the {} and {} lines share a panel: {a:?} {b:?}",
                a.0,
                b.0
            );
        }
    }
}
