//! The most-recently-used order of the resident buffers: a doubly linked list
//! over buffer indices, with the links kept in a vector indexed by buffer.
//! Push, unlink and a step of a walk in either direction are O(1), so a `use`
//! of a resident buffer costs O(1) and an eviction walks from the least
//! recently used end without searching.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// End of the list.
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Links {
    /// Toward the head (more recently used).
    newer: u32,
    /// Toward the tail (less recently used).
    older: u32,
}

const UNLINKED: Links = Links {
    newer: NONE,
    older: NONE,
};

/// Buffer indices from most (head) to least (tail) recently used. An index
/// is in the list at most once.
#[derive(Clone, Debug)]
pub(super) struct MruList {
    head: u32,
    tail: u32,
    len: usize,
    links: Vec<Links>,
}

fn index(i: u32) -> Option<u32> {
    (i != NONE).then_some(i)
}

impl MruList {
    pub(super) const fn new() -> MruList {
        MruList {
            head: NONE,
            tail: NONE,
            len: 0,
            links: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether `i` is in the list.
    pub(super) fn contains(&self, i: u32) -> bool {
        self.links
            .get(i as usize)
            .is_some_and(|l| l.newer != NONE || self.head == i)
    }

    /// The most recently used index.
    pub(super) fn head(&self) -> Option<u32> {
        index(self.head)
    }

    /// The least recently used index: where an eviction walk starts.
    pub(super) fn tail(&self) -> Option<u32> {
        index(self.tail)
    }

    /// The next more recently used index after `i` (which is in the list).
    #[inline]
    pub(super) fn newer(&self, i: u32) -> Option<u32> {
        index(self.links[i as usize].newer)
    }

    /// The next less recently used index after `i` (which is in the list).
    #[inline]
    pub(super) fn older(&self, i: u32) -> Option<u32> {
        index(self.links[i as usize].older)
    }

    /// Makes `i`, which is not in the list, the most recently used.
    #[inline]
    pub(super) fn push(&mut self, i: u32) {
        debug_assert!(i != NONE && !self.contains(i));
        if self.links.len() <= i as usize {
            self.links.resize(i as usize + 1, UNLINKED);
        }
        let old_head = self.head;
        self.links[i as usize] = Links {
            newer: NONE,
            older: old_head,
        };
        if old_head != NONE {
            self.links[old_head as usize].newer = i;
        } else {
            self.tail = i;
        }
        self.head = i;
        self.len += 1;
    }

    /// Takes `i`, which is in the list, out of it.
    #[inline]
    pub(super) fn unlink(&mut self, i: u32) {
        debug_assert!(self.contains(i));
        let Links { newer, older } = self.links[i as usize];
        if newer != NONE {
            self.links[newer as usize].older = older;
        } else {
            self.head = older;
        }
        if older != NONE {
            self.links[older as usize].newer = newer;
        } else {
            self.tail = newer;
        }
        self.links[i as usize] = UNLINKED;
        self.len -= 1;
    }

    /// Makes `i`, which is in the list, the most recently used.
    #[inline]
    pub(super) fn touch(&mut self, i: u32) {
        self.unlink(i);
        self.push(i);
    }

    /// From most to least recently used. Stops after `len` indices, so a
    /// broken list cannot make it loop.
    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let mut cursor = self.head();
        (0..self.len).map_while(move |_| {
            let c = cursor?;
            cursor = self.older(c);
            Some(c)
        })
    }

    /// Checks that the links agree both ways, the walk from the head ends at
    /// the tail after exactly `len` indices, and unlisted indices hold no
    /// links.
    pub(super) fn check(&self) -> Result<(), String> {
        let (mut c, mut prev, mut n) = (self.head, NONE, 0usize);
        while c != NONE {
            let Some(l) = self.links.get(c as usize) else {
                return Err(format!("MRU list links to #{c}, which has no entry"));
            };
            if l.newer != prev {
                return Err(format!("MRU back link of #{c} is wrong"));
            }
            n += 1;
            if n > self.len {
                return Err(format!(
                    "MRU list longer than its length {} (cycle?)",
                    self.len
                ));
            }
            prev = c;
            c = l.older;
        }
        if n != self.len || self.tail != prev {
            return Err(format!(
                "MRU walk from the head visits {n} of {} and ends at {prev}, tail {}",
                self.len, self.tail
            ));
        }
        let linked = self.links.iter().filter(|l| **l != UNLINKED).count();
        // A list of one has no links at all.
        if linked != n.saturating_sub(usize::from(n == 1)) {
            return Err(format!("{linked} MRU entries hold links, {n} listed"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(l: &MruList) -> Vec<u32> {
        l.iter().collect()
    }

    /// The walk an eviction makes: from the tail toward the head.
    fn from_tail(l: &MruList) -> Vec<u32> {
        let mut out = Vec::new();
        let mut c = l.tail();
        while let Some(i) = c {
            out.push(i);
            c = l.newer(i);
        }
        out
    }

    fn checked(l: &MruList) {
        l.check().unwrap();
        let mut back = from_tail(l);
        back.reverse();
        assert_eq!(back, order(l));
        assert_eq!(l.len(), order(l).len());
    }

    #[test]
    fn empty() {
        let l = MruList::new();
        checked(&l);
        assert_eq!((l.head(), l.tail(), l.len()), (None, None, 0));
        assert!(!l.contains(0));
        assert_eq!(order(&l), []);
    }

    #[test]
    fn single() {
        let mut l = MruList::new();
        l.push(5);
        checked(&l);
        assert_eq!((l.head(), l.tail()), (Some(5), Some(5)));
        assert_eq!((l.newer(5), l.older(5)), (None, None));
        assert!(l.contains(5) && !l.contains(4) && !l.contains(6));
        l.touch(5);
        checked(&l);
        assert_eq!(order(&l), [5]);
        l.unlink(5);
        checked(&l);
        assert_eq!((l.head(), l.tail(), l.len()), (None, None, 0));
        assert!(!l.contains(5));
    }

    #[test]
    fn push_puts_the_newest_at_the_head() {
        let mut l = MruList::new();
        for i in [3, 0, 7, 1] {
            l.push(i);
            checked(&l);
        }
        assert_eq!(order(&l), [1, 7, 0, 3]);
        assert_eq!(from_tail(&l), [3, 0, 7, 1]);
        assert_eq!((l.head(), l.tail()), (Some(1), Some(3)));
        assert_eq!((l.newer(0), l.older(0)), (Some(7), Some(3)));
    }

    #[test]
    fn unlink_head_middle_and_tail() {
        let mut l = MruList::new();
        for i in 0..5 {
            l.push(i);
        }
        l.unlink(2);
        checked(&l);
        assert_eq!(order(&l), [4, 3, 1, 0]);
        l.unlink(4);
        checked(&l);
        assert_eq!(order(&l), [3, 1, 0]);
        l.unlink(0);
        checked(&l);
        assert_eq!(order(&l), [3, 1]);
        assert!(!l.contains(0) && !l.contains(2) && !l.contains(4));
        l.push(2);
        checked(&l);
        assert_eq!(order(&l), [2, 3, 1]);
    }

    #[test]
    fn touch_moves_to_the_head() {
        let mut l = MruList::new();
        for i in 0..4 {
            l.push(i);
        }
        l.touch(0);
        checked(&l);
        assert_eq!(order(&l), [0, 3, 2, 1]);
        l.touch(2);
        checked(&l);
        assert_eq!(order(&l), [2, 0, 3, 1]);
        l.touch(2);
        checked(&l);
        assert_eq!(order(&l), [2, 0, 3, 1]);
        assert_eq!(from_tail(&l), [1, 3, 0, 2]);
    }

    /// An eviction walk reads the next index before it unlinks the current one.
    #[test]
    fn walk_from_the_tail_while_unlinking() {
        let mut l = MruList::new();
        for i in 0..6 {
            l.push(i);
        }
        let mut evicted = Vec::new();
        let mut c = l.tail();
        while let Some(i) = c {
            c = l.newer(i);
            if i % 2 == 0 {
                l.unlink(i);
                evicted.push(i);
                checked(&l);
            }
        }
        assert_eq!(evicted, [0, 2, 4]);
        assert_eq!(order(&l), [5, 3, 1]);
    }

    #[test]
    fn check_finds_broken_links() {
        let mut l = MruList::new();
        for i in 0..3 {
            l.push(i);
        }
        let mut cycle = l.clone();
        cycle.links[0].older = 2;
        assert!(cycle.check().is_err());
        let mut back = l.clone();
        back.links[1].newer = 0;
        assert!(back.check().is_err());
        let mut short = l.clone();
        short.len = 2;
        assert!(short.check().is_err());
        let mut stray = l;
        stray.links.push(Links { newer: 1, older: 0 });
        assert!(stray.check().is_err());
    }
}
