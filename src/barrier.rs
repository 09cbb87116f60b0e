//! The one data synchronization barrier the firmware needs between memory
//! and the VideoCore side (DMA engine, mailbox).

/// `dsb sy`: completes every earlier memory access, including the ones the
/// DMA engine and the VideoCore (outside the CPU's inner shareable domain)
/// must observe, before any later instruction.
///
/// Register accesses themselves need no barriers between them: all of one
/// peripheral's registers are one device, and Device-nGnRE keeps program
/// order within a device. The BCM2835 datasheet's advice (section 1.3) to
/// put a barrier at every switch between peripherals exists because the AXI
/// fabric may return reads from different peripherals out of order, which
/// the ARM1176 could not cope with; the Cortex-A53 matches read data to
/// requests by AXI ID. The barriers that matter are the ones between memory
/// (control blocks, mailbox messages, data) and the engine that reads it.
#[inline(always)]
pub fn dsb_sy() {
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
}
