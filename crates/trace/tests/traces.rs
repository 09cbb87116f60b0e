//! Every bundled trace (and, when present, every trace in ../shared/traces)
//! parses, matches its published statistics and survives the binary round trip.

use std::path::{Path, PathBuf};
use trace::binary::{self, BinaryTrace};
use trace::{Mode, ProblemKind, Stats};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The figures a `*.stats.json` publishes that the parser computes too.
#[derive(Debug, PartialEq)]
struct Expected {
    events: u64,
    per_kind: [(&'static str, u64); 6],
    distinct_bos: u64,
    max_live_bytes: u64,
    total_created_bytes: u64,
    size_min: u64,
    size_median: u64,
    size_max: u64,
}

fn expected_from_json(path: &Path) -> Expected {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let field = |name: &str| {
        json[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: no {name}", path.display()))
    };
    let kinds = &json["events_per_kind"];
    let kind = |name| kinds.get(name).map_or(0, |v| v.as_u64().unwrap());
    Expected {
        events: field("events"),
        per_kind: [
            "create",
            "destroy",
            "use",
            "add_usecnt",
            "remove_usecnt",
            "madv",
        ]
        .map(|k| (k, kind(k))),
        distinct_bos: field("distinct_bos"),
        max_live_bytes: field("max_live_bytes"),
        total_created_bytes: field("total_created_bytes"),
        size_min: field("size_min"),
        size_median: field("size_median"),
        size_max: field("size_max"),
    }
}

fn actual(s: &Stats) -> Expected {
    Expected {
        events: s.events,
        per_kind: s.per_kind.by_op(),
        distinct_bos: s.buffers,
        max_live_bytes: s.peak_live_bytes,
        total_created_bytes: s.total_created_bytes,
        size_min: s.size_min,
        size_median: s.size_median,
        size_max: s.size_max,
    }
}

/// The sample has no stats.json; these are its README row (11 events, 6
/// buffers, peak 144 MiB, 176 MiB created), worked out per kind by hand.
fn sample_expected() -> Expected {
    const MIB: u64 = 1 << 20;
    Expected {
        events: 11,
        per_kind: [
            ("create", 6),
            ("destroy", 1),
            ("use", 1),
            ("add_usecnt", 2),
            ("remove_usecnt", 1),
            ("madv", 0),
        ],
        distinct_bos: 6,
        max_live_bytes: 144 * MIB,
        total_created_bytes: 176 * MIB,
        size_min: 16 * MIB,
        size_median: 32 * MIB,
        size_max: 32 * MIB,
    }
}

fn check_trace(log: &Path) {
    let name = log.file_name().unwrap().to_string_lossy().into_owned();
    let stem = name.trim_end_matches(".gz").trim_end_matches(".log");
    let json = log.with_file_name(format!("{stem}.stats.json"));
    let expected = if json.exists() {
        expected_from_json(&json)
    } else if name == "vc4-sample.log" {
        sample_expected()
    } else {
        panic!(
            "{}: no {} to check it against",
            log.display(),
            json.display()
        );
    };

    let file = trace::read_file(log, Mode::Lenient).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(actual(&file.stats), expected, "{name}");
    assert_eq!(file.events.len() as u64, expected.events, "{name}");

    // README: kmscube-rgba destroys one pinned buffer; nothing else is noisy.
    let warnings: Vec<_> = file.warnings.counts().collect();
    if stem == "kmscube-rgba" {
        assert_eq!(warnings, [(ProblemKind::DestroyPinned, 1)], "{name}");
    } else {
        assert_eq!(warnings, [], "{name}: {}", file.warnings);
    }

    let bytes = binary::encode(file.events.iter().copied(), stem).unwrap();
    let decoded = BinaryTrace::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(decoded.name(), stem);
    assert_eq!(decoded.event_count(), expected.events);
    assert_eq!(decoded.buffer_count() as u64, expected.distinct_bos);
    assert_eq!(decoded.peak_live_bytes(), expected.max_live_bytes);
    assert_eq!(decoded.total_created_bytes(), expected.total_created_bytes);
    assert!(
        decoded.events().eq(file.events.iter().copied()),
        "{name}: binary round trip differs"
    );
    println!(
        "{name}: {} events, {} bytes binary ({:.2} bytes/event)",
        expected.events,
        bytes.len(),
        decoded.payload_len() as f64 / expected.events.max(1) as f64
    );
}

fn traces_in(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".log") || n.ends_with(".log.gz")
        })
        .collect();
    logs.sort();
    logs
}

