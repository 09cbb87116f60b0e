//! The free-space index: which alignment units of the pool are free.
//!
//! Everything here counts in *units* (one unit = the pool alignment), so every
//! offset it hands out is aligned by construction.
//!
//! Three views of the same free set are kept in step:
//! - `starts`: a max segment tree over units whose leaf `u` holds the length of
//!   the maximal hole starting at `u` (0 if none starts there). Its root is the
//!   largest hole; the leftmost leaf >= `len` is first-fit; the nearest nonzero
//!   leaf left of a unit is the hole around it. Every change is a point update
//!   (a hole appears or goes), so each costs one bottom-up pass of O(log U)
//!   over plain `u32`s, U being the number of units, whatever the number of
//!   buffers — no range assignment, no lazy state;
//! - `ends`: for each unit `u`, 1 + the start of the hole whose last unit is
//!   `u` (0 if none ends there), so the left neighbour of a released range is
//!   found in O(1);
//! - `by_size`, only in an index made [`with_best_fit`](FreeIndex::with_best_fit):
//!   holes by size, the most recently made first among equals (as Linux's
//!   `drm_mm` hole tree, where an equal size is inserted to the right and
//!   `best_hole` takes the rightmost that fits), for best-fit. It is the
//!   costly view (two ordered-set updates per hole made or gone, where the
//!   tree costs a few loads), so the policies that never ask for best-fit do
//!   not keep it.

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

/// Free units of the pool, indexed for first-fit and best-fit placement.
#[derive(Clone, Debug)]
pub struct FreeIndex {
    units: u32,
    /// Leaves in the tree (power of two >= units); leaves past `units` stay 0.
    leaves: u32,
    /// `starts[leaves + u]`: length of the hole starting at `u`; inner nodes:
    /// the max of their children (index 0 unused).
    starts: Vec<u32>,
    /// `ends[u]`: 1 + start of the hole whose last unit is `u`, or 0.
    ends: Vec<u32>,
    /// The best-fit view, when this index keeps one.
    by_size: Option<BySize>,
    hole_count: usize,
    free_units: u32,
}

/// Holes ordered for best-fit.
#[derive(Clone, Debug)]
struct BySize {
    /// (length, u64::MAX - stamp, offset): smallest first, then newest.
    holes: BTreeSet<(u32, u64, u32)>,
    /// `stamps[o]`: when the hole starting at unit `o` was made, a count of
    /// holes made so far (meaningless where no hole starts).
    stamps: Vec<u64>,
    next_stamp: u64,
}

impl FreeIndex {
    /// An index over `units` units, all free, without the best-fit view
    /// ([`best_fit`](Self::best_fit) panics).
    pub fn new(units: u32) -> Self {
        Self::build(units, false)
    }

    /// An index over `units` units, all free, that also answers
    /// [`best_fit`](Self::best_fit) (8 more bytes per unit, and an ordered
    /// set of the holes).
    pub fn with_best_fit(units: u32) -> Self {
        Self::build(units, true)
    }

    fn build(units: u32, best_fit: bool) -> Self {
        let leaves = units.max(1).next_power_of_two();
        let mut index = FreeIndex {
            units,
            leaves,
            starts: vec![0; 2 * leaves as usize],
            ends: vec![0; units as usize],
            by_size: best_fit.then(|| BySize {
                holes: BTreeSet::new(),
                stamps: vec![0; units as usize],
                next_stamp: 0,
            }),
            hole_count: 0,
            free_units: 0,
        };
        if units > 0 {
            index.insert_hole(0, units);
            index.free_units = units;
        }
        index
    }

    pub fn units(&self) -> u32 {
        self.units
    }

    pub fn free_units(&self) -> u32 {
        self.free_units
    }

    /// Length of the largest hole, O(1).
    pub fn largest(&self) -> u32 {
        self.starts[1]
    }

    /// Number of maximal holes, O(1).
    pub fn hole_count(&self) -> usize {
        self.hole_count
    }

