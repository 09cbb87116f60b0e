//! Names of the checks the self-test modes report (`Record::Check`), which
//! the target tests in `xtask/src/test.rs` look up. Fixed names are
//! constants; names that carry a size are values of [`DmaCheck`], rendered
//! with `Display` by the firmware and by the host alike.

use core::fmt;

/// The boot-checks mode (`Command::BootChecks`).
pub mod boot {
    /// Running at EL1.
    pub const EL1: &str = "el1";
    /// SCTLR_EL1.M.
    pub const MMU: &str = "mmu";
    /// SCTLR_EL1.C and I.
    pub const CACHES: &str = "caches";
    /// The mailbox answered the board revision.
    pub const BOARD_REVISION: &str = "board-revision";
    /// ARM and VideoCore memory both answered and consistent.
    pub const MEMORY_SPLIT: &str = "memory-split";
    /// CNTFRQ set, the counter and the cycle counter advance.
    pub const TIMERS: &str = "timers";
    /// An allocation works and lies in the heap.
    pub const HEAP: &str = "heap";
    /// The pool's first and last words read back what was written.
    pub const POOL_MAPPED: &str = "pool-mapped";

    /// Every boot check, in the order the firmware runs them.
    pub const ALL: [&str; 8] = [
        EL1,
        MMU,
        CACHES,
        BOARD_REVISION,
        MEMORY_SPLIT,
        TIMERS,
        HEAP,
        POOL_MAPPED,
    ];
}

/// The platform names no usable DMA channel (reported as failed).
pub const NO_DMA_CHANNEL: &str = "dma channel";
/// A DMA channel could not be opened for the driver-level copies.
pub const DMA_OPEN: &str = "dma open";
/// A DMA channel could not be opened for the mover-level copies.
pub const DMA_MOVER_OPEN: &str = "dma mover open";
/// A DMA channel could not be opened for a fault test.
pub const FAULT_OPEN: &str = "fault open";
/// The CPU copy loop copied disjoint ranges at odd offsets and lengths
/// exactly (the memory it ran in follows in parentheses: pool, heap).
pub const CPU_COPY_DISJOINT: &str = "cpu copy: disjoint, odd offsets and lengths";
/// The CPU copy loop copied downward overlapping ranges exactly.
pub const CPU_COPY_DOWNWARD: &str = "cpu copy: downward overlapping";
/// A plan longer than the control-block area ran as several chains.
pub const CHAINS_LONGER_THAN_CB_AREA: &str = "dma chains longer than the control-block area";

/// The fault-tests mode (`Command::FaultTests`).
pub mod fault {
    /// A length that is not a multiple of 4 never reaches the engine.
    pub const INVALID_LENGTH_REFUSED: &str = "fault: control block with invalid length refused";
    /// An upward overlapping move never reaches the engine.
    pub const UPWARD_OVERLAP_REFUSED: &str = "fault: upward overlapping move refused";
    /// A byte flipped in the destination after a DMA copy is found.
    pub const DMA_DESTINATION_CORRUPTED: &str =
        "fault: destination corrupted after a DMA copy is detected";
    /// A byte flipped in the source before a DMA copy is found.
    pub const DMA_SOURCE_CORRUPTED: &str = "fault: source corrupted before a DMA copy is detected";
    /// A byte flipped in the destination after a CPU copy is found.
    pub const CPU_DESTINATION_CORRUPTED: &str =
        "fault: destination corrupted after a CPU copy is detected";
    /// A transfer whose control block links to itself times out, is aborted
    /// and the CPU redoes it.
    pub const TIMEOUT_REDONE_BY_CPU: &str =
        "fault: a DMA transfer that never completes times out and the CPU redoes it";

    /// Every fault check, in the order the firmware runs them.
    pub const ALL: [&str; 6] = [
        INVALID_LENGTH_REFUSED,
        UPWARD_OVERLAP_REFUSED,
        DMA_DESTINATION_CORRUPTED,
        DMA_SOURCE_CORRUPTED,
        CPU_DESTINATION_CORRUPTED,
        TIMEOUT_REDONE_BY_CPU,
    ];
}

