//! The report directory, table and comparison built from a recorded stream.

mod common;

use common::*;
use records::{MoverKind, Policy, Report, Source};
use report::table::{Layout, DEFAULT_WIDTH, TERMINAL_COLUMNS};
use std::sync::{Arc, Mutex};

/// Writes the synthetic stream to records.bin, reads it back and renders it:
/// the path a saved replay takes through `cargo xtask report`.
fn rendered(name: &str, shape: Shape) -> (report::Written, records::Collector) {
    let dir = test_dir(name);
    let stream = dir.join("input.bin");
    let file = std::fs::File::create(&stream).unwrap();
    report::stream::write(file, &records(shape)).unwrap();
    let collector = report::stream::load(&stream).unwrap();
    let written = report::write_dir(&collector, &dir.join("out")).unwrap();
    (written, collector)
}

/// The table row of a run, split into cells on runs of two or more spaces.
fn row<'a>(table: &'a str, policy: &str, mover: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(policy) && words.next() == Some(mover)
        })
        .unwrap_or_else(|| panic!("no row for {policy}/{mover} in\n{table}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn column(table: &str, header: &str) -> usize {
    let line = table
        .lines()
        .find(|l| l.starts_with("policy"))
        .expect("header line");
    let cells: Vec<&str> = line
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    cells
        .iter()
        .position(|c| *c == header)
        .unwrap_or_else(|| panic!("no column {header} in {line}"))
}

#[test]
fn table_rows_mark_the_best_cells() {
    let (written, _) = rendered("table", Shape::default());
    let table = report::table::render_with(&written.report, Layout::wide());
    assert!(
        table.contains("QEMU emulation: timings are emulation timings, not hardware"),
        "{table}"
    );
    assert!(table.contains("board revision 0xa02082"), "{table}");
    assert!(table.contains("DMA channel 4"), "{table}");
    assert!(table.contains("timer: CNTPCT_EL0 at 62.5 MHz"), "{table}");
    assert!(
        table.contains("trace: synthetic-kmscube (2 000 events, 120 buffers, peak live 24 MiB)"),
        "{table}"
    );
    assert!(table.contains("pool: 16 MiB"), "{table}");

    // 4 policies x 2 movers.
    let policies: Vec<&str> = Policy::ALL.iter().map(|p| p.as_str()).collect();
    let rows = table
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| policies.contains(&w))
        })
        .count();
    assert_eq!(rows, 8, "{table}");

    let page_outs = column(&table, "page-outs");
    assert_eq!(row(&table, "defrag", "dma")[page_outs], "12*");
    assert_eq!(row(&table, "defrag", "cpu")[page_outs], "12*");
    assert_eq!(row(&table, "first-fit", "dma")[page_outs], "40");
    assert_eq!(row(&table, "compact", "cpu")[page_outs], "30");

    let p50 = column(&table, "lat p50");
    assert_eq!(row(&table, "first-fit", "dma")[p50], "48.0 µs*");
    assert_eq!(row(&table, "first-fit", "cpu")[p50], "131 µs");
    assert_eq!(row(&table, "defrag", "dma")[p50], "51.0 µs");

    // Rule 1 failures: only first-fit has some, so every other policy is best.
    let rule1 = column(&table, "rule1 fail");
    assert_eq!(row(&table, "first-fit", "dma")[rule1], "3");
    assert_eq!(row(&table, "drm-mm", "dma")[rule1], "0*");
    // All runs have zero corrupted pages: a tie, so nothing is marked.
    let corrupt = column(&table, "corrupt");
    assert_eq!(row(&table, "drm-mm", "cpu")[corrupt], "0");
    // Not scored: events.
    assert_eq!(
        row(&table, "compact", "dma")[column(&table, "events")],
        "2 000"
    );
    // Human units.
    assert_eq!(
        row(&table, "drm-mm", "dma")[column(&table, "moved")],
        "17 MiB"
    );
    assert_eq!(
        row(&table, "compact", "cpu")[column(&table, "mean frag")],
        "15.0 %"
    );

    let coloured = report::table::render_with(
        &written.report,
        Layout {
            colour: true,
            ..Layout::wide()
        },
    );
    assert!(coloured.contains("\x1b[1;32m12*\x1b[0m"), "{coloured}");
}

