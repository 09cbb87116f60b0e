//! `vc4-client SCENARIO`: drives the vc4 UAPI with real `ioctl`, `mmap` and
//! `read` calls on `/dev/dri/card0` (the fake device in the recorder's
//! tests) and prints one line per call, `name result errno [values]`, for the
//! tests to compare with what the recorder wrote.

use capture::uapi::{self, ioctl as nr};
use libc::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

fn errno() -> c_int {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

/// One ioctl; prints `name ret errno`, returns the result.
fn call<T>(fd: c_int, name: &str, request: u32, arg: &mut T) -> c_int {
    // SAFETY: `arg` is the request's struct, exclusively borrowed for the call.
    let r = unsafe { libc::ioctl(fd, request as libc::c_ulong, arg as *mut T as *mut c_void) };
    let e = if r < 0 { errno() } else { 0 };
    print!("{name} {r} {e}");
    r
}

fn open_device() -> c_int {
    // SAFETY: a static NUL-terminated path.
    let fd = unsafe { libc::open(c"/dev/dri/card0".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    println!("open {fd} {}", if fd < 0 { errno() } else { 0 });
    assert!(fd >= 0, "cannot open /dev/dri/card0");
    fd
}

fn create(fd: c_int, size: u32) -> u32 {
    let mut a = uapi::Vc4CreateBo {
        size,
        ..Default::default()
    };
    call(fd, "create_bo", nr::VC4_CREATE_BO, &mut a);
    println!(" handle={} size={size}", a.handle);
    a.handle
}

fn map(fd: c_int, handle: u32, len: usize) -> *mut u8 {
    let mut a = uapi::Vc4MmapBo {
        handle,
        ..Default::default()
    };
    call(fd, "mmap_bo", nr::VC4_MMAP_BO, &mut a);
    println!(" handle={handle} offset={}", a.offset);
    // SAFETY: mapping a BO of at least `len` bytes at the offset the device gave.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            a.offset as libc::off_t,
        )
    };
    println!(
        "mmap {} {} addr={:#x} len={len}",
        if p == libc::MAP_FAILED { -1 } else { 0 },
        if p == libc::MAP_FAILED { errno() } else { 0 },
        p as usize
    );
    assert!(p != libc::MAP_FAILED);
    p.cast()
}

fn unmap(p: *mut u8, len: usize) {
    // SAFETY: unmapping a mapping this program made.
    let r = unsafe { libc::munmap(p.cast(), len) };
    println!("munmap {r} 0 addr={:#x}", p as usize);
}

fn gem_close(fd: c_int, handle: u32) -> c_int {
    let mut a = uapi::GemClose { handle, pad: 0 };
    let r = call(fd, "gem_close", nr::GEM_CLOSE, &mut a);
    println!(" handle={handle}");
    r
}

fn madvise(fd: c_int, handle: u32, madv: u32) {
    let mut a = uapi::Vc4GemMadvise {
        handle,
        madv,
        ..Default::default()
    };
    call(fd, "madvise", nr::VC4_GEM_MADVISE, &mut a);
    println!(" handle={handle} madv={madv} retained={}", a.retained);
}

/// A 1-tile job over `handles` that renders to the first.
fn submit(fd: c_int, handles: &[u32]) -> (c_int, u64) {
    let bin = [0u8; 64];
    let absent = uapi::Vc4SubmitRclSurface {
        hindex: !0,
        ..Default::default()
    };
    let mut a = uapi::Vc4SubmitCl {
        bin_cl: bin.as_ptr() as u64,
        bo_handles: handles.as_ptr() as u64,
        bin_cl_size: bin.len() as u32,
        bo_handle_count: handles.len() as u32,
        width: 64,
        height: 64,
        color_read: absent,
        color_write: uapi::Vc4SubmitRclSurface {
            hindex: 0,
            ..Default::default()
        },
        zs_read: absent,
        zs_write: absent,
        msaa_color_write: absent,
        msaa_zs_write: absent,
        ..Default::default()
    };
    let r = call(fd, "submit_cl", nr::VC4_SUBMIT_CL, &mut a);
    println!(" seqno={} handles={handles:?}", a.seqno);
    (r, a.seqno)
}

fn wait_seqno(fd: c_int, seqno: u64, timeout_ns: u64) -> c_int {
    let mut a = uapi::Vc4WaitSeqno { seqno, timeout_ns };
    let r = call(fd, "wait_seqno", nr::VC4_WAIT_SEQNO, &mut a);
    println!(" seqno={seqno} timeout={timeout_ns}");
    r
}

fn wait_bo(fd: c_int, handle: u32, timeout_ns: u64) -> c_int {
    let mut a = uapi::Vc4WaitBo {
        handle,
        pad: 0,
        timeout_ns,
    };
    let r = call(fd, "wait_bo", nr::VC4_WAIT_BO, &mut a);
    println!(" handle={handle} timeout={timeout_ns}");
    r
}

fn close(fd: c_int) {
    // SAFETY: closing an fd this program opened.
    let r = unsafe { libc::close(fd) };
    println!("close {r} {} fd={fd}", if r < 0 { errno() } else { 0 });
}

fn touch(p: *mut u8, value: u8) {
    // SAFETY: a mapping of at least one page this program made.
    unsafe { std::ptr::write_volatile(p, value) };
}

fn basic() {
    let fd = open_device();
    let a = create(fd, 5000);
    let b = create(fd, 4096);
    let code = [0u8; 64];
    let mut s = uapi::Vc4CreateShaderBo {
        size: 64,
        data: code.as_ptr() as u64,
        ..Default::default()
    };
    call(fd, "create_shader_bo", nr::VC4_CREATE_SHADER_BO, &mut s);
    println!(" handle={}", s.handle);
    let p = map(fd, a, 8192);
    touch(p, 1); // before any job: not a touch the recorder reports
    let (_, seqno) = submit(fd, &[a, b]);
    touch(p, 2);
    touch(p, 3); // the second access after the job: no second record
    println!("touched 0 0 addr={:#x}", p as usize);
    madvise(fd, b, uapi::VC4_MADV_DONTNEED);
    madvise(fd, b, uapi::VC4_MADV_WILLNEED);
    wait_seqno(fd, seqno, u64::MAX);
    wait_bo(fd, a, 0);
    gem_close(fd, b);
    // SAFETY: reading back what was written through the same mapping.
    let back = unsafe { std::ptr::read_volatile(p) };
    println!("readback {back} 0");
    unmap(p, 8192);
    gem_close(fd, a);
    gem_close(fd, s.handle);
    close(fd);
}

fn errors() {
    let fd = open_device();
    gem_close(fd, 999);
    wait_bo(fd, 999, 0);
    madvise(fd, 999, uapi::VC4_MADV_DONTNEED);
    create(fd, 0);
    submit(fd, &[999]);
    let h = create(fd, 4096);
    let (_, seqno) = submit(fd, &[h]);
    wait_seqno(fd, seqno, 0); // the job is still running: ETIME
    wait_seqno(fd, seqno, u64::MAX);
    gem_close(fd, h);
    close(fd);
}

fn prime() {
    let fd = open_device();
    let h = create(fd, 8192);
    let mut ex = uapi::PrimeHandle {
        handle: h,
        flags: libc::O_CLOEXEC as u32,
        fd: -1,
    };
    call(fd, "prime_export", nr::PRIME_HANDLE_TO_FD, &mut ex);
    println!(" handle={h} fd={}", ex.fd);
    let mut im = uapi::PrimeHandle {
        handle: 0,
        flags: 0,
        fd: ex.fd,
    };
    call(fd, "prime_import", nr::PRIME_FD_TO_HANDLE, &mut im);
    println!(" fd={} handle={}", ex.fd, im.handle);
    gem_close(fd, h);
    close(ex.fd);
    close(fd);
}

fn kms() {
    let fd = open_device();
    let size = 1920 * 1080 * 4;
    let front = create(fd, size);
    let back = create(fd, size);
    let mut fbs = [0u32; 2];
    for (i, h) in [front, back].into_iter().enumerate() {
        let mut a = uapi::ModeFbCmd2 {
            width: 1920,
            height: 1080,
            pixel_format: 0x3432_5258,
            ..Default::default()
        };
        a.handles[0] = h;
        a.pitches[0] = 1920 * 4;
        call(fd, "addfb2", nr::MODE_ADDFB2, &mut a);
        println!(" fb={} handle={h}", a.fb_id);
        fbs[i] = a.fb_id;
    }
    let mut crtc = uapi::ModeCrtc {
        crtc_id: 31,
        fb_id: fbs[0],
        ..Default::default()
    };
    call(fd, "setcrtc", nr::MODE_SETCRTC, &mut crtc);
    println!(" fb={}", fbs[0]);
    submit(fd, &[back]);
    let mut flip = uapi::ModeCrtcPageFlip {
        crtc_id: 31,
        fb_id: fbs[1],
        flags: uapi::DRM_MODE_PAGE_FLIP_EVENT,
        reserved: 0,
        user_data: 0xfeed,
    };
    call(fd, "page_flip", nr::MODE_PAGE_FLIP, &mut flip);
    println!(" fb={}", fbs[1]);
    let mut ev = uapi::EventVblank::default();
    // SAFETY: reading one event into a struct of the event's size.
    let n = unsafe {
        libc::read(
            fd,
            (&mut ev as *mut uapi::EventVblank).cast(),
            std::mem::size_of::<uapi::EventVblank>(),
        )
    };
    println!(
        "event {n} 0 type={} tv={}.{:06} user_data={:#x} crtc={}",
        ev.base.type_, ev.tv_sec, ev.tv_usec, ev.user_data, ev.crtc_id
    );
    let mut rm = fbs[0];
    call(fd, "rmfb", nr::MODE_RMFB, &mut rm);
    println!(" fb={}", fbs[0]);
    gem_close(fd, front);
    gem_close(fd, back);
    close(fd);
}

static OWN_HANDLER_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn own_handler(_sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    OWN_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the kernel's siginfo; opening the page this program protected itself.
    unsafe {
        let page = ((*info).si_addr() as usize) & !4095;
        libc::mprotect(
            page as *mut c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
        );
    }
}

fn sigsegv() {
    // The program's own handler, installed before the device is used.
    install_own();
    let fd = open_device();
    let h = create(fd, 4096);
    let p = map(fd, h, 4096);
    let (_, seqno) = submit(fd, &[h]);
    // SAFETY: an anonymous page of this program's, made inaccessible on purpose.
    let own = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    touch(p, 7); // the recorder's fault: the program must not see it
    println!(
        "after_bo_touch {} 0",
        OWN_HANDLER_CALLS.load(Ordering::SeqCst)
    );
    touch(own.cast(), 1); // the program's own fault: its handler must run
    println!(
        "after_own_fault {} 0",
        OWN_HANDLER_CALLS.load(Ordering::SeqCst)
    );
    // What the program sees when it asks for its action.
    // SAFETY: a zeroed sigaction to be filled.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying the action.
    unsafe { libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut old) };
    let expected = own_handler as *const () as usize;
    println!(
        "sigaction_query {} 0",
        (old.sa_sigaction == expected) as i32
    );
    wait_seqno(fd, seqno, u64::MAX);
    unmap(p, 4096);
    gem_close(fd, h);
    close(fd);
}

