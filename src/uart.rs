//! PL011 UART0 (BCM2835 ARM Peripherals, chapter 13; address in
//! [`memory_map::PL011`]).
//!
//! QEMU routes it to the first `-serial` and ignores the baud rate. On a real
//! Pi 3 the PL011 reaches the header's GPIO 14/15 because [`init`] switches
//! both pins to ALT0 (the PL011's TXD0/RXD0) with the pulls off; no
//! `config.txt` line is involved (`dtoverlay=disable-bt` would do nothing: a
//! bare-metal card has no device tree and no overlays). Its clock is what
//! `init_uart_clock` says (48 MHz in our config.txt). Under QEMU the GPIO
//! writes are harmless.
//!
//! On silicon a full transmit FIFO blocks the writer for about 11 µs per
//! byte at 921600 baud; QEMU never does. [`set_paced`] makes the writer wait
//! as a Pi's would, so the UART isolation test can show under QEMU that
//! output time stays out of the timings.

use crate::gpio::GPIO;
use crate::memory_map;
use crate::mmio::Mmio;
use crate::timer;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

register_bitfields! {
    u32,
    /// Data register.
    DR [
        /// Transmit/receive byte.
        DATA OFFSET(0) NUMBITS(8) [],
        /// On a read, the received byte's errors: framing (8), parity (9),
        /// break (10) and overrun (11: the RX FIFO was full and a byte was lost).
        ERRORS OFFSET(8) NUMBITS(4) []
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

/// The PL011 UART.
pub struct Pl011 {
    registers: Mmio<Pl011Registers>,
}

// SAFETY: the PL011's address on the BCM2837; only this driver touches it.
static PL011: Pl011 = unsafe { Pl011::new(memory_map::PL011) };

impl Pl011 {
    /// The PL011 at `base`.
    ///
    /// # Safety
    /// As for [`Mmio::new`]: `base` is a PL011, mapped Device memory (or the
    /// MMU is off, which is the same for device accesses), and no other
    /// driver uses it.
    pub const unsafe fn new(base: usize) -> Self {
        Pl011 {
            // SAFETY: the caller's guarantee.
            registers: unsafe { Mmio::new(base) },
        }
    }

    /// Disables the UART while it is reprogrammed, drops whatever an earlier
    /// user (the boot firmware) left queued, then lets the character in the
    /// shifter finish. The flush (LCRH.FEN = 0) must come before the wait:
    /// FR.BUSY stays set while the transmit FIFO is non-empty even with the
    /// UART disabled (PL011 TRM, UARTFR), so waiting first can hang on
    /// silicon. The wait is bounded for the same reason (QEMU never sets
    /// BUSY).
    fn disable(&self) {
        let uart = &self.registers;
        uart.cr.set(0);
        uart.lcrh.set(0);
        let deadline = timer::deadline_after_us(BUSY_TIMEOUT_US);
        while uart.fr.is_set(FR::BUSY) && timer::now_ticks() < deadline {}
    }

    /// Programs 8N1 with FIFOs at the baud rate of `divisors` and enables
    /// transmit and receive.
    fn enable(&self, divisors: &bcm::pl011::Divisors) {
        let uart = &self.registers;
        uart.icr.write(ICR::ALL.val(0x7ff));
        uart.imsc.set(0);
        uart.ibrd
            .write(IBRD::BAUD_DIVINT.val(u32::from(divisors.integer)));
        uart.fbrd
            .write(FBRD::BAUD_DIVFRAC.val(u32::from(divisors.fraction)));
        uart.lcrh.write(LCRH::WLEN::EightBit + LCRH::FEN::SET);
        uart.cr.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    fn write_byte(&self, byte: u8) {
        let uart = &self.registers;
        while uart.fr.is_set(FR::TXFF) {
            drain_rx();
        }
        uart.dr.write(DR::DATA.val(u32::from(byte)));
    }

    /// One received byte and whether the UART flagged it, if any is waiting.
    fn read_byte(&self) -> Option<RxByte> {
        let uart = &self.registers;
        if uart.fr.is_set(FR::RXFE) {
            return None;
        }
        let word = uart.dr.extract();
        Some(RxByte {
            byte: word.read(DR::DATA) as u8,
            error: word.read(DR::ERRORS) != 0,
        })
    }

    fn flush(&self) {
        let uart = &self.registers;
        while !uart.fr.is_set(FR::TXFE) || uart.fr.is_set(FR::BUSY) {}
    }
}

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// One 8N1 character (10 bits) at [`BAUD`], in nanoseconds: 10.85 µs.
pub const CHARACTER_NS: u64 = 10 * 1_000_000_000 / BAUD as u64;
/// The PL011's transmit FIFO depth on the BCM2837 (datasheet 13.1: 16x8).
const TX_FIFO_DEPTH: u64 = 16;

/// Counter ticks per emulated character while pacing is on; 0 when off.
static PACE_TICKS: AtomicU64 = AtomicU64::new(0);
/// When the emulated wire finishes the characters queued so far (ticks).
static WIRE_FREE_AT: AtomicU64 = AtomicU64::new(0);

/// Makes every byte written wait as on a Pi at [`BAUD`]: at most
/// [`TX_FIFO_DEPTH`] characters queued, one leaving every
/// [`CHARACTER_NS`]. Off, bytes go out as fast as the UART takes them (under
/// QEMU, at once).
pub fn set_paced(on: bool) {
    let ticks = if on {
        timer::ns_to_ticks(CHARACTER_NS)
    } else {
        0
    };
    WIRE_FREE_AT.store(timer::now_ticks(), Ordering::Relaxed);
    PACE_TICKS.store(ticks, Ordering::Relaxed);
}

/// Waits until the emulated FIFO has room for one more character and
/// queues it (nothing when pacing is off).
fn pace_one() {
    let per = PACE_TICKS.load(Ordering::Relaxed);
    if per == 0 {
        return;
    }
    let mut now = timer::now_ticks();
    let queued_until = WIRE_FREE_AT.load(Ordering::Relaxed);
    while queued_until.saturating_sub(now) > (TX_FIFO_DEPTH - 1) * per {
        now = timer::now_ticks();
    }
    WIRE_FREE_AT.store(queued_until.max(now) + per, Ordering::Relaxed);
}

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
    PL011.disable();
    GPIO.route_pl011_to_pins_14_15();
    let divisors = bcm::pl011::divisors(clock_hz, BAUD);
    PL011.enable(&divisors);
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

/// Sends one byte, waiting while the transmit FIFO is full (and keeping the
/// receive FIFO drained meanwhile when [`set_receiving`] is on).
pub fn write_byte(byte: u8) {
    pace_one();
    drain_rx();
    PL011.write_byte(byte);
}

/// A received byte.
#[derive(Clone, Copy, Debug)]
pub struct RxByte {
    pub byte: u8,
    /// The PL011 flagged it (framing, parity, break or overrun), or bytes
    /// before it were lost because [`RX_RING_BYTES`] filled up.
    pub error: bool,
}

/// Bytes kept while the firmware is busy writing: at 921600 baud the
/// PL011's 16-byte receive FIFO fills in 174 µs, less than one record takes
/// to send, so while the runner receives, every wait for the transmitter
/// moves what arrived into this ring (11 ms of input at full speed).
pub const RX_RING_BYTES: usize = 1024;

struct RxRing {
    bytes: [u8; RX_RING_BYTES],
    errors: [bool; RX_RING_BYTES],
    head: usize,
    len: usize,
}

struct RxShared(UnsafeCell<RxRing>);

// SAFETY: only touched inside a critical section (DAIF masked) on the one
// running core.
unsafe impl Sync for RxShared {}

static RX_RING: RxShared = RxShared(UnsafeCell::new(RxRing {
    bytes: [0; RX_RING_BYTES],
    errors: [false; RX_RING_BYTES],
    head: 0,
    len: 0,
}));
static RECEIVING: AtomicBool = AtomicBool::new(false);

fn with_ring<R>(f: impl FnOnce(&mut RxRing) -> R) -> R {
    critical_section::with(|_| {
        // SAFETY: inside the critical section nothing else holds the ring.
        f(unsafe { &mut *RX_RING.0.get() })
    })
}

/// Turns receiving on or off; on, every byte written first moves what the
/// receive FIFO holds into the ring, so no write can overrun it. Turning it
/// on empties the ring and the FIFO (bytes from before are stale).
pub fn set_receiving(on: bool) {
    if on {
        while PL011.read_byte().is_some() {}
        with_ring(|ring| ring.len = 0);
    }
    RECEIVING.store(on, Ordering::Relaxed);
}

/// Moves what the receive FIFO holds into the ring (when receiving).
fn drain_rx() {
    if !RECEIVING.load(Ordering::Relaxed) {
        return;
    }
    with_ring(|ring| {
        while let Some(rx) = PL011.read_byte() {
            if ring.len == RX_RING_BYTES {
                // Lost: flag the byte before the gap, so the frame it falls
                // in is refused (its CRC would fail too).
                let last = (ring.head + ring.len - 1) % RX_RING_BYTES;
                ring.errors[last] = true;
                continue;
            }
            let at = (ring.head + ring.len) % RX_RING_BYTES;
            ring.bytes[at] = rx.byte;
            ring.errors[at] = rx.error;
            ring.len += 1;
        }
    });
}

/// The next received byte, if one has arrived: the ring's first, else the
/// receive FIFO's.
pub fn read_byte() -> Option<RxByte> {
    let queued = with_ring(|ring| {
        if ring.len == 0 {
            return None;
        }
        let at = ring.head;
        ring.head = (ring.head + 1) % RX_RING_BYTES;
        ring.len -= 1;
        Some(RxByte {
            byte: ring.bytes[at],
            error: ring.errors[at],
        })
    });
    queued.or_else(|| PL011.read_byte())
}

/// Sends bytes.
pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        write_byte(b);
    }
}

/// Waits until every byte has left the wire: the FIFO is empty and the
/// shifter is idle (and, when paced, the emulated wire too). Without this,
/// the last bytes before a semihosting exit or a halt can be lost.
pub fn flush() {
    PL011.flush();
    if PACE_TICKS.load(Ordering::Relaxed) != 0 {
        let until = WIRE_FREE_AT.load(Ordering::Relaxed);
        while timer::now_ticks() < until {}
    }
}
