//! Planning a memory-to-memory DMA transfer as a chain of control blocks.
//!
//! The BCM2837 DMA engine executes a linked list of 32-byte control blocks
//! (BCM2835 ARM Peripherals, section 4.2.1.1). This module decides, without
//! touching hardware, how one logical move becomes that list: how long each
//! block may be on the chosen channel, which transfer-information (TI) bits
//! each block carries, how an overlapping move is split so that no block reads
//! a byte an earlier block already overwrote, and which moves are refused
//! before anything reaches the hardware. The firmware's driver (`src/dma.rs`)
//! only writes the blocks this module yields into coherent memory and starts
//! the channel.
//!
//! Every refusal here is deliberate: the real engine does not report a bad
//! control block in any useful way (a length that is not a multiple of 4 makes
//! QEMU spin forever, and on silicon an upward overlapping move silently
//! corrupts the data), so the plan is the last place a mistake can be caught.

use crate::addr::{BusAddr, NotSdram, PhysAddr, SDRAM_END};
use core::fmt;
use tock_registers::register_bitfields;
use tock_registers::LocalRegisterCopy;

/// Longest block a lite channel (7 to 14) accepts: its TXFR_LEN has 16 bits,
/// and lengths must stay multiples of 4.
pub const LITE_MAX_BLOCK: u32 = 65_532;

/// Longest block on a full channel: TXFR_LEN is 30 bits wide in 1D mode
/// (bits 29:0), rounded down to a multiple of 4.
pub const FULL_MAX_BLOCK: u32 = (1 << 30) - 4;

/// Every length and address must be a multiple of this (32-bit transfer
/// granularity; QEMU's model copies in 4-byte steps and hangs otherwise).
pub const GRANULE: u64 = 4;

/// A transfer uses 128-bit accesses only when its length and both its
/// addresses are multiples of this (see [`Engine::wide_for`]).
pub const WIDE_ALIGN: u64 = 16;

/// Control blocks must be 32-byte aligned (CONBLK_AD and NEXTCONBK ignore the
/// low 5 bits).
pub const CB_ALIGN: usize = 32;

register_bitfields! [u32,
    /// Transfer information: the TI register and the first word of a control
    /// block (BCM2835 ARM Peripherals, section 4.2.1.2). Lite channels have
    /// no 2D mode and no 128-bit accesses.
    pub TI [
        /// Raise an interrupt at the end of the block (unused: the driver polls).
        INTEN OFFSET(0) NUMBITS(1) [],
        /// 2D mode (not available on lite channels; never used here).
        TDMODE OFFSET(1) NUMBITS(1) [],
        /// Wait for the AXI write response of each write before going on, so
        /// that END means the data has reached memory and consecutive blocks
        /// are ordered (the overlap argument of [`Plan`] relies on it).
        WAIT_RESP OFFSET(3) NUMBITS(1) [],
        /// Increment the destination address after each write.
        DEST_INC OFFSET(4) NUMBITS(1) [],
        /// 128-bit destination writes (full channels only).
        DEST_WIDTH OFFSET(5) NUMBITS(1) [],
        /// Gate destination writes with the peripheral's DREQ (memory: clear).
        DEST_DREQ OFFSET(6) NUMBITS(1) [],
        /// Do not write the destination (memory copies: clear).
        DEST_IGNORE OFFSET(7) NUMBITS(1) [],
        /// Increment the source address after each read.
        SRC_INC OFFSET(8) NUMBITS(1) [],
        /// 128-bit source reads (full channels only).
        SRC_WIDTH OFFSET(9) NUMBITS(1) [],
        /// Gate source reads with the peripheral's DREQ (memory: clear).
        SRC_DREQ OFFSET(10) NUMBITS(1) [],
        /// Do not read the source; write zeros (memory copies: clear).
        SRC_IGNORE OFFSET(11) NUMBITS(1) [],
        /// Beats per burst; 0 means single transfers.
        BURST_LENGTH OFFSET(12) NUMBITS(4) [],
        /// Peripheral whose DREQ paces the transfer (0: none, unpaced).
        PERMAP OFFSET(16) NUMBITS(5) [],
        /// Dummy cycles after each read or write (0: none).
        WAITS OFFSET(21) NUMBITS(5) [],
        /// Do not issue 128-bit writes as 2-beat bursts.
        NO_WIDE_BURSTS OFFSET(26) NUMBITS(1) []
    ]
];

/// A TI word, for building and reading its fields.
pub type TiWord = LocalRegisterCopy<u32, TI::Register>;

/// What kind of engine a channel number names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// Channels 0 to 6 and 15. `deep_fifo` is set for 0 and 15, the only ones
    /// fitted with the external 128-bit x 8 read FIFO (datasheet 4.3).
    Full { deep_fifo: bool },
    /// Channels 7 to 14: 16-bit TXFR_LEN, no 2D mode, about half the bandwidth.
    Lite,
}

