//! Syntax of one `@@@` line, on bytes: no allocation, no UTF-8 validation.

use crate::problem::ProblemKind;
use crate::{EventKind, Madv};

/// A syntactically valid `@@@` line, before validation against buffer state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawEvent {
    pub time_us: u64,
    pub id: u64,
    pub kind: EventKind,
}

/// A malformed line: the kind, and the id if one was read before the problem.
pub(crate) type Malformed = (ProblemKind, Option<u64>);

/// Finds `@@@`; `None` means the line is not a trace line at all.
#[inline]
fn find_marker(line: &[u8]) -> Option<usize> {
    // Probe every third byte: any `@@@` covers one of the probes; from a hit,
    // back up to the start of its run of `@` and check the run is long enough.
    let mut p = 2;
    while p < line.len() {
        if line[p] == b'@' {
            let mut s = p;
            while s > 0 && line[s - 1] == b'@' {
                s -= 1;
            }
            if s + 3 <= line.len() && line[s + 1] == b'@' && line[s + 2] == b'@' {
                return Some(s);
            }
        }
        p += 3;
    }
    None
}

/// Whitespace-separated words (space, tab, CR).
struct Words<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|b| !is_space(*b))?;
        let rest = &self.rest[start..];
        let end = rest.iter().position(|b| is_space(*b)).unwrap_or(rest.len());
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c')
}

/// `[ seconds.micro]`, the last bracket group before the marker: any prefix
/// (syslog host, `<6>` level) is allowed in front of it.
fn parse_timestamp(head: &[u8]) -> Option<u64> {
    let close = head.iter().rposition(|&b| b == b']')?;
    let open = head[..close].iter().rposition(|&b| b == b'[')?;
    let inner = &head[open + 1..close];
    let digits = &inner[inner.iter().position(|&b| b != b' ')?..];
    let dot = digits.iter().position(|&b| b == b'.')?;
    let (secs, micros) = (&digits[..dot], &digits[dot + 1..]);
    if secs.is_empty() || micros.len() != 6 {
        return None;
    }
    let secs = parse_decimal(secs)?;
    let micros = parse_decimal(micros)?;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

#[inline]
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as u64)?;
    }
    Some(v)
}

/// Hex digit values; 0xff for anything else. A table, because random hex
/// ids make a digit-or-letter branch mispredict on every other character.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

#[inline]
fn parse_id(s: &[u8]) -> Option<u64> {
    if !(8..=16).contains(&s.len()) {
        return None;
    }
    let mut v: u64 = 0;
    let mut bad = 0u8;
    for &b in s {
        let d = HEX[b as usize];
        bad |= d;
        v = (v << 4) | (d & 0xf) as u64;
    }
    // Valid digits are below 16, so one test at the end covers every character.
    (bad < 16).then_some(v)
}

/// Parses one log line. `None`: no `@@@`, not a trace line.
#[inline]
pub(crate) fn parse_line(line: &[u8]) -> Option<Result<RawEvent, Malformed>> {
    let marker = find_marker(line)?;
    Some(parse_marked(&line[..marker], &line[marker + 3..]))
}

