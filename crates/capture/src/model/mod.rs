//! The converter: raw recordings in, the `@@@` log of the vc4 kernel branch
//! with buffer-object logging out.
//!
//! The recorder sees the calls a program makes; the log is what the kernel
//! would print while serving them. This module replays the calls through a
//! model of the kernel's side:
//!
//! | event | when | origin |
//! |---|---|---|
//! | `create` | `VC4_CREATE_BO`, `VC4_CREATE_SHADER_BO`, `MODE_CREATE_DUMB`, size rounded up to the page | measured |
//! | `create … BIN` | the 16 MiB binner BO, at a DRM file's first BO create (`vc4_grab_bin_bo`), or at a job with a binner CL if none is live | modelled |
//! | `create` | per job: the exec BO (binner CL, shader records and uniforms copied, `vc4_get_bcl`; only if the job has a binner CL) and the render-control-list BO (`vc4_create_rcl_bo`), sizes by the kernel's arithmetic | modelled |
//! | `use` | `mmap()` of a BO (the branch logs a use in `vc4_mmap`) | measured |
//! | `use` | immediately before every `add_usecnt` (`vc4_bo_inc_usecnt` -> `vc4_bo_use`) | modelled |
//! | `use` | the first CPU access to a BO's mapping after each job submission (page protection) | measured |
//! | `add_usecnt` / `remove_usecnt` | the kernel's usecnt going 0 -> 1 and 1 -> 0: +1 per entry of a job's BO list from `SUBMIT_CL` until the job is known finished; +1 on the first plane's BO of a framebuffer from the flip (or `SETCRTC`) that shows it until the vblank that replaces it; +1 for good on each dma-buf export (`vc4_prime_export`) | BO lists and flips measured, completion times bounded by observation |
//! | `madv` | `VC4_GEM_MADVISE` | measured |
//! | `destroy` | the last reference gone: GEM handles (per DRM file), framebuffers, jobs in flight, dma-bufs, mappings | modelled (refcounting over measured closes) |
//!
//! **Job completion.** A stock kernel does not say when a job finished. The
//! model takes the earliest moment the program could see that it had: a
//! `WAIT_SEQNO` or `WAIT_BO` that returned 0, or the vblank event of a flip to
//! a framebuffer the job rendered (the kernel holds a flip until the BO's last
//! job is done). vc4 runs a device's jobs in submission order, so evidence for
//! a job also finishes every earlier one. A job with no evidence finishes when
//! its process ends. The true completion is at or before the modelled one, so
//! pins last at least as long as on the device.
//!
//! **Scanout.** A flip completes at the timestamp of its vblank event (the
//! kernel stamps it with CLOCK_MONOTONIC, the recorder's clock), clamped to lie
//! between the flip call and the read that delivered it. A flip whose event is
//! never read completes at the next flip or mode set on its CRTC, or at the
//! process's end.
//!
//! **Destroy of a pinned BO.** The usecnt that `vc4_prime_export` takes is
//! never given back; the kernel resets usecnt to 0 when it frees the BO
//! (`vc4_free_object`). The model writes that reset as a `remove_usecnt`
//! immediately before the `destroy`, so every converted trace passes the
//! parser's strict mode.
//!
//! **Several processes** are merged on their common CLOCK_MONOTONIC, one
//! device: the binner BO is shared, dma-bufs are matched across processes by
//! inode. Each BO keeps the index of the process that created it
//! ([`BoInfo::process`]).

use crate::raw::{Body, RawFile, Record, Submit};
use crate::uapi::{VC4_MADV_DONTNEED, VC4_MADV_WILLNEED};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

mod kernel;
mod record;
mod schedule;
mod sizes;

use schedule::{schedule, sorted_records};
use sizes::round_up;
pub use sizes::{exec_bo_bytes, rcl_bo_bytes};

/// Size of the binner BO the kernel allocates (`vc4_v3d_bin_bo_get`).
pub const BIN_BO_SIZE: u64 = 16 << 20;

/// One sentence for the trace's header, the converter's output and the
/// statistics: which events are measured and which modelled.
pub const MEASURED_AND_MODELLED: &str = "measured: BO creates and sizes, GEM closes, mmaps, madvise, each job's BO list, flips and their vblank times, first CPU touch after each submission; modelled: usecnt transitions (job completion = earliest observed finish), the binner BO, per-job exec and RCL BOs, use before add_usecnt, destroy when the last reference goes";

/// What the converter may leave out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Emit the first CPU touch after each submission as a `use`.
    pub touch: bool,
    /// Emit the kernel's own BOs (binner, exec, RCL).
    pub kernel_bos: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            touch: true,
            kernel_bos: true,
        }
    }
}

