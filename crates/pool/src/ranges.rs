//! Sets of byte ranges as sorted, disjoint `Vec<Range<u64>>`: the zeroed
//! space of the deferred zeroing policy, in the simulator's model
//! (`zeroing`) and in the firmware's allocation bench alike.

use alloc::vec::Vec;
use core::ops::Range;

/// Removes `cut` from the sorted, disjoint `ranges`.
pub fn subtract(ranges: &mut Vec<Range<u64>>, cut: &Range<u64>) {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for r in ranges.drain(..) {
        if r.end <= cut.start || r.start >= cut.end {
            out.push(r);
            continue;
        }
        if r.start < cut.start {
            out.push(r.start..cut.start);
        }
        if cut.end < r.end {
            out.push(cut.end..r.end);
        }
    }
    *ranges = out;
}

/// Adds `add` to the sorted, disjoint `ranges`, merging the ranges it touches.
pub fn insert(ranges: &mut Vec<Range<u64>>, add: Range<u64>) {
    let at = ranges.partition_point(|r| r.end < add.start);
    let mut merged = add;
    while at < ranges.len() && ranges[at].start <= merged.end {
        let r = ranges.remove(at);
        merged = r.start.min(merged.start)..r.end.max(merged.end);
    }
    ranges.insert(at, merged);
}

/// The parts of `want` that the sorted, disjoint `ranges` do not cover.
pub fn gaps(ranges: &[Range<u64>], want: &Range<u64>) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut at = want.start;
    for r in ranges
        .iter()
        .filter(|r| r.end > want.start && r.start < want.end)
    {
        if r.start > at {
            out.push(at..r.start);
        }
        at = at.max(r.end);
    }
    if at < want.end {
        out.push(at..want.end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    #[test]
    fn ranges_merge_split_and_gap() {
        let mut r = Vec::new();
        insert(&mut r, 0..10);
        insert(&mut r, 20..30);
        insert(&mut r, 10..20);
        assert_eq!((r.len(), r[0].clone()), (1, 0..30));
        subtract(&mut r, &(5..8));
        assert_eq!(r, [0..5, 8..30]);
        let g = gaps(&r, &(3..12));
        assert_eq!((g.len(), g[0].clone()), (1, 5..8));
        assert!(gaps(&r, &(10..30)).is_empty());
    }

    proptest! {
        /// Against a set of bytes: inserts and cuts keep the list sorted,
        /// disjoint and non-touching, and gaps are exactly what is missing.
        #[test]
        fn match_a_set_of_bytes(ops in prop::collection::vec((any::<bool>(), 0u64..64, 1u64..16), 1..40)) {
            let mut r = Vec::new();
            let mut bytes = vec![false; 80];
            for (add, start, len) in ops {
                let range = start..start + len;
                if add {
                    insert(&mut r, range.clone());
                } else {
                    subtract(&mut r, &range);
                }
                range.for_each(|b| bytes[b as usize] = add);
                prop_assert!(r.windows(2).all(|w| w[0].end < w[1].start), "{:?}", r);
                prop_assert!(r.iter().all(|x| x.start < x.end));
                let covered: Vec<bool> = (0..80).map(|b| r.iter().any(|x| x.contains(&b))).collect();
                prop_assert_eq!(&covered, &bytes);
                let missing: Vec<u64> = gaps(&r, &(10..70)).into_iter().flatten().collect();
                let want: Vec<u64> = (10..70).filter(|&b| !bytes[b as usize]).collect();
                prop_assert_eq!(missing, want);
            }
        }
    }
}
