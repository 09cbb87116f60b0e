//! Validation of parsed lines against buffer state, and the no_std parser over text.

use crate::idmap::IdMap;
use crate::line::{parse_line, RawEvent};
use crate::problem::{Mode, Problem, ProblemKind, Warnings};
use crate::{BufferIndex, Event, EventKind};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Live,
    Pinned,
    Dead,
}

#[derive(Clone, Copy)]
struct Slot {
    index: BufferIndex,
    state: State,
}

/// How many destroyed ids are remembered to tell "after destroy" from
/// "never created". Past this the dead ids are forgotten (the event is
/// skipped either way, only the message changes), so memory stays bounded by
/// the live buffers plus this many on logs of any length.
const DEAD_IDS_REMEMBERED: usize = 1 << 20;

/// Longest line the parser looks at in full; trace lines are about 50 bytes.
/// A longer line that holds `@@@` is a [`ProblemKind::LineTooLong`]; only its
/// first this many bytes are kept, so memory stays bounded on any input.
pub const MAX_LINE: usize = 4096;

/// Turns log lines into validated [`Event`]s, one line at a time.
///
/// Feed it every line of the log, trace line or not, so line numbers are
/// right. It keeps only the live ids (and a bounded memory of destroyed ones),
/// never the events, so a log of any length validates in bounded memory.
#[derive(Clone)]
pub struct Validator {
    mode: Mode,
    ids: IdMap<Slot>,
    dead: usize,
    dead_limit: usize,
    next_index: BufferIndex,
    line: u64,
    last_time: Option<u64>,
    warnings: Warnings,
}

impl Validator {
    /// A validator for a new log.
    pub fn new(mode: Mode) -> Self {
        Validator {
            mode,
            ids: IdMap::new(),
            dead: 0,
            dead_limit: DEAD_IDS_REMEMBERED,
            next_index: 0,
            line: 0,
            last_time: None,
            warnings: Warnings::default(),
        }
    }

    /// The mode problems are handled in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Number of the last line fed (1-based; 0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// Buffers created so far: the next create gets this index.
    pub fn buffers_created(&self) -> u32 {
        self.next_index
    }

    /// Problems warned about so far (in strict mode: only [`ProblemKind::TimeBackwards`]).
    pub fn warnings(&self) -> &Warnings {
        &self.warnings
    }

    /// Gives the warnings up when the log is done.
    pub fn into_warnings(self) -> Warnings {
        self.warnings
    }

    /// Feeds the next line (without or with its line end).
    ///
    /// `Ok(Some(event))` for a valid trace line, `Ok(None)` for a line that is
    /// not a trace line or that lenient mode skipped, `Err` for the first
    /// problem in strict mode.
    #[inline]
    pub fn feed(&mut self, line: &[u8]) -> Result<Option<Event>, Problem> {
        self.line += 1;
        match parse_line(line) {
            None => Ok(None),
            Some(Ok(raw)) => self.apply(raw, line),
            Some(Err((kind, id))) => self.problem(kind, id, line).map(|_| None),
        }
    }

    /// Feeds a line longer than [`MAX_LINE`], of which `prefix` is the start.
    pub fn feed_overlong(&mut self, prefix: &[u8]) -> Result<Option<Event>, Problem> {
        self.line += 1;
        if crate::line::parse_line(prefix).is_none() {
            return Ok(None);
        }
        self.problem(ProblemKind::LineTooLong, None, prefix)
            .map(|_| None)
    }

    /// Strict: an error. Lenient: a warning, and the caller applies or skips.
    #[cold]
    fn problem(&mut self, kind: ProblemKind, id: Option<u64>, line: &[u8]) -> Result<(), Problem> {
        if self.mode == Mode::Strict && !kind.is_warning_only() {
            return Err(Problem::new(self.line, kind, id, trim_end(line)));
        }
        self.warnings.note(self.line, kind, id, trim_end(line));
        Ok(())
    }

