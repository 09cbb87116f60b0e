//! The firmware's movers: [`DmaMover`] (the BCM2837 DMA engine) and
//! [`CpuMover`] (the CPU). Both perform the pool core's moves on real memory,
//! time them, and verify the data; they differ only in how bytes get copied.
//!
//! Memory: a buffer resident in the pool lives at `pool.start + offset`
//! (Normal non-cacheable, like the real driver's write-combined CMA pool). A
//! non-resident buffer with content has its own heap allocation (Normal
//! write-back), page aligned and a whole number of pages long, allocated when
//! it is paged out or filled in overflow and freed when it is paged in, purged
//! or destroyed. Every move works on whole 4 KiB pages: the pool places
//! buffers in 4 KiB units ([`PAGE`] must equal the replay's pool alignment),
//! so the tail of a buffer's last page is its own.
//!
//! Content: derived from (run salt, buffer, generation) so that stale data of
//! another buffer, generation or run never passes for the right one. By
//! default one 8-byte stamp at the start of every page is written and checked
//! (`verify pages`); built with `POOLBED_VERIFY=full`, every 8-byte word is
//! (`verify full`). After every move, every page it wrote is checked; a
//! mismatch is counted and the first few are reported with buffer, page,
//! expected and found values. Pages a move vacated in the pool get a poison
//! stamp, so a later copy that silently does nothing is caught too.
//!
//! Timing: from submit to the moment completion is observed (the DMA engine
//! raises no interrupt here, so a move's end is seen at the next poll), on
//! the system counter (CNTPCT_EL0). Under QEMU the DMA engine copies
//! synchronously inside the register write, so DMA latencies there are
//! emulation artefacts.

use crate::cache;
use crate::dma::{DmaChannel, DmaFault};
use crate::timer;
use alloc::alloc::{alloc, dealloc, Layout as AllocLayout};
use alloc::vec::Vec;
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use pool::mover::{Generation, Location, Move, Mover, Ticket};
use pool::replay::{MeasuredMover, MoverSummary};
use records::MoverKind;

/// Granule of moves, backing allocations and stamps.
pub const PAGE: usize = 4096;

/// Mismatches reported in detail per run (all are counted).
pub const MAX_REPORTED_CORRUPTIONS: usize = 16;

/// Stamp written over pool pages a move vacated.
const POISON: u64 = 0xDEAD_DEAD_DEAD_DEAD;

/// How much of each page is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum VerifyMode {
    /// One 8-byte stamp per 4 KiB page.
    Pages,
    /// Every 8-byte word.
    Full,
}

impl VerifyMode {
    /// The mode this image was built with (`POOLBED_VERIFY=full` or not).
    pub const BUILT: VerifyMode = match option_env!("POOLBED_VERIFY") {
        Some(v) if eq(v.as_bytes(), b"full") => VerifyMode::Full,
        _ => VerifyMode::Pages,
    };

    /// The name used in logs and in `--verify`.
    pub fn name(self) -> &'static str {
        match self {
            VerifyMode::Pages => "pages",
            VerifyMode::Full => "full",
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

/// Bytes of backing store allocated and not yet freed, over all movers. The
/// replay checks it returns to zero between runs.
static BACKING_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Backing bytes currently allocated by movers.
pub fn backing_bytes() -> usize {
    BACKING_BYTES.load(Ordering::Relaxed)
}

/// One overflow buffer's heap allocation (page aligned, whole pages).
struct Backing {
    ptr: NonNull<u8>,
    len: usize,
}

impl Backing {
    fn new(buffer: u32, len: usize) -> Self {
        let layout = AllocLayout::from_size_align(len, PAGE).expect("page-aligned layout");
        // SAFETY: `len` is at least one page, so the layout is not zero-sized.
        let ptr = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            panic!(
                "backing heap exhausted: {} bytes for overflow buffer {} ({} bytes already held by overflow buffers)",
                len,
                buffer,
                backing_bytes()
            );
        };
        // Loads and stores use plain single-threaded counting (no exclusives).
        BACKING_BYTES.store(backing_bytes() + len, Ordering::Relaxed);
        Backing { ptr, len }
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe {
            dealloc(
                self.ptr.as_ptr(),
                AllocLayout::from_size_align_unchecked(self.len, PAGE),
            )
        };
        BACKING_BYTES.store(backing_bytes() - self.len, Ordering::Relaxed);
    }
}

/// A copy resolved to addresses, waiting to run or running.
#[derive(Clone, Copy, Debug)]
pub struct CopyJob {
    pub buffer: u32,
    pub generation: Generation,
    pub src: usize,
    pub dst: usize,
    pub len: usize,
    /// The source is a heap allocation (cacheable): clean before DMA.
    pub src_heap: bool,
    /// The destination is a heap allocation (cacheable): invalidate around DMA.
    pub dst_heap: bool,
    /// The source lies in the pool (vacated pages get poisoned).
    pub src_pool: bool,
    /// The source's backing is freed once the copy is complete (page-in).
    pub frees_source: bool,
}

/// What a move needs once it has been prepared.
enum Prepared {
    /// Nothing left to do (fills, drops, frees).
    Done,
    /// Bytes to copy.
    Copy(CopyJob),
}

/// Everything the two movers share: memory, content, verification, counts.
pub struct Store {
    pool: Range<usize>,
    backing: Vec<Option<Backing>>,
    salt: u64,
    verify: VerifyMode,
    summary: MoverSummary,
    next_ticket: u64,
    /// Test hook: XOR the byte at this offset of the next copy's destination
    /// after the copy and before verification.
    corrupt_next: Option<(usize, u8)>,
}

impl Store {
    /// A store over the pool region `pool`; `salt` (the run number, say)
    /// makes this run's content differ from every other run's.
    pub fn new(pool: Range<usize>, salt: u64, verify: VerifyMode) -> Self {
        Store {
            pool,
            backing: Vec::new(),
            salt: mix(salt ^ 0x005E_ED0F_B00C),
            verify,
            summary: MoverSummary::default(),
            next_ticket: 0,
            corrupt_next: None,
        }
    }

