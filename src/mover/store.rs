//! What both movers share: where every buffer's bytes are, the preparation
//! of a move into a [`CopyJob`], its completion, and the counts.

use super::{content, MAX_REPORTED_CORRUPTIONS, PAGE};
use alloc::alloc::{alloc, dealloc, Layout as AllocLayout};
use alloc::vec::Vec;
use bcm::content::{span, Content, VerifyMode};
use bcm::copy;
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use pool::mover::{Generation, Location, Move, Ticket};
use pool::replay::MoverSummary;

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

/// A copy resolved to addresses, waiting to run or running. Only
/// [`Store::prepare`] makes one: its ranges are memory this move owns (the
/// pool range checked against the pool, or the buffer's own allocation).
#[derive(Clone, Copy, Debug)]
pub(super) struct CopyJob {
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
pub(super) enum Prepared {
    /// Nothing left to do (fills, drops, frees).
    Done,
    /// Bytes to copy.
    Copy(CopyJob),
}

/// Everything the two movers share: memory, content, verification, counts.
pub struct Store {
    pool: Range<usize>,
    backing: Vec<Option<Backing>>,
    content: Content,
    pub(super) summary: MoverSummary,
    next_ticket: u64,
    /// Test hook: XOR the byte at this offset of the next copy's destination
    /// after the copy and before verification.
    corrupt_next: Option<(usize, u8)>,
}

impl Store {
    /// A store over the pool region `pool`; `salt` (the run number, say)
    /// makes this run's content differ from every other run's.
    ///
    /// # Safety
    /// `pool` must be mapped, page-aligned memory that nothing but this
    /// store's mover reads or writes while the store lives.
    pub unsafe fn new(pool: Range<usize>, salt: u64, verify: VerifyMode) -> Self {
        Store {
            pool,
            backing: Vec::new(),
            content: Content::new(salt, verify),
            summary: MoverSummary::default(),
            next_ticket: 0,
            corrupt_next: None,
        }
    }

    pub(super) fn ticket(&mut self) -> Ticket {
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
    ///
    /// The pool core never hands out a move whose ranges a move in flight
    /// still uses; the mover keeps at most one copy in flight and completes
    /// it before preparing the next, so the ranges here are this move's.
    pub(super) fn prepare(&mut self, mv: &Move) -> Prepared {
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
                // SAFETY: the destination is this move's: a checked pool
                // range or a fresh page-aligned allocation of `len` bytes.
                unsafe {
                    content::write(&self.content, buffer, generation, dst, len);
                    self.verify_range(buffer, generation, dst, len);
                }
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
    ///
    /// # Safety
    /// `job` must come from this store's [`prepare`](Self::prepare), and its
    /// copy must be over: no DMA transfer may still be writing it.
    pub(super) unsafe fn complete(&mut self, job: &CopyJob, latency_ns: u64) {
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
        // SAFETY: the destination of a completed copy this move owns.
        unsafe { self.verify_range(job.buffer, job.generation, job.dst, job.len) };
        if job.src_pool {
            // Pages of the source the destination does not cover are free now.
            let vacated = copy::vacated(job.src, job.dst, job.len);
            // SAFETY: pool pages this move vacated; no move in flight touches
            // them (the pool core's guarantee).
            unsafe { content::poison(vacated) };
        }
    }

    /// Checks every page of `[dst, dst + len)` against the content of
    /// (`buffer`, `generation`) and counts the result.
    ///
    /// # Safety
    /// As for `content::check`: mapped, page aligned, nothing writing it.
    unsafe fn verify_range(&mut self, buffer: u32, generation: Generation, dst: usize, len: usize) {
        let summary = &mut self.summary;
        let on_mismatch = |m: bcm::content::Mismatch| {
            summary.corrupted_pages += 1;
            if summary.corruptions.len() < MAX_REPORTED_CORRUPTIONS {
                summary
                    .corruptions
                    .push((buffer, m.page, m.expected, m.found));
            }
        };
        // SAFETY: the caller's guarantee.
        let pages =
            unsafe { content::check(&self.content, buffer, generation, dst, len, on_mismatch) };
        self.summary.verified_pages += pages;
    }

    /// The measurements so far; counting starts afresh.
    pub(super) fn take_summary(&mut self) -> MoverSummary {
        core::mem::take(&mut self.summary)
    }

    /// The recorded corruptions (for self-tests).
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
        self.content.first_word(buffer, generation, page)
    }
}
