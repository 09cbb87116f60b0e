//! What can be wrong with a trace, where, and what lenient mode does about it.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// How the parser treats a problem in the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The first problem is an error naming its line.
    Strict,
    /// Problems are counted and reported as warnings; the event is skipped or
    /// applied as [`ProblemKind::lenient_action`] says. Every bundled trace
    /// replays in this mode, so it is the default.
    #[default]
    Lenient,
}

/// What lenient mode does with the event on a problematic line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The line produces no event.
    Skipped,
    /// The event is applied as logged.
    Applied,
}

/// The kinds of problem a trace can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    /// No `[ seconds.micro]` timestamp before `@@@`, or one that does not parse.
    BadTimestamp,
    /// The word after `@@@` is not one of the six operations.
    UnknownOp,
    /// The id is not 8 to 16 hex digits.
    BadId,
    /// The create size is not a decimal number of bytes that fits in 64 bits.
    BadSize,
    /// A create of zero bytes.
    ZeroSize,
    /// A create larger than [`MAX_CREATE_SIZE`]: more than a 32-bit VideoCore
    /// pool could ever hold, so no real log has it (and sums of such sizes
    /// would overflow the byte counts).
    SizeTooLarge,
    /// The op, id, size or madv advice is missing.
    MissingField,
    /// More words than the operation takes.
    ExtraToken,
    /// madv advice other than `willneed` or `dontneed`.
    BadMadv,
    /// A word after a create's size other than `BIN` or `FBCON`, the only
    /// unmoveable buffers the driver logs.
    UnknownFlag,
    /// A trace line longer than any real one (kept in part, never parsed).
    LineTooLong,
    /// An event for an id that was never created (or, on a log with more than
    /// a million destroys, one destroyed so long ago that it was forgotten).
    UnknownBuffer,
    /// An event for an id that was destroyed and not created again.
    AfterDestroy,
    /// A create of an id that is still live.
    CreateOfLiveId,
    /// `add_usecnt` of a buffer that is already pinned.
    DoublePin,
    /// `remove_usecnt` of a buffer that is not pinned.
    UnpinOfUnpinned,
    /// `destroy` of a pinned buffer (real logs do it: an exported dma-buf keeps its usecnt).
    DestroyPinned,
    /// A timestamp earlier than the previous event's. Always a warning, even
    /// in strict mode: dmesg lines from different CPUs can be slightly out of order.
    TimeBackwards,
}

impl ProblemKind {
    /// Every kind, in the order counts are kept and displayed.
    pub const ALL: [ProblemKind; 18] = [
        ProblemKind::BadTimestamp,
        ProblemKind::UnknownOp,
        ProblemKind::BadId,
        ProblemKind::BadSize,
        ProblemKind::ZeroSize,
        ProblemKind::SizeTooLarge,
        ProblemKind::MissingField,
        ProblemKind::ExtraToken,
        ProblemKind::BadMadv,
        ProblemKind::UnknownFlag,
        ProblemKind::LineTooLong,
        ProblemKind::UnknownBuffer,
        ProblemKind::AfterDestroy,
        ProblemKind::CreateOfLiveId,
        ProblemKind::DoublePin,
        ProblemKind::UnpinOfUnpinned,
        ProblemKind::DestroyPinned,
        ProblemKind::TimeBackwards,
    ];

