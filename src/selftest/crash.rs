//! The modes that end the run on purpose, so that the two fatal report
//! paths are under test: a Rust panic (exit code `PANIC`) and a data abort
//! (exit code `EXCEPTION`). The host checks what the reports say against
//! `protocol` (message, file, address, function).

use protocol::{DATA_ABORT_ADDRESS, PANIC_FILE, PANIC_MESSAGE};

// The host expects the panic report to name this file.
const _: () = assert!(
    protocol::str_eq(file!(), PANIC_FILE),
    "protocol::PANIC_FILE must name the file that holds the deliberate panic"
);

/// Panics on purpose.
#[inline(never)]
pub fn deliberate_panic() -> u32 {
    panic!("{}", PANIC_MESSAGE);
}

/// Reads [`DATA_ABORT_ADDRESS`], which the MMU leaves unmapped: a
/// translation fault whose report the host test checks. The function's name
/// is `protocol::DATA_ABORT_FUNCTION`: the host finds the faulting ELR in it.
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
