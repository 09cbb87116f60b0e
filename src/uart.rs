//! PL011 UART0 at 0x3F201000 (BCM2835 ARM Peripherals, chapter 13).
//!
//! QEMU routes it to the first `-serial` and ignores the baud rate. On a real
//! Pi 3 the PL011 drives Bluetooth unless `config.txt` has
//! `dtoverlay=disable-bt`, and its clock is what `init_uart_clock` says
//! (48 MHz in our config.txt); GPIO 14/15 must be switched to ALT0, which
//! [`init`] does (harmless under QEMU).

use core::sync::atomic::{AtomicBool, Ordering};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

/// Baud rate the firmware talks at. Over USB serial adapters 921600 is the
/// fastest common rate; it needs a 48 MHz UART clock (IBRD 3, FBRD 16).
pub const BAUD: u32 = 921_600;
/// UART clock assumed when the mailbox does not say (what our config.txt sets).
pub const FALLBACK_CLOCK_HZ: u32 = 48_000_000;

/// Longest wait for the character being shifted out when [`init`] disables
/// the UART: one 10-bit character at 300 baud takes about 33 ms.
const BUSY_TIMEOUT_US: u64 = 50_000;

const PL011_BASE: usize = 0x3F20_1000;
const GPIO_BASE: usize = 0x3F20_0000;

register_bitfields! {
    u32,
    /// Data register.
    DR [
        /// Transmit/receive byte.
        DATA OFFSET(0) NUMBITS(8) []
    ],
    /// Flag register.
    FR [
        /// Transmit FIFO empty.
        TXFE OFFSET(7) NUMBITS(1) [],
        /// Transmit FIFO full: do not write DR.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy transmitting (set until the last stop bit left the shifter).
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Integer baud rate divisor.
    IBRD [
        /// Integer part of UARTCLK / (16 * baud).
        BAUD_DIVINT OFFSET(0) NUMBITS(16) []
    ],
    /// Fractional baud rate divisor.
    FBRD [
        /// Fractional part, in 1/64ths.
        BAUD_DIVFRAC OFFSET(0) NUMBITS(6) []
    ],
    /// Line control. Writing it latches IBRD/FBRD, so it is written after them.
    LCRH [
        /// Word length.
        WLEN OFFSET(5) NUMBITS(2) [
            EightBit = 0b11
        ],
        /// FIFOs enabled.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    /// Control.
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt clear.
    ICR [
        /// All interrupt clear bits.
        ALL OFFSET(0) NUMBITS(11) []
    ]
}

register_structs! {
    Pl011Registers {
        (0x00 => dr: ReadWrite<u32, DR::Register>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => ibrd: ReadWrite<u32, IBRD::Register>),
        (0x28 => fbrd: ReadWrite<u32, FBRD::Register>),
        (0x2c => lcrh: ReadWrite<u32, LCRH::Register>),
        (0x30 => cr: ReadWrite<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x38 => imsc: ReadWrite<u32>),
        (0x3c => _reserved3),
        (0x44 => icr: WriteOnly<u32, ICR::Register>),
        (0x48 => @END),
    }
}

register_structs! {
    GpioRegisters {
        (0x00 => _gpfsel0),
        /// GPFSEL1: function select of GPIO 10-19, 3 bits each.
        (0x04 => gpfsel1: ReadWrite<u32>),
        (0x08 => _reserved0),
        /// GPPUD: pull-up/down control applied by the clock registers.
        (0x94 => gppud: ReadWrite<u32>),
        /// GPPUDCLK0: latches GPPUD into GPIO 0-31.
        (0x98 => gppudclk0: ReadWrite<u32>),
        (0x9c => @END),
    }
}

fn regs() -> &'static Pl011Registers {
    // SAFETY: the PL011 block lives at this address on the BCM2837, is mapped
    // Device-nGnRE (or the MMU is off, which is the same for device access),
    // and every access goes through tock-registers' volatile cells.
    unsafe { &*(PL011_BASE as *const Pl011Registers) }
}

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// What [`init`] set up.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub clock_hz: u32,
    pub divisors: bcm::pl011::Divisors,
}

/// Routes GPIO 14/15 to the PL011 (ALT0) with pulls off, and programs
/// 8N1 at [`BAUD`] from `clock_hz`. Only plain loads and stores: this runs
/// before the heap and possibly before the MMU.
pub fn init(clock_hz: u32) -> Setup {
    let uart = regs();
    // Disable while reprogramming, drop whatever an earlier user (the boot
    // firmware) left queued, then let the character in the shifter finish.
    // The flush (LCRH.FEN = 0) must come before the wait: FR.BUSY stays set
    // while the transmit FIFO is non-empty even with the UART disabled (PL011
    // TRM, UARTFR), so waiting first can hang on silicon. The wait is bounded
    // for the same reason (QEMU never sets BUSY).
    uart.cr.set(0);
    uart.lcrh.set(0);
    let deadline = crate::timer::deadline_after_us(BUSY_TIMEOUT_US);
    while uart.fr.is_set(FR::BUSY) && crate::timer::now_ticks() < deadline {}

    // SAFETY: the GPIO block is at this address on the BCM2837; volatile cells.
    let gpio = unsafe { &*(GPIO_BASE as *const GpioRegisters) };
    // GPIO14 is bits 12..15 of GPFSEL1, GPIO15 bits 15..18; ALT0 = 0b100.
    let sel = gpio.gpfsel1.get() & !((0b111 << 12) | (0b111 << 15));
    gpio.gpfsel1.set(sel | (0b100 << 12) | (0b100 << 15));
    // Pull-up/down off for 14 and 15: the datasheet's sequence wants 150
    // cycles of set-up and hold around the clock pulse.
    gpio.gppud.set(0);
    spin(150);
    gpio.gppudclk0.set((1 << 14) | (1 << 15));
    spin(150);
    gpio.gppudclk0.set(0);

    let divisors = bcm::pl011::divisors(clock_hz, BAUD);
    uart.icr.write(ICR::ALL.val(0x7ff));
    uart.imsc.set(0);
    uart.ibrd
        .write(IBRD::BAUD_DIVINT.val(u32::from(divisors.integer)));
    uart.fbrd
        .write(FBRD::BAUD_DIVFRAC.val(u32::from(divisors.fraction)));
    uart.lcrh.write(LCRH::WLEN::EightBit + LCRH::FEN::SET);
    uart.cr.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    INITIALISED.store(true, Ordering::Relaxed);
    Setup { clock_hz, divisors }
}

/// Initialises with the fallback clock unless [`init`] already ran: for the
/// fault paths, which may run before boot got that far.
pub fn ensure_init() {
    if !INITIALISED.load(Ordering::Relaxed) {
        init(FALLBACK_CLOCK_HZ);
    }
}

fn spin(cycles: u32) {
    for _ in 0..cycles {
        core::hint::spin_loop();
    }
}

/// Sends one byte, waiting while the transmit FIFO is full.
pub fn write_byte(byte: u8) {
    let uart = regs();
    while uart.fr.is_set(FR::TXFF) {}
    uart.dr.write(DR::DATA.val(u32::from(byte)));
}

/// Sends bytes.
pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        write_byte(b);
    }
}

/// Waits until every byte has left the wire: the FIFO is empty and the
/// shifter is idle. Without this, the last bytes before a semihosting exit or
/// a halt can be lost.
pub fn flush() {
    let uart = regs();
    while !uart.fr.is_set(FR::TXFE) || uart.fr.is_set(FR::BUSY) {}
}
