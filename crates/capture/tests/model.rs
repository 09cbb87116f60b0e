//! The converter's model, event by event, on hand-made raw recordings.

use capture::model::{self, bo_id, convert, BoKind, Op, Options, Source};
use capture::raw::{self, Body, Header, RawFile, Record, Submit, Surface};

const FD: i32 = 5;
const MS: u64 = 1_000_000;

/// A recording built call by call; times in ms from 1 s.
struct Rec {
    file: RawFile,
}

impl Rec {
    fn new(pid: u32) -> Rec {
        Rec {
            file: RawFile {
                header: Header {
                    version: raw::VERSION,
                    flags: raw::FLAG_TOUCH,
                    pid,
                    comm: format!("prog{pid}"),
                    page_size: 4096,
                    pointer_bits: 64,
                    ..Header::default()
                },
                ..RawFile::default()
            },
        }
    }

    fn call(&mut self, t_ms: u64, fd: i32, result: i32, body: Body) -> &mut Self {
        self.file.records.push(Record {
            time_ns: 1_000 * MS + t_ms * MS,
            fd,
            result,
            body,
        });
        self
    }

    fn open(&mut self, t: u64) -> &mut Self {
        self.call(
            t,
            -1,
            FD,
            Body::Open {
                flags: 2,
                path: b"/dev/dri/card0".to_vec(),
            },
        )
    }

    fn create(&mut self, t: u64, size: u32, handle: u32) -> &mut Self {
        self.call(
            t,
            FD,
            0,
            Body::CreateBo {
                size,
                flags: 0,
                handle,
            },
        )
    }

    fn close_handle(&mut self, t: u64, handle: u32) -> &mut Self {
        self.call(t, FD, 0, Body::GemClose { handle })
    }

    fn submit(&mut self, t: u64, seqno: u64, handles: &[u32]) -> &mut Self {
        self.call(t, FD, 0, Body::SubmitCl(job(seqno, handles)))
    }

    fn wait_seqno(&mut self, t: u64, seqno: u64) -> &mut Self {
        self.call(
            t,
            FD,
            0,
            Body::WaitSeqno {
                seqno,
                timeout_ns: u64::MAX,
                start_ns: 0,
            },
        )
    }
}

/// A 2x2-tile job with a binner CL that renders to its first BO.
fn job(seqno: u64, handles: &[u32]) -> Submit {
    let mut surfaces = [Surface {
        hindex: u32::MAX,
        ..Surface::default()
    }; 6];
    surfaces[raw::surface::COLOR_WRITE].hindex = 0;
    Submit {
        seqno,
        bin_cl_size: 100,
        shader_rec_size: 32,
        shader_rec_count: 1,
        uniforms_size: 16,
        width: 128,
        height: 128,
        max_x_tile: 1,
        max_y_tile: 1,
        surfaces,
        bo_handle_count: handles.len() as u32,
        handles: handles.to_vec(),
        ..Submit::default()
    }
}

/// The log as (ms since the first record, op, the n-th BO created, source).
fn events(files: &[RawFile], opts: Options) -> Vec<(u64, String, u32, &'static str)> {
    let conv = convert(files, opts);
    check_strict(&conv);
    let index: std::collections::HashMap<u32, u32> = conv
        .bos
        .iter()
        .enumerate()
        .map(|(i, b)| (b.id, i as u32))
        .collect();
    conv.events
        .iter()
        .map(|e| {
            let op = match e.op {
                Op::Create { size, bin: true } => format!("create {size} BIN"),
                Op::Create { size, .. } => format!("create {size}"),
                Op::Madv { willneed } => {
                    format!("madv {}", if willneed { "willneed" } else { "dontneed" })
                }
                other => other.name().to_string(),
            };
            (
                (e.time_ns - conv.t0_ns) / MS,
                op,
                index[&e.id],
                e.source.name(),
            )
        })
        .collect()
}

