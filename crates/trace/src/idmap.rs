//! A small open-addressing hash map keyed by `u64`, usable without `std`.
//!
//! The parser does one lookup per event, so this sits on the hot path: linear
//! probing over a power-of-two table with Fibonacci hashing keeps sequential
//! kernel addresses (the usual shape of vc4 ids) and random ids equally well
//! spread, and needs neither `std`'s `HashMap` nor a hashing crate.

use alloc::vec::Vec;

#[derive(Clone)]
pub(crate) struct IdMap<V: Copy> {
    slots: Vec<Option<(u64, V)>>,
    len: usize,
    /// `64 - log2(capacity)`: the shift that maps a hash to a slot.
    shift: u32,
}

impl<V: Copy> IdMap<V> {
    pub(crate) fn new() -> Self {
        Self::with_capacity_log2(6)
    }

    fn with_capacity_log2(bits: u32) -> Self {
        let mut slots = Vec::new();
        slots.resize(1usize << bits, None);
        IdMap {
            slots,
            len: 0,
            shift: 64 - bits,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The slot holding `key`, or the empty slot where it would go.
    #[inline]
    fn find(&self, key: u64) -> (usize, bool) {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            match &self.slots[i] {
                None => return (i, false),
                Some((k, _)) if *k == key => return (i, true),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<V> {
        match self.find(key) {
            (i, true) => self.slots[i].map(|(_, v)| v),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        match self.find(key) {
            (i, true) => self.slots[i].as_mut().map(|(_, v)| v),
            _ => None,
        }
    }

    /// Inserts or replaces; returns the previous value.
    pub(crate) fn insert(&mut self, key: u64, value: V) -> Option<V> {
        // Keep the load factor at or below 1/2 so probe runs stay short.
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let (i, found) = self.find(key);
        let old = self.slots[i].replace((key, value));
        if !found {
            self.len += 1;
        }
        old.map(|(_, v)| v)
    }

    /// Removes `key` by backward-shift deletion, so no tombstones build up
    /// and lookups stay as fast after a million destroys as before.
    pub(crate) fn remove(&mut self, key: u64) -> Option<V> {
        let (mut hole, found) = self.find(key);
        if !found {
            return None;
        }
        let removed = self.slots[hole].take().map(|(_, v)| v);
        self.len -= 1;
        let mask = self.mask();
        let mut i = (hole + 1) & mask;
        while let Some((k, _)) = self.slots[i] {
            let home = self.home(k);
            // Move the entry back into the hole unless its home lies
            // cyclically in (hole, i], where the hole would not be on its path.
            let dist_home = i.wrapping_sub(home) & mask;
            let dist_hole = i.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                self.slots[hole] = self.slots[i].take();
                hole = i;
            }
            i = (i + 1) & mask;
        }
        removed
    }

    /// Keeps only the entries for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u64, V) -> bool) {
        let bits = 64 - self.shift;
        let old = core::mem::replace(self, Self::with_capacity_log2(bits));
        for (k, v) in old.slots.into_iter().flatten() {
            if keep(k, v) {
                self.insert(k, v);
            }
        }
    }

    fn grow(&mut self) {
        let bits = 64 - self.shift + 1;
        let old = core::mem::replace(self, Self::with_capacity_log2(bits));
        for (k, v) in old.slots.into_iter().flatten() {
            let (i, _) = self.find(k);
            self.slots[i] = Some((k, v));
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #[test]
        fn behaves_like_hashmap(ops in proptest::collection::vec((0u8..3, 0u64..64, any::<u32>()), 0..400)) {
            let mut ours = IdMap::new();
            let mut reference = HashMap::new();
            for (op, key, value) in ops {
                // Spread keys so they collide in the small table as well as differ.
                let key = key.wrapping_mul(0x1000_0000_0000_0001) ^ (key << 7);
                match op {
                    0 => prop_assert_eq!(ours.insert(key, value), reference.insert(key, value)),
                    1 => prop_assert_eq!(ours.remove(key), reference.remove(&key)),
                    _ => prop_assert_eq!(ours.get(key), reference.get(&key).copied()),
                }
                prop_assert_eq!(ours.len(), reference.len());
            }
            for (k, v) in &reference {
                prop_assert_eq!(ours.get(*k), Some(*v));
            }
        }
    }

    #[test]
    fn retain_keeps_matching_entries() {
        let mut map = IdMap::new();
        for k in 0..1000u64 {
            map.insert(k, k % 3 == 0);
        }
        map.retain(|_, v| v);
        assert_eq!(map.len(), 334);
        assert_eq!(map.get(3), Some(true));
        assert_eq!(map.get(4), None);
    }
}
