//! The fault-tests mode: injected faults are caught. A control block with
//! an invalid length and an upward overlapping move are refused before the
//! engine is started; a byte corrupted behind the mover's back is found by
//! verification and reported with buffer, page, expected and found values; a
//! transfer that never completes (a control block linked to itself) times
//! out, is aborted, and the CPU redoes it.

use super::{ms, open, platform_channel, read_word, write_word, Checks, KIB, MIB};
use crate::dma::{self, DmaError, FaultKind};
use crate::memory::Layout;
use crate::mover::{CpuMover, DmaMover, Store, VerifyMode, PAGE};
use crate::platform::Platform;
use crate::replay::engine_for;
use crate::timer;
use alloc::format;
use bcm::dma_plan::PlanError;
use pool::mover::{Location, Move, Mover};
use protocol::check::{fault as name, FAULT_OPEN};

/// The injected-fault tests; returns the number of failed checks.
pub fn run(platform: &Platform, layout: &Layout) -> u32 {
    let mut checks = Checks::new();
    let Some(channel) = platform_channel(&mut checks, platform) else {
        return checks.finish("fault tests");
    };
    let pool = layout.pool.clone();
    let engine = engine_for(channel, platform.emulated);

    // (a) Refused before the hardware: a length that is not a multiple of 4,
    // and an upward overlapping move.
    if let Some(ch) = open(&mut checks, FAULT_OPEN, channel, engine) {
        let src = pool.start as u64;
        let refused = ch.plan(src, src + MIB as u64, 4098);
        let started = ch.starts();
        let ok = refused
            == Err(DmaError::Plan(PlanError::LengthNotMultipleOf4 {
                len: 4098,
            }))
            && started == 0;
        checks.check(
            name::INVALID_LENGTH_REFUSED,
            ok,
            format!("plan of 4098 bytes: {refused:?}; channel started {started} times"),
        );
        let refused = ch.plan(src, src + 4 * KIB as u64, 64 * KIB as u64);
        let ok = matches!(
            refused,
            Err(DmaError::Plan(PlanError::UpwardOverlap { .. }))
        ) && ch.starts() == 0;
        checks.check(
            name::UPWARD_OVERLAP_REFUSED,
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
    if let Some(ch) = open(&mut checks, FAULT_OPEN, channel, engine) {
        // SAFETY: the layout's pool, which only this mover uses while it
        // lives (each test's mover is gone before the next is made).
        let mut mover = unsafe { DmaMover::new(ch, pool.clone(), 0xFA17, VerifyMode::Pages) };
        let expected = mover.store().expected_stamp(buffer, generation, page);
        // In the destination, between the copy's completion and verification.
        mover
            .store()
            .corrupt_next_copy(page as usize * PAGE + 2, 0x40);
        corruption_case(
            &mut checks,
            name::DMA_DESTINATION_CORRUPTED,
            &mut mover,
            (buffer, generation, page, expected, expected ^ (0x40 << 16)),
            size,
        );
        // In the source, after it was stamped and before the copy.
        let channel = mover.into_channel();
        // SAFETY: the layout's pool, which only this mover uses while it
        // lives (each test's mover is gone before the next is made).
        let mut mover = unsafe { DmaMover::new(channel, pool.clone(), 0xFA18, VerifyMode::Pages) };
        let expected = mover.store().expected_stamp(buffer, generation, page);
        mover.submit(&Move::Fill {
            buffer,
            generation,
            size,
            to: Location::Pool { offset: 0 },
        });
        let at = pool.start + page as usize * PAGE;
        // SAFETY: a word of the stamped source in the pool; the mover is
        // idle (the fill completed synchronously).
        unsafe { write_word(at, read_word(at) ^ 1) };
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
            name::DMA_SOURCE_CORRUPTED,
            &mut *mover.store(),
            (buffer, generation, page, expected, expected ^ 1),
        );
        drop(mover.into_channel());
    }
    // SAFETY: the layout's pool; the DMA movers above are gone.
    let mut cpu = unsafe { CpuMover::new(pool.clone(), 0xFA19, VerifyMode::Pages) };
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
        name::CPU_DESTINATION_CORRUPTED,
        cpu.store(),
        (buffer, generation, page, expected, expected ^ (1 << 56)),
    );
    drop(cpu);

    // (c) A transfer that never completes: its control block's NEXTCONBK
    // points at itself, so the engine copies the same 64 KiB forever. It
    // times out, the channel is aborted (pause, drain, reset) and the CPU
    // redoes the copy. Under QEMU, which runs a chain inside the CS write
    // that starts it and would loop there for ever, the channel's ENABLE
    // bit is cleared first so QEMU leaves the chain alone; on silicon the
    // loop really runs until the abort.
    if let Some(ch) = open(&mut checks, FAULT_OPEN, channel, engine) {
        // SAFETY: the layout's pool, which only this mover uses while it
        // lives (each test's mover is gone before the next is made).
        let mut mover = unsafe { DmaMover::new(ch, pool.clone(), 0xFA1A, VerifyMode::Pages) };
        mover.submit(&Move::Fill {
            buffer,
            generation,
            size,
            to: Location::Pool { offset: 0 },
        });
        mover.self_link_next_copy();
        if platform.emulated {
            dma::set_channel_enabled(channel, false);
        }
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
        if platform.emulated {
            dma::set_channel_enabled(channel, true);
        }
        let (verified, corrupted) = mover.store().verified();
        let fault = mover.last_fault();
        let ok = mover.fallbacks() == 1
            && matches!(fault.map(|f| f.kind), Some(FaultKind::Timeout { .. }))
            && corrupted == 0
            && verified == 32;
        checks.check(
            name::TIMEOUT_REDONE_BY_CPU,
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
    store: &mut Store,
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