impl ChannelKind {
    /// The kind of channel `channel` (0 to 15).
    ///
    /// This is decided by the channel number, never by the DEBUG register's
    /// LITE bit, because QEMU models every channel as a full one and reports
    /// no lite channel.
    pub fn of(channel: u8) -> Result<Self, PlanError> {
        match channel {
            0 | 15 => Ok(ChannelKind::Full { deep_fifo: true }),
            1..=6 => Ok(ChannelKind::Full { deep_fifo: false }),
            7..=14 => Ok(ChannelKind::Lite),
            _ => Err(PlanError::NoSuchChannel { channel }),
        }
    }

    /// The hardware limit on one block's length on this kind of channel.
    pub fn max_block(self) -> u32 {
        match self {
            ChannelKind::Full { .. } => FULL_MAX_BLOCK,
            ChannelKind::Lite => LITE_MAX_BLOCK,
        }
    }

    /// The TI word of a 16-byte aligned memory-to-memory block on this kind
    /// of channel; see [`Engine::ti`].
    pub fn ti(self) -> u32 {
        Engine::new(self).ti(true)
    }
}

/// How blocks are built for one channel: its kind, the longest block to
/// plan, and whether full channels write 128 bits at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engine {
    pub kind: ChannelKind,
    /// Longest block to plan, at most the channel's hardware limit (a smaller
    /// value lets tests force lite-sized chaining on any channel).
    pub max_block: u32,
    /// 128-bit destination writes on full channels. QEMU 7.2 ignores the
    /// width bits, but newer QEMU releases refuse DEST_WIDTH with CS.ERROR
    /// ("128bit transfers not yet supported"), so the firmware clears this
    /// under emulation and keeps it on silicon.
    pub wide_writes: bool,
}

impl Engine {
    /// The engine of a channel of `kind`, with the hardware's block limit and
    /// wide writes.
    pub fn new(kind: ChannelKind) -> Self {
        Engine {
            kind,
            max_block: kind.max_block(),
            wide_writes: true,
        }
    }

    /// The engine of channel `channel`.
    pub fn for_channel(channel: u8) -> Result<Self, PlanError> {
        Ok(Self::new(ChannelKind::of(channel)?))
    }

    /// The longest block this engine plans.
    pub fn block_limit(&self) -> u32 {
        self.max_block.min(self.kind.max_block())
    }

    /// Whether a transfer of `len` bytes from `src` to `dest` runs with
    /// 128-bit accesses on this engine: only on a full channel, and only when
    /// the length and both addresses are multiples of [`WIDE_ALIGN`]. A
    /// 128-bit beat moves 16 bytes at a 16-byte aligned address; the
    /// datasheet (4.2.1.2, SRC_WIDTH/DEST_WIDTH) promises nothing for other
    /// lengths or addresses, and Linux's memcpy (`bcm2835_dma_prep_dma_memcpy`)
    /// never sets the width bits at all.
    pub fn wide_for(&self, src: u64, dest: u64, len: u64) -> bool {
        !matches!(self.kind, ChannelKind::Lite)
            && [src, dest, len].iter().all(|v| v % WIDE_ALIGN == 0)
    }

    /// The TI bits of a memory-to-memory block, with 128-bit accesses when
    /// `wide` (see [`wide_for`](Self::wide_for)).
    ///
    /// Choices (the datasheet's section 4.3 on AXI bursts is the reason):
    /// - Channels 0 and 15 read through their 8 x 128-bit FIFO, so a 128-bit
    ///   read burst of 8 beats fits in it.
    /// - The other full channels have no such FIFO: a read burst larger than
    ///   the engine's internal buffer stalls the AXI read bus until the data
    ///   is written out (and can lock the bus up), so they use 128-bit reads
    ///   in bursts of 2 beats (256 bits, the engine's internal register).
    /// - Lite channels, and every transfer that is not 16-byte aligned, get
    ///   32-bit accesses in bursts of 4 beats (128 bits).
    ///
    /// NO_WIDE_BURSTS stays clear: 2-beat wide writes are the efficient
    /// default for memory; Linux sets that bit only for some peripherals, not
    /// for memcpy. INTEN stays clear because the driver polls CS.END.
    pub fn ti(&self, wide: bool) -> u32 {
        let wide = wide && !matches!(self.kind, ChannelKind::Lite);
        let beats = match self.kind {
            _ if !wide => 4,
            ChannelKind::Full { deep_fifo: true } => 8,
            _ => 2,
        };
        let mut ti = TiWord::new(0);
        ti.write(
            TI::SRC_INC::SET + TI::DEST_INC::SET + TI::WAIT_RESP::SET + TI::BURST_LENGTH.val(beats),
        );
        if wide {
            ti.modify(TI::SRC_WIDTH::SET);
            if self.wide_writes {
                ti.modify(TI::DEST_WIDTH::SET);
            }
        }
        ti.get()
    }