/// A log operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create { size: u64, bin: bool },
    Use,
    AddUsecnt,
    RemoveUsecnt,
    Madv { willneed: bool },
    Destroy,
}

impl Op {
    /// The operation's word in the log.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::Use => "use",
            Op::AddUsecnt => "add_usecnt",
            Op::RemoveUsecnt => "remove_usecnt",
            Op::Madv { .. } => "madv",
            Op::Destroy => "destroy",
        }
    }
}

/// Why an event was emitted: the second half of the `op:source` tags of
/// the statistics (`create:measured`, `use:cpu_touch`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// A recorded ioctl (create, madv).
    Measured,
    /// A kernel-internal BO.
    Kernel,
    /// Refcounting (destroy).
    Model,
    /// A recorded mmap.
    Mmap,
    /// The use the kernel logs before each usecnt increment.
    IncUsecnt,
    /// A recorded first CPU touch after a submission.
    CpuTouch,
    /// A job's BO list.
    Job,
    /// A framebuffer on screen.
    Scanout,
    /// The usecnt `vc4_prime_export` takes.
    PrimeExport,
    /// The kernel's usecnt reset when it frees a BO still counted.
    FreeReset,
}

impl Source {
    pub fn name(&self) -> &'static str {
        match self {
            Source::Measured => "measured",
            Source::Kernel => "kernel",
            Source::Model => "model",
            Source::Mmap => "mmap",
            Source::IncUsecnt => "inc_usecnt",
            Source::CpuTouch => "cpu_touch",
            Source::Job => "job",
            Source::Scanout => "scanout",
            Source::PrimeExport => "prime_export",
            Source::FreeReset => "free_reset",
        }
    }
}

/// One line of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutEvent {
    /// CLOCK_MONOTONIC, ns (the log shows it relative to the first record).
    pub time_ns: u64,
    pub op: Op,
    /// The BO's 8-hex-digit id.
    pub id: u32,
    pub source: Source,
    /// Index of the process (raw file) whose call caused the event.
    pub process: usize,
}

/// What a BO is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BoKind {
    /// `VC4_CREATE_BO`.
    V3d,
    /// `VC4_CREATE_SHADER_BO`.
    V3dShader,
    /// `MODE_CREATE_DUMB`.
    Dumb,
    /// The kernel's copy of a job's binner CL, shader records and uniforms.
    KernelBcl,
    /// The kernel's render-control list of a job.
    KernelRcl,
    /// The binner's overflow memory.
    KernelBin,
}

impl BoKind {
    pub fn name(&self) -> &'static str {
        match self {
            BoKind::V3d => "v3d",
            BoKind::V3dShader => "v3d-shader",
            BoKind::Dumb => "dumb",
            BoKind::KernelBcl => "kernel-bcl",
            BoKind::KernelRcl => "kernel-rcl",
            BoKind::KernelBin => "kernel-bin",
        }
    }

    /// Created by userspace (as opposed to by the kernel for itself).
    pub fn is_userspace(&self) -> bool {
        matches!(self, BoKind::V3d | BoKind::V3dShader | BoKind::Dumb)
    }
}

/// One BO of the converted trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoInfo {
    pub id: u32,
    pub size: u64,
    pub kind: BoKind,
    /// The process whose call created it (the first to use it, for the binner BO).
    pub process: usize,
    pub created_ns: u64,
    pub destroyed_ns: Option<u64>,
}

/// Per process: who it was and what it recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessSummary {
    pub pid: u32,
    pub comm: String,
    pub exe: String,
    pub records: u64,
    /// Recorded calls that failed (they change nothing in the model).
    pub failed_calls: u64,
    /// Whether the recorder tracked CPU touches.
    pub touch_tracked: bool,
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
}

/// The result of a conversion.
#[derive(Clone, Debug, Default)]
pub struct Conversion {
    pub events: Vec<OutEvent>,
    pub bos: Vec<BoInfo>,
    pub gpu_jobs: u64,
    /// Framebuffers put on screen (completed flips and mode sets).
    pub scanout_flips: u64,
    pub processes: Vec<ProcessSummary>,
    /// What the model could not account for (an ioctl on a handle it never saw, ...).
    pub warnings: Vec<String>,
    /// The time all processes' records are measured from.
    pub t0_ns: u64,
}

/// Most warnings kept; the rest are counted.
const MAX_WARNINGS: usize = 50;

