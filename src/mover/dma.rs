//! The DMA mover: one copy in flight on a DMA channel, with cache
//! maintenance around transfers that touch the (cacheable) backing heap,
//! and the CPU as the fallback when the engine refuses or fails a copy.

use super::cpu::cpu_copy_from;
use super::store::{CopyJob, Prepared, Store};
use super::{elapsed_ns, VerifyMode};
use crate::cache;
use crate::dma::{Completion, DmaChannel, DmaFault};
use crate::output::OutputDrain;
use crate::timer;
use bcm::copy;
use core::ops::Range;
use pool::mover::{Move, Mover, Ticket};
use pool::replay::{MeasuredMover, MoverSummary};
use records::MoverKind;

/// The copy running on the DMA channel.
struct InFlight {
    ticket: Ticket,
    job: CopyJob,
    started: u64,
}

/// Moves with the DMA engine, asynchronously: one copy in flight on the
/// channel; submitting another first waits for it (counted as stall).
pub struct DmaMover {
    store: Store,
    channel: DmaChannel,
    inflight: Option<InFlight>,
    /// The last DMA failure, for self-tests and logs.
    last_fault: Option<DmaFault>,
}

impl DmaMover {
    /// A DMA mover on `channel` over the pool region `pool`.
    ///
    /// # Safety
    /// As for `Store::new`: `pool` is mapped, page-aligned SDRAM that only
    /// this mover (and the engine on its behalf) uses while it lives.
    pub unsafe fn new(
        channel: DmaChannel,
        pool: Range<usize>,
        salt: u64,
        verify: VerifyMode,
    ) -> Self {
        DmaMover {
            // SAFETY: the caller's guarantee.
            store: unsafe { Store::new(pool, salt, verify) },
            channel,
            inflight: None,
            last_fault: None,
        }
    }

    /// The shared state (verification results, test hooks).
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The channel (for its start count in self-tests).
    pub fn channel(&self) -> &DmaChannel {
        &self.channel
    }

    /// Test hook: the next copy's chain loops on itself, so it times out
    /// (see `DmaChannel::self_link_next_start`).
    pub fn self_link_next_copy(&mut self) {
        self.channel.self_link_next_start();
    }

    /// The last DMA failure that made the CPU redo a move.
    pub fn last_fault(&self) -> Option<DmaFault> {
        self.last_fault
    }

    /// Moves done by the CPU after a DMA failure so far in this run.
    pub fn fallbacks(&self) -> u64 {
        self.store.summary.dma_fallbacks
    }

    /// Gives the channel back (waiting for a move in flight first).
    pub fn into_channel(mut self) -> DmaChannel {
        self.finish_blocking();
        let DmaMover { channel, .. } = self;
        channel
    }

    /// Waits for the move in flight, if any, and completes it.
    fn finish_blocking(&mut self) {
        if self.inflight.is_some() {
            let result = self.channel.wait();
            self.finish(result);
        }
    }

    /// Completes the move in flight with the channel's verdict.
    fn finish(&mut self, result: Result<Completion, DmaFault>) {
        let Some(f) = self.inflight.take() else {
            return;
        };
        let job = &f.job;
        if let Err(fault) = result {
            defmt::warn!(
                "DMA move of buffer {=u32} ({=usize} bytes) failed: {}; the CPU redoes it",
                job.buffer,
                job.len,
                fault
            );
            self.last_fault = Some(fault);
            self.store.summary.dma_fallbacks += 1;
            let resume = copy::cpu_redo_from(job.src, job.dst, job.len, fault.resume_at);
            // SAFETY: the job of the failed transfer; the channel has been
            // reset, so the engine no longer touches its ranges.
            unsafe { cpu_copy_from(job, resume) };
        } else if job.dst_heap {
            // Lines the A53 fetched speculatively while the engine wrote.
            // SAFETY: the whole-page allocation this move owns.
            unsafe { cache::invalidate(job.dst as *mut u8, job.len) };
        }
        // SAFETY: the transfer completed or was redone by the CPU.
        unsafe { self.store.complete(job, elapsed_ns(f.started)) };
    }
}

