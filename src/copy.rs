//! The CPU's copy loop: what the CPU mover copies with, and what the DMA
//! mover falls back to.
//!
//! compiler_builtins' generic memmove moves 8 bytes per load and store. On
//! the pool, which is mapped Normal non-cacheable, every load is a separate
//! bus read that waits for SDRAM, so that loop makes the CPU side of
//! "DMA against CPU" several times slower than a CPU copy need be. This one
//! moves 64 bytes per iteration with two `ldp`/`stp` pairs of 128-bit q
//! registers, so four reads are in flight at once.
//!
//! **Overlap.** The loop runs forward and loads each 64-byte block (and each
//! tail step) completely before storing it, so it is correct for any
//! destination below the source, overlapping or not: the bytes a step
//! writes lie below everything later steps read. That is every move the
//! pool core makes (compaction only moves buffers down). A destination
//! inside the source (an upward overlapping copy) would read bytes it had
//! already overwritten; [`copy`] hands that case to `core::ptr::copy`,
//! which copies backwards.
//!
//! Unaligned addresses and lengths are fine: `ldp`/`stp` of q registers and
//! the tail's loads and stores may be unaligned on Normal memory (SCTLR_EL1.A
//! is clear, `boot/boot.s`). The target tests check odd offsets, odd lengths
//! and downward overlaps (`selftest::copy`).

use core::arch::asm;

/// The routine's name in results and the bring-up table.
pub const ROUTINE: &str = "CPU ldp/stp of q registers, 64 bytes per iteration (asm)";

/// Copies `len` bytes from `src` to `dst`. The ranges may overlap when
/// `dst` lies below `src` (forward copy) or above it (handed to
/// `core::ptr::copy`, backwards).
///
/// # Safety
/// Both ranges must be mapped Normal memory (not Device memory, where
/// unaligned accesses fault), readable and writable respectively, and no
/// DMA transfer and no Rust reference may use them during the copy.
pub unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) {
    let (d, s) = (dst as usize, src as usize);
    if len == 0 || d == s {
        return;
    }
    if s < d && d < s + len {
        // SAFETY: the caller's guarantee; `copy` allows any overlap.
        unsafe { core::ptr::copy(src, dst, len) };
        return;
    }
    // SAFETY: the caller's guarantee; the destination lies below the
    // source or the two are disjoint, which the forward loop allows.
    unsafe { copy_forward(dst, src, len) };
}

/// The forward loop: 64-byte blocks, then 16-, 4- and 1-byte steps.
///
/// # Safety
/// As for [`copy`], and `dst` must not lie inside `(src, src + len)`.
unsafe fn copy_forward(dst: *mut u8, src: *const u8, len: usize) {
    let blocks = len / 64;
    let tail = len % 64;
    // SAFETY: every access stays inside the two ranges the caller vouches
    // for; each step loads all it stores before storing (see the module
    // doc for why that makes downward overlap safe). `nostack`: no stack
    // use; the v registers are declared clobbered.
    unsafe {
        asm!(
            "cbz {blocks}, 2f",
            "1:",
            "ldp q0, q1, [{src}]",
            "ldp q2, q3, [{src}, #32]",
            "add {src}, {src}, #64",
            "subs {blocks}, {blocks}, #1",
            "stp q0, q1, [{dst}]",
            "stp q2, q3, [{dst}, #32]",
            "add {dst}, {dst}, #64",
            "b.ne 1b",
            "2:",
            "cmp {tail}, #16",
            "b.lo 3f",
            "ldr q0, [{src}], #16",
            "sub {tail}, {tail}, #16",
            "str q0, [{dst}], #16",
            "b 2b",
            "3:",
            "cmp {tail}, #4",
            "b.lo 4f",
            "ldr {w:w}, [{src}], #4",
            "sub {tail}, {tail}, #4",
            "str {w:w}, [{dst}], #4",
            "b 3b",
            "4:",
            "cbz {tail}, 5f",
            "ldrb {w:w}, [{src}], #1",
            "sub {tail}, {tail}, #1",
            "strb {w:w}, [{dst}], #1",
            "b 4b",
            "5:",
            src = inout(reg) src => _,
            dst = inout(reg) dst => _,
            blocks = inout(reg) blocks => _,
            tail = inout(reg) tail => _,
            w = out(reg) _,
            out("v0") _,
            out("v1") _,
            out("v2") _,
            out("v3") _,
            options(nostack),
        );
    }
}
