//! `libpoolbed_recorder.so`: an `LD_PRELOAD` library that records a
//! program's vc4 buffer-object activity for `cargo xtask record-convert`.
//!
//! It wraps `open`/`openat` (and their 64-bit and fortified forms), `close`,
//! `dup`/`dup2`/`dup3`, `fcntl(F_DUPFD*)`, `ioctl`, `mmap`/`munmap`, `read`,
//! `sigaction` and `signal`. Every call is passed to the next definition
//! (libc's) unchanged and its result and errno returned unchanged; calls on
//! DRM device fds (`/dev/dri/card*`, `/dev/dri/renderD*`) and on dma-buf fds
//! exported from them are also written to a raw file, one per process
//! (`$POOLBED_RECORD_DIR/<comm>-<pid>.vc4raw`, default the current
//! directory; format in `capture::raw`). CPU touches of mapped BOs are
//! caught with page protection (module `fault`); `POOLBED_RECORD_NO_TOUCH=1`
//! turns that off, `POOLBED_RECORD_OFF=1` turns the recorder off.
//!
//! Any failure of the recorder's own (the raw file cannot be written, a
//! table is full, mprotect fails) stops the recording with one message on
//! stderr; the program carries on as if the library were not there.

mod fault;
mod out;
mod real;

use capture::raw::{Body, Submit, Surface, NO_HANDLE};
use capture::uapi::{self, ioctl as nr};
use libc::{c_char, c_int, c_ulong, c_void, mode_t, off_t, size_t, ssize_t};
use out::{fd_kind, set_fd_kind, FD_DMABUF, FD_DRM, FD_NONE};
use real::{errno, now_ns, real, set_errno};
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::Mutex;

extern "C" fn on_load() {
    real::real();
    out::start();
    // SAFETY: registering plain extern "C" functions with no arguments.
    unsafe {
        libc::atexit(out::at_exit);
        libc::pthread_atfork(None, None, Some(out::after_fork_in_child));
    }
}

/// Runs when the library is loaded, before the program's main.
#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

/// What the recorder needs to name BOs in mmap records: the mmap offsets
/// `MMAP_BO` handed out, per DRM file (fds from one open share a file).
#[derive(Default)]
struct Files {
    file_of: HashMap<c_int, u32>,
    next: u32,
    offsets: HashMap<(u32, u64), u32>,
}

static FILES: Mutex<Option<Files>> = Mutex::new(None);

fn with_files<R>(f: impl FnOnce(&mut Files) -> R) -> R {
    let mut g = FILES.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Files::default))
}

fn is_drm_path(path: *const c_char) -> bool {
    if path.is_null() {
        return false;
    }
    // SAFETY: the program passed a NUL-terminated path (it was handed to libc too).
    let p = unsafe { CStr::from_ptr(path) }.to_bytes();
    p.starts_with(b"/dev/dri/card") || p.starts_with(b"/dev/dri/renderD")
}

fn path_bytes(path: *const c_char) -> Vec<u8> {
    // SAFETY: as in `is_drm_path`; only called for a non-null path.
    unsafe { CStr::from_ptr(path) }.to_bytes().to_vec()
}

/// After an open of `path` returned `fd`.
fn opened(path: *const c_char, flags: c_int, fd: c_int) {
    let drm = is_drm_path(path);
    if fd >= 0 {
        set_fd_kind(fd, if drm { FD_DRM } else { FD_NONE });
    }
    if !drm || !out::enabled() {
        return;
    }
    let result = if fd < 0 { -errno() } else { fd };
    if fd >= 0 {
        with_files(|f| {
            let id = f.next;
            f.next += 1;
            f.file_of.insert(fd, id);
        });
    }
    out::record(
        -1,
        result,
        Body::Open {
            flags,
            path: path_bytes(path),
        },
    );
}

macro_rules! forward {
    ($f:expr, $($arg:expr),*) => {
        match $f {
            // SAFETY: the next definition of the same function, called with the program's arguments.
            Some(f) => unsafe { f($($arg),*) },
            None => {
                set_errno(libc::ENOSYS);
                -1
            }
        }
    };
}

