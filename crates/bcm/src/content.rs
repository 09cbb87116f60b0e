//! What the movers write into a buffer and check after every move.
//!
//! A buffer's content is derived from (run salt, buffer, generation), so
//! stale data of another buffer, generation or run never passes for the
//! right one. In [`VerifyMode::Pages`] one 8-byte stamp at the start of
//! every 4 KiB page is written and checked; in [`VerifyMode::Full`] every
//! 8-byte word is. The functions here compute the values and compare them;
//! the firmware's movers do the reads and writes on real memory.

use core::ops::Range;

/// Granule of moves, backing allocations and stamps. It must equal the
/// pool's placement alignment in the replay, so that the tail of a buffer's
/// last page is its own.
pub const PAGE: usize = 4096;

/// Stamp written over pool pages a move vacated, so that a later copy that
/// silently does nothing is caught: no buffer's content is this value
/// except by a 2^-64 chance.
pub const POISON: u64 = 0xDEAD_DEAD_DEAD_DEAD;

/// How much of each page is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    /// One 8-byte stamp per 4 KiB page.
    Pages,
    /// Every 8-byte word.
    Full,
}

impl VerifyMode {
    /// The mode a build setting names: `full`, or anything else (or nothing)
    /// for [`VerifyMode::Pages`].
    pub const fn from_setting(setting: Option<&str>) -> Self {
        match setting {
            Some(v) if eq(v.as_bytes(), b"full") => VerifyMode::Full,
            _ => VerifyMode::Pages,
        }
    }

    /// The name used in logs and in `--verify`.
    pub const fn name(self) -> &'static str {
        match self {
            VerifyMode::Pages => "pages",
            VerifyMode::Full => "full",
        }
    }

    /// Stamped 8-byte words per page.
    pub const fn words_per_page(self) -> usize {
        match self {
            VerifyMode::Pages => 1,
            VerifyMode::Full => PAGE / 8,
        }
    }
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Bytes a move of a `size`-byte buffer covers: whole pages, at least one
/// (the pool gives even an empty buffer one unit).
pub fn span(size: u64) -> usize {
    (size as usize).div_ceil(PAGE).max(1) * PAGE
}

/// SplitMix64's finalizer: a cheap, well-mixed 64-bit hash.
pub const fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The content of every buffer of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Content {
    salt: u64,
    mode: VerifyMode,
}

/// A stamped word that did not hold its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The page of the buffer (0-based).
    pub page: u64,
    pub expected: u64,
    pub found: u64,
}

impl Content {
    /// The content of a run; `run_salt` (the run number, say) makes it
    /// differ from every other run's.
    pub const fn new(run_salt: u64, mode: VerifyMode) -> Self {
        Content {
            salt: mix(run_salt ^ 0x005E_ED0F_B00C),
            mode,
        }
    }

    pub const fn mode(&self) -> VerifyMode {
        self.mode
    }