    /// Position in [`ProblemKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Short stable name, e.g. for JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::BadTimestamp => "bad_timestamp",
            ProblemKind::UnknownOp => "unknown_op",
            ProblemKind::BadId => "bad_id",
            ProblemKind::BadSize => "bad_size",
            ProblemKind::ZeroSize => "zero_size",
            ProblemKind::SizeTooLarge => "size_too_large",
            ProblemKind::MissingField => "missing_field",
            ProblemKind::ExtraToken => "extra_token",
            ProblemKind::BadMadv => "bad_madv",
            ProblemKind::UnknownFlag => "unknown_flag",
            ProblemKind::LineTooLong => "line_too_long",
            ProblemKind::UnknownBuffer => "unknown_buffer",
            ProblemKind::AfterDestroy => "after_destroy",
            ProblemKind::CreateOfLiveId => "create_of_live_id",
            ProblemKind::DoublePin => "double_pin",
            ProblemKind::UnpinOfUnpinned => "unpin_of_unpinned",
            ProblemKind::DestroyPinned => "destroy_pinned",
            ProblemKind::TimeBackwards => "time_backwards",
        }
    }

    /// True for problems of the line's syntax rather than of its meaning.
    pub fn is_malformed(self) -> bool {
        self <= ProblemKind::LineTooLong
    }

    /// True if strict mode still only warns about this kind.
    pub fn is_warning_only(self) -> bool {
        self == ProblemKind::TimeBackwards
    }

    /// What lenient mode does with the event.
    pub fn lenient_action(self) -> Action {
        match self {
            // docs/design.md (section 4.2): destroy frees the buffer wherever it is, pinned or not.
            ProblemKind::DestroyPinned | ProblemKind::TimeBackwards => Action::Applied,
            _ => Action::Skipped,
        }
    }
}

/// The largest create size a trace may hold: the vc4 driver's sizes are
/// `size_t` on a 32-bit ARM kernel, so no VideoCore pool holds a buffer
/// larger than this. It also keeps every sum of sizes far from `u64::MAX`
/// (four billion buffers at most, each below 2^32 bytes).
pub const MAX_CREATE_SIZE: u64 = u32::MAX as u64;

/// Longest line excerpt kept in a [`Problem`], in bytes.
const MAX_TEXT: usize = 200;

/// One problem, located in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number in the log (every line counts, `@@@` or not).
    pub line: u64,
    /// What is wrong.
    pub kind: ProblemKind,
    /// The buffer id as logged, when the line had a valid one.
    pub id: Option<u64>,
    /// The offending line (lossy UTF-8, cut at 200 bytes, without the line end).
    pub text: String,
}

impl Problem {
    pub(crate) fn new(line: u64, kind: ProblemKind, id: Option<u64>, raw: &[u8]) -> Self {
        let raw = &raw[..raw.len().min(MAX_TEXT)];
        Problem {
            line,
            kind,
            id,
            text: String::from_utf8_lossy(raw).into_owned(),
        }
    }
}

struct Id(Option<u64>);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id:08x}"),
            None => f.write_str("?"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        let id = Id(self.id);
        match self.kind {
            ProblemKind::BadTimestamp => {
                f.write_str("malformed line: missing or bad `[ seconds.microseconds]` timestamp")
            }
            ProblemKind::UnknownOp => f.write_str(
                "malformed line: unknown operation (expected create, destroy, use, add_usecnt, remove_usecnt or madv)",
            ),
            ProblemKind::BadId => f.write_str("malformed line: buffer id is not 8 to 16 hex digits"),
            ProblemKind::BadSize => f.write_str("malformed line: create size is not a decimal byte count"),
            ProblemKind::ZeroSize => write!(f, "malformed line: create of buffer {id} with size 0"),
            ProblemKind::SizeTooLarge => write!(
                f,
                "malformed line: create of buffer {id} larger than {MAX_CREATE_SIZE} bytes, more than a 32-bit VideoCore pool can hold"
            ),
            ProblemKind::MissingField => f.write_str("malformed line: missing field"),
            ProblemKind::ExtraToken => f.write_str("malformed line: unexpected extra words"),
            ProblemKind::BadMadv => f.write_str("malformed line: madv advice must be `willneed` or `dontneed`"),
            ProblemKind::UnknownFlag => write!(
                f,
                "malformed line: create of buffer {id} flagged with something other than BIN or FBCON"
            ),
            ProblemKind::LineTooLong => {
                write!(f, "malformed line: trace line longer than {} bytes", crate::validate::MAX_LINE)
            }
            ProblemKind::UnknownBuffer => write!(f, "event for buffer {id} that was never created"),
            ProblemKind::AfterDestroy => write!(f, "event for buffer {id} after it was destroyed"),
            ProblemKind::CreateOfLiveId => write!(f, "create of buffer {id} that is still live"),
            ProblemKind::DoublePin => write!(f, "pin of buffer {id} that is already pinned"),
            ProblemKind::UnpinOfUnpinned => write!(f, "unpin of buffer {id} that is not pinned"),
            ProblemKind::DestroyPinned => write!(f, "destroy of buffer {id} that is still pinned"),
            ProblemKind::TimeBackwards => f.write_str("timestamp earlier than the previous event's"),
        }?;
        write!(f, ": {:?}", self.text)
    }
}