/// `open(2)`.
///
/// # Safety
///
/// As libc's `open`.
#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let fd = forward!(real().open, path, flags, mode);
    let saved = errno();
    opened(path, flags, fd);
    set_errno(saved);
    fd
}

/// `open64(2)`.
///
/// # Safety
///
/// As libc's `open64`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let fd = forward!(real().open64, path, flags, mode);
    let saved = errno();
    opened(path, flags, fd);
    set_errno(saved);
    fd
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
    let fd = forward!(real().openat, dirfd, path, flags, mode);
    let saved = errno();
    opened(path, flags, fd);
    set_errno(saved);
    fd
}

/// `openat64(2)`.
///
/// # Safety
///
/// As libc's `openat64`.
#[no_mangle]
pub unsafe extern "C" fn openat64(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    let fd = forward!(real().openat64, dirfd, path, flags, mode);
    let saved = errno();
    opened(path, flags, fd);
    set_errno(saved);
    fd
}

/// `__open_2`, what `open` becomes with `_FORTIFY_SOURCE`.
///
/// # Safety
///
/// As libc's `__open_2`.
#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    let fd = forward!(real().open_2, path, flags);
    let saved = errno();
    opened(path, flags, fd);
    set_errno(saved);
    fd
}

/// `__open64_2`.
///
/// # Safety
///
/// As libc's `__open64_2`.
#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    let fd = forward!(real().open64_2, path, flags);
    let saved = errno();
    opened(path, flags, fd);
    set_errno(saved);
    fd
}

/// `__openat_2`.
///
/// # Safety
///
/// As libc's `__openat_2`.
#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    let fd = forward!(real().openat_2, dirfd, path, flags);
    let saved = errno();
    opened(path, flags, fd);
    set_errno(saved);
    fd
}

/// `__openat64_2`.
///
/// # Safety
///
/// As libc's `__openat64_2`.
#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    let fd = forward!(real().openat64_2, dirfd, path, flags);
    let saved = errno();
    opened(path, flags, fd);
    set_errno(saved);
    fd
}

/// A tracked fd is about to be closed or replaced: record it (closes cannot
/// be recorded after the fact: the number may be reused at once).
fn losing(fd: c_int) {
    out::before_losing_fd(fd);
}

fn lost(fd: c_int, kind: u8, result: c_int, saved_errno: c_int) {
    if kind == FD_NONE {
        return;
    }
    if result == 0 || saved_errno != libc::EBADF {
        set_fd_kind(fd, FD_NONE);
        if kind == FD_DRM {
            with_files(|f| {
                f.file_of.remove(&fd);
            });
        }
    }
    if out::enabled() {
        out::record(fd, if result < 0 { -saved_errno } else { 0 }, Body::Close);
    }
}

/// `close(2)`.
///
/// # Safety
///
/// As libc's `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    losing(fd);
    let kind = fd_kind(fd);
    let r = forward!(real().close, fd);
    let saved = errno();
    lost(fd, kind, r, saved);
    set_errno(saved);
    r
}

fn duplicated(old: c_int, new: c_int) {
    let kind = fd_kind(old);
    if new < 0 {
        return;
    }
    set_fd_kind(new, kind);
    if kind == FD_NONE || !out::enabled() {
        return;
    }
    if kind == FD_DRM {
        with_files(|f| {
            if let Some(&id) = f.file_of.get(&old) {
                f.file_of.insert(new, id);
            }
        });
    }
    out::record(old, new, Body::Dup);
}

/// `new` is about to be replaced by dup2/dup3 onto it.
fn replacing(old: c_int, new: c_int) {
    if old == new {
        return;
    }
    losing(new);
    let kind = fd_kind(new);
    if kind != FD_NONE {
        lost(new, kind, 0, 0);
    }
}

/// `dup(2)`.
///
/// # Safety
///
/// As libc's `dup`.
#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let r = forward!(real().dup, fd);
    let saved = errno();
    duplicated(fd, r);
    set_errno(saved);
    r
}

