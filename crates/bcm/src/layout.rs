//! Where the firmware puts the pool and the backing heap in ARM memory.
//!
//! ```text
//! 0x80000  image (text, data, bss, stacks)       Normal write-back
//!          .coherent (2 MiB, 2 MiB aligned)        Normal non-cacheable
//!          pool (pool size, 2 MiB aligned)          Normal non-cacheable
//!          heap (the rest of ARM memory)           Normal write-back
//! ARM end  VideoCore memory                         unmapped
//! ```
//!
//! The pool gets its own 2 MiB blocks so it can be mapped non-cacheable
//! without sharing a block with cacheable data; the heap starts at the next
//! 2 MiB boundary after it. Only whole 2 MiB blocks of ARM memory are used,
//! because the MMU maps memory in 2 MiB blocks.

use core::fmt;
use core::ops::Range;

/// The MMU's block size, the unit of the layout.
pub const BLOCK: usize = 2 << 20;

/// The heap the firmware needs for its own allocations (record buffers,
/// the movers' tables, the logger), besides overflow buffers: the smallest
/// heap worth booting with.
pub const MIN_HEAP: usize = 4 << 20;

/// The heap a replay needs: the largest overflow it reaches (the simulator
/// knows it before the boot) plus [`MIN_HEAP`] for the firmware's own use.
/// Saturates: an overflow that large fits no layout anyway.
pub const fn heap_needed(peak_overflow: u64) -> usize {
    let overflow = if peak_overflow > usize::MAX as u64 {
        usize::MAX
    } else {
        peak_overflow as usize
    };
    overflow.saturating_add(MIN_HEAP)
}

/// The pool size used when the build names none.
pub const DEFAULT_POOL_SIZE: usize = 128 << 20;

/// The memory map the rest of the firmware works with. Identity mapped:
/// these numbers are physical and virtual addresses at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The contiguous pool (Normal non-cacheable).
    pub pool: Range<usize>,
    /// The backing heap for overflow buffers (Normal write-back), given to
    /// the global allocator.
    pub heap: Range<usize>,
    /// The `.coherent` section (Normal non-cacheable) for mailbox buffers and
    /// DMA control blocks.
    pub coherent: Range<usize>,
    /// All ARM memory that is mapped (whole 2 MiB blocks).
    pub ram: Range<usize>,
}

/// Why the layout cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The mailbox did not report ARM memory.
    NoArmMemory,
    /// ARM memory does not start at 0 or does not hold the image.
    ImageOutsideRam { ram_end: usize, image_end: usize },
    /// The pool does not fit.
    PoolTooLarge { pool: usize, available: usize },
    /// The pool fits but leaves too little heap.
    HeapTooSmall { heap: usize, min: usize },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayoutError::NoArmMemory => write!(
                f,
                "cannot place the pool: the mailbox did not report ARM memory (tag 0x00010005)"
            ),
            LayoutError::ImageOutsideRam { ram_end, image_end } => write!(
                f,
                "cannot place the pool: ARM memory ends at {ram_end:#x}, before the image ends at {image_end:#x}"
            ),
            LayoutError::PoolTooLarge { pool, available } => write!(
                f,
                "the pool does not fit: {} MiB asked, {} MiB available after the image; rebuild with a smaller --pool-size",
                pool >> 20,
                available >> 20
            ),
            LayoutError::HeapTooSmall { heap, min } => write!(
                f,
                "the pool leaves only {} KiB of heap (at least {} KiB needed for overflow buffers and the firmware's own allocations); rebuild with a smaller --pool-size",
                heap >> 10,
                min >> 10
            ),
        }
    }
}

const fn align_up(value: usize, align: usize) -> usize {
    value.div_ceil(align) * align
}

/// Places a pool of `pool_size` bytes and the heap in ARM memory
/// `(base, size)` (as the mailbox reports it), after the `coherent` section
/// that ends the image, with at least [`MIN_HEAP`] of heap (what the
/// firmware knows at boot; the host checks the replay's own need with
/// [`plan_with_heap`] before it boots).
pub fn plan(
    arm_memory: Option<(u32, u32)>,
    coherent: Range<usize>,
    pool_size: usize,
) -> Result<Layout, LayoutError> {
    plan_with_heap(arm_memory, coherent, pool_size, MIN_HEAP)
}

