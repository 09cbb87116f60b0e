//! Pushing a compiled trace to the runner over the UART (host to board).
//!
//! The host sends frames; the board answers each with a record (`Ack`,
//! `Nak`, then `Accepted` or `Refused`; crates/records) on its usual defmt
//! stream. A frame is
//!
//! ```text
//! offset  bytes  field
//! 0       2      sync: b"PT"
//! 2       4      sequence number, u32 little-endian
//! 6       2      payload length, u16 little-endian, at most MAX_PAYLOAD
//! 8       len    payload
//! 8+len   4      CRC-32 (ISO-HDLC, the zlib/Ethernet one) of bytes 2..8+len
//! ```
//!
//! Frame 0 is the offer ([`Offer`]: the trace's length and the pool size
//! wanted); frames 1..=N carry the trace, [`MAX_PAYLOAD`] bytes each but the
//! last. The sync word lets the board find a frame after line noise; the CRC
//! covers the header too, so a corrupted length or sequence number is caught
//! like corrupted data. The host keeps up to the window the board announced
//! in flight (go-back-N): a USB serial adapter can hold a reply back for up
//! to its latency timer (16 ms on an FTDI by default), during which 921600
//! baud moves about 1.5 KiB, so waiting for each acknowledgement would cut
//! the throughput by more than half.

/// The two bytes every frame starts with.
pub const SYNC: [u8; 2] = *b"PT";
/// Bytes before the payload: sync, sequence number, length.
pub const HEADER_BYTES: usize = 8;
/// Bytes after the payload: the CRC.
pub const CRC_BYTES: usize = 4;
/// Largest payload of one frame: 1 KiB is 11 ms on the wire at 921600 baud,
/// small enough that a resend costs little, large enough that the 12 bytes
/// of framing and the acknowledgement are noise.
pub const MAX_PAYLOAD: usize = 1024;
/// Largest frame on the wire.
pub const MAX_FRAME: usize = HEADER_BYTES + MAX_PAYLOAD + CRC_BYTES;
/// Frames the host may send ahead of the last acknowledgement (the board
/// announces it in its Ready record; this is what the firmware announces).
pub const WINDOW: u16 = 8;
/// The sequence number of the offer.
pub const OFFER_SEQUENCE: u32 = 0;
/// Bytes of an encoded [`Offer`].
pub const OFFER_BYTES: usize = 12;

/// The CRC every frame carries.
pub const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// What the host proposes in frame 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Bytes of the compiled trace that follow in frames 1..=N.
    pub trace_bytes: u32,
    /// The pool size to replay with; 0: the firmware's own.
    pub pool_bytes: u64,
}

impl Offer {
    pub fn encode(&self) -> [u8; OFFER_BYTES] {
        let mut out = [0u8; OFFER_BYTES];
        out[..4].copy_from_slice(&self.trace_bytes.to_le_bytes());
        out[4..].copy_from_slice(&self.pool_bytes.to_le_bytes());
        out
    }

    pub fn decode(payload: &[u8]) -> Option<Self> {
        if payload.len() != OFFER_BYTES {
            return None;
        }
        Some(Offer {
            trace_bytes: u32::from_le_bytes(payload[..4].try_into().ok()?),
            pool_bytes: u64::from_le_bytes(payload[4..].try_into().ok()?),
        })
    }

    /// How many data frames follow the offer.
    pub fn data_frames(&self) -> u32 {
        (self.trace_bytes as usize).div_ceil(MAX_PAYLOAD) as u32
    }
}

/// Encodes one frame into `out`; returns its length. `payload` must be at
/// most [`MAX_PAYLOAD`] bytes.
pub fn encode_frame(sequence: u32, payload: &[u8], out: &mut [u8; MAX_FRAME]) -> usize {
    assert!(payload.len() <= MAX_PAYLOAD, "payload too long for a frame");
    let end = HEADER_BYTES + payload.len();
    out[..2].copy_from_slice(&SYNC);
    out[2..6].copy_from_slice(&sequence.to_le_bytes());
    out[6..8].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    out[HEADER_BYTES..end].copy_from_slice(payload);
    let crc = CRC.checksum(&out[SYNC.len()..end]);
    out[end..end + CRC_BYTES].copy_from_slice(&crc.to_le_bytes());
    end + CRC_BYTES
}

/// Why a frame was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The CRC does not match: some byte changed on the way.
    Crc,
    /// The length field is above [`MAX_PAYLOAD`] (a corrupted header).
    Length,
    /// The UART flagged a byte of the frame (overrun, framing, parity or
    /// break error): bytes were lost or damaged.
    Line,
}

impl FrameError {
    pub const fn as_str(self) -> &'static str {
        match self {
            FrameError::Crc => "CRC mismatch",
            FrameError::Length => "length above the frame maximum",
            FrameError::Line => "UART error (overrun, framing, parity or break) in the frame",
        }
    }
}

/// What [`FrameParser::push`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes needed.
    Pending,
    /// A whole frame with a good CRC: its sequence number and payload length
    /// (the payload is [`FrameParser::payload`]).
    Frame { sequence: u32, len: usize },
    /// A frame that cannot be trusted; the parser looks for the next sync.
    Bad(FrameError),
}

/// Finds frames in a byte stream, one byte at a time, in a fixed buffer
/// (the firmware runs it without allocating).
pub struct FrameParser {
    buffer: [u8; MAX_FRAME],
    filled: usize,
    /// A line error was seen in the bytes of the frame being collected.
    line_error: bool,
}