/// `dup2(2)`.
///
/// # Safety
///
/// As libc's `dup2`.
#[no_mangle]
pub unsafe extern "C" fn dup2(fd: c_int, new: c_int) -> c_int {
    if fd_kind(fd) != FD_NONE || fd_kind(new) != FD_NONE || new == out::out_fd() {
        replacing(fd, new);
    }
    let r = forward!(real().dup2, fd, new);
    let saved = errno();
    if r >= 0 && fd != new {
        duplicated(fd, r);
    }
    set_errno(saved);
    r
}

/// `dup3(2)`.
///
/// # Safety
///
/// As libc's `dup3`.
#[no_mangle]
pub unsafe extern "C" fn dup3(fd: c_int, new: c_int, flags: c_int) -> c_int {
    if fd_kind(fd) != FD_NONE || fd_kind(new) != FD_NONE || new == out::out_fd() {
        replacing(fd, new);
    }
    let r = forward!(real().dup3, fd, new, flags);
    let saved = errno();
    if r >= 0 {
        duplicated(fd, r);
    }
    set_errno(saved);
    r
}

fn after_fcntl(fd: c_int, cmd: c_int, r: c_int) {
    if (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) && r >= 0 {
        let saved = errno();
        duplicated(fd, r);
        set_errno(saved);
    }
}

/// `fcntl(2)`; the third argument is passed on as the word it arrived in.
///
/// # Safety
///
/// As libc's `fcntl`.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let r = forward!(real().fcntl, fd, cmd, arg);
    after_fcntl(fd, cmd, r);
    r
}

/// `fcntl64`, glibc's name for `fcntl` with 64-bit offsets on 32-bit targets.
///
/// # Safety
///
/// As libc's `fcntl64`.
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let r = forward!(real().fcntl64.or(real().fcntl), fd, cmd, arg);
    after_fcntl(fd, cmd, r);
    r
}

/// Reads a `T` the program passed to an ioctl.
///
/// # Safety
///
/// `arg` must point to a readable `T` (the kernel read it: the call did not fail with EFAULT).
unsafe fn arg<T: Copy>(arg: *mut c_void) -> T {
    // SAFETY: the caller's contract; the program's struct may be unaligned.
    unsafe { std::ptr::read_unaligned(arg.cast::<T>()) }
}

fn inode_of(fd: c_int) -> u64 {
    // SAFETY: a zeroed stat to be filled; fstat of any fd is harmless.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid stat pointer.
    if unsafe { libc::fstat(fd, &mut st) } == 0 {
        st.st_ino as u64
    } else {
        0
    }
}

fn surface(s: &uapi::Vc4SubmitRclSurface) -> Surface {
    Surface {
        hindex: s.hindex,
        offset: s.offset,
        bits: s.bits,
        flags: s.flags,
    }
}

/// Most handles one job may list and still be recorded whole.
const MAX_JOB_HANDLES: u32 = 1 << 16;

