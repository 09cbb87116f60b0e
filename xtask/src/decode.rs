//! Decoding the firmware's UART stream: defmt frames (rzCOBS, each ending in
//! 0x00) against the firmware ELF's defmt table.
//!
//! Every frame ends in the trailer of `protocol::frame` (a sequence number
//! and a CRC-32); a frame whose CRC fails is never decoded, and gaps in the
//! numbers are reported as `records::Record::Lost`, which the collector
//! counts. Frames whose format string is exactly [`RECORD_FORMAT`] carry a
//! postcard-serialized `records::Record` and become [`Decoded::Record`];
//! every other intact frame becomes a human log line, so line noise cannot
//! pass for either.
//!
//! Robustness: the framing is done here rather than by defmt-decoder's stream
//! decoder, so that bytes which are not defmt (boot-firmware chatter, line
//! noise) cost at most themselves. rzCOBS decodes a frame from its end
//! backwards, so junk glued in front of a frame decodes to junk bytes in
//! front of the frame's payload; the decoder then looks for the suffix that
//! is a complete frame, and reports the skipped bytes.

use defmt_decoder::{Frame, Locations, Table};
use defmt_parser::{Fragment, Type};
use std::fmt;

/// The format string of a record frame; must match `send_record` in the firmware.
pub const RECORD_FORMAT: &str = "@rec {=[u8]}";

/// A decoded log line.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// "ERROR", "WARN", "INFO", "DEBUG", "TRACE", or None for println frames.
    pub level: Option<String>,
    pub message: String,
    /// `file:line` where the firmware logged it.
    pub location: Option<String>,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.level {
            Some(level) => write!(f, "{level:<5} {}", self.message)?,
            None => write!(f, "{}", self.message)?,
        }
        if let Some(location) = &self.location {
            write!(f, "  ({location})")?;
        }
        Ok(())
    }
}

/// One thing found in the stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// A human log line.
    Log(LogLine),
    /// A measurement record (boxed: the platform block makes it much
    /// larger than a log line).
    Record(Box<records::Record>),
    /// Bytes that were not a frame (the text says what was skipped).
    Malformed(String),
}

/// The stream decoder. Feed it bytes as they arrive.
pub struct Decoder {
    table: Table,
    locations: Option<Locations>,
    raw: Vec<u8>,
    sequence: Sequence,
}

/// What the decoder knows of the frames' sequence numbers.
#[derive(Default)]
struct Sequence {
    /// The number the next intact frame should carry (None before the first).
    expected: Option<u32>,
    /// Chunks that looked like frames but failed since the last intact frame:
    /// counted as lost at the end of a boot, when no later number says how
    /// many frames really went missing.
    damaged_since_intact: u64,
    /// The boot's Finished record arrived: what follows belongs to no report.
    finished: bool,
}

impl Sequence {
    /// A chunk that is no intact frame: it counts as lost when it falls
    /// inside a boot's stream (after its first frame, before its Finished).
    fn count_damaged(&mut self) {
        if self.expected.is_some() && !self.finished {
            self.damaged_since_intact += 1;
        }
    }

    /// The boot's stream ends (the stream ends, or a new boot begins): the
    /// damaged chunks since its last intact frame are its lost frames.
    fn end_of_boot(&mut self, on_event: &mut dyn FnMut(Decoded)) {
        let damaged = std::mem::take(&mut self.damaged_since_intact);
        if damaged > 0 {
            on_event(Decoded::Record(Box::new(records::Record::Lost {
                frames: damaged,
            })));
        }
    }

    /// Checks an intact frame's number against the one expected; `false`
    /// when the frame is out of sequence and must not be decoded. Gaps are
    /// reported as lost frames.
    fn take(&mut self, sequence: u32, on_event: &mut dyn FnMut(Decoded)) -> bool {
        let expected = self.expected;
        match expected {
            // The first frame heard, or the one expected.
            None => {}
            Some(e) if e == sequence => {}
            // A new boot numbers its frames from 0 again.
            Some(_) if sequence == 0 => {
                self.end_of_boot(on_event);
                self.finished = false;
            }
            Some(e) if sequence > e => {
                let missing = u64::from(sequence - e);
                on_event(Decoded::Malformed(format!(
                    "{missing} frame(s) lost before frame {sequence} (damaged or missing on the line)"
                )));
                on_event(Decoded::Record(Box::new(records::Record::Lost {
                    frames: missing,
                })));
            }
            Some(e) => {
                on_event(Decoded::Malformed(format!(
                    "frame {sequence} arrived after frame {}: out of sequence, counted as lost and not decoded",
                    e.wrapping_sub(1)
                )));
                on_event(Decoded::Record(Box::new(records::Record::Lost {
                    frames: 1,
                })));
                return false;
            }
        }
        self.damaged_since_intact = 0;
        self.expected = Some(sequence.wrapping_add(1));
        true
    }
}

