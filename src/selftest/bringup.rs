//! The bring-up mode: what a user runs first on a new Pi, before trusting
//! any replay, in well under a minute on silicon. After the platform block
//! (sent at boot, with the clocks set and measured and the throttled
//! flags), it measures and sends as `Record::Bringup`:
//!
//! 1. the PMU cycle counter against CNTPCT_EL0 over [`CALIBRATION_US`];
//! 2. the cache-coherency probe: a pattern written through the cacheable
//!    heap over an older one already in memory, copied to the pool by the
//!    DMA engine without cleaning the heap, then again after `dc civac`. On
//!    silicon the first copy must carry stale words (the engine reads SDRAM
//!    behind the A53's caches), under QEMU it cannot (no caches modelled);
//! 3. DMA (a full and a lite channel) and CPU copy throughput for 4 KiB,
//!    64 KiB, 1 MiB and 8 MiB, heap to pool, pool to heap and pool to pool,
//!    best of [`REPEATS`], every copy verified word by word.
//!
//! The host renders the records as one table, marked QEMU or silicon.

use super::{fill, first_mismatch, Checks, KIB, MIB};
use crate::dma::DmaChannel;
use crate::logger::send_record;
use crate::memory::Layout;
use crate::mover::PAGE;
use crate::platform::Platform;
use crate::replay::engine_for;
use crate::{cache, copy, timer};
use alloc::alloc::{alloc, dealloc, Layout as AllocLayout};
use alloc::format;
use alloc::string::String;
use bcm::dma_plan::{Engine, TiWord, TI};
use protocol::check::bringup as name;
use records::bringup::{CoherencyProbe, CopyEngine, CopyRoute, CopyThroughput};
use records::{Bringup, BringupItem, Record};

/// The calibration interval of the bring-up (longer than a run's).
const CALIBRATION_US: u64 = 100_000;
/// Copy sizes measured.
const SIZES: [usize; 4] = [4 * KIB, 64 * KIB, MIB, 8 * MIB];
/// Copies per measurement; the fastest counts.
const REPEATS: u32 = 3;
/// Bytes of the coherency probe: more than the 32 KiB L1 data cache, well
/// inside the 512 KiB L2, so the dirty lines are still cached when the
/// engine reads.
const PROBE_BYTES: usize = 64 * KIB;

fn send(item: BringupItem) {
    send_record(&Record::Bringup(item));
}

/// A page-aligned heap allocation, freed on drop.
struct HeapBuffer {
    ptr: *mut u8,
    layout: AllocLayout,
}

impl HeapBuffer {
    fn new(len: usize) -> Option<Self> {
        let layout = AllocLayout::from_size_align(len, PAGE).ok()?;
        // SAFETY: `len` is not zero (the callers ask for at least a page).
        let ptr = unsafe { alloc(layout) };
        (!ptr.is_null()).then_some(HeapBuffer { ptr, layout })
    }

    fn addr(&self) -> usize {
        self.ptr as usize
    }
}

impl Drop for HeapBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) };
    }
}