#[test]
fn files_hold_the_stream_contents() {
    let (written, collector) = rendered("files", Shape::default());
    for name in [
        "report.json",
        "records.bin",
        "timeline.csv",
        "occupancy.svg",
        "fragmentation.svg",
        "overflow.svg",
        "move_latency.svg",
        "index.html",
    ] {
        let path = written
            .file(name)
            .unwrap_or_else(|| panic!("{name} not written"));
        assert!(
            std::fs::metadata(path).unwrap().len() > 0,
            "{name} is empty"
        );
    }

    // report.json follows docs/design.md section 5 and reads back as the same report.
    let json = std::fs::read_to_string(written.file("report.json").unwrap()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["source"], "qemu");
    assert_eq!(value["platform"]["board_revision"], "0xa02082");
    assert_eq!(value["runs"].as_array().unwrap().len(), 8);
    assert_eq!(value["runs"][3]["policy"], "defrag");
    assert_eq!(value["runs"][3]["page_outs"], 12);
    assert_eq!(value["runs"][4]["mover"], "cpu");
    assert_eq!(value["runs"][4]["move_latency_ns"]["p50"], 131_000);
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, collector.report().unwrap());

    // records.bin rebuilds the same collector contents.
    let again = report::stream::load(written.file("records.bin").unwrap()).unwrap();
    assert_eq!(again.report().unwrap(), collector.report().unwrap());
    assert_eq!(again.runs, collector.runs);
    assert_eq!(again.firmware, collector.firmware);

    // timeline.csv: one line per sample of every run, values in the right columns.
    let csv = std::fs::read_to_string(written.file("timeline.csv").unwrap()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], report::timeline::HEADER);
    assert_eq!(lines.len(), 1 + 8 * (EVENTS / 20) as usize);
    // Run 3 is defrag/dma; its sample at event 40: used = 8 MiB + 40*4096*4.
    let expected_used = (POOL / 2) + 40 * 4096 * 4;
    let line = lines
        .iter()
        .find(|l| l.starts_with("3,defrag,dma,40,"))
        .expect("defrag sample at event 40");
    let cells: Vec<&str> = line.split(',').collect();
    assert_eq!(cells[4], "0.320000");
    assert_eq!(cells[5], expected_used.to_string());
    assert_eq!(cells[8], "10");

    // The page embeds the table with the best cell marked and one pool row per policy.
    let html = std::fs::read_to_string(written.file("index.html").unwrap()).unwrap();
    assert!(html.contains("<td class=\"best\">12&nbsp;*</td>"));
    for i in 0..4 {
        assert!(
            html.contains(&format!("id=\"pool-canvas-{i}\"")),
            "pool row {i} missing"
        );
    }
    assert!(
        !html.contains("id=\"pool-canvas-4\""),
        "one row per policy, not per run"
    );
    assert!(html.contains("timings are emulation timings, not hardware"));

    // The platform table shows every line of the record's platform block, in
    // its order, with an unanswered tag as "unavailable".
    let platform = collector.platform.as_ref().unwrap();
    let mut rest = html.as_str();
    for field in platform.fields() {
        let row = format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            report::html::escape(field.label()),
            report::html::escape(&field.value)
        );
        let at = rest
            .find(&row)
            .unwrap_or_else(|| panic!("{row} missing or out of order"));
        rest = &rest[at + row.len()..];
    }
    assert!(html.contains("<tr><th>board model</th><td>unavailable</td></tr>"));
    assert!(html.contains("<tr><th>SoC temperature</th><td>unavailable</td></tr>"));
}

