//! `defrag`: compaction before eviction. First fit; when nothing fits, purge,
//! then compact the one segment between pinned and unmoveable buffers that
//! can hold the buffer, paging out from the least recently used end until
//! some segment can. A page-in that does not fit walks the resident buffers
//! to find the segments, O(n).

use crate::mover::Mover;
use crate::pool::Pool;
use alloc::vec::Vec;

impl Pool {
    /// Segments of the pool between immovable (pinned or unmoveable)
    /// resident buffers: (start, end, movable units inside).
    fn segments(&self) -> Vec<(u32, u32, u32)> {
        let mut segs = Vec::new();
        let (mut start, mut movable) = (0u32, 0u32);
        for (&o, &i) in &self.by_offset {
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
        let members: Vec<u32> = self.by_offset.range(start..end).map(|(_, &i)| i).collect();
        let mut cursor = start;
        for i in members {
            let b = self.bufs[i as usize];
            if b.offset > cursor {
                self.move_down(mover, i, cursor);
            }
            cursor += b.units;
        }
    }

    /// `defrag`. A page-in that cannot succeed (no segment between pinned and
    /// unmoveable buffers is long enough) fails before purging or paging out
    /// anything. Compaction is confined to the one segment (between
    /// immovable buffers) that will hold the buffer, and happens only once the
    /// arithmetic says that segment can: the same page-outs as compacting the
    /// whole pool every round, far fewer bytes copied.
    pub(super) fn room_defrag<M: Mover + ?Sized>(
        &mut self,
        mover: &mut M,
        need: u32,
    ) -> Option<u32> {
        if let Some(at) = self.free.first_fit(need) {
            return Some(at);
        }
        // Pinned and unmoveable buffers stay put: if no segment between them
        // is long enough, no purge or page-out can help, so none is done.
        if !self.segments().iter().any(|&(s, e, _)| e - s >= need) {
            return None;
        }
        if self.purge_all(mover) > 0 {
            if let Some(at) = self.free.first_fit(need) {
                return Some(at);
            }
        }
        let mut segs = self.segments();
        let fits = |&(s, e, m): &(u32, u32, u32)| e - s - m >= need;
        if let Some(&(s, e, _)) = segs.iter().find(|seg| fits(seg)) {
            self.compact_segment(mover, s, e);
            return self.free.first_fit(need);
        }
        let mut cursor = self.mru.tail();
        while let Some((c, next)) = self.next_evictable(cursor) {
            cursor = next;
            let (o, units) = (self.bufs[c as usize].offset, self.bufs[c as usize].units);
            self.page_out(mover, c);
            if let Some(at) = self.free.first_fit(need) {
                return Some(at);
            }
            let k = segs.partition_point(|seg| seg.0 <= o) - 1;
            segs[k].2 -= units;
            if fits(&segs[k]) {
                self.compact_segment(mover, segs[k].0, segs[k].1);
                return self.free.first_fit(need);
            }
        }
        None
    }
}
