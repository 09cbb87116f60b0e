//! Time: the generic timer's physical counter (CNTPCT_EL0, frequency from
//! CNTFRQ_EL0 read at run time: 19.2 MHz on a Pi 3, 62.5 MHz under QEMU) and
//! the PMU cycle counter (PMCCNTR_EL0), which aarch64-cpu does not cover.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTPCT_EL0};
use core::arch::asm;

/// The counter now, in ticks of [`frequency`]. The `isb` keeps the read from
/// being hoisted above earlier instructions, so intervals measure what lies
/// between two calls.
#[inline]
pub fn now_ticks() -> u64 {
    barrier::isb(barrier::SY);
    CNTPCT_EL0.get()
}

/// Counter frequency in Hz (CNTFRQ_EL0, set by the boot firmware or QEMU).
#[inline]
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Converts counter ticks to nanoseconds (exact up to rounding down; no overflow).
#[inline]
pub fn ticks_to_ns(ticks: u64) -> u64 {
    let hz = frequency().max(1);
    (u128::from(ticks) * 1_000_000_000 / u128::from(hz)) as u64
}

/// Nanoseconds since the counter started.
pub fn now_ns() -> u64 {
    ticks_to_ns(now_ticks())
}

/// A deadline `micros` from now, in counter ticks.
pub fn deadline_after_us(micros: u64) -> u64 {
    now_ticks() + frequency() * micros / 1_000_000
}

/// Starts the PMU cycle counter: PMCR_EL0.E (bit 0) enables the counters,
/// PMCR_EL0.C (bit 2) resets the cycle counter, PMCNTENSET_EL0 bit 31 enables
/// it. The boot stub clears MDCR_EL2.TPM/TPMCR (and MDCR_EL3), so these
/// accesses do not trap to a higher exception level.
pub fn enable_cycle_counter() {
    // SAFETY: PMU control registers, accessible at EL1; no memory effects.
    unsafe {
        asm!(
            "mrs {t}, pmcr_el0",
            "orr {t}, {t}, #0x1",
            "orr {t}, {t}, #0x4",
            "msr pmcr_el0, {t}",
            "mov {t}, #0x80000000",
            "msr pmcntenset_el0, {t}",
            "isb",
            t = out(reg) _,
            options(nostack, preserves_flags)
        );
    }
}

/// CPU cycles counted since [`enable_cycle_counter`] (PMCCNTR_EL0). Under
/// QEMU this counts instructions, not real cycles.
#[inline]
pub fn cycles() -> u64 {
    let value: u64;
    // SAFETY: reading PMCCNTR_EL0 at EL1 has no side effects.
    unsafe {
        asm!("isb", "mrs {}, pmccntr_el0", out(reg) value, options(nostack, preserves_flags));
    }
    value
}
