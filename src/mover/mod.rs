//! The firmware's movers: [`DmaMover`] (the BCM2837 DMA engine) and
//! [`CpuMover`] (the CPU). Both perform the pool core's moves on real memory,
//! time them, and verify the data; they differ only in how bytes get copied.
//!
//! - [`store`]: what both share: where a buffer's bytes are (pool or backing
//!   heap), the preparation of a move into a copy job, its completion
//!   (verification, poison over vacated pages), the counts.
//! - [`content`]: writing and checking the content stamps in memory.
//! - [`cpu`] and [`dma`]: the two ways of copying.
//!
//! Memory: a buffer resident in the pool lives at `pool.start + offset`
//! (Normal non-cacheable, like the real driver's write-combined CMA pool). A
//! non-resident buffer with content has its own heap allocation (Normal
//! write-back), page aligned and a whole number of pages long, allocated when
//! it is paged out or filled in overflow and freed when it is paged in, purged
//! or destroyed. Every move works on whole 4 KiB pages: the pool places
//! buffers in 4 KiB units ([`PAGE`] must equal the replay's pool alignment),
//! so the tail of a buffer's last page is its own.
//!
//! Content (`bcm::content`, host-tested): derived from (run salt, buffer,
//! generation) so that stale data of another buffer, generation or run never
//! passes for the right one. By default one 8-byte stamp at the start of
//! every page is written and checked (`verify pages`); built with
//! `POOLBED_VERIFY=full`, every 8-byte word is (`verify full`). After every
//! move, every page it wrote is checked; a mismatch is counted and the first
//! few are reported with buffer, page, expected and found values. Pages a
//! move vacated in the pool get a poison stamp, so a later copy that
//! silently does nothing is caught too.
//!
//! Timing: from submit to the moment completion is observed (the DMA engine
//! raises no interrupt here, so a move's end is seen at the next poll), on
//! the stopwatch of `timer`: the PMU cycle counter at the ARM clock on
//! silicon, the generic counter (CNTPCT_EL0) under QEMU. Under QEMU the DMA
//! engine copies synchronously inside the register write, so DMA latencies
//! there are emulation artefacts.

mod content;
mod cpu;
mod dma;
mod store;

pub use bcm::content::{span, VerifyMode, PAGE};
pub use cpu::CpuMover;
pub use dma::DmaMover;
pub use store::{backing_bytes, Store};

use crate::timer;

/// The verification mode this image was built with (`POOLBED_VERIFY=full`
/// or not).
pub const BUILT_VERIFY: VerifyMode = VerifyMode::from_setting(option_env!("POOLBED_VERIFY"));

/// Mismatches reported in detail per run (all are counted).
pub const MAX_REPORTED_CORRUPTIONS: usize = 16;

/// Nanoseconds on the stopwatch since `since` (a `timer::stopwatch_ticks`
/// reading): moves are timed from submit to completion with it.
fn elapsed_ns(since: u64) -> u64 {
    timer::stopwatch_elapsed_ns(since)
}
