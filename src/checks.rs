//! The modes that test the boot slice itself: boot checks, a deliberate
//! panic, a deliberate data abort.

use crate::command::DATA_ABORT_ADDRESS;
use crate::logger::send_record;
use crate::memory::Layout;
use crate::platform::Platform;
use crate::{mmu, timer};
use aarch64_cpu::registers::{CurrentEL, Readable};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

fn check(name: &str, passed: bool, detail: String) -> bool {
    if passed {
        defmt::info!("check {=str}: ok ({=str})", name, detail.as_str());
    } else {
        defmt::error!("check {=str}: FAILED ({=str})", name, detail.as_str());
    }
    send_record(&records::Record::Check {
        name: name.to_string(),
        passed,
        detail,
    });
    passed
}

/// Asserts the state boot promises; returns the number of failed checks.
pub fn boot_checks(platform: &Platform, layout: &Layout) -> u32 {
    let mut failed = 0;
    let mut run = |name: &str, passed: bool, detail: String| {
        if !check(name, passed, detail) {
            failed += 1;
        }
    };

    let el = CurrentEL.read(CurrentEL::EL);
    run(
        "el1",
        el == 1,
        format!("running at EL{el}, entered at EL{}", platform.entry_el),
    );

    let (mmu_on, dcache, icache) = mmu::state();
    run("mmu", mmu_on, format!("SCTLR_EL1.M = {}", mmu_on as u8));
    run(
        "caches",
        dcache && icache,
        format!(
            "SCTLR_EL1.C = {}, SCTLR_EL1.I = {}",
            dcache as u8, icache as u8
        ),
    );

    let rev = platform.board.board_revision;
    run(
        "board-revision",
        rev.is_some(),
        match rev {
            Some(r) => format!("mailbox answered board revision {r:#x}"),
            None => "mailbox did not answer board revision".to_string(),
        },
    );

    let split = match (platform.board.arm_memory, platform.board.vc_memory) {
        (Some((ab, asz)), Some((vb, vsz))) => {
            let ok = ab == 0 && asz > 0 && vsz > 0 && ab + asz <= vb;
            (ok, format!("ARM {ab:#x}+{asz:#x}, VC {vb:#x}+{vsz:#x}"))
        }
        (arm, vc) => (
            false,
            format!("ARM memory {arm:?}, VC memory {vc:?}: not both answered"),
        ),
    };
    run("memory-split", split.0, split.1);

    let hz = timer::frequency();
    let t0 = timer::now_ticks();
    let c0 = timer::cycles();
    let mut spin = 0u64;
    for i in 0..10_000u64 {
        spin = core::hint::black_box(spin.wrapping_add(i));
    }
    let (t1, c1) = (timer::now_ticks(), timer::cycles());
    run(
        "timers",
        hz > 0 && t1 > t0 && c1 > c0,
        format!(
            "CNTFRQ {hz} Hz, counter advanced {} ticks, cycle counter {} cycles",
            t1 - t0,
            c1 - c0
        ),
    );

    // The heap is usable and lies where the layout says.
    let v: Vec<u64> = (0..1024).collect();
    let addr = v.as_ptr() as usize;
    run(
        "heap",
        layout.heap.contains(&addr) && v.iter().sum::<u64>() == 1023 * 1024 / 2,
        format!(
            "a 8 KiB vector at {addr:#x}, heap {:#x}..{:#x}",
            layout.heap.start, layout.heap.end
        ),
    );

    // The pool is mapped: write and read back its first and last words.
    let first = layout.pool.start as *mut u64;
    let last = (layout.pool.end - 8) as *mut u64;
    // SAFETY: both words are inside the mapped pool, which nothing uses yet.
    let pool_ok = unsafe {
        first.write_volatile(0x5a5a_0001);
        last.write_volatile(0x5a5a_0002);
        first.read_volatile() == 0x5a5a_0001 && last.read_volatile() == 0x5a5a_0002
    };
    run(
        "pool-mapped",
        pool_ok,
        format!("pool {:#x}..{:#x}", layout.pool.start, layout.pool.end),
    );

    failed
}

/// Panics on purpose.
#[inline(never)]
pub fn deliberate_panic() -> u32 {
    panic!("deliberate panic requested by the command word");
}

/// Reads [`DATA_ABORT_ADDRESS`], which the MMU leaves unmapped: a
/// translation fault whose report the host test checks.
#[inline(never)]
pub fn deliberate_data_abort() -> u32 {
    defmt::info!(
        "reading unmapped address {=u64:#x} on purpose",
        DATA_ABORT_ADDRESS
    );
    // SAFETY: not safe at all, on purpose: the read faults and the exception
    // handler ends the run. It never returns a value.
    let value = unsafe { core::ptr::read_volatile(DATA_ABORT_ADDRESS as *const u32) };
    defmt::error!(
        "the read of an unmapped address returned {=u32:#x} instead of faulting",
        value
    );
    1
}
