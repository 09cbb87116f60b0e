//! What the firmware knows about the board: the mailbox answers, the timer,
//! where it runs (QEMU or silicon) and the DMA channel it will use. Printed
//! as a human-readable block at boot and sent to the host as a
//! `records::Platform`.

use crate::exit::QEMU_CNTFRQ_HZ;
use crate::memory::Layout;
use crate::{mailbox, timer, uart};
use alloc::format;
use alloc::string::String;
use bcm::mailbox::BoardInfo;

/// A Pi 3's generic timer frequency (set by the boot firmware).
pub const PI3_CNTFRQ_HZ: u64 = 19_200_000;

/// How "QEMU or silicon" was decided.
#[derive(Clone, Copy, Debug)]
pub struct Detection {
    /// The decision: `true` under QEMU.
    pub emulated: bool,
    pub timer_hz: u64,
    /// The board serial is unanswered or zero. QEMU 7.2 answers the serial
    /// tag with 0 (older QEMUs leave it unanswered); a Pi reports its real,
    /// non-zero serial.
    pub serial_blank: bool,
}

/// Decides QEMU versus silicon. CNTFRQ_EL0 decides, because it is the one
/// signal also available before the mailbox (and the exit path must agree
/// with the early guess): 62.5 MHz is QEMU's value and never a Pi 3's
/// (19.2 MHz). A blank board serial corroborates; a disagreement is
/// reported, not hidden. (Board model is no signal: QEMU answers 0, and so
/// does the Pi firmware on most boards.)
pub fn detect(board: Option<&BoardInfo>) -> Detection {
    let timer_hz = timer::frequency();
    Detection {
        emulated: timer_hz == QEMU_CNTFRQ_HZ,
        timer_hz,
        serial_blank: board.is_none_or(|b| b.board_serial.is_none_or(|s| s == 0)),
    }
}

impl Detection {
    /// The decision and its reasons, in words.
    pub fn describe(&self) -> String {
        let serial = if self.serial_blank {
            "board serial 0 or unanswered (as under QEMU)"
        } else {
            "a non-zero board serial (as on a Pi)"
        };
        let agreement = if self.serial_blank == self.emulated {
            ""
        } else {
            "; the signals disagree, CNTFRQ decides"
        };
        let clock = match self.timer_hz {
            QEMU_CNTFRQ_HZ => "QEMU's 62.5 MHz",
            PI3_CNTFRQ_HZ => "a Pi 3's 19.2 MHz",
            _ => "neither QEMU's 62.5 MHz nor a Pi 3's 19.2 MHz",
        };
        format!(
            "{}: CNTFRQ_EL0 {} Hz ({clock}); {serial}{agreement}",
            if self.emulated { "QEMU" } else { "silicon" },
            self.timer_hz
        )
    }
}

/// Everything boot learned, handed to every mode.
#[derive(Clone, Debug)]
pub struct Platform {
    /// Mailbox answers (all `None` if the mailbox failed).
    pub board: BoardInfo,
    /// Why the mailbox failed as a whole, if it did.
    pub mailbox_error: Option<mailbox::Error>,
    /// The exception level the boot stub was entered at (3, 2 or 1).
    pub entry_el: u64,
    /// `true` under QEMU (timings are emulation timings).
    pub emulated: bool,
    /// CNTFRQ_EL0.
    pub timer_hz: u64,
    /// The DMA channel movers use (None: no usable channel).
    pub dma_channel: Option<u8>,
    /// UART clock and divisors in use.
    pub uart: uart::Setup,
    /// What is sent to the host.
    pub record: records::Platform,
}

fn mem_range(range: &core::ops::Range<usize>) -> records::MemRange {
    records::MemRange {
        base: range.start as u64,
        size: range.len() as u64,
    }
}

impl Platform {
    /// Puts the pieces together (needs the heap).
    pub fn new(
        board: Option<BoardInfo>,
        mailbox_error: Option<mailbox::Error>,
        entry_el: u64,
        detection: Detection,
        uart: uart::Setup,
        layout: &Layout,
    ) -> Self {
        let board = board.unwrap_or_default();
        let dma_channel = board
            .dma_channel_mask
            .and_then(bcm::mailbox::choose_dma_channel);
        let mem = |m: Option<(u32, u32)>| {
            m.map(|(base, size)| records::MemRange {
                base: base.into(),
                size: size.into(),
            })
        };
        let record = records::Platform {
            board_revision: board.board_revision,
            board_model: board.board_model,
            board_serial: board.board_serial,
            firmware_revision: board.firmware_revision,
            arm_memory: mem(board.arm_memory),
            vc_memory: mem(board.vc_memory),
            arm_clock_hz: board.arm_clock_hz,
            arm_max_clock_hz: board.arm_max_clock_hz,
            core_clock_hz: board.core_clock_hz,
            uart_clock_hz: board.uart_clock_hz,
            timer_hz: detection.timer_hz,
            temperature_mc: board.temperature_mc,
            dma_channel_mask: board.dma_channel_mask,
            dma_channel,
            emulated: detection.emulated,
            detection: detection.describe(),
            pool: Some(mem_range(&layout.pool)),
            heap: Some(mem_range(&layout.heap)),
        };
        Self {
            board,
            mailbox_error,
            entry_el,
            emulated: detection.emulated,
            timer_hz: detection.timer_hz,
            dma_channel,
            uart,
            record,
        }
    }