impl Mover for DmaMover {
    fn submit(&mut self, mv: &Move) -> Ticket {
        let ticket = self.store.ticket();
        if self.inflight.is_some() {
            let start = timer::stopwatch_ticks();
            self.finish_blocking();
            self.store.summary.stall_ns += elapsed_ns(start);
        }
        let start = timer::stopwatch_ticks();
        let Prepared::Copy(job) = self.store.prepare(mv) else {
            return ticket;
        };
        // SAFETY: the ranges belong to this move (see `Store::prepare`); the
        // heap allocations are page aligned and whole pages, as `invalidate`
        // requires.
        unsafe {
            if job.src_heap {
                // civac, not cvac: Cortex-A53 erratum 855873 (see `cache`).
                cache::clean_invalidate(job.src as *const u8, job.len);
            }
            if job.dst_heap {
                cache::invalidate(job.dst as *mut u8, job.len);
            }
        }
        let planned = self
            .channel
            .plan(job.src as u64, job.dst as u64, job.len as u64);
        // SAFETY: the job's ranges are this move's until it completes (see
        // `Store::prepare`), and the cacheable ones were just cleaned or
        // invalidated.
        match planned.and_then(|plan| unsafe { self.channel.start(plan) }) {
            Ok(()) => {
                self.inflight = Some(InFlight {
                    ticket,
                    job,
                    started: start,
                })
            }
            Err(e) => {
                defmt::warn!(
                    "DMA refused the move of buffer {=u32}: {}; the CPU does it",
                    job.buffer,
                    e
                );
                self.store.summary.dma_fallbacks += 1;
                // SAFETY: nothing reached the engine; the job is this move's.
                unsafe {
                    cpu_copy_from(&job, 0);
                    self.store.complete(&job, elapsed_ns(start));
                }
            }
        }
        ticket
    }

    fn poll(&mut self, ticket: Ticket) -> bool {
        match &self.inflight {
            Some(f) if f.ticket == ticket => {}
            // Anything not in flight is complete.
            _ => return true,
        }
        match self.channel.poll() {
            None => false,
            Some(result) => {
                self.finish(result);
                true
            }
        }
    }

    fn wait(&mut self, ticket: Ticket) {
        if self.inflight.as_ref().is_some_and(|f| f.ticket == ticket) {
            let start = timer::stopwatch_ticks();
            self.finish_blocking();
            self.store.summary.stall_ns += elapsed_ns(start);
        }
    }
}

impl DmaMover {
    /// The copy routine in words, for the run's result.
    pub fn routine(&self) -> alloc::string::String {
        let engine = self.channel.engine();
        let ti = bcm::dma_plan::TiWord::new(engine.ti(true));
        let bits = |b| if ti.is_set(b) { 128 } else { 32 };
        let (src, dst) = (
            bits(bcm::dma_plan::TI::SRC_WIDTH),
            bits(bcm::dma_plan::TI::DEST_WIDTH),
        );
        alloc::format!(
            "DMA channel {} ({}), page-aligned moves with {src}-bit reads and {dst}-bit writes in bursts of {}; fallback {}",
            self.channel.number(),
            if matches!(engine.kind, bcm::dma_plan::ChannelKind::Lite) { "lite" } else { "full" },
            ti.read(bcm::dma_plan::TI::BURST_LENGTH),
            crate::copy::ROUTINE
        )
    }
}

/// Before records are written out during a run, the copy in flight is
/// completed (its latency then ends where it really did, before any UART
/// time), and the wait is not stall: the pool did not ask for it.
impl OutputDrain for DmaMover {
    fn complete_for_output(&mut self) {
        self.finish_blocking();
    }
}

impl MeasuredMover for DmaMover {
    fn kind(&self) -> MoverKind {
        MoverKind::Dma
    }

    fn take_summary(&mut self) -> MoverSummary {
        self.store.take_summary()
    }
}
