//! Issue 14's wire items, through the real `xtask` binary on a real capture:
//! `tests/data/qemu-vc4-sample.uart` is the UART output of the firmware
//! under QEMU (`cargo xtask build --trace traces/vc4-sample.log --pool-size
//! 96MiB`, then QEMU with `-serial file:`), `qemu-vc4-sample.defmt.json` the
//! defmt table of that ELF. Each test asserts the message and the exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn capture() -> Vec<u8> {
    std::fs::read(data("qemu-vc4-sample.uart")).unwrap()
}

fn xtask(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the xtask binary runs")
}

fn listen(source: &Path, out: &Path, extra: &[&str]) -> Output {
    let table = data("qemu-vc4-sample.defmt.json");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "listen".as_ref(),
        source.as_os_str(),
        "--elf".as_ref(),
        table.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    xtask(&args)
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn report_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_intact_capture_is_one_complete_report_of_eight_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = listen(&data("qemu-vc4-sample.uart"), &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let json = report_json(&out);
    assert_eq!(json["runs"].as_array().unwrap().len(), 8);
    assert_eq!(json["incomplete"], false);
    assert_eq!(json["lost_frames"], 0);
}

/// Item 1: a damaged record frame is lost, counted and reported; the report
/// says it is incomplete and the verb fails.
#[test]
fn a_damaged_frame_is_counted_lost_and_the_report_is_incomplete() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = capture();
    // A byte in the middle of the capture, inside some record frame: flip
    // every bit but keep it non-zero (a zero would split the frame instead).
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == 0xff {
        0xfe
    } else {
        !bytes[at] | 1
    };
    let source = tmp.path().join("damaged.uart");
    std::fs::write(&source, &bytes).unwrap();
    let out = tmp.path().join("out");
    let o = listen(&source, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let all = text(&o);
    assert!(all.contains("frame(s) on the line"), "{all}");
    assert!(
        all.contains("INCOMPLETE:") && all.contains("were lost"),
        "{all}"
    );
    let json = report_json(&out);
    assert_eq!(json["incomplete"], true);
    assert!(json["lost_frames"].as_u64().unwrap() >= 1, "{json}");
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains("frame(s) of the stream were lost"));
}

/// Item 3: two captures one after the other are two reports, not one of 16 runs.
#[test]
fn two_captures_concatenated_give_two_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = capture();
    bytes.extend_from_slice(&capture());
    let source = tmp.path().join("twice.uart");
    std::fs::write(&source, &bytes).unwrap();
    let out = tmp.path().join("out");
    let o = listen(&source, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("host: boot 1 of 2") && stdout.contains("host: boot 2 of 2"),
        "{}",
        text(&o)
    );
    for dir in [out.join("boot-1"), out.clone()] {
        let json = report_json(&dir);
        assert_eq!(
            json["runs"].as_array().unwrap().len(),
            8,
            "{}",
            dir.display()
        );
        assert_eq!(json["incomplete"], false);
    }

    // The same for saved record streams: `report` on two records.bin files
    // one after the other writes a report per boot.
    let mut streams = std::fs::read(out.join("records.bin")).unwrap();
    streams.extend_from_slice(&std::fs::read(out.join("boot-1/records.bin")).unwrap());
    let both = tmp.path().join("both.bin");
    std::fs::write(&both, &streams).unwrap();
    let again = tmp.path().join("again");
    let o = xtask(&[
        "report".as_ref(),
        both.as_os_str(),
        "--out".as_ref(),
        again.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("host: boot 2 of 2"));
    assert_eq!(
        report_json(&again.join("boot-1"))["runs"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(report_json(&again)["runs"].as_array().unwrap().len(), 8);
}

/// Item 3: a restart in the middle: the cut boot is kept, marked incomplete,
/// the new boot is whole, and the verb fails because one boot was cut.
#[test]
fn a_restart_mid_stream_cuts_the_first_boot() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = capture();
    let mut bytes = whole[..whole.len() * 2 / 3].to_vec();
    // The cut lands inside a frame: end it, as the line's next 0x00 would.
    bytes.push(0);
    bytes.extend_from_slice(&whole);
    let source = tmp.path().join("restart.uart");
    std::fs::write(&source, &bytes).unwrap();
    let out = tmp.path().join("out");
    let o = listen(&source, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("boot 1 ended before the firmware finished"),
        "{}",
        text(&o)
    );
    let cut = report_json(&out.join("boot-1"));
    assert_eq!(cut["incomplete"], true);
    assert!(cut["runs"].as_array().unwrap().len() < 8);
    let json = report_json(&out);
    assert_eq!(json["runs"].as_array().unwrap().len(), 8);
    assert_eq!(json["incomplete"], false);
}

/// Item 1: an old record stream is refused, naming both versions.
#[test]
fn a_stream_of_the_old_protocol_is_refused_naming_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    // records.bin: magic, format 1, one record: Hello { protocol: 4, "old" }
    // in postcard (variant 0, varint 4, a 3-byte string).
    let mut bytes = b"POOLRECS\x01\x00".to_vec();
    let hello = [0u8, 4, 3, b'o', b'l', b'd'];
    bytes.extend_from_slice(&(hello.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&hello);
    let path = tmp.path().join("old.bin");
    std::fs::write(&path, &bytes).unwrap();
    let out = tmp.path().join("out");
    let o = xtask(&[
        "report".as_ref(),
        path.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("record protocol 4 is not this host's 6"),
        "{}",
        text(&o)
    );
}

/// Item 8: `--baud 0` and absurd rates are refused before anything is opened.
#[test]
fn absurd_baud_rates_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for baud in ["0", "12", "99999999"] {
        let o = listen(
            &data("qemu-vc4-sample.uart"),
            &tmp.path().join("out"),
            &["--baud", baud],
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(&format!(
                "{baud} baud is not a rate a Pi 3's UART can run at"
            )),
            "{stderr}"
        );
    }
    assert!(!tmp.path().join("out").exists());
}

/// Item 8: a FIFO that no writer opens gives up after --silence.
#[test]
fn a_fifo_without_a_writer_honours_silence() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("line");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let o = listen(&fifo, &tmp.path().join("out"), &["--silence", "1"]);
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("was silent for 1 s (no writer opened it)"),
        "{}",
        text(&o)
    );
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
}

/// Item 8: a FIFO's writer that writes the capture and closes gives its report.
#[test]
fn a_fifo_with_a_writer_is_read_to_its_end() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("line");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(writer_path, capture()).unwrap();
    });
    let out = tmp.path().join("out");
    let o = listen(&fifo, &out, &["--silence", "10"]);
    writer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report_json(&out)["runs"].as_array().unwrap().len(), 8);
}
