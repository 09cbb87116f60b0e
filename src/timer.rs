//! Time: the generic timer's physical counter (CNTPCT_EL0, frequency from
//! CNTFRQ_EL0 read at run time: 19.2 MHz on a Pi 3, 62.5 MHz under QEMU) and
//! the PMU cycle counter (PMCCNTR_EL0), which aarch64-cpu does not cover.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTPCT_EL0};
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

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

/// Converts counter ticks to nanoseconds (rounded down).
#[inline]
pub fn ticks_to_ns(ticks: u64) -> u64 {
    bcm::ticks::ticks_to_ns(ticks, frequency())
}

/// Counter ticks in `ns` nanoseconds (rounded up).
#[inline]
pub fn ns_to_ticks(ns: u64) -> u64 {
    bcm::ticks::ns_to_ticks(ns, frequency())
}

/// Nanoseconds since the counter started.
pub fn now_ns() -> u64 {
    ticks_to_ns(now_ticks())
}

/// A deadline `micros` from now, in counter ticks.
pub fn deadline_after_us(micros: u64) -> u64 {
    now_ticks() + ns_to_ticks(micros.saturating_mul(1_000))
}

/// Starts the PMU cycle counter: PMCR_EL0.E (bit 0) enables the counters,
/// PMCR_EL0.C (bit 2) resets the cycle counter, PMCNTENSET_EL0 bit 31 enables
/// it. The boot stub clears MDCR_EL2.TPM/TPMCR (and MDCR_EL3), so these
/// accesses do not trap to a higher exception level.
///
/// Two more fields have architecturally UNKNOWN reset values and are set
/// here because silicon honours them (QEMU's reset leaves them 0):
/// PMCR_EL0.D (bit 3) would make PMCCNTR_EL0 count every 64th cycle, and
/// PMCCFILTR_EL0.P (bit 31) would stop it counting at EL1 at all. Zero in
/// PMCCFILTR_EL0 counts at EL0 and EL1 in both security states.
pub fn enable_cycle_counter() {
    // SAFETY: PMU control registers, accessible at EL1; no memory effects.
    unsafe {
        asm!(
            "msr pmccfiltr_el0, xzr",
            "mrs {t}, pmcr_el0",
            "bic {t}, {t}, #0x8",
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

/// The ARM clock rate the stopwatch converts cycles with; 0 while the
/// stopwatch uses the generic counter. Written once at boot, before any move
/// is timed (a plain store: no exclusives needed).
static STOPWATCH_CYCLE_HZ: AtomicU64 = AtomicU64::new(0);

/// Times moves and replays with the PMU cycle counter from now on, converting
/// cycles at `arm_clock_hz` (the ARM clock the mailbox reports after boot
/// raised it to its maximum).
///
/// Only for silicon. Under QEMU the cycle counter runs at QEMU's own notional
/// rate, not at the ARM clock the emulated mailbox reports, so cycles cannot be
/// turned into time there and the stopwatch stays on CNTPCT_EL0. On a Pi 3 the
/// cycle counter resolves one ARM cycle (under 1 ns at the 1.2 GHz maximum)
/// instead of the generic counter's 52 ns at 19.2 MHz (about a 4 KiB CPU
/// copy). The conversion holds only while the ARM clock stays where it was
/// set: the VideoCore lowers it silently when it throttles (temperature,
/// under-voltage), so every run is bracketed by a [`calibrate`] and the
/// throttled flags, and flagged when they disagree (`records::conditions`).
pub fn time_with_cycle_counter(arm_clock_hz: u32) {
    STOPWATCH_CYCLE_HZ.store(u64::from(arm_clock_hz), Ordering::Relaxed);
}

/// The rate the stopwatch converts cycles with, when it uses the cycle
/// counter (`None`: it uses CNTPCT_EL0).
pub fn stopwatch_cycle_hz() -> Option<u64> {
    match STOPWATCH_CYCLE_HZ.load(Ordering::Relaxed) {
        0 => None,
        hz => Some(hz),
    }
}

/// The calibration interval every run is bracketed with.
pub const CALIBRATION_US: u64 = 10_000;

/// Counts PMU cycles over `micros` microseconds of the generic timer:
/// busy-waits on CNTPCT_EL0 (so the interval is exact to one counter tick)
/// and reads the cycle counter at both ends. Its rate is
/// `records::Calibration::cycle_hz`.
pub fn calibrate(micros: u64) -> records::Calibration {
    let wanted = ns_to_ticks(micros.saturating_mul(1_000));
    let start = now_ticks();
    let c0 = cycles();
    let mut now = start;
    while now - start < wanted {
        now = now_ticks();
    }
    let c1 = cycles();
    records::Calibration {
        counter_ticks: now - start,
        counter_hz: frequency(),
        cycles: c1.wrapping_sub(c0),
    }
}

/// The stopwatch now, in its own ticks (see [`stopwatch_ns`]).
#[inline]
pub fn stopwatch_ticks() -> u64 {
    if STOPWATCH_CYCLE_HZ.load(Ordering::Relaxed) == 0 {
        now_ticks()
    } else {
        cycles()
    }
}

/// Converts a stopwatch interval to nanoseconds.
#[inline]
pub fn stopwatch_ns(ticks: u64) -> u64 {
    match STOPWATCH_CYCLE_HZ.load(Ordering::Relaxed) {
        0 => ticks_to_ns(ticks),
        hz => bcm::ticks::ticks_to_ns(ticks, hz),
    }
}

/// Nanoseconds elapsed since `start` (a [`stopwatch_ticks`] reading).
#[inline]
pub fn stopwatch_elapsed_ns(start: u64) -> u64 {
    stopwatch_ns(stopwatch_ticks().wrapping_sub(start))
}

/// What the stopwatch is, for the records: every report names its timer.
pub fn stopwatch_timer() -> records::Timer {
    match STOPWATCH_CYCLE_HZ.load(Ordering::Relaxed) {
        0 => records::Timer {
            name: "CNTPCT_EL0 (generic timer)".into(),
            hz: frequency(),
        },
        hz => records::Timer {
            name: "PMCCNTR_EL0 (PMU cycle counter at the ARM clock)".into(),
            hz,
        },
    }
}
