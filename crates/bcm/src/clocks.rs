//! The clock messages of the mailbox property interface: raising the ARM and
//! core clocks to their maxima, and reading back the rates the VideoCore
//! reports, the rates it measures and its throttled flags.
//!
//! Tags, as the Raspberry Pi firmware's mailbox property interface documents
//! them and Linux's `raspberrypi-cpufreq`/`raspberrypi-hwmon` use them:
//!
//! | tag | request | response |
//! |---|---|---|
//! | 0x00030002 GET_CLOCK_RATE | clock id | clock id, rate (Hz) |
//! | 0x00030004 GET_MAX_CLOCK_RATE | clock id | clock id, rate (Hz) |
//! | 0x00038002 SET_CLOCK_RATE | clock id, rate, skip setting turbo | clock id, rate set (Hz) |
//! | 0x00030047 GET_CLOCK_RATE_MEASURED | clock id | clock id, rate (Hz) |
//! | 0x00030046 GET_THROTTLED | sticky bits to clear | flags |
//!
//! Every answer goes through [`mailbox::tag_value`]: a tag the VideoCore did
//! not answer (QEMU 7.2 answers neither the measured rate nor the throttled
//! flags) is `None`, never a rate. SET_CLOCK_RATE's own answer is not trusted
//! as the rate in force: QEMU 7.2 leaves the request in the buffer and marks
//! it answered, which would read as "set to exactly what was asked". The rate
//! in force is what GET_CLOCK_RATE says afterwards ([`ClockQuery`]).

use crate::mailbox::{
    check_response, tag, tag_value, BuildError, Builder, Clock, ResponseError, Slot,
};

/// SET_CLOCK_RATE.
pub const TAG_SET_CLOCK_RATE: u32 = 0x0003_8002;
/// GET_CLOCK_RATE_MEASURED: what the VideoCore measures the clock at.
pub const TAG_CLOCK_RATE_MEASURED: u32 = 0x0003_0047;
/// GET_THROTTLED: under-voltage, frequency capping and throttling flags.
pub const TAG_THROTTLED: u32 = 0x0003_0046;

/// The request word of GET_THROTTLED that clears the sticky ("has occurred")
/// flags after reporting them, as Linux's `raspberrypi-hwmon` asks.
pub const THROTTLED_CLEAR_STICKY: u32 = 0xffff;

/// Words a buffer needs for any message of this module.
pub const CLOCK_MESSAGE_WORDS: usize = 48;

/// Builds the message that sets the ARM and core clocks. `skip setting
/// turbo` is 0: raising the ARM clock to its maximum then also raises the
/// voltage and the other turbo clocks the firmware ties to it, which the
/// maximum rate needs to be stable.
#[derive(Clone, Copy, Debug)]
pub struct ClockSet {
    arm: Option<Slot>,
    core: Option<Slot>,
}

/// What the VideoCore answered to [`ClockSet`]: the rate it says it set, per
/// clock (`None` when not asked or not answered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAnswer {
    pub arm_hz: Option<u32>,
    pub core_hz: Option<u32>,
}

fn set_tag(b: &mut Builder<'_>, clock: Clock, hz: Option<u32>) -> Result<Option<Slot>, BuildError> {
    hz.map(|hz| b.push(TAG_SET_CLOCK_RATE, &[clock as u32, hz, 0], 3))
        .transpose()
}

impl ClockSet {
    /// Writes a message that sets the ARM clock to `arm_hz` and the core
    /// clock to `core_hz` (each only when given); returns the slots and the
    /// message length in words.
    pub fn build(
        buf: &mut [u32],
        arm_hz: Option<u32>,
        core_hz: Option<u32>,
    ) -> Result<(Self, usize), BuildError> {
        let mut b = Builder::new(buf)?;
        let arm = set_tag(&mut b, Clock::Arm, arm_hz)?;
        let core = set_tag(&mut b, Clock::Core, core_hz)?;
        Ok((Self { arm, core }, b.finish()))
    }

    /// Reads the answers.
    pub fn parse(&self, buf: &[u32]) -> Result<SetAnswer, ResponseError> {
        check_response(buf)?;
        let rate = |slot: Option<Slot>, id: Clock| {
            let v = tag_value(buf, slot?, 8)?;
            (v[0] == id as u32).then_some(v[1])
        };
        Ok(SetAnswer {
            arm_hz: rate(self.arm, Clock::Arm),
            core_hz: rate(self.core, Clock::Core),
        })
    }
}

