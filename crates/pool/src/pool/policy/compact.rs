//! `compact`: places as `first-fit` does; when a buffer is unpinned it slides
//! down once, to the end of its lower neighbour (or to 0). O(log n + log U)
//! per unpin that slides.

use crate::mover::Mover;
use crate::pool::{Pool, NONE};

impl Pool {
    /// `compact`: an unpinned resident buffer slides down to the end of its
    /// lower neighbour (or 0) once.
    pub(super) fn slide_down_once<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32) {
        let b = self.bufs[i as usize];
        if b.offset == NONE || b.unmoveable {
            return;
        }
        // The end of the lower neighbour (or 0) is the start of the hole
        // just below, if there is one; otherwise the buffer already touches it.
        let floor = self
            .free
            .hole_ending_at(b.offset)
            .map_or(b.offset, |(hole, _)| hole);
        if floor < b.offset {
            self.move_down(mover, i, floor);
        }
    }
}
