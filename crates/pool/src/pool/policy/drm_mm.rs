//! `drm-mm`: Linux's `drm_mm` as vc4 drives it (the reference: bpeel/cma-pool-log's
//! test-drm-mm with its `buf_madv()` fixed, docs/design.md 4.6). Best fit:
//! the smallest hole that fits, the most recently made among equals
//! (`FreeIndex::best_fit`, as `best_hole`). Without one, purge walking the
//! MRU list from its head (`userspace_cache_purge`), then scan the LRU order
//! as the eviction scan does: add candidates one by one until evicting them
//! would leave a run long enough, and only then evict the candidates under
//! the lowest window of that run (`hit_start`), newest candidate first (the
//! order the eviction list is walked in). The orders matter because they
//! decide which hole is newest. The scan keeps O(log k) per candidate for k
//! candidates; the purge walks the MRU list, O(n).

use crate::mover::Mover;
use crate::pool::Pool;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

impl Pool {
    /// Purges as the reference `userspace_cache_purge` does: walking the MRU
    /// list from its head. The order decides which hole is newest, which
    /// best fit prefers among equal holes. Returns how many were purged.
    fn purge_in_mru_order<M: Mover + ?Sized>(&mut self, mover: &mut M) -> usize {
        if self.purgeable.is_empty() {
            return 0;
        }
        let victims: Vec<u32> = self
            .mru
            .iter(&self.bufs)
            .filter(|&i| self.purgeable.contains(&i) && self.evictable(i))
            .collect();
        for &i in &victims {
            self.purge(mover, i);
        }
        victims.len()
    }

    pub(super) fn room_drm_mm<M: Mover + ?Sized>(
        &mut self,
        mover: &mut M,
        need: u32,
    ) -> Option<u32> {
        if let Some(at) = self.free.best_fit(need) {
            return Some(at);
        }
        if self.purge_in_mru_order(mover) > 0 {
            if let Some(at) = self.free.best_fit(need) {
                return Some(at);
            }
        }
        // The scan: add LRU candidates one by one, keeping the maximal runs
        // that candidates and the holes next to them would form if evicted.
        // Nothing moves until some run fits.
        let mut runs: BTreeMap<u32, u32> = BTreeMap::new();
        let mut candidates: BTreeMap<u32, u32> = BTreeMap::new();
        let mut added: Vec<u32> = Vec::new();
        let mut cursor = self.mru.tail();
        while let Some((c, next)) = self.next_evictable(cursor) {
            cursor = next;
            let (o, units) = (self.bufs[c as usize].offset, self.bufs[c as usize].units);
            candidates.insert(o, c);
            added.push(c);
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
                // Linux walks its eviction list newest candidate first
                // (`drm_mm_scan_remove_block` wants the reverse of the order
                // of adding) and frees the blocks in that order; the order
                // decides which hole is newest, and so best fit among equal
                // holes later (`FreeIndex::best_fit`).
                let window = p..p + need;
                let victims: Vec<u32> = added
                    .iter()
                    .rev()
                    .copied()
                    .filter(|&ci| {
                        let b = &self.bufs[ci as usize];
                        b.offset < window.end && b.offset + b.units > window.start
                    })
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
