//! Move latency statistics in bounded memory (the firmware's movers use this
//! too, so it allocates once and never grows with the number of moves).
//!
//! Percentiles come from a log-linear histogram: values below 32 ns are
//! exact, larger ones fall into buckets 1/32 of a power of two wide, so a
//! reported percentile is within about 3 % of the true one (it is the upper
//! edge of its bucket, clamped to the maximum seen). The maximum is exact.

use alloc::vec;
use alloc::vec::Vec;
use records::{Latency, MoveSample, SizeClassLatency};

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Inclusive upper bounds of the size classes; the last class takes the rest.
pub const SIZE_CLASSES: [u64; 5] = [4 << 10, 64 << 10, 1 << 20, 8 << 20, u64::MAX];

/// Default bound on the move samples kept for the latency chart.
pub const DEFAULT_SAMPLES: usize = 2000;

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = e - SUB_BITS;
    let mantissa = (v >> shift) & (SUB - 1);
    ((shift as u64 + 1) * SUB + mantissa) as usize
}

/// Largest value that falls in bucket `b`.
fn bucket_top(b: usize) -> u64 {
    let b = b as u64;
    if b < SUB {
        return b;
    }
    let shift = b / SUB - 1;
    let mantissa = b % SUB;
    let low = (SUB + mantissa) << shift;
    low + ((1u64 << shift) - 1)
}

#[derive(Clone, Debug)]
struct Histogram {
    counts: Vec<u32>,
    n: u64,
    bytes: u64,
    max: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            n: 0,
            bytes: 0,
            max: 0,
        }
    }

    fn add(&mut self, bytes: u64, ns: u64) {
        self.counts[bucket(ns)] += 1;
        self.n += 1;
        self.bytes += bytes;
        self.max = self.max.max(ns);
    }

    fn quantile(&self, q_num: u64, q_den: u64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        // Rank of the quantile, 1-based, rounded up.
        let rank = (self.n * q_num).div_ceil(q_den).max(1);
        let mut seen = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen >= rank {
                return bucket_top(b).min(self.max);
            }
        }
        self.max
    }

    fn latency(&self) -> Latency {
        Latency {
            p50: self.quantile(50, 100),
            p99: self.quantile(99, 100),
            max: self.max,
        }
    }
}

/// The summary of a set of moves.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencySummary {
    pub latency: Latency,
    pub by_size: Vec<SizeClassLatency>,
    /// Bytes per second over the summed latencies (0 when nothing moved).
    pub throughput_bytes_per_s: u64,
    pub moves: u64,
    pub bytes: u64,
    pub total_ns: u64,
    /// An evenly spread selection of the moves, in order, at most the bound given.
    pub samples: Vec<MoveSample>,
}

/// Records move latencies: percentiles overall and per size class,
/// throughput, and a bounded, evenly spread sample.
#[derive(Clone, Debug)]
pub struct LatencyRecorder {
    all: Histogram,
    classes: Vec<Histogram>,
    total_ns: u64,
    samples: Vec<MoveSample>,
    max_samples: usize,
    /// Keep every `stride`-th move; doubled (and the kept ones halved) when full.
    stride: u64,
    seen: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new(DEFAULT_SAMPLES)
    }
}

impl LatencyRecorder {
    /// A recorder keeping at most `max_samples` (>= 2) move samples.
    pub fn new(max_samples: usize) -> Self {
        let max_samples = max_samples.max(2);
        LatencyRecorder {
            all: Histogram::new(),
            classes: SIZE_CLASSES.iter().map(|_| Histogram::new()).collect(),
            total_ns: 0,
            samples: Vec::with_capacity(max_samples),
            max_samples,
            stride: 1,
            seen: 0,
        }
    }