    /// Plans `transfer` on this engine; see [`Plan::new`].
    pub fn plan(&self, transfer: Transfer) -> Result<Plan, PlanError> {
        Plan::new(transfer, self)
    }

    /// The TI bits of a zero fill: [`ti`](Self::ti) with SRC_IGNORE set and
    /// the source's increment and width cleared (nothing is read). The
    /// datasheet (4.2.1.2) describes SRC_IGNORE as "do not perform source
    /// reads"; QEMU's model then writes zeros. Whether silicon writes zeros
    /// too is what the allocation bench's verification checks, every run.
    pub fn fill_ti(&self, wide: bool) -> u32 {
        let mut ti = TiWord::new(self.ti(wide));
        ti.modify(TI::SRC_INC::CLEAR + TI::SRC_WIDTH::CLEAR + TI::SRC_IGNORE::SET);
        ti.get()
    }

    /// Plans a zero fill of `len` bytes at `dest`; see [`Plan::fill`].
    pub fn plan_fill(&self, dest: u64, len: u64) -> Result<Plan, PlanError> {
        Plan::fill(dest, len, self)
    }
}

/// Why a transfer cannot be planned. Nothing reaches the hardware when a plan
/// is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The length is not a multiple of 4 bytes.
    LengthNotMultipleOf4 { len: u64 },
    /// The source or destination address is not 4-byte aligned.
    Misaligned { addr: u64 },
    /// The destination starts inside the source (src < dest < src + len): a
    /// forward copy would read bytes it already overwrote. The pool core only
    /// ever moves buffers downward.
    UpwardOverlap { src: u64, dest: u64, len: u64 },
    /// The range is not SDRAM the DMA engine can address through the bus alias.
    NotSdram { addr: u64, len: u64 },
    /// A block length limit that is zero or not a multiple of 4.
    BadBlockLimit { max_block: u32 },
    /// Channel numbers are 0 to 15.
    NoSuchChannel { channel: u8 },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PlanError::LengthNotMultipleOf4 { len } => {
                write!(f, "DMA length {len} bytes is not a multiple of 4; refused before reaching the engine")
            }
            PlanError::Misaligned { addr } => write!(f, "DMA address {addr:#x} is not 4-byte aligned"),
            PlanError::UpwardOverlap { src, dest, len } => write!(
                f,
                "upward overlapping DMA move refused: {len} bytes from {src:#x} to {dest:#x} would read overwritten bytes"
            ),
            PlanError::NotSdram { addr, len } => {
                write!(f, "{len} bytes at {addr:#x} are not SDRAM the DMA engine can address (limit {SDRAM_END:#x})")
            }
            PlanError::BadBlockLimit { max_block } => {
                write!(f, "block limit {max_block} is not a positive multiple of 4")
            }
            PlanError::NoSuchChannel { channel } => write!(f, "DMA channel {channel} does not exist (0 to 15)"),
        }
    }
}

/// One memory-to-memory move in ARM physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub src: u64,
    pub dest: u64,
    pub len: u64,
}

/// One planned control block, with bus addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub ti: u32,
    pub source_ad: BusAddr,
    pub dest_ad: BusAddr,
    pub txfr_len: u32,
}

impl From<NotSdram> for PlanError {
    fn from(NotSdram { addr, len }: NotSdram) -> Self {
        PlanError::NotSdram { addr, len }
    }
}

/// A validated transfer and the block size it is cut into. Iterate
/// [`Plan::blocks`] to get the control blocks in the order they must run.
///
/// Blocks run in ascending address order. For a downward overlapping move
/// (dest < src < dest + len, distance d = src - dest) every block is at most
/// d bytes long, so a block's source range never meets its own destination
/// range, and its destination lies entirely below every source byte a later
/// block reads: no block reads a byte an earlier block wrote. WAIT_RESP makes
/// each block's writes land before the next block starts, which is what makes
/// that ordering hold on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    transfer: Transfer,
    source_bus: BusAddr,
    dest_bus: BusAddr,
    chunk: u64,
    ti: u32,
    /// A zero fill (SRC_IGNORE): `transfer.src` is `dest` and never read.
    fill: bool,
}

