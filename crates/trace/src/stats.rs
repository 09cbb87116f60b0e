//! Trace statistics, computed in one streaming pass.

use crate::idmap::IdMap;
use crate::{Event, EventKind, Madv};
use alloc::collections::BTreeMap;

/// Events per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// `create` events.
    pub create: u64,
    /// `destroy` events.
    pub destroy: u64,
    /// `use` events.
    pub use_: u64,
    /// `add_usecnt` (pin) events.
    pub add_usecnt: u64,
    /// `remove_usecnt` (unpin) events.
    pub remove_usecnt: u64,
    /// `madv willneed` events.
    pub madv_willneed: u64,
    /// `madv dontneed` events.
    pub madv_dontneed: u64,
}

impl KindCounts {
    /// Both madv advices together.
    pub fn madv(&self) -> u64 {
        self.madv_willneed + self.madv_dontneed
    }

    /// `(name, count)` per log operation, named as in the log (`madv` is both advices).
    pub fn by_op(&self) -> [(&'static str, u64); 6] {
        [
            ("create", self.create),
            ("destroy", self.destroy),
            ("use", self.use_),
            ("add_usecnt", self.add_usecnt),
            ("remove_usecnt", self.remove_usecnt),
            ("madv", self.madv()),
        ]
    }
}

/// What a trace contains, in numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events (valid ones only; skipped lines do not count).
    pub events: u64,
    /// Events per kind.
    pub per_kind: KindCounts,
    /// Distinct buffers, i.e. creates (an id reused after destroy counts again).
    pub buffers: u64,
    /// Creates marked unmoveable.
    pub unmoveable: u64,
    /// Largest sum of the sizes of live buffers at any point.
    pub peak_live_bytes: u64,
    /// Sum of all create sizes.
    pub total_created_bytes: u64,
    /// Buffers still live at the end.
    pub live_buffers_at_end: u64,
    /// Bytes still live at the end.
    pub live_bytes_at_end: u64,
    /// Smallest create size (0 when there are no creates, as for the others).
    pub size_min: u64,
    /// The lower median create size, so it is always a size that occurs.
    pub size_median: u64,
    /// Largest create size.
    pub size_max: u64,
    /// Number of different create sizes.
    pub distinct_sizes: u64,
    /// Time of the first event, when there are events.
    pub first_time_us: Option<u64>,
    /// Time of the last event, when there are events.
    pub last_time_us: Option<u64>,
}

impl Stats {
    /// Statistics of a whole event sequence.
    pub fn of(events: impl IntoIterator<Item = Event>) -> Stats {
        let mut b = StatsBuilder::new();
        for e in events {
            b.push(&e);
        }
        b.finish()
    }

    /// Last minus first timestamp (0 for fewer than two events, or if time went backwards overall).
    pub fn duration_us(&self) -> u64 {
        match (self.first_time_us, self.last_time_us) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        }
    }
}

/// Accumulates [`Stats`] one event at a time, in memory proportional to the
/// live buffers and the number of distinct sizes, not to the events.
#[derive(Clone)]
pub struct StatsBuilder {
    stats: Stats,
    /// Exact even for an unvalidated stream of huge sizes (a validated one
    /// stays below 2^64: at most 2^32 buffers below 2^32 bytes each), so a
    /// destroy never subtracts from a sum that saturated.
    live_bytes: u128,
    /// Size of every live buffer, by index, for live bytes on destroy.
    live: IdMap<u64>,
    sizes: BTreeMap<u64, u64>,
}

impl Default for StatsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StatsBuilder {
    /// An empty accumulator.
    pub fn new() -> Self {
        StatsBuilder {
            stats: Stats::default(),
            live_bytes: 0,
            live: IdMap::new(),
            sizes: BTreeMap::new(),
        }
    }

    /// Adds one event. Events for buffers it never saw created (which a
    /// validated stream does not have) count as events and change nothing else.
    #[inline]
    pub fn push(&mut self, event: &Event) {
        let s = &mut self.stats;
        s.events += 1;
        s.first_time_us.get_or_insert(event.time_us);
        s.last_time_us = Some(event.time_us);
        let k = &mut s.per_kind;
        match event.kind {
            EventKind::Create { size, unmoveable } => {
                k.create += 1;
                s.buffers += 1;
                s.unmoveable += unmoveable as u64;
                s.total_created_bytes = s.total_created_bytes.saturating_add(size);
                *self.sizes.entry(size).or_insert(0) += 1;
                if let Some(old) = self.live.insert(event.buffer as u64, size) {
                    // A repeated index: an unvalidated stream. Replace, don't double count.
                    self.live_bytes -= u128::from(old);
                }
                self.live_bytes += u128::from(size);
                s.peak_live_bytes = s.peak_live_bytes.max(saturate(self.live_bytes));
            }
            EventKind::Destroy => {
                k.destroy += 1;
                if let Some(size) = self.live.remove(event.buffer as u64) {
                    self.live_bytes -= u128::from(size);
                }
            }
            EventKind::Use => k.use_ += 1,
            EventKind::AddUsecnt => k.add_usecnt += 1,
            EventKind::RemoveUsecnt => k.remove_usecnt += 1,
            EventKind::Madv(Madv::WillNeed) => k.madv_willneed += 1,
            EventKind::Madv(Madv::DontNeed) => k.madv_dontneed += 1,
        }
    }

    /// The statistics so far.
    pub fn finish(&self) -> Stats {
        let mut s = self.stats.clone();
        s.live_buffers_at_end = self.live.len() as u64;
        s.live_bytes_at_end = saturate(self.live_bytes);
        s.distinct_sizes = self.sizes.len() as u64;
        s.size_min = self.sizes.keys().next().copied().unwrap_or(0);
        s.size_max = self.sizes.keys().next_back().copied().unwrap_or(0);
        let creates: u64 = self.sizes.values().fold(0, |a, &n| a.saturating_add(n));
        if creates > 0 {
            // The lower median: the size at sorted position (n - 1) / 2.
            let target = (creates - 1) / 2;
            let mut seen = 0;
            for (&size, &n) in &self.sizes {
                seen = u64::saturating_add(seen, n);
                if seen > target {
                    s.size_median = size;
                    break;
                }
            }
        }
        s
    }
}

/// A byte sum as reported: exact up to `u64::MAX`, pinned there above.
pub(crate) fn saturate(bytes: u128) -> u64 {
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(buffer: u32, size: u64) -> Event {
        Event {
            time_us: 0,
            buffer,
            kind: EventKind::Create {
                size,
                unmoveable: false,
            },
        }
    }

    fn destroy(buffer: u32) -> Event {
        Event {
            time_us: 0,
            buffer,
            kind: EventKind::Destroy,
        }
    }

    /// An unvalidated stream (a binary trace made by hand) can sum past
    /// `u64::MAX`: figures saturate, and destroys after that stay exact.
    #[test]
    fn sizes_summing_past_u64_max_saturate_and_never_underflow() {
        let s = Stats::of([
            create(0, u64::MAX),
            create(1, 1),
            destroy(0),
            create(2, 5),
            destroy(1),
        ]);
        assert_eq!(s.peak_live_bytes, u64::MAX);
        assert_eq!(s.total_created_bytes, u64::MAX);
        assert_eq!(s.live_bytes_at_end, 5);
        assert_eq!(s.live_buffers_at_end, 1);
        // A repeated index replaces the old size instead of adding to it.
        let s = Stats::of([create(0, u64::MAX), create(0, 7)]);
        assert_eq!(s.live_bytes_at_end, 7);
    }
}
