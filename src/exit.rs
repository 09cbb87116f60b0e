//! Ending a run: semihosting SYS_EXIT under QEMU, a final message and sleep
//! on silicon.
//!
//! On silicon `hlt` is an undefined instruction unless a debugger enables
//! halting debug, so the exit path must know where it runs. Boot decides once
//! (see `platform::detect`) and calls [`set_emulated`]. Before that, a failure
//! assumes QEMU only if CNTFRQ_EL0 reads 62.5 MHz (QEMU's value; a Pi 3's
//! firmware sets 19.2 MHz): the same first signal the full decision uses, and
//! one that needs nothing but a system register.

use crate::{timer, uart};
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// QEMU's generic timer frequency (and never a Pi 3's).
pub const QEMU_CNTFRQ_HZ: u64 = 62_500_000;

const UNKNOWN: u8 = 0;
const EMULATED: u8 = 1;
const SILICON: u8 = 2;

// Plain loads and stores only (no read-modify-write): valid before the MMU is on.
static WHERE: AtomicU8 = AtomicU8::new(UNKNOWN);
static EXITING: AtomicBool = AtomicBool::new(false);

/// Records the boot's decision.
pub fn set_emulated(emulated: bool) {
    WHERE.store(if emulated { EMULATED } else { SILICON }, Ordering::Relaxed);
}

/// Whether the exit path will use semihosting.
pub fn is_emulated() -> bool {
    match WHERE.load(Ordering::Relaxed) {
        EMULATED => true,
        SILICON => false,
        _ => timer::frequency() == QEMU_CNTFRQ_HZ,
    }
}

/// Ends the run with `code`. Under QEMU the host sees `code` (truncated to
/// 8 bits by the host OS) as QEMU's exit status.
pub fn exit(code: u32) -> ! {
    // A fault inside the exit path (e.g. QEMU started without -semihosting
    // makes `hlt` undefined) must not loop back here.
    if EXITING.load(Ordering::Relaxed) {
        park();
    }
    EXITING.store(true, Ordering::Relaxed);
    uart::flush();
    if is_emulated() {
        semihosting_exit(code);
    }
    defmt::error!(
        "run ended with exit code {=u32}; on a real Pi there is no semihosting: the CPU now sleeps, power-cycle to run again",
        code
    );
    uart::flush();
    park()
}

/// SYS_EXIT (0x18) with the AArch64 parameter block
/// [ADP_Stopped_ApplicationExit, exit code].
fn semihosting_exit(code: u32) {
    let block: [u64; 2] = [0x20026, u64::from(code)];
    // SAFETY: `hlt #0xf000` is QEMU's semihosting trap; x1 points to a valid
    // block. If QEMU honours it, it does not return.
    unsafe {
        asm!("hlt #0xf000", in("x0") 0x18u64, in("x1") block.as_ptr(), options(nostack));
    }
}

/// Sleeps forever: `wfe` on silicon; `wfi` under QEMU, where `wfe` is only a
/// yield and a `wfe` loop would burn a host core until the host's timeout.
pub fn park() -> ! {
    let emulated = is_emulated();
    loop {
        if emulated {
            aarch64_cpu::asm::wfi();
        } else {
            aarch64_cpu::asm::wfe();
        }
    }
}
