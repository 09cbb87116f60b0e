//! The libc functions the recorder wraps, looked up with
//! `dlsym(RTLD_NEXT, ...)`: the next definition after this library, which is
//! libc's (or another preload library's, such as a DRM shim).
//!
//! The recorder must never call these by name: inside a preloaded library a
//! call to `open` binds to the recorder's own `open`.

use libc::{c_char, c_int, c_ulong, c_void, off_t, size_t, ssize_t};
use std::sync::OnceLock;

pub type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
pub type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
pub type Open2Fn = unsafe extern "C" fn(*const c_char, c_int) -> c_int;
pub type Openat2Fn = unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int;
pub type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
pub type DupFn = unsafe extern "C" fn(c_int) -> c_int;
pub type Dup2Fn = unsafe extern "C" fn(c_int, c_int) -> c_int;
pub type Dup3Fn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
pub type FcntlFn = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;
pub type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;
pub type MmapFn =
    unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;
pub type Mmap64Fn =
    unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, libc::off64_t) -> *mut c_void;
pub type MunmapFn = unsafe extern "C" fn(*mut c_void, size_t) -> c_int;
pub type ReadFn = unsafe extern "C" fn(c_int, *mut c_void, size_t) -> ssize_t;
pub type SigactionFn =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
pub type SignalFn = unsafe extern "C" fn(c_int, libc::sighandler_t) -> libc::sighandler_t;

/// The next definitions of every wrapped function. A missing one (a libc
/// without `fcntl64`, say) is `None`, and its wrapper fails with ENOSYS.
pub struct Real {
    pub open: Option<OpenFn>,
    pub open64: Option<OpenFn>,
    pub openat: Option<OpenatFn>,
    pub openat64: Option<OpenatFn>,
    pub open_2: Option<Open2Fn>,
    pub open64_2: Option<Open2Fn>,
    pub openat_2: Option<Openat2Fn>,
    pub openat64_2: Option<Openat2Fn>,
    pub close: Option<CloseFn>,
    pub dup: Option<DupFn>,
    pub dup2: Option<Dup2Fn>,
    pub dup3: Option<Dup3Fn>,
    pub fcntl: Option<FcntlFn>,
    pub fcntl64: Option<FcntlFn>,
    pub ioctl: Option<IoctlFn>,
    #[cfg(target_pointer_width = "32")]
    pub ioctl_time64: Option<IoctlFn>,
    pub mmap: Option<MmapFn>,
    pub mmap64: Option<Mmap64Fn>,
    pub munmap: Option<MunmapFn>,
    pub read: Option<ReadFn>,
    pub sigaction: Option<SigactionFn>,
    pub signal: Option<SignalFn>,
}

/// The next definition of `name` (NUL-terminated), as an `F`.
///
/// # Safety
///
/// `F` must be a function pointer type matching the symbol's C signature.
unsafe fn next<F: Copy>(name: &[u8]) -> Option<F> {
    debug_assert_eq!(name.last(), Some(&0));
    // SAFETY: `name` is NUL-terminated; RTLD_NEXT is valid in a shared object.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: F is a function pointer type of the symbol's signature (the
    // caller's contract), the same size as the data pointer dlsym returns.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
}

static REAL: OnceLock<Real> = OnceLock::new();

/// The next definitions, looked up on first use.
pub fn real() -> &'static Real {
    REAL.get_or_init(|| {
        // SAFETY: every type matches its function's prototype in glibc's headers.
        unsafe {
            Real {
                open: next(b"open\0"),
                open64: next(b"open64\0"),
                openat: next(b"openat\0"),
                openat64: next(b"openat64\0"),
                open_2: next(b"__open_2\0"),
                open64_2: next(b"__open64_2\0"),
                openat_2: next(b"__openat_2\0"),
                openat64_2: next(b"__openat64_2\0"),
                close: next(b"close\0"),
                dup: next(b"dup\0"),
                dup2: next(b"dup2\0"),
                dup3: next(b"dup3\0"),
                fcntl: next(b"fcntl\0"),
                fcntl64: next(b"fcntl64\0"),
                ioctl: next(b"ioctl\0"),
                #[cfg(target_pointer_width = "32")]
                ioctl_time64: next(b"__ioctl_time64\0"),
                mmap: next(b"mmap\0"),
                mmap64: next(b"mmap64\0"),
                munmap: next(b"munmap\0"),
                read: next(b"read\0"),
                sigaction: next(b"sigaction\0"),
                signal: next(b"signal\0"),
            }
        }
    })
}

/// The calling thread's errno.
pub fn errno() -> c_int {
    // SAFETY: __errno_location always returns the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's errno.
pub fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value }
}

/// CLOCK_MONOTONIC in ns (async-signal-safe).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
