//! `drm-mm`: the smallest hole that fits (best fit). Without one, purge, then
//! scan the LRU order as Linux's drm_mm eviction scan does: add candidates one
//! by one until evicting them would leave a run long enough, and only then
//! evict the candidates under the lowest window of that run (`hit_start`). The scan keeps O(log k) per
//! candidate for k candidates.

use crate::mover::Mover;
use crate::pool::Pool;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

impl Pool {
    pub(super) fn room_drm_mm<M: Mover + ?Sized>(
        &mut self,
        mover: &mut M,
        need: u32,
    ) -> Option<u32> {
        if let Some(at) = self.free.best_fit(need) {
            return Some(at);
        }
        if self.purge_all(mover) > 0 {
            if let Some(at) = self.free.best_fit(need) {
                return Some(at);
            }
        }
        // The scan: add LRU candidates one by one, keeping the maximal runs
        // that candidates and the holes next to them would form if evicted.
        // Nothing moves until some run fits.
        let mut runs: BTreeMap<u32, u32> = BTreeMap::new();
        let mut candidates: BTreeMap<u32, u32> = BTreeMap::new();
        let mut cursor = self.mru.tail();
        while let Some((c, next)) = self.next_evictable(cursor) {
            cursor = next;
            let (o, units) = (self.bufs[c as usize].offset, self.bufs[c as usize].units);
            candidates.insert(o, c);
            let (mut start, mut end) = (o, o + units);
            match runs.range(..o).next_back().map(|(&s, &e)| (s, e)) {
                Some((s, e)) if e == o => {
                    runs.remove(&s);
                    start = s;
                }
                _ => {
                    if let Some((h, _)) = self.free.hole_ending_at(o) {
                        start = h;
                    }
                }
            }
            if let Some(e) = runs.remove(&end) {
                end = e;
            } else if let Some(l) = self.free.hole_starting_at(end) {
                end += l;
            }
            runs.insert(start, end);
            if end - start >= need {
                // As Linux's `drm_mm_scan_add_block` in best-fit mode: the
                // lowest window of the hole found (`hit_start`). Evicting
                // under the cheaper of the lowest and highest windows was
                // measured over the sweep grid and dropped (docs/design.md 4.6).
                let p = start;
                let victims: Vec<u32> = candidates
                    .range(start..p + need)
                    .filter(|&(&co, &ci)| co + self.bufs[ci as usize].units > p)
                    .map(|(_, &ci)| ci)
                    .collect();
                for v in victims {
                    self.page_out(mover, v);
                }
                debug_assert!(self.free.is_free(p, need));
                return Some(p);
            }
        }
        None
    }
}
