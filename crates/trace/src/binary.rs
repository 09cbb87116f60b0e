//! The compact binary trace the firmware replays, read in place.
//!
//! All integers are little-endian and read byte by byte, so the decoder works
//! on a `&'static [u8]` from `include_bytes!` at any alignment and never allocates.
//!
//! Layout (version 1):
//!
//! ```text
//! offset size
//!      0    8  magic b"PBTRACE\0"
//!      8    2  version (1)
//!     10    1  flags (0; anything else is refused)
//!     11    1  name length n (at most 64)
//!     12    4  buffer count (creates)
//!     16    8  event count
//!     24    8  peak live bytes
//!     32    8  total created bytes
//!     40    8  payload length p
//!     48    8  FNV-1a 64 checksum of bytes 0..48 and 56..56+n+p
//!     56    n  trace name, UTF-8
//!   56+n    p  events
//! ```
//!
//! Each event is a kind byte (0 create, 1 create unmoveable, 2 use,
//! 3 add_usecnt, 4 remove_usecnt, 5 madv willneed, 6 madv dontneed,
//! 7 destroy), the zigzag LEB128 difference to the previous event's time
//! (the first from 0; time may go backwards in real logs), then for a create
//! the LEB128 size (its index is implied: creates are numbered in order), and
//! for any other event the LEB128 distance back from the newest buffer
//! (`created - 1 - index`: recent buffers are the busy ones, so this is short).
//! A typical event takes 3 to 4 bytes.

use crate::{BufferIndex, Event, EventKind, Madv};
use alloc::vec::Vec;
use core::fmt;

/// First eight bytes of every binary trace.
pub const MAGIC: [u8; 8] = *b"PBTRACE\0";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
/// Longest trace name, in bytes.
pub const MAX_NAME: usize = 64;
/// Bytes before the name.
pub const HEADER_LEN: usize = 56;

const CHECKSUM_AT: usize = 48;

/// Why bytes are not a binary trace this decoder accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinaryError {
    /// The data does not start with [`MAGIC`]: not a binary trace.
    BadMagic,
    /// A binary trace of another format version.
    UnsupportedVersion { found: u16 },
    /// Flags this version does not know.
    UnsupportedFlags { found: u8 },
    /// The name length field is over [`MAX_NAME`].
    NameTooLong { len: usize },
    /// The data ends before the header says it should.
    Truncated { needed: u64, available: u64 },
    /// There are bytes after the payload (use [`BinaryTrace::parse_prefix`] for a trace inside a larger region).
    TrailingBytes { extra: u64 },
    /// The content does not match its checksum: corrupted.
    ChecksumMismatch { expected: u64, found: u64 },
    /// The name is not UTF-8.
    BadName,
    /// An event that does not decode (only possible if the checksum was forged).
    CorruptEvent { event: u64, offset: usize },
    /// The header's count disagrees with the payload's.
    CountMismatch {
        field: &'static str,
        header: u64,
        payload: u64,
    },
}

impl fmt::Display for BinaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BinaryError::BadMagic => {
                write!(f, "not a binary trace (magic is not {:?})", "PBTRACE\\0")
            }
            BinaryError::UnsupportedVersion { found } => {
                write!(f, "binary trace version {found} is not supported (this build reads version {VERSION})")
            }
            BinaryError::UnsupportedFlags { found } => {
                write!(f, "binary trace has unknown flags {found:#04x}")
            }
            BinaryError::NameTooLong { len } => {
                write!(f, "trace name of {len} bytes is longer than {MAX_NAME}")
            }
            BinaryError::Truncated { needed, available } => {
                write!(
                    f,
                    "binary trace is truncated: {needed} bytes needed, {available} present"
                )
            }
            BinaryError::TrailingBytes { extra } => {
                write!(f, "binary trace has {extra} unexpected bytes after its end")
            }
            BinaryError::ChecksumMismatch { expected, found } => {
                write!(f, "binary trace is corrupted: checksum {found:#018x}, header says {expected:#018x}")
            }
            BinaryError::BadName => f.write_str("binary trace name is not UTF-8"),
            BinaryError::CorruptEvent { event, offset } => {
                write!(
                    f,
                    "binary trace event {event} at payload offset {offset} does not decode"
                )
            }
            BinaryError::CountMismatch {
                field,
                header,
                payload,
            } => {
                write!(
                    f,
                    "binary trace header says {header} {field}, the payload has {payload}"
                )
            }
        }
    }
}

