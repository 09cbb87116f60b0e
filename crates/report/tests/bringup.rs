//! The bring-up table, and flagged runs in the run table, report.json and
//! the page.

mod common;

use common::*;
use records::bringup::{CoherencyProbe, CopyEngine, CopyRoute, CopyThroughput};
use records::{
    BringupItem, Calibration, ClockCheck, MoverKind, Policy, Record, RunConditions, RunFlag,
};

fn bringup_records(emulated: bool, stale: u64) -> Vec<Record> {
    let mut out = vec![
        Record::Hello {
            protocol: records::PROTOCOL_VERSION,
            firmware: "poolbed 0.1.0 (synthetic)".into(),
        },
        Record::Platform(platform(emulated)),
        Record::Bringup(BringupItem::Calibration(Calibration {
            counter_ticks: 1_920_000,
            counter_hz: 19_200_000,
            cycles: 120_000_000,
        })),
    ];
    for (cleaned, stale) in [(false, stale), (true, 0)] {
        out.push(Record::Bringup(BringupItem::Coherency(CoherencyProbe {
            cleaned,
            words: 16384,
            stale_words: stale,
            wrong_words: 0,
        })));
    }
    for engine in CopyEngine::ALL {
        for route in CopyRoute::ALL {
            for bytes in [4096u64, 8 << 20] {
                out.push(Record::Bringup(BringupItem::Copy(CopyThroughput {
                    engine,
                    routine: format!("{} routine", engine.label()),
                    route,
                    bytes,
                    best_ns: bytes * 2,
                    repeats: 3,
                    correct: !(engine == CopyEngine::DmaLite
                        && bytes == 4096
                        && route == CopyRoute::PoolToPool),
                })));
            }
        }
    }
    out.push(Record::Finished { exit_code: 0 });
    out
}

#[test]
fn the_bring_up_is_one_table_marked_qemu_or_silicon() {
    let collector = report::stream::collect(bringup_records(false, 12_000)).unwrap();
    let report = collector.bringup_report().expect("a bring-up stream");
    let text = report::bringup::render(&report);
    assert!(text.starts_with("Bring-up check (silicon)"), "{text}");
    assert!(text.contains("silicon: the stale case is seen"), "{text}");
    assert!(text.contains("ARM clock set"), "{text}");
    assert!(text.contains("0.00 % from the ARM clock set"), "{text}");
    // Two nanoseconds a byte is 500 MB/s; a wrong copy is called out, not timed.
    let row = text
        .lines()
        .find(|l| l.contains("8 MiB") && l.contains("heap -> pool"))
        .unwrap();
    assert_eq!(row.matches("500.0 MB/s").count(), 3, "{row}");
    let row = text
        .lines()
        .find(|l| l.contains("4 KiB") && l.contains("pool -> pool"))
        .unwrap();
    assert!(row.contains("WRONG DATA"), "{row}");

    let qemu = report::stream::collect(bringup_records(true, 0)).unwrap();
    let text = report::bringup::render(&qemu.bringup_report().unwrap());
    assert!(text.starts_with("Bring-up check (QEMU)"), "{text}");
    assert!(text.contains("QEMU: the stale case is not seen"), "{text}");
    assert!(text.contains("emulation timings"), "{text}");
}

#[test]
fn the_bring_up_directory_round_trips() {
    let collector = report::stream::collect(bringup_records(false, 9)).unwrap();
    let dir = test_dir("bringup");
    let files = report::bringup::write_dir(&collector, &dir)
        .unwrap()
        .unwrap();
    assert_eq!(files.len(), 3);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("bringup.json")).unwrap()).unwrap();
    assert_eq!(json["source"], "hardware");
    assert_eq!(json["bringup"]["copies"].as_array().unwrap().len(), 18);
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(page.contains("<h1>Bring-up check (silicon)</h1>"));
    assert!(page.contains("heap -&gt; pool"));
    let again = report::stream::load(&dir.join("records.bin")).unwrap();
    assert_eq!(again.bringup, collector.bringup);
    // A replay stream is no bring-up.
    assert!(
        report::bringup::write_dir(&common::collector(Shape::default()), &dir)
            .unwrap()
            .is_none()
    );
}

fn conditions(flags: Vec<RunFlag>) -> RunConditions {
    RunConditions {
        copy_routine: "CPU test loop".into(),
        output_ns: 123_000_000,
        output_bytes: 11_000,
        output_flushes: 10,
        cycle_timer_hz: Some(1_200_000_000),
        start: ClockCheck::default(),
        end: ClockCheck::default(),
        flags,
    }
}

#[test]
fn flagged_runs_are_marked_in_the_table_the_json_and_the_page() {
    let mut stream = records(Shape::default());
    for r in &mut stream {
        if let Record::RunEnd { result, .. } = r {
            let flags = if (result.policy, result.mover) == (Policy::Compact, MoverKind::Dma) {
                vec![RunFlag::Throttled]
            } else {
                vec![]
            };
            result.conditions = Some(conditions(flags));
        }
    }
    let collector = report::stream::collect(stream).unwrap();
    let dir = test_dir("flagged");
    let written = report::write_dir(&collector, &dir).unwrap();
    let table = report::table::render_with(&written.report, report::table::Layout::wide());
    let row = table
        .lines()
        .find(|l| l.starts_with("compact") && l.contains("dma"))
        .unwrap();
    assert!(row.contains("throttled"), "{table}");
    assert!(
        table.contains("flag throttled: the VideoCore reported"),
        "{table}"
    );
    assert!(table.contains("123 ms"), "the output column: {table}");
    assert!(
        table.contains("copy routine: dma: CPU test loop"),
        "{table}"
    );
    let first = table.lines().find(|l| l.starts_with("first-fit")).unwrap();
    assert!(!first.contains("throttled"));

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    let flagged: Vec<_> = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["conditions"]["flags"] == serde_json::json!(["throttled"]))
        .collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0]["policy"], "compact");

    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(page.contains("<td class=\"label flagged\">throttled</td>"));
    assert!(page.contains("flag throttled: the VideoCore"));
}

#[test]
fn an_unflagged_report_has_no_flags_column() {
    let (table, _) = {
        let c = common::collector(Shape::default());
        (report::table::render(&c.report().unwrap()), ())
    };
    assert!(!table
        .lines()
        .any(|l| l.starts_with("policy") && l.contains("flags")));
}
