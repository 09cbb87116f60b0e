//! Pool testbed firmware for the Raspberry Pi 3 (BCM2837) and QEMU raspi3b.
//!
//! Boot order (each step needs the ones before it):
//! 1. `boot/boot.s`: EL3/EL2 to EL1h, park cores 1-3, stack, BSS, vectors.
//! 2. [`mmu::enable_boot_map`]: MMU and caches on for the image, `.coherent`
//!    and the peripherals, before any other Rust code (see mmu.rs for why).
//! 3. [`mailbox::query_board`]: board, memory, clocks, DMA channels; then
//!    [`platform::raise_clocks`]: the ARM and core clocks to their maxima.
//! 4. [`uart::init`] at 921600 baud from the reported UART clock; the defmt
//!    logger works from here on.
//! 5. QEMU or silicon ([`platform::detect`]), which the exit path and the
//!    stopwatch follow; the cycle counter's calibration.
//! 6. [`memory::plan`] the pool and heap, [`mmu::map_ram`], the heap.
//! 7. The platform block and the Hello and Platform records.
//! 8. The mode the command word asks for ([`protocol::command`]); then a Finished
//!    record, a UART flush and the exit with the mode's code. The runner
//!    ([`runner`]) never exits: it reports each trace and waits again.
#![no_std]
#![no_main]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod barrier;
mod cache;
mod copy;
mod dma;
mod exceptions;
mod exit;
mod gpio;
mod logger;
mod mailbox;
mod memory;
mod memory_map;
mod mmio;
mod mmu;
mod mover;
mod output;
mod platform;
mod replay;
mod runner;
mod selftest;
mod timer;
mod uart;

use core::panic::PanicInfo;
use embedded_alloc::LlffHeap;
use protocol::{exit_code, Command, CommandWord, COMMAND_ADDR};

core::arch::global_asm!(include_str!("../boot/boot.s"));

#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

/// Firmware version string sent in the Hello record.
const FIRMWARE: &str = concat!("poolbed-firmware ", env!("CARGO_PKG_VERSION"));

/// Rust entry, called by boot/boot.s on core 0 at EL1h with `entry_el` the
/// exception level the stub was entered at.
#[no_mangle]
extern "C" fn kernel_main(entry_el: u64) -> ! {
    // SAFETY: the first Rust code on core 0, MMU and caches off (boot.s).
    unsafe { mmu::enable_boot_map() };
    timer::enable_cycle_counter();

    let (board, mailbox_error) = match mailbox::query_board() {
        Ok(board) => (Some(board), None),
        Err(e) => (None, Some(e)),
    };
    let clocks = board
        .as_ref()
        .map(platform::raise_clocks)
        .unwrap_or_default();
    let uart_clock = board.and_then(|b| b.uart_clock_hz);
    let uart = uart::init(uart_clock.unwrap_or(uart::FALLBACK_CLOCK_HZ));
    let start_ns = timer::now_ns();
    defmt::info!("{=str} booting (entered at EL{=u64})", FIRMWARE, entry_el);
    if let Some(e) = mailbox_error {
        defmt::error!("mailbox: {=str} ({})", e.describe(), e);
    }
    if uart_clock.is_none() {
        defmt::warn!(
            "the mailbox did not report the UART clock: assuming {=u32} Hz (config.txt init_uart_clock)",
            uart::FALLBACK_CLOCK_HZ
        );
    }

    if board.is_some() {
        clocks.log();
    }

    let detection = platform::detect(board.as_ref());
    exit::set_emulated(detection.emulated);
    // The stopwatch converts cycles at the ARM clock in force after the set
    // (the boot query's rate if the read-back failed).
    let arm_hz = clocks.state.arm_hz.or(board.and_then(|b| b.arm_clock_hz));
    if let (false, Some(arm_hz)) = (detection.emulated, arm_hz) {
        timer::time_with_cycle_counter(arm_hz);
    }
    let calibration = timer::calibrate(timer::CALIBRATION_US);

    let layout = match memory::plan(board.and_then(|b| b.arm_memory), mmu::coherent_range()) {
        Ok(layout) => layout,
        Err(e) => {
            defmt::error!("{}", defmt::Display2Format(&e));
            exit::exit(exit_code::BOOT_FAILED);
        }
    };
    // SAFETY: once, after the boot map; the layout's RAM is the ARM memory
    // the mailbox reported, in whole blocks, and its pool lies inside it.
    unsafe { mmu::map_ram(layout.ram.clone(), layout.pool.clone()) };
    // SAFETY: the heap range is mapped RAM that nothing else uses, and this
    // runs once, before the first allocation.
    unsafe { HEAP.init(layout.heap.start, layout.heap.len()) };

    let platform = platform::Platform::new(
        board,
        mailbox_error,
        &clocks,
        calibration,
        entry_el,
        detection,
        uart,
        &layout,
    );
    platform.print(&layout);
    logger::send_record(&records::Record::Hello {
        protocol: records::PROTOCOL_VERSION,
        firmware: alloc::string::String::from(FIRMWARE),
    });
    logger::send_record(&records::Record::Platform(platform.record.clone()));
    defmt::info!(
        "boot took {=u64} us after the UART came up",
        (timer::now_ns() - start_ns) / 1000
    );

    let (word, argument) = read_command();
    let code = match word {
        CommandWord::Absent => run(Command::Replay, &platform, &layout),
        CommandWord::Known(Command::Runner) => {
            defmt::info!("mode: {=str}", Command::Runner.name());
            runner::run(&platform, &layout, argument)
        }
        CommandWord::Known(Command::AllocBench) => {
            defmt::info!("mode: {=str}", Command::AllocBench.name());
            selftest::alloc_bench::run(&platform, &layout, argument)
        }
        CommandWord::Known(command) => run(command, &platform, &layout),
        CommandWord::Unknown(number) => {
            defmt::error!(
                "the command word asks for command {=u32}, which this firmware does not know (see crates/protocol)",
                number
            );
            exit_code::UNKNOWN_COMMAND
        }
    };
    finish(code)
}

