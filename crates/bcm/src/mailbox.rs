//! VideoCore mailbox property interface: building a property message and
//! reading the answers back, without touching hardware.
//!
//! A property message is a buffer of little-endian 32-bit words:
//! `[total size in bytes, request/response code, tag..., end tag 0, padding]`.
//! Each tag is `[tag id, value buffer size in bytes, request/response code,
//! value words...]`. The VideoCore sets the overall code to 0x8000_0000 on
//! success and, for each tag it understood, sets bit 31 of the tag's code with
//! the response length in bits 30..0. An unknown tag is left untouched while
//! the overall code still says success (QEMU does this for board model and
//! serial), so every tag is checked on its own: a tag without an answer is
//! `None` ("unavailable"), never zero.

/// Mailbox channel of the ARM-to-VideoCore property interface.
pub const CHANNEL_PROPERTY: u8 = 8;
/// Overall code of a request.
pub const CODE_REQUEST: u32 = 0;
/// Overall code of a successful response.
pub const CODE_SUCCESS: u32 = 0x8000_0000;
/// Overall code of a response to a message the VideoCore could not parse.
pub const CODE_PARSE_ERROR: u32 = 0x8000_0001;
/// Bit 31 of a tag's code: the VideoCore answered this tag.
pub const TAG_RESPONSE: u32 = 1 << 31;

/// The word written to the mailbox for a message at bus address `buffer` on
/// `channel`: the buffer's address in the high 28 bits, the channel in the
/// low 4. `None` when the buffer is not 16-byte aligned (its low bits would
/// change the channel) or the channel does not fit in 4 bits.
pub const fn mailbox_word(buffer: crate::addr::BusAddr, channel: u8) -> Option<u32> {
    if buffer.0 & 0xF != 0 || channel > 0xF {
        return None;
    }
    Some(buffer.0 | channel as u32)
}

/// Tag identifiers (the ones this firmware asks for).
pub mod tag {
    /// Firmware revision: response u32.
    pub const FIRMWARE_REVISION: u32 = 0x0000_0001;
    /// Board model: response u32. QEMU does not answer it.
    pub const BOARD_MODEL: u32 = 0x0001_0001;
    /// Board revision: response u32 (0xa02082 for a Pi 3 B, also under QEMU).
    pub const BOARD_REVISION: u32 = 0x0001_0002;
    /// Board serial: response u64. QEMU does not answer it.
    pub const BOARD_SERIAL: u32 = 0x0001_0004;
    /// ARM memory: response base, size.
    pub const ARM_MEMORY: u32 = 0x0001_0005;
    /// VideoCore memory: response base, size.
    pub const VC_MEMORY: u32 = 0x0001_0006;
    /// Clock rate: request clock id; response clock id, rate in Hz.
    pub const CLOCK_RATE: u32 = 0x0003_0002;
    /// Maximum clock rate: request clock id; response clock id, rate in Hz.
    pub const MAX_CLOCK_RATE: u32 = 0x0003_0004;
    /// Temperature: request sensor id (0); response id, millidegrees Celsius.
    pub const TEMPERATURE: u32 = 0x0003_0006;
    /// DMA channels usable by the ARM: response bit mask.
    pub const DMA_CHANNELS: u32 = 0x0006_0001;
}

/// Clock identifiers of the clock-rate tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Clock {
    Emmc = 1,
    Uart = 2,
    Arm = 3,
    Core = 4,
}

/// Why a message could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The buffer has no room for another tag and the end tag.
    BufferFull,
}

/// Why a response as a whole is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The overall code is still the request code: nobody answered.
    NotAnswered,
    /// The VideoCore could not parse the message.
    ParseError,
    /// An overall code that is neither success nor parse error.
    UnknownCode(u32),
}

impl ResponseError {
    /// A human description.
    pub fn describe(&self) -> &'static str {
        match self {
            ResponseError::NotAnswered => "the VideoCore did not answer the message",
            ResponseError::ParseError => {
                "the VideoCore could not parse the message (code 0x80000001)"
            }
            ResponseError::UnknownCode(_) => "the VideoCore answered with an unknown response code",
        }
    }
}

/// Where one tag sits in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Word index of the tag id.
    offset: usize,
    tag: u32,
    /// Size of the value buffer in words.
    value_words: usize,
}

/// Builds a property message into a word buffer.
pub struct Builder<'a> {
    buf: &'a mut [u32],
    next: usize,
}

