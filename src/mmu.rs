//! The MMU: an identity map (virtual == physical) with 4 KiB granule tables
//! and 2 MiB blocks, built in two steps.
//!
//! 1. [`enable_boot_map`], first thing in Rust: the image (Normal write-back),
//!    the `.coherent` section (Normal non-cacheable) and the peripherals
//!    (Device-nGnRE). With the MMU off every data access is Device-nGnRnE,
//!    where an unaligned access faults on silicon (QEMU does not check);
//!    aarch64-unknown-none builds with `+strict-align`, so compiled code
//!    only makes aligned accesses, but a misaligned pointer cast, `dc zva`
//!    and exclusives (atomics, which need cacheable memory on silicon) would
//!    still fault or hang. So the MMU goes on before any other Rust code runs.
//! 2. [`map_ram`], once the mailbox has said how much RAM the ARM has: the
//!    rest of ARM RAM (write-back) and the pool (non-cacheable, what Linux's
//!    write-combined CMA pool is). This only turns invalid entries into valid
//!    ones, which needs no break-before-make.
//!
//! Everything else stays unmapped: the VideoCore's memory and all addresses
//! from 0x4020_0000 up, so a stray access (or the data-abort test's read of
//! 0x8000_0000) is a translation fault.
//!
//! Address space: TCR_EL1.T0SZ = 32 (4 GiB), so the walk starts at level 1
//! with four 1 GiB entries; entries 0 and 1 point at level-2 tables of 2 MiB
//! blocks.

use crate::memory_map::{LOCAL_PERIPHERALS, PERIPHERALS};
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    ReadWriteable, Readable, Writeable, MAIR_EL1, SCTLR_EL1, TCR_EL1, TTBR0_EL1,
};
use bcm::mmu::{block_descriptor, table_descriptor, Kind, BLOCK};
use core::arch::asm;
use core::cell::UnsafeCell;
use core::ops::Range;

const GIB: usize = 1 << 30;

#[repr(C, align(4096))]
struct Table([u64; 512]);

struct Tables {
    l1: Table,
    /// 0..1 GiB: RAM, VideoCore memory, peripherals.
    l2_low: Table,
    /// 1..2 GiB: only the local peripherals' block.
    l2_local: Table,
}

struct SharedTables(UnsafeCell<Tables>);
// SAFETY: written only by the boot path on core 0, before any other user.
unsafe impl Sync for SharedTables {}

static TABLES: SharedTables = SharedTables(UnsafeCell::new(Tables {
    l1: Table([0; 512]),
    l2_low: Table([0; 512]),
    l2_local: Table([0; 512]),
}));

extern "C" {
    static __coherent_start: u8;
    static __coherent_end: u8;
}

/// The `.coherent` section (2 MiB, 2 MiB aligned).
pub fn coherent_range() -> Range<usize> {
    // Linker-script symbols: only their addresses are taken, never their contents.
    (&raw const __coherent_start as usize)..(&raw const __coherent_end as usize)
}

fn set_block(tables: &mut Tables, addr: usize, kind: Kind) {
    debug_assert!(addr.is_multiple_of(BLOCK) && addr < 2 * GIB);
    let table = if addr < GIB {
        &mut tables.l2_low
    } else {
        &mut tables.l2_local
    };
    let index = (addr % GIB) / BLOCK;
    // SAFETY: a naturally aligned u64 in a static; volatile so the store is
    // not elided or torn (the table walker reads it).
    unsafe { core::ptr::write_volatile(&mut table.0[index], block_descriptor(addr, kind)) };
}

