//! The zeroing policy of a replay (issue 13, `cargo xtask sim --zero`): a
//! [`Mover`] wrapper that models what zeroing each allocation would cost
//! across a real trace, beside whatever the wrapped mover does.
//!
//! Every `Fill` into the pool (a created buffer, or a purged one coming
//! back) is fresh content and is zeroed per [`ZeroPolicy`]:
//! - `None`: nothing (what the vc4 pool does); the wrapper is transparent.
//! - `Cpu` / `Dma`: the zeroing is on the allocation path, at the
//!   [`ZeroCosts`] rate; its time is added to the run's stall time.
//! - `Deferred`: freed pool ranges are queued and zeroed by one modelled
//!   background engine on the trace's clock; a `Fill` lying wholly in
//!   ranges already zeroed costs nothing (`served_prezeroed`), otherwise the
//!   gaps are zeroed by the CPU on the allocation path (`fallbacks`). A
//!   range filled or copied into loses its zeroed state and leaves the queue.
//!
//! The firmware's `alloc-bench` mode does the same for real (with the DMA
//! engine); this is its model for whole traces.

use crate::mover::{Location, Move, Mover, Ticket};
use crate::ranges::{gaps, insert, subtract};
use crate::replay::{MeasuredMover, MoverSummary};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::ops::Range;
use records::{MoverKind, ZeroVariant};

/// Who zeroes an allocation (the same names as the bench's variants).
pub type ZeroPolicy = ZeroVariant;

/// Zeroing rates. Defaults are round silicon-order guesses for a Pi 3's
/// non-cacheable pool, not measurements: override them from a bench run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroCosts {
    pub cpu_bytes_per_s: u64,
    pub dma_setup_ns: u64,
    pub dma_bytes_per_s: u64,
}

impl Default for ZeroCosts {
    fn default() -> Self {
        ZeroCosts {
            cpu_bytes_per_s: 1_000_000_000,
            dma_setup_ns: 5_000,
            dma_bytes_per_s: 2_000_000_000,
        }
    }
}

fn ns(bytes: u64, per_s: u64) -> u64 {
    ((bytes as u128 * 1_000_000_000).div_ceil(per_s.max(1) as u128)).min(u64::MAX as u128) as u64
}

/// What the zeroing did over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZeroStats {
    /// Fills into the pool (allocations to zero).
    pub fills: u64,
    /// Bytes zeroed on the allocation path.
    pub zeroed_on_path: u64,
    /// Time spent zeroing on the allocation path (over the whole run).
    pub zero_ns: u64,
    /// Deferred: fills that found their whole range zeroed already.
    pub served_prezeroed: u64,
    /// Deferred: fills that zeroed (part of) their range themselves.
    pub fallbacks: u64,
    /// Deferred: bytes the background engine zeroed.
    pub zeroed_in_background: u64,
}

/// A mover wrapper that models allocation zeroing; see the module docs.
#[derive(Debug)]
pub struct ZeroingMover<M> {
    inner: M,
    policy: ZeroPolicy,
    costs: ZeroCosts,
    stats: ZeroStats,
    now_ns: u64,
    /// Deferred: zeroed pool ranges, sorted and disjoint.
    zeroed: Vec<Range<u64>>,
    /// Deferred: (range, done at) queued on the background engine, in order.
    queue: VecDeque<(Range<u64>, u64)>,
    engine_free_ns: u64,
    /// Zeroing time not yet handed to a summary.
    pending_ns: u64,
}

impl<M> ZeroingMover<M> {
    /// `inner` with no zeroing (the vc4 pool): exactly `inner`'s moves and summary.
    pub fn none(inner: M) -> Self {
        Self::new(inner, ZeroVariant::None, ZeroCosts::default())
    }

    pub fn new(inner: M, policy: ZeroPolicy, costs: ZeroCosts) -> Self {
        ZeroingMover {
            inner,
            policy,
            costs,
            stats: ZeroStats::default(),
            now_ns: 0,
            zeroed: Vec::new(),
            queue: VecDeque::new(),
            engine_free_ns: 0,
            pending_ns: 0,
        }
    }

    pub fn policy(&self) -> ZeroPolicy {
        self.policy
    }

    pub fn stats(&self) -> ZeroStats {
        self.stats
    }

    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// Background fills done by now join the zeroed list.
    fn settle(&mut self) {
        while self
            .queue
            .front()
            .is_some_and(|(_, done)| *done <= self.now_ns)
        {
            let (r, _) = self.queue.pop_front().expect("front checked");
            insert(&mut self.zeroed, r);
        }
    }

    /// `range` is written by someone: not zero, and out of the queue.
    fn claim(&mut self, range: &Range<u64>) {
        subtract(&mut self.zeroed, range);
        let queued: Vec<_> = self.queue.drain(..).collect();
        for (q, done) in queued {
            let mut left = alloc::vec![q];
            subtract(&mut left, range);
            self.queue.extend(left.into_iter().map(|r| (r, done)));
        }
    }

    fn on_path(&mut self, bytes: u64, cost_ns: u64) {
        self.stats.zeroed_on_path += bytes;
        self.stats.zero_ns += cost_ns;
        self.pending_ns += cost_ns;
        self.now_ns += cost_ns;
    }

    fn fill(&mut self, range: Range<u64>) {
        self.stats.fills += 1;
        let len = range.end - range.start;
        match self.policy {
            ZeroVariant::None => {}
            ZeroVariant::Cpu => self.on_path(len, ns(len, self.costs.cpu_bytes_per_s)),
            ZeroVariant::Dma => self.on_path(
                len,
                self.costs.dma_setup_ns + ns(len, self.costs.dma_bytes_per_s),
            ),
            ZeroVariant::Deferred => {
                self.settle();
                let missing: u64 = gaps(&self.zeroed, &range)
                    .iter()
                    .map(|g| g.end - g.start)
                    .sum();
                if missing == 0 {
                    self.stats.served_prezeroed += 1;
                } else {
                    self.stats.fallbacks += 1;
                    self.on_path(missing, ns(missing, self.costs.cpu_bytes_per_s));
                }
                self.claim(&range);
            }
        }
    }

