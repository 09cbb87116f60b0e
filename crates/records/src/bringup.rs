//! The bring-up check (`cargo xtask sdcard --mode bringup`, and the
//! `bringup` target test under QEMU): what a new board is measured with
//! before any replay is trusted. The firmware streams [`BringupItem`]s; the
//! [`Bringup`] they fold into is rendered as one table by the report crate.

use crate::conditions::Calibration;
use crate::{Platform, Source};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Where a measured copy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyRoute {
    /// Cacheable heap (overflow) to the non-cacheable pool: a page-in.
    HeapToPool,
    /// Pool to heap: a page-out.
    PoolToHeap,
    /// Pool to pool: a compaction move.
    PoolToPool,
}

impl CopyRoute {
    pub const ALL: [CopyRoute; 3] = [
        CopyRoute::HeapToPool,
        CopyRoute::PoolToHeap,
        CopyRoute::PoolToPool,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CopyRoute::HeapToPool => "heap -> pool",
            CopyRoute::PoolToHeap => "pool -> heap",
            CopyRoute::PoolToPool => "pool -> pool",
        }
    }
}

/// What copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyEngine {
    /// A full DMA channel (0-6, 15).
    DmaFull,
    /// A lite DMA channel (7-14).
    DmaLite,
    /// The CPU.
    Cpu,
}

impl CopyEngine {
    pub const ALL: [CopyEngine; 3] = [CopyEngine::DmaFull, CopyEngine::DmaLite, CopyEngine::Cpu];

    pub fn label(self) -> &'static str {
        match self {
            CopyEngine::DmaFull => "DMA, full channel",
            CopyEngine::DmaLite => "DMA, lite channel",
            CopyEngine::Cpu => "CPU",
        }
    }
}

/// One measured copy size on one route by one engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyThroughput {
    pub engine: CopyEngine,
    /// The routine in words, e.g. "channel 4, 128-bit, bursts of 2".
    pub routine: String,
    pub route: CopyRoute,
    pub bytes: u64,
    /// The fastest of `repeats` copies, cache maintenance of the heap side
    /// included for DMA (as the DMA mover does it).
    pub best_ns: u64,
    pub repeats: u32,
    /// Every copy was checked word by word and was exact.
    pub correct: bool,
}

impl CopyThroughput {
    /// Bytes per second of the fastest copy (`None` when it took no time).
    pub fn bytes_per_s(&self) -> Option<u64> {
        (self.best_ns > 0)
            .then(|| (u128::from(self.bytes) * 1_000_000_000 / u128::from(self.best_ns)) as u64)
    }
}

/// One pass of the cache-coherency probe: a pattern written through the
/// cacheable heap (over an older pattern already in memory), copied to the
/// pool by the DMA engine, with or without cleaning the heap first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoherencyProbe {
    /// The heap was cleaned (`dc civac`) before the transfer.
    pub cleaned: bool,
    pub words: u64,
    /// Words of the pool that hold the older pattern after the transfer:
    /// the engine read memory the CPU's dirty cache lines had not reached.
    pub stale_words: u64,
    /// Words that hold neither pattern (must be 0).
    pub wrong_words: u64,
}

/// One record of the bring-up check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BringupItem {
    Coherency(CoherencyProbe),
    Copy(CopyThroughput),
    /// The PMU cycle counter against CNTPCT_EL0 over the bring-up's interval.
    Calibration(Calibration),
    /// Something a reader must know (a channel that could not be measured).
    Note(String),
}

/// The bring-up check as a whole.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Bringup {
    pub coherency: Vec<CoherencyProbe>,
    pub copies: Vec<CopyThroughput>,
    pub calibration: Option<Calibration>,
    pub notes: Vec<String>,
}

impl Bringup {
    /// Takes one record.
    pub fn push(&mut self, item: BringupItem) {
        match item {
            BringupItem::Coherency(p) => self.coherency.push(p),
            BringupItem::Copy(c) => self.copies.push(c),
            BringupItem::Calibration(c) => self.calibration = Some(c),
            BringupItem::Note(n) => self.notes.push(n),
        }
    }

    /// The probe's verdict for where it ran: `(as expected, in words)`. On
    /// silicon the uncleaned transfer must show stale words (else the probe
    /// did not exercise the cache and proves nothing) and the cleaned one
    /// none; under QEMU, which models no caches, neither shows any.
    pub fn coherency_verdict(&self, emulated: bool) -> (bool, String) {
        let find = |cleaned: bool| self.coherency.iter().find(|p| p.cleaned == cleaned);
        let (Some(dirty), Some(clean)) = (find(false), find(true)) else {
            return (false, String::from("the probe did not run both passes"));
        };
        let seen = dirty.stale_words > 0;
        let wrong = dirty.wrong_words + clean.wrong_words;
        let stale = format!(
            "without the clean {} of {} words stale, with it {}",
            dirty.stale_words, dirty.words, clean.stale_words
        );
        let (ok, what) = match (emulated, seen) {
            (true, false) => (
                true,
                "QEMU: the stale case is not seen, as expected (QEMU models no caches)",
            ),
            (true, true) => (
                false,
                "QEMU: stale words although QEMU models no caches (a bug in the probe)",
            ),
            (false, true) => (
                true,
                "silicon: the stale case is seen, so the clean before a DMA read is needed and works",
            ),
            (false, false) => (
                false,
                "silicon: the stale case was NOT seen: the probe did not exercise the cache, so it proves nothing",
            ),
        };
        let ok = ok && clean.stale_words == 0 && wrong == 0;
        let mut text = format!("{what}; {stale}");
        if clean.stale_words > 0 {
            text.push_str("; stale words even after the clean: cache maintenance is broken");
        }
        if wrong > 0 {
            text.push_str(&format!("; {wrong} words hold neither pattern"));
        }
        (ok, text)
    }
}

/// What the bring-up check writes to `bringup.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BringupReport {
    pub source: Source,
    pub platform: Option<Platform>,
    pub bringup: Bringup,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(cleaned: bool, stale: u64) -> BringupItem {
        BringupItem::Coherency(CoherencyProbe {
            cleaned,
            words: 16384,
            stale_words: stale,
            wrong_words: 0,
        })
    }

    fn with(items: [BringupItem; 2]) -> Bringup {
        let mut b = Bringup::default();
        items.into_iter().for_each(|i| b.push(i));
        b
    }

    #[test]
    fn the_probe_must_see_the_stale_case_on_silicon_only() {
        let silicon_ok = with([probe(false, 900), probe(true, 0)]);
        assert!(silicon_ok.coherency_verdict(false).0);
        assert!(!silicon_ok.coherency_verdict(true).0, "QEMU has no caches");
        let nothing_seen = with([probe(false, 0), probe(true, 0)]);
        assert!(nothing_seen.coherency_verdict(true).0);
        let (ok, text) = nothing_seen.coherency_verdict(false);
        assert!(!ok && text.contains("NOT seen"), "{text}");
        let clean_broken = with([probe(false, 900), probe(true, 3)]);
        assert!(!clean_broken.coherency_verdict(false).0);
        assert!(!Bringup::default().coherency_verdict(true).0);
    }

    #[test]
    fn throughput_of_the_fastest_copy() {
        let c = CopyThroughput {
            engine: CopyEngine::Cpu,
            routine: "x".into(),
            route: CopyRoute::PoolToPool,
            bytes: 1 << 20,
            best_ns: 1_000_000,
            repeats: 3,
            correct: true,
        };
        assert_eq!(c.bytes_per_s(), Some(1_048_576_000));
        assert_eq!(CopyThroughput { best_ns: 0, ..c }.bytes_per_s(), None);
    }
}
