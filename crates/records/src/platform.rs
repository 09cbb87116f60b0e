//! The board a replay ran on, and its one rendering as text: an ordered list
//! of labelled values that the terminal, the HTML page and the firmware's boot
//! log all show.

use crate::conditions::{Calibration, Throttled};
use crate::hex;
use crate::units;
use crate::Source;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A range of physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemRange {
    #[serde(with = "hex::u64")]
    pub base: u64,
    pub size: u64,
}

/// What the VideoCore firmware and the CPU say about the board. Every field the
/// firmware did not answer is `None` ("unavailable"), never zero.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Platform {
    #[serde(with = "hex::opt_u32")]
    pub board_revision: Option<u32>,
    #[serde(with = "hex::opt_u32")]
    pub board_model: Option<u32>,
    #[serde(with = "hex::opt_u64")]
    pub board_serial: Option<u64>,
    #[serde(with = "hex::opt_u32")]
    pub firmware_revision: Option<u32>,
    pub arm_memory: Option<MemRange>,
    pub vc_memory: Option<MemRange>,
    /// The ARM clock as the board booted (tag 0x00030002).
    pub arm_clock_hz: Option<u32>,
    pub arm_max_clock_hz: Option<u32>,
    /// The ARM clock after SET_CLOCK_RATE to the maximum, as GET_CLOCK_RATE
    /// reads it back: the rate the stopwatch converts cycles with.
    pub arm_clock_set_hz: Option<u32>,
    /// Tag 0x00030047 after the set.
    pub arm_clock_measured_hz: Option<u32>,
    /// The core clock (which also clocks the DMA engine) as booted.
    pub core_clock_hz: Option<u32>,
    pub core_max_clock_hz: Option<u32>,
    pub core_clock_set_hz: Option<u32>,
    pub core_clock_measured_hz: Option<u32>,
    /// Tag 0x00030046 after the set.
    #[serde(with = "hex::opt_u32")]
    pub throttled: Option<u32>,
    /// The PMU cycle counter against CNTPCT_EL0 at boot.
    pub cycle_calibration: Option<Calibration>,
    pub uart_clock_hz: Option<u32>,
    /// CNTFRQ_EL0, read at run time.
    pub timer_hz: u64,
    /// SoC temperature in millidegrees Celsius.
    pub temperature_mc: Option<u32>,
    #[serde(with = "hex::opt_u32")]
    pub dma_channel_mask: Option<u32>,
    /// The DMA channel the mover uses (None: no usable channel, CPU mover only).
    pub dma_channel: Option<u8>,
    /// `true` under QEMU, `false` on silicon.
    pub emulated: bool,
    /// How `emulated` was decided, in words.
    pub detection: String,
    /// The contiguous pool carved out of ARM memory.
    pub pool: Option<MemRange>,
    /// The backing heap for overflow buffers.
    pub heap: Option<MemRange>,
}

/// The text shown for a value the firmware did not get (a mailbox tag it
/// sent that was not answered).
pub const UNAVAILABLE: &str = "unavailable";

/// One line of the platform block, by what it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformKey {
    BoardRevision,
    BoardModel,
    BoardSerial,
    FirmwareRevision,
    ArmMemory,
    VcMemory,
    ArmClock,
    ArmMaxClock,
    ArmClockSet,
    ArmClockMeasured,
    CoreClock,
    CoreMaxClock,
    CoreClockSet,
    CoreClockMeasured,
    Throttled,
    UartClock,
    Timer,
    CycleCounter,
    Temperature,
    DmaChannelMask,
    DmaChannel,
    Pool,
    Heap,
    RunningOn,
}