impl Default for FrameParser {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameParser {
    pub const fn new() -> Self {
        FrameParser {
            buffer: [0; MAX_FRAME],
            filled: 0,
            line_error: false,
        }
    }

    /// Forgets a partly collected frame.
    pub fn reset(&mut self) {
        self.filled = 0;
        self.line_error = false;
    }

    /// Whether part of a frame has been collected.
    pub fn in_frame(&self) -> bool {
        self.filled > 0
    }

    /// The payload of the frame [`push`](Self::push) just reported.
    pub fn payload(&self) -> &[u8] {
        let len = self.declared_len();
        &self.buffer[HEADER_BYTES..HEADER_BYTES + len]
    }

    fn declared_len(&self) -> usize {
        usize::from(u16::from_le_bytes([self.buffer[6], self.buffer[7]]))
    }

    /// Takes one byte; `line_error` says the UART flagged it.
    pub fn push(&mut self, byte: u8, line_error: bool) -> Parsed {
        if self.filled < SYNC.len() {
            // Hunting for the sync word; a flagged byte outside a frame
            // costs nothing.
            if byte == SYNC[self.filled] {
                self.buffer[self.filled] = byte;
                self.filled += 1;
                self.line_error |= line_error;
            } else {
                self.reset();
                if byte == SYNC[0] {
                    self.buffer[0] = byte;
                    self.filled = 1;
                    self.line_error = line_error;
                }
            }
            return Parsed::Pending;
        }
        self.buffer[self.filled] = byte;
        self.filled += 1;
        self.line_error |= line_error;
        if self.filled < HEADER_BYTES {
            return Parsed::Pending;
        }
        let len = self.declared_len();
        if len > MAX_PAYLOAD {
            let bad = if self.line_error {
                FrameError::Line
            } else {
                FrameError::Length
            };
            self.reset();
            return Parsed::Bad(bad);
        }
        let total = HEADER_BYTES + len + CRC_BYTES;
        if self.filled < total {
            return Parsed::Pending;
        }
        let body = &self.buffer[SYNC.len()..HEADER_BYTES + len];
        let sent = u32::from_le_bytes(
            self.buffer[HEADER_BYTES + len..total]
                .try_into()
                .expect("four bytes"),
        );
        let line_error = self.line_error;
        let good = CRC.checksum(body) == sent;
        let sequence = u32::from_le_bytes(self.buffer[2..6].try_into().expect("four bytes"));
        // The payload stays readable until the next push.
        self.filled = 0;
        self.line_error = false;
        if line_error {
            Parsed::Bad(FrameError::Line)
        } else if !good {
            Parsed::Bad(FrameError::Crc)
        } else {
            Parsed::Frame { sequence, len }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn frame(sequence: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = [0u8; MAX_FRAME];
        let len = encode_frame(sequence, payload, &mut out);
        out[..len].to_vec()
    }

    fn parse_all(parser: &mut FrameParser, bytes: &[u8]) -> Vec<(Parsed, Vec<u8>)> {
        let mut found = Vec::new();
        for &b in bytes {
            match parser.push(b, false) {
                Parsed::Pending => {}
                p @ Parsed::Frame { .. } => found.push((p, parser.payload().to_vec())),
                p => found.push((p, Vec::new())),
            }
        }
        found
    }

    #[test]
    fn frames_round_trip_after_noise() {
        let mut bytes = b"PPxP\0junk".to_vec();
        bytes.extend(frame(7, b"hello"));
        bytes.extend(frame(8, &[]));
        let mut parser = FrameParser::new();
        let found = parse_all(&mut parser, &bytes);
        assert_eq!(
            found,
            [
                (
                    Parsed::Frame {
                        sequence: 7,
                        len: 5
                    },
                    b"hello".to_vec()
                ),
                (
                    Parsed::Frame {
                        sequence: 8,
                        len: 0
                    },
                    Vec::new()
                ),
            ]
        );
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        let good = frame(3, &[0xa5; 40]);
        for byte in 2..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                let mut parser = FrameParser::new();
                let found = parse_all(&mut parser, &bad);
                assert!(
                    found
                        .iter()
                        .all(|(p, _)| !matches!(p, Parsed::Frame { .. })),
                    "byte {byte} bit {bit}: {found:?}"
                );
                // The parser recovers: a corrupted length may swallow up to
                // a frame's worth of what follows, never more.
                let next: Vec<u8> = (0..100).flat_map(|s| frame(100 + s, b"ok")).collect();
                let after = parse_all(&mut parser, &next);
                assert_eq!(
                    after.last(),
                    Some(&(
                        Parsed::Frame {
                            sequence: 199,
                            len: 2
                        },
                        b"ok".to_vec()
                    )),
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn a_line_error_spoils_the_frame() {
        let good = frame(1, b"data");
        let mut parser = FrameParser::new();
        let mut last = Parsed::Pending;
        for (i, &b) in good.iter().enumerate() {
            last = parser.push(b, i == 9);
        }
        assert_eq!(last, Parsed::Bad(FrameError::Line));
    }

    #[test]
    fn offers_round_trip() {
        let offer = Offer {
            trace_bytes: 5_000_001,
            pool_bytes: 24 << 20,
        };
        assert_eq!(Offer::decode(&offer.encode()), Some(offer));
        assert_eq!(offer.data_frames(), 4883);
        assert_eq!(Offer::decode(&[0; 11]), None);
    }
}