impl<'a> Builder<'a> {
    /// Starts a message in `buf` (which must hold at least the header and end tag).
    pub fn new(buf: &'a mut [u32]) -> Result<Self, BuildError> {
        if buf.len() < 3 {
            return Err(BuildError::BufferFull);
        }
        buf.fill(0);
        buf[1] = CODE_REQUEST;
        Ok(Self { buf, next: 2 })
    }

    /// Adds a tag whose value buffer holds `value_words` words (the larger of
    /// request and response), the first ones set to `request`.
    pub fn push(
        &mut self,
        tag: u32,
        request: &[u32],
        value_words: usize,
    ) -> Result<Slot, BuildError> {
        let value_words = value_words.max(request.len());
        // Room for this tag and the end tag.
        if self.next + 3 + value_words + 1 > self.buf.len() {
            return Err(BuildError::BufferFull);
        }
        let offset = self.next;
        self.buf[offset] = tag;
        self.buf[offset + 1] = (value_words * 4) as u32;
        self.buf[offset + 2] = 0;
        let values = &mut self.buf[offset + 3..offset + 3 + value_words];
        values.fill(0);
        values[..request.len()].copy_from_slice(request);
        self.next = offset + 3 + value_words;
        Ok(Slot {
            offset,
            tag,
            value_words,
        })
    }

    /// Writes the end tag and the total size; returns the message length in
    /// words, padded to a multiple of four (16 bytes).
    pub fn finish(self) -> usize {
        self.buf[self.next] = 0;
        let words = (self.next + 1).div_ceil(4) * 4;
        let words = words.min(self.buf.len());
        self.buf[self.next + 1..words].fill(0);
        self.buf[0] = (words * 4) as u32;
        words
    }
}

/// Checks the overall response code.
pub fn check_response(buf: &[u32]) -> Result<(), ResponseError> {
    match buf.get(1).copied() {
        Some(CODE_SUCCESS) => Ok(()),
        Some(CODE_PARSE_ERROR) => Err(ResponseError::ParseError),
        Some(CODE_REQUEST) | None => Err(ResponseError::NotAnswered),
        Some(code) => Err(ResponseError::UnknownCode(code)),
    }
}

/// The answer to one tag: its value words when the VideoCore set the response
/// bit with a length of at least `min_bytes` that fits the value buffer;
/// otherwise `None`.
pub fn tag_value(buf: &[u32], slot: Slot, min_bytes: usize) -> Option<&[u32]> {
    let header = buf.get(slot.offset..slot.offset + 3)?;
    if header[0] != slot.tag {
        return None;
    }
    let code = header[2];
    if code & TAG_RESPONSE == 0 {
        return None;
    }
    let len = (code & !TAG_RESPONSE) as usize;
    if len < min_bytes || len > slot.value_words * 4 {
        return None;
    }
    buf.get(slot.offset + 3..slot.offset + 3 + len.div_ceil(4))
}

/// What the board query learns; every field the VideoCore did not answer is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoardInfo {
    pub firmware_revision: Option<u32>,
    pub board_model: Option<u32>,
    pub board_revision: Option<u32>,
    pub board_serial: Option<u64>,
    /// (base, size)
    pub arm_memory: Option<(u32, u32)>,
    /// (base, size)
    pub vc_memory: Option<(u32, u32)>,
    pub arm_clock_hz: Option<u32>,
    pub core_clock_hz: Option<u32>,
    pub uart_clock_hz: Option<u32>,
    pub arm_max_clock_hz: Option<u32>,
    pub core_max_clock_hz: Option<u32>,
    /// Millidegrees Celsius.
    pub temperature_mc: Option<u32>,
    pub dma_channel_mask: Option<u32>,
}

/// The slots of the one message that asks for everything in [`BoardInfo`].
#[derive(Clone, Copy, Debug)]
pub struct BoardQuery {
    firmware_revision: Slot,
    board_model: Slot,
    board_revision: Slot,
    board_serial: Slot,
    arm_memory: Slot,
    vc_memory: Slot,
    arm_clock: Slot,
    core_clock: Slot,
    uart_clock: Slot,
    arm_max_clock: Slot,
    core_max_clock: Slot,
    temperature: Slot,
    dma_channels: Slot,
}

/// Words a buffer needs for [`BoardQuery`].
pub const BOARD_QUERY_WORDS: usize = 72;

