//! ARM physical addresses and the VideoCore bus addresses the DMA engine
//! and the mailbox take, with the one rule that converts between them.
//!
//! The BCM2837's peripherals and its DMA engine sit on the VideoCore's bus,
//! whose address map differs from the ARM's (BCM2835 ARM Peripherals,
//! section 1.2). The bus sees SDRAM four times, in 1 GiB aliases that differ
//! in how the VideoCore's L2 cache treats the access: 0x0 (L1 and L2
//! cached), 0x4 (L2 coherent), 0x8 (L2 cached only) and 0xC (direct,
//! uncached). The ARM does not go through the VideoCore's L2 on a Pi 2/3, so
//! everything the ARM hands to the VideoCore side — DMA control blocks and
//! the addresses in them, mailbox messages — uses the uncached 0xC alias:
//! bus = phys | 0xC000_0000. Linux describes the same mapping for the
//! BCM2836/7 in its device tree (`dma-ranges = <0xc0000000 0x0 0x3f000000>`).
//! The peripherals themselves are at ARM physical 0x3F00_0000 and bus
//! 0x7E00_0000, so SDRAM as the engine addresses it ends at 0x3F00_0000.

use core::fmt;

/// First ARM physical address that is not SDRAM as the VideoCore's bus sees
/// it: the peripherals start here on the BCM2837.
pub const SDRAM_END: u64 = 0x3F00_0000;

/// The uncached bus alias of SDRAM on a Pi 2/3.
pub const SDRAM_BUS_ALIAS: u32 = 0xC000_0000;

/// An ARM physical address (the firmware maps memory identity, so it is
/// also the virtual address the CPU uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysAddr(pub u64);

/// A VideoCore bus address, as the DMA engine and the mailbox take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BusAddr(pub u32);

/// A range that the VideoCore's bus cannot reach through the SDRAM alias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotSdram {
    pub addr: u64,
    pub len: u64,
}

impl fmt::Display for NotSdram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at {:#x} are not SDRAM the VideoCore's bus can address (limit {SDRAM_END:#x})",
            self.len, self.addr
        )
    }
}

impl PhysAddr {
    /// The bus address of the `len`-byte SDRAM range that starts here.
    /// Refused unless the whole range lies below [`SDRAM_END`] (an address
    /// that is already a bus address is refused too, rather than passed
    /// through).
    pub const fn to_bus(self, len: u64) -> Result<BusAddr, NotSdram> {
        match self.0.checked_add(len) {
            Some(end) if end <= SDRAM_END => Ok(BusAddr(self.0 as u32 | SDRAM_BUS_ALIAS)),
            _ => Err(NotSdram { addr: self.0, len }),
        }
    }
}

impl BusAddr {
    /// The ARM physical address of an SDRAM bus address (through any of the
    /// four aliases).
    pub const fn to_phys(self) -> PhysAddr {
        PhysAddr((self.0 & !SDRAM_BUS_ALIAS) as u64)
    }

    /// `offset` bytes further on. The caller stays inside the range that
    /// [`PhysAddr::to_bus`] checked.
    pub const fn offset(self, offset: u32) -> BusAddr {
        BusAddr(self.0 + offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sdram_maps_to_the_uncached_alias() {
        assert_eq!(PhysAddr(0x8_0000).to_bus(4), Ok(BusAddr(0xC008_0000)));
        assert_eq!(PhysAddr(0x20_0000).to_bus(64), Ok(BusAddr(0xC020_0000)));
        assert_eq!(PhysAddr(0).to_bus(SDRAM_END), Ok(BusAddr(0xC000_0000)));
    }

    #[test]
    fn ranges_beyond_sdram_are_refused() {
        let err = NotSdram {
            addr: 0x3EFF_F000,
            len: 0x2000,
        };
        assert_eq!(PhysAddr(0x3EFF_F000).to_bus(0x2000), Err(err));
        // A peripheral, and an address that already is a bus address.
        assert!(PhysAddr(0x3F20_1000).to_bus(4).is_err());
        assert!(PhysAddr(0xC020_0000).to_bus(4).is_err());
        assert!(PhysAddr(u64::MAX).to_bus(2).is_err());
    }

    proptest! {
        #[test]
        fn bus_and_phys_round_trip(addr in 0u64..SDRAM_END, len in 0u64..0x100_0000) {
            match PhysAddr(addr).to_bus(len) {
                Ok(bus) => {
                    prop_assert!(addr + len <= SDRAM_END);
                    prop_assert_eq!(bus.0 & SDRAM_BUS_ALIAS, SDRAM_BUS_ALIAS);
                    prop_assert_eq!(bus.to_phys(), PhysAddr(addr));
                }
                Err(e) => {
                    prop_assert!(addr + len > SDRAM_END);
                    prop_assert_eq!(e, NotSdram { addr, len });
                }
            }
        }
    }
}