    fn ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        Ticket(self.next_ticket)
    }

    /// Arms the corruption hook: after the next copy completes, the byte at
    /// `offset` of its destination is XORed with `mask` before verification.
    pub fn corrupt_next_copy(&mut self, offset: usize, mask: u8) {
        self.corrupt_next = Some((offset, mask));
    }

    /// The address of pool offset `offset`, checked against the pool's size.
    fn pool_addr(&self, offset: u64, len: usize) -> usize {
        let offset = offset as usize;
        assert!(
            offset
                .checked_add(len)
                .is_some_and(|end| end <= self.pool.len()),
            "move of {} bytes at pool offset {:#x} leaves the {}-byte pool",
            len,
            offset,
            self.pool.len()
        );
        self.pool.start + offset
    }

    fn slot(&mut self, buffer: u32) -> &mut Option<Backing> {
        let i = buffer as usize;
        if self.backing.len() <= i {
            self.backing.resize_with(i + 1, || None);
        }
        &mut self.backing[i]
    }

    /// A fresh allocation for `buffer` (replacing any it had).
    fn allocate(&mut self, buffer: u32, len: usize) -> usize {
        let b = Backing::new(buffer, len);
        let addr = b.ptr.as_ptr() as usize;
        *self.slot(buffer) = Some(b);
        addr
    }

    fn release(&mut self, buffer: u32) {
        if let Some(slot) = self.backing.get_mut(buffer as usize) {
            *slot = None;
        }
    }

    /// Does the CPU side of `mv`: fills, drops and frees complete here;
    /// copies get their addresses (and a destination allocation).
    fn prepare(&mut self, mv: &Move) -> Prepared {
        match *mv {
            Move::Fill {
                buffer,
                generation,
                size,
                to,
            } => {
                let len = span(size);
                let dst = match to {
                    Location::Pool { offset } => self.pool_addr(offset, len),
                    Location::Overflow => self.allocate(buffer, len),
                };
                self.write_content(buffer, generation, dst, len);
                self.verify_range(buffer, generation, dst, len);
                Prepared::Done
            }
            Move::Copy {
                buffer,
                generation,
                size,
                from,
                to,
            } => {
                let len = span(size);
                let (src, src_heap) = match from {
                    Location::Pool { offset } => (self.pool_addr(offset, len), false),
                    Location::Overflow => {
                        let b = self.backing.get(buffer as usize).and_then(Option::as_ref);
                        let b = b.unwrap_or_else(|| {
                            panic!(
                                "copy of buffer {} from overflow, but it has no backing store",
                                buffer
                            )
                        });
                        assert!(
                            b.len >= len,
                            "buffer {} grew from {} to {} bytes",
                            buffer,
                            b.len,
                            len
                        );
                        (b.ptr.as_ptr() as usize, true)
                    }
                };
                let (dst, dst_heap) = match to {
                    Location::Pool { offset } => (self.pool_addr(offset, len), false),
                    Location::Overflow => {
                        assert!(
                            !src_heap,
                            "copy of buffer {} from overflow to overflow",
                            buffer
                        );
                        (self.allocate(buffer, len), true)
                    }
                };
                Prepared::Copy(CopyJob {
                    buffer,
                    generation,
                    src,
                    dst,
                    len,
                    src_heap,
                    dst_heap,
                    src_pool: !src_heap,
                    frees_source: src_heap,
                })
            }
            // A purge or a destroy: a resident buffer's pool range simply
            // becomes free; an overflow buffer's backing is released.
            Move::Drop {
                buffer, from: at, ..
            }
            | Move::Free { buffer, at, .. } => {
                if at == Location::Overflow {
                    self.release(buffer);
                }
                Prepared::Done
            }
        }
    }

