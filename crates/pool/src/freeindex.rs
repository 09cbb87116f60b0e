//! The free-space index: which alignment units of the pool are free.
//!
//! Everything here counts in *units* (one unit = the pool alignment), so every
//! offset it hands out is aligned by construction.
//!
//! Three views of the same free set are kept in step, each answering one
//! question in O(log n):
//! - a segment tree over units with (free prefix, free suffix, longest free
//!   run) per node: the lowest-offset hole that fits (first-fit) and the
//!   largest hole (the root) — O(log U) with U the number of units, whatever
//!   the number of buffers;
//! - `holes`: maximal holes by offset, for coalescing, neighbour queries and
//!   the hole count;
//! - `by_size`: holes by (size, offset), for best-fit.
//!
//! The segment tree needs no lazy tags: a node whose range is uniformly free
//! or uniformly used may have stale children, and every descent first pushes
//! the uniform state down (idempotent when the children are already right).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

#[derive(Clone, Copy, Default, Debug)]
struct Node {
    pref: u32,
    suf: u32,
    best: u32,
}

/// Free units of the pool, indexed for first-fit and best-fit placement.
#[derive(Clone, Debug)]
pub struct FreeIndex {
    units: u32,
    /// Leaves in the tree (power of two >= units); leaves past `units` stay used.
    leaves: u32,
    tree: Vec<Node>,
    holes: BTreeMap<u32, u32>,
    by_size: BTreeSet<(u32, u32)>,
    free_units: u32,
}

impl FreeIndex {
    /// An index over `units` units, all free.
    pub fn new(units: u32) -> Self {
        let leaves = units.max(1).next_power_of_two();
        let mut index = FreeIndex {
            units,
            leaves,
            tree: vec![Node::default(); 2 * leaves as usize],
            holes: BTreeMap::new(),
            by_size: BTreeSet::new(),
            free_units: 0,
        };
        if units > 0 {
            index.assign(0, units, true);
            index.holes.insert(0, units);
            index.by_size.insert((units, 0));
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
        self.tree[1].best
    }

    /// Number of maximal holes, O(1).
    pub fn hole_count(&self) -> usize {
        self.holes.len()
    }

    /// Maximal holes in address order: (offset, length).
    pub fn holes(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.holes.iter().map(|(&o, &l)| (o, l))
    }

    /// The hole that ends exactly at `at`, if any.
    pub fn hole_ending_at(&self, at: u32) -> Option<(u32, u32)> {
        self.holes
            .range(..at)
            .next_back()
            .map(|(&o, &l)| (o, l))
            .filter(|&(o, l)| o + l == at)
    }

    /// The hole that starts exactly at `at`, if any.
    pub fn hole_starting_at(&self, at: u32) -> Option<u32> {
        self.holes.get(&at).copied()
    }

    /// Lowest offset at which `len` free units start, O(log U).
    pub fn first_fit(&self, len: u32) -> Option<u32> {
        if len == 0 || self.tree[1].best < len {
            return None;
        }
        // Descend without mutating: a uniform node's children may be stale, so
        // a uniformly free node answers for its whole range directly.
        let (mut node, mut lo, mut size) = (1usize, 0u32, self.leaves);
        loop {
            let n = self.tree[node];
            if n.best == size {
                return Some(lo);
            }
            let half = size / 2;
            let (l, r) = (self.tree[2 * node], self.tree[2 * node + 1]);
            if l.best >= len {
                node *= 2;
            } else if l.suf + r.pref >= len {
                return Some(lo + half - l.suf);
            } else {
                node = 2 * node + 1;
                lo += half;
            }
            size = half;
        }
    }

    /// Offset of the smallest hole that fits `len` (lowest offset among
    /// equals), O(log n).
    pub fn best_fit(&self, len: u32) -> Option<u32> {
        if len == 0 {
            return None;
        }
        self.by_size.range((len, 0)..).next().map(|&(_, o)| o)
    }

    /// Whether [at, at+len) is entirely free.
    pub fn is_free(&self, at: u32, len: u32) -> bool {
        match self.holes.range(..=at).next_back() {
            Some((&o, &l)) => at + len <= o + l,
            None => false,
        }
    }

    /// Marks [at, at+len) used; it must lie inside one hole.
    pub fn allocate(&mut self, at: u32, len: u32) {
        let (&o, &l) = self
            .holes
            .range(..=at)
            .next_back()
            .expect("allocate outside any hole");
        assert!(at + len <= o + l, "allocate across a hole's end");
        self.remove_hole(o, l);
        if at > o {
            self.insert_hole(o, at - o);
        }
        if at + len < o + l {
            self.insert_hole(at + len, o + l - at - len);
        }
        self.free_units -= len;
        self.assign(at, at + len, false);
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
        self.assign(at, at + len, true);
    }

    fn insert_hole(&mut self, o: u32, l: u32) {
        self.holes.insert(o, l);
        self.by_size.insert((l, o));
    }

    fn remove_hole(&mut self, o: u32, l: u32) {
        self.holes.remove(&o);
        self.by_size.remove(&(l, o));
    }

    fn assign(&mut self, a: u32, b: u32, free: bool) {
        self.assign_rec(1, 0, self.leaves, a, b, free);
    }

    fn uniform(size: u32, free: bool) -> Node {
        let v = if free { size } else { 0 };
        Node {
            pref: v,
            suf: v,
            best: v,
        }
    }

    fn assign_rec(&mut self, node: usize, lo: u32, size: u32, a: u32, b: u32, free: bool) {
        if b <= lo || lo + size <= a {
            return;
        }
        if a <= lo && lo + size <= b {
            self.tree[node] = Self::uniform(size, free);
            return;
        }
        let half = size / 2;
        let n = self.tree[node];
        // Push a uniform state down before touching part of the range.
        if n.best == size || (n.best == 0 && n.pref == 0) {
            let child = Self::uniform(half, n.best == size);
            self.tree[2 * node] = child;
            self.tree[2 * node + 1] = child;
        }
        self.assign_rec(2 * node, lo, half, a, b, free);
        self.assign_rec(2 * node + 1, lo + half, half, a, b, free);
        let (l, r) = (self.tree[2 * node], self.tree[2 * node + 1]);
        self.tree[node] = Node {
            pref: if l.pref == half {
                half + r.pref
            } else {
                l.pref
            },
            suf: if r.suf == half { half + l.suf } else { r.suf },
            best: l.best.max(r.best).max(l.suf + r.pref),
        };
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
        if self.by_size.len() != holes.len()
            || holes.iter().any(|&(o, l)| !self.by_size.contains(&(l, o)))
        {
            return Err("size index disagrees with the hole map".into());
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