/// Every converted log passes the parser's strict mode and has 8-digit ids.
fn check_strict(conv: &model::Conversion) {
    let text = conv.write_log(10_000_000);
    let parsed: Result<Vec<_>, _> = trace::StrParser::new(&text, trace::Mode::Strict).collect();
    let parsed = parsed.unwrap_or_else(|e| panic!("strict parse failed: {e}\n{text}"));
    assert_eq!(parsed.len(), conv.events.len());
    for line in text.lines().filter(|l| l.contains("@@@")) {
        let id = line.split_whitespace().nth(4).unwrap();
        assert_eq!(id.len(), 8, "{line}");
        assert!(line.starts_with('['), "{line}");
    }
    let stats = trace::Stats::of(parsed);
    assert_eq!(
        stats.live_buffers_at_end, 0,
        "every BO is destroyed at the end"
    );
}

fn ev(t: u64, op: &str, bo: u32, source: &'static str) -> (u64, String, u32, &'static str) {
    (t, op.to_string(), bo, source)
}

#[test]
fn a_bo_lives_until_its_handle_and_its_mapping_are_gone() {
    let mut r = Rec::new(1);
    r.open(0)
        .create(1, 5000, 1)
        .call(
            2,
            FD,
            0,
            Body::MmapBo {
                handle: 1,
                offset: 0x10000,
            },
        )
        .call(
            3,
            FD,
            0,
            Body::Mmap {
                addr: 0x7000_0000,
                len: 8192,
                offset: 0x10000,
                prot: 3,
                flags: 1,
                handle: 1,
            },
        )
        .call(
            4,
            FD,
            0,
            Body::Madvise {
                handle: 1,
                madv: 1,
                retained: 1,
            },
        )
        .call(
            5,
            FD,
            0,
            Body::Madvise {
                handle: 1,
                madv: 0,
                retained: 1,
            },
        )
        .close_handle(6, 1)
        .call(
            7,
            -1,
            0,
            Body::Munmap {
                addr: 0x7000_0000,
                len: 8192,
            },
        )
        .call(8, FD, 0, Body::Close);
    assert_eq!(
        events(&[r.file], Options::default()),
        [
            ev(1, "create 16777216 BIN", 0, "kernel"),
            ev(1, "create 8192", 1, "measured"),
            ev(3, "use", 1, "mmap"),
            ev(4, "madv dontneed", 1, "measured"),
            ev(5, "madv willneed", 1, "measured"),
            ev(7, "destroy", 1, "model"),
            ev(8, "destroy", 0, "model"),
        ]
    );
}

#[test]
fn a_job_pins_its_bos_and_owns_its_kernel_bos_until_a_wait_sees_it_done() {
    let mut r = Rec::new(1);
    r.open(0)
        .create(1, 4096, 1)
        .create(2, 4096, 2)
        .submit(3, 1, &[1, 2])
        .wait_seqno(9, 1)
        .close_handle(10, 1);
    r.close_handle(11, 2).call(12, FD, 0, Body::Close);
    assert_eq!(
        events(&[r.file], Options::default()),
        [
            ev(1, "create 16777216 BIN", 0, "kernel"),
            ev(1, "create 4096", 1, "measured"),
            ev(2, "create 4096", 2, "measured"),
            ev(3, "use", 1, "inc_usecnt"),
            ev(3, "add_usecnt", 1, "job"),
            ev(3, "use", 2, "inc_usecnt"),
            ev(3, "add_usecnt", 2, "job"),
            ev(3, "create 4096", 3, "kernel"),
            ev(3, "create 4096", 4, "kernel"),
            ev(9, "remove_usecnt", 1, "job"),
            ev(9, "remove_usecnt", 2, "job"),
            ev(9, "destroy", 3, "model"),
            ev(9, "destroy", 4, "model"),
            ev(10, "destroy", 1, "model"),
            ev(11, "destroy", 2, "model"),
            ev(12, "destroy", 0, "model"),
        ]
    );
    let conv = convert(
        &[{
            let mut r = Rec::new(1);
            r.open(0)
                .create(1, 4096, 1)
                .submit(3, 1, &[1])
                .wait_seqno(9, 1);
            r.file
        }],
        Options::default(),
    );
    let kinds: Vec<BoKind> = conv.bos.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [
            BoKind::KernelBin,
            BoKind::V3d,
            BoKind::KernelBcl,
            BoKind::KernelRcl
        ]
    );
    assert_eq!(conv.gpu_jobs, 1);
}