/// Builds the boot map and turns on the MMU with data and instruction caches.
///
/// Real-hardware order (ARM ARM D8, Cortex-A53 TRM): tables written with the
/// MMU and caches off reach memory directly; `dsb ish` makes them visible to
/// the walker; the data cache is invalidated by set/way and the instruction
/// cache and TLBs invalidated (their contents are UNKNOWN after reset and the
/// Pi's armstub does not promise clean state); then SCTLR_EL1 with M, C, I,
/// followed by `isb` so the next instruction is fetched translated.
///
/// # Safety
/// Once, on core 0 with the MMU and caches off, before any other Rust code
/// relies on the memory map (the set/way invalidation discards the data
/// cache, and the tables are rewritten without break-before-make).
pub unsafe fn enable_boot_map() {
    // SAFETY: boot path, single core, MMU off: nobody else uses the tables.
    let tables = unsafe { &mut *TABLES.0.get() };
    let coherent = coherent_range();
    let mut addr = 0;
    while addr < coherent.end {
        let kind = if coherent.contains(&addr) {
            Kind::NonCacheable
        } else {
            Kind::Ram
        };
        set_block(tables, addr, kind);
        addr += BLOCK;
    }
    for addr in PERIPHERALS.step_by(BLOCK) {
        set_block(tables, addr, Kind::Device);
    }
    set_block(tables, LOCAL_PERIPHERALS.start, Kind::Device);
    let l2_low = &raw const tables.l2_low as u64;
    let l2_local = &raw const tables.l2_local as u64;
    // SAFETY: aligned u64 stores into the static L1 table.
    unsafe {
        core::ptr::write_volatile(&mut tables.l1.0[0], table_descriptor(l2_low));
        core::ptr::write_volatile(&mut tables.l1.0[1], table_descriptor(l2_local));
    }

    // Attr0..Attr2 in the order of bcm::mmu's ATTR_DEVICE, ATTR_NORMAL_WB
    // and ATTR_NORMAL_NC, the indices the block descriptors carry.
    MAIR_EL1.write(
        MAIR_EL1::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
            + MAIR_EL1::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr2_Normal_Outer::NonCacheable
            + MAIR_EL1::Attr2_Normal_Inner::NonCacheable,
    );
    TCR_EL1.write(
        TCR_EL1::T0SZ.val(32)
            + TCR_EL1::TG0::KiB_4
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::SH0::Inner
            + TCR_EL1::EPD0::EnableTTBR0Walks
            + TCR_EL1::EPD1::DisableTTBR1Walks
            // TG1 = 0b00 is a reserved encoding; a valid granule keeps the
            // (disabled) TTBR1 half defined on silicon.
            + TCR_EL1::TG1::KiB_4
            + TCR_EL1::IPS::Bits_32,
    );
    TTBR0_EL1.set_baddr(&raw const tables.l1 as u64);

    barrier::dsb(barrier::ISH);
    invalidate_dcache_all();
    // SAFETY: cache and TLB maintenance at EL1; no memory-safety preconditions.
    unsafe {
        asm!(
            "ic iallu",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };

    SCTLR_EL1.modify(SCTLR_EL1::M::Enable + SCTLR_EL1::C::Cacheable + SCTLR_EL1::I::Cacheable);
    barrier::isb(barrier::SY);
}

/// Maps `[ram.start, ram.end)` as RAM, except `pool` as non-cacheable. Both
/// must be 2 MiB aligned; blocks already mapped (image, `.coherent`) and the
/// peripherals are left as they are.
///
/// # Safety
/// Once, after [`enable_boot_map`], so that every entry written is still
/// invalid (changing a valid one would need break-before-make). `ram` must
/// be ARM RAM as the mailbox reported it: whatever is mapped Normal the CPU
/// may fetch speculatively, which must never reach VideoCore memory or a
/// device. `pool` must lie inside it and hold no data that relies on being
/// cached.
pub unsafe fn map_ram(ram: Range<usize>, pool: Range<usize>) {
    // SAFETY: single core; the walker may read the tables concurrently, which
    // is why only invalid entries are changed, one aligned store each.
    let tables = unsafe { &mut *TABLES.0.get() };
    let first_free = coherent_range().end;
    let mut addr = ram.start.max(first_free);
    while addr + BLOCK <= ram.end.min(PERIPHERALS.start) {
        let kind = if pool.contains(&addr) {
            Kind::NonCacheable
        } else {
            Kind::Ram
        };
        set_block(tables, addr, kind);
        addr += BLOCK;
    }
    // Make the new entries visible to the walker, and drop any cached
    // "invalid" results (the A53 does not cache faulting walks, but the
    // architecture allows it).
    // SAFETY: TLB maintenance; no memory-safety preconditions.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Invalidates the whole data and unified cache hierarchy by set/way, level
/// by level up to the level of coherence (CLIDR_EL1.LoC).
fn invalidate_dcache_all() {
    // SAFETY: set/way invalidation with caches off discards nothing we need:
    // all data written so far went straight to memory.
    unsafe {
        asm!(
            "mrs {clidr}, clidr_el1",
            "ubfx {loc}, {clidr}, #24, #3",     // level of coherence
            "mov {level}, #0",
            "1:",
            "cmp {level}, {loc}",
            "b.ge 5f",
            "add {tmp}, {level}, {level}, lsl #1", // 3 * level
            "lsr {tmp}, {clidr}, {tmp}",
            "and {tmp}, {tmp}, #7",              // cache type at this level
            "cmp {tmp}, #2",
            "b.lt 4f",                           // no data cache here
            "lsl {tmp}, {level}, #1",
            "msr csselr_el1, {tmp}",             // select data cache of level
            "isb",
            "mrs {ccsidr}, ccsidr_el1",
            "and {lsh}, {ccsidr}, #7",
            "add {lsh}, {lsh}, #4",              // log2(line bytes)
            "ubfx {ways}, {ccsidr}, #3, #10",    // ways - 1
            "ubfx {sets}, {ccsidr}, #13, #15",   // sets - 1
            "clz {wsh}, {ways}",                 // way shift (32-bit field)
            "sub {wsh}, {wsh}, #32",
            "2:",                                // for each way
            "mov {set}, {sets}",
            "3:",                                // for each set
            "lsl {tmp}, {ways}, {wsh}",
            "lsl {tmp2}, {set}, {lsh}",
            "orr {tmp}, {tmp}, {tmp2}",
            "lsl {tmp2}, {level}, #1",
            "orr {tmp}, {tmp}, {tmp2}",
            "dc isw, {tmp}",
            "subs {set}, {set}, #1",
            "b.ge 3b",
            "subs {ways}, {ways}, #1",
            "b.ge 2b",
            "4:",
            "add {level}, {level}, #1",
            "b 1b",
            "5:",
            "dsb sy",
            "isb",
            clidr = out(reg) _,
            loc = out(reg) _,
            level = out(reg) _,
            tmp = out(reg) _,
            tmp2 = out(reg) _,
            ccsidr = out(reg) _,
            lsh = out(reg) _,
            ways = out(reg) _,
            sets = out(reg) _,
            wsh = out(reg) _,
            set = out(reg) _,
            options(nostack)
        );
    }
}

/// Whether SCTLR_EL1 has the MMU, the data cache and the instruction cache on.
pub fn state() -> (bool, bool, bool) {
    let s = SCTLR_EL1.extract();
    (
        s.is_set(SCTLR_EL1::M),
        s.is_set(SCTLR_EL1::C),
        s.is_set(SCTLR_EL1::I),
    )
}