impl PlatformKey {
    /// Every line, in the order the block shows them.
    pub const ALL: [PlatformKey; 24] = [
        PlatformKey::BoardRevision,
        PlatformKey::BoardModel,
        PlatformKey::BoardSerial,
        PlatformKey::FirmwareRevision,
        PlatformKey::ArmMemory,
        PlatformKey::VcMemory,
        PlatformKey::ArmClock,
        PlatformKey::ArmMaxClock,
        PlatformKey::ArmClockSet,
        PlatformKey::ArmClockMeasured,
        PlatformKey::CoreClock,
        PlatformKey::CoreMaxClock,
        PlatformKey::CoreClockSet,
        PlatformKey::CoreClockMeasured,
        PlatformKey::Throttled,
        PlatformKey::UartClock,
        PlatformKey::Timer,
        PlatformKey::CycleCounter,
        PlatformKey::Temperature,
        PlatformKey::DmaChannelMask,
        PlatformKey::DmaChannel,
        PlatformKey::Pool,
        PlatformKey::Heap,
        PlatformKey::RunningOn,
    ];

    /// What the line is called.
    pub fn label(self) -> &'static str {
        match self {
            PlatformKey::BoardRevision => "board revision",
            PlatformKey::BoardModel => "board model",
            PlatformKey::BoardSerial => "board serial",
            PlatformKey::FirmwareRevision => "firmware revision",
            PlatformKey::ArmMemory => "ARM memory",
            PlatformKey::VcMemory => "VideoCore memory",
            PlatformKey::ArmClock => "ARM clock at boot",
            PlatformKey::ArmMaxClock => "ARM max clock",
            PlatformKey::ArmClockSet => "ARM clock set",
            PlatformKey::ArmClockMeasured => "ARM clock measured",
            PlatformKey::CoreClock => "core clock at boot",
            PlatformKey::CoreMaxClock => "core max clock",
            PlatformKey::CoreClockSet => "core clock set",
            PlatformKey::CoreClockMeasured => "core clock measured",
            PlatformKey::Throttled => "throttled",
            PlatformKey::UartClock => "UART clock",
            PlatformKey::Timer => "generic timer (CNTFRQ_EL0)",
            PlatformKey::CycleCounter => "PMU cycle counter",
            PlatformKey::Temperature => "SoC temperature",
            PlatformKey::DmaChannelMask => "DMA channel mask",
            PlatformKey::DmaChannel => "DMA channel",
            PlatformKey::Pool => "pool region",
            PlatformKey::Heap => "overflow heap",
            PlatformKey::RunningOn => "running on",
        }
    }
}

/// One line of the platform block: what it shows and the value as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformField {
    pub key: PlatformKey,
    pub value: String,
}

impl PlatformField {
    pub fn label(&self) -> &'static str {
        self.key.label()
    }
}

fn or_unavailable<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| UNAVAILABLE.to_string(), show)
}

fn hex(value: Option<impl Into<u64>>) -> String {
    or_unavailable(value, |v| format!("{:#x}", v.into()))
}

fn hertz(value: Option<u32>) -> String {
    or_unavailable(value, |hz| units::hertz(hz.into()))
}

fn range(value: Option<MemRange>) -> String {
    or_unavailable(value, |r| {
        format!(
            "{:#010x} .. {:#010x} ({})",
            r.base,
            r.base.saturating_add(r.size),
            units::bytes(r.size)
        )
    })
}

impl Platform {
    /// The cycle counter line: its calibration, and whether it can time
    /// anything here (only on silicon does it run at the ARM clock).
    fn cycle_counter(&self) -> String {
        let Some(c) = self.cycle_calibration.filter(|c| c.cycle_hz().is_some()) else {
            return UNAVAILABLE.to_string();
        };
        let verdict = match (self.emulated, self.arm_clock_set_hz) {
            (true, _) => {
                String::from("QEMU: not the ARM clock, so moves are timed with CNTPCT_EL0")
            }
            (false, Some(arm)) => match c.deviation_from(arm.into()) {
                Some(d) => format!(
                    "{:.2} % from the ARM clock set{}",
                    d * 100.0,
                    if d > crate::conditions::CLOCK_TOLERANCE {
                        " (more than 1 %: cycle timings are suspect)"
                    } else {
                        ""
                    }
                ),
                None => String::from("no ARM clock to compare with"),
            },
            (false, None) => String::from("no ARM clock to compare with"),
        };
        format!("{}; {verdict}", c.describe())
    }