    /// Bookkeeping once the bytes of `job` are in place: latency, the
    /// source's release, verification of every destination page, poison over
    /// vacated pool pages.
    fn complete(&mut self, job: &CopyJob, latency_ns: u64) {
        self.summary.latency.record(job.len as u64, latency_ns);
        if job.frees_source {
            self.release(job.buffer);
        }
        if let Some((offset, mask)) = self.corrupt_next.take() {
            if offset < job.len {
                // SAFETY: inside the destination, which this move owns.
                unsafe {
                    let p = (job.dst + offset) as *mut u8;
                    p.write_volatile(p.read_volatile() ^ mask);
                }
            }
        }
        self.verify_range(job.buffer, job.generation, job.dst, job.len);
        if job.src_pool {
            // Pages of the source the destination does not cover are free now.
            let (src, end) = (job.src, job.src + job.len);
            let vacated = if job.dst < end && src < job.dst + job.len {
                if job.dst < src {
                    (job.dst + job.len).max(src)..end
                } else {
                    src..job.dst.min(end)
                }
            } else {
                src..end
            };
            let mut page = vacated.start;
            while page < vacated.end {
                // SAFETY: a pool page this move vacated; no move in flight
                // touches it (the pool core's guarantee).
                unsafe { (page as *mut u64).write_volatile(POISON) };
                page += PAGE;
            }
        }
    }

