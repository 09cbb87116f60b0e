//! `first-fit`: the lowest hole that fits. Without one, purge the purgeable
//! buffers, then page out buffers from the least recently used up until a
//! hole fits.

use crate::mover::Mover;
use crate::pool::Pool;

impl Pool {
    pub(super) fn room_first_fit<M: Mover + ?Sized>(
        &mut self,
        mover: &mut M,
        need: u32,
    ) -> Option<u32> {
        if let Some(at) = self.free.first_fit(need) {
            return Some(at);
        }
        if self.purge_all(mover) > 0 {
            if let Some(at) = self.free.first_fit(need) {
                return Some(at);
            }
        }
        let mut cursor = self.mru.tail();
        while let Some((c, next)) = self.next_evictable(cursor) {
            cursor = next;
            self.page_out(mover, c);
            if let Some(at) = self.free.first_fit(need) {
                return Some(at);
            }
        }
        None
    }
}
