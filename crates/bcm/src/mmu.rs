//! Translation-table descriptors of the firmware's identity map: 4 KiB
//! granule, level-1 table descriptors and level-2 2 MiB block descriptors
//! (Arm Architecture Reference Manual, D5.3 "VMSAv8-64 translation table
//! format descriptors"). The firmware's `src/mmu.rs` writes what these
//! return into its tables.

use tock_registers::register_bitfields;
use tock_registers::LocalRegisterCopy;

register_bitfields! [u64,
    /// A level-1 or level-2 descriptor, 4 KiB granule, stage 1.
    pub DESCRIPTOR [
        /// The entry is valid.
        VALID OFFSET(0) NUMBITS(1) [],
        /// At levels 1 and 2: a block or a pointer to the next table.
        TYPE OFFSET(1) NUMBITS(1) [
            Block = 0,
            Table = 1
        ],
        /// Index into MAIR_EL1 (block descriptors).
        ATTR_INDX OFFSET(2) NUMBITS(3) [],
        /// Access permissions: 0b00 is read/write at EL1, no access at EL0.
        AP OFFSET(6) NUMBITS(2) [
            RwEl1 = 0b00
        ],
        /// Shareability of Normal memory (ignored for Device memory, which is
        /// always outer shareable).
        SH OFFSET(8) NUMBITS(2) [
            NonShareable = 0b00,
            OuterShareable = 0b10,
            InnerShareable = 0b11
        ],
        /// Access flag: clear would fault on first access (no hardware
        /// update of the flag on the A53 at ARMv8.0).
        AF OFFSET(10) NUMBITS(1) [],
        /// Output address bits 47:21 of a level-2 block.
        BLOCK_ADDR_2MIB OFFSET(21) NUMBITS(27) [],
        /// Next-level table address bits 47:12.
        TABLE_ADDR OFFSET(12) NUMBITS(36) [],
        /// Privileged execute-never.
        PXN OFFSET(53) NUMBITS(1) [],
        /// Unprivileged execute-never.
        UXN OFFSET(54) NUMBITS(1) []
    ]
];

/// The size of a level-2 block.
pub const BLOCK: usize = 2 << 20;

/// MAIR_EL1 attribute index of Device-nGnRE. The firmware programs
/// MAIR_EL1's Attr0..Attr2 to match these three indices.
pub const ATTR_DEVICE: u64 = 0;
/// MAIR_EL1 attribute index of Normal write-back read/write-allocate.
pub const ATTR_NORMAL_WB: u64 = 1;
/// MAIR_EL1 attribute index of Normal non-cacheable.
pub const ATTR_NORMAL_NC: u64 = 2;

/// How one 2 MiB block is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Normal, inner/outer write-back read/write-allocate, inner shareable.
    Ram,
    /// Normal non-cacheable (pool, `.coherent`): never executed.
    NonCacheable,
    /// Device-nGnRE: never executed.
    Device,
}

/// The level-2 block descriptor mapping the 2 MiB block at `addr` (which
/// must be 2 MiB aligned) to itself, read/write at EL1.
pub fn block_descriptor(addr: usize, kind: Kind) -> u64 {
    debug_assert!(addr.is_multiple_of(BLOCK), "blocks are 2 MiB aligned");
    let mut d = LocalRegisterCopy::<u64, DESCRIPTOR::Register>::new(0);
    d.write(
        DESCRIPTOR::VALID::SET
            + DESCRIPTOR::TYPE::Block
            + DESCRIPTOR::AP::RwEl1
            + DESCRIPTOR::AF::SET
            + DESCRIPTOR::BLOCK_ADDR_2MIB.val(addr as u64 >> 21),
    );
    match kind {
        Kind::Ram => {
            d.modify(DESCRIPTOR::ATTR_INDX.val(ATTR_NORMAL_WB) + DESCRIPTOR::SH::InnerShareable)
        }
        Kind::NonCacheable => d.modify(
            DESCRIPTOR::ATTR_INDX.val(ATTR_NORMAL_NC)
                + DESCRIPTOR::SH::InnerShareable
                + DESCRIPTOR::PXN::SET
                + DESCRIPTOR::UXN::SET,
        ),
        Kind::Device => d.modify(
            DESCRIPTOR::ATTR_INDX.val(ATTR_DEVICE)
                + DESCRIPTOR::SH::NonShareable
                + DESCRIPTOR::PXN::SET
                + DESCRIPTOR::UXN::SET,
        ),
    }
    d.get()
}

/// The level-1 table descriptor pointing at the level-2 table at `table`
/// (4 KiB aligned).
pub fn table_descriptor(table: u64) -> u64 {
    debug_assert!(table.is_multiple_of(4096), "tables are 4 KiB aligned");
    let mut d = LocalRegisterCopy::<u64, DESCRIPTOR::Register>::new(0);
    d.write(
        DESCRIPTOR::VALID::SET + DESCRIPTOR::TYPE::Table + DESCRIPTOR::TABLE_ADDR.val(table >> 12),
    );
    d.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_have_the_architectural_bits() {
        // Bits by hand (ARM ARM D5.3): valid 0, type 1, AttrIndx 4:2, SH 9:8,
        // AF 10, PXN 53, UXN 54.
        assert_eq!(
            block_descriptor(0x20_0000, Kind::Ram),
            0x0000_0000_0020_0705
        );
        assert_eq!(
            block_descriptor(0x20_0000, Kind::NonCacheable),
            0x0060_0000_0020_0709
        );
        assert_eq!(
            block_descriptor(0x3F00_0000, Kind::Device),
            0x0060_0000_3F00_0401
        );
        assert_eq!(table_descriptor(0x9_1000), 0x9_1003);
    }

    #[test]
    fn the_output_address_is_the_block() {
        for addr in [0, BLOCK, 0x3FE0_0000, 0x4000_0000] {
            let d = LocalRegisterCopy::<u64, DESCRIPTOR::Register>::new(block_descriptor(
                addr,
                Kind::Device,
            ));
            assert_eq!((d.read(DESCRIPTOR::BLOCK_ADDR_2MIB) << 21) as usize, addr);
            assert!(d.matches_all(DESCRIPTOR::TYPE::Block + DESCRIPTOR::VALID::SET));
        }
    }
}