impl Decoder {
    /// A decoder for the firmware `elf`, or for its defmt table saved as
    /// JSON (what xtask/tests/data keeps beside a capture, so a test can
    /// decode it without the ELF it came from).
    pub fn from_elf(elf: &[u8]) -> anyhow::Result<Self> {
        if elf.first() == Some(&b'{') {
            let table: Table = serde_json::from_slice(elf)
                .map_err(|e| anyhow::anyhow!("not an ELF, and not a defmt table in JSON: {e}"))?;
            return Ok(Self::new(table, None));
        }
        let table = Table::parse(elf)?
            .ok_or_else(|| anyhow::anyhow!("the firmware ELF has no .defmt section"))?;
        // Locations are a convenience: a stripped ELF still decodes.
        let locations = table.get_locations(elf).ok().filter(|l| !l.is_empty());
        Ok(Self::new(table, locations))
    }

    /// A decoder for a table (tests build one without an ELF).
    pub fn new(table: Table, locations: Option<Locations>) -> Self {
        Self {
            table,
            locations,
            raw: Vec::new(),
            sequence: Sequence::default(),
        }
    }

    /// Takes `bytes`; reports every complete frame to `on_event`, in order.
    pub fn feed(&mut self, bytes: &[u8], on_event: &mut dyn FnMut(Decoded)) {
        self.raw.extend_from_slice(bytes);
        // Frames end at 0x00. Decode every complete one in place, then drop
        // the consumed prefix once: a read holding thousands of frames must
        // not shift the buffer once per frame.
        let Some(last_zero) = self.raw.iter().rposition(|&b| b == 0) else {
            return;
        };
        let raw = std::mem::take(&mut self.raw);
        for chunk in raw[..last_zero].split(|&b| b == 0) {
            if !chunk.is_empty() {
                self.decode_chunk(chunk, on_event);
            }
        }
        self.raw = raw;
        self.raw.drain(..=last_zero);
    }

    /// Ends the stream: bytes after the last frame separator are reported,
    /// and frames damaged after the last intact one are counted as lost.
    pub fn finish(&mut self, on_event: &mut dyn FnMut(Decoded)) {
        if !self.raw.is_empty() {
            let n = self.raw.len();
            self.raw.clear();
            on_event(Decoded::Malformed(format!(
                "{n} bytes after the last complete frame (the stream was cut off)"
            )));
            self.sequence.count_damaged();
        }
        self.sequence.end_of_boot(on_event);
    }

    fn decode_chunk(&mut self, chunk: &[u8], on_event: &mut dyn FnMut(Decoded)) {
        let payload = rzcobs_decode_tolerant(chunk);
        // The whole chunk first, then ever shorter suffixes: junk in front.
        let found = (0..payload.len().saturating_sub(1))
            .find_map(|skip| try_frame(&self.table, &payload[skip..]).map(|f| (skip, f)));
        let Some((skip, (sequence, frame))) = found else {
            on_event(Decoded::Malformed(self.why_no_frame(&payload, chunk.len())));
            self.sequence.count_damaged();
            return;
        };
        if !self.sequence.take(sequence, on_event) {
            return;
        }
        let decoded = self.convert(&frame);
        match &decoded {
            Decoded::Record(record) if matches!(**record, records::Record::Finished { .. }) => {
                self.sequence.finished = true;
            }
            // An intact frame of the record format that is no record: the
            // record is lost.
            Decoded::Malformed(_) => on_event(Decoded::Record(Box::new(records::Record::Lost {
                frames: 1,
            }))),
            _ => {}
        }
        on_event(match decoded {
            Decoded::Log(mut line) if skip > 0 => {
                line.message = format!("{} [after {skip} bytes that were not defmt]", line.message);
                Decoded::Log(line)
            }
            other => other,
        });
    }

