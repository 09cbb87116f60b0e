//! The most-recently-used order of the resident buffers: a doubly linked list
//! over buffer indices. The list holds the ends and the length; each node's
//! two links live in the caller's own record for that index (the pool's
//! `Buf`), which every call is given as a slice, so a `use` touches one record
//! per buffer it relinks and no second table. Push, unlink, touch and a step
//! of a walk in either direction are O(1): a `use` of a resident buffer costs
//! O(1), and an eviction walks from the least recently used end without
//! searching.

use alloc::format;
use alloc::string::String;

/// End of the list.
const NONE: u32 = u32::MAX;

/// A node's place in an [`MruList`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Links {
    /// Toward the head (more recently used).
    newer: u32,
    /// Toward the tail (less recently used).
    older: u32,
}

impl Links {
    /// Not in the list, or alone in it.
    pub(super) const UNLINKED: Links = Links {
        newer: NONE,
        older: NONE,
    };
}

/// A record that carries the [`Links`] of its index.
pub(super) trait Node {
    fn links(&self) -> &Links;
    fn links_mut(&mut self) -> &mut Links;
}

impl Node for Links {
    fn links(&self) -> &Links {
        self
    }
    fn links_mut(&mut self) -> &mut Links {
        self
    }
}

fn index(i: u32) -> Option<u32> {
    (i != NONE).then_some(i)
}

/// Indices into a slice of [`Node`]s from most (head) to least (tail)
/// recently used; an index is in the list at most once. Every call on one list
/// must be given the same slice (it may grow between calls).
#[derive(Clone, Debug)]
pub(super) struct MruList {
    head: u32,
    tail: u32,
    len: usize,
}

