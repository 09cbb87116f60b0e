//! Self-tests of the DMA driver and movers, run on the target (`cargo xtask
//! test` boots the firmware in the DmaTests and FaultTests modes under QEMU).
//! Every check sends a `Record::Check`; the host asserts on the records.
//!
//! [`run`]: copies of 4 KiB to 32 MiB are exact, byte for byte (pool to pool
//! on the driver with full-length blocks, lite-sized blocks forced on the
//! platform's channel, and a real lite channel; pool to pool, heap to pool and
//! pool to heap through the DMA mover with every word verified; downward
//! overlapping moves at distances from 4 KiB up to the size; a plan longer
//! than the control-block area runs as several chains).
//!
//! [`run_faults`]: injected faults are caught: a control block with an
//! invalid length is refused before the engine is started; a byte corrupted
//! behind the mover's back is found by verification and reported with
//! buffer, page, expected and found values; a transfer that never completes
//! times out and the CPU redoes it.

use crate::dma::{DmaChannel, DmaError, CB_SLOTS};
use crate::logger::send_record;
use crate::memory::Layout;
use crate::mover::{span, CpuMover, DmaMover, VerifyMode, PAGE};
use crate::platform::Platform;
use crate::replay::engine_for;
use crate::timer;
use alloc::format;
use alloc::string::String;
use bcm::dma_plan::{Engine, PlanError, LITE_MAX_BLOCK};
use pool::mover::{Location, Move, Mover};
use records::Record;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

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

/// Collects check results and streams each as a record.
struct Checks {
    total: u32,
    failed: u32,
}

impl Checks {
    fn new() -> Self {
        Checks {
            total: 0,
            failed: 0,
        }
    }

    fn check(&mut self, name: &str, passed: bool, detail: String) {
        self.total += 1;
        if passed {
            defmt::info!("check {=str}: ok ({=str})", name, detail.as_str());
        } else {
            self.failed += 1;
            defmt::error!("check {=str}: FAILED ({=str})", name, detail.as_str());
        }
        send_record(&Record::Check {
            name: name.into(),
            passed,
            detail,
        });
    }

    fn finish(self, what: &str) -> u32 {
        if self.failed == 0 {
            defmt::info!("{=str}: all {=u32} checks passed", what, self.total);
        } else {
            defmt::error!(
                "{=str}: {=u32} of {=u32} checks failed",
                what,
                self.failed,
                self.total
            );
        }
        self.failed
    }
}

/// The word at index `i` of test pattern `seed`.
fn pattern(seed: u64, i: usize) -> u32 {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (z ^ (z >> 29)) as u32
}

const GUARD: u32 = 0x6A6A_6A6A;

/// Fills `[at, at + len)` with pattern `seed`.
fn fill(at: usize, len: usize, seed: u64) {
    for i in 0..len / 4 {
        // SAFETY: callers pass ranges inside the pool, which the tests own.
        unsafe { ((at + 4 * i) as *mut u32).write_volatile(pattern(seed, i)) };
    }
}

/// The first word index of `[at, at + len)` that differs from pattern `seed`.
fn first_mismatch(at: usize, len: usize, seed: u64) -> Option<(usize, u32, u32)> {
    (0..len / 4).find_map(|i| {
        // SAFETY: as in `fill`.
        let found = unsafe { ((at + 4 * i) as *const u32).read_volatile() };
        let expected = pattern(seed, i);
        (found != expected).then_some((i * 4, expected, found))
    })
}

fn read_word(at: usize) -> u32 {
    // SAFETY: callers pass pool addresses.
    unsafe { (at as *const u32).read_volatile() }
}

fn write_word(at: usize, value: u32) {
    // SAFETY: callers pass pool addresses.
    unsafe { (at as *mut u32).write_volatile(value) }
}

fn ms(ns: u64) -> String {
    format!("{}.{:03} ms", ns / 1_000_000, ns / 1_000 % 1_000)
}

/// Opens `channel` or records why not.
fn open(checks: &mut Checks, name: &str, channel: u8, engine: Engine) -> Option<DmaChannel> {
    match DmaChannel::open(channel, engine) {
        Ok(ch) => Some(ch),
        Err(e) => {
            checks.check(
                name,
                false,
                format!("cannot open DMA channel {channel}: {e:?}"),
            );
            None
        }
    }
}

