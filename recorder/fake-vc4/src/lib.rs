//! `libfake_vc4.so`: a vc4 DRM device in a preload library, so the recorder
//! can be tested without a Raspberry Pi.
//!
//! Two modes:
//!
//! - **standalone** (default): `open` of `$FAKE_VC4_PATH` (default
//!   `/dev/dri/card0`) returns a new open file of one memfd that holds every
//!   BO, so `mmap` of a BO's offset is real shared memory served by the
//!   kernel. The fake answers the vc4 ioctls the way the kernel does: handles
//!   per open file from 1, sizes rounded up to pages, `EINVAL`/`ENOENT` for
//!   unknown handles, jobs that complete `$FAKE_VC4_JOB_US` (default 2000) µs
//!   after the previous one, `WAIT_*` that sleep or fail with `ETIME`,
//!   madvise always "retained", PRIME export/import within the process, and
//!   a single-CRTC KMS device (1920x1080@60) whose flips complete at the
//!   next vblank after the buffer's last job, with events read from the fd.
//! - **over a drm-shim** (`FAKE_VC4_OVER_SHIM=1`, loaded in front of Mesa's
//!   `libvc4_noop_drm_shim.so`): the shim provides the render node, its
//!   sysfs files, `CREATE_BO`, `MMAP_BO`, `GEM_CLOSE` and mmap; the fake adds
//!   what the noop shim lacks (jobs, waits, madvise, shader BOs, tiling,
//!   PRIME, KMS) and opens the shim's node for `/dev/dri/card0`.
//!
//! `FAKE_VC4_FAIL_IOCTL=NR` makes every ioctl with that `_IOC_NR` fail with
//! EINVAL (to test that failures pass through the recorder unchanged).

use capture::uapi::{self, ioctl as nr};
use libc::{c_char, c_int, c_ulong, c_void, mode_t, size_t, ssize_t};
use std::collections::{HashMap, VecDeque};
use std::ffi::CStr;
use std::sync::{Mutex, MutexGuard, OnceLock};

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
type DupFn = unsafe extern "C" fn(c_int) -> c_int;
type Dup2Fn = unsafe extern "C" fn(c_int, c_int) -> c_int;
type Dup3Fn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type FcntlFn = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;
type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;
type ReadFn = unsafe extern "C" fn(c_int, *mut c_void, size_t) -> ssize_t;
type MmapFn =
    unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, libc::off_t) -> *mut c_void;
type MunmapFn = unsafe extern "C" fn(*mut c_void, size_t) -> c_int;

struct Next {
    open: OpenFn,
    open64: OpenFn,
    openat: OpenatFn,
    close: CloseFn,
    dup: DupFn,
    dup2: Dup2Fn,
    dup3: Dup3Fn,
    fcntl: FcntlFn,
    fcntl64: FcntlFn,
    ioctl: IoctlFn,
    read: ReadFn,
    mmap: MmapFn,
    munmap: MunmapFn,
}

/// # Safety
///
/// `F` must match the C prototype of `name`.
unsafe fn next_fn<F: Copy>(name: &[u8]) -> F {
    // SAFETY: `name` is NUL-terminated.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if p.is_null() {
        let msg = b"fake-vc4: a libc function is missing\n";
        // SAFETY: writing a message to stderr before giving up.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::abort();
        }
    }
    // SAFETY: F is a function pointer type matching the symbol (caller's contract).
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) }
}

fn next() -> &'static Next {
    static NEXT: OnceLock<Next> = OnceLock::new();
    // SAFETY: every type matches glibc's prototype of the function.
    NEXT.get_or_init(|| unsafe {
        Next {
            open: next_fn(b"open\0"),
            open64: next_fn(b"open64\0"),
            openat: next_fn(b"openat\0"),
            close: next_fn(b"close\0"),
            dup: next_fn(b"dup\0"),
            dup2: next_fn(b"dup2\0"),
            dup3: next_fn(b"dup3\0"),
            fcntl: next_fn(b"fcntl\0"),
            fcntl64: next_fn(b"fcntl64\0"),
            ioctl: next_fn(b"ioctl\0"),
            read: next_fn(b"read\0"),
            mmap: next_fn(b"mmap\0"),
            munmap: next_fn(b"munmap\0"),
        }
    })
}

fn set_errno(v: c_int) {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() = v }
}