    /// Maximal holes in address order: (offset, length).
    pub fn holes(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mut next = self.first_start_from(0);
        core::iter::from_fn(move || {
            let o = next?;
            let l = self.start_len(o);
            next = self.first_start_from(o + l);
            Some((o, l))
        })
    }

    /// The hole that ends exactly at `at`, if any.
    pub fn hole_ending_at(&self, at: u32) -> Option<(u32, u32)> {
        if at == 0 || at > self.units {
            return None;
        }
        match self.ends[at as usize - 1] {
            0 => None,
            s => Some((s - 1, at - (s - 1))),
        }
    }

    /// The hole that starts exactly at `at`, if any.
    pub fn hole_starting_at(&self, at: u32) -> Option<u32> {
        if at >= self.units {
            return None;
        }
        Some(self.start_len(at)).filter(|&l| l > 0)
    }

    /// Lowest offset at which `len` free units start, O(log U): the start of
    /// the lowest hole of at least `len` (holes are maximal).
    pub fn first_fit(&self, len: u32) -> Option<u32> {
        if len == 0 || self.starts[1] < len {
            return None;
        }
        let mut node = 1usize;
        let leaves = self.leaves as usize;
        while node < leaves {
            node *= 2;
            // The left child holds no hole of `len`: the answer is right.
            if self.starts[node] < len {
                node += 1;
            }
        }
        Some((node - leaves) as u32)
    }

    /// Highest offset at which `len` free units end a hole, O(log U): the
    /// top `len` units of the highest hole of at least `len`.
    pub fn last_fit(&self, len: u32) -> Option<u32> {
        if len == 0 || self.starts[1] < len {
            return None;
        }
        let mut node = 1usize;
        let leaves = self.leaves as usize;
        while node < leaves {
            node = 2 * node + 1;
            // The right child holds no hole of `len`: the answer is left.
            if self.starts[node] < len {
                node -= 1;
            }
        }
        let start = (node - leaves) as u32;
        Some(start + self.start_len(start) - len)
    }

    /// Offset of the smallest hole that fits `len`, the most recently made
    /// among equals (Linux `drm_mm`'s `best_hole`), O(log n).
    ///
    /// # Panics
    /// If the index was not made [`with_best_fit`](Self::with_best_fit).
    pub fn best_fit(&self, len: u32) -> Option<u32> {
        let by_size = self
            .by_size
            .as_ref()
            .expect("best_fit on a free index made without the best-fit view");
        if len == 0 {
            return None;
        }
        by_size
            .holes
            .range((len, 0, 0)..)
            .next()
            .map(|&(_, _, o)| o)
    }

    /// Whether [at, at+len) is entirely free.
    pub fn is_free(&self, at: u32, len: u32) -> bool {
        match self.hole_around(at) {
            Some((o, l)) => at + len <= o + l,
            None => false,
        }
    }

    /// Marks [at, at+len) used; it must lie inside one hole.
    pub fn allocate(&mut self, at: u32, len: u32) {
        let (o, l) = self.hole_around(at).expect("allocate outside any hole");
        assert!(at + len <= o + l, "allocate across a hole's end");
        self.remove_hole(o, l);
        if at > o {
            self.insert_hole(o, at - o);
        }
        if at + len < o + l {
            self.insert_hole(at + len, o + l - at - len);
        }
        self.free_units -= len;
    }

    /// Marks [at, at+len) free, coalescing with the holes on either side.
    pub fn release(&mut self, at: u32, len: u32) {
        let (mut start, mut end) = (at, at + len);
        if let Some((o, l)) = self.hole_ending_at(at) {
            self.remove_hole(o, l);
            start = o;
        }
        if let Some(l) = self.hole_starting_at(end) {
            self.remove_hole(end, l);
            end += l;
        }
        self.insert_hole(start, end - start);
        self.free_units += len;
    }

