//! The allocation bench (issue 13, `cargo xtask bench-alloc`, the
//! `alloc-bench` firmware mode): what one create + destroy through the pool
//! core costs at a given size, with the handed-out memory zeroed by nobody,
//! the CPU, the DMA engine, or the DMA engine in the background. The
//! firmware streams one [`AllocBenchRow`] per size, variant and background.

use alloc::string::String;
use serde::{Deserialize, Serialize};

/// Who zeroes the memory an allocation hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZeroVariant {
    /// Placement only: the pool core's own cost (what the vc4 pool does).
    None,
    /// A CPU store loop at allocation.
    Cpu,
    /// One DMA fill (TI.SRC_IGNORE) at allocation, waited for.
    Dma,
    /// Freed ranges are zeroed by the DMA engine in the background; an
    /// allocation in already-zeroed space does nothing more, otherwise it
    /// zeroes what it needs itself (a fallback).
    Deferred,
}

impl ZeroVariant {
    pub const ALL: [ZeroVariant; 4] = [
        ZeroVariant::None,
        ZeroVariant::Cpu,
        ZeroVariant::Dma,
        ZeroVariant::Deferred,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ZeroVariant::None => "none",
            ZeroVariant::Cpu => "cpu",
            ZeroVariant::Dma => "dma",
            ZeroVariant::Deferred => "deferred",
        }
    }

    /// The variant called `name` (as [`name`](Self::name) spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// What the pool holds while the bench runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Background {
    /// Nothing else is live.
    Empty,
    /// The embedded trace replayed up to its peak of live bytes.
    Fragmented,
}

impl Background {
    pub const ALL: [Background; 2] = [Background::Empty, Background::Fragmented];

    pub fn name(self) -> &'static str {
        match self {
            Background::Empty => "empty",
            Background::Fragmented => "fragmented",
        }
    }
}

/// Nanoseconds per call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsPerCall {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: u64,
}

impl NsPerCall {
    /// The statistics of `samples` (sorted in place); all zero when empty.
    /// Percentiles are nearest-rank.
    pub fn of(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return NsPerCall::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        let rank = |p: usize| samples[(n * p).div_ceil(100).clamp(1, n) - 1];
        NsPerCall {
            p50: rank(50),
            p99: rank(99),
            max: samples[n - 1],
            mean: (samples.iter().map(|&s| u128::from(s)).sum::<u128>() / n as u128) as u64,
        }
    }
}

/// One size, variant and background of the bench.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllocBenchRow {
    /// Bytes per allocation.
    pub size: u64,
    pub variant: ZeroVariant,
    pub background: Background,
    /// Timed create + destroy pairs.
    pub calls: u64,
    pub ns_per_call: NsPerCall,
    /// Allocations whose memory was found not zero (any fails the run).
    pub zero_failures: u64,
    /// Deferred: allocations that found no (or not enough) pre-zeroed space
    /// and zeroed it themselves. Zero for the other variants.
    pub fallbacks: u64,
    /// Deferred: allocations served entirely from pre-zeroed space.
    pub served_prezeroed: u64,
    /// Deferred: allocations that had to wait for the background fill.
    pub waited_for_fill: u64,
    /// Words read back per allocation: every word or a sample per page.
    pub verify_full: bool,
    /// Live buffers besides the bench's own while it ran.
    pub background_buffers: u64,
    /// The stopwatch that timed the calls, and its rate.
    pub timer: String,
    pub timer_hz: u64,
    /// Why the row has fewer calls than asked, or other remarks. (Always
    /// serialized: postcard, the wire format, cannot skip fields.)
    #[serde(default)]
    pub note: String,
}

impl AllocBenchRow {
    /// Why the row cannot be right, if it cannot.
    pub fn validate(&self) -> Result<(), &'static str> {
        let s = &self.ns_per_call;
        if self.size == 0 {
            return Err("an allocation of zero bytes");
        }
        if self.calls > 0 && !(s.p50 <= s.p99 && s.p99 <= s.max && s.mean <= s.max) {
            return Err("percentiles out of order");
        }
        if self.served_prezeroed + self.fallbacks > self.calls {
            return Err("more served or fallen back than calls");
        }
        if self.variant != ZeroVariant::Deferred && (self.fallbacks | self.served_prezeroed) != 0 {
            return Err("only the deferred variant falls back or serves pre-zeroed space");
        }
        Ok(())
    }
}

/// The published dmabuf-heap-bench figures quoted by issue 13 (x86 VM, 5000
/// allocations per size): (size, dmabuf system heap, ion system heap) in ns
/// per call.
pub const PUBLISHED: [(u64, u64, u64); 4] = [
    (4 << 10, 17_314, 19_488),
    (1 << 20, 39_327, 71_464),
    (8 << 20, 633_089, 739_918),
    (32 << 20, 2_665_480, 3_058_470),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: alloc::vec::Vec<u64> = (1..=100).rev().collect();
        let s = NsPerCall::of(&mut v);
        assert_eq!((s.p50, s.p99, s.max, s.mean), (50, 99, 100, 50));
        assert_eq!(NsPerCall::of(&mut []), NsPerCall::default());
        let s = NsPerCall::of(&mut [7]);
        assert_eq!((s.p50, s.p99, s.max, s.mean), (7, 7, 7, 7));
    }

    #[test]
    fn validation_refuses_what_cannot_be() {
        let mut row = AllocBenchRow {
            size: 4096,
            variant: ZeroVariant::Deferred,
            background: Background::Empty,
            calls: 10,
            ns_per_call: NsPerCall::of(&mut [1, 2, 3]),
            zero_failures: 0,
            fallbacks: 4,
            served_prezeroed: 6,
            waited_for_fill: 0,
            verify_full: false,
            background_buffers: 0,
            timer: "CNTPCT_EL0".into(),
            timer_hz: 62_500_000,
            note: String::new(),
        };
        assert_eq!(row.validate(), Ok(()));
        row.served_prezeroed = 7;
        assert!(row.validate().is_err());
        row.served_prezeroed = 6;
        row.variant = ZeroVariant::Cpu;
        assert!(row.validate().is_err());
        row.variant = ZeroVariant::Deferred;
        row.ns_per_call.p50 = 9;
        assert!(row.validate().is_err());
    }

    #[test]
    fn names_round_trip() {
        for v in ZeroVariant::ALL {
            assert_eq!(ZeroVariant::from_name(v.name()), Some(v));
        }
        assert_eq!(ZeroVariant::from_name("zva"), None);
    }
}