impl Plan {
    /// Plans `transfer` on `engine`: validates it completely, so that a plan
    /// that exists can be handed to the hardware as it is.
    pub fn new(transfer: Transfer, engine: &Engine) -> Result<Self, PlanError> {
        let Transfer { src, dest, len } = transfer;
        if len % GRANULE != 0 {
            return Err(PlanError::LengthNotMultipleOf4 { len });
        }
        for addr in [src, dest] {
            if addr % GRANULE != 0 {
                return Err(PlanError::Misaligned { addr });
            }
        }
        if src < dest && dest < src.saturating_add(len) {
            return Err(PlanError::UpwardOverlap { src, dest, len });
        }
        let source_bus = PhysAddr(src).to_bus(len)?;
        let dest_bus = PhysAddr(dest).to_bus(len)?;
        let limit = engine.block_limit();
        if limit == 0 || u64::from(limit) % GRANULE != 0 {
            return Err(PlanError::BadBlockLimit {
                max_block: engine.max_block,
            });
        }
        let wide = engine.wide_for(src, dest, len);
        let mut chunk = u64::from(limit);
        if wide {
            // Every block of a wide plan must start 16-byte aligned too.
            chunk -= chunk % WIDE_ALIGN;
        }
        if dest < src && src < dest + len {
            // Both are multiples of 4 (16 when wide), so the distance is too.
            chunk = chunk.min(src - dest);
        }
        if chunk == 0 {
            return Err(PlanError::BadBlockLimit {
                max_block: engine.max_block,
            });
        }
        Ok(Plan {
            transfer,
            source_bus,
            dest_bus,
            chunk,
            ti: engine.ti(wide),
            fill: false,
        })
    }

    /// Plans a zero fill of `len` bytes at `dest` (TI.SRC_IGNORE, see
    /// [`Engine::fill_ti`]). The same checks as a copy, with the source set
    /// to the destination (the engine ignores it; a valid bus address keeps
    /// the block readable in a dump). No overlap can arise: nothing is read.
    pub fn fill(dest: u64, len: u64, engine: &Engine) -> Result<Self, PlanError> {
        let mut plan = Plan::new(
            Transfer {
                src: dest,
                dest,
                len,
            },
            engine,
        )?;
        plan.fill = true;
        plan.ti = engine.fill_ti(engine.wide_for(dest, dest, len));
        Ok(plan)
    }

    /// Whether the plan is a zero fill.
    pub fn is_fill(&self) -> bool {
        self.fill
    }

    /// The transfer this plan performs.
    pub fn transfer(&self) -> Transfer {
        self.transfer
    }

    /// The TI word of every block of the plan.
    pub fn ti(&self) -> u32 {
        self.ti
    }

    /// Whether the plan uses 128-bit accesses (SRC_WIDTH).
    pub fn is_wide(&self) -> bool {
        TiWord::new(self.ti).is_set(TI::SRC_WIDTH)
    }

    /// The longest block of the plan.
    pub fn chunk(&self) -> u64 {
        self.chunk
    }

    /// How many control blocks the plan needs (0 for an empty move or a move
    /// onto itself).
    pub fn block_count(&self) -> usize {
        if self.is_noop() {
            0
        } else {
            self.transfer.len.div_ceil(self.chunk) as usize
        }
    }

    /// `true` when nothing has to be copied.
    pub fn is_noop(&self) -> bool {
        self.transfer.len == 0 || (!self.fill && self.transfer.src == self.transfer.dest)
    }

    /// The control blocks, first to run first.
    pub fn blocks(&self) -> Blocks {
        Blocks {
            plan: *self,
            index: 0,
            count: self.block_count(),
        }
    }

    /// The `index`-th block (0-based); `None` past the end.
    pub fn block(&self, index: usize) -> Option<Block> {
        if index >= self.block_count() {
            return None;
        }
        let offset = index as u64 * self.chunk;
        let len = self.chunk.min(self.transfer.len - offset);
        // Offsets stay below `len`, which `to_bus` checked fits in SDRAM.
        Some(Block {
            ti: self.ti,
            source_ad: self.source_bus.offset(offset as u32),
            dest_ad: self.dest_bus.offset(offset as u32),
            txfr_len: len as u32,
        })
    }

    /// Byte offset into the transfer at which block `index` starts: where a
    /// copy must resume when blocks before `index` are known complete and
    /// the rest are not. Blocks run in order and WAIT_RESP lands each one's
    /// writes before the next starts, and for a downward overlapping move no
    /// block writes a source byte at or after its own start, so the source
    /// from this offset on is still intact and resuming there is correct
    /// even when a full redo would read overwritten bytes.
    pub fn resume_offset(&self, index: usize) -> u64 {
        (index as u64 * self.chunk).min(self.transfer.len)
    }
}

/// The index in the plan of the block a channel was executing, from its
/// CONBLK_AD register: `area` is the bus address of the control-block area,
/// whose slots hold blocks `first..first + len` of the plan. CONBLK_AD is 0
/// once the chain has ended (the last block's NEXTCONBK), so every block of
/// the chain completed. `None` when CONBLK_AD points outside the chain.
pub fn block_in_chain(conblk_ad: u32, area: BusAddr, first: usize, len: usize) -> Option<usize> {
    if conblk_ad == 0 {
        return Some(first + len);
    }
    conblk_ad
        .checked_sub(area.0)
        .map(|off| off as usize)
        .filter(|off| off % CB_ALIGN == 0 && off / CB_ALIGN < len)
        .map(|off| first + off / CB_ALIGN)
}

/// Iterator over a plan's blocks.
#[derive(Clone, Debug)]
pub struct Blocks {
    plan: Plan,
    index: usize,
    count: usize,
}

