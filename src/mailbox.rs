//! VideoCore mailbox 0 ([`memory_map::MAILBOX`]), property channel 8.
//! Message building and parsing live in `bcm::mailbox` (host-tested); this
//! file moves the words between the ARM and the VideoCore.
//!
//! The message buffer sits in the `.coherent` section (Normal non-cacheable
//! once the MMU is on), so the VideoCore and the ARM see the same bytes
//! without cache maintenance; it is handed over as a bus address
//! (`bcm::addr`: phys | 0xC000_0000, the uncached alias).

use crate::mmio::Mmio;
use crate::{barrier, memory_map, timer};
use bcm::addr::PhysAddr;
use bcm::clocks::{ClockQuery, ClockSet, ClockState, SetAnswer, CLOCK_MESSAGE_WORDS};
use bcm::mailbox::{self, BoardInfo, BoardQuery, BuildError, ResponseError, BOARD_QUERY_WORDS};
use core::cell::UnsafeCell;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

/// How long the VideoCore gets to answer. It answers in microseconds; a
/// second means it never will.
const TIMEOUT_US: u64 = 1_000_000;

register_bitfields! {
    u32,
    /// Status of a mailbox.
    STATUS [
        /// No room to write (mailbox 1: ARM to VideoCore).
        FULL OFFSET(31) NUMBITS(1) [],
        /// Nothing to read (mailbox 0: VideoCore to ARM).
        EMPTY OFFSET(30) NUMBITS(1) []
    ]
}

register_structs! {
    MailboxRegisters {
        /// Mailbox 0 read: VideoCore to ARM. Low 4 bits channel, high 28 data.
        (0x00 => read: ReadOnly<u32>),
        (0x04 => _reserved0),
        /// Mailbox 0 status: EMPTY tells whether `read` has a message.
        (0x18 => status0: ReadOnly<u32, STATUS::Register>),
        (0x1c => _reserved1),
        /// Mailbox 1 write: ARM to VideoCore.
        (0x20 => write: WriteOnly<u32>),
        (0x24 => _reserved2),
        /// Mailbox 1 status: FULL tells whether `write` has room.
        (0x38 => status1: ReadOnly<u32, STATUS::Register>),
        (0x3c => @END),
    }
}

/// Why a mailbox exchange failed.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum Error {
    /// The write side stayed full.
    WriteTimeout,
    /// No answer within the timeout.
    ReadTimeout,
    /// The message did not fit its buffer (a firmware bug).
    BufferTooSmall,
    /// The message buffer is not at an address the VideoCore can reach as
    /// a mailbox message (a firmware or linker-script bug).
    BufferNotAddressable,
    /// The answer as a whole says failure.
    Response(#[defmt(Debug2Format)] ResponseError),
}

impl Error {
    /// A human description for the platform block.
    pub fn describe(&self) -> &'static str {
        match self {
            Error::WriteTimeout => {
                "the mailbox stayed full for 1 s (VideoCore not taking messages)"
            }
            Error::ReadTimeout => "the VideoCore did not answer within 1 s",
            Error::BufferTooSmall => "the property message did not fit its buffer",
            Error::BufferNotAddressable => {
                "the property message buffer is not 16-byte aligned SDRAM the VideoCore can address"
            }
            Error::Response(e) => e.describe(),
        }
    }
}

/// Words of the one message buffer: room for the largest message.
const BUFFER_WORDS: usize = if BOARD_QUERY_WORDS > CLOCK_MESSAGE_WORDS {
    BOARD_QUERY_WORDS
} else {
    CLOCK_MESSAGE_WORDS
};

#[repr(C, align(16))]
struct Buffer(UnsafeCell<[u32; BUFFER_WORDS]>);

// SAFETY: used on core 0 only (cores 1-3 are parked), one exchange at a
// time, never from an exception handler.
unsafe impl Sync for Buffer {}

#[link_section = ".coherent"]
static BUFFER: Buffer = Buffer(UnsafeCell::new([0; BUFFER_WORDS]));

/// The ARM's side of the VideoCore mailboxes.
pub struct Mailbox {
    registers: Mmio<MailboxRegisters>,
}

// SAFETY: the mailbox block's address on the BCM2837; only this driver
// touches it.
static MAILBOX: Mailbox = unsafe { Mailbox::new(memory_map::MAILBOX) };