/// Runs the bring-up; returns the number of failed checks.
pub fn run(platform: &Platform, layout: &Layout) -> u32 {
    let mut checks = Checks::new();
    let p = &platform.record;
    let hz = |v: Option<u32>| v.map_or_else(|| String::from("unavailable"), |v| format!("{v} Hz"));
    checks.check(
        name::CLOCKS,
        p.arm_clock_set_hz.is_some() && p.core_clock_set_hz.is_some(),
        format!(
            "ARM {} (max {}), core {} (max {}); measured ARM {}, core {}",
            hz(p.arm_clock_set_hz),
            hz(p.arm_max_clock_hz),
            hz(p.core_clock_set_hz),
            hz(p.core_max_clock_hz),
            hz(p.arm_clock_measured_hz),
            hz(p.core_clock_measured_hz)
        ),
    );

    let calibration = timer::calibrate(CALIBRATION_US);
    send(BringupItem::Calibration(calibration));
    let (ok, detail) = match (platform.emulated, p.arm_clock_set_hz) {
        (true, _) => (
            calibration.cycles > 0,
            format!("{}; QEMU: only has to count", calibration.describe()),
        ),
        (false, Some(arm)) => {
            let d = calibration.deviation_from(arm.into());
            (
                d.is_some_and(|d| d <= records::conditions::CLOCK_TOLERANCE),
                format!(
                    "{}; {:.2} % from the ARM clock set ({arm} Hz), at most 1 % allowed",
                    calibration.describe(),
                    d.unwrap_or(f64::NAN) * 100.0
                ),
            )
        }
        (false, None) => (false, String::from("no ARM clock to compare with")),
    };
    checks.check(name::CALIBRATION, ok, detail);

    let Some(full) = platform.dma_channel else {
        checks.check(
            protocol::check::NO_DMA_CHANNEL,
            false,
            "the platform names no usable DMA channel".into(),
        );
        return checks.finish("bring-up");
    };
    let mut results = Bringup::default();
    coherency_probe(platform, layout, full, &mut results);
    let (ok, detail) = results.coherency_verdict(platform.emulated);
    checks.check(name::COHERENCY, ok, detail);

    let mut engines = alloc::vec![(CopyEngine::DmaFull, Some(full))];
    match super::dma::lite_channel(platform) {
        Some(lite) => engines.push((CopyEngine::DmaLite, Some(lite))),
        None => send(BringupItem::Note(String::from(
            "no lite channel (7-14) in the firmware's DMA mask: lite channels not measured",
        ))),
    }
    engines.push((CopyEngine::Cpu, None));
    let (mut copies, mut wrong) = (0, 0);
    for (engine, channel) in engines {
        let mut ch = match channel.map(|n| DmaChannel::open(n, engine_for(n, platform.emulated))) {
            Some(Ok(ch)) => Some(ch),
            Some(Err(e)) => {
                send(BringupItem::Note(format!(
                    "{}: cannot open: {e:?}",
                    engine.label()
                )));
                continue;
            }
            None => None,
        };
        for size in SIZES {
            for route in CopyRoute::ALL {
                if let Some(m) = measure(engine, ch.as_mut(), route, size, layout) {
                    copies += 1;
                    wrong += u32::from(!m.correct);
                    send(BringupItem::Copy(m));
                }
            }
        }
    }
    checks.check(
        name::COPIES_EXACT,
        copies > 0 && wrong == 0,
        format!("{copies} measurements of {REPEATS} copies each, {wrong} with a wrong word"),
    );
    checks.finish("bring-up")
}

/// The probe: see the module doc. Pattern A is in memory, pattern B only in
/// the cache (dirty), the pool destination holds a third one.
fn coherency_probe(platform: &Platform, layout: &Layout, channel: u8, out: &mut Bringup) {
    let Some(heap) = HeapBuffer::new(PROBE_BYTES) else {
        return send(BringupItem::Note(String::from(
            "no heap for the coherency probe",
        )));
    };
    let mut ch = match DmaChannel::open(channel, engine_for(channel, platform.emulated)) {
        Ok(ch) => ch,
        Err(e) => {
            return send(BringupItem::Note(format!(
                "coherency probe: cannot open: {e:?}"
            )))
        }
    };
    let (src, dst) = (heap.addr(), layout.pool.start);
    let (old, new) = (0x01d_u64, 0x2e4_u64);
    for cleaned in [false, true] {
        // SAFETY: the heap buffer and the pool's first 64 KiB are the
        // probe's; no transfer runs.
        unsafe {
            fill(src, PROBE_BYTES, old);
            cache::clean_invalidate(src as *const u8, PROBE_BYTES);
            fill(src, PROBE_BYTES, new);
            fill(dst, PROBE_BYTES, 0x3f7);
            if cleaned {
                cache::clean_invalidate(src as *const u8, PROBE_BYTES);
            }
        }
        let done = ch
            .plan(src as u64, dst as u64, PROBE_BYTES as u64)
            // SAFETY: both ranges are the probe's; the uncleaned case is the
            // point of the probe, and only the pool copy is read afterwards.
            .and_then(|plan| unsafe { ch.start(plan) })
            .map_err(|e| format!("{e:?}"))
            .and_then(|()| ch.wait().map(|_| ()).map_err(|f| format!("{f:?}")));
        if let Err(e) = done {
            return send(BringupItem::Note(format!(
                "coherency probe: transfer failed: {e}"
            )));
        }
        let words = PROBE_BYTES / 4;
        let (mut stale, mut wrong) = (0, 0);
        for i in 0..words {
            // SAFETY: the pool's first 64 KiB, written by the finished transfer.
            let found = unsafe { super::read_word(dst + 4 * i) };
            if found == super::pattern(old, i) {
                stale += 1;
            } else if found != super::pattern(new, i) {
                wrong += 1;
            }
        }
        let probe = CoherencyProbe {
            cleaned,
            words: words as u64,
            stale_words: stale,
            wrong_words: wrong,
        };
        out.push(BringupItem::Coherency(probe));
        send(BringupItem::Coherency(probe));
    }
}