impl Iterator for Blocks {
    type Item = Block;
    fn next(&mut self) -> Option<Block> {
        let block = self.plan.block(self.index)?;
        self.index += 1;
        Some(block)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.index.min(self.count);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Blocks {}

/// A control block as the engine reads it from memory (datasheet 4.2.1.1):
/// eight 32-bit words, 32-byte aligned, every address a bus address.
#[repr(C, align(32))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ControlBlock {
    pub ti: u32,
    pub source_ad: u32,
    pub dest_ad: u32,
    pub txfr_len: u32,
    /// 2D strides; unused in 1D mode, kept zero.
    pub stride: u32,
    /// Bus address of the next block, 0 to stop after this one.
    pub nextconbk: u32,
    pub reserved: [u32; 2],
}

impl ControlBlock {
    /// An all-zero block.
    pub const ZERO: ControlBlock = ControlBlock {
        ti: 0,
        source_ad: 0,
        dest_ad: 0,
        txfr_len: 0,
        stride: 0,
        nextconbk: 0,
        reserved: [0; 2],
    };

    /// The block for `block`, chained to the block at bus address `next`
    /// (`None`: the last block of the chain).
    pub fn new(block: &Block, next: Option<BusAddr>) -> Self {
        let nextconbk = next.map_or(0, |bus| bus.0);
        debug_assert_eq!(
            nextconbk as usize % CB_ALIGN,
            0,
            "NEXTCONBK must be 32-byte aligned"
        );
        ControlBlock {
            ti: block.ti,
            source_ad: block.source_ad.0,
            dest_ad: block.dest_ad.0,
            txfr_len: block.txfr_len,
            stride: 0,
            nextconbk,
            reserved: [0; 2],
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    const LITE: ChannelKind = ChannelKind::Lite;
    const FULL: ChannelKind = ChannelKind::Full { deep_fifo: false };

    fn plan(t: Transfer, kind: ChannelKind, max_block: u32) -> Result<Plan, PlanError> {
        Plan::new(
            t,
            &Engine {
                kind,
                max_block,
                wide_writes: true,
            },
        )
    }

    fn phys(bus: BusAddr) -> u64 {
        bus.to_phys().0
    }

    /// Runs the plan over `mem` (indexed by physical address) the way the
    /// engine may: within one block reads and writes interleave in any order,
    /// so a block whose source meets its destination is reported; across
    /// blocks the order is strict. Returns an error naming the first block
    /// that reads a byte an earlier block wrote.
    fn simulate(plan: &Plan, mem: &mut [u8]) -> Result<(), std::string::String> {
        let mut written = vec![false; mem.len()];
        for (i, b) in plan.blocks().enumerate() {
            let (s, d, n) = (
                phys(b.source_ad) as usize,
                phys(b.dest_ad) as usize,
                b.txfr_len as usize,
            );
            if s < d + n && d < s + n {
                return Err(std::format!(
                    "block {i} reads and writes overlapping ranges"
                ));
            }
            if written[s..s + n].iter().any(|&w| w) {
                return Err(std::format!(
                    "block {i} reads bytes an earlier block overwrote"
                ));
            }
            mem.copy_within(s..s + n, d);
            written[d..d + n].iter_mut().for_each(|w| *w = true);
        }
        Ok(())
    }

    fn check(src: u64, dest: u64, len: u64, kind: ChannelKind, max_block: u32) {
        let p = plan(Transfer { src, dest, len }, kind, max_block).unwrap();
        let size = (src.max(dest) + len) as usize;
        let mut mem: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut expected = mem.clone();
        expected.copy_within(src as usize..(src + len) as usize, dest as usize);
        simulate(&p, &mut mem).unwrap();
        assert!(
            mem == expected,
            "plan of {len} bytes {src:#x} -> {dest:#x} differs from memmove"
        );

        // Blocks tile the range exactly, in ascending order, within limits.
        let mut next = 0u64;
        for b in p.blocks() {
            assert_eq!(phys(b.source_ad), src + next);
            assert_eq!(phys(b.dest_ad), dest + next);
            assert!(b.txfr_len > 0 && b.txfr_len % 4 == 0);
            assert!(b.txfr_len <= kind.max_block() && b.txfr_len <= max_block);
            assert_eq!(b.ti, p.ti());
            if p.is_wide() {
                assert!(
                    phys(b.source_ad).is_multiple_of(WIDE_ALIGN)
                        && phys(b.dest_ad).is_multiple_of(WIDE_ALIGN)
                        && (b.txfr_len as u64).is_multiple_of(WIDE_ALIGN),
                    "a wide block must be 16-byte aligned: {b:?}"
                );
            }
            next += u64::from(b.txfr_len);
        }
        if src != dest {
            assert_eq!(next, len);
        }
        assert_eq!(p.blocks().len(), p.block_count());
    }

    #[test]
    fn channel_kinds_follow_the_channel_number() {
        assert_eq!(
            ChannelKind::of(0),
            Ok(ChannelKind::Full { deep_fifo: true })
        );
        assert_eq!(
            ChannelKind::of(15),
            Ok(ChannelKind::Full { deep_fifo: true })
        );
        assert_eq!(ChannelKind::of(4), Ok(FULL));
        for c in 7..=14 {
            assert_eq!(ChannelKind::of(c), Ok(LITE));
        }
        assert_eq!(
            ChannelKind::of(16),
            Err(PlanError::NoSuchChannel { channel: 16 })
        );
        assert_eq!(LITE.max_block(), 65_532);
    }

    #[test]
    fn ti_bits_are_a_plain_incrementing_copy() {
        for kind in [LITE, FULL, ChannelKind::Full { deep_fifo: true }] {
            let t = TiWord::new(kind.ti());
            assert!(t.matches_all(TI::SRC_INC::SET + TI::DEST_INC::SET + TI::WAIT_RESP::SET));
            for off in [
                TI::TDMODE,
                TI::INTEN,
                TI::NO_WIDE_BURSTS,
                TI::SRC_IGNORE,
                TI::DEST_IGNORE,
                TI::SRC_DREQ,
                TI::DEST_DREQ,
            ] {
                assert!(!t.is_set(off));
            }
            assert_eq!((t.read(TI::PERMAP), t.read(TI::WAITS)), (0, 0));
        }
        // Narrow writes clear only DEST_WIDTH.
        let narrow = Engine {
            wide_writes: false,
            ..Engine::new(FULL)
        };
        let wide = TiWord::new(FULL.ti());
        assert!(wide.is_set(TI::DEST_WIDTH));
        let mut cleared = wide;
        cleared.modify(TI::DEST_WIDTH::CLEAR);
        assert_eq!(narrow.ti(true), cleared.get());
        // Lite engines have no 128-bit mode.
        let lite = TiWord::new(LITE.ti());
        assert!(!lite.is_set(TI::SRC_WIDTH) && !lite.is_set(TI::DEST_WIDTH));
        // Only the deep-FIFO channels get 8-beat bursts.
        let deep = TiWord::new(ChannelKind::Full { deep_fifo: true }.ti());
        assert_eq!(deep.read(TI::BURST_LENGTH), 8);
        assert_eq!(wide.read(TI::BURST_LENGTH), 2);
        assert_eq!(lite.read(TI::BURST_LENGTH), 4);
    }

    #[test]
    fn ti_words_match_the_datasheet_bit_positions() {
        // SRC_INC bit 8, DEST_INC 4, WAIT_RESP 3, SRC_WIDTH 9, DEST_WIDTH 5,
        // BURST_LENGTH bits 15:12 (datasheet 4.2.1.2), computed by hand.
        assert_eq!(ChannelKind::Full { deep_fifo: true }.ti(), 0x0000_8338);
        assert_eq!(FULL.ti(), 0x0000_2338);
        assert_eq!(LITE.ti(), 0x0000_4118);
        let narrow = Engine {
            wide_writes: false,
            ..Engine::new(ChannelKind::Full { deep_fifo: true })
        };
        assert_eq!(narrow.ti(true), 0x0000_8318);
        // Not 16-byte aligned: 32-bit accesses in bursts of 4 on every channel.
        assert_eq!(Engine::new(FULL).ti(false), LITE.ti());
        assert_eq!(
            Engine::new(ChannelKind::Full { deep_fifo: true }).ti(false),
            0x0000_4118
        );
    }

    #[test]
    fn wide_accesses_only_when_length_and_addresses_are_16_byte_aligned() {
        let t = |src, dest, len| Transfer { src, dest, len };
        let wide = |tr: Transfer, kind| plan(tr, kind, u32::MAX).unwrap().is_wide();
        assert!(wide(t(0x1000, 0x10_0000, 0x1000), FULL));
        assert!(!wide(t(0x1004, 0x10_0000, 0x1000), FULL), "source at +4");
        assert!(
            !wide(t(0x1000, 0x10_0008, 0x1000), FULL),
            "destination at +8"
        );
        assert!(
            !wide(t(0x1000, 0x10_0000, 0x1004), FULL),
            "length 4 KiB + 4"
        );
        assert!(
            !wide(t(0x1000, 0x10_0000, 0x1000), LITE),
            "lite channels never"
        );
        // Full-length blocks of a wide plan stay multiples of 16: the
        // hardware limit (2^30 - 4) is rounded down.
        let p = plan(t(0, 0x1000_0000, 0x1000_0000), FULL, u32::MAX).unwrap();
        assert!(p.is_wide());
        assert_eq!(p.chunk(), (1 << 30) - 16);
        // A block limit that is not a multiple of 16 is rounded down too, and
        // one below 16 leaves no wide block at all: refused.
        let p = plan(t(0, 0x10_0000, 0x1000), FULL, 100).unwrap();
        assert_eq!(p.chunk(), 96);
        assert_eq!(
            plan(t(0, 0x10_0000, 0x1000), FULL, 8),
            Err(PlanError::BadBlockLimit { max_block: 8 })
        );
        // The same limit suits a narrow plan.
        assert_eq!(plan(t(4, 0x10_0000, 0x1000), FULL, 8).unwrap().chunk(), 8);
    }

    #[test]
    fn invalid_length_is_refused() {
        let err = plan(
            Transfer {
                src: 0x1000,
                dest: 0x100000,
                len: 4098,
            },
            FULL,
            u32::MAX,
        );
        assert_eq!(err, Err(PlanError::LengthNotMultipleOf4 { len: 4098 }));
    }

    #[test]
    fn misaligned_addresses_are_refused() {
        let err = plan(
            Transfer {
                src: 0x1002,
                dest: 0x100000,
                len: 4096,
            },
            FULL,
            u32::MAX,
        );
        assert_eq!(err, Err(PlanError::Misaligned { addr: 0x1002 }));
    }

    #[test]
    fn upward_overlap_is_refused() {
        let t = Transfer {
            src: 0x10000,
            dest: 0x11000,
            len: 0x2000,
        };
        assert_eq!(
            plan(t, FULL, u32::MAX),
            Err(PlanError::UpwardOverlap {
                src: 0x10000,
                dest: 0x11000,
                len: 0x2000
            })
        );
        // Touching but not overlapping upward is fine.
        assert!(plan(
            Transfer {
                src: 0x10000,
                dest: 0x12000,
                len: 0x2000
            },
            FULL,
            u32::MAX
        )
        .is_ok());
    }

    #[test]
    fn non_sdram_is_refused() {
        let t = Transfer {
            src: 0x3EFF_F000,
            dest: 0x1000,
            len: 0x2000,
        };
        assert_eq!(
            plan(t, FULL, u32::MAX),
            Err(PlanError::NotSdram {
                addr: 0x3EFF_F000,
                len: 0x2000
            })
        );
        assert_eq!(PhysAddr(0x8_0000).to_bus(4), Ok(BusAddr(0xC008_0000)));
    }

    #[test]
    fn bad_block_limits_are_refused() {
        let t = Transfer {
            src: 0,
            dest: 0x10000,
            len: 0x1000,
        };
        assert_eq!(
            plan(t, FULL, 0),
            Err(PlanError::BadBlockLimit { max_block: 0 })
        );
        assert_eq!(
            plan(t, FULL, 6),
            Err(PlanError::BadBlockLimit { max_block: 6 })
        );
    }

    #[test]
    fn lite_channel_chains_32_mib_in_lite_blocks() {
        let len = 32 << 20;
        let p = plan(
            Transfer {
                src: 0x100_0000,
                dest: 0x300_0000,
                len,
            },
            LITE,
            u32::MAX,
        )
        .unwrap();
        assert_eq!(p.block_count(), (len as usize).div_ceil(65_532));
        assert!(p.blocks().all(|b| b.txfr_len <= 65_532));
        let full = plan(
            Transfer {
                src: 0x100_0000,
                dest: 0x300_0000,
                len,
            },
            FULL,
            u32::MAX,
        )
        .unwrap();
        assert_eq!(full.block_count(), 1);
    }

    #[test]
    fn downward_overlap_is_chunked_by_distance() {
        let p = plan(
            Transfer {
                src: 0x11000,
                dest: 0x10000,
                len: 0x8000,
            },
            FULL,
            u32::MAX,
        )
        .unwrap();
        assert_eq!(p.chunk(), 0x1000);
        assert_eq!(p.block_count(), 8);
        check(0x11000, 0x10000, 0x8000, FULL, u32::MAX);
        check(0x1004, 0x1000, 0x400, LITE, u32::MAX);
    }

    #[test]
    fn noop_moves_have_no_blocks() {
        assert_eq!(
            plan(
                Transfer {
                    src: 64,
                    dest: 64,
                    len: 4096
                },
                FULL,
                u32::MAX
            )
            .unwrap()
            .block_count(),
            0
        );
        assert_eq!(
            plan(
                Transfer {
                    src: 64,
                    dest: 4096,
                    len: 0
                },
                FULL,
                u32::MAX
            )
            .unwrap()
            .block_count(),
            0
        );
    }

    #[test]
    fn control_block_layout_matches_the_datasheet() {
        assert_eq!(core::mem::size_of::<ControlBlock>(), 32);
        assert_eq!(core::mem::align_of::<ControlBlock>(), 32);
        let b = Block {
            ti: 1,
            source_ad: BusAddr(2),
            dest_ad: BusAddr(3),
            txfr_len: 4,
        };
        let cb = ControlBlock::new(&b, Some(BusAddr(0xC000_0040)));
        // SAFETY: ControlBlock is repr(C), eight u32 words with no padding
        // (its size is asserted above), so it has the layout of [u32; 8].
        let words: [u32; 8] = unsafe { core::mem::transmute(cb) };
        assert_eq!(words, [1, 2, 3, 4, 0, 0xC000_0040, 0, 0]);
        assert_eq!(ControlBlock::new(&b, None).nextconbk, 0);
    }

    #[test]
    fn conblk_ad_names_the_block_being_executed() {
        let area = BusAddr(0xC020_0000);
        // The chain holds blocks 100..110 of the plan.
        assert_eq!(block_in_chain(0, area, 100, 10), Some(110), "chain ended");
        assert_eq!(block_in_chain(area.0, area, 100, 10), Some(100));
        assert_eq!(block_in_chain(area.0 + 9 * 32, area, 100, 10), Some(109));
        assert_eq!(block_in_chain(area.0 + 10 * 32, area, 100, 10), None);
        assert_eq!(block_in_chain(area.0 + 16, area, 100, 10), None);
        assert_eq!(block_in_chain(area.0 - 32, area, 100, 10), None);
    }

    #[test]
    fn resume_offsets_are_block_starts_capped_at_the_length() {
        let p = plan(
            Transfer {
                src: 0x11000,
                dest: 0x10000,
                len: 0x2800,
            },
            FULL,
            u32::MAX,
        )
        .unwrap();
        assert_eq!(p.block_count(), 3);
        assert_eq!(p.resume_offset(0), 0);
        assert_eq!(p.resume_offset(2), 0x2000);
        assert_eq!(p.resume_offset(3), 0x2800);
    }

    proptest! {
        #[test]
        fn any_valid_plan_equals_memmove(
            a in 0u64..2048, b in 0u64..2048, len in 0u64..1024,
            lite in any::<bool>(), max_words in 1u32..64, aligned in any::<bool>(),
        ) {
            // Half the cases 16-byte aligned, so wide plans are exercised too.
            let unit = if aligned { 16 } else { 4 };
            let (src, dest, len) = (a * unit, b * unit, len * unit);
            let kind = if lite { LITE } else { FULL };
            let max_block = max_words * 4;
            let wide = Engine::new(kind).wide_for(src, dest, len);
            match plan(Transfer { src, dest, len }, kind, max_block) {
                Ok(p) => {
                    prop_assert_eq!(p.is_wide(), wide);
                    check(src, dest, len, kind, max_block)
                }
                Err(PlanError::BadBlockLimit { .. }) => {
                    prop_assert!(wide && max_block < 16, "only a wide plan needs 16-byte blocks");
                }
                Err(e) => {
                    prop_assert_eq!(e, PlanError::UpwardOverlap { src, dest, len });
                    prop_assert!(src < dest && dest < src + len);
                }
            }
        }

        #[test]
        fn lengths_not_multiple_of_4_never_plan(len in 0u64..100_000, src in 0u64..1000) {
            prop_assume!(len % 4 != 0);
            prop_assert_eq!(
                plan(Transfer { src: src * 4, dest: 0x100_0000, len }, LITE, u32::MAX),
                Err(PlanError::LengthNotMultipleOf4 { len })
            );
        }
    }

    #[test]
    fn a_fill_ignores_its_source_and_tiles_the_range() {
        for (kind, wide_writes) in [(LITE, true), (FULL, true), (FULL, false)] {
            let engine = Engine {
                kind,
                max_block: kind.max_block(),
                wide_writes,
            };
            let len = 3 << 20;
            let p = engine.plan_fill(0x100_0000, len).unwrap();
            assert!(p.is_fill() && !p.is_noop());
            let t = TiWord::new(p.ti());
            assert!(t.matches_all(TI::SRC_IGNORE::SET + TI::DEST_INC::SET + TI::WAIT_RESP::SET));
            assert!(!t.is_set(TI::SRC_INC) && !t.is_set(TI::SRC_WIDTH));
            assert_eq!(t.is_set(TI::DEST_WIDTH), kind != LITE && wide_writes);
            let mut next = 0x100_0000;
            for b in p.blocks() {
                assert_eq!(phys(b.dest_ad), next);
                assert!(b.txfr_len <= kind.max_block());
                next += u64::from(b.txfr_len);
            }
            assert_eq!(next, 0x100_0000 + len);
        }
        // A copy plan never carries SRC_IGNORE, and a fill keeps the copy's refusals.
        let copy = Engine::new(FULL).plan(Transfer {
            src: 0,
            dest: 4096,
            len: 64,
        });
        assert!(!TiWord::new(copy.unwrap().ti()).is_set(TI::SRC_IGNORE));
        assert_eq!(
            Engine::new(FULL).plan_fill(0x1000, 6),
            Err(PlanError::LengthNotMultipleOf4 { len: 6 })
        );
        assert_eq!(
            Engine::new(FULL)
                .plan_fill(0x1000, 0)
                .unwrap()
                .block_count(),
            0
        );
    }
}