/// Records an ioctl on a DRM fd after it returned `r`.
///
/// # Safety
///
/// `p` is what the program passed; it is read only when the call did not
/// fail with EFAULT, so the kernel had read it successfully.
unsafe fn record_ioctl(
    fd: c_int,
    request: u32,
    p: *mut c_void,
    r: c_int,
    err: c_int,
    start_ns: u64,
) {
    if p.is_null() || (r < 0 && err == libc::EFAULT) {
        return;
    }
    let ok = r >= 0;
    let result = if ok { r } else { -err };
    let body = match request {
        nr::VC4_CREATE_BO => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::Vc4CreateBo = unsafe { arg(p) };
            Body::CreateBo {
                size: a.size,
                flags: a.flags,
                handle: a.handle,
            }
        }
        nr::VC4_CREATE_SHADER_BO => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::Vc4CreateShaderBo = unsafe { arg(p) };
            Body::CreateShaderBo {
                size: a.size,
                flags: a.flags,
                handle: a.handle,
            }
        }
        nr::GEM_CLOSE => Body::GemClose {
            // SAFETY: `p` is this request's struct, which the kernel read.
            handle: unsafe { arg::<uapi::GemClose>(p) }.handle,
        },
        nr::VC4_MMAP_BO => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::Vc4MmapBo = unsafe { arg(p) };
            if ok {
                remember_offset(fd, a.offset, a.handle);
            }
            Body::MmapBo {
                handle: a.handle,
                offset: a.offset,
            }
        }
        nr::MODE_MAP_DUMB => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::ModeMapDumb = unsafe { arg(p) };
            if ok {
                remember_offset(fd, a.offset, a.handle);
            }
            Body::MmapBo {
                handle: a.handle,
                offset: a.offset,
            }
        }
        nr::VC4_GEM_MADVISE => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::Vc4GemMadvise = unsafe { arg(p) };
            Body::Madvise {
                handle: a.handle,
                madv: a.madv,
                retained: a.retained,
            }
        }
        nr::VC4_SUBMIT_CL => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::Vc4SubmitCl = unsafe { arg(p) };
            let handles = if ok && a.bo_handle_count <= MAX_JOB_HANDLES && a.bo_handles != 0 {
                // SAFETY: the kernel copied this many handles from here: the call succeeded.
                unsafe {
                    std::slice::from_raw_parts(
                        a.bo_handles as usize as *const u32,
                        a.bo_handle_count as usize,
                    )
                }
                .to_vec()
            } else {
                Vec::new()
            };
            if ok && handles.len() as u32 != a.bo_handle_count {
                out::disable("a job with more BOs than the recorder records");
            }
            Body::SubmitCl(Submit {
                seqno: a.seqno,
                flags: a.flags,
                bin_cl_size: a.bin_cl_size,
                shader_rec_size: a.shader_rec_size,
                shader_rec_count: a.shader_rec_count,
                uniforms_size: a.uniforms_size,
                width: a.width,
                height: a.height,
                min_x_tile: a.min_x_tile,
                min_y_tile: a.min_y_tile,
                max_x_tile: a.max_x_tile,
                max_y_tile: a.max_y_tile,
                surfaces: [
                    &a.color_read,
                    &a.color_write,
                    &a.zs_read,
                    &a.zs_write,
                    &a.msaa_color_write,
                    &a.msaa_zs_write,
                ]
                .map(surface),
                bo_handle_count: a.bo_handle_count,
                handles,
            })
        }
        nr::VC4_WAIT_SEQNO => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::Vc4WaitSeqno = unsafe { arg(p) };
            Body::WaitSeqno {
                seqno: a.seqno,
                timeout_ns: a.timeout_ns,
                start_ns,
            }
        }
        nr::VC4_WAIT_BO => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::Vc4WaitBo = unsafe { arg(p) };
            Body::WaitBo {
                handle: a.handle,
                timeout_ns: a.timeout_ns,
                start_ns,
            }
        }
        nr::PRIME_HANDLE_TO_FD => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::PrimeHandle = unsafe { arg(p) };
            let inode = if ok {
                set_fd_kind(a.fd, FD_DMABUF);
                inode_of(a.fd)
            } else {
                0
            };
            Body::PrimeExport {
                handle: a.handle,
                flags: a.flags,
                dmabuf_fd: a.fd,
                inode,
            }
        }
        nr::PRIME_FD_TO_HANDLE => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::PrimeHandle = unsafe { arg(p) };
            let inode = if ok {
                if fd_kind(a.fd) == FD_NONE {
                    set_fd_kind(a.fd, FD_DMABUF);
                }
                inode_of(a.fd)
            } else {
                0
            };
            Body::PrimeImport {
                dmabuf_fd: a.fd,
                handle: a.handle,
                inode,
            }
        }
        nr::MODE_ADDFB => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::ModeFbCmd = unsafe { arg(p) };
            Body::AddFb {
                fb_id: a.fb_id,
                width: a.width,
                height: a.height,
                pixel_format: 0,
                handles: [a.handle, 0, 0, 0],
            }
        }
        nr::MODE_ADDFB2 => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::ModeFbCmd2 = unsafe { arg(p) };
            Body::AddFb {
                fb_id: a.fb_id,
                width: a.width,
                height: a.height,
                pixel_format: a.pixel_format,
                handles: a.handles,
            }
        }
        nr::MODE_RMFB => Body::RmFb {
            // SAFETY: `p` is this request's struct, which the kernel read.
            fb_id: unsafe { arg::<u32>(p) },
        },
        nr::MODE_SETCRTC => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::ModeCrtc = unsafe { arg(p) };
            Body::SetCrtc {
                crtc_id: a.crtc_id,
                fb_id: a.fb_id,
            }
        }
        nr::MODE_PAGE_FLIP => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::ModeCrtcPageFlip = unsafe { arg(p) };
            Body::PageFlip {
                crtc_id: a.crtc_id,
                fb_id: a.fb_id,
                flags: a.flags,
                user_data: a.user_data,
            }
        }
        nr::MODE_CREATE_DUMB => {
            // SAFETY: `p` is this request's struct, which the kernel read.
            let a: uapi::ModeCreateDumb = unsafe { arg(p) };
            Body::CreateDumb {
                handle: a.handle,
                width: a.width,
                height: a.height,
                bpp: a.bpp,
                size: a.size,
            }
        }
        nr::MODE_DESTROY_DUMB => Body::DestroyDumb {
            // SAFETY: `p` is this request's struct, which the kernel read.
            handle: unsafe { arg::<uapi::ModeDestroyDumb>(p) }.handle,
        },
        _ => return,
    };
    let submitted = ok && matches!(body, Body::SubmitCl(_));
    out::record(fd, result, body);
    if submitted {
        fault::arm_all();
    }
}

