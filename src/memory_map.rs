//! Every MMIO address the firmware touches, in ARM physical addresses
//! (identity mapped, so also the virtual addresses the drivers use).
//!
//! The BCM2837 puts its peripherals at ARM physical 0x3F00_0000, which the
//! VideoCore's bus (and the datasheet, BCM2835 ARM Peripherals section
//! 1.2.3) calls 0x7E00_0000: a register listed there at 0x7Exx_xxxx is here
//! at 0x3Fxx_xxxx. The Cortex-A53's own local peripherals (core timers,
//! mailboxes, interrupt routing; "QA7" document) are at 0x4000_0000. The MMU
//! maps both windows Device-nGnRE; everything from 0x4020_0000 up stays
//! unmapped.

use core::ops::Range;

/// The BCM2837 peripheral window (bus 0x7E00_0000..0x7F00_0000).
pub const PERIPHERALS: Range<usize> = 0x3F00_0000..0x4000_0000;

/// BCM system timer, 1 MHz free-running (datasheet chapter 12). Listed for
/// completeness: the firmware times with the generic timer and the PMU.
#[allow(dead_code, reason = "the map lists every block, used or not")]
pub const SYSTEM_TIMER: usize = 0x3F00_3000;

/// DMA channel 0's registers; channels 0 to 14 follow every 0x100 bytes
/// (datasheet 4.2.1).
pub const DMA: usize = 0x3F00_7000;
/// DMA channel 15, apart from the others in the VPU's peripheral block.
pub const DMA15: usize = 0x3FE0_5000;
/// The DMA controller's global registers: INT_STATUS at +0x0 (0x3F00_7FE0)
/// and ENABLE at +0x10 (0x3F00_7FF0).
pub const DMA_GLOBAL: usize = 0x3F00_7FE0;

/// VideoCore mailbox 0 (read side; mailbox 1, the write side, follows at
/// +0x20).
pub const MAILBOX: usize = 0x3F00_B880;

/// GPIO function select, pulls and levels (datasheet chapter 6).
pub const GPIO: usize = 0x3F20_0000;

/// PL011 UART0 (datasheet chapter 13).
pub const PL011: usize = 0x3F20_1000;

/// The Cortex-A53 local peripherals (one 2 MiB block is mapped).
pub const LOCAL_PERIPHERALS: Range<usize> = 0x4000_0000..0x4004_0000;

/// The register block of DMA channel `number` (0 to 15).
pub const fn dma_channel(number: u8) -> usize {
    assert!(number <= 15, "DMA channels are 0 to 15");
    if number == 15 {
        DMA15
    } else {
        DMA + number as usize * 0x100
    }
}