    pub fn source(&self) -> Source {
        if self.emulated {
            Source::Qemu
        } else {
            Source::Hardware
        }
    }

    /// The platform block: every line in order, each value as text
    /// ([`UNAVAILABLE`] where the firmware got no answer, never zero).
    pub fn fields(&self) -> Vec<PlatformField> {
        PlatformKey::ALL
            .into_iter()
            .map(|key| PlatformField {
                key,
                value: self.value(key),
            })
            .collect()
    }

    /// The text of one line of the block.
    pub fn value(&self, key: PlatformKey) -> String {
        match key {
            PlatformKey::BoardRevision => hex(self.board_revision),
            PlatformKey::BoardModel => hex(self.board_model),
            PlatformKey::BoardSerial => hex(self.board_serial),
            PlatformKey::FirmwareRevision => hex(self.firmware_revision),
            PlatformKey::ArmMemory => range(self.arm_memory),
            PlatformKey::VcMemory => range(self.vc_memory),
            PlatformKey::ArmClock => hertz(self.arm_clock_hz),
            PlatformKey::ArmMaxClock => hertz(self.arm_max_clock_hz),
            PlatformKey::ArmClockSet => hertz(self.arm_clock_set_hz),
            PlatformKey::ArmClockMeasured => hertz(self.arm_clock_measured_hz),
            PlatformKey::CoreClock => hertz(self.core_clock_hz),
            PlatformKey::CoreMaxClock => hertz(self.core_max_clock_hz),
            PlatformKey::CoreClockSet => hertz(self.core_clock_set_hz),
            PlatformKey::CoreClockMeasured => hertz(self.core_clock_measured_hz),
            PlatformKey::Throttled => or_unavailable(self.throttled, |t| Throttled(t).describe()),
            PlatformKey::UartClock => hertz(self.uart_clock_hz),
            PlatformKey::Timer => units::hertz(self.timer_hz),
            PlatformKey::CycleCounter => self.cycle_counter(),
            PlatformKey::Temperature => or_unavailable(self.temperature_mc, |mc| {
                format!("{:.1} °C", f64::from(mc) / 1000.0)
            }),
            PlatformKey::DmaChannelMask => hex(self.dma_channel_mask),
            PlatformKey::DmaChannel => self.dma_channel.map_or_else(
                || "none usable (CPU mover only)".to_string(),
                |ch| format!("{ch}"),
            ),
            PlatformKey::Pool => range(self.pool),
            PlatformKey::Heap => range(self.heap),
            PlatformKey::RunningOn => {
                let machine = if self.emulated {
                    "QEMU emulation"
                } else {
                    "silicon"
                };
                if self.detection.is_empty() {
                    machine.to_string()
                } else {
                    format!("{machine} ({})", self.detection)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu() -> Platform {
        Platform {
            board_revision: Some(0xa02082),
            board_model: Some(0),
            board_serial: Some(0),
            firmware_revision: Some(0x548e1),
            arm_memory: Some(MemRange {
                base: 0,
                size: 0x3c00_0000,
            }),
            vc_memory: Some(MemRange {
                base: 0x3c00_0000,
                size: 0x0400_0000,
            }),
            arm_clock_hz: Some(700_000_000),
            arm_max_clock_hz: Some(700_000_000),
            arm_clock_set_hz: Some(700_000_000),
            arm_clock_measured_hz: None,
            core_clock_hz: Some(700_000_000),
            core_max_clock_hz: Some(700_000_000),
            core_clock_set_hz: Some(700_000_000),
            core_clock_measured_hz: None,
            throttled: None,
            cycle_calibration: Some(Calibration {
                counter_ticks: 625_000,
                counter_hz: 62_500_000,
                cycles: 1_000_000,
            }),
            uart_clock_hz: Some(3_000_000),
            timer_hz: 62_500_000,
            temperature_mc: Some(25_000),
            dma_channel_mask: Some(0x3c),
            dma_channel: Some(4),
            emulated: true,
            detection: "QEMU: CNTFRQ_EL0 62500000 Hz".into(),
            pool: Some(MemRange {
                base: 0x0040_0000,
                size: 48 << 20,
            }),
            heap: Some(MemRange {
                base: 0x0340_0000,
                size: 908 << 20,
            }),
        }
    }

    fn text(fields: &[PlatformField]) -> Vec<(&'static str, &str)> {
        fields
            .iter()
            .map(|f| (f.label(), f.value.as_str()))
            .collect()
    }

    #[test]
    fn every_line_in_order_with_its_value() {
        assert_eq!(
            text(&qemu().fields()),
            [
                ("board revision", "0xa02082"),
                ("board model", "0x0"),
                ("board serial", "0x0"),
                ("firmware revision", "0x548e1"),
                ("ARM memory", "0x00000000 .. 0x3c000000 (960 MiB)"),
                ("VideoCore memory", "0x3c000000 .. 0x40000000 (64 MiB)"),
                ("ARM clock at boot", "700 MHz"),
                ("ARM max clock", "700 MHz"),
                ("ARM clock set", "700 MHz"),
                ("ARM clock measured", "unavailable"),
                ("core clock at boot", "700 MHz"),
                ("core max clock", "700 MHz"),
                ("core clock set", "700 MHz"),
                ("core clock measured", "unavailable"),
                ("throttled", "unavailable"),
                ("UART clock", "3 MHz"),
                ("generic timer (CNTFRQ_EL0)", "62.5 MHz"),
                (
                    "PMU cycle counter",
                    "100 MHz against CNTPCT_EL0 over 10 ms; QEMU: not the ARM clock, so moves are timed with CNTPCT_EL0"
                ),
                ("SoC temperature", "25.0 °C"),
                ("DMA channel mask", "0x3c"),
                ("DMA channel", "4"),
                ("pool region", "0x00400000 .. 0x03400000 (48 MiB)"),
                ("overflow heap", "0x03400000 .. 0x3c000000 (908 MiB)"),
                (
                    "running on",
                    "QEMU emulation (QEMU: CNTFRQ_EL0 62500000 Hz)"
                ),
            ]
        );
    }

    #[test]
    fn unanswered_tags_are_unavailable_never_zero() {
        let silent = Platform {
            timer_hz: 19_200_000,
            ..Platform::default()
        };
        for field in silent.fields() {
            let expected = match field.key {
                PlatformKey::Timer => "19.2 MHz",
                PlatformKey::DmaChannel => "none usable (CPU mover only)",
                PlatformKey::RunningOn => "silicon",
                _ => UNAVAILABLE,
            };
            assert_eq!(field.value, expected, "{}", field.label());
        }
    }

    #[test]
    fn silicon_clocks_and_throttling_are_shown() {
        let pi = Platform {
            arm_clock_set_hz: Some(1_200_000_000),
            throttled: Some(0x5_0005),
            cycle_calibration: Some(Calibration {
                counter_ticks: 192_000,
                counter_hz: 19_200_000,
                cycles: 11_760_000,
            }),
            timer_hz: 19_200_000,
            ..Platform::default()
        };
        assert_eq!(pi.value(PlatformKey::ArmClockSet), "1.2 GHz");
        assert_eq!(
            pi.value(PlatformKey::Throttled),
            "0x50005 (under-voltage now, throttled now, under-voltage has occurred, throttling has occurred)"
        );
        assert_eq!(
            pi.value(PlatformKey::CycleCounter),
            "1.176 GHz against CNTPCT_EL0 over 10 ms; 2.00 % from the ARM clock set (more than 1 %: cycle timings are suspect)"
        );
    }

    #[test]
    fn a_range_at_the_top_of_the_address_space_does_not_overflow() {
        let top = Platform {
            pool: Some(MemRange {
                base: u64::MAX - 4095,
                size: 8192,
            }),
            ..Platform::default()
        };
        assert_eq!(
            top.value(PlatformKey::Pool),
            "0xfffffffffffff000 .. 0xffffffffffffffff (8 KiB)"
        );
    }
}