fn remember_offset(fd: c_int, offset: u64, handle: u32) {
    with_files(|f| {
        if let Some(&id) = f.file_of.get(&fd) {
            f.offsets.insert((id, offset), handle);
        }
    });
}

fn handle_at(fd: c_int, offset: u64) -> u32 {
    with_files(|f| {
        f.file_of
            .get(&fd)
            .and_then(|id| f.offsets.get(&(*id, offset)))
            .copied()
    })
    .unwrap_or(NO_HANDLE)
}

/// The ioctls the recorder decodes all have request numbers below 2^32.
fn drm_request(request: c_ulong) -> Option<u32> {
    u32::try_from(request)
        .ok()
        .filter(|&r| uapi::ioc_type(r) == b'd')
}

fn ioctl_with(next: Option<real::IoctlFn>, fd: c_int, request: c_ulong, p: *mut c_void) -> c_int {
    let traced = fd_kind(fd) == FD_DRM && out::enabled();
    let Some(req) = drm_request(request).filter(|_| traced) else {
        return forward!(next, fd, request, p);
    };
    let start = now_ns();
    let r = forward!(next, fd, request, p);
    let err = errno();
    // SAFETY: `p` is the program's argument to this DRM ioctl; record_ioctl
    // reads it only when the kernel could.
    unsafe { record_ioctl(fd, req, p, r, err, start) };
    set_errno(err);
    r
}

/// `ioctl(2)`; the argument is passed on as the pointer-sized word it arrived in.
///
/// # Safety
///
/// As libc's `ioctl`.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, p: *mut c_void) -> c_int {
    ioctl_with(real().ioctl, fd, request, p)
}

/// `__ioctl_time64`, what `ioctl` becomes on 32-bit targets built with a 64-bit `time_t`.
///
/// # Safety
///
/// As libc's `__ioctl_time64`.
#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __ioctl_time64(fd: c_int, request: c_ulong, p: *mut c_void) -> c_int {
    ioctl_with(real().ioctl_time64.or(real().ioctl), fd, request, p)
}

fn mapped(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: u64,
    saved: c_int,
) {
    if fd_kind(fd) != FD_DRM || !out::enabled() {
        return;
    }
    let ok = addr != libc::MAP_FAILED;
    let handle = handle_at(fd, offset);
    out::record(
        fd,
        if ok { 0 } else { -saved },
        Body::Mmap {
            addr: addr as usize as u64,
            len: len as u64,
            offset,
            prot,
            flags,
            handle,
        },
    );
    if ok {
        fault::mapped(addr as usize, len, prot, fd, handle);
    }
}

