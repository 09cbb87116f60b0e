//! The boot-checks mode: asserts the state boot promises (EL1, MMU and
//! caches on, mailbox answers, timers running, heap and pool usable).

use super::Checks;
use crate::memory::Layout;
use crate::platform::Platform;
use crate::{mmu, timer};
use aarch64_cpu::registers::{CurrentEL, Readable};
use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;
use protocol::check::boot as name;

/// Runs the boot checks; returns the number that failed.
pub fn run(platform: &Platform, layout: &Layout) -> u32 {
    let mut checks = Checks::new();

    let el = CurrentEL.read(CurrentEL::EL);
    checks.check(
        name::EL1,
        el == 1,
        format!("running at EL{el}, entered at EL{}", platform.entry_el),
    );

    let (mmu_on, dcache, icache) = mmu::state();
    checks.check(name::MMU, mmu_on, format!("SCTLR_EL1.M = {}", mmu_on as u8));
    checks.check(
        name::CACHES,
        dcache && icache,
        format!(
            "SCTLR_EL1.C = {}, SCTLR_EL1.I = {}",
            dcache as u8, icache as u8
        ),
    );

    let rev = platform.board.board_revision;
    checks.check(
        name::BOARD_REVISION,
        rev.is_some(),
        match rev {
            Some(r) => format!("mailbox answered board revision {r:#x}"),
            None => "mailbox did not answer board revision".to_string(),
        },
    );

    let (split_ok, split) = match (platform.board.arm_memory, platform.board.vc_memory) {
        (Some((ab, asz)), Some((vb, vsz))) => {
            let ok = ab == 0 && asz > 0 && vsz > 0 && ab + asz <= vb;
            (ok, format!("ARM {ab:#x}+{asz:#x}, VC {vb:#x}+{vsz:#x}"))
        }
        (arm, vc) => (
            false,
            format!("ARM memory {arm:?}, VC memory {vc:?}: not both answered"),
        ),
    };
    checks.check(name::MEMORY_SPLIT, split_ok, split);

    let hz = timer::frequency();
    let t0 = timer::now_ticks();
    let c0 = timer::cycles();
    let mut spin = 0u64;
    for i in 0..10_000u64 {
        spin = core::hint::black_box(spin.wrapping_add(i));
    }
    let (t1, c1) = (timer::now_ticks(), timer::cycles());
    checks.check(
        name::TIMERS,
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
    checks.check(
        name::HEAP,
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
    checks.check(
        name::POOL_MAPPED,
        pool_ok,
        format!("pool {:#x}..{:#x}", layout.pool.start, layout.pool.end),
    );

    checks.finish("boot checks")
}