    fn free(&mut self, range: Range<u64>) {
        let len = range.end - range.start;
        let start = self.now_ns.max(self.engine_free_ns);
        let done = start + self.costs.dma_setup_ns + ns(len, self.costs.dma_bytes_per_s);
        self.engine_free_ns = done;
        self.stats.zeroed_in_background += len;
        self.queue.push_back((range, done));
    }
}

impl<M: Mover> Mover for ZeroingMover<M> {
    fn submit(&mut self, mv: &Move) -> Ticket {
        if self.policy != ZeroVariant::None {
            match *mv {
                Move::Fill {
                    size,
                    to: Location::Pool { offset },
                    ..
                } => self.fill(offset..offset + size),
                Move::Copy {
                    size,
                    to: Location::Pool { offset },
                    ..
                } if self.policy == ZeroVariant::Deferred => self.claim(&(offset..offset + size)),
                Move::Free {
                    size,
                    at: Location::Pool { offset },
                    ..
                } if self.policy == ZeroVariant::Deferred => self.free(offset..offset + size),
                _ => {}
            }
        }
        self.inner.submit(mv)
    }

    fn poll(&mut self, ticket: Ticket) -> bool {
        self.inner.poll(ticket)
    }

    fn wait(&mut self, ticket: Ticket) {
        self.inner.wait(ticket)
    }

    /// Zeroing is modelled as time, never as a move: moves complete as the
    /// wrapped mover's do.
    fn completes_at_submit(&self) -> bool {
        self.inner.completes_at_submit()
    }
}

impl<M: MeasuredMover> MeasuredMover for ZeroingMover<M> {
    fn kind(&self) -> MoverKind {
        self.inner.kind()
    }

    /// The wrapped mover's summary, with the allocation path's zeroing time
    /// added to the stall (for `None`, exactly the wrapped summary).
    fn take_summary(&mut self) -> MoverSummary {
        let mut s = self.inner.take_summary();
        s.stall_ns = s
            .stall_ns
            .saturating_add(core::mem::take(&mut self.pending_ns));
        s
    }

    fn at_event(&mut self, time_us: u64) {
        self.now_ns = self.now_ns.max(time_us.saturating_mul(1000));
        self.inner.at_event(time_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelMover;

    fn fill(offset: u64, size: u64) -> Move {
        Move::Fill {
            buffer: 0,
            generation: 0,
            size,
            to: Location::Pool { offset },
        }
    }

    fn free(offset: u64, size: u64) -> Move {
        Move::Free {
            buffer: 0,
            size,
            at: Location::Pool { offset },
        }
    }

    #[test]
    fn cpu_and_dma_cost_on_the_allocation_path_none_costs_nothing() {
        let costs = ZeroCosts {
            cpu_bytes_per_s: 1_000_000_000,
            dma_setup_ns: 100,
            dma_bytes_per_s: 2_000_000_000,
        };
        for (policy, want) in [
            (ZeroVariant::None, 0),
            (ZeroVariant::Cpu, 1_000_000),
            (ZeroVariant::Dma, 500_100),
        ] {
            let mut m = ZeroingMover::new(ModelMover::default(), policy, costs);
            m.submit(&fill(0, 1_000_000));
            m.submit(&free(0, 1_000_000));
            assert_eq!(m.stats().zero_ns, want, "{policy:?}");
            assert_eq!(m.stats().fallbacks + m.stats().served_prezeroed, 0);
        }
    }

    #[test]
    fn deferred_serves_from_space_zeroed_in_time_and_falls_back_otherwise() {
        let costs = ZeroCosts {
            cpu_bytes_per_s: 1_000_000_000,
            dma_setup_ns: 0,
            dma_bytes_per_s: 1_000_000_000,
        };
        let mut m = ZeroingMover::new(ModelMover::default(), ZeroVariant::Deferred, costs);
        m.submit(&fill(0, 4096)); // nothing zeroed yet: a fallback
        m.submit(&free(0, 4096)); // queued, done 4096 ns later
        m.submit(&fill(0, 4096)); // at once: not done yet, a fallback
        assert_eq!((m.stats().fallbacks, m.stats().served_prezeroed), (2, 0));
        m.submit(&free(0, 4096));
        m.at_event(1_000); // 1 ms later the fill is long done
        m.submit(&fill(0, 4096));
        assert_eq!((m.stats().fallbacks, m.stats().served_prezeroed), (2, 1));
        // Served space is claimed: the same range again falls back.
        m.submit(&fill(0, 4096));
        assert_eq!(m.stats().fallbacks, 3);
        // A copy into zeroed space takes it away too.
        m.submit(&free(8192, 8192));
        m.at_event(2_000);
        m.submit(&Move::Copy {
            buffer: 1,
            generation: 0,
            size: 4096,
            from: Location::Overflow,
            to: Location::Pool { offset: 8192 },
        });
        m.submit(&fill(8192, 8192));
        assert_eq!(m.stats().fallbacks, 4);
        m.submit(&fill(0, 0));
        assert_eq!(m.stats().zeroed_in_background, 2 * 4096 + 8192);
        // The zeroing time reaches the summary's stall.
        let stall = m.take_summary().stall_ns;
        assert!(stall > 0 && m.take_summary().stall_ns == 0);
    }
}