    /// Prints the platform block.
    pub fn print(&self, layout: &Layout) {
        let b = &self.board;
        defmt::info!("---- platform ----");
        if let Some(e) = self.mailbox_error {
            defmt::warn!(
                "mailbox failed: {=str}; every mailbox value below is unavailable",
                e.describe()
            );
        }
        defmt::info!("board revision    {}", Hex(b.board_revision));
        defmt::info!("board model       {}", Hex(b.board_model));
        defmt::info!("board serial      {}", Hex64(b.board_serial));
        defmt::info!("firmware revision {}", Hex(b.firmware_revision));
        defmt::info!("ARM memory        {}", Mem(b.arm_memory));
        defmt::info!("VC memory         {}", Mem(b.vc_memory));
        defmt::info!("ARM clock         {}", Hz(b.arm_clock_hz));
        defmt::info!("ARM max clock     {}", Hz(b.arm_max_clock_hz));
        defmt::info!("core clock        {}", Hz(b.core_clock_hz));
        defmt::info!("UART clock        {}", Hz(b.uart_clock_hz));
        defmt::info!(
            "UART              {=u32} baud (IBRD {=u16}, FBRD {=u8}) from {=u32} Hz{=str}",
            self.uart.divisors.actual_baud,
            self.uart.divisors.integer,
            self.uart.divisors.fraction,
            self.uart.clock_hz,
            if self.uart.divisors.exact {
                ""
            } else {
                " (921600 is above clock/16: fastest possible rate)"
            }
        );
        defmt::info!("timer frequency   {=u64} Hz (CNTFRQ_EL0)", self.timer_hz);
        match b.temperature_mc {
            Some(mc) => defmt::info!("temperature       {=u32}.{=u32:03} C", mc / 1000, mc % 1000),
            None => defmt::info!("temperature       unavailable"),
        }
        defmt::info!("DMA channel mask  {}", Hex(b.dma_channel_mask));
        match self.dma_channel {
            Some(ch) => defmt::info!(
                "DMA channel       {=u8} ({=str} channel; lowest in the mask that is not 0, 2, 3 or 5, full preferred)",
                ch,
                if bcm::mailbox::dma_channel_is_lite(ch) { "lite" } else { "full" }
            ),
            None => defmt::warn!("DMA channel       none usable: moves fall back to the CPU"),
        }
        defmt::info!(
            "pool              {=usize:#010x}..{=usize:#010x} ({=usize} MiB, non-cacheable)",
            layout.pool.start,
            layout.pool.end,
            layout.pool.len() >> 20
        );
        defmt::info!(
            "heap              {=usize:#010x}..{=usize:#010x} ({=usize} MiB, write-back)",
            layout.heap.start,
            layout.heap.end,
            layout.heap.len() >> 20
        );
        defmt::info!(
            "coherent          {=usize:#010x}..{=usize:#010x} (mailbox buffers, DMA control blocks)",
            layout.coherent.start,
            layout.coherent.end
        );
        defmt::info!("entered at        EL{=u64}, running at EL1", self.entry_el);
        defmt::info!("running on        {=str}", self.record.detection.as_str());
        defmt::info!("------------------");
    }
}

struct Hex(Option<u32>);
impl defmt::Format for Hex {
    fn format(&self, f: defmt::Formatter) {
        match self.0 {
            Some(v) => defmt::write!(f, "{=u32:#x}", v),
            None => defmt::write!(f, "unavailable"),
        }
    }
}

struct Hex64(Option<u64>);
impl defmt::Format for Hex64 {
    fn format(&self, f: defmt::Formatter) {
        match self.0 {
            Some(v) => defmt::write!(f, "{=u64:#x}", v),
            None => defmt::write!(f, "unavailable"),
        }
    }
}

struct Hz(Option<u32>);
impl defmt::Format for Hz {
    fn format(&self, f: defmt::Formatter) {
        match self.0 {
            Some(v) => defmt::write!(f, "{=u32} Hz", v),
            None => defmt::write!(f, "unavailable"),
        }
    }
}

struct Mem(Option<(u32, u32)>);
impl defmt::Format for Mem {
    fn format(&self, f: defmt::Formatter) {
        match self.0 {
            Some((base, size)) => defmt::write!(
                f,
                "base {=u32:#010x} size {=u32:#010x} ({=u32} MiB)",
                base,
                size,
                size >> 20
            ),
            None => defmt::write!(f, "unavailable"),
        }
    }
}