/// Why events cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The name is over [`MAX_NAME`] bytes.
    NameTooLong { len: usize },
    /// A create whose index is not the next dense index (validated streams number creates 0, 1, 2, ...).
    CreateOutOfOrder {
        event: u64,
        buffer: BufferIndex,
        expected: BufferIndex,
    },
    /// An event for a buffer index not created yet.
    UnknownBuffer { event: u64, buffer: BufferIndex },
    /// A create past the last buffer index the format can number.
    TooManyBuffers { event: u64 },
    /// A create larger than [`crate::MAX_CREATE_SIZE`] (or of 0 bytes), which the decoder refuses.
    BadSize { event: u64, size: u64 },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::NameTooLong { len } => {
                write!(f, "trace name of {len} bytes is longer than {MAX_NAME}")
            }
            EncodeError::CreateOutOfOrder {
                event,
                buffer,
                expected,
            } => {
                write!(
                    f,
                    "event {event}: create of buffer index {buffer}, expected {expected}"
                )
            }
            EncodeError::BadSize { event, size } => {
                write!(
                    f,
                    "event {event}: create of {size} bytes (sizes are 1 to {} bytes)",
                    crate::MAX_CREATE_SIZE
                )
            }
            EncodeError::TooManyBuffers { event } => {
                write!(
                    f,
                    "event {event}: more than {} buffers in one trace",
                    BufferIndex::MAX
                )
            }
            EncodeError::UnknownBuffer { event, buffer } => {
                write!(
                    f,
                    "event {event}: buffer index {buffer} was not created yet"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BinaryError {}
#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// FNV-1a, 64 bit. Each step is a bijection of the state for a given byte, so
/// any single changed byte always changes the result.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }
}

fn checksum(data: &[u8]) -> u64 {
    Fnv::new()
        .update(&data[..CHECKSUM_AT])
        .update(&data[CHECKSUM_AT + 8..])
        .0
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn get_varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    // Most fields of most events fit one or two bytes (see the layout
    // above): those without a loop, the rest by the general decoder.
    let b0 = *data.get(*pos)?;
    if b0 < 0x80 {
        *pos += 1;
        return Some(b0 as u64);
    }
    let b1 = *data.get(*pos + 1)?;
    if b1 < 0x80 {
        *pos += 2;
        return Some((b0 & 0x7f) as u64 | (b1 as u64) << 7);
    }
    get_long_varint(data, pos)
}

#[cold]
fn get_long_varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        let bits = (b & 0x7f) as u64;
        // The tenth byte may only carry the top bit of a u64.
        if shift == 63 && bits > 1 {
            return None;
        }
        v |= bits << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

const K_CREATE: u8 = 0;
const K_CREATE_UNMOVEABLE: u8 = 1;
const K_USE: u8 = 2;
const K_ADD: u8 = 3;
const K_REMOVE: u8 = 4;
const K_WILLNEED: u8 = 5;
const K_DONTNEED: u8 = 6;
const K_DESTROY: u8 = 7;

/// Encodes validated events (creates numbered 0, 1, 2, ... in order) as a
/// binary trace named `name`; the header's counts and byte figures are
/// computed from the events.
pub fn encode(events: impl IntoIterator<Item = Event>, name: &str) -> Result<Vec<u8>, EncodeError> {
    if name.len() > MAX_NAME {
        return Err(EncodeError::NameTooLong { len: name.len() });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 4096);
    out.resize(HEADER_LEN, 0);
    out.extend_from_slice(name.as_bytes());
    let payload_start = out.len();
    // What the header needs of the statistics, kept by index: the checks
    // below make indices dense, so this is cheaper than a `StatsBuilder`.
    let mut live_size: Vec<u64> = Vec::new();
    // Exact in u128: sizes of an unvalidated stream can sum past u64::MAX,
    // and a destroy must not subtract from a sum that saturated.
    let (mut live_bytes, mut peak_live_bytes, mut total_created_bytes) = (0u128, 0u64, 0u64);
    let mut event_count = 0u64;
    let mut created: BufferIndex = 0;
    let mut prev_time: u64 = 0;
    for (n, e) in events.into_iter().enumerate() {
        let n = n as u64;
        let kind = match e.kind {
            EventKind::Create {
                unmoveable: false, ..
            } => K_CREATE,
            EventKind::Create {
                unmoveable: true, ..
            } => K_CREATE_UNMOVEABLE,
            EventKind::Use => K_USE,
            EventKind::AddUsecnt => K_ADD,
            EventKind::RemoveUsecnt => K_REMOVE,
            EventKind::Madv(Madv::WillNeed) => K_WILLNEED,
            EventKind::Madv(Madv::DontNeed) => K_DONTNEED,
            EventKind::Destroy => K_DESTROY,
        };
        out.push(kind);
        put_varint(&mut out, zigzag(e.time_us.wrapping_sub(prev_time) as i64));
        prev_time = e.time_us;
        if let EventKind::Create { size, .. } = e.kind {
            if e.buffer != created {
                return Err(EncodeError::CreateOutOfOrder {
                    event: n,
                    buffer: e.buffer,
                    expected: created,
                });
            }
            if size == 0 || size > crate::MAX_CREATE_SIZE {
                return Err(EncodeError::BadSize { event: n, size });
            }
            created = created
                .checked_add(1)
                .ok_or(EncodeError::TooManyBuffers { event: n })?;
            put_varint(&mut out, size);
            live_size.push(size);
            total_created_bytes = total_created_bytes.saturating_add(size);
            live_bytes += u128::from(size);
            peak_live_bytes = peak_live_bytes.max(crate::stats::saturate(live_bytes));
        } else {
            if e.buffer >= created {
                return Err(EncodeError::UnknownBuffer {
                    event: n,
                    buffer: e.buffer,
                });
            }
            put_varint(&mut out, (created - 1 - e.buffer) as u64);
            if e.kind == EventKind::Destroy {
                // A second destroy of one buffer frees nothing more.
                live_bytes -= u128::from(core::mem::take(&mut live_size[e.buffer as usize]));
            }
        }
        event_count += 1;
    }
    let payload_len = (out.len() - payload_start) as u64;
    out[..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&VERSION.to_le_bytes());
    out[10] = 0;
    out[11] = name.len() as u8;
    out[12..16].copy_from_slice(&created.to_le_bytes());
    out[16..24].copy_from_slice(&event_count.to_le_bytes());
    out[24..32].copy_from_slice(&peak_live_bytes.to_le_bytes());
    out[32..40].copy_from_slice(&total_created_bytes.to_le_bytes());
    out[40..48].copy_from_slice(&payload_len.to_le_bytes());
    let sum = checksum(&out);
    out[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
    Ok(out)
}

fn u16_at(d: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([d[at], d[at + 1]])
}

fn u32_at(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

fn u64_at(d: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[at..at + 8]);
    u64::from_le_bytes(b)
}

/// A checked binary trace, borrowed from the bytes it was parsed from.
#[derive(Clone, Copy, Debug)]
pub struct BinaryTrace<'a> {
    name: &'a str,
    payload: &'a [u8],
    event_count: u64,
    buffer_count: u32,
    peak_live_bytes: u64,
    total_created_bytes: u64,
}

impl<'a> BinaryTrace<'a> {
    /// Checks magic, version, lengths, checksum and that every event decodes
    /// and the counts agree; `data` must be exactly one trace.
    pub fn parse(data: &'a [u8]) -> Result<Self, BinaryError> {
        let (trace, len) = Self::parse_prefix(data)?;
        if len < data.len() {
            return Err(BinaryError::TrailingBytes {
                extra: (data.len() - len) as u64,
            });
        }
        Ok(trace)
    }

    /// As [`BinaryTrace::parse`] for a trace at the start of a larger region
    /// (e.g. loaded at a fixed address); also returns the trace's length.
    pub fn parse_prefix(data: &'a [u8]) -> Result<(Self, usize), BinaryError> {
        let (trace, len) = Self::header(data, true)?;
        trace.check_events()?;
        Ok((trace, len))
    }

    /// As [`BinaryTrace::parse`], but without decoding every event first:
    /// the header and the checksum only. For bytes this crate's encoder
    /// wrote and kept (the compiled-trace cache), where the checksum alone
    /// tells a damaged copy; it reads a large trace several times faster.
    pub fn parse_checksummed(data: &'a [u8]) -> Result<Self, BinaryError> {
        let (trace, len) = Self::header(data, true)?;
        if len < data.len() {
            return Err(BinaryError::TrailingBytes {
                extra: (data.len() - len) as u64,
            });
        }
        Ok(trace)
    }

    /// The header of bytes already checked (by [`BinaryTrace::parse_checksummed`]
    /// or written by [`encode`] in this process).
    #[cfg(feature = "std")]
    pub(crate) fn parse_trusted(data: &'a [u8]) -> Result<Self, BinaryError> {
        Self::header(data, false).map(|(trace, _)| trace)
    }

    /// As [`BinaryTrace::parse_checksummed`] for bytes whose integrity the
    /// caller has checked another way (the cache's hash of them): the
    /// header, not the checksum; no bytes may follow the trace.
    #[cfg(feature = "std")]
    pub(crate) fn parse_trusted_whole(data: &'a [u8]) -> Result<Self, BinaryError> {
        let (trace, len) = Self::header(data, false)?;
        if len < data.len() {
            return Err(BinaryError::TrailingBytes {
                extra: (data.len() - len) as u64,
            });
        }
        Ok(trace)
    }

    /// Reads and checks the header (and, if asked, the checksum).
    fn header(data: &'a [u8], verify_checksum: bool) -> Result<(Self, usize), BinaryError> {
        let have = data.len().min(MAGIC.len());
        if data[..have] != MAGIC[..have] {
            return Err(BinaryError::BadMagic);
        }
        if data.len() < HEADER_LEN {
            return Err(BinaryError::Truncated {
                needed: HEADER_LEN as u64,
                available: data.len() as u64,
            });
        }
        let version = u16_at(data, 8);
        if version != VERSION {
            return Err(BinaryError::UnsupportedVersion { found: version });
        }
        if data[10] != 0 {
            return Err(BinaryError::UnsupportedFlags { found: data[10] });
        }
        let name_len = data[11] as usize;
        if name_len > MAX_NAME {
            return Err(BinaryError::NameTooLong { len: name_len });
        }
        let payload_len = u64_at(data, 40);
        let needed = (HEADER_LEN as u64 + name_len as u64).saturating_add(payload_len);
        if needed > data.len() as u64 {
            return Err(BinaryError::Truncated {
                needed,
                available: data.len() as u64,
            });
        }
        let len = needed as usize;
        let data = &data[..len];
        if verify_checksum {
            let expected = u64_at(data, CHECKSUM_AT);
            let found = checksum(data);
            if expected != found {
                return Err(BinaryError::ChecksumMismatch { expected, found });
            }
        }
        let name = core::str::from_utf8(&data[HEADER_LEN..HEADER_LEN + name_len])
            .map_err(|_| BinaryError::BadName)?;
        let trace = BinaryTrace {
            name,
            payload: &data[HEADER_LEN + name_len..],
            event_count: u64_at(data, 16),
            buffer_count: u32_at(data, 12),
            peak_live_bytes: u64_at(data, 24),
            total_created_bytes: u64_at(data, 32),
        };
        Ok((trace, len))
    }

    /// One full decoding pass, so `events()` can be an infallible iterator;
    /// the counts must match the header's.
    fn check_events(&self) -> Result<(), BinaryError> {
        let trace = self;
        let mut it = trace.raw_events();
        let mut n = 0u64;
        while it.pos < it.payload.len() {
            let offset = it.pos;
            if it.decode().is_none() {
                return Err(BinaryError::CorruptEvent { event: n, offset });
            }
            n += 1;
        }
        if n != trace.event_count {
            return Err(BinaryError::CountMismatch {
                field: "events",
                header: trace.event_count,
                payload: n,
            });
        }
        if it.created != trace.buffer_count {
            return Err(BinaryError::CountMismatch {
                field: "buffers",
                header: trace.buffer_count as u64,
                payload: it.created as u64,
            });
        }
        Ok(())
    }

    fn raw_events(&self) -> Events<'a> {
        Events {
            payload: self.payload,
            pos: 0,
            time: 0,
            created: 0,
            remaining: self.event_count,
        }
    }

    /// The events, decoded on the fly without allocating.
    pub fn events(&self) -> Events<'a> {
        self.raw_events()
    }

    /// The trace name given at compile time.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Number of events.
    pub fn event_count(&self) -> u64 {
        self.event_count
    }

    /// Number of buffers (creates); buffer indices are below this.
    pub fn buffer_count(&self) -> u32 {
        self.buffer_count
    }

    /// Largest sum of live buffer sizes at any point of the trace.
    pub fn peak_live_bytes(&self) -> u64 {
        self.peak_live_bytes
    }

    /// Sum of all create sizes.
    pub fn total_created_bytes(&self) -> u64 {
        self.total_created_bytes
    }

    /// Size of the encoded events in bytes.
    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }
}