impl Conversion {
    /// `op:source` counts, sorted.
    pub fn counts_by_source(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for e in &self.events {
            *m.entry(format!("{}:{}", e.op.name(), e.source.name()))
                .or_insert(0) += 1;
        }
        m
    }

    /// BOs per kind, sorted by kind name.
    pub fn bos_by_kind(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for b in &self.bos {
            *m.entry(b.kind.name()).or_insert(0) += 1;
        }
        m
    }

    /// Peak of the summed sizes of live userspace BOs.
    pub fn peak_live_userspace_bytes(&self) -> u64 {
        let by_id: HashMap<u32, &BoInfo> = self.bos.iter().map(|b| (b.id, b)).collect();
        let (mut live, mut peak) = (0u64, 0u64);
        for e in &self.events {
            let Some(b) = by_id.get(&e.id) else { continue };
            if !b.kind.is_userspace() {
                continue;
            }
            match e.op {
                Op::Create { size, .. } => {
                    live += size;
                    peak = peak.max(live);
                }
                Op::Destroy => live -= b.size,
                _ => {}
            }
        }
        peak
    }

    /// The log: a comment header (lines without `@@@`, which parsers skip),
    /// then one `[ seconds.micros] @@@ op id [args]` line per event, the
    /// first record of any process at `start_us` microseconds.
    pub fn write_log(&self, start_us: u64) -> String {
        let mut out = String::with_capacity(self.events.len() * 40 + 512);
        let _ = writeln!(
            out,
            "# vc4 buffer trace converted from {} recorder file(s) by cargo xtask record-convert",
            self.processes.len()
        );
        for (i, p) in self.processes.iter().enumerate() {
            let _ = writeln!(
                out,
                "# process {i}: pid {} comm {:?} exe {:?}, {} records",
                p.pid, p.comm, p.exe, p.records
            );
        }
        let _ = writeln!(out, "# {MEASURED_AND_MODELLED}");
        for e in &self.events {
            let us = start_us + (e.time_ns - self.t0_ns) / 1000;
            let _ = write!(
                out,
                "[{:>5}.{:06}] @@@ {} {:08x}",
                us / 1_000_000,
                us % 1_000_000,
                e.op.name(),
                e.id
            );
            match e.op {
                Op::Create { size, bin } => {
                    let _ = write!(out, " {size}{}", if bin { " BIN" } else { "" });
                }
                Op::Madv { willneed } => {
                    out.push_str(if willneed { " willneed" } else { " dontneed" })
                }
                _ => {}
            }
            out.push('\n');
        }
        out
    }
}

/// A dense, unique, hashed-pointer-looking id for the n-th BO: a bijection on
/// `u32`, so ids never repeat within a trace.
pub fn bo_id(n: u32) -> u32 {
    let mut x = n.wrapping_add(0x9e37_79b9);
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

// ---------------------------------------------------------------------------
// Pass 2: the kernel's objects, in time order.

#[derive(Default)]
struct Obj {
    id: u32,
    info: usize,
    handles: u32,
    fbs: u32,
    jobs: u32,
    dmabufs: u32,
    maps: u32,
    scanout: u32,
    /// Holders of the binner BO: DRM files that grabbed it and jobs with a binner CL.
    bin_users: u32,
    usecnt: u32,
    destroyed: bool,
}

impl Obj {
    fn referenced(&self) -> bool {
        self.handles
            + self.fbs
            + self.jobs
            + self.dmabufs
            + self.maps
            + self.scanout
            + self.bin_users
            > 0
    }
}

#[derive(Default)]
struct DrmFile {
    fds: u32,
    handles: HashMap<u32, usize>,
    offsets: HashMap<u64, usize>,
    bin_used: bool,
    released: bool,
}

#[derive(Clone, Copy)]
enum FdRef {
    Drm(usize),
    Dmabuf(usize),
}

struct Dmabuf {
    obj: usize,
    fds: u32,
    inode: u64,
}

struct Fb {
    file: usize,
    objs: Vec<usize>,
    removed: bool,
    /// On screen or waiting to be (a flip in flight).
    scanning: u32,
}

#[derive(Default)]
struct Crtc {
    shown: Option<u32>,
    /// A flip in flight: the framebuffer and the flip's number in its process.
    pending: Option<(u32, u32)>,
}

struct Job {
    objs: Vec<usize>,
    kernel: Vec<usize>,
    uses_bin: bool,
}

#[derive(Default)]
struct Proc {
    fds: HashMap<i32, FdRef>,
    files: Vec<DrmFile>,
    maps: BTreeMap<u64, (u64, usize)>,
    fbs: HashMap<u32, Fb>,
    crtcs: HashMap<u32, Crtc>,
    jobs: Vec<Option<Job>>,
    flips: u32,
}

struct Model<'a> {
    opts: Options,
    page: u64,
    objs: Vec<Obj>,
    dmabufs: Vec<Dmabuf>,
    dmabuf_by_inode: HashMap<u64, usize>,
    bin: Option<usize>,
    procs: Vec<Proc>,
    out: &'a mut Conversion,
    dropped_warnings: u64,
    now: u64,
    process: usize,
}

