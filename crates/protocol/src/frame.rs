//! The trailer of every frame the firmware sends (board to host).
//!
//! The firmware's stream is defmt frames, rzCOBS-encoded, each ending in
//! 0x00. Inside the encoding, after the defmt bytes of a frame (its format
//! index and arguments), the firmware's logger appends
//!
//! ```text
//! bytes  field
//! 4      sequence number, u32 little-endian: 0 for the first frame after boot
//! 4      CRC-32 (ISO-HDLC) of the defmt bytes and the sequence number
//! ```
//!
//! Record frames (a postcard record in `@rec {=[u8]}`) and log lines alike:
//! the host decodes no frame whose CRC fails, so line noise can neither
//! become a record with absurd values nor a log line the firmware never
//! wrote, and a gap in the sequence numbers says how many frames the line
//! lost. A sequence number of 0 after others is a new boot.
//!
//! CRC-32 rather than CRC-16: a frame can be kilobytes (a pool snapshot, a
//! batch of move timings), and the host also tries the CRC on suffixes of a
//! damaged chunk when it resynchronises after junk, so the 1 in 65536 chance
//! that random damage passes a CRC-16 would be met within one long capture;
//! CRC-32 costs the same one table lookup per byte. It is the same CRC as
//! the trace transfer's ([`crate::transfer::CRC`]).

use crc::{Crc, Digest, CRC_32_ISO_HDLC};

/// Bytes of the trailer: sequence number and CRC.
pub const TRAILER_BYTES: usize = 8;

/// The CRC of the trailer (a `static`, so a running [`Digest`] can borrow it
/// for as long as a frame is being written).
pub static FRAME_CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// The CRC of a frame as it is being written, a piece at a time.
pub struct FrameDigest {
    digest: Digest<'static, u32>,
}

impl FrameDigest {
    /// A digest for a new frame.
    pub const fn new() -> Self {
        FrameDigest {
            digest: FRAME_CRC.digest(),
        }
    }

    /// Takes more of the frame's defmt bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// The trailer that ends the frame numbered `sequence`; the digest starts
    /// over for the next frame.
    pub fn finish(&mut self, sequence: u32) -> [u8; TRAILER_BYTES] {
        let seq = sequence.to_le_bytes();
        self.digest.update(&seq);
        let crc = core::mem::replace(&mut self.digest, FRAME_CRC.digest()).finalize();
        let mut trailer = [0u8; TRAILER_BYTES];
        trailer[..4].copy_from_slice(&seq);
        trailer[4..].copy_from_slice(&crc.to_le_bytes());
        trailer
    }
}

impl Default for FrameDigest {
    fn default() -> Self {
        Self::new()
    }
}

/// The trailer of the frame `defmt_bytes` numbered `sequence` (what the
/// firmware's logger appends, in one call: for tests and host-made streams).
pub fn trailer(defmt_bytes: &[u8], sequence: u32) -> [u8; TRAILER_BYTES] {
    let mut digest = FrameDigest::new();
    digest.update(defmt_bytes);
    digest.finish(sequence)
}

/// A frame whose trailer checks: its defmt bytes and sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    pub defmt_bytes: &'a [u8],
    pub sequence: u32,
}

/// Checks the trailer at the end of `frame` (defmt bytes then trailer);
/// `None` when it is too short or the CRC does not match.
pub fn open(frame: &[u8]) -> Option<Opened<'_>> {
    let body_len = frame.len().checked_sub(TRAILER_BYTES)?;
    let (body, tail) = frame.split_at(body_len);
    let sequence = u32::from_le_bytes(tail[..4].try_into().ok()?);
    let crc = u32::from_le_bytes(tail[4..].try_into().ok()?);
    let mut digest = FRAME_CRC.digest();
    digest.update(body);
    digest.update(&tail[..4]);
    (digest.finalize() == crc).then_some(Opened {
        defmt_bytes: body,
        sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(body: &[u8], sequence: u32) -> ([u8; 64], usize) {
        let mut out = [0u8; 64];
        out[..body.len()].copy_from_slice(body);
        out[body.len()..body.len() + TRAILER_BYTES].copy_from_slice(&trailer(body, sequence));
        (out, body.len() + TRAILER_BYTES)
    }

    #[test]
    fn a_sealed_frame_opens_with_its_bytes_and_number() {
        let (buf, n) = sealed(b"\x02\x00abc", 7);
        let opened = open(&buf[..n]).expect("an intact frame opens");
        assert_eq!(opened.defmt_bytes, b"\x02\x00abc");
        assert_eq!(opened.sequence, 7);
    }

    #[test]
    fn pieces_give_the_same_trailer_as_the_whole() {
        let mut digest = FrameDigest::new();
        digest.update(b"\x02\x00");
        digest.update(b"abc");
        assert_eq!(digest.finish(9), trailer(b"\x02\x00abc", 9));
        // The digest started over: the next frame does not carry this one.
        digest.update(b"x");
        assert_eq!(digest.finish(10), trailer(b"x", 10));
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let (buf, n) = sealed(b"\x05\x00hello, pool", 3);
        for bit in 0..n * 8 {
            let mut damaged = buf;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(open(&damaged[..n]), None, "bit {bit} flipped");
        }
    }

    #[test]
    fn short_frames_do_not_open() {
        for n in 0..TRAILER_BYTES {
            assert_eq!(open(&[0u8; TRAILER_BYTES][..n]), None);
        }
        // Exactly a trailer: an empty body, valid when the CRC is right.
        let t = trailer(&[], 0);
        assert_eq!(open(&t).map(|o| o.defmt_bytes.len()), Some(0));
    }

    #[test]
    fn the_crc_is_crc32_iso_hdlc() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(FRAME_CRC.checksum(b"123456789"), 0xcbf4_3926);
    }
}
