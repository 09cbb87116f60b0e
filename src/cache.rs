//! Data-cache maintenance by virtual address range, for DMA.
//!
//! The BCM2837 DMA engine reads and writes SDRAM behind the Cortex-A53's
//! caches: it neither snoops them nor is snooped by them. Any transfer that
//! touches Normal cacheable memory (the backing heap of overflow buffers) needs
//! the CPU's view and memory's view made to agree around it:
//!
//! - source in cacheable memory: [`clean_invalidate`] it before the transfer,
//!   so dirty lines reach SDRAM before the engine reads it;
//! - destination in cacheable memory: [`invalidate`] it before the transfer,
//!   so no dirty line is written back over the engine's data when it is
//!   evicted later, and [`invalidate`] it again after completion, because the
//!   A53 may speculatively fetch lines of any Normal cacheable range (it is
//!   mapped, after all) while the engine is still writing, and such a line
//!   would hold the stale bytes.
//!
//! The pool and the control blocks are mapped Normal non-cacheable and need
//! none of this. QEMU models no caches at all, so a missing call here passes
//! every test under QEMU and corrupts data only on silicon: keep the calls
//! where the mover makes them.
//!
//! Identity mapping means virtual and physical addresses are equal, so the
//! addresses given to the engine and to these functions are the same numbers.

use core::arch::asm;

/// Smallest data cache line size in bytes, from CTR_EL0.DminLine (log2 of the
/// line size in 4-byte words). 64 on the Cortex-A53.
pub fn line_size() -> usize {
    let ctr: u64;
    // SAFETY: CTR_EL0 is readable at EL1 (and at EL0 unless SCTLR_EL1.UCT traps it).
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    4 << ((ctr >> 16) & 0xF)
}

/// Applies one `dc` operation to every line of `[start, start + len)`, then
/// waits for all of them to finish with `dsb sy` (the DMA engine is outside
/// the inner shareable domain, hence the full-system barrier).
macro_rules! by_line {
    ($op:literal, $start:expr, $len:expr) => {{
        let start: usize = $start;
        let len: usize = $len;
        if len != 0 {
            let line = line_size();
            let mut addr = start & !(line - 1);
            let end = start + len;
            while addr < end {
                // SAFETY: the caller guarantees the range is mapped; `dc` by VA
                // on a mapped address cannot fault for Normal memory.
                unsafe { asm!(concat!("dc ", $op, ", {}"), in(reg) addr, options(nostack, preserves_flags)) };
                addr += line;
            }
            crate::barrier::dsb_sy();
        }
    }};
}

/// Writes dirty lines of `[start, start + len)` back to memory and drops them
/// from the cache (`dc civac`), before the DMA engine reads the range.
///
/// Clean *and invalidate*, not the plain clean (`dc cvac`) a DMA read would
/// need, because of Cortex-A53 erratum 855873 (the BCM2837 is r0p4): an
/// eviction of a line can overtake a clean by address of the same line, so
/// the clean reports done while the line's data is not yet in memory; the
/// engine would then read stale bytes. The erratum notice's workarounds are
/// to set CPUACTLR_EL1 bit 44 (which only EL3 may write, and the Pi's
/// armstub does not) or to use `dc civac`, which the erratum does not
/// affect. Silicon only: QEMU models no caches.
///
/// # Safety
/// The whole range must be mapped. Cleaning and invalidating never changes
/// the data the CPU sees (the next read refetches what was written back), so
/// the range may be shared with other data.
pub unsafe fn clean_invalidate(start: *const u8, len: usize) {
    by_line!("civac", start as usize, len);
}

/// Discards the lines of `[start, start + len)` without writing them back
/// (`dc ivac`), so the next CPU read fetches what is in memory.
///
/// # Safety
/// The whole range must be mapped, and the caller must own every byte of
/// every cache line the range touches: a partial line at either end would
/// lose any dirty data of its neighbour. The mover only invalidates buffers
/// it allocated with cache-line alignment and a size that is a multiple of
/// the line size. Nothing may be writing the range through the cache
/// concurrently.
pub unsafe fn invalidate(start: *mut u8, len: usize) {
    debug_assert!(
        (start as usize).is_multiple_of(line_size()) && len.is_multiple_of(line_size()),
        "invalidate needs whole cache lines"
    );
    by_line!("ivac", start as usize, len);
}
