//! Pure logic of the firmware: nothing here touches hardware, so all of it
//! is tested on the host. The firmware's drivers and movers in `src/` use it.
#![no_std]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod addr;
pub mod clocks;
pub mod content;
pub mod copy;
pub mod dma_plan;
pub mod esr;
pub mod layout;
pub mod mailbox;
pub mod mmu;
pub mod pl011;
pub mod ticks;
