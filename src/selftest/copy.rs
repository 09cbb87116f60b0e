//! The CPU copy loop (`crate::copy`) checked byte for byte, in the pool
//! (Normal non-cacheable) and in the heap (write-back): odd source and
//! destination offsets, lengths that leave every tail step of the loop to
//! run, and downward overlapping copies at distances from 1 byte up, with
//! guard bytes on both sides of every destination. Part of the DMA-tests
//! mode (the same routine is the DMA mover's fallback).

use super::Checks;
use crate::memory::Layout;
use alloc::format;
use alloc::string::String;
use protocol::check;

/// Lengths: empty, every tail size (1-3, 4, 15-17, 63-65, 127) and sizes of
/// whole blocks plus a tail, up to a megabyte.
const LENGTHS: [usize; 15] = [
    0,
    1,
    3,
    4,
    15,
    16,
    17,
    63,
    64,
    65,
    127,
    4096,
    4096 + 13,
    65_536 + 7,
    (1 << 20) + 5,
];

/// (source offset, destination offset) from 64-byte aligned bases.
const OFFSETS: [(usize, usize); 5] = [(0, 0), (1, 2), (3, 5), (15, 16), (8, 0)];

/// Downward distances (source minus destination), plus len/2 and len - 1.
const DISTANCES: [usize; 9] = [1, 3, 4, 15, 16, 17, 63, 64, 65];

/// Lengths of the overlapping copies.
const OVERLAP_LENGTHS: [usize; 4] = [64, 100, 4096 + 13, 65_536 + 7];

/// Guard bytes on each side of a destination.
const GUARD: usize = 16;
const GUARD_BYTE: u8 = 0xA5;

/// Room one case needs: the largest length, offsets, distances and guards.
const ROOM: usize = (1 << 21) + 4096;

/// The byte at index `i` of test pattern `seed` (a hash, so a copy shifted
/// by any distance does not match).
fn byte(seed: u64, i: usize) -> u8 {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (z ^ (z >> 29)) as u8
}

/// # Safety
/// `[at, at + len)` must be mapped memory the caller owns.
unsafe fn fill(at: usize, len: usize, value: impl Fn(usize) -> u8) {
    for i in 0..len {
        // SAFETY: inside the range the caller owns.
        unsafe { ((at + i) as *mut u8).write_volatile(value(i)) };
    }
}

/// The first index where `[at, at + len)` differs from `value`.
///
/// # Safety
/// As for [`fill`].
unsafe fn mismatch(at: usize, len: usize, value: impl Fn(usize) -> u8) -> Option<usize> {
    // SAFETY: inside the range the caller owns.
    (0..len).find(|&i| unsafe { ((at + i) as *const u8).read_volatile() } != value(i))
}

/// Copies `len` bytes from `src` to `dst` with the routine and checks the
/// destination and its guards; the source holds pattern `seed` before.
///
/// # Safety
/// `[min(src, dst) - GUARD, max(src, dst) + len + GUARD)` must be mapped
/// Normal memory the caller owns, and `dst` must not lie inside
/// `(src, src + len)` (the routine's forward loop is under test).
unsafe fn case(src: usize, dst: usize, len: usize, seed: u64) -> Result<(), String> {
    // SAFETY: the caller's guarantee, for every access below.
    unsafe {
        fill(dst - GUARD, GUARD, |_| GUARD_BYTE);
        if src >= dst + len || src + len <= dst {
            fill(dst, len, |i| !byte(seed, i));
        }
        fill(dst + len, GUARD, |_| GUARD_BYTE);
        fill(src, len, |i| byte(seed, i));
        crate::copy::copy(dst as *mut u8, src as *const u8, len);
        if let Some(i) = mismatch(dst, len, |i| byte(seed, i)) {
            return Err(format!(
                "{len} bytes {src:#x} -> {dst:#x}: byte {i} is wrong"
            ));
        }
        let below = mismatch(dst - GUARD, GUARD, |_| GUARD_BYTE);
        // Above the destination, an overlapping copy leaves source bytes.
        let above = (src + len <= dst || src >= dst + len + GUARD)
            .then(|| mismatch(dst + len, GUARD, |_| GUARD_BYTE))
            .flatten();
        if below.is_some() || above.is_some() {
            return Err(format!(
                "{len} bytes {src:#x} -> {dst:#x}: wrote outside the destination"
            ));
        }
    }
    Ok(())
}

/// Runs both checks in `region` (the start of the pool, or a heap
/// allocation) of at least 2 × [`ROOM`] bytes, 64-byte aligned.
///
/// # Safety
/// `region` must be mapped Normal memory the caller owns, with no DMA
/// transfer using it.
unsafe fn run_in(region: usize, what: &str, checks: &mut Checks) {
    let mut seed = 0x00C0_FFEE_u64;
    let mut first_error = None;
    let mut cases = 0;
    for &len in &LENGTHS {
        for &(so, d_o) in &OFFSETS {
            let (src, dst) = (region + GUARD + so, region + ROOM + GUARD + d_o);
            seed += 1;
            cases += 1;
            // SAFETY: both ranges and their guards lie in the two halves of
            // the region; disjoint.
            if let Err(e) = unsafe { case(src, dst, len, seed) } {
                first_error.get_or_insert(e);
            }
        }
    }
    let name = format!("{} ({what})", check::CPU_COPY_DISJOINT);
    checks.check(
        &name,
        first_error.is_none(),
        first_error.unwrap_or_else(|| format!("{cases} copies exact, guards intact")),
    );

    let mut first_error = None;
    let mut cases = 0;
    for &len in &OVERLAP_LENGTHS {
        for distance in DISTANCES.into_iter().chain([len / 2, len - 1]) {
            let dst = region + GUARD + 3;
            seed += 1;
            cases += 1;
            // SAFETY: destination, source (distance < len bytes above it)
            // and guards lie in the region; the copy is downward.
            if let Err(e) = unsafe { case(dst + distance, dst, len, seed) } {
                first_error.get_or_insert(e);
            }
        }
    }
    let name = format!("{} ({what})", check::CPU_COPY_DOWNWARD);
    checks.check(
        &name,
        first_error.is_none(),
        first_error.unwrap_or_else(|| format!("{cases} overlapping copies exact")),
    );
}

/// The CPU copy checks, in the pool and in the heap.
pub fn run(checks: &mut Checks, layout: &Layout) {
    if layout.pool.len() >= 2 * ROOM {
        // SAFETY: the start of the pool, which the tests own; no transfer runs.
        unsafe { run_in(layout.pool.start, "pool", checks) };
    } else {
        defmt::warn!("CPU copy checks in the pool skipped: the pool is too small");
    }
    let heap = core::alloc::Layout::from_size_align(2 * ROOM, 64).expect("a valid layout");
    // SAFETY: the layout is not zero-sized.
    let p = unsafe { alloc::alloc::alloc(heap) };
    if p.is_null() {
        return checks.check(
            check::CPU_COPY_DISJOINT,
            false,
            "no heap for the CPU copy checks".into(),
        );
    }
    // SAFETY: the allocation just made, which nothing else uses.
    unsafe {
        run_in(p as usize, "heap", checks);
        alloc::alloc::dealloc(p, heap);
    }
}