fn errno() -> c_int {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sleep_until(t: u64) {
    let now = now_ns();
    if t > now {
        let d = t - now;
        let ts = libc::timespec {
            tv_sec: (d / 1_000_000_000) as _,
            tv_nsec: (d % 1_000_000_000) as _,
        };
        // SAFETY: valid timespec; an early wake-up just returns sooner.
        unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
    }
}

const PAGE: u64 = 4096;
const VBLANK_NS: u64 = 16_666_667;
const CRTC: u32 = 31;
const CONNECTOR: u32 = 32;
const ENCODER: u32 = 33;

struct Bo {
    size: u64,
    /// Where the BO lives in the device memfd (standalone mode).
    offset: u64,
    last_seqno: u64,
    modifier: u64,
    /// Open files' handles, plus dma-bufs, on this BO.
    refs: u32,
    /// The dma-buf fd the fake keeps for this BO once exported.
    dmabuf: Option<c_int>,
    /// Over the shim: the shim's handle of an exported BO whose handles were
    /// all closed; the shim keeps the memory, the import gets the handle back.
    parked: Option<(usize, u32)>,
}

#[derive(Default)]
struct File {
    handles: HashMap<u32, usize>,
    events: VecDeque<(u64, uapi::EventVblank)>,
    nonblocking: bool,
}

struct Fb {
    bo: Option<usize>,
}

struct Device {
    shim: bool,
    memfd: c_int,
    memfd_end: u64,
    bos: Vec<Bo>,
    files: Vec<File>,
    /// fd -> file (dups share).
    fds: HashMap<c_int, usize>,
    dmabufs: HashMap<u64, usize>,
    next_seqno: u64,
    jobs: Vec<u64>,
    last_done: u64,
    job_ns: u64,
    fbs: HashMap<u32, Fb>,
    next_fb: u32,
    flip_pending: bool,
    epoch: u64,
    vblank_seq: u32,
    fail_nr: Option<u8>,
}

fn device() -> MutexGuard<'static, Device> {
    static DEVICE: OnceLock<Mutex<Device>> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let env = |k: &str| std::env::var(k).ok();
            Mutex::new(Device {
                shim: env("FAKE_VC4_OVER_SHIM").is_some_and(|v| v == "1"),
                memfd: -1,
                memfd_end: PAGE,
                bos: Vec::new(),
                files: Vec::new(),
                fds: HashMap::new(),
                dmabufs: HashMap::new(),
                next_seqno: 1,
                jobs: Vec::new(),
                last_done: 0,
                job_ns: env("FAKE_VC4_JOB_US")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(2000)
                    * 1000,
                fbs: HashMap::new(),
                next_fb: 40,
                flip_pending: false,
                epoch: now_ns(),
                vblank_seq: 0,
                fail_nr: env("FAKE_VC4_FAIL_IOCTL").and_then(|v| {
                    let v = v.trim_start_matches("0x");
                    u8::from_str_radix(v, 16).ok()
                }),
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn fake_path() -> Vec<u8> {
    std::env::var("FAKE_VC4_PATH")
        .unwrap_or_else(|_| "/dev/dri/card0".into())
        .into_bytes()
}

fn shim_node() -> Vec<u8> {
    let mut p = std::env::var("FAKE_VC4_SHIM_NODE")
        .unwrap_or_else(|_| "/dev/dri/renderD128".into())
        .into_bytes();
    p.push(0);
    p
}

/// What an `open` of `path` should do.
enum OpenKind {
    Pass,
    /// The fake's own device (standalone mode).
    Own,
    /// The shim's render node, in place of `path` when `redirect`.
    Shim {
        redirect: bool,
    },
}

fn classify(path: *const c_char) -> OpenKind {
    if path.is_null() {
        return OpenKind::Pass;
    }
    // SAFETY: the program's NUL-terminated path.
    let p = unsafe { CStr::from_ptr(path) }.to_bytes();
    let shim = device().shim;
    if shim {
        if p == fake_path() {
            OpenKind::Shim { redirect: true }
        } else if p.starts_with(b"/dev/dri/renderD") {
            OpenKind::Shim { redirect: false }
        } else {
            OpenKind::Pass
        }
    } else if p == fake_path() {
        OpenKind::Own
    } else {
        OpenKind::Pass
    }
}

fn open_own(flags: c_int) -> c_int {
    let mut d = device();
    if d.memfd < 0 {
        // SAFETY: memfd_create with a static name.
        d.memfd = unsafe { libc::memfd_create(c"fake-vc4".as_ptr(), libc::MFD_CLOEXEC) };
        if d.memfd < 0 {
            return -1;
        }
    }
    // A new open file of the same memory: BO offsets mean the same on every fd.
    let path = format!("/proc/self/fd/{}\0", d.memfd);
    // SAFETY: NUL-terminated path.
    let fd = unsafe {
        (next().open)(
            path.as_ptr().cast(),
            libc::O_RDWR | (flags & libc::O_CLOEXEC),
        )
    };
    if fd >= 0 {
        register(&mut d, fd, flags);
    }
    fd
}

fn register(d: &mut Device, fd: c_int, flags: c_int) {
    d.files.push(File {
        nonblocking: flags & libc::O_NONBLOCK != 0,
        ..File::default()
    });
    let f = d.files.len() - 1;
    d.fds.insert(fd, f);
}

fn do_open(
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
    via: impl Fn(*const c_char) -> c_int,
) -> c_int {
    let _ = mode;
    match classify(path) {
        OpenKind::Pass => via(path),
        OpenKind::Own => open_own(flags),
        OpenKind::Shim { redirect } => {
            let node = shim_node();
            let fd = via(if redirect { node.as_ptr().cast() } else { path });
            if fd >= 0 {
                register(&mut device(), fd, flags);
            }
            fd
        }
    }
}

/// `open(2)`.
///
/// # Safety
///
/// As libc's `open`.
#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: the next open with the program's arguments.
    do_open(path, flags, mode, |p| unsafe {
        (next().open)(p, flags, mode)
    })
}

/// `open64(2)`.
///
/// # Safety
///
/// As libc's `open64`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: the next open64 with the program's arguments.
    do_open(path, flags, mode, |p| unsafe {
        (next().open64)(p, flags, mode)
    })
}

/// `openat(2)`.
///
/// # Safety
///
/// As libc's `openat`.
#[no_mangle]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // SAFETY: the next openat with the program's arguments.
    do_open(path, flags, mode, |p| unsafe {
        (next().openat)(dirfd, p, flags, mode)
    })
}

