//! The conditions a run on the firmware ran under: the clock before and
//! after it, the UART time kept out of its timings, the routine that copied
//! its bytes, and the flags that say when its timings cannot be trusted.

use crate::units;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// How far the cycle counter's measured rate may be from the ARM clock the
/// stopwatch converts cycles with before a run is flagged: 1 %.
pub const CLOCK_TOLERANCE: f64 = 0.01;

/// The PMU cycle counter measured against the generic timer over a fixed
/// interval: `cycles` PMCCNTR_EL0 cycles in `counter_ticks` CNTPCT_EL0 ticks
/// at `counter_hz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Calibration {
    pub counter_ticks: u64,
    pub counter_hz: u64,
    pub cycles: u64,
}

impl Calibration {
    /// The cycle counter's rate in Hz; `None` for an empty interval.
    pub fn cycle_hz(&self) -> Option<u64> {
        if self.counter_ticks == 0 || self.counter_hz == 0 {
            return None;
        }
        let hz =
            u128::from(self.cycles) * u128::from(self.counter_hz) / u128::from(self.counter_ticks);
        Some(u64::try_from(hz).unwrap_or(u64::MAX))
    }

    /// The interval in nanoseconds.
    pub fn interval_ns(&self) -> u64 {
        if self.counter_hz == 0 {
            return 0;
        }
        let ns = u128::from(self.counter_ticks) * 1_000_000_000 / u128::from(self.counter_hz);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// The relative difference between the measured rate and `reported_hz`
    /// (0.02 is 2 %); `None` when either is unknown.
    pub fn deviation_from(&self, reported_hz: u64) -> Option<f64> {
        let measured = self.cycle_hz()?;
        (reported_hz != 0)
            .then(|| (measured as f64 - reported_hz as f64).abs() / reported_hz as f64)
    }

    /// In words, e.g. "1.2 GHz against CNTPCT_EL0 over 10 ms".
    pub fn describe(&self) -> String {
        match self.cycle_hz() {
            Some(hz) => format!(
                "{} against CNTPCT_EL0 over {}",
                units::hertz(hz),
                units::duration(self.interval_ns())
            ),
            None => String::from("no interval measured"),
        }
    }
}

/// The throttled flags of mailbox tag 0x00030046.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled(pub u32);

impl Throttled {
    /// Bits 0-3: under-voltage, ARM frequency capped, throttled and the soft
    /// temperature limit, now.
    pub const NOW: u32 = 0x0000_000f;
    /// Bits 16-19: the same four, "has occurred" (sticky until cleared).
    pub const STICKY: u32 = 0x000f_0000;

    const NAMES: [(u32, &'static str); 8] = [
        (1 << 0, "under-voltage now"),
        (1 << 1, "ARM frequency capped now"),
        (1 << 2, "throttled now"),
        (1 << 3, "soft temperature limit now"),
        (1 << 16, "under-voltage has occurred"),
        (1 << 17, "ARM frequency capping has occurred"),
        (1 << 18, "throttling has occurred"),
        (1 << 19, "soft temperature limit has occurred"),
    ];

    /// The flags in words: "0x0 (none)", or the hex value with every set
    /// flag named.
    pub fn describe(self) -> String {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|&(_, name)| name)
            .collect();
        let known = Self::NAMES.iter().fold(0, |m, (bit, _)| m | bit);
        let mut text = format!("{:#x} (", self.0);
        if names.is_empty() && self.0 & !known == 0 {
            text.push_str("none");
        } else {
            text.push_str(&names.join(", "));
            if self.0 & !known != 0 {
                if !names.is_empty() {
                    text.push_str(", ");
                }
                text.push_str("other bits");
            }
        }
        text.push(')');
        text
    }
}

/// Whether the clock was held down at some point between two readings of
/// the throttled flags: a "now" flag in either, or a sticky flag at the end
/// that the start did not already show. Unknown (either reading missing, as
/// under QEMU) counts as no evidence, so it is `false`.
pub fn throttled_between(start: Option<u32>, end: Option<u32>) -> bool {
    let (Some(start), Some(end)) = (start, end) else {
        return false;
    };
    (start | end) & Throttled::NOW != 0 || end & Throttled::STICKY & !start != 0
}

/// One reading of the clocks, at the start or the end of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClockCheck {
    /// Mailbox tag 0x00030047 for the ARM clock (`None`: not answered).
    pub arm_clock_measured_hz: Option<u32>,
    /// Mailbox tag 0x00030046 (`None`: not answered).
    pub throttled: Option<u32>,
    pub calibration: Calibration,
}

