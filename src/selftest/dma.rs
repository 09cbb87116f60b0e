//! The DMA-tests mode: copies of 4 KiB to 32 MiB are exact, byte for byte
//! (pool to pool on the driver with full-length blocks, lite-sized blocks
//! forced on the platform's channel, and a real lite channel; pool to pool,
//! heap to pool and pool to heap through the DMA mover with every word
//! verified; downward overlapping moves at distances from 4 KiB up to the
//! size; a plan longer than the control-block area runs as several chains),
//! and the CPU copy loop the DMA mover falls back to (`selftest::copy`).

use super::{fill, first_mismatch, ms, open, platform_channel, read_word, write_word, Checks};
use super::{KIB, MIB};
use crate::dma::{DmaChannel, CB_SLOTS};
use crate::memory::Layout;
use crate::mover::{span, DmaMover, VerifyMode, PAGE};
use crate::platform::Platform;
use crate::replay::engine_for;
use crate::timer;
use alloc::format;
use bcm::dma_plan::{Engine, LITE_MAX_BLOCK};
use pool::mover::{Location, Move, Mover};
use protocol::check::{self, BlockMode, DmaCheck, Route};

/// Lengths the driver-level copies use: page sized, lite-limit sized, and
/// the sizes of real buffers up to the largest ones in the traces.
const RAW_LENGTHS: [usize; 7] = [
    4 * KIB,
    64 * KIB - 4,
    64 * KIB,
    64 * KIB + 4,
    MIB,
    8 * MIB,
    32 * MIB,
];

/// Buffer sizes for the mover-level copies.
const MOVER_SIZES: [usize; 5] = [4 * KIB, 64 * KIB, MIB, 8 * MIB, 32 * MIB];

/// Guard word around every destination: a write outside it shows.
const GUARD: u32 = 0x6A6A_6A6A;

/// A lite channel to test on: one from the firmware's mask, or channel 8
/// under QEMU (which models every channel and has none in its mask).
pub(super) fn lite_channel(platform: &Platform) -> Option<u8> {
    let mask = platform.record.dma_channel_mask.unwrap_or(0);
    (7..=14)
        .find(|c| mask & (1 << c) != 0)
        .or(platform.emulated.then_some(8))
}

/// The DMA mover tests; returns the number of failed checks.
pub fn run(platform: &Platform, layout: &Layout) -> u32 {
    let mut checks = Checks::new();
    super::copy::run(&mut checks, layout);
    let Some(channel) = platform_channel(&mut checks, platform) else {
        return checks.finish("DMA tests");
    };
    let emulated = platform.emulated;
    let full = engine_for(channel, emulated);
    let forced_lite = Engine {
        max_block: LITE_MAX_BLOCK,
        ..full
    };

    let mut engines = alloc::vec![
        (channel, full, BlockMode::Full),
        (channel, forced_lite, BlockMode::LiteSized)
    ];
    match lite_channel(platform) {
        Some(lite) => engines.push((lite, engine_for(lite, emulated), BlockMode::LiteChannel)),
        None => defmt::warn!(
            "no lite channel in the firmware's DMA mask: the real lite channel is not tested"
        ),
    }
    for (number, engine, blocks) in engines {
        let Some(mut ch) = open(&mut checks, check::DMA_OPEN, number, engine) else {
            continue;
        };
        defmt::info!(
            "channel {=u8} ({=str}): planned as {}, DEBUG.LITE reads {=bool}",
            number,
            blocks.label(),
            defmt::Debug2Format(&engine.kind),
            ch.reports_lite()
        );
        for (k, &len) in RAW_LENGTHS.iter().enumerate() {
            raw_copy(&mut checks, &mut ch, layout, len, blocks, k as u64);
        }
    }

    mover_copies(&mut checks, channel, full, layout);
    checks.finish("DMA tests")
}

