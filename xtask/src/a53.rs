//! The check that the firmware is built around Cortex-A53 erratum 835769
//! (the BCM2837 is r0p4): a 64-bit multiply-accumulate right after a load,
//! store or prefetch can give a wrong result. LLVM's fix (the AArch64
//! subtarget feature `fix-cortex-a53-835769`, `.cargo/config.toml`) puts a
//! `nop` between such pairs. This decodes the firmware ELF's `.text` and
//! finds any pair left, as LLVM's pass defines them
//! (`AArch64A53Fix835769.cpp`): the first instruction any load or store
//! (prefetches included), the second MADD, MSUB, SMADDL, SMSUBL, UMADDL or
//! UMSUBL with a 64-bit destination and an accumulator other than XZR (a
//! plain MUL is MADD with XZR, which the erratum does not affect).
//! `cargo xtask build` fails when one is found.

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionIndex};

/// Whether `insn` is in the loads-and-stores encoding group (op0 =
/// x1x0 in bits 28:25: every load, store and prefetch, scalar and SIMD,
/// literal, pair, exclusive and atomic).
pub fn is_load_store(insn: u32) -> bool {
    (insn >> 25) & 0b0101 == 0b0100
}

/// Whether `insn` is a 64-bit multiply-accumulate the erratum affects.
pub fn is_mac64(insn: u32) -> bool {
    // Data-processing (3 source): sf op54 11011 op31 Rm o0 Ra Rn Rd.
    if (insn >> 24) & 0x1f != 0b11011 || (insn >> 29) & 0b11 != 0 {
        return false;
    }
    let sf = insn >> 31;
    let op31 = (insn >> 21) & 0b111;
    let ra = (insn >> 10) & 0x1f;
    // op31 000: MADD/MSUB (64-bit only with sf); 001: SMADDL/SMSUBL; 101:
    // UMADDL/UMSUBL (both always with a 64-bit destination, sf = 1).
    sf == 1 && matches!(op31, 0b000 | 0b001 | 0b101) && ra != 31
}

/// One pair the erratum could bite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Address of the multiply-accumulate.
    pub address: u64,
    pub load_store: u32,
    pub mac: u32,
    /// The function it is in, if a symbol covers it.
    pub function: Option<String>,
}

/// What the scan saw.
#[derive(Debug)]
pub struct Scan {
    pub instructions: usize,
    pub pairs: Vec<Pair>,
}

/// The pairs in a run of instruction words starting at `address`.
pub fn pairs_in(words: &[u32], address: u64) -> Vec<(u64, u32, u32)> {
    words
        .windows(2)
        .enumerate()
        .filter(|(_, w)| is_load_store(w[0]) && is_mac64(w[1]))
        .map(|(i, w)| (address + 4 * (i as u64 + 1), w[0], w[1]))
        .collect()
}

/// Scans the code of `.text` in `elf` (data inside it, marked by `$d`
/// mapping symbols, is skipped).
pub fn scan(elf: &[u8]) -> Result<Scan> {
    let file = object::File::parse(elf).context("the firmware ELF does not parse")?;
    let text = file
        .section_by_name(".text")
        .context("the firmware ELF has no .text")?;
    let data = text.data().context("reading .text")?;
    let base = text.address();
    let end = base + data.len() as u64;
    let ranges = code_ranges(&file, text.index(), base, end);
    let mut instructions = 0;
    let mut pairs = Vec::new();
    for (start, stop) in ranges {
        let bytes = &data[(start - base) as usize..(stop - base) as usize];
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        instructions += words.len();
        for (address, load_store, mac) in pairs_in(&words, start) {
            pairs.push(Pair {
                address,
                load_store,
                mac,
                function: function_at(&file, address),
            });
        }
    }
    Ok(Scan {
        instructions,
        pairs,
    })
}

/// The code ranges of the section: from each `$x` to the next mapping
/// symbol; the whole section when it has none.
fn code_ranges(
    file: &object::File<'_>,
    index: SectionIndex,
    base: u64,
    end: u64,
) -> Vec<(u64, u64)> {
    let mut marks: Vec<(u64, bool)> = file
        .symbols()
        .filter(|s| s.section_index() == Some(index))
        .filter_map(|s| match s.name() {
            Ok(n) if n == "$x" || n.starts_with("$x.") => Some((s.address(), true)),
            Ok(n) if n == "$d" || n.starts_with("$d.") => Some((s.address(), false)),
            _ => None,
        })
        .collect();
    if marks.is_empty() {
        return vec![(base, end)];
    }
    marks.sort_unstable();
    let mut ranges = Vec::new();
    for (i, &(at, code)) in marks.iter().enumerate() {
        let next = marks.get(i + 1).map_or(end, |m| m.0);
        if code && next > at {
            // Instructions are 4-byte aligned.
            ranges.push((at & !3, next & !3));
        }
    }
    ranges
}

