//! Pure logic of the BCM2837 drivers: nothing here touches hardware, so all of
//! it is tested on the host. The firmware's drivers in `src/` use it.
#![no_std]

pub mod dma_plan;
pub mod esr;
pub mod mailbox;
pub mod pl011;