    fn start_len(&self, at: u32) -> u32 {
        self.starts[(self.leaves + at) as usize]
    }

    /// The hole containing unit `at` (the nearest hole starting at or before
    /// it), if `at` is free; otherwise the nearest hole before it, or None.
    fn hole_around(&self, at: u32) -> Option<(u32, u32)> {
        if at >= self.units {
            // Past the end: the last hole, if any, by the same walk from the top.
            return self
                .last_start_before(self.units)
                .map(|o| (o, self.start_len(o)));
        }
        let l = self.start_len(at);
        if l > 0 {
            return Some((at, l));
        }
        self.last_start_before(at).map(|o| (o, self.start_len(o)))
    }

    /// The highest hole start below `at` (`at <= units`), O(log U).
    fn last_start_before(&self, at: u32) -> Option<u32> {
        let leaves = self.leaves as usize;
        let mut node = if (at as usize) < leaves {
            leaves + at as usize
        } else {
            // Every leaf is below `at`: search the whole tree (as the right
            // sibling of a virtual root).
            if self.starts[1] == 0 {
                return None;
            }
            return Some(self.rightmost_nonzero(1));
        };
        // Leaves below `at` are the left siblings of the right children on the
        // path up from leaf `at`, nearest first.
        while node > 1 {
            if node & 1 == 1 && self.starts[node - 1] != 0 {
                return Some(self.rightmost_nonzero(node - 1));
            }
            node /= 2;
        }
        None
    }

    /// The lowest hole start at or above `at`, O(log U).
    fn first_start_from(&self, at: u32) -> Option<u32> {
        if at >= self.units {
            return None;
        }
        let leaves = self.leaves as usize;
        let mut node = leaves + at as usize;
        if self.starts[node] != 0 {
            return Some(at);
        }
        while node > 1 {
            if node & 1 == 0 && self.starts[node + 1] != 0 {
                return Some(self.leftmost_nonzero(node + 1));
            }
            node /= 2;
        }
        None
    }

    fn rightmost_nonzero(&self, mut node: usize) -> u32 {
        let leaves = self.leaves as usize;
        while node < leaves {
            node = 2 * node + 1;
            if self.starts[node] == 0 {
                node -= 1;
            }
        }
        (node - leaves) as u32
    }

    fn leftmost_nonzero(&self, mut node: usize) -> u32 {
        let leaves = self.leaves as usize;
        while node < leaves {
            node *= 2;
            if self.starts[node] == 0 {
                node += 1;
            }
        }
        (node - leaves) as u32
    }

    /// Sets leaf `at` to `len` and restores the max on the path to the root,
    /// stopping as soon as a node's value does not change.
    fn set_start(&mut self, at: u32, len: u32) {
        let tree = &mut self.starts[..];
        let mut node = (self.leaves + at) as usize;
        tree[node] = len;
        // `value` is always `tree[node]`: each level loads only the sibling.
        let mut value = len;
        while node > 1 {
            value = value.max(tree[node ^ 1]);
            node /= 2;
            if tree[node] == value {
                break;
            }
            tree[node] = value;
        }
    }

    fn insert_hole(&mut self, o: u32, l: u32) {
        self.set_start(o, l);
        self.ends[(o + l - 1) as usize] = o + 1;
        if let Some(by_size) = &mut self.by_size {
            let stamp = by_size.next_stamp;
            by_size.next_stamp += 1;
            by_size.stamps[o as usize] = stamp;
            by_size.holes.insert((l, u64::MAX - stamp, o));
        }
        self.hole_count += 1;
    }

    fn remove_hole(&mut self, o: u32, l: u32) {
        self.set_start(o, 0);
        self.ends[(o + l - 1) as usize] = 0;
        if let Some(by_size) = &mut self.by_size {
            let stamp = by_size.stamps[o as usize];
            let was_there = by_size.holes.remove(&(l, u64::MAX - stamp, o));
            debug_assert!(was_there, "hole ({o}, {l}) missing from the size index");
        }
        self.hole_count -= 1;
    }

