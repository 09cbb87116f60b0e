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
        let floor = match self.by_offset.range(..b.offset).next_back() {
            Some((&o, &j)) => o + self.bufs[j as usize].units,
            None => 0,
        };
        if floor < b.offset {
            self.move_down(mover, i, floor);
        }
    }
}
