//! The allocation bench (issue 13): what one create + destroy through the
//! pool core costs at 4 KiB, 1 MiB, 8 MiB and 32 MiB, with the memory it
//! hands out zeroed by nobody, the CPU, the DMA engine, or the DMA engine in
//! the background (deferred), on an empty pool and on a fragmented one (the
//! embedded trace replayed up to its peak of live bytes).
//!
//! One call is `Pool::apply(create)` + `Pool::apply(destroy)` with a fresh
//! buffer index, timed by the stopwatch around each of the two; the zeroing
//! is done by [`BenchMover`] inside the create's `Fill`, so it is inside the
//! timed part. Between the two, untimed, the handed-out memory is checked to
//! be zero (a sample word per page, or every word under verify-full) and
//! then dirtied where it was checked, so that the next zeroing of the same
//! space has real work to do and a skipped zeroing is caught.
//!
//! The pool is mapped Normal non-cacheable (`mmu::map_ram`), like Linux's
//! write-combined CMA pool: the DMA engine and the CPU see the same bytes
//! with no cache maintenance, as in `mover::dma` (which cleans or
//! invalidates only the cacheable heap side of a move). The driver's
//! `dsb sy` before a start and after the completion orders the CPU's stores
//! and loads against the engine's.

use super::MIB;
use crate::dma::DmaChannel;
use crate::logger::send_record;
use crate::memory::Layout;
use crate::platform::Platform;
use crate::replay::{embedded_trace, engine_for};
use crate::timer;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;
use pool::mover::{Location, Move, Mover, Ticket};
use pool::ranges::{gaps, insert, subtract};
use pool::{Policy, Pool, PoolConfig};
use protocol::command::ALLOC_BENCH_VERIFY_FULL;
use records::{AllocBenchRow, Background, NsPerCall, Record, ZeroVariant};
use trace::{Event, EventKind};

/// Sizes benched.
const SIZES: [u64; 4] = [4 << 10, MIB as u64, 8 * MIB as u64, 32 * MIB as u64];
/// Calls per size on silicon by default: the 5000 where a call is
/// short, fewer where 5000 would take minutes per variant (a 32 MiB CPU
/// zero is some tens of ms).
const SILICON_CALLS: [u64; 4] = [5000, 5000, 1000, 250];
/// Under QEMU (every store emulated, the DMA engine in 4-byte steps), fewer.
const QEMU_CALLS: [u64; 4] = [2000, 200, 24, 8];
/// Page size of the zero check's sample.
const PAGE: u64 = 4096;
/// Words dirtied and checked per page in sample mode.
const SAMPLE_WORDS: u64 = 2;
/// The value the handed-out memory is dirtied with.
const DIRTY: u64 = 0xdead_beef_5a5a_a5a5;

