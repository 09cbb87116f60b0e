//! Decoding the exception syndrome (ESR_ELx) of an AArch64 CPU exception, and
//! naming the vector that was taken. Pure functions: the firmware's exception
//! handler reads the registers and prints what these return.
//!
//! Encodings follow the Arm Architecture Reference Manual for A-profile
//! (ARMv8.0, as implemented by the Cortex-A53): ESR_ELx.EC is bits [31:26],
//! IL bit 25, ISS bits [24:0]; for aborts the fault status code is ISS[5:0].

/// The fields of an ESR_ELx value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syndrome {
    /// Exception class, ESR[31:26].
    pub ec: u8,
    /// Instruction length bit: `true` for a 32-bit instruction.
    pub il: bool,
    /// Instruction-specific syndrome, ESR[24:0].
    pub iss: u32,
}

impl Syndrome {
    /// Splits a raw ESR value.
    pub const fn from_esr(esr: u64) -> Self {
        Self {
            ec: ((esr >> 26) & 0x3f) as u8,
            il: (esr >> 25) & 1 == 1,
            iss: (esr & 0x01ff_ffff) as u32,
        }
    }

    /// The name of the exception class.
    pub fn class_name(&self) -> &'static str {
        class_name(self.ec)
    }

    /// `true` for instruction and data aborts, whose ISS carries a fault status code.
    pub const fn is_abort(&self) -> bool {
        matches!(self.ec, 0x20 | 0x21 | 0x24 | 0x25)
    }

    /// `true` for data aborts, whose ISS also says read or write.
    pub const fn is_data_abort(&self) -> bool {
        matches!(self.ec, 0x24 | 0x25)
    }

    /// Details of an instruction or data abort; `None` for other classes.
    pub fn abort(&self) -> Option<Abort> {
        if !self.is_abort() {
            return None;
        }
        let data = self.is_data_abort();
        Some(Abort {
            fault_status: (self.iss & 0x3f) as u8,
            // WnR (ISS bit 6) only means something for data aborts.
            write: data && (self.iss >> 6) & 1 == 1,
            // FnV (bit 10): FAR is not valid.
            far_valid: (self.iss >> 10) & 1 == 0,
            // S1PTW (bit 7): the fault happened on a stage-2 walk of a stage-1 table.
            on_table_walk: (self.iss >> 7) & 1 == 1,
        })
    }
}

/// The details of an instruction or data abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abort {
    /// DFSC/IFSC, ISS[5:0].
    pub fault_status: u8,
    /// The access was a write (data aborts only).
    pub write: bool,
    /// FAR_ELx holds the faulting address.
    pub far_valid: bool,
    /// Stage-2 fault on a stage-1 translation table walk.
    pub on_table_walk: bool,
}

impl Abort {
    /// The name of the fault status code.
    pub fn fault_name(&self) -> &'static str {
        fault_status_name(self.fault_status)
    }

    /// The translation level the fault code names (0..=3), if it names one.
    pub fn level(&self) -> Option<u8> {
        match self.fault_status {
            0x00..=0x0f | 0x14..=0x17 => Some(self.fault_status & 3),
            _ => None,
        }
    }
}

/// Name of an exception class (ESR_ELx.EC).
pub fn class_name(ec: u8) -> &'static str {
    match ec {
        0x00 => "unknown reason (undefined instruction)",
        0x01 => "trapped WFI/WFE",
        0x03 => "trapped MCR/MRC (coproc 15, AArch32)",
        0x04 => "trapped MCRR/MRRC (coproc 15, AArch32)",
        0x05 => "trapped MCR/MRC (coproc 14, AArch32)",
        0x06 => "trapped LDC/STC (AArch32)",
        0x07 => "trapped SIMD/FP access",
        0x0c => "trapped MRRC (coproc 14, AArch32)",
        0x0e => "illegal execution state",
        0x11 => "SVC (AArch32)",
        0x12 => "HVC (AArch32)",
        0x13 => "SMC (AArch32)",
        0x15 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        0x18 => "trapped MSR/MRS/system instruction",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort (same EL)",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort (same EL)",
        0x26 => "SP alignment fault",
        0x28 => "floating-point exception (AArch32)",
        0x2c => "floating-point exception (AArch64)",
        0x2f => "SError interrupt",
        0x30 => "breakpoint from a lower EL",
        0x31 => "breakpoint (same EL)",
        0x32 => "software step from a lower EL",
        0x33 => "software step (same EL)",
        0x34 => "watchpoint from a lower EL",
        0x35 => "watchpoint (same EL)",
        0x38 => "BKPT (AArch32)",
        0x3c => "BRK (AArch64)",
        _ => "reserved exception class",
    }
}