impl BoardQuery {
    /// Writes the query into `buf` (at least [`BOARD_QUERY_WORDS`] words);
    /// returns the slots and the message length in words.
    pub fn build(buf: &mut [u32]) -> Result<(Self, usize), BuildError> {
        let mut b = Builder::new(buf)?;
        let query = Self {
            firmware_revision: b.push(tag::FIRMWARE_REVISION, &[], 1)?,
            board_model: b.push(tag::BOARD_MODEL, &[], 1)?,
            board_revision: b.push(tag::BOARD_REVISION, &[], 1)?,
            board_serial: b.push(tag::BOARD_SERIAL, &[], 2)?,
            arm_memory: b.push(tag::ARM_MEMORY, &[], 2)?,
            vc_memory: b.push(tag::VC_MEMORY, &[], 2)?,
            arm_clock: b.push(tag::CLOCK_RATE, &[Clock::Arm as u32], 2)?,
            core_clock: b.push(tag::CLOCK_RATE, &[Clock::Core as u32], 2)?,
            uart_clock: b.push(tag::CLOCK_RATE, &[Clock::Uart as u32], 2)?,
            arm_max_clock: b.push(tag::MAX_CLOCK_RATE, &[Clock::Arm as u32], 2)?,
            core_max_clock: b.push(tag::MAX_CLOCK_RATE, &[Clock::Core as u32], 2)?,
            temperature: b.push(tag::TEMPERATURE, &[0], 2)?,
            dma_channels: b.push(tag::DMA_CHANNELS, &[], 1)?,
        };
        let words = b.finish();
        Ok((query, words))
    }

    /// Reads the answers out of the response in `buf`.
    pub fn parse(&self, buf: &[u32]) -> Result<BoardInfo, ResponseError> {
        check_response(buf)?;
        let word = |slot| tag_value(buf, slot, 4).map(|v| v[0]);
        let pair = |slot| tag_value(buf, slot, 8).map(|v| (v[0], v[1]));
        // A clock or sensor answer echoes the id asked for; a different id is no answer.
        let keyed = |slot, id: u32| pair(slot).filter(|&(k, _)| k == id).map(|(_, v)| v);
        Ok(BoardInfo {
            firmware_revision: word(self.firmware_revision),
            board_model: word(self.board_model),
            board_revision: word(self.board_revision),
            board_serial: pair(self.board_serial)
                .map(|(lo, hi)| (u64::from(hi) << 32) | u64::from(lo)),
            arm_memory: pair(self.arm_memory),
            vc_memory: pair(self.vc_memory),
            arm_clock_hz: keyed(self.arm_clock, Clock::Arm as u32),
            core_clock_hz: keyed(self.core_clock, Clock::Core as u32),
            uart_clock_hz: keyed(self.uart_clock, Clock::Uart as u32),
            arm_max_clock_hz: keyed(self.arm_max_clock, Clock::Arm as u32),
            core_max_clock_hz: keyed(self.core_max_clock, Clock::Core as u32),
            temperature_mc: keyed(self.temperature, 0),
            dma_channel_mask: word(self.dma_channels),
        })
    }
}

/// First lite DMA channel; 7..=14 are lite (half bandwidth, 65532 bytes per block).
pub const DMA_LITE_FIRST: u8 = 7;
/// Last lite DMA channel.
pub const DMA_LITE_LAST: u8 = 14;

/// Whether a DMA channel is a lite channel.
pub const fn dma_channel_is_lite(channel: u8) -> bool {
    channel >= DMA_LITE_FIRST && channel <= DMA_LITE_LAST
}