impl Mailbox {
    /// The mailboxes at `base`.
    ///
    /// # Safety
    /// As for [`Mmio::new`]: `base` is the mailbox block, mapped Device
    /// memory, and no other driver uses it.
    pub const unsafe fn new(base: usize) -> Self {
        Mailbox {
            // SAFETY: the caller's guarantee.
            registers: unsafe { Mmio::new(base) },
        }
    }
}

/// Builds a message with `build`, exchanges it, and reads the answer with
/// `parse`.
fn message<Q, T>(
    build: impl FnOnce(&mut [u32]) -> Result<(Q, usize), BuildError>,
    parse: impl FnOnce(&Q, &[u32]) -> Result<T, ResponseError>,
) -> Result<T, Error> {
    // SAFETY: the only user of BUFFER, single core; the VideoCore writes it
    // only between our write and its answer, while we do not touch it.
    let buf = unsafe { &mut *BUFFER.0.get() };
    let (query, _words) = build(buf).map_err(|_| Error::BufferTooSmall)?;
    exchange(buf.as_ptr() as usize, core::mem::size_of_val(buf))?;
    // SAFETY: the answer is complete; read it through a fresh reference
    // (the VideoCore wrote the memory behind the compiler's back).
    let buf = unsafe { &*BUFFER.0.get() };
    let words: [u32; BUFFER_WORDS] = core::array::from_fn(|i| {
        // SAFETY: in bounds; volatile so the compiler reloads what the VideoCore wrote.
        unsafe { core::ptr::read_volatile(buf.as_ptr().add(i)) }
    });
    parse(&query, &words).map_err(Error::Response)
}

/// Asks the VideoCore everything in [`BoardInfo`] with one property message.
pub fn query_board() -> Result<BoardInfo, Error> {
    message(BoardQuery::build, BoardQuery::parse)
}

/// Sets the ARM clock to `arm_hz` and the core clock to `core_hz` (each
/// when given), with turbo (voltage) following. The answer is the rate the
/// VideoCore says it set; [`query_clocks`] says what is in force.
pub fn set_clocks(arm_hz: Option<u32>, core_hz: Option<u32>) -> Result<SetAnswer, Error> {
    message(|buf| ClockSet::build(buf, arm_hz, core_hz), ClockSet::parse)
}

/// Reads the clocks now: the rates in force, the measured rates and the
/// throttled flags (with `clear_sticky`, the sticky flags are cleared first,
/// see `bcm::clocks::ClockQuery::build`).
pub fn query_clocks(clear_sticky: bool) -> Result<ClockState, Error> {
    message(
        |buf| ClockQuery::build(buf, clear_sticky),
        ClockQuery::parse,
    )
}

/// One property-channel exchange of the `len`-byte message at physical
/// address `phys`.
fn exchange(phys: usize, len: usize) -> Result<(), Error> {
    let mb = &MAILBOX.registers;
    let bus = PhysAddr(phys as u64)
        .to_bus(len as u64)
        .map_err(|_| Error::BufferNotAddressable)?;
    let message =
        mailbox::mailbox_word(bus, mailbox::CHANNEL_PROPERTY).ok_or(Error::BufferNotAddressable)?;
    // The message must be in memory before the VideoCore is told about it.
    barrier::dsb_sy();

    // Drain stale answers (e.g. left over from the boot firmware).
    // Bounded: a mailbox that never empties must not hang the boot here.
    for _ in 0..64 {
        if mb.status0.is_set(STATUS::EMPTY) {
            break;
        }
        let _ = mb.read.get();
    }

    let deadline = timer::deadline_after_us(TIMEOUT_US);
    while mb.status1.is_set(STATUS::FULL) {
        if timer::now_ticks() > deadline {
            return Err(Error::WriteTimeout);
        }
    }
    mb.write.set(message);

    let deadline = timer::deadline_after_us(TIMEOUT_US);
    loop {
        while mb.status0.is_set(STATUS::EMPTY) {
            if timer::now_ticks() > deadline {
                return Err(Error::ReadTimeout);
            }
        }
        // Answers on other channels are not ours; keep waiting for ours.
        if mb.read.get() == message {
            break;
        }
    }
    // The CPU's reads of the answer come after the read that saw it.
    barrier::dsb_sy();
    Ok(())
}