#[test]
fn page_is_self_contained_and_small_for_a_big_trace() {
    let shape = Shape {
        events: 200_000,
        sample_every: 100,
        snapshot_every: 50,
        buffers: 400,
        ..Shape::default()
    };
    let (written, collector) = rendered("big", shape);
    let snapshots: usize = collector.runs.iter().map(|r| r.snapshots.len()).sum();
    assert!(
        snapshots > 10_000,
        "the synthetic trace should need thinning ({snapshots} snapshots)"
    );
    let html = std::fs::read_to_string(written.file("index.html").unwrap()).unwrap();
    assert!(html.len() < 5 << 20, "index.html is {} bytes", html.len());
    // Nothing fetched: no external scripts, styles, images or fonts. (SVG's
    // xmlns is a name, not a fetch.)
    let lower = html.to_lowercase();
    for needle in ["src=", "href=\"http", "url(", "@import", "@font-face"] {
        assert!(
            !lower.contains(needle),
            "the page references something external: {needle}"
        );
    }
    // The thinned animation still spans the whole trace.
    let start = html.find("id=\"pool-data\">").unwrap() + "id=\"pool-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    let frames = data["frames"].as_array().unwrap();
    assert!(
        frames.len() > 20 && frames.len() < 4_000,
        "{} frames",
        frames.len()
    );
    assert_eq!(frames[0][0], 0);
    assert_eq!(frames.last().unwrap()[0], shape.events - 1);
    assert_eq!(data["unit"], PAGE);
}

#[test]
fn svgs_parse_and_name_their_axes() {
    let (written, _) = rendered("svg", Shape::default());
    let summary_dir = test_dir("svg-summary");
    let summary = report::write_summary_dir(&written.report, &summary_dir).unwrap();
    let expected: &[(&str, &[&str])] = &[
        (
            "occupancy.svg",
            &[
                "trace time (s)",
                "used in pool (MiB)",
                "first-fit",
                "defrag",
            ],
        ),
        (
            "fragmentation.svg",
            &["trace time (s)", "fragmentation (%)", "compact"],
        ),
        (
            "overflow.svg",
            &["trace time (s)", "overflow (MiB)", "drm-mm"],
        ),
        (
            "move_latency.svg",
            &[
                "move size (bytes, log scale)",
                "latency, submit to completion (log scale)",
                "dma",
                "cpu",
            ],
        ),
    ];
    let mut checked = 0;
    for written in [&written, &summary] {
        for path in written
            .files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        {
            let text = std::fs::read_to_string(path).unwrap();
            let doc = roxmltree::Document::parse(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(doc.root_element().tag_name().name(), "svg");
            let texts: Vec<String> = doc
                .descendants()
                .filter(|n| n.has_tag_name("text"))
                .filter_map(|n| n.text())
                .map(String::from)
                .collect();
            let name = path.file_name().unwrap().to_str().unwrap();
            let (_, wanted) = expected.iter().find(|(n, _)| *n == name).unwrap();
            for w in *wanted {
                assert!(
                    texts.iter().any(|t| t.contains(w)),
                    "{name}: no text {w:?} in {texts:?}"
                );
            }
            // The title names trace, pool size and source.
            assert!(texts.iter().any(|t| t.contains("synthetic-kmscube")
                && t.contains("16 MiB")
                && t.contains("QEMU")));
            checked += 1;
        }
    }
    assert_eq!(
        checked, 5,
        "4 charts from the stream, the latency chart from the summary"
    );
}

#[test]
fn summary_only_dir_renders_what_it_can() {
    let (written, _) = rendered("summary-src", Shape::default());
    let json = written.file("report.json").unwrap().to_path_buf();
    let loaded = report::load(&json).unwrap();
    assert!(matches!(loaded, report::Loaded::Summary(_)));
    let dir = test_dir("summary");
    let out = report::write_loaded(&loaded, &dir).unwrap();
    let names: Vec<String> = out
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["report.json", "move_latency.svg", "index.html"]);
    let html = std::fs::read_to_string(out.file("index.html").unwrap()).unwrap();
    assert!(html.contains("rebuilt from report.json alone"));
    // A report directory loads as its full stream.
    assert!(matches!(
        report::load(&written.dir).unwrap(),
        report::Loaded::Full(_)
    ));
}

#[test]
fn sim_report_without_timed_moves_still_draws() {
    let shape = Shape {
        movers: &[MoverKind::Model],
        emulated: false,
        ..Shape::default()
    };
    let mut collector = collector(shape);
    collector.platform = None;
    for run in &mut collector.runs {
        let r = run.result.as_mut().unwrap();
        r.moves = 0;
        r.latency_by_size.clear();
        r.timer = records::Timer {
            name: "model (virtual ns)".into(),
            hz: 1_000_000_000,
        };
    }
    let written = report::write_dir(&collector, &test_dir("sim")).unwrap();
    assert_eq!(written.report.source, Source::Sim);
    let table = report::table::render(&written.report);
    assert!(table.contains("simulator on the host"), "{table}");
    assert!(
        table.contains("timer: model (virtual ns) at 1 GHz"),
        "{table}"
    );
    assert!(
        !table.contains("board:"),
        "a simulation has no board: {table}"
    );
    assert_eq!(
        row(&table, "compact", "model")[column(&table, "lat p50")],
        "–"
    );
    assert!(
        written.notes.iter().any(|n| n.contains("no timed moves")),
        "{:?}",
        written.notes
    );
    let svg = std::fs::read_to_string(written.file("move_latency.svg").unwrap()).unwrap();
    roxmltree::Document::parse(&svg).unwrap();
    assert!(svg.contains("no timed moves in this report"));
}

