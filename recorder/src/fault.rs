//! CPU touches of mapped BOs, caught with page protection.
//!
//! At each successful `SUBMIT_CL` every BO mapping of the process is made
//! `PROT_NONE`. The first access to one faults; the SIGSEGV handler records a
//! touch, gives the mapping its protection back and returns, so the access
//! is retried and succeeds. Faults that are not ours go to the handler the
//! program installed (its `sigaction`/`signal` calls for SIGSEGV are
//! intercepted and kept here), or to the default action.
//!
//! The handler is async-signal-safe: it reads the slot table through atomics
//! only, calls `mprotect`, `write`, `clock_gettime` and `sigprocmask`, and
//! allocates nothing.

use crate::out;
use crate::real::{errno, now_ns, real, set_errno};
use capture::raw::{Body, Record};
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use std::sync::Mutex;

/// Mappings followed at once; more stops the recording.
const SLOTS: usize = 4096;

const FREE: u8 = 0;
/// Mapped with its own protection.
const OPEN: u8 = 1;
/// Made PROT_NONE at a submission, not touched since.
const ARMED: u8 = 2;
/// A handler is giving it its protection back.
const RESTORING: u8 = 3;

struct Slot {
    state: AtomicU8,
    start: AtomicUsize,
    len: AtomicUsize,
    prot: AtomicI32,
    handle: AtomicU32,
    fd: AtomicI32,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        state: AtomicU8::new(FREE),
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        prot: AtomicI32::new(0),
        handle: AtomicU32::new(0),
        fd: AtomicI32::new(-1),
    }
}; SLOTS];

/// Serialises changes to the table (never taken in the signal handler).
static LOCK: Mutex<()> = Mutex::new(());

/// Our handler is installed; the program's SIGSEGV action lives in `PROGRAM`.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The SIGSEGV action the program asked for (or had before we came).
struct ProgramAction {
    handler: AtomicUsize,
    flags: AtomicI32,
    mask: [AtomicU64; MASK_WORDS],
}

const MASK_WORDS: usize = std::mem::size_of::<libc::sigset_t>() / 8;

static PROGRAM: ProgramAction = ProgramAction {
    handler: AtomicUsize::new(libc::SIG_DFL),
    flags: AtomicI32::new(0),
    mask: [const { AtomicU64::new(0) }; MASK_WORDS],
};

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn store_program(act: &libc::sigaction) {
    PROGRAM.handler.store(act.sa_sigaction, Ordering::Release);
    PROGRAM.flags.store(act.sa_flags, Ordering::Release);
    // SAFETY: sigset_t is plain data of MASK_WORDS * 8 bytes.
    let words: [u64; MASK_WORDS] = unsafe { std::mem::transmute_copy(&act.sa_mask) };
    for (w, v) in PROGRAM.mask.iter().zip(words) {
        w.store(v, Ordering::Release);
    }
}

fn load_program() -> libc::sigaction {
    let mut words = [0u64; MASK_WORDS];
    for (v, w) in words.iter_mut().zip(&PROGRAM.mask) {
        *v = w.load(Ordering::Acquire);
    }
    // SAFETY: an all-zero sigaction is valid; the fields are then set.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = PROGRAM.handler.load(Ordering::Acquire);
    act.sa_flags = PROGRAM.flags.load(Ordering::Acquire);
    // SAFETY: the words are a sigset_t's bytes.
    act.sa_mask = unsafe { std::mem::transmute_copy(&words) };
    act
}

/// Installs the recorder's SIGSEGV handler, keeping the program's action.
fn install() -> bool {
    if INSTALLED.load(Ordering::Acquire) {
        return true;
    }
    let Some(sigaction) = real().sigaction else {
        return false;
    };
    // SAFETY: zeroed sigaction is valid; we fill the handler, flags and mask.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_sigsegv;
    act.sa_sigaction = handler as usize;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    // SAFETY: zeroed sigaction to receive the old action.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers; sa_mask is emptied first.
    let ok = unsafe {
        libc::sigemptyset(&mut act.sa_mask);
        sigaction(libc::SIGSEGV, &act, &mut old) == 0
    };
    if ok {
        store_program(&old);
        INSTALLED.store(true, Ordering::Release);
    }
    ok
}

