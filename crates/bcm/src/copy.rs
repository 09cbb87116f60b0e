//! The geometry of one copy between two equally long ranges: whether they
//! overlap, which part of the source the copy vacates, and where the CPU
//! resumes a copy the DMA engine left unfinished.

use core::ops::Range;

/// Whether the `len`-byte ranges at `a` and `b` share a byte.
pub const fn overlaps(a: usize, b: usize, len: usize) -> bool {
    a < b + len && b < a + len
}

/// The part of the source `[src, src + len)` that no longer holds the
/// buffer once it has been copied to `[dst, dst + len)`: the source minus
/// the destination. Both ranges have the same length, so this is one range
/// (empty when the copy is onto itself), at the top of the source for a
/// downward overlapping copy and at its bottom for an upward one.
pub fn vacated(src: usize, dst: usize, len: usize) -> Range<usize> {
    let end = src + len;
    if !overlaps(src, dst, len) {
        src..end
    } else if dst < src {
        dst + len..end
    } else {
        src..dst
    }
}

/// Where the CPU redoes a copy the DMA engine failed, given the engine's
/// report of the first byte that may not have been copied (`resume_at`,
/// `None` when unknown).
///
/// A copy between disjoint ranges is redone whole: its source is intact
/// whatever the engine did. An overlapping one resumes at `resume_at`:
/// blocks before it already overwrote sources of their own predecessors,
/// which a full redo would read (see `dma_plan::Plan::resume_offset` for why
/// the rest of the source is intact). If the engine's position is unknown, a
/// full redo is the best left to do, and verification says whether it
/// worked.
pub fn cpu_redo_from(src: usize, dst: usize, len: usize, resume_at: Option<u64>) -> usize {
    if overlaps(src, dst, len) {
        (resume_at.unwrap_or(0) as usize).min(len)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::dma_plan::{ChannelKind, Engine, Transfer};
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn vacated_ranges() {
        assert_eq!(vacated(0x1000, 0x9000, 0x2000), 0x1000..0x3000, "disjoint");
        assert_eq!(vacated(0x2000, 0x1000, 0x2000), 0x3000..0x4000, "down");
        assert_eq!(vacated(0x1000, 0x2000, 0x2000), 0x1000..0x2000, "up");
        assert_eq!(
            vacated(0x1000, 0x1000, 0x2000),
            0x1000..0x1000,
            "onto itself"
        );
        assert_eq!(vacated(0x1000, 0x3000, 0x2000), 0x1000..0x3000, "touching");
    }

    #[test]
    fn redo_points() {
        assert_eq!(cpu_redo_from(0, 0x10000, 0x1000, Some(0x800)), 0);
        assert_eq!(cpu_redo_from(0x1000, 0, 0x2000, Some(0x1000)), 0x1000);
        assert_eq!(cpu_redo_from(0x1000, 0, 0x2000, None), 0);
        assert_eq!(cpu_redo_from(0x1000, 0, 0x2000, Some(0x9000)), 0x2000);
    }

    proptest! {
        #[test]
        fn vacated_and_destination_cover_the_source_exactly(
            src in 0usize..1 << 20, dst in 0usize..1 << 20, len in 0usize..1 << 16,
        ) {
            let v = vacated(src, dst, len);
            prop_assert!(src <= v.start && v.start <= v.end && v.end <= src + len);
            for byte in [src, src + len / 3, src + len / 2, (src + len).saturating_sub(1)] {
                if byte >= src + len {
                    continue;
                }
                let in_dst = (dst..dst + len).contains(&byte);
                prop_assert!(
                    v.contains(&byte) != in_dst,
                    "byte {:#x}: vacated {:?}, destination {:#x}+{:#x}", byte, v, dst, len
                );
            }
            prop_assert_eq!(v.len() + overlap_len(src, dst, len), len);
        }

        /// The engine completes blocks `0..k` of a downward plan and leaves
        /// garbage in block `k`'s destination; the CPU's redo from the
        /// reported point then gives exactly what a memmove gives.
        #[test]
        fn resuming_an_interrupted_downward_move_equals_memmove(
            words in 1u64..512, distance_words in 1u64..600, max_words in 1u32..64, stop in 0usize..64,
        ) {
            let (len, distance) = (words * 4, distance_words * 4);
            let (dst, src) = (0u64, distance);
            let engine = Engine { max_block: max_words * 4, ..Engine::new(ChannelKind::Lite) };
            let plan = engine.plan(Transfer { src, dest: dst, len }).unwrap();
            let k = stop.min(plan.block_count());
            let size = (src + len) as usize;
            let original: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
            let mut expected = original.clone();
            expected.copy_within(src as usize..size, 0);

            let mut mem = original;
            for b in plan.blocks().take(k) {
                let (s, d, n) = (
                    b.source_ad.to_phys().0 as usize,
                    b.dest_ad.to_phys().0 as usize,
                    b.txfr_len as usize,
                );
                mem.copy_within(s..s + n, d);
            }
            if let Some(b) = plan.block(k) {
                let d = b.dest_ad.to_phys().0 as usize;
                mem[d..d + b.txfr_len as usize].fill(0xEE);
            }
            let from = cpu_redo_from(src as usize, dst as usize, len as usize, Some(plan.resume_offset(k)));
            mem.copy_within(src as usize + from..size, dst as usize + from);
            prop_assert_eq!(mem, expected);
        }
    }

    fn overlap_len(src: usize, dst: usize, len: usize) -> usize {
        (src + len).min(dst + len).saturating_sub(src.max(dst))
    }
}