    /// What a chunk that holds no intact frame was: a frame of a firmware
    /// without the trailer (an older protocol) is named as such.
    fn why_no_frame(&self, payload: &[u8], chunk_len: usize) -> String {
        if let Ok((frame, consumed)) = self.table.decode(payload) {
            if payload[consumed..].iter().all(|&b| b == 0) {
                if let Some(protocol) = is_record_format(&frame)
                    .then(|| record_bytes(&frame))
                    .flatten()
                    .and_then(|bytes| records::Record::from_bytes(&bytes).ok())
                    .and_then(|r| match r {
                        records::Record::Hello { protocol, .. } => Some(protocol),
                        _ => None,
                    })
                {
                    return format!(
                        "a boot banner of record protocol {protocol}, whose frames carry no sequence number or CRC; this host reads protocol {}: rebuild the firmware (cargo xtask build) and capture again",
                        records::PROTOCOL_VERSION
                    );
                }
                return format!(
                    "a frame of {chunk_len} bytes without the sequence number and CRC of record protocol {} (a firmware older than this host?); not decoded",
                    records::PROTOCOL_VERSION
                );
            }
        }
        format!(
            "skipped {chunk_len} bytes that are not an intact frame (line noise, or a frame damaged on the line)"
        )
    }

    fn convert(&self, frame: &Frame<'_>) -> Decoded {
        if is_record_format(frame) {
            return match record_bytes(frame) {
                Some(bytes) => match records::Record::from_bytes(&bytes) {
                    Ok(record) => Decoded::Record(Box::new(record)),
                    Err(e) => Decoded::Malformed(format!(
                        "a record frame of {} bytes does not decode as a record ({e}); are host and firmware built from the same tree?",
                        bytes.len()
                    )),
                },
                None => Decoded::Malformed("a record frame without its bytes".into()),
            };
        }
        let location = self
            .locations
            .as_ref()
            .and_then(|locs| locs.get(&frame.index()))
            .map(|loc| {
                let file = loc.file.display().to_string();
                // Paths inside the workspace are shown relative to it.
                let root = crate::firmware::workspace_root().display().to_string();
                let file = file
                    .strip_prefix(&format!("{root}/"))
                    .map(str::to_string)
                    .unwrap_or(file);
                format!("{file}:{}", loc.line)
            });
        Decoded::Log(LogLine {
            level: frame.level().map(|l| l.as_str().to_uppercase()),
            message: frame.display_message().to_string(),
            location,
        })
    }
}

/// `payload` as one intact frame: defmt bytes that decode exactly, then
/// the trailer of `protocol::frame` with a matching CRC, then at most
/// rzCOBS's zero padding. Its sequence number and the frame.
fn try_frame<'t>(table: &'t Table, payload: &[u8]) -> Option<(u32, Frame<'t>)> {
    // rzCOBS pads the last group of 7 with zeros; the trailer ends
    // before them. Each possible end is tried (the CRC may end in a zero).
    let padding = payload.iter().rev().take_while(|&&b| b == 0).count().min(6);
    (0..=padding).find_map(|pad| {
        let framed = &payload[..payload.len() - pad];
        let body_len = framed.len().checked_sub(protocol::frame::TRAILER_BYTES)?;
        // The defmt decode first: it rejects nearly every wrong start in
        // a few bytes, so the CRC runs only on real candidates.
        let (frame, consumed) = table.decode(&framed[..body_len]).ok()?;
        if consumed != body_len {
            return None;
        }
        let opened = protocol::frame::open(framed)?;
        Some((opened.sequence, frame))
    })
}

fn is_record_format(frame: &Frame<'_>) -> bool {
    let fragments = frame.fragments();
    matches!(
        fragments.as_slice(),
        [Fragment::Literal(lit), Fragment::Parameter(p)]
            if Some(lit.as_ref()) == RECORD_FORMAT.strip_suffix("{=[u8]}") && p.ty == Type::U8Slice && p.hint.is_none()
    )
}

/// The bytes of a record frame's `{=[u8]}` argument, from its display form `[1, 2, 3]`
/// (defmt-decoder keeps decoded arguments private).
fn record_bytes(frame: &Frame<'_>) -> Option<Vec<u8>> {
    let shown = frame.display_fragments().nth(1)?;
    parse_byte_list(&shown)
}