    /// The value of stamped word `index` (in page mode, the page index) of
    /// (`buffer`, `generation`).
    pub const fn stamp(&self, buffer: u32, generation: u32, index: u64) -> u64 {
        let key = self.salt ^ ((buffer as u64) << 32 | generation as u64);
        mix(mix(key) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Byte offset of stamped word `index` in its buffer.
    const fn offset(&self, index: usize) -> usize {
        let per_page = self.mode.words_per_page();
        index / per_page * PAGE + index % per_page * 8
    }

    /// Every stamped word of a `len`-byte buffer (`len` a multiple of
    /// [`PAGE`]): (byte offset, value), in address order.
    pub fn words(
        &self,
        buffer: u32,
        generation: u32,
        len: usize,
    ) -> impl Iterator<Item = (usize, u64)> + '_ {
        let count = len / PAGE * self.mode.words_per_page();
        (0..count).map(move |i| (self.offset(i), self.stamp(buffer, generation, i as u64)))
    }

    /// The value of the first word of `page` of (`buffer`, `generation`).
    pub const fn first_word(&self, buffer: u32, generation: u32, page: u64) -> u64 {
        self.stamp(buffer, generation, page * self.mode.words_per_page() as u64)
    }

    /// Checks the stamped words of `page` of (`buffer`, `generation`);
    /// `read(offset)` returns the word at byte `offset` of the buffer.
    /// Returns the first word that differs.
    pub fn check_page(
        &self,
        buffer: u32,
        generation: u32,
        page: usize,
        mut read: impl FnMut(usize) -> u64,
    ) -> Option<Mismatch> {
        let per_page = self.mode.words_per_page();
        (page * per_page..(page + 1) * per_page).find_map(|i| {
            let expected = self.stamp(buffer, generation, i as u64);
            let found = read(self.offset(i));
            (found != expected).then_some(Mismatch {
                page: page as u64,
                expected,
                found,
            })
        })
    }
}

/// Byte offsets of the pages in `range` (relative to the same origin), for
/// poisoning a vacated range page by page.
pub fn pages(range: Range<usize>) -> impl Iterator<Item = usize> {
    range.step_by(PAGE)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// A buffer as words, written with `content`'s stamps.
    fn written(content: &Content, buffer: u32, generation: u32, len: usize) -> Vec<u64> {
        let mut mem = vec![0u64; len / 8];
        for (offset, value) in content.words(buffer, generation, len) {
            mem[offset / 8] = value;
        }
        mem
    }

    fn check_all(content: &Content, buffer: u32, generation: u32, mem: &[u64]) -> Vec<Mismatch> {
        (0..mem.len() * 8 / PAGE)
            .filter_map(|p| content.check_page(buffer, generation, p, |off| mem[off / 8]))
            .collect()
    }

    #[test]
    fn build_setting_names_the_mode() {
        assert_eq!(VerifyMode::from_setting(Some("full")), VerifyMode::Full);
        assert_eq!(VerifyMode::from_setting(Some("pages")), VerifyMode::Pages);
        assert_eq!(VerifyMode::from_setting(Some("ful")), VerifyMode::Pages);
        assert_eq!(VerifyMode::from_setting(None), VerifyMode::Pages);
        assert_eq!(VerifyMode::Full.name(), "full");
    }

    #[test]
    fn spans_are_whole_pages_and_never_empty() {
        assert_eq!(span(0), PAGE);
        assert_eq!(span(1), PAGE);
        assert_eq!(span(4096), PAGE);
        assert_eq!(span(4097), 2 * PAGE);
    }

    #[test]
    fn page_mode_stamps_the_first_word_of_each_page() {
        let c = Content::new(3, VerifyMode::Pages);
        let words: Vec<_> = c.words(7, 1, 3 * PAGE).collect();
        assert_eq!(words.len(), 3);
        for (page, &(offset, value)) in words.iter().enumerate() {
            assert_eq!(offset, page * PAGE);
            assert_eq!(value, c.first_word(7, 1, page as u64));
        }
    }

    #[test]
    fn full_mode_stamps_every_word() {
        let c = Content::new(3, VerifyMode::Full);
        let words: Vec<_> = c.words(7, 1, 2 * PAGE).collect();
        assert_eq!(words.len(), 2 * PAGE / 8);
        assert!(words.iter().enumerate().all(|(i, &(off, _))| off == i * 8));
        assert_eq!(words[PAGE / 8].1, c.first_word(7, 1, 1));
    }

    #[test]
    fn a_flipped_bit_is_found_with_its_page_and_values() {
        for mode in [VerifyMode::Pages, VerifyMode::Full] {
            let c = Content::new(0xFA17, mode);
            let mut mem = written(&c, 7, 3, 16 * PAGE);
            assert!(check_all(&c, 7, 3, &mem).is_empty());
            let at = 5 * PAGE / 8;
            let expected = mem[at];
            mem[at] ^= 0x40 << 16;
            let found = check_all(&c, 7, 3, &mem);
            assert_eq!(
                found,
                [Mismatch {
                    page: 5,
                    expected,
                    found: expected ^ (0x40 << 16)
                }]
            );
        }
        // Only full mode sees a word inside a page.
        let c = Content::new(1, VerifyMode::Pages);
        let mut mem = written(&c, 1, 1, PAGE);
        mem[1] ^= 1;
        assert!(check_all(&c, 1, 1, &mem).is_empty());
    }

    #[test]
    fn poison_never_passes_for_content() {
        let c = Content::new(9, VerifyMode::Pages);
        let mem = vec![POISON; 4 * PAGE / 8];
        assert_eq!(check_all(&c, 2, 1, &mem).len(), 4);
        assert_eq!(
            pages(PAGE..4 * PAGE).collect::<Vec<_>>(),
            [PAGE, 2 * PAGE, 3 * PAGE]
        );
    }

    proptest! {
        #[test]
        fn stamps_differ_across_buffer_generation_and_salt(
            a in (any::<u64>(), any::<u32>(), any::<u32>()),
            b in (any::<u64>(), any::<u32>(), any::<u32>()),
            index in 0u64..1 << 20,
        ) {
            prop_assume!(a != b);
            let stamp = |(salt, buffer, generation): (u64, u32, u32)| {
                Content::new(salt, VerifyMode::Pages).stamp(buffer, generation, index)
            };
            prop_assert_ne!(stamp(a), stamp(b));
        }

        #[test]
        fn stale_content_never_verifies(
            salt in any::<u64>(), buffer in any::<u32>(), generation in any::<u32>(),
            pages in 1usize..8, full in any::<bool>(), which in 0u8..3,
        ) {
            let mode = if full { VerifyMode::Full } else { VerifyMode::Pages };
            let right = Content::new(salt, mode);
            let len = pages * PAGE;
            let mem = match which {
                0 => written(&Content::new(salt.wrapping_add(1), mode), buffer, generation, len),
                1 => written(&right, buffer.wrapping_add(1), generation, len),
                _ => written(&right, buffer, generation.wrapping_add(1), len),
            };
            prop_assert_eq!(check_all(&right, buffer, generation, &mem).len(), pages);
            let fresh = written(&right, buffer, generation, len);
            prop_assert!(check_all(&right, buffer, generation, &fresh).is_empty());
        }
    }
}
