//! GPIO function select and pulls (BCM2835 ARM Peripherals, chapter 6):
//! only what routing the PL011 to the pin header needs.

use crate::memory_map;
use crate::mmio::Mmio;
use tock_registers::interfaces::{ReadWriteable, Writeable};
use tock_registers::registers::ReadWrite;
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {
    u32,
    /// Function select of GPIO 10-19, 3 bits each (datasheet 6.1, table 6-3).
    GPFSEL1 [
        /// GPIO 15: ALT0 is the PL011's RXD0.
        FSEL15 OFFSET(15) NUMBITS(3) [
            Input = 0b000,
            Output = 0b001,
            AltFunc0 = 0b100
        ],
        /// GPIO 14: ALT0 is the PL011's TXD0.
        FSEL14 OFFSET(12) NUMBITS(3) [
            Input = 0b000,
            Output = 0b001,
            AltFunc0 = 0b100
        ]
    ],
    /// Pull-up/down control, applied to the pins clocked by GPPUDCLKn.
    GPPUD [
        PUD OFFSET(0) NUMBITS(2) [
            Off = 0b00,
            PullDown = 0b01,
            PullUp = 0b10
        ]
    ],
    /// Latches GPPUD into GPIO 0-31 (one bit per pin).
    GPPUDCLK0 [
        PUDCLK15 OFFSET(15) NUMBITS(1) [
            NoEffect = 0,
            AssertClock = 1
        ],
        PUDCLK14 OFFSET(14) NUMBITS(1) [
            NoEffect = 0,
            AssertClock = 1
        ]
    ]
}

register_structs! {
    GpioRegisters {
        (0x00 => _gpfsel0),
        (0x04 => gpfsel1: ReadWrite<u32, GPFSEL1::Register>),
        (0x08 => _reserved0),
        (0x94 => gppud: ReadWrite<u32, GPPUD::Register>),
        (0x98 => gppudclk0: ReadWrite<u32, GPPUDCLK0::Register>),
        (0x9c => @END),
    }
}

/// The GPIO block.
pub struct Gpio {
    registers: Mmio<GpioRegisters>,
}

// SAFETY: the GPIO block's address on the BCM2837; only this driver
// touches it.
pub static GPIO: Gpio = unsafe { Gpio::new(memory_map::GPIO) };

impl Gpio {
    /// The GPIO block at `base`.
    ///
    /// # Safety
    /// As for [`Mmio::new`]: `base` is the GPIO block, mapped Device memory,
    /// and no other driver uses it.
    pub const unsafe fn new(base: usize) -> Self {
        Gpio {
            // SAFETY: the caller's guarantee.
            registers: unsafe { Mmio::new(base) },
        }
    }

    /// Switches GPIO 14/15 to ALT0 (the PL011's TXD0/RXD0) with the pulls
    /// off. On a Pi 3 the PL011 reaches the header only this way; QEMU
    /// ignores it. Only plain loads and stores (this may run before the MMU).
    pub fn route_pl011_to_pins_14_15(&self) {
        let r = &self.registers;
        r.gpfsel1
            .modify(GPFSEL1::FSEL14::AltFunc0 + GPFSEL1::FSEL15::AltFunc0);
        // The datasheet's sequence wants 150 cycles of set-up and hold
        // around the clock pulse.
        r.gppud.write(GPPUD::PUD::Off);
        spin(150);
        r.gppudclk0
            .write(GPPUDCLK0::PUDCLK14::AssertClock + GPPUDCLK0::PUDCLK15::AssertClock);
        spin(150);
        r.gppudclk0.set(0);
    }
}

fn spin(cycles: u32) {
    for _ in 0..cycles {
        core::hint::spin_loop();
    }
}