/// The two words at [`COMMAND_ADDR`] (identity mapped, inside the boot map's
/// first block), and the argument in the second.
fn read_command() -> (CommandWord, u16) {
    let words = COMMAND_ADDR as *const u32;
    // SAFETY: the page below the image is mapped RAM that nothing of ours
    // uses; QEMU's loader (or config.txt's initramfs) may have written it.
    let (magic, number) = unsafe { (words.read_volatile(), words.add(1).read_volatile()) };
    (
        CommandWord::decode(magic, number),
        protocol::command::argument(number),
    )
}

fn run(command: Command, platform: &platform::Platform, layout: &memory::Layout) -> u32 {
    defmt::info!("mode: {=str}", command.name());
    match command {
        Command::Replay => replay::run(platform, layout),
        Command::BootChecks => selftest::boot::run(platform, layout),
        Command::Panic => selftest::crash::deliberate_panic(),
        Command::DataAbort => selftest::crash::deliberate_data_abort(),
        Command::DmaTests => selftest::dma::run(platform, layout),
        Command::FaultTests => selftest::faults::run(platform, layout),
        Command::Bringup => selftest::bringup::run(platform, layout),
        Command::UartIsolation => replay::run_uart_isolation(platform, layout),
        Command::Runner => runner::run(platform, layout, 0),
        Command::AllocBench => selftest::alloc_bench::run(platform, layout, 0),
    }
}

/// Ends a mode: the Finished record, a flushed UART, the exit.
fn finish(code: u32) -> ! {
    logger::send_record(&records::Record::Finished { exit_code: code });
    defmt::info!("finished with exit code {=u32}", code);
    uart::flush();
    exit::exit(code)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    uart::ensure_init();
    match info.location() {
        Some(loc) => defmt::error!(
            "panicked at {=str}:{=u32}:{=u32}: {}",
            loc.file(),
            loc.line(),
            loc.column(),
            defmt::Display2Format(&info.message())
        ),
        None => defmt::error!(
            "panicked (no location): {}",
            defmt::Display2Format(&info.message())
        ),
    }
    defmt::error!("the run ends with exit code {=u32}", exit_code::PANIC);
    exit::exit(exit_code::PANIC)
}