#[test]
fn jobs_finish_in_order_so_a_later_wait_finishes_earlier_jobs() {
    let mut r = Rec::new(1);
    r.open(0).create(1, 4096, 1).create(2, 4096, 2);
    r.submit(3, 1, &[1])
        .submit(4, 2, &[2])
        .wait_seqno(8, 2)
        .call(20, FD, 0, Body::Close);
    let log = events(
        &[r.file],
        Options {
            kernel_bos: false,
            touch: true,
        },
    );
    let unpins: Vec<_> = log
        .iter()
        .filter(|e| e.1 == "remove_usecnt")
        .cloned()
        .collect();
    assert_eq!(
        unpins,
        [
            ev(8, "remove_usecnt", 0, "job"),
            ev(8, "remove_usecnt", 1, "job")
        ]
    );
}

#[test]
fn wait_bo_finishes_the_last_job_that_used_the_bo() {
    let mut r = Rec::new(1);
    r.open(0).create(1, 4096, 1).create(2, 4096, 2);
    r.submit(3, 1, &[1]).submit(4, 2, &[2]);
    r.call(
        6,
        FD,
        0,
        Body::WaitBo {
            handle: 1,
            timeout_ns: 0,
            start_ns: 0,
        },
    );
    r.call(
        7,
        FD,
        -62,
        Body::WaitBo {
            handle: 2,
            timeout_ns: 0,
            start_ns: 0,
        },
    ); // ETIME: still running
    r.call(
        9,
        FD,
        0,
        Body::WaitBo {
            handle: 2,
            timeout_ns: u64::MAX,
            start_ns: 0,
        },
    );
    r.call(20, FD, 0, Body::Close);
    let log = events(
        &[r.file],
        Options {
            kernel_bos: false,
            touch: true,
        },
    );
    let unpins: Vec<_> = log
        .iter()
        .filter(|e| e.1 == "remove_usecnt")
        .cloned()
        .collect();
    assert_eq!(
        unpins,
        [
            ev(6, "remove_usecnt", 0, "job"),
            ev(9, "remove_usecnt", 1, "job")
        ]
    );
}

#[test]
fn a_job_nobody_waited_for_ends_with_its_process_before_the_files_close() {
    let mut r = Rec::new(1);
    r.open(0).create(1, 4096, 1).submit(3, 1, &[1]);
    assert_eq!(
        events(&[r.file], Options::default()),
        [
            ev(1, "create 16777216 BIN", 0, "kernel"),
            ev(1, "create 4096", 1, "measured"),
            ev(3, "use", 1, "inc_usecnt"),
            ev(3, "add_usecnt", 1, "job"),
            ev(3, "create 4096", 2, "kernel"),
            ev(3, "create 4096", 3, "kernel"),
            ev(3, "remove_usecnt", 1, "job"),
            ev(3, "destroy", 2, "model"),
            ev(3, "destroy", 3, "model"),
            ev(3, "destroy", 1, "model"),
            ev(3, "destroy", 0, "model"),
        ]
    );
}

#[test]
fn a_bo_in_two_jobs_is_pinned_once_and_a_closed_bo_dies_with_its_last_job() {
    let mut r = Rec::new(1);
    r.open(0)
        .create(1, 4096, 1)
        .submit(2, 1, &[1])
        .submit(3, 2, &[1, 1])
        .close_handle(4, 1);
    r.wait_seqno(6, 1)
        .wait_seqno(8, 2)
        .call(10, FD, 0, Body::Close);
    assert_eq!(
        events(
            &[r.file],
            Options {
                kernel_bos: false,
                touch: true
            }
        ),
        [
            ev(1, "create 4096", 0, "measured"),
            ev(2, "use", 0, "inc_usecnt"),
            ev(2, "add_usecnt", 0, "job"),
            ev(8, "remove_usecnt", 0, "job"),
            ev(8, "destroy", 0, "model"),
        ]
    );
}