/// One driver-level copy from the start of the pool to the page after the
/// source, with guard words on both sides of the destination.
fn raw_copy(
    checks: &mut Checks,
    ch: &mut DmaChannel,
    layout: &Layout,
    len: usize,
    blocks: BlockMode,
    seed: u64,
) {
    let pool = &layout.pool;
    let name = DmaCheck::Copy {
        len: len as u64,
        blocks,
    };
    let name = format!("{name}");
    let room = len.next_multiple_of(PAGE) + PAGE;
    // The destination sits in the pool after a guard page; the source too
    // when the pool holds both, else in a heap allocation (cleaned to memory
    // after the CPU fills it, since the heap is cacheable).
    let heap_src = pool.start + 2 * room > pool.end;
    let dst = if heap_src {
        pool.start + PAGE
    } else {
        pool.start + room
    };
    if dst + len + 4 > pool.end {
        defmt::warn!("{=str}: skipped, the pool is too small", name.as_str());
        return;
    }
    let heap = core::alloc::Layout::from_size_align(room, PAGE).expect("page-aligned layout");
    let src = if heap_src {
        // SAFETY: `room` is not zero.
        let p = unsafe { alloc::alloc::alloc(heap) };
        if p.is_null() {
            return checks.check(
                &name,
                false,
                format!("no {room} bytes of heap for the source"),
            );
        }
        p as usize
    } else {
        pool.start
    };
    // SAFETY: the source is pool memory the tests own or the allocation
    // just made, `len` bytes long; no transfer is running.
    unsafe { fill(src, len, seed) };
    if heap_src {
        // SAFETY: the allocation just made.
        unsafe { crate::cache::clean_invalidate(src as *const u8, len) };
    }
    let source = if heap_src {
        "heap to pool"
    } else {
        "pool to pool"
    };
    // SAFETY: the destination and its guard words lie in the pool (checked
    // above), the source in the pool before it or in the cleaned allocation.
    unsafe { raw_copy_between(checks, ch, &name, source, src, dst, len, seed) };
    if heap_src {
        // SAFETY: allocated above with this layout.
        unsafe { alloc::alloc::dealloc(src as *mut u8, heap) };
    }
}

/// Copies `len` bytes of pattern `seed` from `src` to `dst` (in the pool) and
/// checks every byte and the guard words around the destination.
///
/// # Safety
/// `[src, src + len)` must hold pattern `seed` in memory the engine reads
/// correctly (the pool, or cleaned heap), `[dst - 4, dst + len + 4)` must be
/// pool memory the caller owns, and the two must not overlap.
#[allow(clippy::too_many_arguments)]
unsafe fn raw_copy_between(
    checks: &mut Checks,
    ch: &mut DmaChannel,
    name: &str,
    source: &str,
    src: usize,
    dst: usize,
    len: usize,
    seed: u64,
) {
    // SAFETY: the caller's guarantee for the destination and its guard
    // words; the channel is idle.
    unsafe {
        write_word(dst - 4, GUARD);
        write_word(dst + len, GUARD);
        fill(dst, len, !seed);
    }
    let plan = match ch.plan(src as u64, dst as u64, len as u64) {
        Ok(plan) => plan,
        Err(e) => return checks.check(name, false, format!("plan refused: {e:?}")),
    };
    let blocks = plan.block_count();
    let start = timer::now_ticks();
    // SAFETY: source and destination lie in the pool (or the heap
    // allocation the caller cleaned), which the tests own; nothing touches
    // them until `wait` returns, after which the channel is idle or reset.
    let started = unsafe { ch.start(plan) };
    let result = started
        .map_err(|e| format!("{e:?}"))
        .and_then(|()| ch.wait().map_err(|f| format!("{f:?}")));
    let took = timer::ticks_to_ns(timer::now_ticks() - start);
    let detail = format!(
        "{len} bytes {source}, channel {}, {blocks} blocks, {}",
        ch.number(),
        ms(took)
    );
    if let Err(e) = result {
        return checks.check(name, false, format!("{detail}: the transfer failed: {e}"));
    }
    // SAFETY: the transfer is complete (or failed and was reset above).
    if let Some((offset, expected, found)) = unsafe { first_mismatch(dst, len, seed) } {
        return checks.check(
            name,
            false,
            format!("{detail}: byte {offset}: expected {expected:#010x}, found {found:#010x}"),
        );
    }
    // SAFETY: the guard words placed above; the channel is idle.
    let guards = unsafe { (read_word(dst - 4), read_word(dst + len)) };
    if guards != (GUARD, GUARD) {
        return checks.check(
            name,
            false,
            format!("{detail}: wrote outside the destination: guards {guards:x?}"),
        );
    }
    let max = ch.engine().block_limit();
    let expected_blocks = len.div_ceil(max as usize);
    // The same copy by the CPU, for comparison (not checked: speed is a
    // measurement, and under QEMU an emulation artefact).
    let start = timer::now_ticks();
    // SAFETY: both ranges are inside the pool (or the cleaned allocation),
    // which the tests own; the channel is idle.
    unsafe { crate::copy::copy(dst as *mut u8, src as *const u8, len) };
    let cpu = timer::ticks_to_ns(timer::now_ticks() - start);
    checks.check(
        name,
        blocks == expected_blocks,
        format!("{detail} (expected {expected_blocks} blocks of at most {max}); the CPU copies it in {}", ms(cpu)),
    );
}

