//! The xtask binary run as a user runs it, for what only a process shows:
//! the exit code, what is printed (and how often), and what is left on disk.
//! Issue 14, items 2, 4, 7 and 8 (trace and `--out` parts). Nothing here
//! builds the firmware or boots QEMU: every refusal comes before either.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the xtask binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A refusal: exit code 1, the message in stderr once, and no panic.
fn refused(out: &Output, message: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(
        err.matches(message).count(),
        1,
        "{message:?} once in: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn sample_trace() -> String {
    format!("{}/../traces/vc4-sample.log", env!("CARGO_MANIFEST_DIR"))
}

/// Bytes that hold no `@@@` line (a fixed pseudo-random sequence).
fn random_bytes() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // No `@`, so the bytes can never hold a trace line.
            match x as u8 {
                b'@' => b'A',
                b => b,
            }
        })
        .collect()
}

/// Item 2: sizes summing past u64::MAX panic no verb; above what a 32-bit
/// VideoCore pool holds, a size is a line-numbered problem.
#[test]
fn sizes_past_u64_max_panic_no_verb_and_past_u32_max_are_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write(
        tmp.path(),
        "huge.log",
        b"[ 1.000000] @@@ create 11111111 18446744073709551615\n\
          [ 1.000001] @@@ create 22222222 4096\n\
          [ 1.000002] @@@ destroy 11111111\n\
          [ 1.000003] @@@ destroy 22222222\n\
          [ 1.000004] @@@ create 33333333 8192\n",
    );
    let log = log.to_str().unwrap();
    let strict = xtask(&["trace", "check", "--strict", log]);
    refused(
        &strict,
        "huge.log: line 1: malformed line: create of buffer 11111111 larger than 4294967295 bytes, more than a 32-bit VideoCore pool can hold",
    );
    for args in [
        vec!["trace", "check", log],
        vec!["trace", "stats", log],
        vec!["trace", "stats", "--json", log],
    ] {
        let out = xtask(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "2 problems: 1 size_too_large (first at line 1), 1 unknown_buffer (first at line 3)"
            ),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out_dir = tmp.path().join("report");
    let sim = xtask(&[
        "sim",
        "--trace",
        log,
        "--no-cache",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(sim.status.code(), Some(0), "{}", stderr(&sim));
    assert!(stderr(&sim).contains("1 size_too_large (first at line 1)"));
    let sweep = xtask(&[
        "sweep",
        "--trace",
        log,
        "--pool-sizes",
        "16KiB..32KiB",
        "--step",
        "16KiB",
        "--out",
        tmp.path().join("sweep").to_str().unwrap(),
    ]);
    assert_eq!(sweep.status.code(), Some(0), "{}", stderr(&sweep));
}

/// Item 4: a trace with no events is an error in every verb, said the same way.
#[test]
fn a_trace_without_events_is_an_error_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let noise = write(tmp.path(), "noise.log", &random_bytes());
    let noise = noise.to_str().unwrap();
    let message = format!(
        "error: {noise}: no `@@@` events, so nothing to replay (not a vc4 trace, or every trace line in it was a problem)"
    );
    let bin = tmp.path().join("t.bin");
    let out = tmp.path().join("report");
    let out = out.to_str().unwrap();
    for args in [
        vec!["trace", "check", noise],
        vec!["trace", "check", "--strict", noise],
        vec!["trace", "stats", noise],
        vec!["trace", "compile", noise, "-o", bin.to_str().unwrap()],
        vec!["sim", "--trace", noise, "--no-cache", "--out", out],
        vec!["sweep", "--trace", noise, "--out", out],
        // Refused before the firmware is built, so this is quick.
        vec!["build", "--trace", noise],
        vec!["run", "--trace", noise, "--out", out],
    ] {
        let result = xtask(&args);
        refused(&result, &message);
        assert!(!stdout(&result).contains("ok ("), "{args:?}");
    }
    assert!(!bin.exists(), "compile wrote a trace of no events");
    assert!(
        !Path::new(out).exists(),
        "a report of no events was written"
    );
}

/// Item 7: a reused `--out` holds only the last report, so `report DIR`
/// renders that one and nothing of the earlier run.
#[test]
fn a_reused_out_directory_holds_only_the_last_report() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = sample_trace();
    let first_fit = tmp.path().join("first-fit");
    let shared = tmp.path().join("shared");
    let sim = |policy: &str, out: &Path| {
        let result = xtask(&[
            "sim",
            "--trace",
            &trace,
            "--no-cache",
            "--policy",
            policy,
            "--pool-size",
            "64MiB",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(result.status.code(), Some(0), "{}", stderr(&result));
    };
    sim("first-fit", &first_fit);
    sim("all", &shared);
    assert!(shared.join("records.bin").is_file());
    // A summary alone writes no records.bin and no timeline: before, the
    // four-run records.bin of the earlier sim stayed, and won.
    let summary = xtask(&[
        "report",
        first_fit.join("report.json").to_str().unwrap(),
        "--out",
        shared.to_str().unwrap(),
    ]);
    assert_eq!(summary.status.code(), Some(0), "{}", stderr(&summary));
    for stale in ["records.bin", "timeline.csv"] {
        assert!(
            !shared.join(stale).exists(),
            "{stale} of the earlier run survived"
        );
    }
    let again = tmp.path().join("again");
    let rendered = xtask(&[
        "report",
        shared.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(rendered.status.code(), Some(0), "{}", stderr(&rendered));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(again.join("report.json")).unwrap()).unwrap();
    let policies: Vec<&str> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["policy"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        policies.iter().all(|p| *p == "first-fit") && !policies.is_empty(),
        "{policies:?}"
    );
    // Nothing left beside the directories.
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["again", "first-fit", "shared"]);
}

/// Item 8: a third word other than BIN or FBCON is a line-numbered problem.
#[test]
fn an_unknown_create_flag_is_a_line_numbered_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write(
        tmp.path(),
        "flag.log",
        b"[ 1.000000] @@@ create 11111111 4096 BIN\n\
          [ 1.000001] @@@ create 22222222 4096 SCANOUT\n\
          [ 1.000002] @@@ create 33333333 4096 FBCON\n",
    );
    let log = log.to_str().unwrap();
    refused(
        &xtask(&["trace", "check", "--strict", log]),
        "flag.log: line 2: malformed line: create of buffer 22222222 flagged with something other than BIN or FBCON",
    );
    let lenient = xtask(&["trace", "stats", "--json", log]);
    assert_eq!(lenient.status.code(), Some(0), "{}", stderr(&lenient));
    assert!(stderr(&lenient).contains("1 problem: 1 unknown_flag (first at line 2)"));
    let stats: serde_json::Value = serde_json::from_slice(&lenient.stdout).unwrap();
    assert_eq!(stats["distinct_bos"], 2);
    assert_eq!(stats["unmoveable_bos"], 2);
}

/// Item 8: `sdcard --mode nosuch` refuses before writing anything.
#[test]
fn an_unknown_sdcard_mode_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("card");
    let result = xtask(&["sdcard", "--mode", "nosuch", "--out", out.to_str().unwrap()]);
    refused(&result, "error: unknown mode `nosuch`; modes: replay,");
    assert!(!out.exists());
}