/// Puts the program's own SIGSEGV action back (the recorder has stopped).
pub fn give_back_sigsegv() {
    if !INSTALLED.swap(false, Ordering::AcqRel) {
        return;
    }
    if let Some(sigaction) = real().sigaction {
        let act = load_program();
        // SAFETY: a valid action read back from what the program set.
        unsafe { sigaction(libc::SIGSEGV, &act, std::ptr::null_mut()) };
    }
}

/// A BO mapping was made (`handle` on DRM `fd`).
pub fn mapped(start: usize, len: usize, prot: i32, fd: i32, handle: u32) {
    if !out::touch_enabled() || len == 0 {
        return;
    }
    let _g = lock();
    if !install() {
        drop(_g);
        out::disable("cannot install a SIGSEGV handler");
        return;
    }
    let Some(slot) = TABLE
        .iter()
        .find(|s| s.state.load(Ordering::Acquire) == FREE)
    else {
        drop(_g);
        out::disable("more than 4096 BO mappings at once");
        return;
    };
    slot.start.store(start, Ordering::Relaxed);
    slot.len.store(len, Ordering::Relaxed);
    slot.prot.store(prot, Ordering::Relaxed);
    slot.handle.store(handle, Ordering::Relaxed);
    slot.fd.store(fd, Ordering::Relaxed);
    slot.state.store(OPEN, Ordering::Release);
}

fn overlaps(slot: &Slot, start: usize, len: usize) -> bool {
    let (s, l) = (
        slot.start.load(Ordering::Relaxed),
        slot.len.load(Ordering::Relaxed),
    );
    s < start.saturating_add(len) && start < s.saturating_add(l)
}

/// Before `munmap(start, len)`: open any armed mapping in the range again (a
/// partial unmap must not leave a PROT_NONE remainder behind) and forget it.
/// Whether a BO mapping was in the range.
pub fn unmapping(start: usize, len: usize) -> bool {
    let _g = lock();
    let mut any = false;
    for slot in &TABLE {
        let state = slot.state.load(Ordering::Acquire);
        if state == FREE || !overlaps(slot, start, len) {
            continue;
        }
        any = true;
        if state == ARMED {
            restore(slot);
        }
        slot.state.store(FREE, Ordering::Release);
    }
    any
}

fn restore(slot: &Slot) -> bool {
    let (s, l, p) = (
        slot.start.load(Ordering::Relaxed),
        slot.len.load(Ordering::Relaxed),
        slot.prot.load(Ordering::Relaxed),
    );
    // SAFETY: the range is a mapping the program made; we give it back the
    // protection it asked for.
    unsafe { libc::mprotect(s as *mut libc::c_void, l, p) == 0 }
}

/// After a successful submission: every open BO mapping becomes PROT_NONE.
pub fn arm_all() {
    if !out::touch_enabled() {
        return;
    }
    let g = lock();
    let mut failed = false;
    for slot in &TABLE {
        if slot
            .state
            .compare_exchange(OPEN, ARMED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue;
        }
        let (s, l) = (
            slot.start.load(Ordering::Relaxed),
            slot.len.load(Ordering::Relaxed),
        );
        // SAFETY: a BO mapping of the program's; the handler restores it on first access.
        if unsafe { libc::mprotect(s as *mut libc::c_void, l, libc::PROT_NONE) } != 0 {
            slot.state.store(OPEN, Ordering::Release);
            failed = true;
            break;
        }
    }
    drop(g);
    if failed {
        out::disable("mprotect of a BO mapping failed");
    }
}

/// Every armed mapping gets its protection back (the recorder has stopped).
pub fn disarm_all() {
    let _g = lock();
    for slot in &TABLE {
        if slot
            .state
            .compare_exchange(ARMED, OPEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            restore(slot);
        }
    }
}

/// In a forked child: the table describes the parent's mappings, which the
/// child shares copy-on-write with the same protections; keep them.
pub fn forget_after_fork() {}

/// The SIGSEGV handler.
extern "C" fn on_sigsegv(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let saved = errno();
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    // si_code > 0: raised by the kernel for a fault (not sent with kill()).
    if code > 0 && handle_fault(addr) {
        set_errno(saved);
        return;
    }
    set_errno(saved);
    chain(sig, info, ctx);
}