#[test]
fn bundled_traces_match_their_stats() {
    let logs = traces_in(&repo_root().join("traces"));
    assert!(
        logs.len() >= 5,
        "expected the five bundled traces, found {logs:?}"
    );
    for log in logs {
        check_trace(&log);
    }
}

#[test]
fn shared_traces_match_their_stats() {
    let dir = repo_root().join("../shared/traces");
    if !dir.is_dir() {
        println!("skipped: {} does not exist", dir.display());
        return;
    }
    // The bundled traces are copies of these: only check files that differ.
    for log in traces_in(&dir) {
        let bundled = repo_root().join("traces").join(log.file_name().unwrap());
        if std::fs::read(&bundled).ok() == std::fs::read(&log).ok() {
            println!("{}: same as the bundled copy, checked there", log.display());
            continue;
        }
        check_trace(&log);
    }
}

#[test]
fn strict_mode_stops_at_the_pinned_destroy_in_kmscube_rgba() {
    let log = repo_root().join("traces/kmscube-rgba.log.gz");
    let lenient = trace::stats_file(&log, Mode::Lenient).unwrap().1;
    let warned_line = lenient.first()[0].line;
    let err = trace::read_file(&log, Mode::Strict).unwrap_err();
    match err {
        trace::Error::Trace(p) => {
            assert_eq!(p.kind, ProblemKind::DestroyPinned);
            assert_eq!(p.line, warned_line);
            assert!(p.text.contains("@@@ destroy"), "{p}");
        }
        other => panic!("expected a trace problem, got {other}"),
    }
}

#[test]
fn strict_mode_accepts_clean_small_traces() {
    for name in ["vc4-sample.log", "kmscube-msaa4.log.gz"] {
        let file = trace::read_file(repo_root().join("traces").join(name), Mode::Strict).unwrap();
        assert!(file.warnings.is_empty());
    }
}

#[test]
fn compile_file_streams_to_the_same_binary_as_encode() {
    let log = repo_root().join("traces/kmscube-msaa4.log.gz");
    let (bytes, warnings) = trace::compile_file(&log, Mode::Lenient, None).unwrap();
    assert!(warnings.is_empty());
    let file = trace::read_file(&log, Mode::Lenient).unwrap();
    assert_eq!(bytes, binary::encode(file.events, "kmscube-msaa4").unwrap());
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn gzip(text: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_is_recognised_by_content_and_multi_member_streams_are_read_whole() {
    let first = b"[ 1.000000] @@@ create 11111111 4096\n";
    let second = b"[ 1.000001] @@@ destroy 11111111\n";
    let mut two_members = gzip(first);
    two_members.extend(gzip(second));
    // Named .log but gzip inside: content decides.
    let path = temp_path("two-members.log");
    std::fs::write(&path, &two_members).unwrap();
    let file = trace::read_file(&path, Mode::Strict).unwrap();
    assert_eq!(file.events.len(), 2);

    let fake = temp_path("plain.log.gz");
    std::fs::write(&fake, first).unwrap();
    let err = trace::read_file(&fake, Mode::Lenient)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("plain.log.gz") && err.contains("not gzip"),
        "{err}"
    );

    let corrupt = temp_path("corrupt.log.gz");
    let mut bytes = gzip(first);
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&corrupt, &bytes).unwrap();
    let err = trace::read_file(&corrupt, Mode::Lenient).unwrap_err();
    assert!(matches!(err, trace::Error::Io { .. }), "{err}");

    let missing = trace::read_file(temp_path("missing.log"), Mode::Lenient)
        .unwrap_err()
        .to_string();
    assert!(
        missing.starts_with("cannot read ") && missing.contains("missing.log"),
        "{missing}"
    );
}

#[test]
fn default_names_drop_the_extensions() {
    assert_eq!(
        trace::default_name(Path::new("traces/kmscube-rgba.log.gz")),
        "kmscube-rgba"
    );
    assert_eq!(trace::default_name(Path::new("a.log")), "a");
    let long = format!("{}.log", "é".repeat(40));
    let name = trace::default_name(Path::new(&long));
    assert_eq!(name, "é".repeat(32));
}