/// Item 8: `--out` is checked before any replay (run, sim, sweep).
#[test]
fn out_is_checked_before_any_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "a-file", b"not a directory");
    let message = format!(
        "error: --out {}: is a file, not a directory",
        file.display()
    );
    let trace = sample_trace();
    let file = file.to_str().unwrap();
    for args in [
        vec!["sim", "--trace", &trace, "--no-cache", "--out", file],
        vec!["sweep", "--trace", &trace, "--out", file],
        vec!["run", "--trace", &trace, "--out", file],
    ] {
        let result = xtask(&args);
        refused(&result, &message);
        // Nothing replayed: no table, no progress.
        assert!(
            !stdout(&result).contains("first-fit"),
            "{args:?}: {}",
            stdout(&result)
        );
    }
    // A directory of other things is refused too, and left as it was.
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    write(&home, "notes.txt", b"mine");
    let result = xtask(&[
        "sim",
        "--trace",
        &trace,
        "--no-cache",
        "--out",
        home.to_str().unwrap(),
    ]);
    refused(&result, "holds 1 entries that no report writes (notes.txt)");
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 1);
}

/// Item 8: an error is printed once, not once by the verb and again by main
/// (or twice through an error's source chain).
#[test]
fn errors_are_printed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.log");
    let missing = missing.to_str().unwrap();
    let unknown = write(tmp.path(), "unknown.log", b"[ 1.000000] @@@ use 11111111\n");
    let unknown = unknown.to_str().unwrap();
    let out = tmp.path().join("o");
    let out = out.to_str().unwrap();
    for args in [
        vec!["trace", "check", missing],
        vec!["trace", "stats", missing],
        vec!["trace", "compile", missing, "-o", out],
        vec!["sim", "--trace", missing, "--out", out],
        vec!["sweep", "--trace", missing, "--out", out],
    ] {
        let result = xtask(&args);
        refused(&result, "No such file or directory");
        assert_eq!(stderr(&result).matches("error:").count(), 1, "{args:?}");
    }
    for args in [
        vec!["trace", "compile", "--strict", unknown, "-o", out],
        vec!["sim", "--strict", "--trace", unknown, "--out", out],
    ] {
        refused(
            &xtask(&args),
            "unknown.log: line 1: event for buffer 11111111 that was never created",
        );
    }
}