/// Runs the bench; returns the number of rows that found non-zero memory
/// (0: success), or a DMA or setup failure count.
pub fn run(platform: &Platform, layout: &Layout, argument: u16) -> u32 {
    let verify_full = argument & ALLOC_BENCH_VERIFY_FULL != 0;
    let cap = u64::from(argument & !ALLOC_BENCH_VERIFY_FULL);
    let Some(channel) = platform.dma_channel else {
        defmt::error!("alloc-bench: the platform names no usable DMA channel");
        return 1;
    };
    let mut dma = match DmaChannel::open(channel, engine_for(channel, platform.emulated)) {
        Ok(ch) => ch,
        Err(e) => {
            defmt::error!(
                "alloc-bench: cannot open DMA channel {=u8}: {}",
                channel,
                defmt::Debug2Format(&e)
            );
            return 1;
        }
    };
    let timer = timer::stopwatch_timer();
    let defaults = if platform.emulated {
        QEMU_CALLS
    } else {
        SILICON_CALLS
    };
    let pool_base = layout.pool.start as u64;
    let pool_bytes = layout.pool.len() as u64;
    let trace = embedded_trace();
    let mut failed = 0u32;
    for background in Background::ALL {
        for variant in ZeroVariant::ALL {
            for (i, &size) in SIZES.iter().enumerate() {
                let calls = if cap == 0 {
                    defaults[i]
                } else {
                    cap.min(defaults[i])
                };
                let config = PoolConfig {
                    pool_bytes,
                    alignment: PAGE,
                    policy: Policy::FirstFit,
                };
                let mut pool = match Pool::new(config) {
                    Ok(p) => p,
                    Err(e) => {
                        defmt::error!("alloc-bench: pool refused: {}", defmt::Display2Format(&e));
                        return 1;
                    }
                };
                let mut mover = BenchMover::new(variant, pool_base, pool_bytes, &mut dma);
                let (first_index, background_buffers, note) = match background {
                    Background::Empty => (0, 0, String::new()),
                    Background::Fragmented => match &trace {
                        Some(t) => fragment(&mut pool, &mut mover, t),
                        None => {
                            defmt::error!("alloc-bench: no embedded trace for the fragmented pool");
                            return 1;
                        }
                    },
                };
                mover.bench_from = first_index;
                let row = bench(&mut pool, &mut mover, size, calls, verify_full, first_index);
                let mut row = match row {
                    Ok(row) => row,
                    Err(e) => {
                        defmt::error!("alloc-bench: {=str}", e.as_str());
                        return failed + 1;
                    }
                };
                row.background = background;
                row.background_buffers = background_buffers;
                row.timer = timer.name.clone();
                row.timer_hz = timer.hz;
                if !note.is_empty() {
                    row.note = if row.note.is_empty() {
                        note
                    } else {
                        format!("{}; {}", row.note, note)
                    };
                }
                if row.zero_failures > 0 {
                    failed += 1;
                    defmt::error!(
                        "alloc-bench: {=u64} B {=str} on the {=str} pool handed out non-zero memory {=u64} times",
                        size,
                        variant.name(),
                        background.name(),
                        row.zero_failures
                    );
                }
                defmt::info!(
                    "alloc-bench {=str} {=str} {=u64} B: {=u64} calls, p50 {=u64} ns, mean {=u64} ns",
                    background.name(),
                    variant.name(),
                    size,
                    row.calls,
                    row.ns_per_call.p50,
                    row.ns_per_call.mean
                );
                send_record(&Record::AllocBench(row));
            }
        }
    }
    failed
}

/// Replays `trace` into `pool` up to the first moment its live bytes reach
/// the trace's peak; returns the first free buffer index, the live buffers
/// and a note when the peak could not be reached.
fn fragment(
    pool: &mut Pool,
    mover: &mut BenchMover<'_>,
    trace: &trace::binary::BinaryTrace<'_>,
) -> (u32, u64, String) {
    let peak = trace.peak_live_bytes();
    let (mut live_bytes, mut live) = (0u64, 0u64);
    let mut sizes: Vec<u64> = Vec::new();
    let mut reached = false;
    for event in trace.events() {
        if let EventKind::Create { size, .. } = event.kind {
            if sizes.len() <= event.buffer as usize {
                sizes.resize(event.buffer as usize + 1, 0);
            }
            sizes[event.buffer as usize] = size;
        }
        if pool.apply(&event, mover, &mut ()).is_err() {
            return (
                trace.buffer_count(),
                live,
                String::from("the trace did not replay to its peak"),
            );
        }
        match event.kind {
            EventKind::Create { size, .. } => {
                live_bytes += size;
                live += 1;
            }
            EventKind::Destroy => {
                live_bytes -= sizes[event.buffer as usize];
                live -= 1;
            }
            _ => {}
        }
        if live_bytes >= peak {
            reached = true;
            break;
        }
    }
    let note = if reached {
        format!(
            "background: {} at its peak, {} KiB live",
            trace.name(),
            live_bytes >> 10
        )
    } else {
        String::from("the trace never reached its recorded peak")
    };
    (trace.buffer_count(), live, note)
}

