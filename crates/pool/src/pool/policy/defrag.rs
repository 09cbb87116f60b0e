//! `defrag`: poolbed's Rule 1 policy (docs/design.md 4.7). Compaction
//! before eviction, and the pool kept in two packed ends: large buffers
//! toward the bottom, small ones (at most 1/1024 of the pool) toward the top,
//! so that the small buffers pinned with every job gather at the top instead
//! of sitting between large pinned buffers and splitting the free space:
//!
//! - placement: a small buffer goes to the top of the highest hole that
//!   holds it, a large one to the lowest hole (first fit);
//! - settling: when a buffer is unpinned, and when a `use` finds it resident
//!   and unpinned (a job is being built and will pin it where it is), a
//!   large buffer slides down once, as under `compact`, and a small one
//!   slides up once to the buffer above it (or the pool's end), only when the
//!   gap is at least its own size (the movers copy upward only without
//!   overlap);
//! - a page-in that does not fit purges, then compacts the one segment
//!   between pinned and unmoveable buffers that can hold the buffer, paging
//!   out from the least recently used end until some segment can;
//! - a page-in that no segment is long enough for (pinned and unmoveable
//!   buffers leave no gap that could hold it, so it must fail) still purges
//!   and pages out every evictable buffer, as `first-fit` would. Measured on
//!   the bundled traces, keeping them instead (the first version of defrag
//!   failed at once) left them resident to be pinned in the way later: more
//!   failures, not fewer.
//!
//! Everything it uses is known when it acts (sizes, pins, the LRU order):
//! no look-ahead into later events.
//!
//! Cost: a page-in that fits O(log n + log U); one that does not walks the
//! resident buffers to find the segments, O(n), and makes at most one move
//! per resident buffer (page-outs and the slides of one segment), each
//! O(log n + log U); an unpin or a resident `use` that slides O(log n + log U).

use crate::mover::Mover;
use crate::pool::{Pool, NONE};
use alloc::vec::Vec;

/// A buffer of at most `units / SMALL_FRACTION` units is small: placed and
/// settled toward the top of the pool. Measured over the sweep grid (4.7):
/// 1/1024 (56 KiB at 56 MiB) beat 1/64, 1/128, 1/256, 1/512 and 1/4096.
const SMALL_FRACTION: u64 = 1024;

impl Pool {
    /// Whether a buffer of `units` counts as small (see [`SMALL_FRACTION`]).
    fn small_for_defrag(&self, units: u32) -> bool {
        units as u64 * SMALL_FRACTION <= self.free.units() as u64
    }

    /// defrag's placement: small buffers at the top of the highest hole that
    /// holds them, large ones in the lowest (first fit).
    fn fit_defrag(&self, need: u32) -> Option<u32> {
        if self.small_for_defrag(need) {
            self.free.last_fit(need)
        } else {
            self.free.first_fit(need)
        }
    }

    /// defrag's slide of an unpinned resident buffer toward its end of the
    /// pool: a large one down once (as `compact`'s), a small one up once to
    /// the buffer above it, if the gap is at least its size.
    pub(super) fn settle_defrag<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32) {
        let b = self.bufs[i as usize];
        if !self.small_for_defrag(b.units) {
            return self.slide_down_once(mover, i);
        }
        if b.offset == NONE || b.unmoveable || b.pinned {
            return;
        }
        // The start of the buffer above (or the pool's end) is the end of
        // the hole just above, if there is one.
        let end = b.offset + b.units;
        let ceiling = end + self.free.hole_starting_at(end).unwrap_or(0);
        if ceiling - b.offset >= 2 * b.units {
            self.move_up(mover, i, ceiling - b.units);
        }
    }

    /// Segments of the pool between immovable (pinned or unmoveable)
    /// resident buffers: (start, end, movable units inside).
    fn segments(&self) -> Vec<(u32, u32, u32)> {
        let mut segs = Vec::new();
        let (mut start, mut movable) = (0u32, 0u32);
        for (o, i) in self.residents() {
            let b = &self.bufs[i as usize];
            if b.pinned || b.unmoveable {
                if o > start {
                    segs.push((start, o, movable));
                }
                start = o + b.units;
                movable = 0;
            } else {
                movable += b.units;
            }
        }
        if self.free.units() > start {
            segs.push((start, self.free.units(), movable));
        }
        segs
    }

    /// Slides every buffer of a segment (all movable) down, in address order.
    fn compact_segment<M: Mover + ?Sized>(&mut self, mover: &mut M, start: u32, end: u32) {
        let members: Vec<u32> = self.residents_in(start, end).map(|(_, i)| i).collect();
        let mut cursor = start;
        for i in members {
            let b = self.bufs[i as usize];
            if b.offset > cursor {
                self.move_down(mover, i, cursor);
            }
            cursor += b.units;
        }
    }

    /// Pages out every evictable buffer, least recently used first.
    fn page_out_all<M: Mover + ?Sized>(&mut self, mover: &mut M) {
        let mut cursor = self.mru.tail();
        while let Some((c, next)) = self.next_evictable(cursor) {
            cursor = next;
            self.page_out(mover, c);
        }
    }

    /// `defrag`'s page-in. Compaction is confined to the one segment (between
    /// immovable buffers) that will hold the buffer, and happens only once the
    /// arithmetic says that segment can: the same page-outs as compacting the
    /// whole pool every round, far fewer bytes copied.
    pub(super) fn room_defrag<M: Mover + ?Sized>(
        &mut self,
        mover: &mut M,
        need: u32,
    ) -> Option<u32> {
        if let Some(at) = self.fit_defrag(need) {
            return Some(at);
        }
        if !self.segments().iter().any(|&(s, e, _)| e - s >= need) {
            // Pinned and unmoveable buffers stay put: nothing can make room.
            // Every hole lies inside a segment, so first-fit would purge and
            // page out everything evictable before failing; so does defrag
            // (see the module notes for why).
            self.purge_all(mover);
            self.page_out_all(mover);
            return None;
        }
        if self.purge_all(mover) > 0 {
            if let Some(at) = self.fit_defrag(need) {
                return Some(at);
            }
        }
        let mut segs = self.segments();
        let fits = |&(s, e, m): &(u32, u32, u32)| e - s - m >= need;
        if let Some(&(s, e, _)) = segs.iter().find(|seg| fits(seg)) {
            self.compact_segment(mover, s, e);
            return self.fit_defrag(need);
        }
        let mut cursor = self.mru.tail();
        while let Some((c, next)) = self.next_evictable(cursor) {
            cursor = next;
            let (o, units) = (self.bufs[c as usize].offset, self.bufs[c as usize].units);
            self.page_out(mover, c);
            if let Some(at) = self.fit_defrag(need) {
                return Some(at);
            }
            let k = segs.partition_point(|seg| seg.0 <= o) - 1;
            segs[k].2 -= units;
            if fits(&segs[k]) {
                self.compact_segment(mover, segs[k].0, segs[k].1);
                return self.fit_defrag(need);
            }
        }
        None
    }
}
