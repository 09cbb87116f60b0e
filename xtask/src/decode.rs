//! Decoding the firmware's UART stream: defmt frames (rzCOBS, each ending in
//! 0x00) against the firmware ELF's defmt table.
//!
//! Frames whose format string is exactly [`RECORD_FORMAT`] carry a
//! postcard-serialized `records::Record` and become [`Decoded::Record`];
//! every other frame becomes a human log line.
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
}

impl Decoder {
    /// A decoder for the firmware `elf`.
    pub fn from_elf(elf: &[u8]) -> anyhow::Result<Self> {
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
                on_event(self.decode_chunk(chunk));
            }
        }
        self.raw = raw;
        self.raw.drain(..=last_zero);
    }

    /// Ends the stream: bytes after the last frame separator are reported.
    pub fn finish(&mut self, on_event: &mut dyn FnMut(Decoded)) {
        if !self.raw.is_empty() {
            let n = self.raw.len();
            self.raw.clear();
            on_event(Decoded::Malformed(format!(
                "{n} bytes after the last complete frame (the stream was cut off)"
            )));
        }
    }

    fn decode_chunk(&self, chunk: &[u8]) -> Decoded {
        let payload = rzcobs_decode_tolerant(chunk);
        // The whole chunk first, then ever shorter suffixes: junk in front.
        for skip in 0..payload.len().saturating_sub(1) {
            if let Some(decoded) = self.try_frame(&payload[skip..]) {
                if skip == 0 {
                    return decoded;
                }
                // Report the junk, then the frame: callers see both.
                return match decoded {
                    Decoded::Log(mut line) => {
                        line.message =
                            format!("{} [after {skip} bytes that were not defmt]", line.message);
                        Decoded::Log(line)
                    }
                    other => other,
                };
            }
        }
        Decoded::Malformed(format!(
            "skipped {} bytes that are not a defmt frame",
            chunk.len()
        ))
    }

    /// A frame if `payload` is exactly one (allowing rzCOBS's trailing zero padding).
    fn try_frame(&self, payload: &[u8]) -> Option<Decoded> {
        let (frame, consumed) = self.table.decode(payload).ok()?;
        if payload[consumed..].iter().any(|&b| b != 0) {
            return None;
        }
        Some(self.convert(&frame))
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

    fn hello(value: u32) -> Vec<u8> {
        let mut payload = vec![1, 0];
        payload.extend_from_slice(&value.to_le_bytes());
        rzcobs_encode(&payload)
    }

    fn record_frame(record: &records::Record) -> Vec<u8> {
        let bytes = record.to_bytes().unwrap();
        let mut payload = vec![2, 0];
        payload.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        payload.extend_from_slice(&bytes);
        rzcobs_encode(&payload)
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
        let out = decode_all(&[&[0], &hello(42), &rzcobs_encode(&[3, 0])]);
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
        let out = decode_all(&[&record_frame(&record), &record_frame(&big)]);
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
    fn byte_lists() {
        assert_eq!(parse_byte_list("[1, 2, 255]"), Some(vec![1, 2, 255]));
        assert_eq!(parse_byte_list("[]"), Some(vec![]));
        assert_eq!(parse_byte_list("[256]"), None);
        assert_eq!(parse_byte_list("1, 2"), None);
    }
}