/// `calls` create + destroy pairs of `size` bytes with fresh indices from
/// `first_index` on.
fn bench(
    pool: &mut Pool,
    mover: &mut BenchMover<'_>,
    size: u64,
    calls: u64,
    verify_full: bool,
    first_index: u32,
) -> Result<AllocBenchRow, String> {
    let mut samples = Vec::with_capacity(calls as usize);
    let mut zero_failures = 0u64;
    let mut overflowed = 0u64;
    for call in 0..calls {
        let buffer = first_index + call as u32;
        let create = Event {
            time_us: call,
            buffer,
            kind: EventKind::Create {
                size,
                unmoveable: false,
            },
        };
        let destroy = Event {
            time_us: call,
            buffer,
            kind: EventKind::Destroy,
        };
        let start = timer::stopwatch_ticks();
        pool.apply(&create, mover, &mut ())
            .map_err(|e| format!("create of #{buffer}: {e}"))?;
        let created_ns = timer::stopwatch_elapsed_ns(start);
        if let Some(mover_error) = mover.error.take() {
            return Err(mover_error);
        }
        match pool.location(buffer) {
            // Placement only: nobody zeroes, so there is nothing to check.
            Some(Location::Pool { .. }) if mover.variant == ZeroVariant::None => {}
            Some(Location::Pool { offset }) => {
                // SAFETY: the buffer's range lies inside the pool (the pool
                // core placed it there), no DMA fill overlaps it (the mover
                // waited for any that did), and nothing else uses it until
                // its destroy below.
                let ok =
                    unsafe { check_and_dirty(mover.pool_base + offset, size, verify_full, call) };
                if !ok {
                    zero_failures += 1;
                }
            }
            _ => overflowed += 1,
        }
        let start = timer::stopwatch_ticks();
        pool.apply(&destroy, mover, &mut ())
            .map_err(|e| format!("destroy of #{buffer}: {e}"))?;
        samples.push(created_ns + timer::stopwatch_elapsed_ns(start));
        if let Some(mover_error) = mover.error.take() {
            return Err(mover_error);
        }
    }
    mover.finish()?;
    let mut note = if overflowed > 0 {
        format!("{overflowed} allocations did not fit the pool and went to the overflow (not zeroed, not checked)")
    } else {
        String::new()
    };
    if mover.variant == ZeroVariant::None {
        let unchecked = "placement only: not zeroed, so not checked";
        note = if note.is_empty() {
            unchecked.into()
        } else {
            format!("{note}; {unchecked}")
        };
    }
    Ok(AllocBenchRow {
        size,
        variant: mover.variant,
        background: Background::Empty,
        calls,
        ns_per_call: NsPerCall::of(&mut samples),
        zero_failures,
        fallbacks: mover.fallbacks,
        served_prezeroed: mover.served,
        waited_for_fill: mover.waited,
        verify_full,
        background_buffers: 0,
        timer: String::new(),
        timer_hz: 0,
        note,
    })
}

/// Checks that `[at, at + len)` reads zero (every word, or
/// [`SAMPLE_WORDS`] per page at offsets that move with `call`), then writes
/// [`DIRTY`] where it checked. Returns whether all checked words were zero.
///
/// # Safety
/// The range must be mapped pool memory, 8-byte aligned, that the caller
/// owns for the call: no reference to it and no DMA transfer touching it.
unsafe fn check_and_dirty(at: u64, len: u64, full: bool, call: u64) -> bool {
    let mut ok = true;
    let mut visit = |addr: u64| {
        let p = addr as *mut u64;
        // SAFETY: inside the range the caller vouches for, 8-byte aligned.
        unsafe {
            let v = p.read_volatile();
            if v != 0 && ok {
                defmt::warn!(
                    "alloc-bench: {=u64:#x} reads {=u64:#x} (range {=u64:#x} + {=u64})",
                    addr,
                    v,
                    at,
                    len
                );
            }
            ok &= v == 0;
            p.write_volatile(DIRTY);
        }
    };
    if full {
        (0..len / 8).for_each(|i| visit(at + 8 * i));
    } else {
        for page in 0..len.div_ceil(PAGE) {
            let base = at + page * PAGE;
            let span = PAGE.min(len - page * PAGE) / 8;
            for k in 0..SAMPLE_WORDS {
                // The first word, and one that moves with the call and page
                // (never the first again: it was just dirtied).
                let word = if k == 0 {
                    0
                } else {
                    1 + (call * 131 + page * 17 + k * 257) % (span - 1)
                };
                visit(base + 8 * word);
            }
        }
    }
    ok
}