/// As [`plan`], but the heap must hold `heap_min` bytes (at least
/// [`MIN_HEAP`]): [`heap_needed`] of a replay's peak overflow.
pub fn plan_with_heap(
    arm_memory: Option<(u32, u32)>,
    coherent: Range<usize>,
    pool_size: usize,
    heap_min: usize,
) -> Result<Layout, LayoutError> {
    let heap_min = heap_min.max(MIN_HEAP);
    let (base, size) = arm_memory.ok_or(LayoutError::NoArmMemory)?;
    let ram = base as usize..base as usize + size as usize;
    // The image is linked at 0x80000; ARM memory always starts at 0 on a Pi.
    if ram.start != 0 || ram.end < coherent.end {
        return Err(LayoutError::ImageOutsideRam {
            ram_end: ram.end,
            image_end: coherent.end,
        });
    }
    let usable_end = ram.end / BLOCK * BLOCK;
    let pool_start = align_up(coherent.end, BLOCK);
    let available = usable_end.saturating_sub(pool_start);
    if pool_size > available {
        return Err(LayoutError::PoolTooLarge {
            pool: pool_size,
            available,
        });
    }
    let pool = pool_start..pool_start + pool_size;
    let heap_start = align_up(pool.end, BLOCK);
    let heap = heap_start..usable_end.max(heap_start);
    if heap.len() < heap_min {
        return Err(LayoutError::HeapTooSmall {
            heap: heap.len(),
            min: heap_min,
        });
    }
    Ok(Layout {
        pool,
        heap,
        coherent,
        ram: ram.start..usable_end,
    })
}

/// The largest pool (whole 4 KiB pages) that leaves a heap of `heap_min`
/// bytes in ARM memory `(base, size)`; None when even no pool does.
pub fn largest_pool(
    arm_memory: Option<(u32, u32)>,
    coherent: Range<usize>,
    heap_min: usize,
) -> Option<usize> {
    let (base, size) = arm_memory?;
    let usable_end = (base as usize + size as usize) / BLOCK * BLOCK;
    let pool_start = align_up(coherent.end, BLOCK);
    // The heap starts at the block after the pool, so the pool may end
    // where the heap's first block starts.
    let heap_start = usable_end.checked_sub(align_up(heap_min.max(MIN_HEAP), BLOCK))?;
    let pool = heap_start.checked_sub(pool_start)?;
    (pool >= 4096).then_some(pool / 4096 * 4096)
}

/// Why a pool size given at build time is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolSizeError {
    Empty,
    NotDecimal,
    Overflow,
    /// Zero or not a multiple of 4096.
    NotWholePages,
}

impl PoolSizeError {
    /// Why, in words (usable in a `const` panic).
    pub const fn describe(self) -> &'static str {
        match self {
            PoolSizeError::Empty => "POOLBED_POOL_SIZE is empty",
            PoolSizeError::NotDecimal => "POOLBED_POOL_SIZE must be a decimal number of bytes",
            PoolSizeError::Overflow => "POOLBED_POOL_SIZE does not fit in a usize",
            PoolSizeError::NotWholePages => "POOLBED_POOL_SIZE must be a positive multiple of 4096",
        }
    }
}