#[test]
fn scanout_pins_from_the_flip_to_the_vblank_that_replaces_the_buffer() {
    let mut r = Rec::new(1);
    r.open(0).create(1, 8192, 1).create(2, 8192, 2);
    let fb = |fb_id, h| Body::AddFb {
        fb_id,
        width: 64,
        height: 32,
        pixel_format: 0x34325258,
        handles: [h, 0, 0, 0],
    };
    r.call(3, FD, 0, fb(40, 1)).call(3, FD, 0, fb(41, 2));
    r.call(
        4,
        FD,
        0,
        Body::SetCrtc {
            crtc_id: 31,
            fb_id: 40,
        },
    );
    r.call(
        5,
        FD,
        0,
        Body::PageFlip {
            crtc_id: 31,
            fb_id: 41,
            flags: 1,
            user_data: 7,
        },
    );
    // The vblank at 1.016 s, read by the program at 1.020 s.
    r.call(
        20,
        FD,
        24,
        Body::FlipEvent {
            event_type: 2,
            crtc_id: 31,
            sequence: 1,
            tv_sec: 1,
            tv_usec: 16_000,
            user_data: 7,
        },
    );
    r.call(21, FD, 0, Body::RmFb { fb_id: 40 })
        .close_handle(22, 1);
    r.call(30, FD, 0, Body::Close);
    let file = r.file;
    assert_eq!(
        events(
            std::slice::from_ref(&file),
            Options {
                kernel_bos: false,
                touch: true
            }
        ),
        [
            ev(1, "create 8192", 0, "measured"),
            ev(2, "create 8192", 1, "measured"),
            ev(4, "use", 0, "inc_usecnt"),
            ev(4, "add_usecnt", 0, "scanout"),
            ev(5, "use", 1, "inc_usecnt"),
            ev(5, "add_usecnt", 1, "scanout"),
            ev(16, "remove_usecnt", 0, "scanout"),
            ev(22, "destroy", 0, "model"),
            // Closing the file removes fb 41, which switches the CRTC off.
            ev(30, "remove_usecnt", 1, "scanout"),
            ev(30, "destroy", 1, "model"),
        ]
    );
    assert_eq!(convert(&[file], Options::default()).scanout_flips, 2);
}

#[test]
fn a_flip_also_bounds_the_job_that_rendered_its_buffer() {
    let mut r = Rec::new(1);
    r.open(0).create(1, 8192, 1).create(1, 4096, 2);
    r.call(
        2,
        FD,
        0,
        Body::AddFb {
            fb_id: 40,
            width: 64,
            height: 32,
            pixel_format: 0,
            handles: [1, 0, 0, 0],
        },
    );
    // The job renders to BO 1 and reads BO 2; nobody waits for it.
    r.submit(3, 1, &[1, 2]);
    r.call(
        4,
        FD,
        0,
        Body::PageFlip {
            crtc_id: 31,
            fb_id: 40,
            flags: 1,
            user_data: 0,
        },
    );
    r.call(
        12,
        FD,
        24,
        Body::FlipEvent {
            event_type: 2,
            crtc_id: 31,
            sequence: 1,
            tv_sec: 1,
            tv_usec: 10_000,
            user_data: 0,
        },
    );
    r.call(30, FD, 0, Body::Close);
    let log = events(
        &[r.file],
        Options {
            kernel_bos: false,
            touch: true,
        },
    );
    let pins: Vec<_> = log
        .iter()
        .filter(|e| e.1.ends_with("usecnt"))
        .cloned()
        .collect();
    assert_eq!(
        pins,
        [
            ev(3, "add_usecnt", 0, "job"),
            ev(3, "add_usecnt", 1, "job"),
            // The vblank showed BO 1, so the job had finished by then.
            ev(10, "remove_usecnt", 1, "job"),
            ev(30, "remove_usecnt", 0, "scanout"),
        ]
    );
}