/// Why a run's timings are suspect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunFlag {
    /// The VideoCore reported under-voltage, capping or throttling during the run.
    Throttled,
    /// The run was timed with the cycle counter, and a calibration at its
    /// start or end puts the counter more than 1 % from the ARM clock the
    /// cycles were converted with.
    ClockMismatch,
}

impl RunFlag {
    /// The short name the table shows and report.json holds.
    pub fn as_str(self) -> &'static str {
        match self {
            RunFlag::Throttled => "throttled",
            RunFlag::ClockMismatch => "clock-mismatch",
        }
    }

    /// What the flag means, for the legend.
    pub fn meaning(self) -> &'static str {
        match self {
            RunFlag::Throttled => {
                "the VideoCore reported under-voltage, frequency capping or throttling during the run"
            }
            RunFlag::ClockMismatch => {
                "timed with the cycle counter, whose calibration at the start or end of the run is more than 1 % from the ARM clock it was converted with"
            }
        }
    }
}

/// What the firmware measured around one run (docs/design.md, section 5.4).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct RunConditions {
    /// The routine that copied the bytes, e.g. "DMA channel 4 (full, 128-bit)".
    pub copy_routine: String,
    /// Time spent writing this run's records to the UART while it was
    /// replayed; the run's clock was stopped meanwhile, so `replay_ns`, move
    /// latencies and stall exclude it.
    pub output_ns: u64,
    /// Bytes of records written in that time (before framing).
    pub output_bytes: u64,
    /// How many times the record buffer was written out during the run.
    pub output_flushes: u32,
    /// `Some(hz)` when the run was timed with the PMU cycle counter,
    /// converted at `hz` (the ARM clock the mailbox reported); `None` when
    /// it was timed with CNTPCT_EL0 (always under QEMU, whose cycle counter
    /// does not run at the ARM clock).
    pub cycle_timer_hz: Option<u64>,
    pub start: ClockCheck,
    pub end: ClockCheck,
    /// [`RunConditions::evaluate`], stored so readers of report.json see it.
    pub flags: Vec<RunFlag>,
}

