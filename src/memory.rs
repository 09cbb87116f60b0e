//! Where the pool and the backing heap go.
//!
//! ```text
//! 0x80000  image (text, data, bss, stacks)      Normal write-back
//!          .coherent (2 MiB, 2 MiB aligned)       Normal non-cacheable
//!          pool (POOLBED_POOL_SIZE, 2 MiB aligned) Normal non-cacheable
//!          heap (the rest of ARM memory)          Normal write-back
//! ARM end  VideoCore memory                        unmapped
//! ```
//!
//! The pool gets its own 2 MiB blocks so it can be mapped non-cacheable
//! without sharing a block with cacheable data; the heap starts at the next
//! 2 MiB boundary after it.

use core::ops::Range;

const BLOCK: usize = 2 << 20;

/// Pool size in bytes: `POOLBED_POOL_SIZE` at build time (decimal bytes, as
/// `cargo xtask build --pool-size` passes it), default 128 MiB.
pub const POOL_SIZE: usize = match option_env!("POOLBED_POOL_SIZE") {
    Some(text) => parse_size(text),
    None => 128 << 20,
};

/// The smallest heap worth booting with: overflow buffers live there.
pub const MIN_HEAP: usize = 4 << 20;

const fn parse_size(text: &str) -> usize {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "POOLBED_POOL_SIZE is empty");
    let mut value: usize = 0;
    let mut i = 0;
    while i < bytes.len() {
        let d = bytes[i];
        assert!(
            d.is_ascii_digit(),
            "POOLBED_POOL_SIZE must be a decimal number of bytes"
        );
        value = value * 10 + (d - b'0') as usize;
        i += 1;
    }
    assert!(
        value > 0 && value.is_multiple_of(4096),
        "POOLBED_POOL_SIZE must be a positive multiple of 4096"
    );
    value
}

const fn align_up(value: usize, align: usize) -> usize {
    value.div_ceil(align) * align
}

/// The memory map the rest of the firmware works with. Identity mapped:
/// these numbers are physical and virtual addresses at once.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The contiguous pool (Normal non-cacheable).
    pub pool: Range<usize>,
    /// The backing heap for overflow buffers (Normal write-back), given to
    /// the global allocator.
    pub heap: Range<usize>,
    /// The `.coherent` section (Normal non-cacheable) for mailbox buffers and
    /// DMA control blocks.
    pub coherent: Range<usize>,
    /// All ARM memory.
    pub ram: Range<usize>,
}

/// Why the layout cannot be made.
#[derive(Clone, Copy, Debug, defmt::Format)]
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

/// Places pool and heap in ARM memory `(base, size)` after `coherent`.
pub fn plan(arm_memory: Option<(u32, u32)>, coherent: Range<usize>) -> Result<Layout, LayoutError> {
    let (base, size) = arm_memory.ok_or(LayoutError::NoArmMemory)?;
    let ram = base as usize..base as usize + size as usize;
    // The image is linked at 0x80000; ARM memory always starts at 0 on a Pi.
    if ram.start != 0 || ram.end < coherent.end {
        return Err(LayoutError::ImageOutsideRam {
            ram_end: ram.end,
            image_end: coherent.end,
        });
    }
    // Only whole 2 MiB blocks are mapped.
    let usable_end = ram.end / BLOCK * BLOCK;
    let pool_start = align_up(coherent.end, BLOCK);
    let available = usable_end.saturating_sub(pool_start);
    if POOL_SIZE > available {
        return Err(LayoutError::PoolTooLarge {
            pool: POOL_SIZE,
            available,
        });
    }
    let pool = pool_start..pool_start + POOL_SIZE;
    let heap_start = align_up(pool.end, BLOCK);
    let heap = heap_start..usable_end.max(heap_start);
    if heap.len() < MIN_HEAP {
        return Err(LayoutError::HeapTooSmall {
            heap: heap.len(),
            min: MIN_HEAP,
        });
    }
    Ok(Layout {
        pool,
        heap,
        coherent,
        ram: ram.start..usable_end,
    })
}

impl LayoutError {
    /// Says what went wrong and what to do, for the last log line.
    pub fn report(&self) {
        match *self {
            LayoutError::NoArmMemory => defmt::error!(
                "cannot place the pool: the mailbox did not report ARM memory (tag 0x00010005)"
            ),
            LayoutError::ImageOutsideRam { ram_end, image_end } => defmt::error!(
                "cannot place the pool: ARM memory ends at {=usize:#x}, before the image ends at {=usize:#x}",
                ram_end,
                image_end
            ),
            LayoutError::PoolTooLarge { pool, available } => defmt::error!(
                "the pool does not fit: {=usize} MiB asked, {=usize} MiB available after the image; rebuild with a smaller --pool-size",
                pool >> 20,
                available >> 20
            ),
            LayoutError::HeapTooSmall { heap, min } => defmt::error!(
                "the pool leaves only {=usize} KiB of heap (at least {=usize} KiB needed for overflow buffers); rebuild with a smaller --pool-size",
                heap >> 10,
                min >> 10
            ),
        }
    }
}