/// The clocks as the VideoCore reports them now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockState {
    /// GET_CLOCK_RATE of the ARM clock: the rate in force.
    pub arm_hz: Option<u32>,
    /// GET_CLOCK_RATE of the core clock (which also clocks the DMA engine).
    pub core_hz: Option<u32>,
    /// GET_CLOCK_RATE_MEASURED of the ARM clock.
    pub arm_measured_hz: Option<u32>,
    /// GET_CLOCK_RATE_MEASURED of the core clock.
    pub core_measured_hz: Option<u32>,
    /// GET_THROTTLED's flags (bits 0-3 now, 16-19 since last cleared).
    pub throttled: Option<u32>,
}

/// The message that reads [`ClockState`].
#[derive(Clone, Copy, Debug)]
pub struct ClockQuery {
    arm: Slot,
    core: Slot,
    arm_measured: Slot,
    core_measured: Slot,
    throttled: Slot,
}

impl ClockQuery {
    /// Writes the query. With `clear_sticky`, a first GET_THROTTLED asks the
    /// VideoCore to clear the sticky flags (tags are answered in order), and
    /// the second one, whose answer is kept, reads the flags afterwards: a
    /// sticky flag seen later then happened after this query, whether or not
    /// the firmware honours the clearing request (if it does not, the flag
    /// is already in this query's answer).
    pub fn build(buf: &mut [u32], clear_sticky: bool) -> Result<(Self, usize), BuildError> {
        let mut b = Builder::new(buf)?;
        let rate = |b: &mut Builder<'_>, t: u32, c: Clock| b.push(t, &[c as u32], 2);
        let arm = rate(&mut b, tag::CLOCK_RATE, Clock::Arm)?;
        let core = rate(&mut b, tag::CLOCK_RATE, Clock::Core)?;
        let arm_measured = rate(&mut b, TAG_CLOCK_RATE_MEASURED, Clock::Arm)?;
        let core_measured = rate(&mut b, TAG_CLOCK_RATE_MEASURED, Clock::Core)?;
        if clear_sticky {
            b.push(TAG_THROTTLED, &[THROTTLED_CLEAR_STICKY], 1)?;
        }
        let throttled = b.push(TAG_THROTTLED, &[0], 1)?;
        let query = Self {
            arm,
            core,
            arm_measured,
            core_measured,
            throttled,
        };
        Ok((query, b.finish()))
    }

