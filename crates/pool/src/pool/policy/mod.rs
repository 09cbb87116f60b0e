//! The four policies. They differ in two places only: how a page-in finds
//! room when the buffer does not fit as things are (one `room_*` per policy,
//! each returning the unit offset to place at, or None for a rule 1 failure),
//! and, for `compact` and `defrag`, what an unpin does (a slide down).

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
        // defrag keeps the pool packed downward as compact does (4.7).
        if matches!(self.config.policy, Policy::Compact | Policy::Defrag) {
            self.slide_down_once(mover, i);
        }
    }
}
