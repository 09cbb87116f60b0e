//! The self-test modes, run on the target (`cargo xtask test` boots the
//! firmware once per mode under QEMU; `cargo xtask sdcard --mode` does the
//! same on a Pi): [`boot`] asserts the state boot promises, [`crash`] ends
//! the run on purpose through the panic and the exception report, [`dma`]
//! tests the DMA driver and movers (and, through [`copy`], the CPU copy
//! loop), [`faults`] injects faults and expects them caught, [`bringup`]
//! measures a new board (clocks, cache coherency, copy throughput),
//! [`alloc_bench`] times allocation with and without zeroing (issue 13).
//!
//! Every check goes through one [`Checks`] reporter: a log line and a
//! `Record::Check` named as in `protocol::check`, which the host's target
//! tests look up. A mode returns its number of failed checks, its exit code.

pub mod alloc_bench;
pub mod boot;
pub mod bringup;
pub mod copy;
pub mod crash;
pub mod dma;
pub mod faults;

use crate::dma::DmaChannel;
use crate::logger::send_record;
use crate::platform::Platform;
use alloc::format;
use alloc::string::String;
use bcm::dma_plan::Engine;
use protocol::exit_code;
use records::Record;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Collects check results and streams each as a record.
pub struct Checks {
    total: u32,
    failed: u32,
}

impl Checks {
    pub fn new() -> Self {
        Checks {
            total: 0,
            failed: 0,
        }
    }

    /// Reports one check: a log line and a `Record::Check`.
    pub fn check(&mut self, name: &str, passed: bool, detail: String) {
        self.total += 1;
        if passed {
            defmt::info!("check {=str}: ok ({=str})", name, detail.as_str());
        } else {
            self.failed += 1;
            defmt::error!("check {=str}: FAILED ({=str})", name, detail.as_str());
        }
        send_record(&Record::Check {
            name: name.into(),
            passed,
            detail,
        });
    }

    /// Logs the summary of the mode `what`; returns the number of failed
    /// checks, the mode's exit code (kept below the reserved codes, so that
    /// many failures never read as, say, a panic).
    pub fn finish(self, what: &str) -> u32 {
        if self.failed == 0 {
            defmt::info!("{=str}: all {=u32} checks passed", what, self.total);
        } else {
            defmt::error!(
                "{=str}: {=u32} of {=u32} checks failed",
                what,
                self.failed,
                self.total
            );
        }
        self.failed.min(exit_code::FIRST_RESERVED - 1)
    }
}

/// The platform's DMA channel, or a failed check saying there is none.
fn platform_channel(checks: &mut Checks, platform: &Platform) -> Option<u8> {
    if platform.dma_channel.is_none() {
        checks.check(
            protocol::check::NO_DMA_CHANNEL,
            false,
            "the platform names no usable DMA channel".into(),
        );
    }
    platform.dma_channel
}

/// Opens `channel` or records why not under the check `name`.
fn open(checks: &mut Checks, name: &str, channel: u8, engine: Engine) -> Option<DmaChannel> {
    match DmaChannel::open(channel, engine) {
        Ok(ch) => Some(ch),
        Err(e) => {
            checks.check(
                name,
                false,
                format!("cannot open DMA channel {channel}: {e:?}"),
            );
            None
        }
    }
}

/// Milliseconds with three decimals, for check details.
fn ms(ns: u64) -> String {
    format!("{}.{:03} ms", ns / 1_000_000, ns / 1_000 % 1_000)
}

/// The word at index `i` of test pattern `seed`.
fn pattern(seed: u64, i: usize) -> u32 {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (z ^ (z >> 29)) as u32
}

/// Fills `[at, at + len)` with pattern `seed`.
///
/// # Safety
/// The range must be mapped, 4-byte aligned memory that the caller owns for
/// the duration of the call: no reference to it and no DMA transfer into or
/// out of it.
unsafe fn fill(at: usize, len: usize, seed: u64) {
    for i in 0..len / 4 {
        // SAFETY: inside the range the caller vouches for.
        unsafe { ((at + 4 * i) as *mut u32).write_volatile(pattern(seed, i)) };
    }
}

/// The first word of `[at, at + len)` that differs from pattern `seed`:
/// (byte offset, expected, found).
///
/// # Safety
/// As for [`fill`]: mapped, aligned, and no DMA transfer writing it.
unsafe fn first_mismatch(at: usize, len: usize, seed: u64) -> Option<(usize, u32, u32)> {
    (0..len / 4).find_map(|i| {
        // SAFETY: inside the range the caller vouches for.
        let found = unsafe { ((at + 4 * i) as *const u32).read_volatile() };
        let expected = pattern(seed, i);
        (found != expected).then_some((i * 4, expected, found))
    })
}

/// Reads the word at `at`.
///
/// # Safety
/// `at` must be a mapped, 4-byte aligned address that nothing else writes
/// during the call.
unsafe fn read_word(at: usize) -> u32 {
    // SAFETY: the caller's guarantee.
    unsafe { (at as *const u32).read_volatile() }
}

/// Writes `value` at `at`.
///
/// # Safety
/// `at` must be a mapped, 4-byte aligned address the caller owns: no
/// reference to it and no DMA transfer touching it.
unsafe fn write_word(at: usize, value: u32) {
    // SAFETY: the caller's guarantee.
    unsafe { (at as *mut u32).write_volatile(value) }
}