#[test]
fn unfinished_runs_are_noted_not_tabled() {
    let mut recs = records(Shape::default());
    // Cut the stream inside the last run, as a crashed replay would.
    let last_start = recs
        .iter()
        .rposition(|r| matches!(r, records::Record::RunStart { .. }))
        .unwrap();
    recs.truncate(last_start + 30);
    let collector = report::stream::collect(recs).unwrap();
    let written = report::write_dir(&collector, &test_dir("unfinished")).unwrap();
    assert_eq!(written.report.runs.len(), 7);
    assert!(
        written
            .notes
            .iter()
            .any(|n| n.contains("run 7 (defrag/cpu) did not finish")),
        "{:?}",
        written.notes
    );
}

#[test]
fn damaged_streams_are_refused_with_a_reason() {
    let mut bytes = Vec::new();
    report::stream::write(&mut bytes, &records(Shape::default())).unwrap();
    let cut = &bytes[..bytes.len() - 10]; // inside the last RunEnd
    let err = report::stream::read(cut).unwrap_err();
    assert!(
        format!("{err:#}").contains("truncated inside record"),
        "{err:#}"
    );
    let err = report::stream::read(&b"{\"source\":1}"[..]).unwrap_err();
    assert!(
        format!("{err:#}").contains("not a record stream"),
        "{err:#}"
    );
    let mut wrong = bytes.clone();
    wrong[8] = 9;
    let err = report::stream::read(wrong.as_slice()).unwrap_err();
    assert!(format!("{err:#}").contains("format version 9"), "{err:#}");
}

#[test]
fn compare_matches_runs_and_warns_on_sources() {
    let qemu = collector(Shape::default()).report().unwrap();
    let mut hw = collector(Shape {
        emulated: false,
        ..Shape::default()
    })
    .report()
    .unwrap();
    assert_eq!(hw.source, Source::Hardware);
    hw.runs.retain(|r| r.mover == MoverKind::Dma);
    for r in &mut hw.runs {
        r.move_latency_ns.p50 /= 4;
    }
    let text = report::compare::render(&qemu, &hw, "qemu.json", "pi.json");
    assert!(
        text.lines()
            .any(|l| l.starts_with("WARNING: sources differ (A: qemu, B: hardware)")),
        "{text}"
    );
    assert!(
        text.contains("emulated timings and silicon timings are not comparable"),
        "{text}"
    );
    let block = text
        .split("\nfirst-fit / dma\n")
        .nth(1)
        .expect("first-fit/dma block");
    let p50 = block
        .lines()
        .find(|l| l.trim_start().starts_with("lat p50"))
        .unwrap();
    let cells: Vec<&str> = p50
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        ["lat p50", "48.0 µs", "12.0 µs", "-36.0 µs", "0.250"]
    );
    assert!(
        text.contains("only in A: first-fit/cpu, compact/cpu, drm-mm/cpu, defrag/cpu"),
        "{text}"
    );
    assert!(
        !text.contains("first-fit / cpu"),
        "unmatched runs have no block"
    );

    let same = report::compare::render(&qemu, &qemu, "a", "b");
    assert!(!same.contains("WARNING"), "{same}");
    let block = same.split("\ndefrag / cpu\n").nth(1).unwrap();
    assert!(block.lines().any(
        |l| l.split_whitespace().collect::<Vec<_>>() == ["page-outs", "12", "12", "0", "1.000"]
    ));
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn plain_progress_prints_quarters_and_results() {
    let out = Shared::default();
    let mut progress = report::live::Progress::plain(Box::new(out.clone()));
    let recs = records(Shape::default());
    let cut = recs
        .iter()
        .rposition(|r| matches!(r, records::Record::RunStart { .. }))
        .unwrap()
        + 3;
    for r in &recs[..cut] {
        progress.on_record(r);
    }
    progress.finish();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("platform: QEMU emulation"), "{text}");
    assert!(
        lines[1].starts_with("trace synthetic-kmscube: 2 000 events"),
        "{text}"
    );
    assert!(
        text.contains("run 0 first-fit/dma: started, 2 000 events, pool 16 MiB"),
        "{text}"
    );
    assert!(
        text.contains("run 0 first-fit/dma: 25% (500/2 000 events"),
        "{text}"
    );
    assert!(
        text.contains("run 0 first-fit/dma: 75% (1 500/2 000 events"),
        "{text}"
    );
    assert!(
        text.contains("run 0 first-fit/dma: done, 2 000 events, 78 moves"),
        "{text}"
    );
    assert!(
        text.contains("run 7 defrag/cpu: stopped at 0/2 000 events"),
        "{text}"
    );
    // Three quarter lines per finished run, no more: a CI log stays short.
    assert_eq!(lines.iter().filter(|l| l.contains("% (")).count(), 7 * 3);
}

