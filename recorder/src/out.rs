//! Where records go, which fds are DRM devices or dma-bufs, and how the
//! recorder stops itself.

use crate::real::{errno, now_ns, real, set_errno};
use capture::raw::{Body, Header, Record, FLAG_TOUCH, VERSION};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};

/// Recording is on (set once the raw file is open, cleared for good on failure).
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Touch tracking is on (`POOLBED_RECORD_NO_TOUCH` unset).
static TOUCH: AtomicBool = AtomicBool::new(false);
/// The raw file.
static OUT_FD: AtomicI32 = AtomicI32::new(-1);
/// The one message has been printed.
static REPORTED: AtomicBool = AtomicBool::new(false);
/// Initialisation has run (or is running).
static STARTED: AtomicBool = AtomicBool::new(false);

/// fds the recorder follows; larger ones are not expected of DRM devices.
pub const MAX_FD: usize = 4096;
pub const FD_NONE: u8 = 0;
pub const FD_DRM: u8 = 1;
pub const FD_DMABUF: u8 = 2;
static FD_KIND: [AtomicU8; MAX_FD] = [const { AtomicU8::new(FD_NONE) }; MAX_FD];

/// Where the raw file is moved to, out of the way of the program's fds.
const OUT_FD_MIN: libc::c_int = 900;

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

pub fn touch_enabled() -> bool {
    TOUCH.load(Ordering::Relaxed) && enabled()
}

pub fn out_fd() -> libc::c_int {
    OUT_FD.load(Ordering::Acquire)
}

pub fn fd_kind(fd: libc::c_int) -> u8 {
    usize::try_from(fd)
        .ok()
        .and_then(|i| FD_KIND.get(i))
        .map_or(FD_NONE, |k| k.load(Ordering::Acquire))
}

/// Marks `fd`; a DRM fd beyond the table stops the recording (it could not be followed).
pub fn set_fd_kind(fd: libc::c_int, kind: u8) {
    match usize::try_from(fd).ok().and_then(|i| FD_KIND.get(i)) {
        Some(k) => k.store(kind, Ordering::Release),
        None if kind != FD_NONE => disable("a DRM or dma-buf fd above 4095"),
        None => {}
    }
}

/// Writes `text` to stderr with one write(2) (async-signal-safe).
fn say(text: &[u8]) {
    // SAFETY: writing a valid buffer to fd 2.
    unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
}

/// Stops recording for good, with one message; the program goes on. Safe in
/// a signal handler only through [`disable_quietly`].
pub fn disable(reason: &str) {
    if !ENABLED.swap(false, Ordering::AcqRel) {
        return;
    }
    let fd = out_fd();
    if fd >= 0 {
        let note = Record {
            time_ns: now_ns(),
            fd: -1,
            result: 0,
            body: Body::Note {
                text: reason.as_bytes().to_vec(),
            },
        };
        let bytes = note.encode();
        // SAFETY: best effort: the note is written whole or not at all.
        unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    }
    crate::fault::disarm_all();
    crate::fault::give_back_sigsegv();
    if !REPORTED.swap(true, Ordering::AcqRel) {
        say(format!(
            "poolbed-recorder: {reason}; recording stopped (the program is not affected)\n"
        )
        .as_bytes());
    }
}

/// [`disable`] from a signal handler: no allocation, no lock; armed mappings
/// are opened again as they fault.
pub fn disable_quietly(reason: &'static [u8]) {
    if ENABLED.swap(false, Ordering::AcqRel) && !REPORTED.swap(true, Ordering::AcqRel) {
        say(b"poolbed-recorder: ");
        say(reason);
        say(b"; recording stopped (the program is not affected)\n");
    }
}

/// Appends a record with one write(2). Async-signal-safe for records of up
/// to 256 bytes (no allocation); on failure the recorder stops.
pub fn write(rec: &Record, in_signal_handler: bool) {
    let fd = out_fd();
    if fd < 0 || !enabled() {
        return;
    }
    let saved = errno();
    let mut stack = [0u8; 256];
    let heap: Vec<u8>;
    let bytes: &[u8] = match rec.encode_into(&mut stack) {
        Some(n) => &stack[..n],
        None if in_signal_handler => return,
        None => {
            heap = rec.encode();
            &heap
        }
    };
    loop {
        // SAFETY: writing a valid buffer to our own fd.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n == bytes.len() as isize {
            break;
        }
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if in_signal_handler {
            disable_quietly(b"cannot write the raw file");
        } else {
            disable("cannot write the raw file");
        }
        break;
    }
    set_errno(saved);
}