/// A lite channel to test on: one from the firmware's mask, or channel 8
/// under QEMU (which models every channel and has none in its mask).
fn lite_channel(platform: &Platform) -> Option<u8> {
    let mask = platform.record.dma_channel_mask.unwrap_or(0);
    (7..=14)
        .find(|c| mask & (1 << c) != 0)
        .or(platform.emulated.then_some(8))
}

/// The DMA mover tests; returns the number of failed checks.
pub fn run(platform: &Platform, layout: &Layout) -> u32 {
    let mut checks = Checks::new();
    let Some(channel) = platform.dma_channel else {
        checks.check(
            "dma channel",
            false,
            "the platform names no usable DMA channel".into(),
        );
        return checks.finish("DMA tests");
    };
    let pool = layout.pool.clone();
    let emulated = platform.emulated;
    let full = engine_for(channel, emulated);
    let forced_lite = Engine {
        max_block: LITE_MAX_BLOCK,
        ..full
    };

    let mut engines = alloc::vec![
        (channel, full, "full blocks"),
        (channel, forced_lite, "lite-sized blocks")
    ];
    match lite_channel(platform) {
        Some(lite) => engines.push((lite, engine_for(lite, emulated), "lite channel")),
        None => defmt::warn!(
            "no lite channel in the firmware's DMA mask: the real lite channel is not tested"
        ),
    }
    for (number, engine, what) in engines {
        let Some(mut ch) = open(&mut checks, "dma open", number, engine) else {
            continue;
        };
        defmt::info!(
            "channel {=u8} ({=str}): planned as {}, DEBUG.LITE reads {=bool}",
            number,
            what,
            defmt::Debug2Format(&engine.kind),
            ch.reports_lite()
        );
        for (k, &len) in RAW_LENGTHS.iter().enumerate() {
            raw_copy(&mut checks, &mut ch, &pool, len, what, k as u64);
        }
    }

    mover_copies(&mut checks, channel, full, &pool);
    checks.finish("DMA tests")
}