/// `close(2)`.
///
/// # Safety
///
/// As libc's `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // SAFETY: the next close.
    let r = unsafe { (next().close)(fd) };
    if r == 0 {
        let saved = errno();
        let mut d = device();
        if let Some(f) = d.fds.remove(&fd) {
            if !d.fds.values().any(|&g| g == f) {
                release_file(&mut d, f);
            }
        }
        set_errno(saved);
    }
    r
}

fn release_file(d: &mut Device, f: usize) {
    let handles: Vec<usize> = d.files[f].handles.drain().map(|(_, b)| b).collect();
    for b in handles {
        unref(d, b);
    }
    d.files[f].events.clear();
}

fn unref(d: &mut Device, b: usize) {
    let bo = &mut d.bos[b];
    bo.refs = bo.refs.saturating_sub(1);
    if bo.refs == 0 && !d.shim && d.memfd >= 0 {
        // Give the memory back, as freeing a BO does.
        let (off, size) = (bo.offset, bo.size);
        // SAFETY: punching a hole in our own memfd.
        unsafe {
            libc::fallocate(
                d.memfd,
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as i64,
                size as i64,
            )
        };
    }
}

fn duped(old: c_int, new: c_int) {
    if new < 0 {
        return;
    }
    let saved = errno();
    let mut d = device();
    if let Some(&f) = d.fds.get(&old) {
        d.fds.insert(new, f);
    }
    set_errno(saved);
}

fn replaced(new: c_int) {
    let mut d = device();
    if let Some(f) = d.fds.remove(&new) {
        if !d.fds.values().any(|&g| g == f) {
            release_file(&mut d, f);
        }
    }
}

/// `dup(2)`.
///
/// # Safety
///
/// As libc's `dup`.
#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: the next dup.
    let r = unsafe { (next().dup)(fd) };
    duped(fd, r);
    r
}

/// `dup2(2)`.
///
/// # Safety
///
/// As libc's `dup2`.
#[no_mangle]
pub unsafe extern "C" fn dup2(fd: c_int, new: c_int) -> c_int {
    // SAFETY: the next dup2.
    let r = unsafe { (next().dup2)(fd, new) };
    if r >= 0 && fd != new {
        replaced(new);
        duped(fd, r);
    }
    r
}

/// `dup3(2)`.
///
/// # Safety
///
/// As libc's `dup3`.
#[no_mangle]
pub unsafe extern "C" fn dup3(fd: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: the next dup3.
    let r = unsafe { (next().dup3)(fd, new, flags) };
    if r >= 0 {
        replaced(new);
        duped(fd, r);
    }
    r
}

/// `fcntl(2)`.
///
/// # Safety
///
/// As libc's `fcntl`.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: the next fcntl with the program's word-sized argument.
    let r = unsafe { (next().fcntl)(fd, cmd, arg) };
    if cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC {
        duped(fd, r);
    }
    r
}

/// `fcntl64`, what `fcntl` is with 64-bit file offsets (Mesa's builds).
///
/// # Safety
///
/// As libc's `fcntl64`.
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: the next fcntl64 with the program's word-sized argument.
    let r = unsafe { (next().fcntl64)(fd, cmd, arg) };
    if cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC {
        duped(fd, r);
    }
    r
}

/// A result or an errno.
type Answer = Result<c_int, c_int>;

/// # Safety
///
/// `p` points to a readable and writable `T`.
unsafe fn io<T: Copy>(p: *mut c_void) -> T {
    // SAFETY: the caller's contract.
    unsafe { std::ptr::read_unaligned(p.cast::<T>()) }
}