/// Copies through the DMA mover with every word verified.
fn mover_copies(checks: &mut Checks, channel: u8, engine: Engine, layout: &Layout) {
    let pool = &layout.pool;
    let Some(ch) = open(checks, check::DMA_MOVER_OPEN, channel, engine) else {
        return;
    };
    // SAFETY: the layout's pool; the tests use nothing else in it while
    // the mover lives.
    let mut mover = unsafe { DmaMover::new(ch, pool.clone(), 0x7E57, VerifyMode::Full) };
    let mut buffer = 0u32;
    let pool_len = pool.len() as u64;
    for &size in &MOVER_SIZES {
        let size = size as u64;
        let pages = span(size) as u64 / PAGE as u64;
        for route in Route::ALL {
            let (from, to) = match route {
                Route::PoolToPool => (
                    Location::Pool { offset: 0 },
                    Location::Pool {
                        offset: span(size) as u64,
                    },
                ),
                Route::HeapToPool => (Location::Overflow, Location::Pool { offset: 0 }),
                Route::PoolToHeap => (Location::Pool { offset: 0 }, Location::Overflow),
            };
            let in_pool =
                if matches!(from, Location::Pool { .. }) && matches!(to, Location::Pool { .. }) {
                    2
                } else {
                    1
                };
            if in_pool * span(size) as u64 > pool_len {
                defmt::warn!(
                    "{=str} {=u64} bytes: skipped, the pool is too small",
                    route.label(),
                    size
                );
                continue;
            }
            buffer += 1;
            let name = format!("{}", DmaCheck::Mover { route, size });
            mover_case(checks, &mut mover, &name, buffer, size, from, to, pages);
        }
        // Downward overlapping moves at distances from 4 KiB to the size.
        let fixed = [4 * KIB as u64, 64 * KIB as u64, MIB as u64];
        for (k, distance) in [fixed[0], fixed[1], fixed[2], size / 2, size]
            .into_iter()
            .enumerate()
        {
            // Each distance once: half the size or the size itself may
            // already be one of the fixed distances.
            let repeated = k >= 3 && fixed.contains(&distance);
            if repeated
                || distance == 0
                || distance > size
                || distance + span(size) as u64 > pool_len
            {
                if distance + span(size) as u64 > pool_len && !repeated {
                    defmt::warn!(
                        "downward move of {=u64} bytes by {=u64}: skipped, the pool is too small",
                        size,
                        distance
                    );
                }
                continue;
            }
            buffer += 1;
            let name = format!("{}", DmaCheck::Downward { size, distance });
            let (from, to) = (
                Location::Pool { offset: distance },
                Location::Pool { offset: 0 },
            );
            mover_case(checks, &mut mover, &name, buffer, size, from, to, pages);
        }
    }
    // A downward move by one page needing more blocks than the control-block
    // area holds runs as several chains.
    let size = (CB_SLOTS as u64 + CB_SLOTS as u64 / 4) * PAGE as u64;
    if size + PAGE as u64 <= pool_len {
        buffer += 1;
        let starts = mover.channel().starts();
        let name = DmaCheck::DownwardChained {
            size,
            distance: PAGE as u64,
        };
        let name = format!("{name}");
        let (from, to) = (
            Location::Pool {
                offset: PAGE as u64,
            },
            Location::Pool { offset: 0 },
        );
        mover_case(
            checks,
            &mut mover,
            &name,
            buffer,
            size,
            from,
            to,
            size / PAGE as u64,
        );
        let chains = mover.channel().starts() - starts;
        checks.check(
            check::CHAINS_LONGER_THAN_CB_AREA,
            chains >= 2,
            format!("{chains} chains for {size} bytes"),
        );
    }
    drop(mover.into_channel());
}

/// Fills a buffer at `from`, moves it to `to`, and checks the mover verified
/// every page of both with no mismatch and no CPU fallback.
#[allow(clippy::too_many_arguments)]
fn mover_case(
    checks: &mut Checks,
    mover: &mut DmaMover,
    name: &str,
    buffer: u32,
    size: u64,
    from: Location,
    to: Location,
    pages: u64,
) {
    let (verified0, corrupted0) = mover.store().verified();
    let (fallbacks0, starts0) = (mover.fallbacks(), mover.channel().starts());
    let generation = 1;
    mover.submit(&Move::Fill {
        buffer,
        generation,
        size,
        to: from,
    });
    let start = timer::now_ticks();
    let t = mover.submit(&Move::Copy {
        buffer,
        generation,
        size,
        from,
        to,
    });
    mover.wait(t);
    let took = timer::ticks_to_ns(timer::now_ticks() - start);
    mover.submit(&Move::Free {
        buffer,
        size,
        at: to,
    });
    let (verified, corrupted) = mover.store().verified();
    let (verified, corrupted) = (verified - verified0, corrupted - corrupted0);
    let fallbacks = mover.fallbacks() - fallbacks0;
    let starts = mover.channel().starts() - starts0;
    let detail = format!(
        "{size} bytes, channel {}, {starts} chains, {}, {verified} pages verified, {corrupted} corrupted, {fallbacks} CPU fallbacks",
        mover.channel().number(),
        ms(took)
    );
    let passed = corrupted == 0 && verified == 2 * pages && fallbacks == 0 && starts >= 1;
    checks.check(name, passed, detail);
}
