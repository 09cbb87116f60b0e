//! The CPU mover: every move is a copy by the CPU's `ldp`/`stp` loop
//! ([`crate::copy`]), complete when `submit` returns.

use super::store::{CopyJob, Prepared, Store};
use super::{elapsed_ns, VerifyMode};
use crate::timer;
use core::ops::Range;
use pool::mover::{Move, Mover, Ticket};
use pool::replay::{MeasuredMover, MoverSummary};
use records::MoverKind;

/// A copy by the CPU of the bytes of `job` from byte `from` on.
///
/// # Safety
/// `job` must come from `Store::prepare` and not be complete, and no DMA
/// transfer may be using its ranges.
pub(super) unsafe fn cpu_copy_from(job: &CopyJob, from: usize) {
    let from = from.min(job.len);
    // SAFETY: both ranges are inside memory this move owns (the pool range
    // was checked, heap allocations are `len` long), Normal memory either
    // way; `copy` allows the overlap the pool core's moves have.
    unsafe {
        crate::copy::copy(
            (job.dst + from) as *mut u8,
            (job.src + from) as *const u8,
            job.len - from,
        )
    };
}

/// Moves with the CPU, synchronously: every move is complete when `submit`
/// returns.
pub struct CpuMover {
    store: Store,
}

impl CpuMover {
    /// A CPU mover over the pool region `pool`.
    ///
    /// # Safety
    /// As for `Store::new`: `pool` is mapped, page-aligned memory that only
    /// this mover uses while it lives.
    pub unsafe fn new(pool: Range<usize>, salt: u64, verify: VerifyMode) -> Self {
        CpuMover {
            // SAFETY: the caller's guarantee.
            store: unsafe { Store::new(pool, salt, verify) },
        }
    }

    /// The shared state (verification results, test hooks).
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }
}

impl Mover for CpuMover {
    fn submit(&mut self, mv: &Move) -> Ticket {
        let ticket = self.store.ticket();
        let start = timer::stopwatch_ticks();
        if let Prepared::Copy(job) = self.store.prepare(mv) {
            // SAFETY: a job just prepared; the CPU mover runs no DMA. Once
            // the memmove returns the copy is over.
            unsafe {
                cpu_copy_from(&job, 0);
                self.store.complete(&job, elapsed_ns(start));
            }
        }
        ticket
    }

    fn poll(&mut self, _ticket: Ticket) -> bool {
        true
    }

    fn wait(&mut self, _ticket: Ticket) {}
}

/// Every CPU move is complete when `submit` returns: nothing to finish.
impl crate::output::OutputDrain for CpuMover {
    fn complete_for_output(&mut self) {}
}

impl MeasuredMover for CpuMover {
    fn kind(&self) -> MoverKind {
        MoverKind::Cpu
    }

    fn take_summary(&mut self) -> MoverSummary {
        self.store.take_summary()
    }
}