/// # Safety
///
/// As [`io`].
unsafe fn put<T: Copy>(p: *mut c_void, v: T) {
    // SAFETY: the caller's contract.
    unsafe { std::ptr::write_unaligned(p.cast::<T>(), v) }
}

fn next_ioctl(fd: c_int, req: c_ulong, p: *mut c_void) -> Answer {
    // SAFETY: forwarding to the next ioctl (the shim's or libc's).
    let r = unsafe { (next().ioctl)(fd, req, p) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// A new handle, the lowest free one from 1 (as the kernel's idr gives them).
fn new_handle(d: &mut Device, f: usize, bo: usize) -> u32 {
    let file = &mut d.files[f];
    let h = (1..)
        .find(|h| !file.handles.contains_key(h))
        .unwrap_or(u32::MAX);
    file.handles.insert(h, bo);
    d.bos[bo].refs += 1;
    h
}

fn new_bo(d: &mut Device, size: u64) -> Result<usize, c_int> {
    if size == 0 {
        return Err(libc::EINVAL);
    }
    let size = size.div_ceil(PAGE) * PAGE;
    let offset = d.memfd_end;
    if !d.shim {
        // SAFETY: growing our own memfd (sparse).
        if unsafe { libc::ftruncate(d.memfd, (offset + size) as i64) } != 0 {
            return Err(libc::ENOMEM);
        }
        d.memfd_end += size;
    }
    d.bos.push(Bo {
        size,
        offset,
        last_seqno: 0,
        modifier: 0,
        refs: 0,
        dmabuf: None,
        parked: None,
    });
    Ok(d.bos.len() - 1)
}

fn bo_of(d: &Device, f: usize, handle: u32) -> Result<usize, c_int> {
    d.files[f].handles.get(&handle).copied().ok_or(libc::EINVAL)
}

fn seqno_done_at(d: &Device, seqno: u64) -> u64 {
    match seqno.checked_sub(1).and_then(|i| d.jobs.get(i as usize)) {
        Some(&t) => t,
        None => 0,
    }
}

/// Waits (without the device lock) for `seqno`, as `vc4_wait_for_seqno`.
fn wait_seqno(seqno: u64, timeout_ns: u64) -> Answer {
    let done = seqno_done_at(&device(), seqno);
    let now = now_ns();
    if done <= now {
        return Ok(0);
    }
    if timeout_ns == 0 {
        return Err(libc::ETIME);
    }
    let deadline = now.saturating_add(timeout_ns);
    sleep_until(done.min(deadline));
    if now_ns() >= done {
        Ok(0)
    } else {
        Err(libc::ETIME)
    }
}

fn handle_ioctl(fd: c_int, f: usize, request: c_ulong, p: *mut c_void) -> Answer {
    let Ok(req) = u32::try_from(request) else {
        return next_ioctl(fd, request, p);
    };
    let shim = device().shim;
    if device().fail_nr == Some(uapi::ioc_nr(req)) {
        return Err(libc::EINVAL);
    }
    if p.is_null() && !matches!(req, nr::SET_MASTER | nr::DROP_MASTER) {
        return Err(libc::EFAULT);
    }
    match req {
        nr::VC4_CREATE_BO if shim => {
            let r = next_ioctl(fd, request, p)?;
            // SAFETY: `p` is the program's struct for this request.
            let a: uapi::Vc4CreateBo = unsafe { io(p) };
            let mut d = device();
            let b = new_bo(&mut d, a.size as u64)?;
            d.bos[b].refs += 1;
            d.files[f].handles.insert(a.handle, b);
            Ok(r)
        }
        nr::VC4_CREATE_BO => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::Vc4CreateBo = unsafe { io(p) };
            let mut d = device();
            let b = new_bo(&mut d, a.size as u64)?;
            a.handle = new_handle(&mut d, f, b);
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::VC4_CREATE_SHADER_BO => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::Vc4CreateShaderBo = unsafe { io(p) };
            if a.size == 0 || !a.size.is_multiple_of(8) || a.data == 0 {
                return Err(libc::EINVAL);
            }
            // SAFETY: the program passes `size` bytes of shader code at `data`.
            let code = unsafe {
                std::slice::from_raw_parts(a.data as usize as *const u8, a.size as usize)
            };
            if shim {
                a.handle = shim_shader_bo(fd, f, code)?;
            } else {
                let mut d = device();
                let b = new_bo(&mut d, a.size as u64)?;
                let off = d.bos[b].offset;
                // SAFETY: writing the code into the BO's pages of our memfd.
                unsafe { libc::pwrite(d.memfd, code.as_ptr().cast(), code.len(), off as i64) };
                a.handle = new_handle(&mut d, f, b);
            }
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::GEM_CLOSE => {
            // SAFETY: `p` is the program's struct for this request.
            let a: uapi::GemClose = unsafe { io(p) };
            if shim {
                let mut d = device();
                if let Some(&b) = d.files[f].handles.get(&a.handle) {
                    if d.bos[b].dmabuf.is_some() {
                        // The dma-buf keeps the BO: park the shim's handle instead of freeing it.
                        d.files[f].handles.remove(&a.handle);
                        d.bos[b].parked = Some((f, a.handle));
                        unref(&mut d, b);
                        return Ok(0);
                    }
                }
            }
            let r = if shim { next_ioctl(fd, request, p)? } else { 0 };
            let mut d = device();
            match d.files[f].handles.remove(&a.handle) {
                Some(b) => {
                    unref(&mut d, b);
                    Ok(r)
                }
                None if shim => Ok(r),
                None => Err(libc::EINVAL),
            }
        }
        nr::VC4_MMAP_BO if shim => next_ioctl(fd, request, p),
        nr::VC4_MMAP_BO => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::Vc4MmapBo = unsafe { io(p) };
            let d = device();
            a.offset = d.bos[bo_of(&d, f, a.handle)?].offset;
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::VC4_GET_PARAM => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::Vc4GetParam = unsafe { io(p) };
            a.value = match a.param {
                // "V3D" and technology version 2, as VideoCore IV reports.
                uapi::param::V3D_IDENT0 => 0x0244_3356,
                uapi::param::V3D_IDENT1 => 0x0000_0001,
                uapi::param::V3D_IDENT2 => 0,
                uapi::param::SUPPORTS_BRANCHES
                | uapi::param::SUPPORTS_ETC1
                | uapi::param::SUPPORTS_THREADED_FS
                | uapi::param::SUPPORTS_FIXED_RCL_ORDER
                | uapi::param::SUPPORTS_MADVISE => 1,
                uapi::param::SUPPORTS_PERFMON => 0,
                _ => return Err(libc::EINVAL),
            };
            if shim && matches!(a.param, uapi::param::V3D_IDENT0 | uapi::param::V3D_IDENT1) {
                return next_ioctl(fd, request, p);
            }
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::VC4_SET_TILING | nr::VC4_GET_TILING => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::Vc4Tiling = unsafe { io(p) };
            let mut d = device();
            let b = bo_of(&d, f, a.handle)?;
            if req == nr::VC4_SET_TILING {
                d.bos[b].modifier = a.modifier;
            } else {
                a.modifier = d.bos[b].modifier;
                // SAFETY: `p` is the program's struct for this request.
                unsafe { put(p, a) };
            }
            Ok(0)
        }
        nr::VC4_LABEL_BO => Ok(0),
        nr::VC4_GEM_MADVISE => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::Vc4GemMadvise = unsafe { io(p) };
            if a.madv != uapi::VC4_MADV_WILLNEED && a.madv != uapi::VC4_MADV_DONTNEED {
                return Err(libc::EINVAL);
            }
            bo_of(&device(), f, a.handle).map_err(|_| libc::ENOENT)?;
            // No memory pressure here: never purged.
            a.retained = 1;
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::VC4_SUBMIT_CL => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::Vc4SubmitCl = unsafe { io(p) };
            if a.bo_handle_count > 0 && a.bo_handles == 0 {
                return Err(libc::EFAULT);
            }
            // SAFETY: the program passes bo_handle_count handles there.
            let handles = unsafe {
                std::slice::from_raw_parts(
                    a.bo_handles as usize as *const u32,
                    a.bo_handle_count as usize,
                )
            };
            let mut d = device();
            let bos: Result<Vec<usize>, c_int> = handles
                .iter()
                .map(|&h| d.files[f].handles.get(&h).copied().ok_or(libc::ENOENT))
                .collect();
            let bos = bos?;
            let seqno = d.next_seqno;
            d.next_seqno += 1;
            let done = d.last_done.max(now_ns()) + d.job_ns;
            d.last_done = done;
            d.jobs.push(done);
            for b in bos {
                d.bos[b].last_seqno = seqno;
            }
            a.seqno = seqno;
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::VC4_WAIT_SEQNO => {
            // SAFETY: `p` is the program's struct for this request.
            let a: uapi::Vc4WaitSeqno = unsafe { io(p) };
            wait_seqno(a.seqno, a.timeout_ns)
        }
        nr::VC4_WAIT_BO => {
            // SAFETY: `p` is the program's struct for this request.
            let a: uapi::Vc4WaitBo = unsafe { io(p) };
            let seqno = {
                let d = device();
                d.bos[bo_of(&d, f, a.handle)?].last_seqno
            };
            wait_seqno(seqno, a.timeout_ns)
        }
        nr::PRIME_HANDLE_TO_FD => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::PrimeHandle = unsafe { io(p) };
            let mut d = device();
            let b = bo_of(&d, f, a.handle).map_err(|_| libc::ENOENT)?;
            let keep = match d.bos[b].dmabuf {
                Some(fd) => fd,
                None => {
                    // SAFETY: memfd_create with a static name.
                    let m = unsafe {
                        libc::memfd_create(c"fake-vc4-dmabuf".as_ptr(), libc::MFD_CLOEXEC)
                    };
                    if m < 0 {
                        return Err(errno());
                    }
                    // A dma-buf's size is what lseek(fd, 0, SEEK_END) says (Mesa asks).
                    // SAFETY: sizing our own memfd (sparse).
                    unsafe { libc::ftruncate(m, d.bos[b].size as i64) };
                    // SAFETY: `p` is the program's struct for this request.
                    let mut st: libc::stat = unsafe { std::mem::zeroed() };
                    // SAFETY: valid stat pointer.
                    unsafe { libc::fstat(m, &mut st) };
                    d.dmabufs.insert(st.st_ino as u64, b);
                    d.bos[b].dmabuf = Some(m);
                    d.bos[b].refs += 1;
                    m
                }
            };
            let cloexec = a.flags & libc::O_CLOEXEC as u32 != 0;
            // SAFETY: a new fd for the BO's dma-buf.
            let new = unsafe {
                (next().fcntl)(
                    keep,
                    if cloexec {
                        libc::F_DUPFD_CLOEXEC
                    } else {
                        libc::F_DUPFD
                    },
                    0,
                )
            };
            if new < 0 {
                return Err(errno());
            }
            a.fd = new;
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::PRIME_FD_TO_HANDLE => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::PrimeHandle = unsafe { io(p) };
            // SAFETY: `p` is the program's struct for this request.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: valid stat pointer.
            if unsafe { libc::fstat(a.fd, &mut st) } != 0 {
                return Err(libc::EBADF);
            }
            let mut d = device();
            let b = *d.dmabufs.get(&(st.st_ino as u64)).ok_or(libc::EINVAL)?;
            let existing = d.files[f]
                .handles
                .iter()
                .find(|(_, &bo)| bo == b)
                .map(|(&h, _)| h);
            a.handle = match (existing, d.bos[b].parked) {
                (Some(h), _) => h,
                (None, Some((pf, h)))
                    if shim && pf == f && !d.files[f].handles.contains_key(&h) =>
                {
                    d.files[f].handles.insert(h, b);
                    d.bos[b].refs += 1;
                    d.bos[b].parked = None;
                    h
                }
                (None, _) if shim => return Err(libc::EINVAL),
                (None, _) => new_handle(&mut d, f, b),
            };
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::GET_CAP => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::GetCap = unsafe { io(p) };
            a.value = match a.capability {
                uapi::cap::DUMB_BUFFER => 1,
                uapi::cap::PRIME => 3,
                uapi::cap::TIMESTAMP_MONOTONIC => 1,
                uapi::cap::VBLANK_HIGH_CRTC => 1,
                uapi::cap::DUMB_PREFERRED_DEPTH => 24,
                uapi::cap::DUMB_PREFER_SHADOW => 0,
                uapi::cap::ASYNC_PAGE_FLIP => 0,
                uapi::cap::CURSOR_WIDTH | uapi::cap::CURSOR_HEIGHT => 64,
                uapi::cap::ADDFB2_MODIFIERS => 0,
                uapi::cap::SYNCOBJ => 0,
                _ if shim => return next_ioctl(fd, request, p),
                _ => return Err(libc::EINVAL),
            };
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::SET_CLIENT_CAP => Ok(0),
        nr::SET_MASTER | nr::DROP_MASTER => Ok(0),
        nr::VERSION if !shim => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::Version = unsafe { io(p) };
            let name = b"vc4";
            if !a.name.is_null() && a.name_len > 0 {
                let n = name.len().min(a.name_len);
                // SAFETY: the program's buffer of name_len bytes.
                unsafe { std::ptr::copy_nonoverlapping(name.as_ptr(), a.name, n) };
            }
            a.name_len = name.len();
            a.date_len = 0;
            a.desc_len = 0;
            a.version_major = 0;
            a.version_minor = 0;
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::MODE_GETRESOURCES => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::ModeCardRes = unsafe { io(p) };
            // SAFETY: the arrays are the program's, of the counts it passed.
            unsafe {
                if a.count_crtcs >= 1 && a.crtc_id_ptr != 0 {
                    put(a.crtc_id_ptr as usize as *mut c_void, CRTC);
                }
                if a.count_connectors >= 1 && a.connector_id_ptr != 0 {
                    put(a.connector_id_ptr as usize as *mut c_void, CONNECTOR);
                }
                if a.count_encoders >= 1 && a.encoder_id_ptr != 0 {
                    put(a.encoder_id_ptr as usize as *mut c_void, ENCODER);
                }
            }
            a.count_fbs = 0;
            a.count_crtcs = 1;
            a.count_connectors = 1;
            a.count_encoders = 1;
            (a.min_width, a.max_width, a.min_height, a.max_height) = (1, 2048, 1, 2048);
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::MODE_GETCONNECTOR => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::ModeGetConnector = unsafe { io(p) };
            if a.connector_id != CONNECTOR {
                return Err(libc::ENOENT);
            }
            // SAFETY: the program's arrays, of the counts it passed.
            unsafe {
                if a.count_modes >= 1 && a.modes_ptr != 0 {
                    put(a.modes_ptr as usize as *mut c_void, mode_1080p());
                }
                if a.count_encoders >= 1 && a.encoders_ptr != 0 {
                    put(a.encoders_ptr as usize as *mut c_void, ENCODER);
                }
            }
            a.count_modes = 1;
            a.count_encoders = 1;
            a.count_props = 0;
            a.encoder_id = ENCODER;
            a.connector_type = 11; // DRM_MODE_CONNECTOR_HDMIA
            a.connector_type_id = 1;
            a.connection = 1; // connected
            (a.mm_width, a.mm_height) = (520, 290);
            a.subpixel = 1;
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::MODE_GETENCODER => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::ModeGetEncoder = unsafe { io(p) };
            if a.encoder_id != ENCODER {
                return Err(libc::ENOENT);
            }
            a.encoder_type = 2; // DRM_MODE_ENCODER_TMDS
            a.crtc_id = CRTC;
            a.possible_crtcs = 1;
            a.possible_clones = 0;
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::MODE_GETCRTC => {
            // SAFETY: `p` is the program's struct for this request.
            let mut a: uapi::ModeCrtc = unsafe { io(p) };
            if a.crtc_id != CRTC {
                return Err(libc::ENOENT);
            }
            a.mode = mode_1080p();
            a.mode_valid = 1;
            a.gamma_size = 256;
            // SAFETY: `p` is the program's struct for this request.
            unsafe { put(p, a) };
            Ok(0)
        }
        nr::MODE_ADDFB | nr::MODE_ADDFB2 => {
            let handle = if req == nr::MODE_ADDFB {
                // SAFETY: `p` is the program's struct for this request.
                unsafe { io::<uapi::ModeFbCmd>(p) }.handle
            } else {
                // SAFETY: `p` is the program's struct for this request.
                unsafe { io::<uapi::ModeFbCmd2>(p) }.handles[0]
            };
            let mut d = device();
            let bo = match bo_of(&d, f, handle) {
                Ok(b) => Some(b),
                Err(_) if shim => None,
                Err(e) => return Err(e),
            };
            let id = d.next_fb;
            d.next_fb += 1;
            d.fbs.insert(id, Fb { bo });
            if req == nr::MODE_ADDFB {
                // SAFETY: `p` is the program's struct for this request.
                let mut a: uapi::ModeFbCmd = unsafe { io(p) };
                a.fb_id = id;
                // SAFETY: `p` is the program's struct for this request.
                unsafe { put(p, a) };
            } else {
                // SAFETY: `p` is the program's struct for this request.
                let mut a: uapi::ModeFbCmd2 = unsafe { io(p) };
                a.fb_id = id;
                // SAFETY: `p` is the program's struct for this request.
                unsafe { put(p, a) };
            }
            Ok(0)
        }
        nr::MODE_RMFB => {
            // SAFETY: `p` is the program's struct for this request.
            let id: u32 = unsafe { io(p) };
            device().fbs.remove(&id).map(|_| 0).ok_or(libc::ENOENT)
        }
        nr::MODE_SETCRTC => {
            // SAFETY: `p` is the program's struct for this request.
            let a: uapi::ModeCrtc = unsafe { io(p) };
            if a.crtc_id != CRTC || (a.fb_id != 0 && !device().fbs.contains_key(&a.fb_id)) {
                return Err(libc::EINVAL);
            }
            Ok(0)
        }
        nr::MODE_PAGE_FLIP => {
            // SAFETY: `p` is the program's struct for this request.
            let a: uapi::ModeCrtcPageFlip = unsafe { io(p) };
            let mut d = device();
            if a.crtc_id != CRTC {
                return Err(libc::EINVAL);
            }
            let Some(fb) = d.fbs.get(&a.fb_id) else {
                return Err(libc::EINVAL);
            };
            if d.flip_pending {
                return Err(libc::EBUSY);
            }
            // The flip waits for the buffer's last job, then for a vblank.
            let ready = fb
                .bo
                .map_or(0, |b| seqno_done_at(&d, d.bos[b].last_seqno))
                .max(now_ns());
            let n = (ready - d.epoch) / VBLANK_NS + 1;
            let at = d.epoch + n * VBLANK_NS;
            d.vblank_seq = n as u32;
            if a.flags & uapi::DRM_MODE_PAGE_FLIP_EVENT != 0 {
                d.flip_pending = true;
                let ev = uapi::EventVblank {
                    base: uapi::Event {
                        type_: uapi::DRM_EVENT_FLIP_COMPLETE,
                        length: std::mem::size_of::<uapi::EventVblank>() as u32,
                    },
                    user_data: a.user_data,
                    tv_sec: (at / 1_000_000_000) as u32,
                    tv_usec: ((at % 1_000_000_000) / 1000) as u32,
                    sequence: n as u32,
                    crtc_id: CRTC,
                };
                d.files[f].events.push_back((at, ev));
            }
            Ok(0)
        }
        _ if shim => next_ioctl(fd, request, p),
        _ => Err(libc::EINVAL),
    }
}

fn mode_1080p() -> uapi::ModeInfo {
    let mut name = [0u8; 32];
    name[..9].copy_from_slice(b"1920x1080");
    uapi::ModeInfo {
        clock: 148_500,
        hdisplay: 1920,
        hsync_start: 2008,
        hsync_end: 2052,
        htotal: 2200,
        hskew: 0,
        vdisplay: 1080,
        vsync_start: 1084,
        vsync_end: 1089,
        vtotal: 1125,
        vscan: 0,
        vrefresh: 60,
        flags: 5,
        type_: 0x48, // preferred | driver
        name,
    }
}

/// A shader BO over the noop shim: a plain BO from the shim, filled through a mapping.
fn shim_shader_bo(fd: c_int, f: usize, code: &[u8]) -> Result<u32, c_int> {
    let mut create = uapi::Vc4CreateBo {
        size: code.len() as u32,
        ..Default::default()
    };
    next_ioctl(
        fd,
        nr::VC4_CREATE_BO as c_ulong,
        (&mut create as *mut uapi::Vc4CreateBo).cast(),
    )?;
    let mut map = uapi::Vc4MmapBo {
        handle: create.handle,
        ..Default::default()
    };
    next_ioctl(
        fd,
        nr::VC4_MMAP_BO as c_ulong,
        (&mut map as *mut uapi::Vc4MmapBo).cast(),
    )?;
    // SAFETY: mapping the new BO through the shim's mmap.
    let m = unsafe {
        (next().mmap)(
            std::ptr::null_mut(),
            code.len(),
            libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            map.offset as libc::off_t,
        )
    };
    if m == libc::MAP_FAILED {
        return Err(errno());
    }
    // SAFETY: the mapping is code.len() bytes long and writable.
    unsafe {
        std::ptr::copy_nonoverlapping(code.as_ptr(), m.cast::<u8>(), code.len());
        (next().munmap)(m, code.len());
    }
    let mut d = device();
    let b = new_bo(&mut d, code.len() as u64)?;
    d.bos[b].refs += 1;
    d.files[f].handles.insert(create.handle, b);
    Ok(create.handle)
}

/// `ioctl(2)`.
///
/// # Safety
///
/// As libc's `ioctl`.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, p: *mut c_void) -> c_int {
    let file = device().fds.get(&fd).copied();
    let Some(f) = file else {
        // SAFETY: not ours: the next ioctl with the program's arguments.
        return unsafe { (next().ioctl)(fd, request, p) };
    };
    match handle_ioctl(fd, f, request, p) {
        Ok(r) => r,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// `read(2)`: DRM events of the fake's files.
///
/// # Safety
///
/// As libc's `read`.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    let file = device().fds.get(&fd).copied();
    let Some(f) = file else {
        // SAFETY: not ours: the next read with the program's arguments.
        return unsafe { (next().read)(fd, buf, count) };
    };
    let size = std::mem::size_of::<uapi::EventVblank>();
    loop {
        let (due, nonblocking) = {
            let d = device();
            (
                d.files[f].events.front().map(|e| e.0),
                d.files[f].nonblocking,
            )
        };
        match due {
            Some(at) if at <= now_ns() => break,
            Some(at) if !nonblocking => sleep_until(at),
            _ if nonblocking => {
                set_errno(libc::EAGAIN);
                return -1;
            }
            _ => sleep_until(now_ns() + 1_000_000),
        }
    }
    if count < size {
        set_errno(libc::EINVAL);
        return -1;
    }
    let mut d = device();
    let Some((_, ev)) = d.files[f].events.pop_front() else {
        return 0;
    };
    d.flip_pending = false;
    // SAFETY: the program's buffer holds at least `size` bytes.
    unsafe { std::ptr::write_unaligned(buf.cast::<uapi::EventVblank>(), ev) };
    size as ssize_t
}