/// Records a call on `fd` that returned `result` (or failed with `-errno`).
pub fn record(fd: libc::c_int, result: i32, body: Body) {
    write(
        &Record {
            time_ns: now_ns(),
            fd,
            result,
            body,
        },
        false,
    );
}

/// The program is about to close `fd` (or to have it replaced by dup2): if
/// it is the raw file, recording stops first.
pub fn before_losing_fd(fd: libc::c_int) {
    if fd >= 0 && fd == out_fd() {
        disable("the program closed or replaced the recorder's file");
        OUT_FD.store(-1, Ordering::Release);
    }
}

fn read_small(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Opens the raw file and writes its header; called from the library's
/// constructor, again in a forked child, and by any wrapper that runs first.
pub fn start() {
    if STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    open_output();
}

fn open_output() {
    let r = real();
    if std::env::var_os("POOLBED_RECORD_OFF").is_some() {
        return;
    }
    let (Some(open), Some(fcntl), Some(close)) = (r.open, r.fcntl, r.close) else {
        disable_before_start("libc's open, fcntl or close not found");
        return;
    };
    let dir = std::env::var("POOLBED_RECORD_DIR").unwrap_or_else(|_| ".".into());
    let mut comm = read_small("/proc/self/comm");
    while comm.last().is_some_and(|b| b.is_ascii_whitespace()) {
        comm.pop();
    }
    let exe = std::fs::read_link("/proc/self/exe")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    // SAFETY: getpid/getppid cannot fail.
    let (pid, ppid) = unsafe { (libc::getpid(), libc::getppid()) };
    let name: String = String::from_utf8_lossy(&comm)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = format!("{dir}/{name}-{pid}.vc4raw\0");
    // SAFETY: `path` is NUL-terminated; the mode argument is read for O_CREAT.
    let fd = unsafe {
        open(
            path.as_ptr().cast(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    };
    if fd < 0 {
        disable_before_start(&format!("cannot create {}", path.trim_end_matches('\0')));
        return;
    }
    // SAFETY: duplicating our own fd above the program's usual range.
    let high = unsafe { fcntl(fd, libc::F_DUPFD_CLOEXEC, OUT_FD_MIN) };
    let fd = if high >= 0 {
        // SAFETY: closing the low duplicate we just made.
        unsafe { close(fd) };
        high
    } else {
        fd
    };
    let mut realtime = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut realtime) };
    let touch = std::env::var_os("POOLBED_RECORD_NO_TOUCH").is_none();
    let header = Header {
        version: VERSION,
        flags: if touch { FLAG_TOUCH } else { 0 },
        pid: pid as u32,
        ppid: ppid as u32,
        start_monotonic_ns: now_ns(),
        start_realtime_ns: realtime.tv_sec as u64 * 1_000_000_000 + realtime.tv_nsec as u64,
        // SAFETY: sysconf has no preconditions.
        page_size: unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u32,
        pointer_bits: usize::BITS,
        ..Header::default()
    };
    let bytes = header.encode_parts(&comm, exe.as_bytes());
    // SAFETY: writing the header buffer to our fd.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    if n != bytes.len() as isize {
        // SAFETY: our own fd.
        unsafe { close(fd) };
        disable_before_start("cannot write the raw file's header");
        return;
    }
    TOUCH.store(touch, Ordering::Relaxed);
    OUT_FD.store(fd, Ordering::Release);
    ENABLED.store(true, Ordering::Release);
}

fn disable_before_start(reason: &str) {
    if !REPORTED.swap(true, Ordering::AcqRel) {
        say(
            format!("poolbed-recorder: {reason}; not recording (the program is not affected)\n")
                .as_bytes(),
        );
    }
}

/// After fork, in the child: a raw file of its own.
pub extern "C" fn after_fork_in_child() {
    let old = OUT_FD.swap(-1, Ordering::AcqRel);
    ENABLED.store(false, Ordering::Release);
    if old >= 0 {
        if let Some(close) = real().close {
            // SAFETY: the parent's raw file, inherited; the child writes its own.
            unsafe { close(old) };
        }
    }
    crate::fault::forget_after_fork();
    open_output();
}

/// At exit(): the process's last record.
pub extern "C" fn at_exit() {
    record(-1, 0, Body::Exit);
}