fn function_at(file: &object::File<'_>, address: u64) -> Option<String> {
    file.symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 0)
        .find(|s| s.address() <= address && address < s.address() + s.size())
        .and_then(|s| s.name().ok().map(str::to_string))
}

/// Fails when the firmware has a pair left, naming the first few.
pub fn check(elf: &[u8]) -> Result<Scan> {
    let scan = scan(elf)?;
    if !scan.pairs.is_empty() {
        let first: Vec<String> = scan
            .pairs
            .iter()
            .take(5)
            .map(|p| {
                format!(
                    "{:#x} ({:08x} then {:08x}) in {}",
                    p.address,
                    p.load_store,
                    p.mac,
                    p.function.as_deref().unwrap_or("?")
                )
            })
            .collect();
        anyhow::bail!(
            "the firmware has {} load/store + 64-bit multiply-accumulate pairs (Cortex-A53 erratum 835769): \
             is `-C target-feature=+fix-cortex-a53-835769` in effect (.cargo/config.toml, RUSTFLAGS)? first: {}",
            scan.pairs.len(),
            first.join("; ")
        );
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Encodings checked against the Arm ARM (and llvm-objdump).
    const LDR_X: u32 = 0xf940_3288; // ldr x8, [x20, #96]
    const LDR_W: u32 = 0xb940_0aab; // ldr w11, [x21, #8]
    const LDR_Q: u32 = 0x3dc0_03e0; // ldr q0, [sp]
    const STP_X: u32 = 0xa911_5fe8; // stp x8, x23, [sp, #272]
    const PRFM: u32 = 0xf980_0020; // prfm pldl1keep, [x1]
    const LDADD: u32 = 0xf820_0041; // ldadd x0, x1, [x2]
    const UMADDL: u32 = 0x9bb9_2048; // umaddl x8, w2, w25, x8
    const MADD_X: u32 = 0x9b02_0c20; // madd x0, x1, x2, x3
    const MSUB_X: u32 = 0x9b02_8c20; // msub x0, x1, x2, x3
    const SMADDL: u32 = 0x9b22_0c20; // smaddl x0, w1, w2, x3
    const MUL_X: u32 = 0x9b02_7c20; // mul x0, x1, x2 (madd with xzr)
    const MADD_W: u32 = 0x1b02_0c20; // madd w0, w1, w2, w3
    const SMULH: u32 = 0x9b42_7c20; // smulh x0, x1, x2
    const ADD_X: u32 = 0x8b02_0020; // add x0, x1, x2
    const NOP: u32 = 0xd503_201f;

    #[test]
    fn loads_and_stores_are_recognised() {
        for insn in [LDR_X, LDR_W, LDR_Q, STP_X, PRFM, LDADD] {
            assert!(is_load_store(insn), "{insn:08x}");
        }
        for insn in [UMADDL, MADD_X, ADD_X, NOP] {
            assert!(!is_load_store(insn), "{insn:08x}");
        }
    }

    #[test]
    fn only_64_bit_accumulating_multiplies_count() {
        for insn in [UMADDL, MADD_X, MSUB_X, SMADDL] {
            assert!(is_mac64(insn), "{insn:08x}");
        }
        for insn in [MUL_X, MADD_W, SMULH, ADD_X, LDR_X, NOP] {
            assert!(!is_mac64(insn), "{insn:08x}");
        }
    }

    #[test]
    fn pairs_are_adjacent_and_a_nop_breaks_them() {
        let code = [
            LDR_X, UMADDL, NOP, LDR_W, NOP, MADD_X, STP_X, MUL_X, LDR_Q, MSUB_X,
        ];
        let found = pairs_in(&code, 0x80000);
        assert_eq!(
            found,
            vec![(0x80004, LDR_X, UMADDL), (0x80024, LDR_Q, MSUB_X)]
        );
    }
}
