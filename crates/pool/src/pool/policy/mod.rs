//! The four policies. They differ in two places only: how a page-in finds
//! room when the buffer does not fit as things are (one `room_*` per policy,
//! each returning the unit offset to place at, or None for a rule 1 failure),
//! and, for `compact` and `defrag`, what an unpin does (a slide), and for
//! `defrag` what a `use` of a resident buffer does (the same slide).

mod compact;
mod defrag;
mod drm_mm;
mod first_fit;

use crate::mover::Mover;
use crate::pool::Pool;
use records::Policy;

impl Pool {
    /// Room for `need` units (at most the pool's size) under the pool's
    /// policy, after whatever purges, page-outs and compaction it takes.
    pub(super) fn room<M: Mover + ?Sized>(&mut self, mover: &mut M, need: u32) -> Option<u32> {
        match self.config.policy {
            Policy::FirstFit | Policy::Compact => self.room_first_fit(mover, need),
            Policy::DrmMm => self.room_drm_mm(mover, need),
            Policy::Defrag => self.room_defrag(mover, need),
        }
    }

    /// After `remove_usecnt` cleared the pin of buffer `i`.
    pub(super) fn after_unpin<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32) {
        match self.config.policy {
            Policy::Compact => self.slide_down_once(mover, i),
            Policy::Defrag => self.settle_defrag(mover, i),
            Policy::FirstFit | Policy::DrmMm => {}
        }
    }

    /// After a `use` of buffer `i` found it resident (a job is being built:
    /// an `add_usecnt` usually follows, and pins it where it is then).
    pub(super) fn after_resident_use<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32) {
        if self.config.policy == Policy::Defrag && !self.bufs[i as usize].pinned {
            self.settle_defrag(mover, i);
        }
    }
}