    /// Cross-checks the three views against each other and against `used`
    /// (sorted, disjoint used ranges). Returns a description of the first
    /// disagreement.
    pub fn check(&self, used: &[(u32, u32)]) -> Result<(), alloc::string::String> {
        use alloc::format;
        // Expected holes: the complement of `used`.
        let mut expected = Vec::new();
        let mut cursor = 0u32;
        for &(o, l) in used {
            if o > cursor {
                expected.push((cursor, o - cursor));
            }
            cursor = o + l;
        }
        if cursor < self.units {
            expected.push((cursor, self.units - cursor));
        }
        let holes: Vec<(u32, u32)> = self.holes().collect();
        if holes != expected {
            return Err(format!(
                "hole map {holes:?} is not the complement of the buffers {expected:?}"
            ));
        }
        if let Some(by_size) = &self.by_size {
            if by_size.holes.len() != holes.len()
                || holes.iter().any(|&(o, l)| {
                    let stamp = by_size.stamps[o as usize];
                    !by_size.holes.contains(&(l, u64::MAX - stamp, o))
                })
            {
                return Err("size index disagrees with the hole map".into());
            }
        }
        if self.hole_count != holes.len() {
            return Err(format!(
                "hole count {} but {} holes",
                self.hole_count,
                holes.len()
            ));
        }
        // `ends` marks exactly the last unit of every hole, with its start.
        let marked = self.ends.iter().filter(|&&e| e != 0).count();
        if marked != holes.len()
            || holes
                .iter()
                .any(|&(o, l)| self.ends[(o + l - 1) as usize] != o + 1)
        {
            return Err("hole-end index disagrees with the hole map".into());
        }
        let free: u32 = holes.iter().map(|h| h.1).sum();
        if free != self.free_units {
            return Err(format!(
                "free units {} but holes sum to {free}",
                self.free_units
            ));
        }
        let largest = holes.iter().map(|h| h.1).max().unwrap_or(0);
        if largest != self.largest() {
            return Err(format!(
                "segment tree largest {} but largest hole {largest}",
                self.largest()
            ));
        }
        // First-fit answers for every length that occurs.
        for &(_, l) in &holes {
            let want = holes.iter().find(|h| h.1 >= l).map(|h| h.0);
            if self.first_fit(l) != want {
                return Err(format!(
                    "first-fit({l}) = {:?}, expected {want:?}",
                    self.first_fit(l)
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::FreeIndex;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// The free set as one flag per unit, answering every query by scanning.
    struct Naive(Vec<bool>);

    impl Naive {
        fn holes(&self) -> Vec<(u32, u32)> {
            let mut out = Vec::new();
            let mut u = 0;
            while u < self.0.len() {
                if self.0[u] {
                    let s = u;
                    while u < self.0.len() && self.0[u] {
                        u += 1;
                    }
                    out.push((s as u32, (u - s) as u32));
                } else {
                    u += 1;
                }
            }
            out
        }
        fn used(&self) -> Vec<(u32, u32)> {
            let mut out = Vec::new();
            let mut cursor = 0;
            for (o, l) in self.holes() {
                if o > cursor {
                    out.push((cursor, o - cursor));
                }
                cursor = o + l;
            }
            if (cursor as usize) < self.0.len() {
                out.push((cursor, self.0.len() as u32 - cursor));
            }
            out
        }
    }

    proptest! {
        /// Random allocations (inside holes, anywhere in them) and releases
        /// (of used runs) keep every answer equal to the naive scan's.
        #[test]
        fn matches_a_scan_of_the_units(
            units in 1u32..300,
            steps in proptest::collection::vec((any::<bool>(), any::<u32>(), any::<u32>(), 1u32..40), 1..120),
        ) {
            let mut index = FreeIndex::with_best_fit(units);
            // The same steps on an index without the best-fit view: every
            // other answer must be the same.
            let mut plain = FreeIndex::new(units);
            let mut naive = Naive(vec![true; units as usize]);
            // When each naive hole was made: holes that are new after a step
            // get the next stamps in address order (the index makes a split
            // hole's lower part first, as drm_mm does).
            let mut made: Vec<((u32, u32), u64)> = vec![((0, units), 0)];
            let mut next_stamp = 1u64;
            for (alloc, pick, offset, len) in steps {
                if alloc {
                    let holes = naive.holes();
                    if holes.is_empty() { continue; }
                    let (o, l) = holes[pick as usize % holes.len()];
                    let at = o + offset % l;
                    let len = len.min(o + l - at);
                    prop_assert!(index.is_free(at, len));
                    index.allocate(at, len);
                    plain.allocate(at, len);
                    for u in at..at + len { naive.0[u as usize] = false; }
                } else {
                    let used = naive.used();
                    if used.is_empty() { continue; }
                    let (o, l) = used[pick as usize % used.len()];
                    let at = o + offset % l;
                    let len = len.min(o + l - at);
                    prop_assert!(!index.is_free(at, 1));
                    index.release(at, len);
                    plain.release(at, len);
                    for u in at..at + len { naive.0[u as usize] = true; }
                }
                let holes = naive.holes();
                let mut now = Vec::new();
                for &h in &holes {
                    let stamp = match made.iter().find(|m| m.0 == h) {
                        Some(m) => m.1,
                        None => { next_stamp += 1; next_stamp - 1 }
                    };
                    now.push((h, stamp));
                }
                made = now;
                prop_assert_eq!(index.check(&naive.used()), Ok(()));
                prop_assert_eq!(plain.check(&naive.used()), Ok(()));
                prop_assert_eq!(plain.holes().collect::<Vec<_>>(), holes.clone());
                prop_assert_eq!(index.holes().collect::<Vec<_>>(), holes.clone());
                prop_assert_eq!(index.largest(), holes.iter().map(|h| h.1).max().unwrap_or(0));
                for len in 1..=units.min(64) {
                    let first = holes.iter().find(|h| h.1 >= len).map(|h| h.0);
                    prop_assert_eq!(index.first_fit(len), first);
                    prop_assert_eq!(plain.first_fit(len), first);
                    let best = made.iter().filter(|m| m.0.1 >= len).min_by_key(|m| (m.0.1, core::cmp::Reverse(m.1))).map(|m| m.0.0);
                    prop_assert_eq!(index.best_fit(len), best);
                    let last = holes.iter().rev().find(|h| h.1 >= len).map(|h| h.0 + h.1 - len);
                    prop_assert_eq!(index.last_fit(len), last);
                }
                for at in 0..=units {
                    let ending = holes.iter().find(|h| h.0 + h.1 == at).copied();
                    prop_assert_eq!(index.hole_ending_at(at), ending);
                    let starting = holes.iter().find(|h| h.0 == at).map(|h| h.1);
                    prop_assert_eq!(index.hole_starting_at(at), starting);
                }
            }
        }
    }

    #[test]
    fn empty_and_full_pools() {
        let empty = FreeIndex::with_best_fit(0);
        assert_eq!(
            (
                empty.largest(),
                empty.hole_count(),
                empty.first_fit(1),
                empty.last_fit(1)
            ),
            (0, 0, None, None)
        );
        assert_eq!(empty.best_fit(1), None);
        assert_eq!(empty.hole_ending_at(0), None);
        let mut full = FreeIndex::new(8);
        full.allocate(0, 8);
        assert_eq!(
            (full.largest(), full.hole_count(), full.first_fit(1)),
            (0, 0, None)
        );
        assert!(!full.is_free(3, 1));
        full.release(2, 3);
        assert_eq!(full.holes().collect::<Vec<_>>(), vec![(2, 3)]);
        assert_eq!(full.hole_ending_at(5), Some((2, 3)));
    }
}
