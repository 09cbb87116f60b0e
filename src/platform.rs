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
            dma_channel,
            uart,
            record,
        }
    }

    /// Prints the platform block: the record's own lines (the same labelled
    /// values the host's table and page show), then what only the firmware
    /// knows (UART divisors, the coherent region, the entry level).
    pub fn print(&self, layout: &Layout) {
        defmt::info!("---- platform ----");
        if let Some(e) = self.mailbox_error {
            defmt::warn!(
                "mailbox failed: {=str}; every mailbox value below is unavailable",
                e.describe()
            );
        }
        let fields = self.record.fields();
        let width = fields.iter().map(|f| f.label().len()).max().unwrap_or(0);
        for field in &fields {
            let line = format!("{:<width$}  {}", field.label(), field.value);
            defmt::info!("{=str}", line.as_str());
        }
        defmt::info!(
            "UART divisors: {=u32} baud (IBRD {=u16}, FBRD {=u8}) from {=u32} Hz{=str}",
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
        match self.dma_channel {
            Some(ch) => defmt::info!(
                "DMA channel {=u8} is a {=str} channel: the lowest in the mask that is not 0, 2, 3 or 5, full preferred",
                ch,
                if bcm::mailbox::dma_channel_is_lite(ch) { "lite" } else { "full" }
            ),
            None => defmt::warn!("no usable DMA channel: moves fall back to the CPU"),
        }
        defmt::info!("pool mapped Normal non-cacheable (as the driver's write-combined CMA pool); heap write-back");
        defmt::info!(
            "coherent region {=usize:#010x}..{=usize:#010x} (mailbox buffers, DMA control blocks, non-cacheable)",
            layout.coherent.start,
            layout.coherent.end
        );
        defmt::info!("entered at EL{=u64}, running at EL1", self.entry_el);
        defmt::info!("------------------");
    }
}
