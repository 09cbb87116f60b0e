//! How a boot of the firmware ends: the code it passes to semihosting
//! SYS_EXIT under QEMU (QEMU's exit status; the host OS keeps the low 8
//! bits) and sends in its last record, `Record::Finished`, everywhere.
//!
//! 0 is success. A mode that counts failures returns their number: failed
//! checks (boot checks, DMA tests, fault tests) or failed runs (the replay),
//! which stay below [`FIRST_RESERVED`]. The codes from there on say why a
//! boot could not do its job at all.

/// Everything the mode asked for passed.
pub const SUCCESS: u32 = 0;
/// Codes below this are a mode's count of failed checks or runs.
pub const FIRST_RESERVED: u32 = 90;
/// The replay found no usable trace in the image (none embedded, or refused
/// by the binary trace parser).
pub const TRACE_REFUSED: u32 = 90;
/// A Rust panic.
pub const PANIC: u32 = 101;
/// A CPU exception.
pub const EXCEPTION: u32 = 102;
/// Boot could not complete (mailbox, memory layout, heap).
pub const BOOT_FAILED: u32 = 103;
/// The command word named a command this firmware does not know.
pub const UNKNOWN_COMMAND: u32 = 104;

/// Every reserved code with its meaning, in number order.
pub const RESERVED: [(u32, &str); 5] = [
    (TRACE_REFUSED, "no usable trace in the image"),
    (PANIC, "a Rust panic"),
    (EXCEPTION, "a CPU exception"),
    (BOOT_FAILED, "boot failed (mailbox, memory layout)"),
    (UNKNOWN_COMMAND, "an unknown command word"),
];

/// What `code` means, in a few words.
pub fn describe(code: u32) -> &'static str {
    match code {
        SUCCESS => "success",
        c if c < FIRST_RESERVED => "the number of failed checks or runs",
        c => RESERVED
            .iter()
            .find(|(reserved, _)| *reserved == c)
            .map_or("not a code this firmware uses", |(_, what)| what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_codes_are_distinct_sorted_and_fit_a_process_status() {
        for pair in RESERVED.windows(2) {
            assert!(pair[0].0 < pair[1].0);
        }
        assert!(RESERVED
            .iter()
            .all(|&(c, _)| (FIRST_RESERVED..256).contains(&c)));
    }

    #[test]
    fn codes_are_described() {
        assert_eq!(describe(0), "success");
        assert_eq!(describe(3), "the number of failed checks or runs");
        assert_eq!(describe(90), "no usable trace in the image");
        assert_eq!(describe(102), "a CPU exception");
        assert_eq!(describe(100), "not a code this firmware uses");
    }
}