extern "C" fn plain_handler(sig: c_int) {
    let _ = sig;
    OWN_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
    // No siginfo here: open every page of ours that the test protected.
    let page = OWN_PAGE.load(Ordering::SeqCst);
    // SAFETY: the page this program protected itself.
    unsafe {
        libc::mprotect(
            page as *mut c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
}

static OWN_PAGE: AtomicUsize = AtomicUsize::new(0);

fn install_own() {
    // SAFETY: a zeroed sigaction, filled with an SA_SIGINFO handler.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    let handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) = own_handler;
    act.sa_sigaction = handler as usize;
    act.sa_flags = libc::SA_SIGINFO;
    // SAFETY: installing a handler for SIGSEGV.
    unsafe { libc::sigaction(libc::SIGSEGV, &act, std::ptr::null_mut()) };
}

fn dup_fds() {
    let fd = open_device();
    // SAFETY: duplicating an fd this program owns.
    let copy = unsafe { libc::dup(fd) };
    println!("dup {copy} 0 from={fd}");
    // SAFETY: as above.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) };
    println!("fcntl_dupfd {high} 0 from={fd}");
    close(fd);
    let h = create(copy, 4096);
    close(copy);
    gem_close(high, h);
    close(high);
}

/// `frames N`: a small render loop (a per-frame BO, a job, a touch, a wait).
fn frames(n: usize) {
    let fd = open_device();
    let shared = create(fd, 65536);
    let p = map(fd, shared, 65536);
    for i in 0..n {
        let h = create(fd, 16384);
        let (_, seqno) = submit(fd, &[shared, h]);
        touch(p, i as u8);
        wait_seqno(fd, seqno, u64::MAX);
        gem_close(fd, h);
    }
    unmap(p, 65536);
    gem_close(fd, shared);
    close(fd);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("basic") => basic(),
        Some("errors") => errors(),
        Some("prime") => prime(),
        Some("kms") => kms(),
        Some("sigsegv") => sigsegv(),
        Some("sigsegv-signal") => {
            // SAFETY: an anonymous page to fault on, recorded for the plain handler.
            let page = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            OWN_PAGE.store(page as usize, Ordering::SeqCst);
            sigsegv_signal(page.cast());
        }
        Some("dup") => dup_fds(),
        Some("frames") => frames(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(10)),
        _ => {
            eprintln!(
                "usage: vc4-client basic|errors|prime|kms|sigsegv|sigsegv-signal|dup|frames N"
            );
            std::process::exit(2);
        }
    }
}

/// As `sigsegv`, with the handler installed by `signal()` and the fault on a known page.
fn sigsegv_signal(own: *mut u8) {
    let handler: extern "C" fn(c_int) = plain_handler;
    // SAFETY: installing a handler for SIGSEGV.
    unsafe { libc::signal(libc::SIGSEGV, handler as libc::sighandler_t) };
    let fd = open_device();
    let h = create(fd, 4096);
    let p = map(fd, h, 4096);
    let (_, seqno) = submit(fd, &[h]);
    touch(p, 7);
    println!(
        "after_bo_touch {} 0",
        OWN_HANDLER_CALLS.load(Ordering::SeqCst)
    );
    touch(own, 1);
    println!(
        "after_own_fault {} 0",
        OWN_HANDLER_CALLS.load(Ordering::SeqCst)
    );
    wait_seqno(fd, seqno, u64::MAX);
    unmap(p, 4096);
    gem_close(fd, h);
    close(fd);
}
