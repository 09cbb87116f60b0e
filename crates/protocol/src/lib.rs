//! The host-target protocol outside the record stream: what the host asks
//! one boot of the firmware to do ([`command`]), how the firmware says how
//! the boot ended ([`exit_code`]), and the names of the checks the target
//! tests look for ([`check`]), the trailer that numbers and checks every
//! frame the firmware sends ([`frame`]), and the framing of a trace pushed
//! to the runner ([`transfer`]). The firmware and `xtask` both depend on this
//! crate, so the two sides cannot disagree on a number or a name.
//!
//! `no_std`, its one dependency the `crc` crate: the firmware links it as it is.
#![no_std]

pub mod check;
pub mod command;
pub mod exit_code;
pub mod frame;
pub mod transfer;

pub use command::{Command, CommandWord, ALL_COMMANDS, COMMAND_ADDR, COMMAND_MAGIC};

/// The address the data-abort mode reads: the first byte of the second GiB,
/// above the peripherals, which the firmware's MMU leaves unmapped (a
/// translation fault). The host checks the reported FAR against it.
pub const DATA_ABORT_ADDRESS: u64 = 0x8000_0000;

/// The name of the function that makes the data abort; the host checks that
/// the reported ELR lies inside the ELF symbol of that name.
pub const DATA_ABORT_FUNCTION: &str = "deliberate_data_abort";

/// The message of the panic mode's deliberate panic.
pub const PANIC_MESSAGE: &str = "deliberate panic requested by the command word";

/// The source file, as the firmware's panic report names it, that holds the
/// deliberate panic. The firmware checks at compile time that `file!()` in
/// that function equals this, so the host's check of the reported location
/// follows the code when it moves.
pub const PANIC_FILE: &str = "src/selftest/crash.rs";

/// `a == b` in a constant expression (`str` equality is not `const`).
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn const_string_equality() {
        assert!(str_eq("full", "full"));
        assert!(!str_eq("full", "fulL"));
        assert!(!str_eq("full", "ful"));
        assert!(str_eq("", ""));
    }
}