/// The DMA channel to use from the mask the VideoCore reports: the lowest
/// channel in the mask except 0, 2, 3 (used by the VideoCore firmware and
/// special on a Pi) and 5 (reported SD card corruption on a Pi 3), preferring
/// a full channel over a lite one. Channel 15 counts (it is a full channel);
/// bits above 15 are ignored.
pub fn choose_dma_channel(mask: u32) -> Option<u8> {
    let usable = |c: u8| mask & (1 << c) != 0 && !matches!(c, 0 | 2 | 3 | 5);
    let channels = || (0u8..16).filter(|&c| usable(c));
    channels()
        .find(|&c| !dma_channel_is_lite(c))
        .or_else(|| channels().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in VideoCore: answers the tags it knows, as QEMU's does.
    fn answer(buf: &mut [u32], known: &[(u32, &[u32])]) {
        assert_eq!(
            buf[0] as usize % 16,
            0,
            "size must be a multiple of 16 bytes"
        );
        let mut i = 2;
        while buf[i] != 0 {
            let id = buf[i];
            let size = buf[i + 1] as usize;
            if let Some((_, value)) = known.iter().find(|(t, v)| {
                *t == id
                    && (v.len() < 2
                        || *t == tag::ARM_MEMORY
                        || *t == tag::VC_MEMORY
                        || *t == tag::BOARD_SERIAL
                        || v[0] == buf[i + 3])
            }) {
                buf[i + 3..i + 3 + value.len()].copy_from_slice(value);
                buf[i + 2] = TAG_RESPONSE | (value.len() * 4) as u32;
            }
            i += 3 + size / 4;
        }
        buf[1] = CODE_SUCCESS;
    }

    const QEMU: &[(u32, &[u32])] = &[
        (tag::FIRMWARE_REVISION, &[548_597_418]),
        (tag::BOARD_REVISION, &[0xa02082]),
        (tag::ARM_MEMORY, &[0, 0x3c00_0000]),
        (tag::VC_MEMORY, &[0x3c00_0000, 0x0400_0000]),
        (tag::CLOCK_RATE, &[Clock::Arm as u32, 1_200_000_000]),
        (tag::CLOCK_RATE, &[Clock::Core as u32, 350_000_000]),
        (tag::CLOCK_RATE, &[Clock::Uart as u32, 3_000_000]),
        (tag::MAX_CLOCK_RATE, &[Clock::Arm as u32, 1_200_000_000]),
        (tag::MAX_CLOCK_RATE, &[Clock::Core as u32, 400_000_000]),
        (tag::TEMPERATURE, &[0, 25_000]),
        (tag::DMA_CHANNELS, &[0x3c]),
    ];

    #[test]
    fn query_layout_is_aligned_and_terminated() {
        let mut buf = [0xdead_beefu32; BOARD_QUERY_WORDS];
        let (_, words) = BoardQuery::build(&mut buf).unwrap();
        assert_eq!(words % 4, 0);
        assert_eq!(buf[0] as usize, words * 4);
        assert_eq!(buf[1], CODE_REQUEST);
        // First tag: firmware revision, 4-byte value buffer, request code 0.
        assert_eq!(&buf[2..6], &[tag::FIRMWARE_REVISION, 4, 0, 0]);
        // The clock tags carry their clock id.
        let arm = buf
            .windows(4)
            .position(|w| w == [tag::CLOCK_RATE, 8, 0, Clock::Arm as u32]);
        assert!(arm.is_some());
        // The end tag comes right after the last tag (DMA channels).
        let dma = buf.iter().position(|&w| w == tag::DMA_CHANNELS).unwrap();
        assert_eq!(buf[dma + 4], 0);
        assert!(buf[dma + 5..words].iter().all(|&w| w == 0));
    }

    #[test]
    fn qemu_like_answers_leave_unanswered_tags_none() {
        let mut buf = [0u32; BOARD_QUERY_WORDS];
        let (q, _) = BoardQuery::build(&mut buf).unwrap();
        answer(&mut buf, QEMU);
        let info = q.parse(&buf).unwrap();
        assert_eq!(info.board_revision, Some(0xa02082));
        assert_eq!(info.board_model, None);
        assert_eq!(info.board_serial, None);
        assert_eq!(info.arm_memory, Some((0, 0x3c00_0000)));
        assert_eq!(info.vc_memory, Some((0x3c00_0000, 0x0400_0000)));
        assert_eq!(info.arm_clock_hz, Some(1_200_000_000));
        assert_eq!(info.core_clock_hz, Some(350_000_000));
        assert_eq!(info.uart_clock_hz, Some(3_000_000));
        assert_eq!(info.arm_max_clock_hz, Some(1_200_000_000));
        assert_eq!(info.core_max_clock_hz, Some(400_000_000));
        assert_eq!(info.temperature_mc, Some(25_000));
        assert_eq!(info.dma_channel_mask, Some(0x3c));
        assert_eq!(info.firmware_revision, Some(548_597_418));
    }

    #[test]
    fn serial_is_low_word_first() {
        let mut buf = [0u32; BOARD_QUERY_WORDS];
        let (q, _) = BoardQuery::build(&mut buf).unwrap();
        answer(
            &mut buf,
            &[
                (tag::BOARD_SERIAL, &[0x89ab_cdef, 0x0123_4567]),
                (tag::BOARD_MODEL, &[0]),
            ],
        );
        let info = q.parse(&buf).unwrap();
        assert_eq!(info.board_serial, Some(0x0123_4567_89ab_cdef));
        // A real zero answer is Some(0), not "unavailable".
        assert_eq!(info.board_model, Some(0));
        assert_eq!(info.board_revision, None);
    }

    #[test]
    fn short_or_overlong_answers_are_unavailable() {
        let mut buf = [0u32; 16];
        let mut b = Builder::new(&mut buf).unwrap();
        let mem = b.push(tag::ARM_MEMORY, &[], 2).unwrap();
        let rev = b.push(tag::BOARD_REVISION, &[], 1).unwrap();
        b.finish();
        buf[1] = CODE_SUCCESS;
        buf[mem.offset + 2] = TAG_RESPONSE | 4; // only 4 of 8 bytes
        buf[rev.offset + 2] = TAG_RESPONSE | 8; // longer than its buffer
        assert_eq!(tag_value(&buf, mem, 8), None);
        assert_eq!(tag_value(&buf, rev, 4), None);
        buf[rev.offset + 2] = TAG_RESPONSE | 4;
        buf[rev.offset + 3] = 7;
        assert_eq!(tag_value(&buf, rev, 4), Some(&[7u32][..]));
    }

    #[test]
    fn clock_answer_for_another_clock_is_rejected() {
        let mut buf = [0u32; BOARD_QUERY_WORDS];
        let (q, _) = BoardQuery::build(&mut buf).unwrap();
        answer(&mut buf, QEMU);
        let uart = buf
            .windows(4)
            .position(|w| w[0] == tag::CLOCK_RATE && w[3] == Clock::Uart as u32)
            .unwrap();
        buf[uart + 3] = Clock::Emmc as u32;
        assert_eq!(q.parse(&buf).unwrap().uart_clock_hz, None);
    }

    #[test]
    fn overall_codes() {
        let mut buf = [0u32; BOARD_QUERY_WORDS];
        let (q, _) = BoardQuery::build(&mut buf).unwrap();
        assert_eq!(q.parse(&buf), Err(ResponseError::NotAnswered));
        buf[1] = CODE_PARSE_ERROR;
        assert_eq!(q.parse(&buf), Err(ResponseError::ParseError));
        buf[1] = 0x1234;
        assert_eq!(q.parse(&buf), Err(ResponseError::UnknownCode(0x1234)));
    }

    #[test]
    fn builder_refuses_overflow() {
        let mut buf = [0u32; 8];
        let mut b = Builder::new(&mut buf).unwrap();
        assert!(b.push(tag::BOARD_REVISION, &[], 1).is_ok());
        assert_eq!(b.push(tag::ARM_MEMORY, &[], 2), Err(BuildError::BufferFull));
        assert_eq!(
            BoardQuery::build(&mut [0u32; 20]).err(),
            Some(BuildError::BufferFull)
        );
    }

    #[test]
    fn dma_channel_choice() {
        assert_eq!(choose_dma_channel(0x3c), Some(4), "QEMU's mask");
        assert_eq!(choose_dma_channel(0x7f35), Some(4), "a usual Pi 3 mask");
        assert_eq!(choose_dma_channel(0x2d), None, "only 0, 2, 3, 5");
        assert_eq!(choose_dma_channel(0x0180), Some(7), "lite only");
        assert_eq!(choose_dma_channel(0x8180), Some(15), "full 15 beats lite");
        assert_eq!(choose_dma_channel(0), None);
        assert!(dma_channel_is_lite(7) && dma_channel_is_lite(14));
        assert!(!dma_channel_is_lite(6) && !dma_channel_is_lite(15));
    }

    #[test]
    fn mailbox_words_carry_the_channel_in_the_low_bits() {
        use crate::addr::BusAddr;
        assert_eq!(
            mailbox_word(BusAddr(0xC020_0000), CHANNEL_PROPERTY),
            Some(0xC020_0008)
        );
        assert_eq!(mailbox_word(BusAddr(0xC020_0004), CHANNEL_PROPERTY), None);
        assert_eq!(mailbox_word(BusAddr(0xC020_0000), 16), None);
    }
}
