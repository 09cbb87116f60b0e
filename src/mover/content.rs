//! Writing and checking buffer content in memory, with the values
//! `bcm::content` computes. Volatile accesses: the values must come from
//! memory (which the DMA engine wrote behind the compiler's back), not from
//! what the compiler remembers writing there.

use bcm::content::{pages, Content, Mismatch, POISON};
use core::ops::Range;

/// Writes the content of (`buffer`, `generation`) into `[dst, dst + len)`.
///
/// # Safety
/// The range must be mapped, page aligned and `len` a multiple of the page
/// size, and the caller must own it: no reference to it and no DMA transfer
/// into or out of it while this runs.
pub unsafe fn write(content: &Content, buffer: u32, generation: u32, dst: usize, len: usize) {
    for (offset, value) in content.words(buffer, generation, len) {
        // SAFETY: inside the range the caller owns; 8-byte aligned.
        unsafe { ((dst + offset) as *mut u64).write_volatile(value) };
    }
}

/// Checks every page of `[dst, dst + len)` against the content of
/// (`buffer`, `generation`), calling `on_mismatch` for each page that
/// differs. Returns the number of pages checked.
///
/// # Safety
/// As for [`write`]: mapped, page aligned, and nothing writing it.
pub unsafe fn check(
    content: &Content,
    buffer: u32,
    generation: u32,
    dst: usize,
    len: usize,
    mut on_mismatch: impl FnMut(Mismatch),
) -> u64 {
    let count = len / bcm::content::PAGE;
    for page in 0..count {
        let read = |offset: usize| {
            // SAFETY: `offset` lies in the page being checked, inside the
            // range the caller vouches for.
            unsafe { ((dst + offset) as *const u64).read_volatile() }
        };
        if let Some(mismatch) = content.check_page(buffer, generation, page, read) {
            on_mismatch(mismatch);
        }
    }
    count as u64
}

/// Writes the poison stamp at the start of every page of `range`.
///
/// # Safety
/// The range must be page aligned pool memory that no buffer and no move in
/// flight uses (the pool core's guarantee for a range a move vacated).
pub unsafe fn poison(range: Range<usize>) {
    for page in pages(range) {
        // SAFETY: a page of the vacated range the caller vouches for.
        unsafe { (page as *mut u64).write_volatile(POISON) };
    }
}