impl RunConditions {
    /// The flags these readings call for.
    ///
    /// - [`RunFlag::Throttled`]: [`throttled_between`] the start and the end.
    /// - [`RunFlag::ClockMismatch`]: only when the run was timed with the
    ///   cycle counter (`cycle_timer_hz`), because only then does the
    ///   counter's rate enter the timings; a run timed with CNTPCT_EL0 (QEMU)
    ///   is never flagged for it, whatever its calibration says.
    pub fn evaluate(&self) -> Vec<RunFlag> {
        let mut flags = Vec::new();
        if throttled_between(self.start.throttled, self.end.throttled) {
            flags.push(RunFlag::Throttled);
        }
        if let Some(hz) = self.cycle_timer_hz {
            let off = |c: &ClockCheck| {
                c.calibration
                    .deviation_from(hz)
                    .is_none_or(|d| d > CLOCK_TOLERANCE)
            };
            if off(&self.start) || off(&self.end) {
                flags.push(RunFlag::ClockMismatch);
            }
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const PI_CNTFRQ: u64 = 19_200_000;

    /// A calibration over 10 ms of the generic timer with the cycle counter
    /// at `hz`.
    fn calibrated(hz: u64) -> Calibration {
        Calibration {
            counter_ticks: PI_CNTFRQ / 100,
            counter_hz: PI_CNTFRQ,
            cycles: hz / 100,
        }
    }

    fn silicon(start_hz: u64, end_hz: u64) -> RunConditions {
        RunConditions {
            cycle_timer_hz: Some(1_200_000_000),
            start: ClockCheck {
                arm_clock_measured_hz: Some(1_200_000_000),
                throttled: Some(0),
                calibration: calibrated(start_hz),
            },
            end: ClockCheck {
                arm_clock_measured_hz: Some(1_200_000_000),
                throttled: Some(0),
                calibration: calibrated(end_hz),
            },
            ..RunConditions::default()
        }
    }

    #[test]
    fn calibration_arithmetic() {
        let c = calibrated(1_200_000_000);
        assert_eq!(c.cycle_hz(), Some(1_200_000_000));
        assert_eq!(c.interval_ns(), 10_000_000);
        assert_eq!(
            c.deviation_from(1_188_000_000).map(|d| d > 0.01),
            Some(true)
        );
        assert_eq!(c.describe(), "1.2 GHz against CNTPCT_EL0 over 10 ms");
        assert_eq!(Calibration::default().cycle_hz(), None);
        assert_eq!(c.deviation_from(0), None);
    }

    #[test]
    fn a_steady_silicon_run_is_not_flagged() {
        let run = silicon(1_200_000_000, 1_195_000_000);
        assert_eq!(run.evaluate(), vec![], "0.4 % off is inside the tolerance");
    }

    #[test]
    fn a_clock_that_moved_flags_a_cycle_timed_run() {
        // Throttled to 600 MHz by the end of the run.
        assert_eq!(
            silicon(1_200_000_000, 600_000_000).evaluate(),
            vec![RunFlag::ClockMismatch]
        );
        // Just over 1 % at the start.
        assert_eq!(
            silicon(1_212_500_000, 1_200_000_000).evaluate(),
            vec![RunFlag::ClockMismatch]
        );
        // An empty calibration cannot vouch for the conversion either.
        let mut run = silicon(1_200_000_000, 1_200_000_000);
        run.end.calibration = Calibration::default();
        assert_eq!(run.evaluate(), vec![RunFlag::ClockMismatch]);
    }

    #[test]
    fn a_qemu_run_is_never_flagged_for_its_cycle_counter() {
        // QEMU: timed with CNTPCT_EL0 at 62.5 MHz; the cycle counter runs at
        // whatever QEMU's notional rate is, far from the 700 MHz reported.
        let qemu = RunConditions {
            cycle_timer_hz: None,
            start: ClockCheck {
                calibration: Calibration {
                    counter_ticks: 625_000,
                    counter_hz: 62_500_000,
                    cycles: 1_000_000,
                },
                ..ClockCheck::default()
            },
            ..RunConditions::default()
        };
        assert_eq!(qemu.start.calibration.cycle_hz(), Some(100_000_000));
        assert_eq!(qemu.evaluate(), vec![]);
    }

    #[test]
    fn throttling_during_the_run_is_flagged() {
        let mut run = silicon(1_200_000_000, 1_200_000_000);
        run.end.throttled = Some(0x5_0005);
        assert_eq!(run.evaluate(), vec![RunFlag::Throttled]);
        // Both at once.
        run.end.calibration = calibrated(600_000_000);
        assert_eq!(
            run.evaluate(),
            vec![RunFlag::Throttled, RunFlag::ClockMismatch]
        );
    }

    #[test]
    fn the_throttle_rule() {
        assert!(!throttled_between(Some(0), Some(0)));
        assert!(
            throttled_between(Some(0), Some(0x4)),
            "throttled now at the end"
        );
        assert!(
            throttled_between(Some(0x1), Some(0)),
            "under-voltage at the start"
        );
        assert!(
            throttled_between(Some(0), Some(0x4_0000)),
            "throttling occurred since the start"
        );
        assert!(
            !throttled_between(Some(0x1_0000), Some(0x1_0000)),
            "an under-voltage before the run, not cleared, is not this run's"
        );
        assert!(throttled_between(Some(0x1_0000), Some(0x5_0000)));
        assert!(
            !throttled_between(None, Some(0x4)),
            "unknown is no evidence"
        );
        assert!(!throttled_between(Some(0), None));
    }

    #[test]
    fn throttle_flags_in_words() {
        assert_eq!(Throttled(0).describe(), "0x0 (none)");
        assert_eq!(
            Throttled(0x5_0005).describe(),
            "0x50005 (under-voltage now, throttled now, under-voltage has occurred, throttling has occurred)"
        );
        assert_eq!(Throttled(0x100).describe(), "0x100 (other bits)");
    }
}
