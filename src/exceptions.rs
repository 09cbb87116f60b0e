//! CPU exceptions: every one is fatal. The vector table (boot/boot.s)
//! switches to the exception stack and calls [`exception_entry`], which
//! reports the syndrome through defmt and ends the run.

use crate::{exit, uart};
use aarch64_cpu::registers::{Readable, ELR_EL1, ESR_EL1, FAR_EL1, SPSR_EL1};
use bcm::esr::{self, Syndrome};
use protocol::exit_code;

/// Called from the vector table with the entry's index (0..16).
#[no_mangle]
extern "C" fn exception_entry(vector: u64) -> ! {
    let esr_value = ESR_EL1.get();
    let far = FAR_EL1.get();
    let elr = ELR_EL1.get();
    let spsr = SPSR_EL1.get();
    // The fault may have come before the UART was set up.
    uart::ensure_init();

    let syndrome = Syndrome::from_esr(esr_value);
    let synchronous = esr::vector_is_synchronous(vector);
    defmt::error!(
        "CPU exception: {=str} (EC {=u8:#04x}) via vector {=u64} ({=str})",
        if synchronous {
            syndrome.class_name()
        } else {
            "asynchronous exception"
        },
        syndrome.ec,
        vector,
        esr::vector_name(vector)
    );
    defmt::error!(
        "  ESR {=u64:#010x}  FAR {=u64:#018x}  ELR {=u64:#018x}  SPSR {=u64:#010x}",
        esr_value,
        far,
        elr,
        spsr
    );
    if synchronous {
        if let Some(abort) = syndrome.abort() {
            match abort.level() {
                Some(level) => defmt::error!(
                    "  {=str} at level {=u8} on a {=str} of {=u64:#x}{=str}",
                    abort.fault_name(),
                    level,
                    if abort.write { "write" } else { "read" },
                    far,
                    if abort.far_valid {
                        ""
                    } else {
                        " (FAR not valid)"
                    }
                ),
                None => defmt::error!(
                    "  {=str} on a {=str} of {=u64:#x}{=str}",
                    abort.fault_name(),
                    if abort.write { "write" } else { "read" },
                    far,
                    if abort.far_valid {
                        ""
                    } else {
                        " (FAR not valid)"
                    }
                ),
            }
        }
    }
    defmt::error!("the run ends with exit code {=u32}", exit_code::EXCEPTION);
    exit::exit(exit_code::EXCEPTION)
}