fn handle_fault(addr: usize) -> bool {
    let Some(slot) = TABLE
        .iter()
        .find(|s| s.state.load(Ordering::Acquire) != FREE && overlaps(s, addr, 1))
    else {
        return false;
    };
    match slot
        .state
        .compare_exchange(ARMED, RESTORING, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => {
            let rec = Record {
                time_ns: now_ns(),
                fd: slot.fd.load(Ordering::Relaxed),
                result: 0,
                body: Body::Touch {
                    handle: slot.handle.load(Ordering::Relaxed),
                    map_addr: slot.start.load(Ordering::Relaxed) as u64,
                    fault_addr: addr as u64,
                },
            };
            out::write(&rec, true);
            let ok = restore(slot);
            slot.state.store(OPEN, Ordering::Release);
            if !ok {
                out::disable_quietly(b"mprotect failed in the fault handler");
                return false;
            }
            true
        }
        Err(RESTORING) => {
            // Another thread is opening it; retry the access once it has.
            while slot.state.load(Ordering::Acquire) == RESTORING {
                // SAFETY: sched_yield is async-signal-safe and has no preconditions.
                unsafe { libc::sched_yield() };
            }
            true
        }
        // Open already: a thread raced us to it (retry), unless the mapping
        // cannot be accessed this way at all (a write to a read-only map),
        // which is the program's own fault.
        Err(_) => slot.prot.load(Ordering::Relaxed) & libc::PROT_WRITE != 0,
    }
}

/// Passes a fault that is not ours to the program's action, as the kernel would.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let act = load_program();
    let handler = act.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // The kernel kills on an ignored or default fault: reset to default and
        // let the fault happen again (or, for a sent signal, raise it again).
        if let Some(sigaction) = real().sigaction {
            // SAFETY: zeroed sigaction is SIG_DFL with no flags.
            let dfl: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: valid action pointer.
            unsafe { sigaction(libc::SIGSEGV, &dfl, std::ptr::null_mut()) };
        }
        INSTALLED.store(false, Ordering::Release);
        // SAFETY: reading the siginfo the kernel passed.
        let code = unsafe { (*info).si_code };
        if code <= 0 && handler == libc::SIG_DFL {
            // SAFETY: raise is async-signal-safe.
            unsafe { libc::raise(sig) };
        }
        return;
    }
    if act.sa_flags & libc::SA_RESETHAND != 0 {
        PROGRAM.handler.store(libc::SIG_DFL, Ordering::Release);
    }
    // Block what the program's action blocks while its handler runs.
    // SAFETY: zeroed sigset_t is valid; sigprocmask is async-signal-safe.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut mask = act.sa_mask;
    // SAFETY: valid sigset pointers.
    unsafe {
        if act.sa_flags & libc::SA_NODEFER == 0 {
            libc::sigaddset(&mut mask, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &mask, &mut old);
    }
    if act.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the program installed this as an SA_SIGINFO handler.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the program installed this as a plain handler.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
    // SAFETY: restoring the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
}

/// The program's `sigaction`: SIGSEGV is kept here while our handler is
/// installed; everything else goes to libc.
///
/// # Safety
///
/// As `sigaction(2)`: `act` and `old` are null or valid.
pub unsafe fn program_sigaction(
    sig: libc::c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> libc::c_int {
    if sig == libc::SIGSEGV && INSTALLED.load(Ordering::Acquire) {
        if !old.is_null() {
            // SAFETY: `old` is valid for writes (the caller's contract).
            unsafe { *old = load_program() };
        }
        if !act.is_null() {
            // SAFETY: `act` is valid for reads.
            store_program(unsafe { &*act });
        }
        return 0;
    }
    match real().sigaction {
        // SAFETY: forwarded as given.
        Some(f) => unsafe { f(sig, act, old) },
        None => {
            set_errno(libc::ENOSYS);
            -1
        }
    }
}

/// The program's `signal`: as glibc's (BSD semantics: SA_RESTART, the
/// signal blocked in its handler), kept here for SIGSEGV.
pub fn program_signal(sig: libc::c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if sig == libc::SIGSEGV && INSTALLED.load(Ordering::Acquire) {
        let previous = PROGRAM.handler.load(Ordering::Acquire);
        // SAFETY: zeroed sigaction; handler, flags and mask set below.
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = handler;
        act.sa_flags = libc::SA_RESTART;
        // SAFETY: valid sigset pointer.
        unsafe {
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaddset(&mut act.sa_mask, sig);
        }
        store_program(&act);
        return previous;
    }
    match real().signal {
        // SAFETY: forwarded as given.
        Some(f) => unsafe { f(sig, handler) },
        None => libc::SIG_ERR,
    }
}