fn parse_byte_list(text: &str) -> Option<Vec<u8>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|b| b.trim().parse::<u8>().ok())
        .collect()
}

/// rzCOBS decoding (defmt's variant, decoded from the end backwards) that
/// keeps what decoded before an error: the bytes nearest the end, which hold
/// the last frame, survive junk in front of them.
fn rzcobs_decode_tolerant(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 7);
    let mut it = data.iter().rev().copied();
    'groups: while let Some(x) = it.next() {
        let mark = out.len();
        match x {
            0 => break,
            0x01..=0x7f => {
                for i in 0..7 {
                    if x & (1 << (6 - i)) == 0 {
                        match it.next() {
                            Some(b) => out.push(b),
                            None => {
                                out.truncate(mark);
                                break 'groups;
                            }
                        }
                    } else {
                        out.push(0);
                    }
                }
            }
            0x80..=0xfe => {
                out.push(0);
                for _ in 0..(x & 0x7f) + 7 {
                    match it.next() {
                        Some(b) => out.push(b),
                        None => {
                            out.truncate(mark);
                            break 'groups;
                        }
                    }
                }
            }
            0xff => {
                for _ in 0..134 {
                    match it.next() {
                        Some(b) => out.push(b),
                        None => {
                            out.truncate(mark);
                            break 'groups;
                        }
                    }
                }
            }
        }
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rzCOBS encoder with the firmware's framing (trailing 0x00), written from
    /// the format's definition: groups of 7 bytes with a bitmap of zeros, runs
    /// of 7+ non-zero bytes as a 0x80|n group.
    fn rzcobs_encode(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut run, mut zeros) = (0u8, 0u8);
        for &byte in data {
            if run < 7 {
                if byte == 0 {
                    zeros |= 1 << run;
                } else {
                    out.push(byte);
                }
                run += 1;
                if run == 7 && zeros != 0 {
                    out.push(zeros);
                    run = 0;
                    zeros = 0;
                }
            } else if byte == 0 {
                out.push((run - 7) | 0x80);
                run = 0;
                zeros = 0;
            } else {
                out.push(byte);
                run += 1;
                if run == 134 {
                    out.push(0xff);
                    run = 0;
                    zeros = 0;
                }
            }
        }
        match run {
            0 => {}
            1..=6 => out.push((zeros | (0xff << run)) & 0x7f),
            _ => out.push((run - 7) | 0x80),
        }
        out.push(0);
        out
    }

    fn table() -> Table {
        serde_json::from_value(serde_json::json!({
            "timestamp": null,
            "entries": {
                "1": { "string": { "tag": "Info", "string": "hello {=u32}" }, "raw_symbol": "a" },
                "2": { "string": { "tag": "Info", "string": RECORD_FORMAT }, "raw_symbol": "b" },
                "3": { "string": { "tag": "Error", "string": "bye" }, "raw_symbol": "c" },
            },
            "bitflags": {},
            "encoding": "Rzcobs",
        }))
        .expect("a defmt table in JSON")
    }

    /// A frame as the firmware's logger sends it: defmt bytes, trailer, rzCOBS.
    fn sealed(defmt_bytes: &[u8], sequence: u32) -> Vec<u8> {
        let mut payload = defmt_bytes.to_vec();
        payload.extend_from_slice(&protocol::frame::trailer(defmt_bytes, sequence));
        rzcobs_encode(&payload)
    }

    fn hello_at(value: u32, sequence: u32) -> Vec<u8> {
        let mut payload = vec![1, 0];
        payload.extend_from_slice(&value.to_le_bytes());
        sealed(&payload, sequence)
    }

    /// `hello {value}`, numbered `value` (tests send 1, 2, 3 in order).
    fn hello(value: u32) -> Vec<u8> {
        hello_at(value, value)
    }

    fn record_defmt(record: &records::Record) -> Vec<u8> {
        let bytes = record.to_bytes().unwrap();
        let mut payload = vec![2, 0];
        payload.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        payload.extend_from_slice(&bytes);
        payload
    }

    fn record_frame(record: &records::Record, sequence: u32) -> Vec<u8> {
        sealed(&record_defmt(record), sequence)
    }

    fn lost(out: &[Decoded]) -> u64 {
        out.iter()
            .map(|d| match d {
                Decoded::Record(r) => match **r {
                    records::Record::Lost { frames } => frames,
                    _ => 0,
                },
                _ => 0,
            })
            .sum()
    }

    fn decode_all(chunks: &[&[u8]]) -> Vec<Decoded> {
        let mut decoder = Decoder::new(table(), None);
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut |d| out.push(d));
        }
        decoder.finish(&mut |d| out.push(d));
        out
    }

    fn message(d: &Decoded) -> &str {
        match d {
            Decoded::Log(line) => &line.message,
            other => panic!("expected a log line, got {other:?}"),
        }
    }

    #[test]
    fn encoder_matches_known_vectors() {
        assert_eq!(rzcobs_encode(&[]), [0x00]);
        assert_eq!(rzcobs_encode(&[0x01]), [0x01, 0x7e, 0x00]);
        assert_eq!(
            rzcobs_encode(&[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]),
            [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x81, 0x00]
        );
    }

    #[test]
    fn log_lines_and_levels() {
        let out = decode_all(&[&[0], &hello_at(42, 0), &sealed(&[3, 0], 1)]);
        assert_eq!(out.len(), 2);
        assert_eq!(message(&out[0]), "hello 42");
        match &out[1] {
            Decoded::Log(line) => {
                assert_eq!(line.level.as_deref(), Some("ERROR"));
                assert_eq!(line.to_string(), "ERROR bye");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn records_are_decoded_not_printed() {
        let record = records::Record::Check {
            name: "el1".into(),
            passed: true,
            detail: "EL1".into(),
        };
        // A long record exercises the 0x80.. and 0xff groups.
        let big = records::Record::Hello {
            protocol: 1,
            firmware: "x".repeat(300),
        };
        let out = decode_all(&[&record_frame(&record, 0), &record_frame(&big, 1)]);
        assert_eq!(
            out,
            vec![
                Decoded::Record(Box::new(record)),
                Decoded::Record(Box::new(big))
            ]
        );
    }

    #[test]
    fn frames_split_across_feeds() {
        let frame = hello(0x0102_0304);
        let (a, b) = frame.split_at(3);
        let out = decode_all(&[a, b]);
        assert_eq!(out.len(), 1);
        assert_eq!(message(&out[0]), format!("hello {}", 0x0102_0304u32));
    }

    #[test]
    fn junk_between_frames_loses_no_frame() {
        let junk = b"U-Boot 2024 junk\r\n";
        let out = decode_all(&[&hello(1), junk, &hello(2), &hello(3)]);
        let lines: Vec<&str> = out
            .iter()
            .filter_map(|d| match d {
                Decoded::Log(l) => Some(l.message.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(lines.len(), 3, "{out:?}");
        assert_eq!(lines[0], "hello 1");
        assert!(lines[1].starts_with("hello 2"), "{}", lines[1]);
        assert!(
            lines[1].contains("not defmt"),
            "the skipped junk is reported: {}",
            lines[1]
        );
        assert_eq!(lines[2], "hello 3");
    }

    #[test]
    fn junk_with_its_own_zero_is_reported_and_skipped() {
        let out = decode_all(&[&hello(1), b"\xde\xad\xbe\xef\x00", &hello(2)]);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(matches!(&out[1], Decoded::Malformed(text) if text.contains("4 bytes")));
        assert_eq!(message(&out[2]), "hello 2");
    }

    #[test]
    fn cut_off_stream_is_reported() {
        let frame = hello(5);
        let out = decode_all(&[&frame[..frame.len() - 2]]);
        assert!(matches!(out.as_slice(), [Decoded::Malformed(text)] if text.contains("cut off")));
    }

    #[test]
    fn a_damaged_record_is_lost_not_decoded() {
        let sample = records::Record::Progress {
            run: 0,
            events_done: 1234,
        };
        let good = record_frame(&sample, 1);
        // Every single bit flip of the encoded frame (but its terminator).
        for bit in 0..(good.len() - 1) * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let out = decode_all(&[&hello(0), &bad, &hello(2)]);
            assert!(
                !out.iter().any(|d| matches!(d, Decoded::Record(r) if **r != records::Record::Lost { frames: 1 })),
                "bit {bit}: a damaged record decoded: {out:?}"
            );
            assert_eq!(lost(&out), 1, "bit {bit}: {out:?}");
        }
    }

    #[test]
    fn a_gap_in_the_numbers_is_counted_as_lost() {
        let out = decode_all(&[&hello(1), &hello(5), &hello(6)]);
        assert_eq!(lost(&out), 3, "{out:?}");
        assert!(out.iter().any(
            |d| matches!(d, Decoded::Malformed(t) if t.contains("3 frame(s) lost before frame 5"))
        ));
        // A frame older than the last one is out of sequence: not decoded.
        let out = decode_all(&[&hello(1), &hello(2), &hello(1)]);
        assert_eq!(lost(&out), 1);
        assert_eq!(
            out.iter().filter(|d| matches!(d, Decoded::Log(_))).count(),
            2
        );
    }

    #[test]
    fn a_new_boot_restarts_the_numbers_without_a_loss() {
        let out = decode_all(&[&hello(1), &hello(2), &hello_at(9, 0), &hello(1)]);
        assert_eq!(lost(&out), 0, "{out:?}");
        assert_eq!(
            out.iter().filter(|d| matches!(d, Decoded::Log(_))).count(),
            4
        );
    }

    #[test]
    fn damage_after_the_last_intact_frame_is_lost_unless_the_boot_had_finished() {
        let mut cut = hello(2);
        cut[0] ^= 0x40;
        let out = decode_all(&[&hello(1), &cut]);
        assert_eq!(lost(&out), 1, "{out:?}");
        let finished = record_frame(&records::Record::Finished { exit_code: 0 }, 2);
        let out = decode_all(&[&hello(1), &finished, b"noise after the end\x00"]);
        assert_eq!(lost(&out), 0, "{out:?}");
    }

    #[test]
    fn noise_between_frames_is_never_a_log_line() {
        // Bytes that are a valid defmt frame of the table ("bye", index 3)
        // without a trailer: before the CRC, noise like this printed a line.
        let out = decode_all(&[&hello(1), &rzcobs_encode(&[3, 0]), &hello(2)]);
        assert_eq!(
            out.iter().filter(|d| matches!(d, Decoded::Log(_))).count(),
            2,
            "{out:?}"
        );
        assert!(out.iter().any(|d| matches!(d, Decoded::Malformed(t) if t.contains("without the sequence number and CRC"))));
    }

    #[test]
    fn an_old_firmware_s_banner_is_named_with_both_versions() {
        let old = records::Record::Hello {
            protocol: 3,
            firmware: "old".into(),
        };
        // Protocol 3's framing: the defmt bytes alone.
        let out = decode_all(&[&rzcobs_encode(&record_defmt(&old))]);
        assert!(
            matches!(out.as_slice(), [Decoded::Malformed(t)] if t.contains("record protocol 3") && t.contains("this host reads protocol 6")),
            "{out:?}"
        );
    }

    #[test]
    fn byte_lists() {
        assert_eq!(parse_byte_list("[1, 2, 255]"), Some(vec![1, 2, 255]));
        assert_eq!(parse_byte_list("[]"), Some(vec![]));
        assert_eq!(parse_byte_list("[256]"), None);
        assert_eq!(parse_byte_list("1, 2"), None);
    }
}

/// Properties of the decoder on a real capture (xtask/tests/data): whatever
/// is done to the bytes, nothing panics, nothing damaged decodes (every
/// record and log line that comes out is one of the intact capture's), and
/// what was lost is counted.
#[cfg(test)]
mod capture_properties {
    use super::*;
    use proptest::prelude::*;
    use records::{Record, Streams};

    const CAPTURE: &[u8] = include_bytes!("../tests/data/qemu-vc4-sample.uart");
    const TABLE: &str = include_str!("../tests/data/qemu-vc4-sample.defmt.json");

    struct Decoding {
        records: Vec<Record>,
        lines: Vec<String>,
        lost: u64,
        streams: Vec<records::Collector>,
    }

    /// Decodes `bytes` fed in pieces of `piece` bytes, into the streams a
    /// capture file gives (the path `listen FILE` takes).
    fn decode(bytes: &[u8], piece: usize) -> Decoding {
        let table: Table = serde_json::from_str(TABLE).unwrap();
        let mut decoder = Decoder::new(table, None);
        let mut out = Decoding {
            records: Vec::new(),
            lines: Vec::new(),
            lost: 0,
            streams: Vec::new(),
        };
        let mut streams = Streams::default();
        let mut on_event = |d: Decoded| match d {
            Decoded::Record(r) => {
                if let Record::Lost { frames } = *r {
                    out.lost += frames;
                } else {
                    out.records.push((*r).clone());
                }
                let _ = streams.push(*r);
            }
            Decoded::Log(l) => out.lines.push(l.message),
            Decoded::Malformed(_) => {}
        };
        for chunk in bytes.chunks(piece.max(1)) {
            decoder.feed(chunk, &mut on_event);
        }
        decoder.finish(&mut on_event);
        out.streams = streams.into_all();
        out
    }

    fn intact() -> &'static Decoding {
        static INTACT: std::sync::OnceLock<Decoding> = std::sync::OnceLock::new();
        INTACT.get_or_init(|| decode(CAPTURE, 4096))
    }

    /// Every record and line decoded from damaged bytes is one the intact
    /// capture holds (the CRC let nothing else through), each report builds
    /// (range-checked), and its charts draw without a panic.
    fn check_sound(d: &Decoding) {
        let whole = intact();
        for r in &d.records {
            assert!(
                whole.records.contains(r),
                "a record not in the capture: {r:?}"
            );
        }
        for line in &d.lines {
            let line = line.split(" [after ").next().unwrap();
            assert!(
                whole.lines.iter().any(|l| l == line),
                "a line not in the capture: {line}"
            );
        }
        for c in &d.streams {
            if let Ok(report) = c.report() {
                assert_eq!(report.incomplete, c.is_incomplete());
                report::charts::all(&report, Some(c)).expect("charts of a checked stream");
            }
        }
    }

    #[test]
    fn the_intact_capture_decodes_whole() {
        let d = intact();
        assert_eq!(d.lost, 0);
        assert_eq!(d.streams.len(), 1);
        let report = d.streams[0].report().unwrap();
        assert_eq!(report.runs.len(), 8);
        assert!(!report.incomplete);
        assert_eq!(d.streams[0].exit_code, Some(0));
        // Fed a byte at a time, the same.
        let bytewise = decode(CAPTURE, 1);
        assert_eq!(bytewise.records, d.records);
        assert_eq!(bytewise.lines, d.lines);
    }

    #[test]
    fn truncation_at_every_offset_keeps_a_prefix_and_counts_the_cut() {
        let whole = intact();
        for cut in 0..CAPTURE.len() {
            let d = decode(&CAPTURE[..cut], 4096);
            // A prefix of the capture's records, in order.
            assert!(d.records.len() <= whole.records.len(), "cut at {cut}");
            assert_eq!(
                d.records[..],
                whole.records[..d.records.len()],
                "cut at {cut}"
            );
            // A cut inside a frame after the first: that frame is lost.
            let mid_frame = cut > 0 && CAPTURE[cut - 1] != 0;
            let after_first = !d.records.is_empty() || !d.lines.is_empty();
            let before_end = d.streams.iter().all(|c| c.exit_code.is_none());
            if mid_frame && after_first && before_end {
                assert!(d.lost >= 1, "cut at {cut}: the cut frame is not counted");
            }
            if cut % 61 == 0 {
                check_sound(&d);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_decode_to_nothing_and_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            piece in 1usize..600,
        ) {
            let d = decode(&bytes, piece);
            // No intact frame can come out of random bytes (2^-32 a try).
            prop_assert!(d.records.is_empty(), "{:?}", d.records);
            prop_assert!(d.lines.is_empty(), "{:?}", d.lines);
        }

        #[test]
        fn bit_flips_lose_frames_but_never_decode_damage(
            flips in proptest::collection::vec((0usize..CAPTURE.len(), 0u8..8), 1..8),
            piece in 1usize..5000,
        ) {
            let mut bytes = CAPTURE.to_vec();
            for &(at, bit) in &flips {
                bytes[at] ^= 1 << bit;
            }
            let d = decode(&bytes, piece);
            check_sound(&d);
            let whole = intact();
            prop_assert!(d.lost >= 1 || (d.records == whole.records && d.lines == whole.lines));
        }

        #[test]
        fn inserted_garbage_is_never_a_line_or_a_record(
            at in 0usize..CAPTURE.len(),
            garbage in proptest::collection::vec(any::<u8>(), 1..200),
            piece in 1usize..5000,
        ) {
            let mut bytes = CAPTURE.to_vec();
            bytes.splice(at..at, garbage);
            let d = decode(&bytes, piece);
            check_sound(&d);
        }
    }
}