    /// The value of word `index` (page mode: page index) of a buffer's content.
    fn stamp(&self, buffer: u32, generation: Generation, index: u64) -> u64 {
        let key = self.salt ^ (u64::from(buffer) << 32 | u64::from(generation));
        mix(mix(key) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn write_content(&self, buffer: u32, generation: Generation, dst: usize, len: usize) {
        match self.verify {
            VerifyMode::Pages => {
                for page in 0..len / PAGE {
                    let value = self.stamp(buffer, generation, page as u64);
                    // SAFETY: inside the move's destination (pool range checked
                    // or a fresh allocation of `len` bytes).
                    unsafe { ((dst + page * PAGE) as *mut u64).write_volatile(value) };
                }
            }
            VerifyMode::Full => {
                for word in 0..len / 8 {
                    let value = self.stamp(buffer, generation, word as u64);
                    // SAFETY: as above.
                    unsafe { ((dst + word * 8) as *mut u64).write_volatile(value) };
                }
            }
        }
    }

    /// Checks every page of `[dst, dst + len)` against the content of
    /// (`buffer`, `generation`).
    fn verify_range(&mut self, buffer: u32, generation: Generation, dst: usize, len: usize) {
        let words_per_page = match self.verify {
            VerifyMode::Pages => 1,
            VerifyMode::Full => PAGE / 8,
        };
        for page in 0..len / PAGE {
            for w in 0..words_per_page {
                let index = match self.verify {
                    VerifyMode::Pages => page,
                    VerifyMode::Full => page * words_per_page + w,
                };
                let expected = self.stamp(buffer, generation, index as u64);
                // Volatile: the value must come from memory, not from what
                // the compiler remembers writing there.
                // SAFETY: inside the move's destination.
                let found = unsafe { ((dst + page * PAGE + w * 8) as *const u64).read_volatile() };
                if found != expected {
                    self.summary.corrupted_pages += 1;
                    if self.summary.corruptions.len() < MAX_REPORTED_CORRUPTIONS {
                        self.summary
                            .corruptions
                            .push((buffer, page as u64, expected, found));
                    }
                    break;
                }
            }
            self.summary.verified_pages += 1;
        }
    }

    /// The measurements so far; counting starts afresh.
    fn take_summary(&mut self) -> MoverSummary {
        core::mem::take(&mut self.summary)
    }

    /// The first recorded corruption, if any (for self-tests).
    pub fn corruptions(&self) -> &[(u32, u64, u64, u64)] {
        &self.summary.corruptions
    }

    /// Pages verified and found corrupted so far.
    pub fn verified(&self) -> (u64, u64) {
        (self.summary.verified_pages, self.summary.corrupted_pages)
    }

    /// The content stamp the first word of `page` of (`buffer`, `generation`)
    /// must hold (for self-tests).
    pub fn expected_stamp(&self, buffer: u32, generation: Generation, page: u64) -> u64 {
        let index = match self.verify {
            VerifyMode::Pages => page,
            VerifyMode::Full => page * (PAGE / 8) as u64,
        };
        self.stamp(buffer, generation, index)
    }
}

/// SplitMix64's finalizer: a cheap, well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A memmove by the CPU.
fn cpu_copy(job: &CopyJob) {
    cpu_copy_from(job, 0);
}

/// A memmove by the CPU of the bytes of `job` from byte `from` on.
fn cpu_copy_from(job: &CopyJob, from: usize) {
    let from = from.min(job.len);
    // SAFETY: both ranges are inside memory this move owns (the pool range
    // was checked, heap allocations are `len` long); `copy` allows overlap.
    unsafe {
        core::ptr::copy(
            (job.src + from) as *const u8,
            (job.dst + from) as *mut u8,
            job.len - from,
        )
    };
}

/// Moves are timed from submit to completion on the stopwatch: the PMU cycle
/// counter on silicon, the generic counter under QEMU (see `timer`).
fn elapsed_ns(since: u64) -> u64 {
    timer::stopwatch_elapsed_ns(since)
}

/// Moves with the CPU, synchronously: every move is complete when `submit`
/// returns.
pub struct CpuMover {
    store: Store,
}

impl CpuMover {
    /// A CPU mover over the pool region `pool`.
    pub fn new(pool: Range<usize>, salt: u64, verify: VerifyMode) -> Self {
        CpuMover {
            store: Store::new(pool, salt, verify),
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
            cpu_copy(&job);
            self.store.complete(&job, elapsed_ns(start));
        }
        ticket
    }

    fn poll(&mut self, _ticket: Ticket) -> bool {
        true
    }

    fn wait(&mut self, _ticket: Ticket) {}
}

impl MeasuredMover for CpuMover {
    fn kind(&self) -> MoverKind {
        MoverKind::Cpu
    }

    fn take_summary(&mut self) -> MoverSummary {
        self.store.take_summary()
    }
}

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
    pub fn new(channel: DmaChannel, pool: Range<usize>, salt: u64, verify: VerifyMode) -> Self {
        DmaMover {
            store: Store::new(pool, salt, verify),
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
    fn finish(&mut self, result: Result<crate::dma::Completion, DmaFault>) {
        let Some(f) = self.inflight.take() else {
            return;
        };
        if let Err(fault) = result {
            defmt::warn!(
                "DMA move of buffer {=u32} ({=usize} bytes) failed: {}; the CPU redoes it",
                f.job.buffer,
                f.job.len,
                fault
            );
            self.last_fault = Some(fault);
            self.store.summary.dma_fallbacks += 1;
            let overlapping =
                f.job.src < f.job.dst + f.job.len && f.job.dst < f.job.src + f.job.len;
            // A non-overlapping move is redone whole (its source is intact
            // whatever the engine did). An overlapping one resumes at the first
            // block that may not have completed: blocks before it already
            // overwrote sources of their own predecessors, which a full redo
            // would read. If the engine's position is unknown, a full redo is
            // the best left to do, and verification says whether it worked.
            let resume = if overlapping {
                fault.resume_at.unwrap_or(0) as usize
            } else {
                0
            };
            cpu_copy_from(&f.job, resume);
        } else if f.job.dst_heap {
            // Lines the A53 fetched speculatively while the engine wrote.
            // SAFETY: the whole-page allocation this move owns.
            unsafe { cache::invalidate(f.job.dst as *mut u8, f.job.len) };
        }
        self.store.complete(&f.job, elapsed_ns(f.started));
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
                cache::clean(job.src as *const u8, job.len);
            }
            if job.dst_heap {
                cache::invalidate(job.dst as *mut u8, job.len);
            }
        }
        let planned = self
            .channel
            .plan(job.src as u64, job.dst as u64, job.len as u64);
        match planned.and_then(|plan| self.channel.start(plan)) {
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
                cpu_copy(&job);
                self.store.complete(&job, elapsed_ns(start));
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

impl MeasuredMover for DmaMover {
    fn kind(&self) -> MoverKind {
        MoverKind::Dma
    }

    fn take_summary(&mut self) -> MoverSummary {
        self.store.take_summary()
    }
}