/// Iterator over the events of a [`BinaryTrace`].
#[derive(Clone, Debug)]
pub struct Events<'a> {
    payload: &'a [u8],
    pos: usize,
    time: u64,
    created: BufferIndex,
    remaining: u64,
}

impl Events<'_> {
    #[inline]
    fn decode(&mut self) -> Option<Event> {
        let p = self.payload;
        let kind = *p.get(self.pos)?;
        self.pos += 1;
        let dt = unzigzag(get_varint(p, &mut self.pos)?);
        let time_us = self.time.wrapping_add(dt as u64);
        let (buffer, kind) = match kind {
            K_CREATE | K_CREATE_UNMOVEABLE => {
                let size = get_varint(p, &mut self.pos)?;
                // What the text parser refuses is corrupt here too.
                if size == 0 || size > crate::MAX_CREATE_SIZE {
                    return None;
                }
                let index = self.created;
                self.created = index.checked_add(1)?;
                (
                    index,
                    EventKind::Create {
                        size,
                        unmoveable: kind == K_CREATE_UNMOVEABLE,
                    },
                )
            }
            K_USE..=K_DESTROY => {
                let back = get_varint(p, &mut self.pos)?;
                let back = u32::try_from(back).ok()?;
                let index = self.created.checked_sub(1)?.checked_sub(back)?;
                let kind = match kind {
                    K_USE => EventKind::Use,
                    K_ADD => EventKind::AddUsecnt,
                    K_REMOVE => EventKind::RemoveUsecnt,
                    K_WILLNEED => EventKind::Madv(Madv::WillNeed),
                    K_DONTNEED => EventKind::Madv(Madv::DontNeed),
                    _ => EventKind::Destroy,
                };
                (index, kind)
            }
            _ => return None,
        };
        self.time = time_us;
        Some(Event {
            time_us,
            buffer,
            kind,
        })
    }
}

impl Iterator for Events<'_> {
    type Item = Event;

    #[inline]
    fn next(&mut self) -> Option<Event> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // `parse` decoded every event once already, so this cannot fail.
        self.decode()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl core::iter::FusedIterator for Events<'_> {}