/// Where a route's source and destination are: the pool's start, the
/// second half of the measured region in the pool, or the heap buffer.
fn ends(route: CopyRoute, pool: usize, heap: usize, size: usize) -> (usize, usize) {
    let room = size.next_multiple_of(PAGE);
    match route {
        CopyRoute::HeapToPool => (heap, pool),
        CopyRoute::PoolToHeap => (pool, heap),
        CopyRoute::PoolToPool => (pool, pool + room),
    }
}

/// The best of [`REPEATS`] copies of `size` bytes on `route`, each one
/// verified; `None` (with a note) when it cannot be measured here.
fn measure(
    engine: CopyEngine,
    mut ch: Option<&mut DmaChannel>,
    route: CopyRoute,
    size: usize,
    layout: &Layout,
) -> Option<CopyThroughput> {
    if 2 * size.next_multiple_of(PAGE) > layout.pool.len() {
        send(BringupItem::Note(format!(
            "{size} bytes: the pool is too small"
        )));
        return None;
    }
    let heap = HeapBuffer::new(size.next_multiple_of(PAGE))?;
    let (src, dst) = ends(route, layout.pool.start, heap.addr(), size);
    let (src_heap, dst_heap) = (
        route == CopyRoute::HeapToPool,
        route == CopyRoute::PoolToHeap,
    );
    let seed = (size as u64) ^ ((route as u64) << 40);
    let mut best = u64::MAX;
    let mut correct = true;
    let mut routine = String::from(copy::ROUTINE);
    for _ in 0..REPEATS {
        // SAFETY: source and destination are the measurement's own pool
        // range and heap buffer; no transfer runs.
        unsafe {
            fill(src, size, seed);
            fill(dst, size, !seed);
        }
        let start = timer::stopwatch_ticks();
        match ch.as_deref_mut() {
            // SAFETY: as above; the heap side gets the mover's maintenance.
            Some(ch) => match unsafe { dma_copy(ch, src, dst, size, src_heap, dst_heap) } {
                Ok(r) => routine = r,
                Err(e) => {
                    send(BringupItem::Note(format!("{}: {e}", engine.label())));
                    return None;
                }
            },
            // SAFETY: as above; Normal memory, disjoint ranges.
            None => unsafe { copy::copy(dst as *mut u8, src as *const u8, size) },
        }
        best = best.min(timer::stopwatch_elapsed_ns(start));
        // SAFETY: the copy is complete; the destination is the measurement's.
        correct &= unsafe { first_mismatch(dst, size, seed) }.is_none();
    }
    Some(CopyThroughput {
        engine,
        routine,
        route,
        bytes: size as u64,
        best_ns: best,
        repeats: REPEATS,
        correct,
    })
}

/// One DMA copy with the cache maintenance the DMA mover does; returns the
/// routine in words.
///
/// # Safety
/// Both ranges must be owned by the caller, heap ones whole pages.
unsafe fn dma_copy(
    ch: &mut DmaChannel,
    src: usize,
    dst: usize,
    len: usize,
    src_heap: bool,
    dst_heap: bool,
) -> Result<String, String> {
    // SAFETY: the caller's guarantee.
    unsafe {
        if src_heap {
            cache::clean_invalidate(src as *const u8, len);
        }
        if dst_heap {
            cache::invalidate(dst as *mut u8, len.next_multiple_of(PAGE));
        }
    }
    let plan = ch
        .plan(src as u64, dst as u64, len as u64)
        .map_err(|e| format!("plan refused: {e:?}"))?;
    let routine = routine_of(ch.number(), ch.engine(), plan.ti());
    // SAFETY: the caller's guarantee; maintenance done above.
    unsafe { ch.start(plan) }.map_err(|e| format!("{e:?}"))?;
    ch.wait().map_err(|f| format!("transfer failed: {f:?}"))?;
    if dst_heap {
        // SAFETY: the caller's heap buffer, whole pages.
        unsafe { cache::invalidate(dst as *mut u8, len.next_multiple_of(PAGE)) };
    }
    Ok(routine)
}

fn routine_of(number: u8, engine: &Engine, ti: u32) -> String {
    let ti = TiWord::new(ti);
    let bits = |f| if ti.is_set(f) { 128 } else { 32 };
    format!(
        "channel {number} ({}), {}-bit reads, {}-bit writes, bursts of {}",
        if matches!(engine.kind, bcm::dma_plan::ChannelKind::Lite) {
            "lite"
        } else {
            "full"
        },
        bits(TI::SRC_WIDTH),
        bits(TI::DEST_WIDTH),
        ti.read(TI::BURST_LENGTH)
    )
}