#[test]
fn an_exported_bo_keeps_its_usecnt_until_it_is_freed() {
    let mut r = Rec::new(1);
    r.open(0).create(1, 4096, 1);
    r.call(
        2,
        FD,
        0,
        Body::PrimeExport {
            handle: 1,
            flags: 0,
            dmabuf_fd: 9,
            inode: 77,
        },
    );
    // Importing its own dma-buf on the same file gives back the same handle.
    r.call(
        3,
        FD,
        0,
        Body::PrimeImport {
            dmabuf_fd: 9,
            handle: 1,
            inode: 77,
        },
    );
    r.close_handle(4, 1);
    r.call(5, 9, 0, Body::Close);
    r.call(6, FD, 0, Body::Close);
    assert_eq!(
        events(
            &[r.file],
            Options {
                kernel_bos: false,
                touch: true
            }
        ),
        [
            ev(1, "create 4096", 0, "measured"),
            ev(2, "use", 0, "inc_usecnt"),
            ev(2, "add_usecnt", 0, "prime_export"),
            ev(5, "remove_usecnt", 0, "free_reset"),
            ev(5, "destroy", 0, "model"),
        ]
    );
}

#[test]
fn a_dmabuf_shared_with_another_process_keeps_the_bo_alive_there() {
    let mut a = Rec::new(1);
    a.open(0).create(1, 4096, 1).call(
        1,
        FD,
        0,
        Body::PrimeExport {
            handle: 1,
            flags: 0,
            dmabuf_fd: 9,
            inode: 77,
        },
    );
    a.call(3, 9, 0, Body::Close)
        .close_handle(4, 1)
        .call(5, FD, 0, Body::Close);
    // Process 2 got the dma-buf as fd 4 over a socket (unseen) and imports it.
    let mut b = Rec::new(2);
    b.open(0).call(
        2,
        FD,
        0,
        Body::PrimeImport {
            dmabuf_fd: 4,
            handle: 1,
            inode: 77,
        },
    );
    b.call(7, 4, 0, Body::Close)
        .call(8, FD, 0, Body::GemClose { handle: 1 })
        .call(9, FD, 0, Body::Close);
    let conv = convert(
        &[a.file, b.file],
        Options {
            kernel_bos: false,
            touch: true,
        },
    );
    check_strict(&conv);
    let destroy = conv.events.iter().find(|e| e.op == Op::Destroy).unwrap();
    assert_eq!((destroy.time_ns - conv.t0_ns) / MS, 8);
    assert_eq!(destroy.process, 1);
    assert_eq!(conv.bos[0].process, 0);
}