/// One driver-level copy from the start of the pool to the page after the
/// source, with guard words on both sides of the destination.
fn raw_copy(
    checks: &mut Checks,
    ch: &mut DmaChannel,
    pool: &core::ops::Range<usize>,
    len: usize,
    what: &str,
    seed: u64,
) {
    let name = format!("dma copy {len} bytes, {what}, channel {}", ch.number());
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
    let layout = core::alloc::Layout::from_size_align(room, PAGE).expect("page-aligned layout");
    let src = if heap_src {
        // SAFETY: `room` is not zero.
        let p = unsafe { alloc::alloc::alloc(layout) };
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
    fill(src, len, seed);
    if heap_src {
        // SAFETY: the allocation just made.
        unsafe { crate::cache::clean(src as *const u8, len) };
    }
    raw_copy_between(
        checks,
        ch,
        &name,
        if heap_src {
            "heap to pool"
        } else {
            "pool to pool"
        },
        src,
        dst,
        len,
        seed,
    );
    if heap_src {
        // SAFETY: allocated above with this layout.
        unsafe { alloc::alloc::dealloc(src as *mut u8, layout) };
    }
}

/// Copies `len` bytes of pattern `seed` from `src` to `dst` (in the pool) and
/// checks every byte and the guard words around the destination.
#[allow(clippy::too_many_arguments)]
fn raw_copy_between(
    checks: &mut Checks,
    ch: &mut DmaChannel,
    name: &str,
    source: &str,
    src: usize,
    dst: usize,
    len: usize,
    seed: u64,
) {
    write_word(dst - 4, GUARD);
    write_word(dst + len, GUARD);
    fill(dst, len, !seed);
    let plan = match ch.plan(src as u64, dst as u64, len as u64) {
        Ok(plan) => plan,
        Err(e) => return checks.check(name, false, format!("plan refused: {e:?}")),
    };
    let blocks = plan.block_count();
    let start = timer::now_ticks();
    let result = ch
        .start(plan)
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
    if let Some((offset, expected, found)) = first_mismatch(dst, len, seed) {
        return checks.check(
            name,
            false,
            format!("{detail}: byte {offset}: expected {expected:#010x}, found {found:#010x}"),
        );
    }
    let guards = (read_word(dst - 4), read_word(dst + len));
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
    // SAFETY: both ranges are inside the pool, which the tests own.
    unsafe { core::ptr::copy(src as *const u8, dst as *mut u8, len) };
    let cpu = timer::ticks_to_ns(timer::now_ticks() - start);
    checks.check(
        name,
        blocks == expected_blocks,
        format!("{detail} (expected {expected_blocks} blocks of at most {max}); the CPU copies it in {}", ms(cpu)),
    );
}

/// Copies through the DMA mover with every word verified.
fn mover_copies(checks: &mut Checks, channel: u8, engine: Engine, pool: &core::ops::Range<usize>) {
    let Some(ch) = open(checks, "dma mover open", channel, engine) else {
        return;
    };
    let mut mover = DmaMover::new(ch, pool.clone(), 0x7E57, VerifyMode::Full);
    let mut buffer = 0u32;
    let pool_len = pool.len() as u64;
    for &size in &MOVER_SIZES {
        let size = size as u64;
        let pages = span(size) as u64 / PAGE as u64;
        // Pool to pool, heap to pool, pool to heap.
        let cases = [
            (
                "pool to pool",
                Location::Pool { offset: 0 },
                Location::Pool {
                    offset: span(size) as u64,
                },
            ),
            (
                "heap to pool",
                Location::Overflow,
                Location::Pool { offset: 0 },
            ),
            (
                "pool to heap",
                Location::Pool { offset: 0 },
                Location::Overflow,
            ),
        ];
        for (what, from, to) in cases {
            let in_pool =
                if matches!(from, Location::Pool { .. }) && matches!(to, Location::Pool { .. }) {
                    2
                } else {
                    1
                };
            if in_pool * span(size) as u64 > pool_len {
                defmt::warn!(
                    "{=str} {=u64} bytes: skipped, the pool is too small",
                    what,
                    size
                );
                continue;
            }
            buffer += 1;
            let name = format!("dma mover {what} {size} bytes");
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
            let name = format!("dma mover downward {size} bytes by {distance}");
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
        let name = format!("dma mover downward {size} bytes by 4096 in several chains");
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
            "dma chains longer than the control-block area",
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

/// The injected-fault tests; returns the number of failed checks.
pub fn run_faults(platform: &Platform, layout: &Layout) -> u32 {
    let mut checks = Checks::new();
    let Some(channel) = platform.dma_channel else {
        checks.check(
            "dma channel",
            false,
            "the platform names no usable DMA channel".into(),
        );
        return checks.finish("fault tests");
    };
    let pool = layout.pool.clone();
    let engine = engine_for(channel, platform.emulated);

    // (a) Refused before the hardware: a length that is not a multiple of 4,
    // and an upward overlapping move.
    if let Some(ch) = open(&mut checks, "fault open", channel, engine) {
        let src = pool.start as u64;
        let refused = ch.plan(src, src + MIB as u64, 4098);
        let started = ch.starts();
        let ok = refused
            == Err(DmaError::Plan(PlanError::LengthNotMultipleOf4 {
                len: 4098,
            }))
            && started == 0;
        checks.check(
            "fault: control block with invalid length refused",
            ok,
            format!("plan of 4098 bytes: {refused:?}; channel started {started} times"),
        );
        let refused = ch.plan(src, src + 4 * KIB as u64, 64 * KIB as u64);
        let ok = matches!(
            refused,
            Err(DmaError::Plan(PlanError::UpwardOverlap { .. }))
        ) && ch.starts() == 0;
        checks.check(
            "fault: upward overlapping move refused",
            ok,
            format!(
                "64 KiB moved up by 4 KiB: {refused:?}; channel started {} times",
                ch.starts()
            ),
        );
    }

    // (b) A byte corrupted behind the mover's back is found by verification.
    let size = 64 * KIB as u64;
    let (buffer, generation, page) = (7u32, 3u32, 5u64);
    if let Some(ch) = open(&mut checks, "fault open", channel, engine) {
        let mut mover = DmaMover::new(ch, pool.clone(), 0xFA17, VerifyMode::Pages);
        let expected = mover.store().expected_stamp(buffer, generation, page);
        // In the destination, between the copy's completion and verification.
        mover
            .store()
            .corrupt_next_copy(page as usize * PAGE + 2, 0x40);
        corruption_case(
            &mut checks,
            "fault: destination corrupted after a DMA copy is detected",
            &mut mover,
            (buffer, generation, page, expected, expected ^ (0x40 << 16)),
            size,
        );
        // In the source, after it was stamped and before the copy.
        let mut mover = DmaMover::new(
            mover.into_channel(),
            pool.clone(),
            0xFA18,
            VerifyMode::Pages,
        );
        let expected = mover.store().expected_stamp(buffer, generation, page);
        mover.submit(&Move::Fill {
            buffer,
            generation,
            size,
            to: Location::Pool { offset: 0 },
        });
        let at = pool.start + page as usize * PAGE;
        write_word(at, read_word(at) ^ 1);
        let t = mover.submit(&Move::Copy {
            buffer,
            generation,
            size,
            from: Location::Pool { offset: 0 },
            to: Location::Pool { offset: MIB as u64 },
        });
        mover.wait(t);
        report_corruption(
            &mut checks,
            "fault: source corrupted before a DMA copy is detected",
            &mut *mover.store(),
            (buffer, generation, page, expected, expected ^ 1),
        );
        drop(mover.into_channel());
    }
    let mut cpu = CpuMover::new(pool.clone(), 0xFA19, VerifyMode::Pages);
    let expected = cpu.store().expected_stamp(buffer, generation, page);
    cpu.store()
        .corrupt_next_copy(page as usize * PAGE + 7, 0x01);
    cpu.submit(&Move::Fill {
        buffer,
        generation,
        size,
        to: Location::Pool { offset: 0 },
    });
    cpu.submit(&Move::Copy {
        buffer,
        generation,
        size,
        from: Location::Pool { offset: 0 },
        to: Location::Overflow,
    });
    cpu.submit(&Move::Free {
        buffer,
        size,
        at: Location::Overflow,
    });
    report_corruption(
        &mut checks,
        "fault: destination corrupted after a CPU copy is detected",
        cpu.store(),
        (buffer, generation, page, expected, expected ^ (1 << 56)),
    );

    // (c) A transfer that never completes (channel disabled in ENABLE, so
    // neither QEMU nor the engine runs it) times out; the CPU redoes it.
    if let Some(ch) = open(&mut checks, "fault open", channel, engine) {
        let mut mover = DmaMover::new(ch, pool.clone(), 0xFA1A, VerifyMode::Pages);
        mover.submit(&Move::Fill {
            buffer,
            generation,
            size,
            to: Location::Pool { offset: 0 },
        });
        crate::dma::set_channel_enabled(channel, false);
        let start = timer::now_ticks();
        let t = mover.submit(&Move::Copy {
            buffer,
            generation,
            size,
            from: Location::Pool { offset: 0 },
            to: Location::Pool { offset: MIB as u64 },
        });
        mover.wait(t);
        let took = timer::ticks_to_ns(timer::now_ticks() - start);
        crate::dma::set_channel_enabled(channel, true);
        let (verified, corrupted) = mover.store().verified();
        let fault = mover.last_fault();
        let ok = mover.fallbacks() == 1
            && matches!(
                fault.map(|f| f.kind),
                Some(crate::dma::FaultKind::Timeout { .. })
            )
            && corrupted == 0
            && verified == 32;
        checks.check(
            "fault: a DMA transfer that never completes times out and the CPU redoes it",
            ok,
            format!("{} fallbacks, fault {fault:?}, {verified} pages verified, {corrupted} corrupted, {}", mover.fallbacks(), ms(took)),
        );
        drop(mover.into_channel());
    }
    checks.finish("fault tests")
}

/// Fills, arms nothing more, copies pool to pool, and expects exactly the
/// corruption `want` = (buffer, generation, page, expected, found).
fn corruption_case(
    checks: &mut Checks,
    name: &str,
    mover: &mut DmaMover,
    want: (u32, u32, u64, u64, u64),
    size: u64,
) {
    let (buffer, generation, ..) = want;
    mover.submit(&Move::Fill {
        buffer,
        generation,
        size,
        to: Location::Pool { offset: 0 },
    });
    let t = mover.submit(&Move::Copy {
        buffer,
        generation,
        size,
        from: Location::Pool { offset: 0 },
        to: Location::Pool { offset: MIB as u64 },
    });
    mover.wait(t);
    report_corruption(checks, name, mover.store(), want);
}

fn report_corruption(
    checks: &mut Checks,
    name: &str,
    store: &mut crate::mover::Store,
    want: (u32, u32, u64, u64, u64),
) {
    let (buffer, _, page, expected, found) = want;
    let (_, corrupted) = store.verified();
    let got = store.corruptions().first().copied();
    let ok = corrupted == 1 && got == Some((buffer, page, expected, found));
    let detail = match got {
        Some((b, p, e, f)) => format!(
            "{corrupted} corrupted page(s); first: buffer {b}, page {p}, expected {e:#018x}, found {f:#018x} (injected: buffer {buffer}, page {page}, found {found:#018x})"
        ),
        None => format!("{corrupted} corrupted pages; nothing reported (injected: buffer {buffer}, page {page})"),
    };
    checks.check(name, ok, detail);
}