    /// One move of `bytes` bytes took `latency_ns`.
    pub fn record(&mut self, bytes: u64, latency_ns: u64) {
        self.all.add(bytes, latency_ns);
        let class = SIZE_CLASSES
            .iter()
            .position(|&m| bytes <= m)
            .unwrap_or(SIZE_CLASSES.len() - 1);
        self.classes[class].add(bytes, latency_ns);
        self.total_ns += latency_ns;
        if self.seen.is_multiple_of(self.stride) {
            if self.samples.len() == self.max_samples {
                // Keep every other one: still evenly spread, at twice the stride.
                let mut k = 0;
                self.samples.retain(|_| {
                    k += 1;
                    k % 2 == 1
                });
                self.stride *= 2;
            }
            if self.seen.is_multiple_of(self.stride) {
                self.samples.push(MoveSample { bytes, latency_ns });
            }
        }
        self.seen += 1;
    }

    /// Moves recorded.
    pub fn moves(&self) -> u64 {
        self.all.n
    }

    /// The summary (the recorder may keep recording after).
    pub fn finish(&self) -> LatencySummary {
        let by_size = SIZE_CLASSES
            .iter()
            .zip(&self.classes)
            .filter(|(_, h)| h.n > 0)
            .map(|(&max_bytes, h)| SizeClassLatency {
                max_bytes,
                moves: h.n,
                bytes: h.bytes,
                latency_ns: h.latency(),
            })
            .collect();
        let throughput = if self.total_ns == 0 {
            0
        } else {
            (self.all.bytes as u128 * 1_000_000_000 / self.total_ns as u128).min(u64::MAX as u128)
                as u64
        };
        LatencySummary {
            latency: self.all.latency(),
            by_size,
            throughput_bytes_per_s: throughput,
            moves: self.all.n,
            bytes: self.all.bytes,
            total_ns: self.total_ns,
            samples: self.samples.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 40, u64::MAX / 2, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= last || v >= 100_000);
            last = b;
            let top = bucket_top(b);
            assert!(top >= v, "top {top} < {v}");
            assert!(top - v <= v / 32 + 1, "bucket of {v} too wide: {top}");
        }
        assert!(bucket(u64::MAX) < BUCKETS);
    }

    #[test]
    fn percentiles_of_a_known_set() {
        let mut r = LatencyRecorder::new(100);
        for v in 1..=1000u64 {
            r.record(4096, v * 1000);
        }
        let s = r.finish();
        assert_eq!(s.latency.max, 1_000_000);
        let p50 = s.latency.p50 as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.035, "{p50}");
        let p99 = s.latency.p99 as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.035, "{p99}");
        assert_eq!(s.by_size.len(), 1);
        assert_eq!(s.by_size[0].max_bytes, 4096);
        assert_eq!(s.moves, 1000);
        assert!(s.samples.len() <= 100 && s.samples.len() >= 50);
        // Evenly spread: consecutive kept samples are one stride apart.
        let gaps: Vec<u64> = s
            .samples
            .windows(2)
            .map(|w| w[1].latency_ns - w[0].latency_ns)
            .collect();
        assert!(gaps.windows(2).all(|g| g[0] == g[1]), "{gaps:?}");
        assert_eq!(
            s.throughput_bytes_per_s,
            (4096u128 * 1000 * 1_000_000_000 / (500_500u128 * 1000)) as u64
        );
    }

    #[test]
    fn size_classes_split() {
        let mut r = LatencyRecorder::default();
        r.record(4096, 10);
        r.record(4097, 20);
        r.record(100 << 20, 30);
        let s = r.finish();
        let classes: Vec<(u64, u64)> = s.by_size.iter().map(|c| (c.max_bytes, c.moves)).collect();
        assert_eq!(classes, vec![(4096, 1), (64 << 10, 1), (u64::MAX, 1)]);
    }

    #[test]
    fn empty_is_zero() {
        let s = LatencyRecorder::default().finish();
        assert_eq!(s.latency, Latency::default());
        assert_eq!(s.throughput_bytes_per_s, 0);
        assert!(s.samples.is_empty());
    }
}