#[test]
fn two_processes_are_merged_by_time_and_share_the_binner_bo() {
    let mut a = Rec::new(1);
    a.open(0)
        .create(2, 4096, 1)
        .close_handle(6, 1)
        .call(7, FD, 0, Body::Close);
    let mut b = Rec::new(2);
    b.open(1)
        .create(3, 8192, 1)
        .close_handle(4, 1)
        .call(9, FD, 0, Body::Close);
    let conv = convert(&[a.file.clone(), b.file.clone()], Options::default());
    assert_eq!(
        events(&[a.file, b.file], Options::default()),
        [
            ev(2, "create 16777216 BIN", 0, "kernel"),
            ev(2, "create 4096", 1, "measured"),
            ev(3, "create 8192", 2, "measured"),
            ev(4, "destroy", 2, "model"),
            ev(6, "destroy", 1, "model"),
            ev(9, "destroy", 0, "model"),
        ]
    );
    let owners: Vec<usize> = conv.bos.iter().map(|b| b.process).collect();
    assert_eq!(owners, [0, 0, 1]);
    assert_eq!(
        conv.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn touches_are_uses_unless_left_out_and_failed_calls_change_nothing() {
    let mut r = Rec::new(1);
    r.open(0).create(1, 4096, 1);
    r.call(
        2,
        FD,
        -22,
        Body::CreateBo {
            size: 0,
            flags: 0,
            handle: 0,
        },
    );
    r.call(2, FD, -22, Body::GemClose { handle: 1 });
    r.call(
        3,
        FD,
        0,
        Body::MmapBo {
            handle: 1,
            offset: 0x10000,
        },
    );
    r.call(
        3,
        FD,
        0,
        Body::Mmap {
            addr: 0x7000_0000,
            len: 4096,
            offset: 0x10000,
            prot: 3,
            flags: 1,
            handle: 1,
        },
    );
    r.submit(4, 1, &[1]);
    r.call(
        5,
        -1,
        0,
        Body::Touch {
            handle: 1,
            map_addr: 0x7000_0000,
            fault_addr: 0x7000_0010,
        },
    );
    r.wait_seqno(6, 1).call(8, FD, 0, Body::Close);
    let with = events(
        std::slice::from_ref(&r.file),
        Options {
            kernel_bos: false,
            touch: true,
        },
    );
    assert!(with.contains(&ev(5, "use", 0, "cpu_touch")), "{with:?}");
    let without = events(
        std::slice::from_ref(&r.file),
        Options {
            kernel_bos: false,
            touch: false,
        },
    );
    assert!(!without.iter().any(|e| e.3 == "cpu_touch"));
    assert_eq!(with.len(), without.len() + 1);
    let conv = convert(&[r.file], Options::default());
    assert_eq!(conv.processes[0].failed_calls, 2);
    assert!(conv.warnings.is_empty(), "{:?}", conv.warnings);
}

#[test]
fn kernel_buffers_can_be_left_out() {
    let mut r = Rec::new(1);
    r.open(0)
        .create(1, 4096, 1)
        .submit(2, 1, &[1])
        .wait_seqno(3, 1)
        .call(4, FD, 0, Body::Close);
    let conv = convert(
        &[r.file],
        Options {
            kernel_bos: false,
            touch: true,
        },
    );
    assert!(conv.bos.iter().all(|b| b.kind.is_userspace()));
    assert_eq!(conv.counts_by_source().get("create:kernel"), None);
}

#[test]
fn dup_keeps_the_file_open_until_its_last_fd_closes() {
    let mut r = Rec::new(1);
    r.open(0).create(1, 4096, 1);
    r.call(2, FD, 8, Body::Dup).call(3, FD, 0, Body::Close);
    r.call(4, 8, 0, Body::GemClose { handle: 1 });
    r.call(5, 8, 0, Body::Close);
    assert_eq!(
        events(&[r.file], Options::default()),
        [
            ev(1, "create 16777216 BIN", 0, "kernel"),
            ev(1, "create 4096", 1, "measured"),
            ev(4, "destroy", 1, "model"),
            ev(5, "destroy", 0, "model"),
        ]
    );
}

#[test]
fn kernel_bo_sizes_follow_the_kernels_arithmetic() {
    let mut s = job(1, &[1]);
    // 100 bytes of binner CL padded to 112, + 32 + 16.
    assert_eq!(model::exec_bo_bytes(&s), 160);
    // Config 11 + semaphore 1; per tile: coordinates 3, branch 5, store 1; 4 tiles.
    assert_eq!(model::rcl_bo_bytes(&s), 12 + 4 * 9);
    // A clear, a color read, a zs read and a zs write; 30x17 tiles (1920x1080).
    s.flags = capture::uapi::VC4_SUBMIT_CL_USE_CLEAR_COLOR;
    s.surfaces[raw::surface::COLOR_READ].hindex = 0;
    s.surfaces[raw::surface::ZS_READ].hindex = 0;
    s.surfaces[raw::surface::ZS_WRITE].hindex = 0;
    s.max_x_tile = 29;
    s.max_y_tile = 16;
    let per_tile = 3 + 7 + (3 + 7) + 7 + 5 + 7 + 1 + 3;
    assert_eq!(
        model::rcl_bo_bytes(&s),
        11 + 14 + 3 + 7 + 1 + 510 * per_tile
    );
    // No binner CL: no semaphore, no branch.
    s.bin_cl_size = 0;
    assert_eq!(
        model::rcl_bo_bytes(&s),
        11 + 14 + 3 + 7 + 510 * (per_tile - 5)
    );
}

#[test]
fn ids_are_unique_8_digit_hex() {
    let ids: std::collections::HashSet<u32> = (0..200_000).map(bo_id).collect();
    assert_eq!(ids.len(), 200_000);
    let conv = {
        let mut r = Rec::new(1);
        r.open(0).create(1, 4096, 1);
        convert(&[r.file], Options::default())
    };
    let text = conv.write_log(10_000_000);
    let first = text.lines().find(|l| l.contains("@@@")).unwrap();
    assert!(first.starts_with("[   10.001000] @@@ create "), "{first}");
    assert_eq!(Source::Model.name(), "model");
}