/// What the merged timeline holds, in the order ties are broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    /// A job or flip that finished after the call that started it: before
    /// the records of its nanosecond (the call that saw it finish included).
    JobDoneEarly(usize),
    FlipDoneEarly(usize),
    Record(usize),
    /// A job or flip finishing at the same nanosecond as its start (or at the
    /// process's end): after the records of that nanosecond.
    JobDoneLate(usize),
    FlipDoneLate(usize),
    End,
}

/// Converts the raw files of one or more processes (in the order given, which
/// numbers them) into the kernel branch's log events.
pub fn convert(files: &[RawFile], opts: Options) -> Conversion {
    let sched = schedule(files);
    let mut conv = Conversion::default();
    let mut timeline: Vec<(u64, Action, usize, usize)> = Vec::new();
    let mut sorted: Vec<Vec<&Record>> = Vec::new();
    for (p, file) in files.iter().enumerate() {
        let records = sorted_records(file);
        for (i, r) in records.iter().enumerate() {
            timeline.push((r.time_ns, Action::Record(i), p, i));
        }
        for (j, d) in sched.jobs[p].iter().enumerate() {
            let a = if d.after_start {
                Action::JobDoneEarly(j)
            } else {
                Action::JobDoneLate(j)
            };
            timeline.push((d.time_ns, a, p, j));
        }
        for (k, d) in sched.flips[p].iter().enumerate() {
            let a = if d.after_start {
                Action::FlipDoneEarly(k)
            } else {
                Action::FlipDoneLate(k)
            };
            timeline.push((d.time_ns, a, p, k));
        }
        if !records.is_empty() {
            timeline.push((sched.end_ns[p], Action::End, p, 0));
        }
        let failed = records.iter().filter(|r| !r.ok()).count() as u64;
        conv.processes.push(ProcessSummary {
            pid: file.header.pid,
            comm: file.header.comm.clone(),
            exe: file.header.exe.clone(),
            records: records.len() as u64,
            failed_calls: failed,
            touch_tracked: file.header.flags & crate::raw::FLAG_TOUCH != 0,
            first_ns: records.first().map(|r| r.time_ns),
            last_ns: records.last().map(|r| r.time_ns),
        });
        sorted.push(records);
    }
    // Time, then the tie class, then the process, then its own order.
    timeline.sort_by_key(|&(t, a, p, i)| {
        let class = match a {
            Action::JobDoneEarly(_) | Action::FlipDoneEarly(_) => 0,
            Action::Record(_) => 1,
            Action::JobDoneLate(_) | Action::FlipDoneLate(_) => 2,
            Action::End => 3,
        };
        let sub = match a {
            Action::FlipDoneEarly(_) | Action::FlipDoneLate(_) => 0,
            _ => 1,
        };
        (t, class, p, sub, i)
    });
    conv.t0_ns = timeline.first().map_or(0, |t| t.0);
    let page = files
        .iter()
        .map(|f| f.header.page_size as u64)
        .find(|&p| p.is_power_of_two() && p >= 4096)
        .unwrap_or(4096);

    let mut model = Model {
        opts,
        page,
        objs: Vec::new(),
        dmabufs: Vec::new(),
        dmabuf_by_inode: HashMap::new(),
        bin: None,
        procs: (0..files.len()).map(|_| Proc::default()).collect(),
        out: &mut conv,
        dropped_warnings: 0,
        now: 0,
        process: 0,
    };
    for &(t, action, p, _) in &timeline {
        model.now = t;
        model.process = p;
        match action {
            Action::Record(i) => {
                let touch = files[p].header.flags & crate::raw::FLAG_TOUCH != 0;
                model.record(sorted[p][i], touch);
            }
            Action::JobDoneEarly(j) | Action::JobDoneLate(j) => model.job_done(j),
            Action::FlipDoneEarly(k) | Action::FlipDoneLate(k) => model.flip_done(k as u32),
            Action::End => model.end_process(),
        }
    }
    if model.dropped_warnings > 0 {
        let n = model.dropped_warnings;
        model
            .out
            .warnings
            .push(format!("... and {n} more warnings"));
    }
    conv
}
