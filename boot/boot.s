// Boot stub: from whatever exception level we are entered at, reach EL1h
// with a stack, a zeroed BSS and the exception vectors installed, then call
// `kernel_main(entry_el)` in Rust. Secondary cores are parked.
//
// Entry conditions we handle:
// - Real Pi 3 (armstub8 from the firmware): core 0 at EL2, cores 1-3 wait in
//   the spin table at 0xd8 and never come here.
// - QEMU -M raspi3b with a raw kernel8.img: same as the real Pi (EL2, core 0).
// - QEMU with an ELF kernel: all four cores enter here at EL3.

.section .text.boot, "ax"
.global _start
_start:
    // Only core 0 (MPIDR_EL1.Aff0 == 0) boots; the others sleep. `wfi` rather
    // than `wfe`: a `wfe` spin burns host CPU under QEMU.
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbnz    x0, park

    mrs     x19, CurrentEL
    lsr     x19, x19, #2
    and     x19, x19, #3            // x19 = entry EL, handed to Rust
    cmp     x19, #3
    b.eq    from_el3
    cmp     x19, #2
    b.eq    from_el2
    b       el1_entry

from_el3:
    // SCR_EL3: NS (bit 0) non-secure below EL3, bits 4 and 5 RES1,
    // RW (bit 10) next lower EL is AArch64. No SMC/HVC needed.
    mov     x0, #0x431
    msr     scr_el3, x0
    // Do not trap FP/SIMD to EL3 (CPTR_EL3.TFP, bit 10), nor PMU or debug
    // register accesses (MDCR_EL3 = 0).
    msr     cptr_el3, xzr
    msr     mdcr_el3, xzr
    // Cortex-A53 TRM: CPUECTLR_EL1.SMPEN (bit 6) must be set before the
    // caches and MMU are enabled or any cache/TLB maintenance is done, else
    // the core is outside the coherency domain (exclusives and inner
    // shareable maintenance misbehave). On a Pi 3 the firmware's armstub sets
    // it before dropping to EL2; entered at EL3 (no armstub) we must, and
    // only EL3 may write it by default. QEMU accepts and ignores the write.
    // Without the armstub, CNTFRQ_EL0 and the local timer prescaler are not
    // set either; timer.rs and platform.rs report a CNTFRQ that is neither
    // 19.2 MHz nor 62.5 MHz.
    mrs     x0, s3_1_c15_c2_1       // CPUECTLR_EL1
    orr     x0, x0, #(1 << 6)
    msr     s3_1_c15_c2_1, x0
    isb
    bl      setup_el2_state
    // Return straight to EL1h (M = 0b0101) with D, A, I, F masked.
    mov     x0, #0x3c5
    msr     spsr_el3, x0
    adr     x0, el1_entry
    msr     elr_el3, x0
    eret

from_el2:
    bl      setup_el2_state
    mov     x0, #0x3c5
    msr     spsr_el2, x0
    adr     x0, el1_entry
    msr     elr_el2, x0
    eret

// Program the EL2 controls that EL1 depends on. Called at EL3 or EL2 (EL3
// can write EL2 registers). Their reset values are UNKNOWN on silicon, so
// every one EL1 depends on is set here.
setup_el2_state:
    // HCR_EL2.RW (bit 31): EL1 is AArch64. Nothing else trapped or virtualized.
    mov     x0, #(1 << 31)
    msr     hcr_el2, x0
    // CNTHCTL_EL2: EL1PCTEN | EL1PCEN, so EL1 reads CNTPCT_EL0 and uses the
    // physical timer without trapping; the virtual offset is zero.
    mov     x0, #3
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    // CPTR_EL2: RES1 bits only (0x33ff); TFP (bit 10) clear, FP/SIMD not trapped.
    mov     x0, #0x33ff
    msr     cptr_el2, x0
    // With EL2 present, EL1 reads of MIDR/MPIDR return VPIDR/VMPIDR: make
    // them the real values.
    mrs     x0, midr_el1
    msr     vpidr_el2, x0
    mrs     x0, mpidr_el1
    msr     vmpidr_el2, x0
    // MDCR_EL2: HPMN = all event counters (PMCR_EL0.N) belong to EL1/EL0,
    // TPM/TPMCR clear, so EL1's use of the cycle counter does not trap to
    // EL2 (which has no vectors). Its reset value is UNKNOWN on silicon.
    mrs     x0, pmcr_el0
    ubfx    x0, x0, #11, #5
    msr     mdcr_el2, x0
    // No stage-2 translation.
    msr     vttbr_el2, xzr
    // SCTLR_EL1 in a known state: RES1 bits (0x30d00800), MMU and caches off,
    // little-endian.
    mov     x0, #0x0800
    movk    x0, #0x30d0, lsl #16
    msr     sctlr_el1, x0
    ret

el1_entry:
    // FP/SIMD at EL1 untrapped (CPACR_EL1.FPEN = 0b11): Rust uses NEON
    // registers for memcpy and friends.
    mov     x0, #(3 << 20)
    msr     cpacr_el1, x0
    isb

    adrp    x0, __stack_top
    add     x0, x0, :lo12:__stack_top
    mov     sp, x0

    // Zero BSS (8-byte aligned by the linker script).
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:
    adrp    x0, __exception_vectors
    add     x0, x0, :lo12:__exception_vectors
    msr     vbar_el1, x0
    isb

    mov     x0, x19
    bl      kernel_main
    // kernel_main never returns; if it does, sleep.
park:
    wfi
    b       park

// Exception vector table: 16 entries of 128 bytes, 2 KiB aligned. Every
// exception is fatal in this firmware (no interrupts are enabled), so each
// entry switches to a dedicated exception stack (the faulting code's stack
// may be the problem) and calls `exception_entry(vector_index)`, which
// reports and ends the run.
.macro VECTOR index
    .balign 0x80
    msr     daifset, #0xf
    adrp    x0, __exception_stack_top
    add     x0, x0, :lo12:__exception_stack_top
    mov     sp, x0
    mov     x0, #\index
    b       exception_entry
.endm

.section .text.vectors, "ax"
.balign 0x800
.global __exception_vectors
__exception_vectors:
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    VECTOR 4
    VECTOR 5
    VECTOR 6
    VECTOR 7
    VECTOR 8
    VECTOR 9
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15
