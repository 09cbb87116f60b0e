//! What the firmware knows about the board: the mailbox answers, the timer,
//! where it runs (QEMU or silicon) and the DMA channel it will use. Printed
//! as a human-readable block at boot and sent to the host as a
//! `records::Platform`.

use crate::exit::QEMU_CNTFRQ_HZ;
use crate::memory::Layout;
use crate::{mailbox, timer, uart};
use alloc::format;
use alloc::string::String;
use bcm::clocks::{ClockState, SetAnswer};
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

/// What raising the clocks at boot gave.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClockSetup {
    /// The rates asked for: the maxima from GET_MAX_CLOCK_RATE (`None`: no
    /// maximum known, that clock is left alone).
    pub requested: SetAnswer,
    /// SET_CLOCK_RATE's answer, or why the message failed.
    pub answer: Option<Result<SetAnswer, mailbox::Error>>,
    /// The clocks read back afterwards (all `None` if the read failed).
    pub state: ClockState,
    pub state_error: Option<mailbox::Error>,
}

/// Raises the ARM clock (id 3) and the core clock (id 4), which also clocks
/// the DMA engine, to the maxima the board query reported, then reads back
/// what is in force. A Pi 3 boots with the ARM at 600 MHz of 1200 and the
/// core at its minimum; without this every figure would be an idle-clock
/// figure. Nothing is invented: a clock without a reported maximum is not
/// set, and every rate shown is one the VideoCore answered.
pub fn raise_clocks(board: &BoardInfo) -> ClockSetup {
    let requested = SetAnswer {
        arm_hz: board.arm_max_clock_hz,
        core_hz: board.core_max_clock_hz,
    };
    let answer = (requested.arm_hz.is_some() || requested.core_hz.is_some())
        .then(|| mailbox::set_clocks(requested.arm_hz, requested.core_hz));
    let (state, state_error) = match mailbox::query_clocks(false) {
        Ok(state) => (state, None),
        Err(e) => (ClockState::default(), Some(e)),
    };
    ClockSetup {
        requested,
        answer,
        state,
        state_error,
    }
}

impl ClockSetup {
    /// Logs what was asked and answered (the block shows what is in force).
    pub fn log(&self) {
        let hz = |v: Option<u32>| v.map_or(0, u64::from);
        match self.answer {
            None => defmt::warn!("clocks: no maximum reported, nothing set"),
            Some(Ok(a)) => defmt::info!(
                "clocks: asked ARM {=u64} Hz and core {=u64} Hz (0: not asked); SET_CLOCK_RATE answered ARM {=u64} Hz, core {=u64} Hz (0: no answer)",
                hz(self.requested.arm_hz),
                hz(self.requested.core_hz),
                hz(a.arm_hz),
                hz(a.core_hz)
            ),
            Some(Err(e)) => defmt::error!("clocks: SET_CLOCK_RATE failed: {=str}", e.describe()),
        }
        if let Some(e) = self.state_error {
            defmt::error!("clocks: reading them back failed: {=str}", e.describe());
        }
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
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        board: Option<BoardInfo>,
        mailbox_error: Option<mailbox::Error>,
        clocks: &ClockSetup,
        calibration: records::Calibration,
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
            arm_clock_set_hz: clocks.state.arm_hz,
            arm_clock_measured_hz: clocks.state.arm_measured_hz,
            core_clock_hz: board.core_clock_hz,
            core_max_clock_hz: board.core_max_clock_hz,
            core_clock_set_hz: clocks.state.core_hz,
            core_clock_measured_hz: clocks.state.core_measured_hz,
            throttled: clocks.state.throttled,
            cycle_calibration: Some(calibration),
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