/// How many warnings keep their line and text; the rest are only counted.
pub const KEPT_WARNINGS: usize = 20;

/// Warnings from a lenient parse: a count per kind and the first few in full.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warnings {
    counts: [u64; ProblemKind::ALL.len()],
    /// The line of each kind's first problem (0: none seen).
    first_lines: [u64; ProblemKind::ALL.len()],
    first: Vec<Problem>,
}

impl Warnings {
    pub(crate) fn note(&mut self, line: u64, kind: ProblemKind, id: Option<u64>, raw: &[u8]) {
        self.counts[kind.index()] += 1;
        if self.first_lines[kind.index()] == 0 {
            self.first_lines[kind.index()] = line;
        }
        if self.first.len() < KEPT_WARNINGS {
            self.first.push(Problem::new(line, kind, id, raw));
        }
    }

    /// How many problems of `kind` were seen.
    pub fn count(&self, kind: ProblemKind) -> u64 {
        self.counts[kind.index()]
    }

    /// All problems seen.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// True if there were none.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Kinds seen at least once, with their counts, in [`ProblemKind::ALL`] order.
    pub fn counts(&self) -> impl Iterator<Item = (ProblemKind, u64)> + '_ {
        ProblemKind::ALL
            .iter()
            .map(|&k| (k, self.count(k)))
            .filter(|&(_, n)| n > 0)
    }

    /// The line of the first problem of `kind`, if there was one.
    pub fn first_line(&self, kind: ProblemKind) -> Option<u64> {
        Some(self.first_lines[kind.index()]).filter(|&l| l > 0)
    }

    /// One line for every verb that reads a trace: the count of each kind
    /// with the line of its first problem, e.g. "3 problems: 2
    /// destroy_of_unknown_id (first at line 17), 1 unknown_command (first at line 40)".
    /// Empty when there were none.
    pub fn summary(&self) -> String {
        use core::fmt::Write as _;
        let mut out = String::new();
        if self.is_empty() {
            return out;
        }
        let total = self.total();
        let _ = write!(out, "{total} problem{}:", if total == 1 { "" } else { "s" });
        for (i, (kind, n)) in self.counts().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(out, "{sep}{n} {}", kind.name());
            if let Some(line) = self.first_line(kind) {
                let _ = write!(out, " (first at line {line})");
            }
        }
        out
    }

    /// The first [`KEPT_WARNINGS`] problems, in line order.
    pub fn first(&self) -> &[Problem] {
        &self.first
    }
}

impl fmt::Display for Warnings {
    /// The kept warnings one per line, then the counts per kind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.first {
            let action = match p.kind.lenient_action() {
                Action::Skipped => "skipped",
                Action::Applied => "applied",
            };
            writeln!(f, "warning: {p} ({action})")?;
        }
        let total = self.total();
        if total > self.first.len() as u64 {
            writeln!(f, "... and {} more", total - self.first.len() as u64)?;
        }
        for (kind, n) in self.counts() {
            writeln!(f, "{:>10}  {}", n, kind.name())?;
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_each_kind_with_its_first_line_even_past_the_kept_ones() {
        let mut w = Warnings::default();
        assert_eq!(w.summary(), "");
        let [a, b] = [ProblemKind::ALL[0], ProblemKind::ALL[1]];
        for line in 1..=(KEPT_WARNINGS as u64 + 5) {
            w.note(line * 10, a, None, b"x");
        }
        // Past the kept warnings: its line is known all the same.
        w.note(9_999, b, None, b"y");
        assert_eq!(w.first().len(), KEPT_WARNINGS);
        assert_eq!(w.first_line(b), Some(9_999));
        assert_eq!(
            w.summary(),
            format!(
                "{} problems: {} {} (first at line 10), 1 {} (first at line 9999)",
                KEPT_WARNINGS + 6,
                KEPT_WARNINGS + 5,
                a.name(),
                b.name()
            )
        );
    }
}