/// The bring-up mode (`Command::Bringup`).
pub mod bringup {
    /// The ARM and core clocks were read back after the set (a rate, not
    /// necessarily the maximum: QEMU ignores the set).
    pub const CLOCKS: &str = "bringup: clocks read back after the set";
    /// The cache-coherency probe behaved as it must where it ran: the stale
    /// case seen on silicon, not under QEMU, never after the clean.
    pub const COHERENCY: &str = "bringup: cache-coherency probe";
    /// Every measured copy was exact.
    pub const COPIES_EXACT: &str = "bringup: every measured copy is exact";
    /// On silicon, the cycle counter runs within 1 % of the ARM clock set
    /// (under QEMU it only has to count).
    pub const CALIBRATION: &str = "bringup: cycle counter calibration";

    /// Every bring-up check, in the order the firmware runs them.
    pub const ALL: [&str; 4] = [CLOCKS, COHERENCY, COPIES_EXACT, CALIBRATION];
}

/// How the driver-level copies of the DMA tests cut a transfer into blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockMode {
    /// The platform's channel with its own block limit.
    Full,
    /// The platform's channel, limited to a lite channel's 65 532 bytes.
    LiteSized,
    /// A real lite channel (7 to 14).
    LiteChannel,
}

impl BlockMode {
    /// The words the check name uses.
    pub const fn label(self) -> &'static str {
        match self {
            BlockMode::Full => "full blocks",
            BlockMode::LiteSized => "lite-sized blocks",
            BlockMode::LiteChannel => "lite channel",
        }
    }
}

/// Where a mover-level copy of the DMA tests goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    PoolToPool,
    HeapToPool,
    PoolToHeap,
}

impl Route {
    /// Every route, in the order the firmware tests them.
    pub const ALL: [Route; 3] = [Route::PoolToPool, Route::HeapToPool, Route::PoolToHeap];

    /// The words the check name uses.
    pub const fn label(self) -> &'static str {
        match self {
            Route::PoolToPool => "pool to pool",
            Route::HeapToPool => "heap to pool",
            Route::PoolToHeap => "pool to heap",
        }
    }
}

/// A check of the DMA-tests mode (`Command::DmaTests`) whose name carries
/// sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaCheck {
    /// A driver-level copy of `len` bytes.
    Copy { len: u64, blocks: BlockMode },
    /// A copy of a `size`-byte buffer through the DMA mover.
    Mover { route: Route, size: u64 },
    /// A downward overlapping move of a `size`-byte buffer by `distance`.
    Downward { size: u64, distance: u64 },
    /// A downward move that needs more blocks than the control-block area
    /// holds.
    DownwardChained { size: u64, distance: u64 },
}

impl fmt::Display for DmaCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DmaCheck::Copy { len, blocks } => write!(f, "dma copy {len} bytes, {}", blocks.label()),
            DmaCheck::Mover { route, size } => {
                write!(f, "dma mover {} {size} bytes", route.label())
            }
            DmaCheck::Downward { size, distance } => {
                write!(f, "dma mover downward {size} bytes by {distance}")
            }
            DmaCheck::DownwardChained { size, distance } => write!(
                f,
                "dma mover downward {size} bytes by {distance} in several chains"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn sized_names_render_as_the_logs_show_them() {
        let copy = DmaCheck::Copy {
            len: 65_532,
            blocks: BlockMode::LiteSized,
        };
        assert_eq!(copy.to_string(), "dma copy 65532 bytes, lite-sized blocks");
        let mover = DmaCheck::Mover {
            route: Route::HeapToPool,
            size: 4096,
        };
        assert_eq!(mover.to_string(), "dma mover heap to pool 4096 bytes");
        let down = DmaCheck::Downward {
            size: 8192,
            distance: 4096,
        };
        assert_eq!(down.to_string(), "dma mover downward 8192 bytes by 4096");
        let chained = DmaCheck::DownwardChained {
            size: 8192,
            distance: 4096,
        };
        assert_eq!(
            chained.to_string(),
            "dma mover downward 8192 bytes by 4096 in several chains"
        );
    }

    #[test]
    fn fixed_names_are_distinct() {
        let mut names: Vec<&str> = boot::ALL
            .into_iter()
            .chain(fault::ALL)
            .chain(bringup::ALL)
            .collect();
        names.extend([
            NO_DMA_CHANNEL,
            DMA_OPEN,
            DMA_MOVER_OPEN,
            FAULT_OPEN,
            CHAINS_LONGER_THAN_CB_AREA,
            CPU_COPY_DISJOINT,
            CPU_COPY_DOWNWARD,
        ]);
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
