//! The board a replay ran on, and its one rendering as text: an ordered list
//! of labelled values that the terminal, the HTML page and the firmware's boot
//! log all show.

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
    pub arm_clock_hz: Option<u32>,
    pub arm_max_clock_hz: Option<u32>,
    pub core_clock_hz: Option<u32>,
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
    CoreClock,
    UartClock,
    Timer,
    Temperature,
    DmaChannelMask,
    DmaChannel,
    Pool,
    Heap,
    RunningOn,
}

impl PlatformKey {
    /// Every line, in the order the block shows them.
    pub const ALL: [PlatformKey; 17] = [
        PlatformKey::BoardRevision,
        PlatformKey::BoardModel,
        PlatformKey::BoardSerial,
        PlatformKey::FirmwareRevision,
        PlatformKey::ArmMemory,
        PlatformKey::VcMemory,
        PlatformKey::ArmClock,
        PlatformKey::ArmMaxClock,
        PlatformKey::CoreClock,
        PlatformKey::UartClock,
        PlatformKey::Timer,
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
            PlatformKey::ArmClock => "ARM clock",
            PlatformKey::ArmMaxClock => "ARM max clock",
            PlatformKey::CoreClock => "core clock",
            PlatformKey::UartClock => "UART clock",
            PlatformKey::Timer => "generic timer (CNTFRQ_EL0)",
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
            PlatformKey::CoreClock => hertz(self.core_clock_hz),
            PlatformKey::UartClock => hertz(self.uart_clock_hz),
            PlatformKey::Timer => units::hertz(self.timer_hz),
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
            core_clock_hz: Some(700_000_000),
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
                ("ARM clock", "700 MHz"),
                ("ARM max clock", "700 MHz"),
                ("core clock", "700 MHz"),
                ("UART clock", "3 MHz"),
                ("generic timer (CNTFRQ_EL0)", "62.5 MHz"),
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