/// The longest line of a rendered table, in characters.
fn widest(table: &str) -> usize {
    table.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

#[test]
fn default_table_fits_100_columns_with_the_columns_read_first() {
    let (mut written, _) = rendered("narrow", Shape::default());
    let table = report::table::render(&written.report);
    assert!(
        widest(&table) <= DEFAULT_WIDTH,
        "{} wide:\n{table}",
        widest(&table)
    );
    for header in [
        "policy",
        "mover",
        "rule1 fail",
        "page-outs",
        "moved",
        "peak ovfl",
        "mean frag",
        "lat p50",
        "lat p99",
        "corrupt",
    ] {
        column(&table, header);
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("Not shown: events, page-ins")),
        "{table}"
    );
    // --wide: every column, and nothing said to be hidden.
    let wide = report::table::render_with(&written.report, Layout::wide());
    for m in report::metrics::METRICS {
        column(&wide, m.header);
    }
    assert!(!wide.contains("Not shown"), "{wide}");
    assert!(widest(&wide) > DEFAULT_WIDTH);

    // A flagged run adds the flags column: the table still fits, keeping
    // Rule 1 failures and corrupted pages, and says what it left out.
    written.report.runs[0].conditions = Some(records::RunConditions {
        flags: vec![records::RunFlag::Throttled, records::RunFlag::ClockMismatch],
        ..Default::default()
    });
    let flagged = report::table::render(&written.report);
    assert!(widest(&flagged) <= DEFAULT_WIDTH, "{flagged}");
    for header in ["flags", "rule1 fail", "corrupt"] {
        column(&flagged, header);
    }
    assert!(flagged.contains("Not shown: "), "{flagged}");
}

#[test]
fn a_narrow_terminal_drops_the_least_important_columns_first() {
    let (written, _) = rendered("narrower", Shape::default());
    let full = report::table::render(&written.report);
    for width in [90, 72, 60, 40] {
        let layout = Layout {
            width,
            ..Layout::default()
        };
        let table = report::table::render_with(&written.report, layout);
        assert!(
            widest(&table) <= width,
            "{width}: {} wide:\n{table}",
            widest(&table)
        );
        let header = table.lines().find(|l| l.starts_with("policy")).unwrap();
        // What is kept is a prefix of the priority order.
        let kept: Vec<&str> = TERMINAL_COLUMNS
            .iter()
            .map(|k| {
                report::metrics::METRICS
                    .iter()
                    .find(|m| m.key == *k)
                    .unwrap()
                    .header
            })
            .map(|h| header.contains(h))
            .zip(TERMINAL_COLUMNS)
            .filter(|(kept, _)| *kept)
            .map(|(_, k)| *k)
            .collect();
        assert_eq!(kept, TERMINAL_COLUMNS[..kept.len()], "{width}: {header}");
        assert!(
            kept.len() < TERMINAL_COLUMNS.len(),
            "{width}: nothing dropped in\n{table}"
        );
        assert!(kept.contains(&"rule1_failures"), "{width}: {header}");
    }
    assert!(widest(&full) <= DEFAULT_WIDTH);
}