/// Parses a pool size in decimal bytes (as `cargo xtask build --pool-size`
/// passes it in `POOLBED_POOL_SIZE`). `const`, so a bad value stops the
/// build.
pub const fn parse_pool_size(text: &str) -> Result<usize, PoolSizeError> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(PoolSizeError::Empty);
    }
    let mut value: usize = 0;
    let mut i = 0;
    while i < bytes.len() {
        let d = bytes[i];
        if !d.is_ascii_digit() {
            return Err(PoolSizeError::NotDecimal);
        }
        value = match value.checked_mul(10) {
            Some(v) => match v.checked_add((d - b'0') as usize) {
                Some(v) => v,
                None => return Err(PoolSizeError::Overflow),
            },
            None => return Err(PoolSizeError::Overflow),
        };
        i += 1;
    }
    if value == 0 || !value.is_multiple_of(4096) {
        return Err(PoolSizeError::NotWholePages);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;

    const MIB: usize = 1 << 20;
    /// What QEMU raspi3b and a 1 GiB Pi 3 report (GPU memory split 64 MiB).
    const ARM: Option<(u32, u32)> = Some((0, 0x3c00_0000));
    /// `.coherent` as the linker places it after a small image.
    const COHERENT: Range<usize> = 0x40_0000..0x60_0000;

    #[test]
    fn pool_follows_coherent_and_heap_takes_the_rest() {
        let l = plan(ARM, COHERENT, 48 * MIB).unwrap();
        assert_eq!(l.pool, 0x60_0000..0x60_0000 + 48 * MIB);
        assert_eq!(l.heap, 0x60_0000 + 48 * MIB..0x3c00_0000);
        assert_eq!(l.ram, 0..0x3c00_0000);
        assert_eq!(l.coherent, COHERENT);
    }

    #[test]
    fn a_pool_that_is_not_whole_blocks_leaves_a_gap_before_the_heap() {
        let l = plan(ARM, COHERENT, MIB + 4096).unwrap();
        assert_eq!(l.pool.len(), MIB + 4096);
        assert_eq!(l.heap.start, 0x60_0000 + 2 * MIB);
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(plan(None, COHERENT, MIB), Err(LayoutError::NoArmMemory));
        assert_eq!(
            plan(Some((0x100_0000, 0x1000_0000)), COHERENT, MIB),
            Err(LayoutError::ImageOutsideRam {
                ram_end: 0x1100_0000,
                image_end: 0x60_0000
            })
        );
        assert_eq!(
            plan(Some((0, 0x50_0000)), COHERENT, MIB),
            Err(LayoutError::ImageOutsideRam {
                ram_end: 0x50_0000,
                image_end: 0x60_0000
            })
        );
        assert_eq!(
            plan(ARM, COHERENT, 1024 * MIB),
            Err(LayoutError::PoolTooLarge {
                pool: 1024 * MIB,
                available: 0x3c00_0000 - 0x60_0000
            })
        );
        assert_eq!(
            plan(ARM, COHERENT, 0x3c00_0000 - 0x60_0000 - 2 * MIB),
            Err(LayoutError::HeapTooSmall {
                heap: 2 * MIB,
                min: MIN_HEAP
            })
        );
        let text = std::format!(
            "{}",
            LayoutError::PoolTooLarge {
                pool: 1024 * MIB,
                available: 954 * MIB
            }
        );
        assert!(text.contains("1024 MiB asked, 954 MiB available"), "{text}");
    }

    #[test]
    fn the_heap_must_hold_the_replays_overflow() {
        // A 950 MiB pool leaves the bare minimum: enough to boot, not for a
        // replay that overflows 100 MiB.
        let pool = 950 * MIB;
        assert!(plan(ARM, COHERENT, pool).is_ok());
        let need = heap_needed(100 * MIB as u64);
        assert_eq!(need, 104 * MIB);
        let Err(LayoutError::HeapTooSmall { heap, min }) =
            plan_with_heap(ARM, COHERENT, pool, need)
        else {
            panic!("a 950 MiB pool leaves no room for 100 MiB of overflow");
        };
        assert_eq!((heap, min), (0x3c00_0000 - 0x60_0000 - 950 * MIB, need));
        let largest = largest_pool(ARM, COHERENT, need).unwrap();
        assert!(plan_with_heap(ARM, COHERENT, largest, need).is_ok());
        assert!(plan_with_heap(ARM, COHERENT, largest + 4096, need).is_err());
        assert_eq!(largest, 0x3c00_0000 - 0x60_0000 - 104 * MIB);
        assert_eq!(largest_pool(ARM, COHERENT, 2048 * MIB), None);
        assert_eq!(heap_needed(u64::MAX), usize::MAX);
    }

    #[test]
    fn pool_sizes_parse_as_decimal_whole_pages() {
        assert_eq!(parse_pool_size("50331648"), Ok(48 * MIB));
        assert_eq!(parse_pool_size("4096"), Ok(4096));
        assert_eq!(parse_pool_size(""), Err(PoolSizeError::Empty));
        assert_eq!(parse_pool_size("48MiB"), Err(PoolSizeError::NotDecimal));
        assert_eq!(parse_pool_size("-4096"), Err(PoolSizeError::NotDecimal));
        assert_eq!(parse_pool_size("0"), Err(PoolSizeError::NotWholePages));
        assert_eq!(parse_pool_size("4097"), Err(PoolSizeError::NotWholePages));
        assert_eq!(
            parse_pool_size("99999999999999999999999"),
            Err(PoolSizeError::Overflow)
        );
    }

    proptest! {
        #[test]
        fn layouts_are_disjoint_ordered_block_aligned_and_inside_ram(
            arm_mib in 1u32..1024,
            coherent_block in 1usize..8,
            pool_pages in 1usize..(256 * 256),
        ) {
            let coherent = coherent_block * BLOCK..(coherent_block + 1) * BLOCK;
            let arm = Some((0, arm_mib << 20));
            let pool_size = pool_pages * 4096;
            if let Ok(l) = plan(arm, coherent.clone(), pool_size) {
                prop_assert_eq!(l.pool.len(), pool_size);
                prop_assert!(l.coherent.end <= l.pool.start);
                prop_assert!(l.pool.end <= l.heap.start);
                prop_assert!(l.heap.end <= (arm_mib as usize) << 20);
                prop_assert!(l.heap.len() >= MIN_HEAP);
                for edge in [l.pool.start, l.heap.start, l.heap.end, l.ram.end] {
                    prop_assert_eq!(edge % BLOCK, 0);
                }
            }
        }
    }
}