/// Name of a data/instruction fault status code (DFSC/IFSC, ISS[5:0]).
pub fn fault_status_name(code: u8) -> &'static str {
    match code {
        0x00..=0x03 => "address size fault",
        0x04..=0x07 => "translation fault",
        0x09..=0x0b => "access flag fault",
        0x0d..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x11 => "synchronous tag check fault",
        0x14..=0x17 => "synchronous external abort on table walk",
        0x18 => "synchronous parity/ECC error",
        0x1c..=0x1f => "parity/ECC error on table walk",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        0x31 => "unsupported atomic hardware update",
        0x34 => "implementation defined fault (lockdown)",
        0x35 => "implementation defined fault (unsupported exclusive or atomic access)",
        _ => "reserved fault status",
    }
}

/// Name of vector table entry `index` (0..16): four groups (current EL with
/// SP_EL0, current EL with SP_ELx, lower EL AArch64, lower EL AArch32) of four
/// kinds (synchronous, IRQ, FIQ, SError).
pub fn vector_name(index: u64) -> &'static str {
    const NAMES: [&str; 16] = [
        "current EL, SP0, synchronous",
        "current EL, SP0, IRQ",
        "current EL, SP0, FIQ",
        "current EL, SP0, SError",
        "current EL, SPx, synchronous",
        "current EL, SPx, IRQ",
        "current EL, SPx, FIQ",
        "current EL, SPx, SError",
        "lower EL (AArch64), synchronous",
        "lower EL (AArch64), IRQ",
        "lower EL (AArch64), FIQ",
        "lower EL (AArch64), SError",
        "lower EL (AArch32), synchronous",
        "lower EL (AArch32), IRQ",
        "lower EL (AArch32), FIQ",
        "lower EL (AArch32), SError",
    ];
    NAMES.get(index as usize).copied().unwrap_or("not a vector")
}

/// `true` if the vector is a synchronous exception, whose ESR and FAR describe
/// it (for IRQ/FIQ the syndrome registers hold stale values).
pub const fn vector_is_synchronous(index: u64) -> bool {
    index < 16 && index.is_multiple_of(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_abort_translation_fault_level_1_read() {
        // EC 0x25, IL, DFSC 0b000101 (translation fault, level 1), read.
        let esr = (0x25u64 << 26) | (1 << 25) | 0x05;
        let s = Syndrome::from_esr(esr);
        assert_eq!(s.ec, 0x25);
        assert!(s.il);
        assert_eq!(s.class_name(), "data abort (same EL)");
        let a = s.abort().unwrap();
        assert_eq!(a.fault_name(), "translation fault");
        assert_eq!(a.level(), Some(1));
        assert!(!a.write);
        assert!(a.far_valid);
    }

    #[test]
    fn data_abort_write_without_valid_far() {
        let esr = (0x24u64 << 26) | (1 << 10) | (1 << 6) | 0x21;
        let a = Syndrome::from_esr(esr).abort().unwrap();
        assert!(a.write);
        assert!(!a.far_valid);
        assert_eq!(a.fault_name(), "alignment fault");
        assert_eq!(a.level(), None);
    }

    #[test]
    fn instruction_abort_has_no_write_bit() {
        let esr = (0x21u64 << 26) | (1 << 6) | 0x0f;
        let s = Syndrome::from_esr(esr);
        assert_eq!(s.class_name(), "instruction abort (same EL)");
        let a = s.abort().unwrap();
        assert!(!a.write, "WnR is meaningless for instruction aborts");
        assert_eq!(a.fault_name(), "permission fault");
        assert_eq!(a.level(), Some(3));
    }

    #[test]
    fn non_aborts_have_no_abort_details() {
        let s = Syndrome::from_esr((0x15u64 << 26) | 0x1234);
        assert_eq!(s.class_name(), "SVC (AArch64)");
        assert_eq!(s.iss, 0x1234);
        assert_eq!(s.abort(), None);
        assert_eq!(
            Syndrome::from_esr(0).class_name(),
            "unknown reason (undefined instruction)"
        );
        assert_eq!(class_name(0x3f), "reserved exception class");
    }

    #[test]
    fn every_class_that_is_an_abort_is_named_as_one() {
        for ec in 0..64u8 {
            let s = Syndrome::from_esr((ec as u64) << 26);
            assert_eq!(s.is_abort(), s.class_name().contains("abort"), "ec {ec:#x}");
        }
    }

    #[test]
    fn vectors() {
        assert_eq!(vector_name(4), "current EL, SPx, synchronous");
        assert_eq!(vector_name(7), "current EL, SPx, SError");
        assert_eq!(vector_name(16), "not a vector");
        assert!(vector_is_synchronous(4));
        assert!(!vector_is_synchronous(5));
        assert!(!vector_is_synchronous(16));
    }
}
