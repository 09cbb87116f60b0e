//! The command word: which mode one boot of the firmware runs.
//!
//! One image serves every purpose; the host picks the mode per boot by placing
//! two little-endian 32-bit words at [`COMMAND_ADDR`]: [`COMMAND_MAGIC`], then
//! the command number. Under QEMU this is one loader device:
//! `-device loader,addr=0x7f000,data=<(command << 32) | magic>,data-len=8`.
//! On a real Pi, `config.txt` can place an 8-byte file there:
//! `initramfs command.bin 0x7f000`. Without the magic (nothing loaded, or
//! whatever RAM held) the firmware runs [`Command::Replay`].
//!
//! Why 0x7f000: the page just below the image (loaded at 0x80000). QEMU's
//! raspi boot code uses 0x0..0x500 (its spin table at 0xd8, SMP boot code
//! at 0x300, monitor vectors at 0x400) and the Pi firmware's armstub the
//! first 4 KiB (ATAGs at 0x100); the firmware's stack lies above the image,
//! so nothing else touches this page.
//!
//! The second word's low 16 bits are the command number, its high 16 bits
//! an argument for the commands that take one (the runner's wait, in
//! seconds); 0 means the command's default.
//!
//! New commands take the next free number; numbers are never reused.

/// Physical address of the command words.
pub const COMMAND_ADDR: u64 = 0x0007_f000;
/// First word at [`COMMAND_ADDR`]: ASCII "PBCM" read as a little-endian u32.
pub const COMMAND_MAGIC: u32 = u32::from_le_bytes(*b"PBCM");

/// What one boot does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Command {
    /// Replay the embedded trace under every policy and mover (the default).
    Replay = 1,
    /// Assert the boot state (EL1, MMU and caches on, mailbox answers).
    BootChecks = 2,
    /// Panic on purpose: the panic report path is under test.
    Panic = 3,
    /// Read an unmapped address: the exception report path is under test.
    DataAbort = 4,
    /// DMA mover correctness tests.
    DmaTests = 5,
    /// Injected-fault tests (refused control blocks, detected corruption).
    FaultTests = 6,
    /// The bring-up check of a new board: clocks, cache coherency, copy
    /// throughput, the cycle counter's calibration.
    Bringup = 7,
    /// The UART isolation test: one policy replayed with the UART as it is
    /// and again with the writer held to a Pi's 921600 baud.
    UartIsolation = 8,
    /// The resident runner: announce over the UART, take compiled traces
    /// pushed by the host (`cargo xtask run --board`), replay and report
    /// each, and wait again; with no host within the wait (the argument, in
    /// seconds, default [`RUNNER_DEFAULT_WAIT_SECS`]) replay the embedded
    /// trace. What a card runs by default.
    Runner = 9,
    /// The allocation bench (issue 13): create + destroy through the pool
    /// core at 4 KiB to 32 MiB, with no zeroing, CPU zeroing, DMA zeroing and
    /// deferred DMA zeroing, on an empty and a fragmented pool. Argument:
    /// low 15 bits the calls per size (0: the default), bit 15 verify every
    /// word (else a sample per page).
    AllocBench = 10,
}

/// [`Command::AllocBench`]'s argument bit asking for every word verified.
pub const ALLOC_BENCH_VERIFY_FULL: u16 = 1 << 15;

/// The runner's wait for a host before it replays the embedded trace.
pub const RUNNER_DEFAULT_WAIT_SECS: u16 = 30;

/// Every command, in number order.
pub const ALL_COMMANDS: [Command; 10] = [
    Command::Replay,
    Command::BootChecks,
    Command::Panic,
    Command::DataAbort,
    Command::DmaTests,
    Command::FaultTests,
    Command::Bringup,
    Command::UartIsolation,
    Command::Runner,
    Command::AllocBench,
];

impl Command {
    /// The command number written after the magic.
    pub const fn number(self) -> u32 {
        self as u32
    }

    /// The command with this number.
    pub fn from_number(number: u32) -> Option<Self> {
        ALL_COMMANDS.into_iter().find(|c| c.number() == number)
    }

    /// A short name for logs and for `cargo xtask sdcard --mode`.
    pub const fn name(self) -> &'static str {
        match self {
            Command::Replay => "replay",
            Command::BootChecks => "boot-checks",
            Command::Panic => "panic",
            Command::DataAbort => "data-abort",
            Command::DmaTests => "dma-tests",
            Command::FaultTests => "fault-tests",
            Command::Bringup => "bringup",
            Command::UartIsolation => "uart-isolation",
            Command::Runner => "runner",
            Command::AllocBench => "alloc-bench",
        }
    }

    /// The command with this [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        ALL_COMMANDS.into_iter().find(|c| c.name() == name)
    }

    /// The 64-bit value QEMU's loader device writes (`data=`, `data-len=8`,
    /// stored little-endian): magic in the low word, command in the high one.
    /// Its eight little-endian bytes are also the `command.bin` a Pi's
    /// `config.txt` loads.
    pub const fn loader_data(self) -> u64 {
        self.loader_data_with(0)
    }

    /// [`loader_data`](Self::loader_data) with an argument in the high 16
    /// bits of the command number.
    pub const fn loader_data_with(self, argument: u16) -> u64 {
        let number = self.number() | ((argument as u32) << 16);
        ((number as u64) << 32) | COMMAND_MAGIC as u64
    }
}

/// The argument in a command number (its high 16 bits).
pub const fn argument(number: u32) -> u16 {
    (number >> 16) as u16
}

/// What the two words at [`COMMAND_ADDR`] say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandWord {
    /// No magic: nothing was loaded; run the default.
    Absent,
    /// A known command.
    Known(Command),
    /// The magic with a number this firmware does not know (a newer host?).
    Unknown(u32),
}

impl CommandWord {
    /// Interprets the two words.
    pub fn decode(magic: u32, number: u32) -> Self {
        if magic != COMMAND_MAGIC {
            return CommandWord::Absent;
        }
        Command::from_number(number & 0xffff)
            .map_or(CommandWord::Unknown(number), CommandWord::Known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_word_is_magic_then_command() {
        let data = Command::BootChecks.loader_data();
        assert_eq!(data as u32, COMMAND_MAGIC);
        assert_eq!((data >> 32) as u32, 2);
        assert_eq!(
            CommandWord::decode(data as u32, (data >> 32) as u32),
            CommandWord::Known(Command::BootChecks)
        );
        assert_eq!(CommandWord::decode(0, 2), CommandWord::Absent);
        assert_eq!(
            CommandWord::decode(COMMAND_MAGIC, 999),
            CommandWord::Unknown(999)
        );
        assert_eq!(COMMAND_MAGIC, 0x4d43_4250);
    }

    #[test]
    fn arguments_ride_in_the_high_half() {
        let data = Command::Runner.loader_data_with(5);
        let number = (data >> 32) as u32;
        assert_eq!(
            CommandWord::decode(data as u32, number),
            CommandWord::Known(Command::Runner)
        );
        assert_eq!(argument(number), 5);
        assert_eq!(argument(Command::Runner.number()), 0);
    }

    #[test]
    fn numbers_and_names_are_unique_and_round_trip() {
        for (i, c) in ALL_COMMANDS.into_iter().enumerate() {
            assert_eq!(c.number(), i as u32 + 1, "numbers are dense, in order");
            assert_eq!(Command::from_number(c.number()), Some(c));
            assert_eq!(Command::from_name(c.name()), Some(c));
        }
        assert_eq!(Command::from_number(0), None);
        assert_eq!(Command::from_name("Replay"), None);
    }
}
