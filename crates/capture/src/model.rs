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

use crate::raw::{surface, Body, RawFile, Record, Submit};
use crate::uapi::{
    VC4_MADV_DONTNEED, VC4_MADV_WILLNEED, VC4_SUBMIT_CL_USE_CLEAR_COLOR,
    VC4_SUBMIT_RCL_SURFACE_READ_IS_FULL_RES,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

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

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// Bytes of the exec BO `vc4_get_bcl` allocates (before page rounding): the
/// binner CL padded to 16 bytes, then the shader records, then the uniforms.
pub fn exec_bo_bytes(s: &Submit) -> u64 {
    round_up(s.bin_cl_size as u64, 16) + s.shader_rec_size as u64 + s.uniforms_size as u64
}

/// Bytes of the render-control list `vc4_create_rcl_bo` allocates (before
/// page rounding), from the packet sizes of `vc4_packet.h`: the rendering
/// mode config, an optional clear, then per tile the loads, the branch to
/// the tile's binned list and the stores, with tile coordinates between stores.
pub fn rcl_bo_bytes(s: &Submit) -> u64 {
    const TILE_RENDERING_MODE_CONFIG: u64 = 11;
    const TILE_COORDINATES: u64 = 3;
    const CLEAR_COLORS: u64 = 14;
    const STORE_TILE_BUFFER_GENERAL: u64 = 7;
    const LOAD_TILE_BUFFER_GENERAL: u64 = 7;
    const LOAD_FULL_RES_TILE_BUFFER: u64 = 5;
    const STORE_FULL_RES_TILE_BUFFER: u64 = 5;
    const WAIT_ON_SEMAPHORE: u64 = 1;
    const BRANCH_TO_SUB_LIST: u64 = 5;
    const STORE_MS_TILE_BUFFER: u64 = 1;

    let has = |i: usize| s.surfaces[i].present();
    let full_res = |i: usize| s.surfaces[i].flags & VC4_SUBMIT_RCL_SURFACE_READ_IS_FULL_RES != 0;
    let load = |i: usize| {
        if full_res(i) {
            LOAD_FULL_RES_TILE_BUFFER
        } else {
            LOAD_TILE_BUFFER_GENERAL
        }
    };
    // The kernel counts tiles in u8.
    let xtiles = s.max_x_tile.wrapping_sub(s.min_x_tile).wrapping_add(1) as u64;
    let ytiles = s.max_y_tile.wrapping_sub(s.min_y_tile).wrapping_add(1) as u64;

    let mut size = TILE_RENDERING_MODE_CONFIG;
    let mut body = TILE_COORDINATES;
    if s.flags & VC4_SUBMIT_CL_USE_CLEAR_COLOR != 0 {
        size += CLEAR_COLORS + TILE_COORDINATES + STORE_TILE_BUFFER_GENERAL;
    }
    if has(surface::COLOR_READ) {
        body += load(surface::COLOR_READ);
    }
    if has(surface::ZS_READ) {
        if has(surface::COLOR_READ) {
            body += TILE_COORDINATES + STORE_TILE_BUFFER_GENERAL;
        }
        body += load(surface::ZS_READ);
    }
    if s.bin_cl_size != 0 {
        size += WAIT_ON_SEMAPHORE;
        body += BRANCH_TO_SUB_LIST;
    }
    let writes = [
        surface::MSAA_COLOR_WRITE,
        surface::MSAA_ZS_WRITE,
        surface::COLOR_WRITE,
        surface::ZS_WRITE,
    ]
    .iter()
    .filter(|&&i| has(i))
    .count() as u64;
    if has(surface::MSAA_COLOR_WRITE) {
        body += STORE_FULL_RES_TILE_BUFFER;
    }
    if has(surface::MSAA_ZS_WRITE) {
        body += STORE_FULL_RES_TILE_BUFFER;
    }
    if has(surface::ZS_WRITE) {
        body += STORE_TILE_BUFFER_GENERAL;
    }
    if has(surface::COLOR_WRITE) {
        body += STORE_MS_TILE_BUFFER;
    }
    // The kernel refuses a job with no write surface, so writes >= 1 here.
    body += TILE_COORDINATES * writes.saturating_sub(1);
    size + xtiles * ytiles * body
}

// ---------------------------------------------------------------------------
// Pass 1: when did each job and each flip finish?

/// When a job or flip finishes, and whether that moment is after the call
/// that started it (so it sorts before records at the same nanosecond).
#[derive(Clone, Copy, Debug)]
struct Done {
    time_ns: u64,
    after_start: bool,
}

#[derive(Default)]
struct Schedule {
    /// Per process: completion of each successful SUBMIT_CL, in order.
    jobs: Vec<Vec<Done>>,
    /// Per process: completion of each successful PAGE_FLIP, in order.
    flips: Vec<Vec<Done>>,
    /// Per process: the time its last record was written.
    end_ns: Vec<u64>,
}

fn sorted_records(file: &RawFile) -> Vec<&Record> {
    let mut v: Vec<&Record> = file.records.iter().collect();
    // Threads write their own records; a later call can land first by a hair.
    v.sort_by_key(|r| r.time_ns);
    v
}

fn schedule(files: &[RawFile]) -> Schedule {
    let mut sched = Schedule::default();
    for file in files {
        let records = sorted_records(file);
        let end = records.last().map_or(0, |r| r.time_ns);
        // fd -> DRM file (numbered as opened), for handle lookups.
        let mut fds: HashMap<i32, usize> = HashMap::new();
        let mut opened = 0usize;
        let mut submits: Vec<u64> = Vec::new();
        let mut bound: Vec<u64> = Vec::new();
        let mut seqnos: Vec<u64> = Vec::new();
        let mut last_job: HashMap<(usize, u32), usize> = HashMap::new();
        let mut fbs: HashMap<u32, (usize, u32)> = HashMap::new();
        // Per flip: start, completion, and the last job using its buffer.
        let mut flips: Vec<(u64, Option<Done>, Option<usize>)> = Vec::new();
        let mut pending: HashMap<u32, usize> = HashMap::new();
        let finish = |flips: &mut Vec<(u64, Option<Done>, Option<usize>)>, i: usize, t: u64| {
            let start = flips[i].0;
            let time_ns = t.max(start);
            flips[i].1.get_or_insert(Done {
                time_ns,
                after_start: time_ns > start,
            });
        };
        for r in &records {
            if !r.ok() {
                continue;
            }
            let key = fds.get(&r.fd).copied();
            match &r.body {
                Body::Open { .. } => {
                    fds.insert(r.result, opened);
                    opened += 1;
                }
                Body::Dup => {
                    if let Some(k) = key {
                        fds.insert(r.result, k);
                    }
                }
                Body::Close => {
                    fds.remove(&r.fd);
                }
                Body::SubmitCl(s) => {
                    let j = submits.len();
                    submits.push(r.time_ns);
                    bound.push(u64::MAX);
                    seqnos.push(s.seqno);
                    if let Some(k) = key {
                        for &h in &s.handles {
                            last_job.insert((k, h), j);
                        }
                    }
                }
                Body::WaitSeqno { seqno, .. } => {
                    // The newest job the wait covers; in-order completion covers the rest.
                    if let Some(j) = seqnos.iter().rposition(|s| s <= seqno) {
                        bound[j] = bound[j].min(r.time_ns);
                    }
                }
                Body::WaitBo { handle, .. } => {
                    if let Some(&j) = key.and_then(|k| last_job.get(&(k, *handle))) {
                        bound[j] = bound[j].min(r.time_ns);
                    }
                }
                Body::AddFb { fb_id, handles, .. } => {
                    if let Some(k) = key {
                        fbs.insert(*fb_id, (k, handles[0]));
                    }
                }
                Body::SetCrtc { crtc_id, .. } => {
                    if let Some(i) = pending.remove(crtc_id) {
                        finish(&mut flips, i, r.time_ns);
                    }
                }
                Body::PageFlip { crtc_id, fb_id, .. } => {
                    if let Some(i) = pending.remove(crtc_id) {
                        finish(&mut flips, i, r.time_ns);
                    }
                    pending.insert(*crtc_id, flips.len());
                    // The kernel shows the new buffer only once its last job is done.
                    let job = fbs.get(fb_id).and_then(|kh| last_job.get(kh)).copied();
                    flips.push((r.time_ns, None, job));
                }
                Body::FlipEvent {
                    crtc_id,
                    tv_sec,
                    tv_usec,
                    ..
                } => {
                    let mut which = pending.remove(crtc_id);
                    if which.is_none() && *crtc_id == 0 && pending.len() == 1 {
                        let only = pending.keys().next().copied();
                        which = only.and_then(|c| pending.remove(&c));
                    }
                    if let Some(i) = which {
                        let stamp = *tv_sec as u64 * 1_000_000_000 + *tv_usec as u64 * 1000;
                        let t = stamp.clamp(flips[i].0, r.time_ns.max(flips[i].0));
                        finish(&mut flips, i, t);
                    }
                }
                _ => {}
            }
        }
        for (_, done, job) in &flips {
            if let (Some(done), Some(j)) = (done, job) {
                bound[*j] = bound[*j].min(done.time_ns);
            }
        }
        // In order: a job is done no later than any job after it.
        let mut later = u64::MAX;
        let mut jobs = Vec::with_capacity(bound.len());
        for i in (0..bound.len()).rev() {
            later = later.min(bound[i]);
            jobs.push(if later == u64::MAX {
                Done {
                    time_ns: end.max(submits[i]),
                    after_start: false,
                }
            } else {
                let time_ns = later.max(submits[i]);
                Done {
                    time_ns,
                    after_start: time_ns > submits[i],
                }
            });
        }
        jobs.reverse();
        let flips = flips
            .iter()
            .map(|&(start, done, _)| {
                done.unwrap_or(Done {
                    time_ns: end.max(start),
                    after_start: false,
                })
            })
            .collect();
        sched.jobs.push(jobs);
        sched.flips.push(flips);
        sched.end_ns.push(end);
    }
    sched
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

impl Model<'_> {
    fn warn(&mut self, text: String) {
        if self.out.warnings.len() < MAX_WARNINGS {
            self.out
                .warnings
                .push(format!("process {}: {text}", self.process));
        } else {
            self.dropped_warnings += 1;
        }
    }

    fn emit(&mut self, obj: usize, op: Op, source: Source) {
        let id = self.objs[obj].id;
        self.out.events.push(OutEvent {
            time_ns: self.now,
            op,
            id,
            source,
            process: self.process,
        });
    }

    fn create(&mut self, size: u64, kind: BoKind) -> usize {
        let n = self.objs.len();
        let id = bo_id(n as u32);
        let source = if kind.is_userspace() {
            Source::Measured
        } else {
            Source::Kernel
        };
        self.out.bos.push(BoInfo {
            id,
            size,
            kind,
            process: self.process,
            created_ns: self.now,
            destroyed_ns: None,
        });
        self.objs.push(Obj {
            id,
            info: self.out.bos.len() - 1,
            ..Obj::default()
        });
        self.emit(
            n,
            Op::Create {
                size,
                bin: kind == BoKind::KernelBin,
            },
            source,
        );
        n
    }

    fn maybe_destroy(&mut self, obj: usize) {
        let o = &self.objs[obj];
        if o.destroyed || o.referenced() {
            return;
        }
        if o.usecnt > 0 {
            self.objs[obj].usecnt = 0;
            self.emit(obj, Op::RemoveUsecnt, Source::FreeReset);
        }
        self.objs[obj].destroyed = true;
        self.emit(obj, Op::Destroy, Source::Model);
        let info = self.objs[obj].info;
        self.out.bos[info].destroyed_ns = Some(self.now);
        if self.bin == Some(obj) {
            self.bin = None;
        }
    }

    fn inc_usecnt(&mut self, obj: usize, source: Source) {
        if self.objs[obj].usecnt == 0 {
            self.emit(obj, Op::Use, Source::IncUsecnt);
            self.emit(obj, Op::AddUsecnt, source);
        }
        self.objs[obj].usecnt += 1;
    }

    fn dec_usecnt(&mut self, obj: usize, source: Source) {
        let o = &mut self.objs[obj];
        if o.usecnt == 0 {
            return;
        }
        o.usecnt -= 1;
        if o.usecnt == 0 {
            self.emit(obj, Op::RemoveUsecnt, source);
        }
    }

    fn bin_get(&mut self) -> usize {
        let bin = match self.bin {
            Some(b) => b,
            None => {
                let b = self.create(BIN_BO_SIZE, BoKind::KernelBin);
                self.bin = Some(b);
                b
            }
        };
        self.objs[bin].bin_users += 1;
        bin
    }

    fn bin_put(&mut self) {
        if let Some(b) = self.bin {
            self.objs[b].bin_users -= 1;
            self.maybe_destroy(b);
        }
    }

    fn proc(&mut self) -> &mut Proc {
        &mut self.procs[self.process]
    }

    fn drm_file(&mut self, fd: i32) -> Option<usize> {
        match self.proc().fds.get(&fd) {
            Some(FdRef::Drm(f)) => Some(*f),
            _ => None,
        }
    }

    fn lookup(&mut self, fd: i32, handle: u32, what: &str) -> Option<usize> {
        let found = self.drm_file(fd).and_then(|f| {
            self.procs[self.process].files[f]
                .handles
                .get(&handle)
                .copied()
        });
        if found.is_none() {
            self.warn(format!(
                "{what} of handle {handle} on fd {fd}, which the model does not know"
            ));
        }
        found
    }

    fn close_fd(&mut self, fd: i32) {
        let Some(r) = self.proc().fds.remove(&fd) else {
            return;
        };
        match r {
            FdRef::Drm(f) => {
                let file = &mut self.procs[self.process].files[f];
                file.fds -= 1;
                if file.fds == 0 {
                    self.release_file(f);
                }
            }
            FdRef::Dmabuf(d) => {
                self.dmabufs[d].fds -= 1;
                if self.dmabufs[d].fds == 0 {
                    let (obj, inode) = (self.dmabufs[d].obj, self.dmabufs[d].inode);
                    if inode != 0 && self.dmabuf_by_inode.get(&inode) == Some(&d) {
                        self.dmabuf_by_inode.remove(&inode);
                    }
                    self.objs[obj].dmabufs -= 1;
                    self.maybe_destroy(obj);
                }
            }
        }
    }

    /// The last fd of a DRM file closed: its framebuffers, then its GEM
    /// handles, then its hold on the binner BO (`drm_file_free` order).
    fn release_file(&mut self, f: usize) {
        let mut fb_ids: Vec<u32> = self
            .proc()
            .fbs
            .iter()
            .filter(|(_, fb)| fb.file == f && !fb.removed)
            .map(|(&id, _)| id)
            .collect();
        fb_ids.sort_unstable();
        for id in fb_ids {
            self.remove_fb(id);
        }
        let file = &mut self.procs[self.process].files[f];
        file.released = true;
        let mut handles: Vec<(u32, usize)> = file.handles.drain().collect();
        handles.sort_unstable();
        for (_, obj) in handles {
            self.objs[obj].handles -= 1;
            self.maybe_destroy(obj);
        }
        if std::mem::take(&mut self.procs[self.process].files[f].bin_used) {
            self.bin_put();
        }
    }

    fn fb_release_if_dead(&mut self, fb_id: u32) {
        let dead = self
            .proc()
            .fbs
            .get(&fb_id)
            .is_some_and(|fb| fb.removed && fb.scanning == 0);
        if dead {
            if let Some(fb) = self.proc().fbs.remove(&fb_id) {
                for obj in fb.objs {
                    self.objs[obj].fbs -= 1;
                    self.maybe_destroy(obj);
                }
            }
        }
    }

    /// `prepare_fb`: the framebuffer is about to be scanned out.
    fn scanout_begin(&mut self, fb_id: u32) -> bool {
        let Some(fb) = self.proc().fbs.get_mut(&fb_id) else {
            return false;
        };
        fb.scanning += 1;
        let first = fb.objs[0];
        self.objs[first].scanout += 1;
        self.inc_usecnt(first, Source::Scanout);
        true
    }

    /// `cleanup_fb`: the framebuffer has been replaced on screen.
    fn scanout_end(&mut self, fb_id: u32) {
        let Some(fb) = self.proc().fbs.get_mut(&fb_id) else {
            return;
        };
        fb.scanning -= 1;
        let first = fb.objs[0];
        self.dec_usecnt(first, Source::Scanout);
        self.objs[first].scanout -= 1;
        self.fb_release_if_dead(fb_id);
        self.maybe_destroy(first);
    }

    fn remove_fb(&mut self, fb_id: u32) {
        match self.proc().fbs.get_mut(&fb_id) {
            Some(fb) if !fb.removed => fb.removed = true,
            _ => return,
        }
        // Removing a framebuffer on screen switches its CRTC off.
        let mut crtcs: Vec<u32> = self
            .proc()
            .crtcs
            .iter()
            .filter(|(_, c)| c.shown == Some(fb_id))
            .map(|(&id, _)| id)
            .collect();
        crtcs.sort_unstable();
        for c in crtcs {
            if let Some(crtc) = self.proc().crtcs.get_mut(&c) {
                crtc.shown = None;
            }
            self.scanout_end(fb_id);
        }
        self.fb_release_if_dead(fb_id);
    }

    fn flip_done(&mut self, flip: u32) {
        let crtc = self
            .proc()
            .crtcs
            .iter()
            .find(|(_, c)| c.pending.is_some_and(|(_, k)| k == flip))
            .map(|(&id, _)| id);
        if let Some(c) = crtc {
            self.complete_flip(c);
        }
    }

    fn complete_flip(&mut self, crtc_id: u32) {
        let Some(crtc) = self.proc().crtcs.get_mut(&crtc_id) else {
            return;
        };
        let Some((new, _)) = crtc.pending.take() else {
            return;
        };
        let old = crtc.shown.replace(new);
        self.out.scanout_flips += 1;
        if let Some(old) = old {
            self.scanout_end(old);
        }
    }

    fn job_done(&mut self, j: usize) {
        let Some(job) = self.proc().jobs.get_mut(j).and_then(Option::take) else {
            return;
        };
        for &obj in &job.objs {
            self.dec_usecnt(obj, Source::Job);
            self.objs[obj].jobs -= 1;
            self.maybe_destroy(obj);
        }
        for &obj in &job.kernel {
            self.objs[obj].jobs -= 1;
            self.maybe_destroy(obj);
        }
        if job.uses_bin {
            self.bin_put();
        }
    }

    fn submit(&mut self, r: &Record, s: &Submit) {
        let mut objs = Vec::with_capacity(s.handles.len());
        for &h in &s.handles {
            if let Some(obj) = self.lookup(r.fd, h, "SUBMIT_CL") {
                objs.push(obj);
            }
        }
        // vc4_cl_lookup_bos: every entry of the BO list is counted.
        for &obj in &objs {
            self.inc_usecnt(obj, Source::Job);
            self.objs[obj].jobs += 1;
        }
        let mut kernel = Vec::new();
        let mut uses_bin = false;
        if self.opts.kernel_bos {
            if s.bin_cl_size != 0 {
                self.bin_get();
                uses_bin = true;
                let exec = self.create(round_up(exec_bo_bytes(s), self.page), BoKind::KernelBcl);
                kernel.push(exec);
            }
            let rcl = self.create(round_up(rcl_bo_bytes(s), self.page), BoKind::KernelRcl);
            kernel.push(rcl);
            for &k in &kernel {
                self.objs[k].jobs += 1;
            }
        }
        self.out.gpu_jobs += 1;
        self.proc().jobs.push(Some(Job {
            objs,
            kernel,
            uses_bin,
        }));
    }

    fn new_user_bo(&mut self, fd: i32, size: u64, handle: u32, kind: BoKind) {
        let Some(f) = self.drm_file(fd) else {
            self.warn(format!(
                "BO create on fd {fd}, which the model does not know as a DRM device"
            ));
            return;
        };
        if self.opts.kernel_bos
            && kind != BoKind::Dumb
            && !self.procs[self.process].files[f].bin_used
        {
            self.procs[self.process].files[f].bin_used = true;
            self.bin_get();
        }
        let obj = self.create(round_up(size.max(1), self.page), kind);
        self.objs[obj].handles += 1;
        if let Some(old) = self.procs[self.process].files[f]
            .handles
            .insert(handle, obj)
        {
            // A handle the model thought open was reused: it missed a close.
            self.warn(format!(
                "handle {handle} created again while the model had it open"
            ));
            self.objs[old].handles -= 1;
            self.maybe_destroy(old);
        }
    }

    fn record(&mut self, r: &Record, touch_file: bool) {
        if !r.ok() {
            return;
        }
        match &r.body {
            Body::Open { .. } => {
                self.close_fd(r.result);
                let p = self.proc();
                p.files.push(DrmFile {
                    fds: 1,
                    ..DrmFile::default()
                });
                let f = p.files.len() - 1;
                p.fds.insert(r.result, FdRef::Drm(f));
            }
            Body::Dup => {
                let Some(src) = self.proc().fds.get(&r.fd).copied() else {
                    return;
                };
                if r.result != r.fd {
                    self.close_fd(r.result);
                }
                match src {
                    FdRef::Drm(f) => self.procs[self.process].files[f].fds += 1,
                    FdRef::Dmabuf(d) => self.dmabufs[d].fds += 1,
                }
                self.proc().fds.insert(r.result, src);
            }
            Body::Close => self.close_fd(r.fd),
            Body::CreateBo { size, handle, .. } => {
                self.new_user_bo(r.fd, *size as u64, *handle, BoKind::V3d)
            }
            Body::CreateShaderBo { size, handle, .. } => {
                self.new_user_bo(r.fd, *size as u64, *handle, BoKind::V3dShader)
            }
            Body::CreateDumb { handle, size, .. } => {
                self.new_user_bo(r.fd, *size, *handle, BoKind::Dumb)
            }
            Body::GemClose { handle } | Body::DestroyDumb { handle } => {
                let Some(f) = self.drm_file(r.fd) else { return };
                match self.procs[self.process].files[f].handles.remove(handle) {
                    Some(obj) => {
                        self.objs[obj].handles -= 1;
                        self.maybe_destroy(obj);
                    }
                    None => self.warn(format!(
                        "GEM_CLOSE of handle {handle}, which the model does not know"
                    )),
                }
            }
            Body::MmapBo { handle, offset } => {
                if let Some(obj) = self.lookup(r.fd, *handle, "MMAP_BO") {
                    if let Some(f) = self.drm_file(r.fd) {
                        self.procs[self.process].files[f]
                            .offsets
                            .insert(*offset, obj);
                    }
                }
            }
            Body::Mmap {
                addr,
                len,
                offset,
                handle,
                ..
            } => {
                let by_offset = self.drm_file(r.fd).and_then(|f| {
                    self.procs[self.process].files[f]
                        .offsets
                        .get(offset)
                        .copied()
                });
                let obj = match by_offset {
                    Some(o) => Some(o),
                    None => self.lookup(r.fd, *handle, "mmap"),
                };
                let Some(obj) = obj else { return };
                self.unmap(*addr, *len);
                self.emit(obj, Op::Use, Source::Mmap);
                self.objs[obj].maps += 1;
                self.proc().maps.insert(*addr, (*len, obj));
            }
            Body::Munmap { addr, len } => self.unmap(*addr, *len),
            Body::Madvise { handle, madv, .. } => {
                if let Some(obj) = self.lookup(r.fd, *handle, "GEM_MADVISE") {
                    match *madv {
                        VC4_MADV_WILLNEED => {
                            self.emit(obj, Op::Madv { willneed: true }, Source::Measured)
                        }
                        VC4_MADV_DONTNEED => {
                            self.emit(obj, Op::Madv { willneed: false }, Source::Measured)
                        }
                        other => self.warn(format!("GEM_MADVISE with advice {other}")),
                    }
                }
            }
            Body::SubmitCl(s) => self.submit(r, s),
            Body::PrimeExport {
                handle,
                dmabuf_fd,
                inode,
                ..
            } => {
                let Some(obj) = self.lookup(r.fd, *handle, "PRIME_HANDLE_TO_FD") else {
                    return;
                };
                self.close_fd(*dmabuf_fd);
                let live = (*inode != 0)
                    .then(|| self.dmabuf_by_inode.get(inode).copied())
                    .flatten();
                let d = match live {
                    Some(d) => {
                        self.dmabufs[d].fds += 1;
                        d
                    }
                    None => {
                        self.dmabufs.push(Dmabuf {
                            obj,
                            fds: 1,
                            inode: *inode,
                        });
                        let d = self.dmabufs.len() - 1;
                        if *inode != 0 {
                            self.dmabuf_by_inode.insert(*inode, d);
                        }
                        self.objs[obj].dmabufs += 1;
                        // vc4_prime_export takes a usecnt it never gives back.
                        self.inc_usecnt(obj, Source::PrimeExport);
                        d
                    }
                };
                self.proc().fds.insert(*dmabuf_fd, FdRef::Dmabuf(d));
            }
            Body::PrimeImport {
                dmabuf_fd,
                handle,
                inode,
            } => {
                let d = match self.proc().fds.get(dmabuf_fd) {
                    Some(FdRef::Dmabuf(d)) => Some(*d),
                    _ => (*inode != 0)
                        .then(|| self.dmabuf_by_inode.get(inode).copied())
                        .flatten(),
                };
                let Some(d) = d else {
                    self.warn(format!("import of dma-buf fd {dmabuf_fd} from outside the recording: its BO is not in the trace"));
                    return;
                };
                let obj = self.dmabufs[d].obj;
                // A dma-buf fd received from elsewhere: its close is recorded from now on.
                if !self.proc().fds.contains_key(dmabuf_fd) {
                    self.dmabufs[d].fds += 1;
                    self.proc().fds.insert(*dmabuf_fd, FdRef::Dmabuf(d));
                }
                let Some(f) = self.drm_file(r.fd) else { return };
                let file = &mut self.procs[self.process].files[f];
                match file.handles.get(handle) {
                    Some(&o) if o == obj => {}
                    Some(_) => self.warn(format!(
                        "import returned handle {handle}, open for another BO"
                    )),
                    None => {
                        file.handles.insert(*handle, obj);
                        self.objs[obj].handles += 1;
                    }
                }
            }
            Body::AddFb { fb_id, handles, .. } => {
                let Some(f) = self.drm_file(r.fd) else { return };
                let mut objs = Vec::new();
                for (i, &h) in handles.iter().enumerate() {
                    if h == 0 && i > 0 {
                        continue;
                    }
                    if let Some(obj) = self.lookup(r.fd, h, "ADDFB") {
                        if !objs.contains(&obj) {
                            objs.push(obj);
                        }
                    }
                }
                if objs.is_empty() {
                    return;
                }
                for &obj in &objs {
                    self.objs[obj].fbs += 1;
                }
                self.proc().fbs.insert(
                    *fb_id,
                    Fb {
                        file: f,
                        objs,
                        removed: false,
                        scanning: 0,
                    },
                );
            }
            Body::RmFb { fb_id } => self.remove_fb(*fb_id),
            Body::SetCrtc { crtc_id, fb_id } => {
                let shown = *fb_id != 0 && self.scanout_begin(*fb_id);
                let crtc = self.proc().crtcs.entry(*crtc_id).or_default();
                let old = if shown {
                    crtc.shown.replace(*fb_id)
                } else {
                    crtc.shown.take()
                };
                if shown {
                    self.out.scanout_flips += 1;
                }
                if let Some(old) = old {
                    self.scanout_end(old);
                }
            }
            Body::PageFlip { crtc_id, fb_id, .. } => {
                let k = self.proc().flips;
                self.proc().flips += 1;
                if self.scanout_begin(*fb_id) {
                    self.proc().crtcs.entry(*crtc_id).or_default().pending = Some((*fb_id, k));
                } else {
                    self.warn(format!(
                        "PAGE_FLIP to framebuffer {fb_id}, which the model does not know"
                    ));
                }
            }
            Body::Touch { map_addr, .. } => {
                if !(self.opts.touch && touch_file) {
                    return;
                }
                match self.proc().maps.get(map_addr).map(|&(_, o)| o) {
                    Some(obj) => self.emit(obj, Op::Use, Source::CpuTouch),
                    None => self.warn(format!(
                        "touch of a mapping at {map_addr:#x} the model does not know"
                    )),
                }
            }
            Body::Note { text } => {
                let text = String::from_utf8_lossy(text).into_owned();
                self.warn(format!("recorder: {text}"));
            }
            Body::WaitSeqno { .. } | Body::WaitBo { .. } | Body::FlipEvent { .. } | Body::Exit => {}
        }
    }

    fn unmap(&mut self, addr: u64, len: u64) {
        let end = addr.saturating_add(len);
        let hit: Vec<u64> = self
            .proc()
            .maps
            .range(..end)
            .filter(|(&a, &(l, _))| a.saturating_add(l) > addr)
            .map(|(&a, _)| a)
            .collect();
        for a in hit {
            if let Some((_, obj)) = self.proc().maps.remove(&a) {
                self.objs[obj].maps -= 1;
                self.maybe_destroy(obj);
            }
        }
    }

    /// The process is gone: its mappings go first (exit_mm), then its fds (exit_files).
    fn end_process(&mut self) {
        self.unmap(0, u64::MAX);
        let mut fds: Vec<i32> = self.proc().fds.keys().copied().collect();
        fds.sort_unstable();
        for fd in fds {
            self.close_fd(fd);
        }
    }
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