/// `mmap(2)`.
///
/// # Safety
///
/// As libc's `mmap`.
#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: off_t,
) -> *mut c_void {
    let Some(next) = real().mmap else {
        set_errno(libc::ENOSYS);
        return libc::MAP_FAILED;
    };
    // SAFETY: libc's mmap with the program's arguments.
    let r = unsafe { next(addr, len, prot, flags, fd, offset) };
    let saved = errno();
    mapped(r, len, prot, flags, fd, offset as u64, saved);
    set_errno(saved);
    r
}

/// `mmap64(2)`.
///
/// # Safety
///
/// As libc's `mmap64`.
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: libc::off64_t,
) -> *mut c_void {
    let Some(next) = real().mmap64 else {
        set_errno(libc::ENOSYS);
        return libc::MAP_FAILED;
    };
    // SAFETY: libc's mmap64 with the program's arguments.
    let r = unsafe { next(addr, len, prot, flags, fd, offset) };
    let saved = errno();
    mapped(r, len, prot, flags, fd, offset as u64, saved);
    set_errno(saved);
    r
}

/// `munmap(2)`.
///
/// # Safety
///
/// As libc's `munmap`.
#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: size_t) -> c_int {
    let ours = fault::unmapping(addr as usize, len);
    let r = forward!(real().munmap, addr, len);
    let saved = errno();
    if ours && out::enabled() {
        out::record(
            -1,
            if r < 0 { -saved } else { 0 },
            Body::Munmap {
                addr: addr as usize as u64,
                len: len as u64,
            },
        );
    }
    set_errno(saved);
    r
}

/// `read(2)`: vblank and flip-complete events read from a DRM fd are recorded.
///
/// # Safety
///
/// As libc's `read`.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    let Some(next) = real().read else {
        set_errno(libc::ENOSYS);
        return -1;
    };
    // SAFETY: libc's read with the program's arguments.
    let n = unsafe { next(fd, buf, count) };
    if n > 0 && fd_kind(fd) == FD_DRM && out::enabled() {
        let saved = errno();
        // SAFETY: the kernel just wrote `n` bytes there.
        let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), n as usize) };
        record_events(fd, bytes, n as i32);
        set_errno(saved);
    }
    n
}

fn record_events(fd: c_int, mut bytes: &[u8], n: i32) {
    let head = std::mem::size_of::<uapi::Event>();
    while bytes.len() >= head {
        // SAFETY: at least a drm_event's bytes remain.
        let e: uapi::Event = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        let len = e.length as usize;
        if len < head || len > bytes.len() {
            break;
        }
        if (e.type_ == uapi::DRM_EVENT_FLIP_COMPLETE || e.type_ == uapi::DRM_EVENT_VBLANK)
            && len >= std::mem::size_of::<uapi::EventVblank>()
        {
            // SAFETY: the event is at least a drm_event_vblank long.
            let v: uapi::EventVblank = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
            out::record(
                fd,
                n,
                Body::FlipEvent {
                    event_type: v.base.type_,
                    crtc_id: v.crtc_id,
                    sequence: v.sequence,
                    tv_sec: v.tv_sec,
                    tv_usec: v.tv_usec,
                    user_data: v.user_data,
                },
            );
        }
        bytes = &bytes[len..];
    }
}

/// `sigaction(2)`: SIGSEGV actions are kept by the recorder while its
/// handler is installed and called for faults that are not the recorder's.
///
/// # Safety
///
/// As libc's `sigaction`.
#[no_mangle]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    // SAFETY: the program's arguments, as it passed them.
    unsafe { fault::program_sigaction(sig, act, old) }
}

/// `signal(2)`, kept for SIGSEGV as `sigaction`.
///
/// # Safety
///
/// As libc's `signal`.
#[no_mangle]
pub unsafe extern "C" fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    fault::program_signal(sig, handler)
}