/// Zeroes `[at, at + len)` with pairs of 64-bit stores of XZR.
///
/// Why `stp` and not `dc zva`: the pool is Normal non-cacheable, where
/// DC ZVA is allowed but buys nothing: its gain is allocating a zeroed
/// cache line without reading memory, and a non-cacheable mapping allocates
/// no line, so it ends as the same 64-byte write that four `stp`s make and
/// the write buffer merges. A plain loop is also what the CPU mover's copy
/// loop looks like, so the two are comparable.
///
/// # Safety
/// The range must be mapped memory the caller owns (no reference, no DMA),
/// `at` 16-byte aligned and `len` a non-zero multiple of 64.
unsafe fn cpu_zero(at: u64, len: u64) {
    debug_assert!(at.is_multiple_of(16) && len.is_multiple_of(64) && len > 0);
    // SAFETY: the caller's guarantee; the loop writes exactly [at, at + len).
    unsafe {
        core::arch::asm!(
            "1:",
            "stp xzr, xzr, [{p}], #16",
            "stp xzr, xzr, [{p}], #16",
            "stp xzr, xzr, [{p}], #16",
            "stp xzr, xzr, [{p}], #16",
            "cmp {p}, {end}",
            "b.lo 1b",
            p = inout(reg) at => _,
            end = in(reg) at + len,
            options(nostack),
        );
    }
}

/// The bench's mover: moves of the background buffers are decisions only
/// (their content is not tracked, as in `NullMover`); the bench buffer's
/// `Fill` zeroes per the variant, its `Free` feeds the deferred queue.
struct BenchMover<'a> {
    variant: ZeroVariant,
    pool_base: u64,
    pool_bytes: u64,
    dma: &'a mut DmaChannel,
    /// Buffers from this index on are the bench's own.
    bench_from: u32,
    tickets: u64,
    /// Deferred: pool offsets known zero, sorted and disjoint.
    zeroed: Vec<Range<u64>>,
    /// Deferred: freed ranges waiting for a background fill.
    queue: VecDeque<Range<u64>>,
    /// Deferred: the range the DMA engine is filling now.
    in_flight: Option<Range<u64>>,
    served: u64,
    fallbacks: u64,
    waited: u64,
    error: Option<String>,
}

impl<'a> BenchMover<'a> {
    fn new(variant: ZeroVariant, pool_base: u64, pool_bytes: u64, dma: &'a mut DmaChannel) -> Self {
        BenchMover {
            variant,
            pool_base,
            pool_bytes,
            dma,
            bench_from: u32::MAX,
            tickets: 0,
            zeroed: Vec::new(),
            queue: VecDeque::new(),
            in_flight: None,
            served: 0,
            fallbacks: 0,
            waited: 0,
            error: None,
        }
    }

    /// Starts a DMA zero fill of pool offsets `range`.
    fn start_fill(&mut self, range: &Range<u64>) -> Result<(), String> {
        let plan = self
            .dma
            .engine()
            .plan_fill(self.pool_base + range.start, range.end - range.start)
            .map_err(|e| format!("zero fill refused: {e}"))?;
        // SAFETY: the range is free pool space (a freed bench buffer, or
        // the allocation being zeroed) that nothing reads or writes until
        // the fill completes: the deferred path waits for the fill before
        // handing any of it out, and the pool is non-cacheable (no lines to
        // clean or invalidate). The plan checked the range is SDRAM.
        unsafe { self.dma.start(plan) }.map_err(|e| format!("zero fill not started: {e:?}"))
    }

    /// Waits (bounded by the driver's deadline) for the running fill.
    fn wait_fill(&mut self) -> Result<(), String> {
        self.dma
            .wait()
            .map(|_| ())
            .map_err(|f| format!("zero fill failed: {}", defmt_free(&f)))
    }

    /// Zeroes `range` with one DMA fill, waited for.
    fn dma_zero(&mut self, range: &Range<u64>) -> Result<(), String> {
        self.start_fill(range)?;
        self.wait_fill()
    }

    /// Deferred: notes a completed background fill, starts the next.
    fn pump(&mut self, block: bool) -> Result<(), String> {
        if let Some(r) = self.in_flight.clone() {
            let done = if block {
                self.wait_fill()?;
                true
            } else {
                match self.dma.poll() {
                    None => false,
                    Some(Ok(_)) => true,
                    Some(Err(f)) => return Err(format!("zero fill failed: {}", defmt_free(&f))),
                }
            };
            if !done {
                return Ok(());
            }
            self.in_flight = None;
            insert(&mut self.zeroed, r);
        }
        if let Some(next) = self.queue.pop_front() {
            self.start_fill(&next)?;
            self.in_flight = Some(next);
        }
        Ok(())
    }