    /// Reads the answers.
    pub fn parse(&self, buf: &[u32]) -> Result<ClockState, ResponseError> {
        check_response(buf)?;
        let rate = |slot: Slot, id: Clock| {
            let v = tag_value(buf, slot, 8)?;
            (v[0] == id as u32).then_some(v[1])
        };
        Ok(ClockState {
            arm_hz: rate(self.arm, Clock::Arm),
            core_hz: rate(self.core, Clock::Core),
            arm_measured_hz: rate(self.arm_measured, Clock::Arm),
            core_measured_hz: rate(self.core_measured, Clock::Core),
            throttled: tag_value(buf, self.throttled, 4).map(|v| v[0]),
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::mailbox::{CODE_REQUEST, CODE_SUCCESS, TAG_RESPONSE};
    use std::vec;
    use std::vec::Vec;

    /// Answers one tag: (tag, request words) to value words, or `None`.
    type Answers<'a> = &'a dyn Fn(u32, &[u32]) -> Option<Vec<u32>>;

    /// A stand-in VideoCore that walks the tags in order. `known` answers a
    /// tag and its request words with value words; other tags are marked
    /// answered with length 0, as QEMU 7.2 marks tags it does not know.
    fn answer(buf: &mut [u32], known: Answers<'_>) {
        let mut i = 2;
        while buf[i] != 0 {
            let (id, size) = (buf[i], buf[i + 1] as usize / 4);
            let request = buf[i + 3..i + 3 + size].to_vec();
            match known(id, &request) {
                Some(v) => {
                    buf[i + 3..i + 3 + v.len()].copy_from_slice(&v);
                    buf[i + 2] = TAG_RESPONSE | (v.len() * 4) as u32;
                }
                None => buf[i + 2] = TAG_RESPONSE,
            }
            i += 3 + size;
        }
        buf[1] = CODE_SUCCESS;
    }

    #[test]
    fn set_asks_for_each_clock_with_turbo_and_reads_the_rate_set() {
        let mut buf = [0u32; CLOCK_MESSAGE_WORDS];
        let (set, words) =
            ClockSet::build(&mut buf, Some(1_200_000_000), Some(400_000_000)).unwrap();
        assert_eq!(words % 4, 0);
        assert_eq!(buf[0] as usize, words * 4);
        assert_eq!(buf[1], CODE_REQUEST);
        assert_eq!(
            &buf[2..8],
            &[TAG_SET_CLOCK_RATE, 12, 0, 3, 1_200_000_000, 0]
        );
        assert_eq!(&buf[8..14], &[TAG_SET_CLOCK_RATE, 12, 0, 4, 400_000_000, 0]);
        assert_eq!(buf[14], 0, "end tag");
        // A Pi may set a clock lower than asked, and says so.
        answer(&mut buf, &|t, r| match (t, r[0]) {
            (TAG_SET_CLOCK_RATE, 3) => Some(vec![3, 1_200_000_000]),
            (TAG_SET_CLOCK_RATE, 4) => Some(vec![4, 250_000_000]),
            _ => None,
        });
        assert_eq!(
            set.parse(&buf),
            Ok(SetAnswer {
                arm_hz: Some(1_200_000_000),
                core_hz: Some(250_000_000)
            })
        );
    }

    #[test]
    fn set_only_what_is_known() {
        let mut buf = [0u32; CLOCK_MESSAGE_WORDS];
        let (set, _) = ClockSet::build(&mut buf, None, Some(400_000_000)).unwrap();
        assert_eq!(&buf[2..6], &[TAG_SET_CLOCK_RATE, 12, 0, Clock::Core as u32]);
        answer(&mut buf, &|_, r| Some(vec![r[0], r[1]]));
        let answer = set.parse(&buf).unwrap();
        assert_eq!((answer.arm_hz, answer.core_hz), (None, Some(400_000_000)));
    }

    #[test]
    fn a_qemu_like_answer_leaves_measured_rates_and_flags_unavailable() {
        let mut buf = [0u32; CLOCK_MESSAGE_WORDS];
        let (q, _) = ClockQuery::build(&mut buf, false).unwrap();
        answer(&mut buf, &|t, r| {
            (t == tag::CLOCK_RATE).then(|| vec![r[0], 700_000_000])
        });
        assert_eq!(
            q.parse(&buf).unwrap(),
            ClockState {
                arm_hz: Some(700_000_000),
                core_hz: Some(700_000_000),
                ..ClockState::default()
            }
        );
    }

    #[test]
    fn a_pi_like_answer_fills_everything() {
        let mut buf = [0u32; CLOCK_MESSAGE_WORDS];
        let (q, _) = ClockQuery::build(&mut buf, true).unwrap();
        let cleared = core::cell::Cell::new(false);
        answer(&mut buf, &|t, r| match (t, r[0]) {
            (tag::CLOCK_RATE, 3) => Some(vec![3, 1_200_000_000]),
            (tag::CLOCK_RATE, 4) => Some(vec![4, 400_000_000]),
            (TAG_CLOCK_RATE_MEASURED, 3) => Some(vec![3, 1_199_998_000]),
            (TAG_CLOCK_RATE_MEASURED, 4) => Some(vec![4, 400_000_000]),
            // Under-voltage now and since boot; the clear drops the sticky bit.
            (TAG_THROTTLED, THROTTLED_CLEAR_STICKY) => {
                cleared.set(true);
                Some(vec![0x5_0005])
            }
            (TAG_THROTTLED, 0) => Some(vec![if cleared.get() { 0x5 } else { 0x5_0005 }]),
            _ => None,
        });
        let state = q.parse(&buf).unwrap();
        assert_eq!(state.arm_hz, Some(1_200_000_000));
        assert_eq!(state.arm_measured_hz, Some(1_199_998_000));
        assert_eq!(state.core_measured_hz, Some(400_000_000));
        assert_eq!(
            state.throttled,
            Some(0x5),
            "the reading after the clear is kept"
        );
    }

    #[test]
    fn an_answer_for_another_clock_is_no_answer() {
        let mut buf = [0u32; CLOCK_MESSAGE_WORDS];
        let (q, _) = ClockQuery::build(&mut buf, false).unwrap();
        answer(&mut buf, &|t, _| {
            (t != TAG_THROTTLED).then(|| vec![Clock::Emmc as u32, 50_000_000])
        });
        let state = q.parse(&buf).unwrap();
        assert_eq!((state.arm_hz, state.core_measured_hz), (None, None));
    }

    #[test]
    fn nobody_answering_is_an_error_not_zero() {
        let mut buf = [0u32; CLOCK_MESSAGE_WORDS];
        let (q, _) = ClockQuery::build(&mut buf, true).unwrap();
        assert_eq!(q.parse(&buf), Err(ResponseError::NotAnswered));
        assert!(ClockQuery::build(&mut [0u32; 16], true).is_err());
    }
}
