//! The recorder under real `LD_PRELOAD`, in front of the fake vc4 device:
//! test programs make real `open`, `ioctl`, `mmap` and `read` calls, and the
//! raw files the recorder writes are read back and converted.

use capture::model::{self, Options};
use capture::raw::{self, Body, RawFile};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The two preload libraries and the test program, built once per test run.
struct Built {
    recorder: PathBuf,
    fake: PathBuf,
    client: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .current_dir(workspace())
            .args([
                "build",
                "--package",
                "poolbed-recorder",
                "--package",
                "fake-vc4",
                "--package",
                "recorder-testprog",
            ])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the preload libraries failed");
        let dir = workspace().join("target/debug");
        Built {
            recorder: dir.join("libpoolbed_recorder.so"),
            fake: dir.join("libfake_vc4.so"),
            client: dir.join("vc4-client"),
        }
    })
}

/// A fresh directory for one test's raw files.
fn scratch(name: &str) -> PathBuf {
    let dir = workspace().join("target/recorder-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `vc4-client ARGS` with the fake device, and the recorder in front of
/// it when `record` is set.
fn client(dir: &Path, record: bool, args: &[&str], env: &[(&str, &str)]) -> Output {
    let b = built();
    let preload = if record {
        format!("{} {}", b.recorder.display(), b.fake.display())
    } else {
        b.fake.display().to_string()
    };
    let mut cmd = Command::new(&b.client);
    cmd.args(args)
        .env("LD_PRELOAD", preload)
        .env("POOLBED_RECORD_DIR", dir)
        .env("FAKE_VC4_JOB_US", "3000");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running vc4-client");
    assert!(
        out.status.success(),
        "vc4-client {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The raw files in `dir`.
fn raws(dir: &Path) -> Vec<RawFile> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "vc4raw"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            raw::parse(&std::fs::read(p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect()
}

fn only_raw(dir: &Path) -> RawFile {
    let mut files = raws(dir);
    assert_eq!(files.len(), 1, "one process, one raw file");
    files.remove(0)
}

/// `name=value` from the first printed line starting with `op`.
fn printed(text: &str, op: &str, name: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{op} ")))
        .unwrap_or_else(|| panic!("no `{op}` line in\n{text}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in `{line}`"))
        .to_string()
}

fn hex(text: &str) -> u64 {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn every_intercepted_call_is_recorded_with_its_fields() {
    let dir = scratch("basic");
    let out = client(&dir, true, &["basic"], &[]);
    let text = stdout(&out);
    let file = only_raw(&dir);
    assert_eq!(file.header.comm, "vc4-client");
    assert_eq!(file.header.pid, file.header.pid.max(1));
    assert_ne!(file.header.flags & raw::FLAG_TOUCH, 0);
    let fd: i32 = printed(&text, "close", "fd").parse().unwrap();
    let addr = hex(&printed(&text, "mmap", "addr"));
    let offset: u64 = printed(&text, "mmap_bo", "offset").parse().unwrap();
    let names: Vec<&str> = file.records.iter().map(|r| r.body.name()).collect();
    assert_eq!(
        names,
        [
            "open",
            "create_bo",
            "create_bo",
            "create_shader_bo",
            "mmap_bo",
            "mmap",
            "submit_cl",
            "touch",
            "madvise",
            "madvise",
            "wait_seqno",
            "wait_bo",
            "gem_close",
            "munmap",
            "gem_close",
            "gem_close",
            "close",
            "exit",
        ]
    );
    let r = &file.records;
    assert_eq!(r[0].result, fd);
    assert_eq!(
        r[0].body,
        Body::Open {
            flags: libc::O_RDWR | libc::O_CLOEXEC,
            path: b"/dev/dri/card0".to_vec()
        }
    );
    assert_eq!(
        r[1].body,
        Body::CreateBo {
            size: 5000,
            flags: 0,
            handle: 1
        }
    );
    assert_eq!(
        r[2].body,
        Body::CreateBo {
            size: 4096,
            flags: 0,
            handle: 2
        }
    );
    assert_eq!(
        r[3].body,
        Body::CreateShaderBo {
            size: 64,
            flags: 0,
            handle: 3
        }
    );
    assert_eq!(r[4].body, Body::MmapBo { handle: 1, offset });
    assert_eq!(
        r[5].body,
        Body::Mmap {
            addr,
            len: 8192,
            offset,
            prot: libc::PROT_READ | libc::PROT_WRITE,
            flags: libc::MAP_SHARED,
            handle: 1
        }
    );
    let Body::SubmitCl(job) = &r[6].body else {
        panic!()
    };
    assert_eq!(
        (
            job.seqno,
            job.handles.as_slice(),
            job.bin_cl_size,
            job.surfaces[1].hindex
        ),
        (1, &[1, 2][..], 64, 0)
    );
    // The first write after the job is the touch; the second is not recorded.
    assert_eq!(
        r[7].body,
        Body::Touch {
            handle: 1,
            map_addr: addr,
            fault_addr: addr
        }
    );
    assert_eq!(
        r[8].body,
        Body::Madvise {
            handle: 2,
            madv: 1,
            retained: 1
        }
    );
    assert_eq!(
        r[9].body,
        Body::Madvise {
            handle: 2,
            madv: 0,
            retained: 1
        }
    );
    assert!(
        matches!(r[10].body, Body::WaitSeqno { seqno: 1, timeout_ns: u64::MAX, start_ns } if start_ns <= r[10].time_ns)
    );
    assert!(matches!(
        r[11].body,
        Body::WaitBo {
            handle: 1,
            timeout_ns: 0,
            ..
        }
    ));
    assert_eq!(r[12].body, Body::GemClose { handle: 2 });
    assert_eq!(r[13].body, Body::Munmap { addr, len: 8192 });
    assert_eq!(r[16].fd, fd);
    assert!(r.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
    assert!(r.iter().all(|r| r.ok()));
    // The program's data went through the protection unharmed.
    assert!(text.contains("readback 3 0"), "{text}");
    // Converted: measured creates, the touch as a use, strict-clean.
    let conv = model::convert(&[file], Options::default());
    assert!(conv.warnings.is_empty(), "{:?}", conv.warnings);
    let by = conv.counts_by_source();
    assert_eq!(by["create:measured"], 3);
    assert_eq!(by["use:cpu_touch"], 1);
    assert_eq!(by["use:mmap"], 1);
    assert_eq!(by["madv:measured"], 2);
    strict_events(&conv);
}

/// Lines of `vc4-client` output with addresses (which differ run to run) dropped.
fn calls(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .filter(|w| !w.starts_with("addr=") && !w.starts_with("tv="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn results_and_errors_pass_through_unchanged_and_failures_are_recorded_as_failed() {
    let dir = scratch("errors");
    let with = stdout(&client(&dir, true, &["errors"], &[]));
    let without = stdout(&client(&dir, false, &["errors"], &[]));
    assert_eq!(calls(&with), calls(&without));
    assert!(with.contains("gem_close -1 22 handle=999"), "{with}");
    assert!(
        with.contains("wait_seqno -1 62 seqno=1 timeout=0"),
        "{with}"
    );
    let file = only_raw(&dir);
    let failed: Vec<(&str, i32)> = file
        .records
        .iter()
        .filter(|r| !r.ok())
        .map(|r| (r.body.name(), r.result))
        .collect();
    assert_eq!(
        failed,
        [
            ("gem_close", -22),
            ("wait_bo", -22),
            ("madvise", -libc::ENOENT),
            ("create_bo", -22),
            ("submit_cl", -libc::ENOENT),
            ("wait_seqno", -libc::ETIME)
        ]
    );
    // An ioctl the device fails: the program sees EINVAL, the record says so.
    let dir = scratch("fail-create");
    let out = stdout(&client(
        &dir,
        true,
        &["prime"],
        &[("FAKE_VC4_FAIL_IOCTL", "43")],
    ));
    assert!(out.contains("create_bo -1 22"), "{out}");
    let file = only_raw(&dir);
    let create = file
        .records
        .iter()
        .find(|r| r.body.name() == "create_bo")
        .unwrap();
    assert_eq!(create.result, -libc::EINVAL);
}

#[test]
fn a_touch_after_a_job_is_caught_and_the_programs_own_sigsegv_handler_still_runs() {
    for scenario in ["sigsegv", "sigsegv-signal"] {
        let dir = scratch(scenario);
        let text = stdout(&client(&dir, true, &[scenario], &[]));
        assert!(
            text.contains("after_bo_touch 0 0"),
            "{scenario}: the program saw the recorder's fault:\n{text}"
        );
        assert!(
            text.contains("after_own_fault 1 0"),
            "{scenario}: the program's handler did not run:\n{text}"
        );
        if scenario == "sigsegv" {
            assert!(
                text.contains("sigaction_query 1 0"),
                "sigaction does not report the program's handler:\n{text}"
            );
        }
        let file = only_raw(&dir);
        let touches = file
            .records
            .iter()
            .filter(|r| matches!(r.body, Body::Touch { .. }))
            .count();
        assert_eq!(touches, 1, "{scenario}");
        // Without the recorder the program behaves the same.
        let plain = stdout(&client(&dir, false, &[scenario], &[]));
        assert_eq!(calls(&text), calls(&plain));
    }
}

#[test]
fn prime_and_kms_calls_are_recorded_and_modelled() {
    let dir = scratch("prime");
    let text = stdout(&client(&dir, true, &["prime"], &[]));
    let dmabuf: i32 = printed(&text, "prime_export", "fd").parse().unwrap();
    let file = only_raw(&dir);
    let export = file.records.iter().find_map(|r| match r.body {
        Body::PrimeExport {
            handle: 1,
            dmabuf_fd,
            inode,
            ..
        } => Some((dmabuf_fd, inode)),
        _ => None,
    });
    let (fd, inode) = export.expect("no export record");
    assert_eq!(fd, dmabuf);
    assert_ne!(inode, 0);
    assert!(file.records.iter().any(|r| r.body
        == Body::PrimeImport {
            dmabuf_fd: dmabuf,
            handle: 1,
            inode
        }));
    assert!(
        file.records
            .iter()
            .any(|r| r.fd == dmabuf && r.body == Body::Close),
        "the dma-buf's close is recorded"
    );
    let conv = model::convert(&[file], Options::default());
    assert_eq!(conv.counts_by_source()["add_usecnt:prime_export"], 1);
    assert_eq!(conv.counts_by_source()["remove_usecnt:free_reset"], 1);
    strict_events(&conv);

    let dir = scratch("kms");
    let text = stdout(&client(&dir, true, &["kms"], &[]));
    let tv = printed(&text, "event", "tv");
    let (sec, usec) = tv.split_once('.').unwrap();
    let file = only_raw(&dir);
    let flip = file.records.iter().find_map(|r| match r.body {
        Body::PageFlip {
            crtc_id: 31,
            fb_id,
            flags: 1,
            user_data: 0xfeed,
        } => Some(fb_id),
        _ => None,
    });
    assert_eq!(flip, Some(41));
    assert!(file.records.iter().any(|r| matches!(
        r.body,
        Body::SetCrtc {
            crtc_id: 31,
            fb_id: 40
        }
    )));
    assert!(file.records.iter().any(|r| matches!(
        r.body,
        Body::AddFb {
            fb_id: 41,
            width: 1920,
            height: 1080,
            handles: [2, 0, 0, 0],
            ..
        }
    )));
    let event = file.records.iter().find_map(|r| match r.body {
        Body::FlipEvent {
            event_type: 2,
            crtc_id: 31,
            tv_sec,
            tv_usec,
            user_data: 0xfeed,
            ..
        } => Some((tv_sec, tv_usec)),
        _ => None,
    });
    assert_eq!(event, Some((sec.parse().unwrap(), usec.parse().unwrap())));
    let conv = model::convert(&[file], Options::default());
    assert_eq!(conv.scanout_flips, 2);
    let by = conv.counts_by_source();
    assert_eq!(
        (by["add_usecnt:scanout"], by["remove_usecnt:scanout"]),
        (1, 2),
        "{by:?}"
    );
    strict_events(&conv);
}

#[test]
fn dup_and_fcntl_copies_of_the_device_fd_are_followed() {
    let dir = scratch("dup");
    client(&dir, true, &["dup"], &[]);
    let file = only_raw(&dir);
    let dups: Vec<(i32, i32)> = file
        .records
        .iter()
        .filter(|r| r.body == Body::Dup)
        .map(|r| (r.fd, r.result))
        .collect();
    assert_eq!(dups.len(), 2);
    assert_eq!(dups[1].1, 100);
    let create = file
        .records
        .iter()
        .find(|r| r.body.name() == "create_bo")
        .unwrap();
    assert_eq!(create.fd, dups[0].1);
    let conv = model::convert(&[file], Options::default());
    assert!(conv.warnings.is_empty(), "{:?}", conv.warnings);
    strict_events(&conv);
}

#[test]
fn a_recorder_that_cannot_write_stops_with_one_message_and_the_program_is_unchanged() {
    let dir = scratch("cannot-write");
    let b = built();
    let run = |preload: String| {
        Command::new(&b.client)
            .arg("basic")
            .env("LD_PRELOAD", preload)
            .env("POOLBED_RECORD_DIR", dir.join("no/such/dir"))
            .output()
            .unwrap()
    };
    let with = run(format!("{} {}", b.recorder.display(), b.fake.display()));
    let without = run(b.fake.display().to_string());
    assert!(with.status.success());
    let err = String::from_utf8_lossy(&with.stderr);
    assert_eq!(err.matches("poolbed-recorder:").count(), 1, "{err}");
    assert!(err.contains("cannot create"), "{err}");
    assert_eq!(calls(&stdout(&with)), calls(&stdout(&without)));
    assert!(raws(&dir).is_empty());
}

/// The converted events parse strictly and end with every BO destroyed.
fn strict_events(conv: &model::Conversion) -> Vec<trace::Event> {
    let text = conv.write_log(10_000_000);
    let events: Result<Vec<_>, _> = trace::StrParser::new(&text, trace::Mode::Strict).collect();
    let events = events.unwrap_or_else(|e| panic!("strict: {e}\n{text}"));
    assert_eq!(
        trace::Stats::of(events.iter().copied()).live_buffers_at_end,
        0
    );
    events
}

struct NoSink;
impl pool::replay::RecordSink for NoSink {
    fn record(&mut self, _: records::Record) {}
}

struct Ticks(u64);
impl pool::replay::Clock for Ticks {
    fn now_ns(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
    fn timer(&self) -> records::Timer {
        records::Timer {
            name: "test ticks".into(),
            hz: 1_000_000_000,
        }
    }
}

#[test]
fn two_processes_are_merged_by_time_and_the_trace_replays_in_the_simulator() {
    let dir = scratch("two-processes");
    let b = built();
    let spawn = || {
        Command::new(&b.client)
            .args(["frames", "30"])
            .env(
                "LD_PRELOAD",
                format!("{} {}", b.recorder.display(), b.fake.display()),
            )
            .env("POOLBED_RECORD_DIR", &dir)
            .env("FAKE_VC4_JOB_US", "1000")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut one, mut two) = (spawn(), spawn());
    assert!(one.wait().unwrap().success() && two.wait().unwrap().success());
    let files = raws(&dir);
    assert_eq!(files.len(), 2);
    assert_ne!(files[0].header.pid, files[1].header.pid);
    let conv = model::convert(&files, Options::default());
    assert!(conv.warnings.is_empty(), "{:?}", conv.warnings);
    assert_eq!(conv.gpu_jobs, 60);
    let kinds = conv.bos_by_kind();
    assert_eq!(
        kinds["kernel-bin"], 1,
        "one binner BO for the device: {kinds:?}"
    );
    assert_eq!(kinds["v3d"], 62);
    for p in 0..2 {
        assert_eq!(
            conv.bos
                .iter()
                .filter(|b| b.process == p && b.kind == capture::model::BoKind::V3d)
                .count(),
            31
        );
    }
    // The processes ran at once: their events interleave in the merged log.
    let switches = conv
        .events
        .windows(2)
        .filter(|w| w[0].process != w[1].process)
        .count();
    assert!(
        switches > 2,
        "the two processes' events do not interleave ({switches} switches)"
    );
    let events = strict_events(&conv);
    for policy in records::Policy::ALL {
        let config = pool::replay::ReplayConfig {
            pool_bytes: 32 << 20,
            ..pool::replay::ReplayConfig::new(0, policy, events.len() as u64)
        };
        let mut mover = pool::model::ModelMover::instant();
        let result = pool::replay::replay(
            &config,
            events.iter().copied(),
            &mut mover,
            &mut NoSink,
            &mut Ticks(0),
        )
        .unwrap_or_else(|e| panic!("{policy}: {e}"));
        assert_eq!(result.events, events.len() as u64, "{policy}");
        assert_eq!(result.rule1_failures, 0, "{policy}");
    }
}