fn parse_marked(head: &[u8], tail: &[u8]) -> Result<RawEvent, Malformed> {
    let time_us = parse_timestamp(head).ok_or((ProblemKind::BadTimestamp, None))?;
    let mut words = Words { rest: tail };
    let op = words.next().ok_or((ProblemKind::MissingField, None))?;
    // Recognise the op before the id so a typo in the op is reported as such.
    let op = match op {
        b"use" => 0,
        b"add_usecnt" => 1,
        b"remove_usecnt" => 2,
        b"create" => 3,
        b"destroy" => 4,
        b"madv" => 5,
        _ => return Err((ProblemKind::UnknownOp, None)),
    };
    let id = words.next().ok_or((ProblemKind::MissingField, None))?;
    let id = parse_id(id).ok_or((ProblemKind::BadId, None))?;
    let some_id = Some(id);
    let kind = match op {
        0 => EventKind::Use,
        1 => EventKind::AddUsecnt,
        2 => EventKind::RemoveUsecnt,
        4 => EventKind::Destroy,
        3 => {
            let size = words.next().ok_or((ProblemKind::MissingField, some_id))?;
            let size = parse_decimal(size).ok_or((ProblemKind::BadSize, some_id))?;
            if size == 0 {
                return Err((ProblemKind::ZeroSize, some_id));
            }
            if size > crate::MAX_CREATE_SIZE {
                return Err((ProblemKind::SizeTooLarge, some_id));
            }
            // The driver marks only these two unmoveable; any other word is
            // a line the parser does not understand, not a third kind of buffer.
            let unmoveable = match words.next() {
                None => false,
                Some(b"BIN" | b"FBCON") => true,
                Some(_) => return Err((ProblemKind::UnknownFlag, some_id)),
            };
            EventKind::Create { size, unmoveable }
        }
        _ => {
            let advice = words.next().ok_or((ProblemKind::MissingField, some_id))?;
            match advice {
                b"willneed" => EventKind::Madv(Madv::WillNeed),
                b"dontneed" => EventKind::Madv(Madv::DontNeed),
                _ => return Err((ProblemKind::BadMadv, some_id)),
            }
        }
    };
    if words.next().is_some() {
        return Err((ProblemKind::ExtraToken, some_id));
    }
    Ok(RawEvent { time_us, id, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> RawEvent {
        parse_line(line.as_bytes()).expect("marker").expect("valid")
    }

    fn bad(line: &str) -> ProblemKind {
        parse_line(line.as_bytes())
            .expect("marker")
            .expect_err("malformed")
            .0
    }

    #[test]
    fn marker_found_anywhere() {
        for (s, want) in [
            ("@@@", Some(0)),
            ("x@@@", Some(1)),
            ("xx@@@", Some(2)),
            ("@@@@", Some(0)),
            ("a@@b@@@", Some(4)),
            ("@@ @@", None),
            ("", None),
            ("@@", None),
        ] {
            assert_eq!(find_marker(s.as_bytes()), want, "{s:?}");
        }
    }

    #[test]
    fn valid_lines() {
        let e = ok("[    1.234567] @@@ create 8d3f2a00 33554432");
        assert_eq!(
            e,
            RawEvent {
                time_us: 1_234_567,
                id: 0x8d3f2a00,
                kind: EventKind::Create {
                    size: 33554432,
                    unmoveable: false
                }
            }
        );
        let e = ok("<6>[12345.000001] vc4: @@@ create 00000000DEADBEEF 4096 BIN\r");
        assert_eq!(e.time_us, 12_345_000_001);
        assert_eq!(e.id, 0xdeadbeef);
        assert_eq!(
            e.kind,
            EventKind::Create {
                size: 4096,
                unmoveable: true
            }
        );
        assert_eq!(
            ok("[ 0.000000] @@@ madv 12345678 dontneed").kind,
            EventKind::Madv(Madv::DontNeed)
        );
        assert_eq!(
            ok("[ 0.000000] @@@ madv 12345678 willneed").kind,
            EventKind::Madv(Madv::WillNeed)
        );
        assert_eq!(
            ok("[ 0.000000] @@@ create 12345678 4294967295 FBCON").kind,
            EventKind::Create {
                size: 4_294_967_295,
                unmoveable: true
            }
        );
        assert_eq!(ok("[ 0.000000] @@@\tuse\t12345678").kind, EventKind::Use);
        assert_eq!(
            ok("[ 0.000000] @@@ add_usecnt 12345678").kind,
            EventKind::AddUsecnt
        );
        assert_eq!(
            ok("[ 0.000000] @@@ remove_usecnt 12345678").kind,
            EventKind::RemoveUsecnt
        );
        assert_eq!(ok("[ 0.000000] @@@ destroy ffffffffffffffff").id, u64::MAX);
    }

    #[test]
    fn non_trace_lines_are_ignored() {
        assert!(parse_line(b"[    1.000000] vc4-drm soc:gpu: bound").is_none());
        assert!(parse_line(b"").is_none());
    }

    #[test]
    fn malformed_lines() {
        for (line, want) in [
            ("@@@ use 12345678", ProblemKind::BadTimestamp),
            ("[ 1.23] @@@ use 12345678", ProblemKind::BadTimestamp),
            ("[ 1.2345678] @@@ use 12345678", ProblemKind::BadTimestamp),
            ("[ x.234567] @@@ use 12345678", ProblemKind::BadTimestamp),
            ("[ 1234567] @@@ use 12345678", ProblemKind::BadTimestamp),
            (
                "[99999999999999999999.000000] @@@ use 12345678",
                ProblemKind::BadTimestamp,
            ),
            ("[ 1.000000] @@@", ProblemKind::MissingField),
            ("[ 1.000000] @@@ free 12345678", ProblemKind::UnknownOp),
            ("[ 1.000000] @@@ use", ProblemKind::MissingField),
            ("[ 1.000000] @@@ use 1234567", ProblemKind::BadId),
            ("[ 1.000000] @@@ use 12345678901234567", ProblemKind::BadId),
            ("[ 1.000000] @@@ use 1234567g", ProblemKind::BadId),
            ("[ 1.000000] @@@ create 12345678", ProblemKind::MissingField),
            (
                "[ 1.000000] @@@ create 12345678 -4096",
                ProblemKind::BadSize,
            ),
            (
                "[ 1.000000] @@@ create 12345678 0x1000",
                ProblemKind::BadSize,
            ),
            (
                "[ 1.000000] @@@ create 12345678 99999999999999999999",
                ProblemKind::BadSize,
            ),
            ("[ 1.000000] @@@ create 12345678 0", ProblemKind::ZeroSize),
            (
                "[ 1.000000] @@@ create 12345678 4294967296",
                ProblemKind::SizeTooLarge,
            ),
            (
                "[ 1.000000] @@@ create 12345678 18446744073709551615",
                ProblemKind::SizeTooLarge,
            ),
            (
                "[ 1.000000] @@@ create 12345678 4096 bin",
                ProblemKind::UnknownFlag,
            ),
            (
                "[ 1.000000] @@@ create 12345678 4096 PINNED",
                ProblemKind::UnknownFlag,
            ),
            (
                "[ 1.000000] @@@ create 12345678 4096 BIN extra",
                ProblemKind::ExtraToken,
            ),
            ("[ 1.000000] @@@ use 12345678 x", ProblemKind::ExtraToken),
            ("[ 1.000000] @@@ madv 12345678", ProblemKind::MissingField),
            ("[ 1.000000] @@@ madv 12345678 free", ProblemKind::BadMadv),
            (
                "[ 1.000000] @@@ madv 12345678 dontneed x",
                ProblemKind::ExtraToken,
            ),
        ] {
            assert_eq!(bad(line), want, "{line:?}");
        }
    }
}