    /// Whether the background fill in flight writes any of `range`.
    fn fill_overlaps(&self, range: &Range<u64>) -> bool {
        self.in_flight
            .as_ref()
            .is_some_and(|f| f.start < range.end && range.start < f.end)
    }

    /// Deferred: `range` is about to be written by someone: no longer
    /// zero, and not to be zeroed later under its new owner's feet.
    fn claim(&mut self, range: &Range<u64>) -> Result<(), String> {
        if self.fill_overlaps(range) {
            self.waited += 1;
            self.pump(true)?;
            // `pump` may have started the next queued fill: check again.
            return self.claim(range);
        }
        let queued: Vec<Range<u64>> = self.queue.drain(..).collect();
        for q in queued {
            let mut left = alloc::vec![q];
            subtract(&mut left, range);
            self.queue.extend(left);
        }
        subtract(&mut self.zeroed, range);
        Ok(())
    }

    /// Zeroes a new bench allocation at pool offsets `range`.
    fn zero(&mut self, range: Range<u64>) -> Result<(), String> {
        let len = range.end - range.start;
        match self.variant {
            ZeroVariant::None => {}
            // SAFETY: a fresh allocation inside the pool, owned by the
            // bench until its destroy; sizes are multiples of 4 KiB.
            ZeroVariant::Cpu => unsafe { cpu_zero(self.pool_base + range.start, len) },
            ZeroVariant::Dma => self.dma_zero(&range)?,
            ZeroVariant::Deferred => {
                self.pump(false)?;
                if self.fill_overlaps(&range) {
                    self.waited += 1;
                    self.pump(true)?;
                }
                let missing = gaps(&self.zeroed, &range);
                if missing.is_empty() {
                    self.served += 1;
                } else {
                    self.fallbacks += 1;
                }
                self.claim(&range)?;
                for gap in missing {
                    // The engine may be busy with a background fill: the
                    // allocation zeroes its gaps with the CPU.
                    // SAFETY: part of the fresh allocation, no fill touches
                    // it (claimed above); multiples of 4 KiB.
                    unsafe { cpu_zero(self.pool_base + gap.start, gap.end - gap.start) };
                }
            }
        }
        Ok(())
    }

    /// Ends a row: waits for the background fill.
    fn finish(&mut self) -> Result<(), String> {
        if self.in_flight.is_some() {
            self.wait_fill()?;
            self.in_flight = None;
        }
        self.queue.clear();
        Ok(())
    }
}

/// A DMA fault as text (the fault type has no `Display` of its own).
fn defmt_free(f: &crate::dma::DmaFault) -> String {
    format!("{f:?}")
}

impl Mover for BenchMover<'_> {
    fn submit(&mut self, mv: &Move) -> Ticket {
        self.tickets += 1;
        let ours = mv.buffer() >= self.bench_from;
        let outcome = match *mv {
            Move::Fill {
                size,
                to: Location::Pool { offset },
                ..
            } => {
                let range = offset..offset + size.div_ceil(PAGE) * PAGE;
                if ours {
                    self.zero(range)
                } else if self.variant == ZeroVariant::Deferred {
                    self.claim(&range)
                } else {
                    Ok(())
                }
            }
            // Our buffer paged in (created in the overflow, then brought
            // into the pool): its content is a fresh allocation's, zero.
            Move::Copy {
                size,
                to: Location::Pool { offset },
                ..
            } if ours => self.zero(offset..offset + size.div_ceil(PAGE) * PAGE),
            Move::Copy {
                size,
                to: Location::Pool { offset },
                ..
            } if self.variant == ZeroVariant::Deferred => {
                self.claim(&(offset..offset + size.div_ceil(PAGE) * PAGE))
            }
            Move::Free {
                size,
                at: Location::Pool { offset },
                ..
            } if ours && self.variant == ZeroVariant::Deferred => {
                let end = (offset + size.div_ceil(PAGE) * PAGE).min(self.pool_bytes);
                self.queue.push_back(offset..end);
                self.pump(false)
            }
            _ => Ok(()),
        };
        if let Err(e) = outcome {
            self.error.get_or_insert(e);
        }
        Ticket(self.tickets)
    }

    fn poll(&mut self, _: Ticket) -> bool {
        true
    }

    fn wait(&mut self, _: Ticket) {}
}