impl MruList {
    pub(super) const fn new() -> MruList {
        MruList {
            head: NONE,
            tail: NONE,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether `i` is in the list.
    pub(super) fn contains<N: Node>(&self, nodes: &[N], i: u32) -> bool {
        nodes
            .get(i as usize)
            .is_some_and(|n| n.links().newer != NONE || self.head == i)
    }

    /// The most recently used index.
    pub(super) fn head(&self) -> Option<u32> {
        index(self.head)
    }

    /// The least recently used index: where an eviction walk starts.
    pub(super) fn tail(&self) -> Option<u32> {
        index(self.tail)
    }

    /// The index used next more recently than `i` (which is in the list).
    #[inline]
    pub(super) fn newer<N: Node>(&self, nodes: &[N], i: u32) -> Option<u32> {
        index(nodes[i as usize].links().newer)
    }

    /// The index used next less recently than `i` (which is in the list).
    #[inline]
    pub(super) fn older<N: Node>(&self, nodes: &[N], i: u32) -> Option<u32> {
        index(nodes[i as usize].links().older)
    }

    /// Makes `i`, which is not in the list, the most recently used.
    #[inline]
    pub(super) fn push<N: Node>(&mut self, nodes: &mut [N], i: u32) {
        debug_assert!(i != NONE && !self.contains(nodes, i));
        self.link_at_head(nodes, i);
        self.len += 1;
    }

    /// Takes `i`, which is in the list, out of it.
    #[inline]
    pub(super) fn unlink<N: Node>(&mut self, nodes: &mut [N], i: u32) {
        debug_assert!(self.contains(nodes, i));
        self.cut(nodes, i);
        self.len -= 1;
    }

    /// Makes `i`, which is in the list, the most recently used.
    #[inline]
    pub(super) fn touch<N: Node>(&mut self, nodes: &mut [N], i: u32) {
        debug_assert!(self.contains(nodes, i));
        self.cut(nodes, i);
        self.link_at_head(nodes, i);
    }

    #[inline]
    fn link_at_head<N: Node>(&mut self, nodes: &mut [N], i: u32) {
        let old_head = self.head;
        *nodes[i as usize].links_mut() = Links {
            newer: NONE,
            older: old_head,
        };
        if old_head != NONE {
            nodes[old_head as usize].links_mut().newer = i;
        } else {
            self.tail = i;
        }
        self.head = i;
    }

    #[inline]
    fn cut<N: Node>(&mut self, nodes: &mut [N], i: u32) {
        let Links { newer, older } = *nodes[i as usize].links();
        if newer != NONE {
            nodes[newer as usize].links_mut().older = older;
        } else {
            self.head = older;
        }
        if older != NONE {
            nodes[older as usize].links_mut().newer = newer;
        } else {
            self.tail = newer;
        }
        *nodes[i as usize].links_mut() = Links::UNLINKED;
    }

    /// From most to least recently used. Stops after `len` indices, so a
    /// broken list cannot make it loop.
    pub(super) fn iter<'a, N: Node>(&'a self, nodes: &'a [N]) -> impl Iterator<Item = u32> + 'a {
        let mut cursor = self.head();
        (0..self.len).map_while(move |_| {
            let c = cursor?;
            cursor = self.older(nodes, c);
            Some(c)
        })
    }

    /// Checks that the links agree both ways, the walk from the head ends at
    /// the tail after exactly `len` indices, and no node outside the list
    /// holds links.
    pub(super) fn check<N: Node>(&self, nodes: &[N]) -> Result<(), String> {
        let (mut c, mut prev, mut n) = (self.head, NONE, 0usize);
        while c != NONE {
            let Some(l) = nodes.get(c as usize).map(Node::links) else {
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
        let linked = nodes
            .iter()
            .filter(|l| *l.links() != Links::UNLINKED)
            .count();
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
    use alloc::vec;
    use alloc::vec::Vec;

    /// A list and its nodes, checked after every change.
    struct Fixture {
        list: MruList,
        nodes: Vec<Links>,
    }

    impl Fixture {
        fn new(n: usize) -> Fixture {
            Fixture {
                list: MruList::new(),
                nodes: vec![Links::UNLINKED; n],
            }
        }

        fn push(&mut self, i: u32) {
            self.list.push(&mut self.nodes, i);
            self.checked();
        }

        fn unlink(&mut self, i: u32) {
            self.list.unlink(&mut self.nodes, i);
            self.checked();
        }

        fn touch(&mut self, i: u32) {
            self.list.touch(&mut self.nodes, i);
            self.checked();
        }

        fn contains(&self, i: u32) -> bool {
            self.list.contains(&self.nodes, i)
        }

        fn order(&self) -> Vec<u32> {
            self.list.iter(&self.nodes).collect()
        }

        /// The walk an eviction makes: from the tail toward the head.
        fn walk_from_tail(&self) -> Vec<u32> {
            let mut out = Vec::new();
            let mut c = self.list.tail();
            while let Some(i) = c {
                out.push(i);
                c = self.list.newer(&self.nodes, i);
            }
            out
        }

        fn checked(&self) {
            self.list.check(&self.nodes).unwrap();
            let mut back = self.walk_from_tail();
            back.reverse();
            assert_eq!(back, self.order());
            assert_eq!(self.list.len(), self.order().len());
        }
    }

    #[test]
    fn empty() {
        let f = Fixture::new(4);
        f.checked();
        assert_eq!(
            (f.list.head(), f.list.tail(), f.list.len()),
            (None, None, 0)
        );
        assert!(!f.contains(0) && !f.contains(9));
        assert_eq!(f.order(), []);
    }

    #[test]
    fn single() {
        let mut f = Fixture::new(8);
        f.push(5);
        assert_eq!((f.list.head(), f.list.tail()), (Some(5), Some(5)));
        assert_eq!(
            (f.list.newer(&f.nodes, 5), f.list.older(&f.nodes, 5)),
            (None, None)
        );
        assert!(f.contains(5) && !f.contains(4) && !f.contains(6));
        f.touch(5);
        assert_eq!(f.order(), [5]);
        f.unlink(5);
        assert_eq!(
            (f.list.head(), f.list.tail(), f.list.len()),
            (None, None, 0)
        );
        assert!(!f.contains(5));
    }

    #[test]
    fn push_puts_the_newest_at_the_head() {
        let mut f = Fixture::new(8);
        for i in [3, 0, 7, 1] {
            f.push(i);
        }
        assert_eq!(f.order(), [1, 7, 0, 3]);
        assert_eq!(f.walk_from_tail(), [3, 0, 7, 1]);
        assert_eq!((f.list.head(), f.list.tail()), (Some(1), Some(3)));
        assert_eq!(
            (f.list.newer(&f.nodes, 0), f.list.older(&f.nodes, 0)),
            (Some(7), Some(3))
        );
    }

    #[test]
    fn unlink_head_middle_and_tail() {
        let mut f = Fixture::new(5);
        for i in 0..5 {
            f.push(i);
        }
        f.unlink(2);
        assert_eq!(f.order(), [4, 3, 1, 0]);
        f.unlink(4);
        assert_eq!(f.order(), [3, 1, 0]);
        f.unlink(0);
        assert_eq!(f.order(), [3, 1]);
        assert!(!f.contains(0) && !f.contains(2) && !f.contains(4));
        f.push(2);
        assert_eq!(f.order(), [2, 3, 1]);
    }

    #[test]
    fn touch_moves_to_the_head() {
        let mut f = Fixture::new(4);
        for i in 0..4 {
            f.push(i);
        }
        f.touch(0);
        assert_eq!(f.order(), [0, 3, 2, 1]);
        f.touch(2);
        assert_eq!(f.order(), [2, 0, 3, 1]);
        f.touch(2);
        assert_eq!(f.order(), [2, 0, 3, 1]);
        f.touch(1);
        assert_eq!(f.order(), [1, 2, 0, 3]);
        assert_eq!(f.walk_from_tail(), [3, 0, 2, 1]);
        assert_eq!(f.list.len(), 4);
    }

    /// An eviction walk reads the next index before it unlinks the current one.
    #[test]
    fn walk_from_the_tail_while_unlinking() {
        let mut f = Fixture::new(6);
        for i in 0..6 {
            f.push(i);
        }
        let mut evicted = Vec::new();
        let mut c = f.list.tail();
        while let Some(i) = c {
            c = f.list.newer(&f.nodes, i);
            if i % 2 == 0 {
                f.unlink(i);
                evicted.push(i);
            }
        }
        assert_eq!(evicted, [0, 2, 4]);
        assert_eq!(f.order(), [5, 3, 1]);
    }

    #[test]
    fn check_finds_broken_links() {
        let mut f = Fixture::new(4);
        for i in 0..3 {
            f.push(i);
        }
        let broken = |edit: &dyn Fn(&mut MruList, &mut Vec<Links>)| {
            let (mut list, mut nodes) = (f.list.clone(), f.nodes.clone());
            edit(&mut list, &mut nodes);
            list.check(&nodes).is_err()
        };
        assert!(broken(&|_, n| n[0].older = 2));
        assert!(broken(&|_, n| n[1].newer = 0));
        assert!(broken(&|l, _| l.len = 2));
        assert!(broken(&|l, _| l.tail = 1));
        assert!(broken(&|_, n| n[3] = Links { newer: 1, older: 0 }));
        assert!(broken(&|_, n| n.truncate(2)));
        assert!(!broken(&|_, _| ()));
    }
}