    #[inline]
    fn apply(&mut self, raw: RawEvent, line: &[u8]) -> Result<Option<Event>, Problem> {
        let id = raw.id;
        let slot = self.ids.get(id);
        let index = match (raw.kind, slot) {
            (
                EventKind::Create { .. },
                Some(Slot {
                    state: State::Live | State::Pinned,
                    ..
                }),
            ) => {
                return self
                    .problem(ProblemKind::CreateOfLiveId, Some(id), line)
                    .map(|_| None);
            }
            (EventKind::Create { .. }, previous) => {
                let index = self.next_index;
                let Some(next) = index.checked_add(1) else {
                    // Four billion buffers in one trace: refuse rather than wrap.
                    return Err(Problem::new(
                        self.line,
                        ProblemKind::BadId,
                        Some(id),
                        trim_end(line),
                    ));
                };
                self.next_index = next;
                if previous.is_some() {
                    self.dead -= 1;
                }
                self.ids.insert(
                    id,
                    Slot {
                        index,
                        state: State::Live,
                    },
                );
                index
            }
            (_, None) => {
                return self
                    .problem(ProblemKind::UnknownBuffer, Some(id), line)
                    .map(|_| None);
            }
            (
                _,
                Some(Slot {
                    state: State::Dead, ..
                }),
            ) => {
                return self
                    .problem(ProblemKind::AfterDestroy, Some(id), line)
                    .map(|_| None);
            }
            (
                EventKind::AddUsecnt,
                Some(Slot {
                    state: State::Pinned,
                    ..
                }),
            ) => {
                return self
                    .problem(ProblemKind::DoublePin, Some(id), line)
                    .map(|_| None);
            }
            (
                EventKind::RemoveUsecnt,
                Some(Slot {
                    state: State::Live, ..
                }),
            ) => {
                return self
                    .problem(ProblemKind::UnpinOfUnpinned, Some(id), line)
                    .map(|_| None);
            }
            (kind, Some(slot)) => {
                let new_state = match kind {
                    EventKind::AddUsecnt => State::Pinned,
                    EventKind::RemoveUsecnt => State::Live,
                    EventKind::Destroy => {
                        if slot.state == State::Pinned {
                            self.problem(ProblemKind::DestroyPinned, Some(id), line)?;
                        }
                        State::Dead
                    }
                    _ => slot.state,
                };
                if new_state != slot.state {
                    if let Some(s) = self.ids.get_mut(id) {
                        s.state = new_state;
                    }
                    if new_state == State::Dead {
                        self.dead += 1;
                        if self.dead > self.dead_limit {
                            self.ids.retain(|_, s| s.state != State::Dead);
                            self.dead = 0;
                        }
                    }
                }
                slot.index
            }
        };
        if let Some(last) = self.last_time {
            if raw.time_us < last {
                self.problem(ProblemKind::TimeBackwards, Some(id), line)?;
            }
        }
        self.last_time = Some(raw.time_us);
        Ok(Some(Event {
            time_us: raw.time_us,
            buffer: index,
            kind: raw.kind,
        }))
    }
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// Streaming parser over text already in memory (no_std): yields the
/// validated events of `text`, line by line.
///
/// In strict mode it yields the first problem as `Err` and then stops.
pub struct StrParser<'a> {
    rest: &'a [u8],
    validator: Validator,
    failed: bool,
}

impl<'a> StrParser<'a> {
    /// A parser over a whole log held in a string.
    pub fn new(text: &'a str, mode: Mode) -> Self {
        Self::from_bytes(text.as_bytes(), mode)
    }

    /// As [`StrParser::new`], for a log that need not be UTF-8.
    pub fn from_bytes(text: &'a [u8], mode: Mode) -> Self {
        StrParser {
            rest: text,
            validator: Validator::new(mode),
            failed: false,
        }
    }

    /// The validator: warnings so far, line number, buffers created.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// What the parse warned about.
    pub fn into_warnings(self) -> crate::Warnings {
        self.validator.into_warnings()
    }
}

impl Iterator for StrParser<'_> {
    type Item = Result<Event, Problem>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && !self.rest.is_empty() {
            let (line, rest) = match memchr::memchr(b'\n', self.rest) {
                Some(n) => (&self.rest[..n], &self.rest[n + 1..]),
                None => (self.rest, &self.rest[self.rest.len()..]),
            };
            self.rest = rest;
            let result = if line.len() > MAX_LINE {
                self.validator.feed_overlong(&line[..MAX_LINE])
            } else {
                self.validator.feed(line)
            };
            match result {
                Ok(Some(event)) => return Some(Ok(event)),
                Ok(None) => {}
                Err(problem) => {
                    self.failed = true;
                    return Some(Err(problem));
                }
            }
        }
        None
    }
}

impl core::iter::FusedIterator for StrParser<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn forgetting_dead_ids_keeps_live_ones_and_bounds_memory() {
        let mut v = Validator::new(Mode::Strict);
        v.dead_limit = 8;
        v.feed(b"[ 1.000000] @@@ create ffffffff 4096").unwrap();
        v.feed(b"[ 1.000000] @@@ add_usecnt ffffffff").unwrap();
        for i in 0..100u32 {
            v.feed(format!("[ 1.000000] @@@ create {i:08x} 4096").as_bytes())
                .unwrap();
            v.feed(format!("[ 1.000000] @@@ destroy {i:08x}").as_bytes())
                .unwrap();
        }
        assert!(v.ids.len() <= 1 + 9, "{} ids kept", v.ids.len());
        // The live, pinned buffer survived every purge with its index and pin.
        let err = v.feed(b"[ 1.000000] @@@ add_usecnt ffffffff").unwrap_err();
        assert_eq!(err.kind, ProblemKind::DoublePin);
        let e = v
            .feed(b"[ 1.000000] @@@ remove_usecnt ffffffff")
            .unwrap()
            .unwrap();
        assert_eq!(e.buffer, 0);
        // A recently destroyed id is still known as such; a long-gone one is not.
        assert_eq!(
            v.feed(b"[ 1.000000] @@@ use 00000063").unwrap_err().kind,
            ProblemKind::AfterDestroy
        );
        assert_eq!(
            v.feed(b"[ 1.000000] @@@ use 00000001").unwrap_err().kind,
            ProblemKind::UnknownBuffer
        );
    }
}
