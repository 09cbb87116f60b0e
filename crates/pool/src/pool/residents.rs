//! Resident buffers by address: one slot per alignment unit, holding the
//! buffer that starts there. Placing, removing and finding a buffer by its
//! offset are O(1) (an ordered map costs a tree walk and often an allocation
//! for each, on every create and destroy of the replay's hot path).
//!
//! Ordered walks need the free-space index beside it: every unit of the pool
//! is either inside a resident buffer or inside a hole (the free index is the
//! exact complement of the resident buffers), so from any boundary, a unit
//! where a buffer or a hole starts, the next boundary is one step away. A
//! walk over a range visits each buffer and each hole in it once.

use super::{Pool, NONE};
use alloc::vec;
use alloc::vec::Vec;

#[derive(Clone, Debug)]
pub(super) struct Residents {
    /// `starts[u]`: the buffer whose first unit is `u`, or NONE.
    starts: Vec<u32>,
    count: usize,
}

impl Residents {
    pub(super) fn new(units: u32) -> Self {
        Residents {
            starts: vec![NONE; units as usize],
            count: 0,
        }
    }

    pub(super) fn insert(&mut self, at: u32, buffer: u32) {
        let slot = &mut self.starts[at as usize];
        debug_assert_eq!(*slot, NONE, "two buffers placed at unit {at}");
        *slot = buffer;
        self.count += 1;
    }

    pub(super) fn remove(&mut self, at: u32) {
        let slot = &mut self.starts[at as usize];
        debug_assert_ne!(*slot, NONE, "no buffer to remove at unit {at}");
        *slot = NONE;
        self.count -= 1;
    }

    /// The buffer that starts at unit `at`.
    pub(super) fn at(&self, at: u32) -> Option<u32> {
        self.starts.get(at as usize).copied().filter(|&i| i != NONE)
    }

    /// Number of resident buffers.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// Every resident buffer in address order by a scan of every unit, O(U):
    /// for the invariant checks, which must not trust the free index.
    pub(super) fn scan(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.starts
            .iter()
            .enumerate()
            .filter(|&(_, &i)| i != NONE)
            .map(|(o, &i)| (o as u32, i))
    }
}

impl Pool {
    /// Resident buffers starting in [start, end), in address order, as
    /// (unit offset, buffer). `start` must be a boundary: 0, the end of a
    /// resident buffer, or the start of a buffer or of a hole. O(buffers +
    /// holes in the range).
    pub(super) fn residents_in(
        &self,
        start: u32,
        end: u32,
    ) -> impl Iterator<Item = (u32, u32)> + '_ {
        let end = end.min(self.free.units());
        let mut u = start;
        core::iter::from_fn(move || {
            while u < end {
                if let Some(i) = self.residents.at(u) {
                    u += self.bufs[i as usize].units;
                    return Some((u - self.bufs[i as usize].units, i));
                }
                match self.free.hole_starting_at(u) {
                    Some(len) => u += len,
                    // Not a boundary: a caller's mistake or a broken index
                    // (the invariant checks find which); never loop on it.
                    None => panic!("unit {u} starts neither a resident buffer nor a hole"),
                }
            }
            None
        })
    }

    /// Every resident buffer in address order, (unit offset, buffer).
    pub(super) fn residents(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.residents_in(0, self.free.units())
    }
}
