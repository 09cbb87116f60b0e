//! BCM2837 DMA controller driver (BCM2835 ARM Peripherals, chapter 4;
//! addresses in [`memory_map`]).
//!
//! One [`DmaChannel`] owns one channel's registers and the control-block area.
//! It runs one [`Plan`] at a time: the plan (pure logic in `bcm::dma_plan`,
//! tested on the host) is written into 32-byte aligned control blocks in the
//! non-cacheable `.coherent` section, chained with bus addresses, and started;
//! completion is found by polling CS with a deadline on the generic timer's
//! counter (CNTPCT_EL0).
//! A plan longer than the control-block area runs as several chains, one
//! after the other, transparently to the caller.
//!
//! Facts QEMU does not check (QEMU 7.2 performs the whole chain synchronously
//! inside the CS write, in 4-byte steps, and never reports an error) are noted
//! where the code depends on them.
//!
//! Barriers: register accesses are ordered among themselves (one device,
//! Device-nGnRE); memory the engine reads or wrote is ordered against them
//! with [`barrier::dsb_sy`], whose documentation says why that suffices.

use crate::mmio::Mmio;
use crate::{barrier, memory_map, timer};
use bcm::addr::{BusAddr, PhysAddr};
use bcm::dma_plan::{block_in_chain, ControlBlock, Engine, Plan, PlanError, Transfer, CB_ALIGN};
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

/// Control blocks available to one chain: enough for a 32 MiB move on a lite
/// channel (513 blocks) and for a 32 MiB downward move by 4 KiB (8192 blocks).
/// Longer plans run as several chains. 8192 x 32 B = 256 KiB of the 2 MiB
/// `.coherent` section.
pub const CB_SLOTS: usize = 8192;

register_bitfields! [u32,
    /// Control and status (datasheet 4.2.1.2, offset 0x00).
    pub CS [
        /// Set to start the channel; cleared by the engine when the chain
        /// ends (CONBLK_AD reached 0) or when paused.
        ACTIVE OFFSET(0) NUMBITS(1) [],
        /// Set when the current control block completed (per block, not per
        /// chain). Write 1 to clear.
        END OFFSET(1) NUMBITS(1) [],
        /// Interrupt status (blocks with INTEN). Write 1 to clear.
        INT OFFSET(2) NUMBITS(1) [],
        DREQ OFFSET(3) NUMBITS(1) [],
        PAUSED OFFSET(4) NUMBITS(1) [],
        DREQ_STOPS_DMA OFFSET(5) NUMBITS(1) [],
        WAITING_FOR_OUTSTANDING_WRITES OFFSET(6) NUMBITS(1) [],
        /// An error is flagged in DEBUG (read only).
        ERROR OFFSET(8) NUMBITS(1) [],
        /// AXI priority of normal transactions.
        PRIORITY OFFSET(16) NUMBITS(4) [],
        /// AXI priority when a peripheral signals panic.
        PANIC_PRIORITY OFFSET(20) NUMBITS(4) [],
        /// Wait for outstanding writes before signalling END of each block.
        WAIT_FOR_OUTSTANDING_WRITES OFFSET(28) NUMBITS(1) [],
        DISDEBUG OFFSET(29) NUMBITS(1) [],
        /// Abort the current block and go on with the next.
        ABORT OFFSET(30) NUMBITS(1) [],
        /// Reset the channel (self-clearing, reads as 0).
        RESET OFFSET(31) NUMBITS(1) []
    ],
    /// Debug (datasheet 4.2.1.2, offset 0x20).
    pub DEBUG [
        /// AXI read with the last signal wrongly set or unset. Write 1 to clear.
        READ_LAST_NOT_SET_ERROR OFFSET(0) NUMBITS(1) [],
        /// Read FIFO error. Write 1 to clear.
        FIFO_ERROR OFFSET(1) NUMBITS(1) [],
        /// Slave read response error. Write 1 to clear.
        READ_ERROR OFFSET(2) NUMBITS(1) [],
        OUTSTANDING_WRITES OFFSET(4) NUMBITS(4) [],
        DMA_ID OFFSET(8) NUMBITS(8) [],
        DMA_STATE OFFSET(16) NUMBITS(9) [],
        VERSION OFFSET(25) NUMBITS(3) [],
        /// A lite channel. QEMU leaves this 0 on every channel.
        LITE OFFSET(28) NUMBITS(1) []
    ]
];

register_structs! {
    /// One channel's registers. TI to STRIDE show the block being executed.
    pub ChannelRegs {
        (0x00 => cs: ReadWrite<u32, CS::Register>),
        (0x04 => conblk_ad: ReadWrite<u32>),
        (0x08 => ti: ReadOnly<u32>),
        (0x0C => source_ad: ReadOnly<u32>),
        (0x10 => dest_ad: ReadOnly<u32>),
        (0x14 => txfr_len: ReadOnly<u32>),
        (0x18 => stride: ReadOnly<u32>),
        (0x1C => nextconbk: ReadWrite<u32>),
        (0x20 => debug: ReadWrite<u32, DEBUG::Register>),
        (0x24 => @END),
    },

    /// The controller's global registers (datasheet 4.2.1.3), at
    /// [`memory_map::DMA_GLOBAL`].
    GlobalRegs {
        /// One interrupt status bit per channel (unused: the driver polls).
        (0x00 => int_status: ReadOnly<u32>),
        (0x04 => _reserved),
        /// Enable bits EN0..EN14, one per channel; the rest is reserved.
        (0x10 => enable: ReadWrite<u32>),
        (0x14 => @END),
    }
}

/// Error bits of DEBUG (all write-1-to-clear).
const DEBUG_ERRORS: u32 = 0b111;

/// How long CS.RESET may take to clear after it is written. The datasheet
/// (4.2.1.2) says only that the bit "will self clear"; Linux's driver
/// (`bcm2835_dma_abort`) bounds its waits on the channel the same way, so a
/// channel that never comes out of reset is reported, not waited on forever.
const RESET_TIMEOUT_US: u64 = 1_000;

/// The control-block area. `.coherent` is mapped Normal non-cacheable, so the
/// engine reads what the CPU wrote once a `dsb` has drained the write buffer;
/// it is NOLOAD, hence `MaybeUninit`: every slot is written before use.
#[repr(C, align(32))]
struct CbArea(UnsafeCell<MaybeUninit<[ControlBlock; CB_SLOTS]>>);

// SAFETY: access is serialized by `CB_CLAIMED`: only the one `DmaChannel`
// that claimed the area touches it.
unsafe impl Sync for CbArea {}

#[link_section = ".coherent"]
static CB_AREA: CbArea = CbArea(UnsafeCell::new(MaybeUninit::uninit()));
static CB_CLAIMED: AtomicBool = AtomicBool::new(false);

/// Why a channel could not be opened or a transfer started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// The plan was refused; nothing reached the hardware.
    Plan(PlanError),
    /// Another `DmaChannel` holds the control-block area.
    Busy,
    /// A transfer is still running on this channel.
    InFlight,
    /// The control-block area is not addressable by the engine.
    BadCbArea { addr: u64 },
    /// CS.RESET did not clear within its bound after the channel was reset.
    ResetStuck { cs: u32 },
}

impl defmt::Format for DmaError {
    fn format(&self, f: defmt::Formatter) {
        match self {
            DmaError::Plan(e) => defmt::write!(f, "{}", defmt::Display2Format(e)),
            DmaError::Busy => defmt::write!(f, "the DMA control-block area is already in use"),
            DmaError::InFlight => {
                defmt::write!(f, "a DMA transfer is still running on this channel")
            }
            DmaError::BadCbArea { addr } => {
                defmt::write!(
                    f,
                    "DMA control blocks at {=u64:#x} are not bus addressable",
                    addr
                )
            }
            DmaError::ResetStuck { cs } => defmt::write!(
                f,
                "the DMA channel did not come out of reset within 1 ms (CS {=u32:#010x})",
                cs
            ),
        }
    }
}

/// How a started transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum FaultKind {
    /// CS.ERROR was set; DEBUG's error bits say which.
    Error,
    /// Not complete by the deadline.
    Timeout { waited_ns: u64 },
    /// The channel went inactive in the middle of the chain (paused by
    /// someone else, or the chain was damaged).
    Stopped,
}

/// A failed transfer. The channel has been reset; the destination holds the
/// blocks before `resume_at` and undefined bytes after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub struct DmaFault {
    pub channel: u8,
    pub kind: FaultKind,
    /// CS, DEBUG and CONBLK_AD when the fault was seen.
    pub cs: u32,
    pub debug: u32,
    pub conblk_ad: u32,
    /// Byte offset into the transfer of the first block that may not have
    /// completed (CONBLK_AD names the block being executed; blocks run in
    /// order and WAIT_RESP makes each one's writes land before the next
    /// starts). Redoing from here is correct even for an overlapping move,
    /// whose earlier sources later blocks may already have overwritten.
    /// `None` when CONBLK_AD pointed outside the chain.
    pub resume_at: Option<u64>,
}

/// What a completed transfer took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Control blocks executed.
    pub blocks: usize,
    /// Chains started (more than 1 when the plan exceeded [`CB_SLOTS`]).
    pub chains: u32,
}

/// A transfer being executed.
struct Job {
    plan: Plan,
    /// Index of the first block not yet handed to the engine.
    next: usize,
    chains: u32,
    /// Blocks in the running chain (its first is `next - chain_len`).
    chain_len: usize,
    /// Deadline of the running chain, in counter ticks.
    deadline: u64,
    chain_started: u64,
    /// The last block of every chain points back at the first (fault tests).
    self_linked: bool,
}

/// One DMA channel with exclusive use of the control-block area.
pub struct DmaChannel {
    number: u8,
    engine: Engine,
    regs: Mmio<ChannelRegs>,
    cbs: *mut ControlBlock,
    cbs_bus: BusAddr,
    job: Option<Job>,
    /// Chains written to CS.ACTIVE since the channel was opened.
    starts: u64,
    /// Test hook: the next started plan's chain loops on itself.
    self_link_next: bool,
}

impl DmaChannel {
    /// Opens channel `number` (0 to 15): claims the control-block area,
    /// resets the channel and enables it globally.
    ///
    /// Real hardware: use a channel from the firmware's mask (mailbox tag
    /// 0x00060001) and not 0, 2, 3 or 5; the GPU firmware may be using the
    /// others. QEMU accepts any channel.
    pub fn open(number: u8, engine: Engine) -> Result<Self, DmaError> {
        // Validates the number before touching any register.
        Engine::for_channel(number).map_err(DmaError::Plan)?;
        // Single core, no interrupt handlers: a load and a store suffice (and
        // avoid exclusive accesses, which the boot path does not rely on).
        if CB_CLAIMED.load(Ordering::Acquire) {
            return Err(DmaError::Busy);
        }
        CB_CLAIMED.store(true, Ordering::Release);
        let cbs = CB_AREA.0.get().cast::<ControlBlock>();
        let area_len = (CB_SLOTS * core::mem::size_of::<ControlBlock>()) as u64;
        let cbs_bus = match PhysAddr(cbs as u64).to_bus(area_len) {
            Ok(bus) => bus,
            Err(_) => {
                CB_CLAIMED.store(false, Ordering::Release);
                return Err(DmaError::BadCbArea { addr: cbs as u64 });
            }
        };
        debug_assert_eq!(cbs as usize % CB_ALIGN, 0);
        // SAFETY: the channel's register block (number checked above) is
        // identity mapped as Device memory by the MMU setup, `ChannelRegs`
        // matches its layout, and the claimed control-block area makes this
        // the only open channel.
        let regs = unsafe { Mmio::new(memory_map::dma_channel(number)) };
        let mut channel = DmaChannel {
            number,
            engine,
            regs,
            cbs,
            cbs_bus,
            job: None,
            starts: 0,
            self_link_next: false,
        };
        set_channel_enabled(number, true);
        channel.reset()?;
        Ok(channel)
    }

    /// The channel number.
    pub fn number(&self) -> u8 {
        self.number
    }

    /// How blocks are built on this channel.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Chains started on the hardware since the channel was opened. A refused
    /// plan never increments this.
    pub fn starts(&self) -> u64 {
        self.starts
    }

    /// The DEBUG register's LITE bit (informational: QEMU reports 0 on every
    /// channel, so lite-ness is decided by the channel number).
    pub fn reports_lite(&self) -> bool {
        self.regs.debug.is_set(DEBUG::LITE)
    }

    /// Plans a copy of `len` bytes from `src` to `dest` (ARM physical
    /// addresses) on this channel, refusing anything the hardware must not see.
    pub fn plan(&self, src: u64, dest: u64, len: u64) -> Result<Plan, DmaError> {
        self.engine
            .plan(Transfer { src, dest, len })
            .map_err(DmaError::Plan)
    }

    /// Starts `plan`. Returns at once; use [`poll`](Self::poll) or
    /// [`wait`](Self::wait). A plan with no blocks completes without touching
    /// the hardware.
    ///
    /// # Safety
    /// The engine reads the plan's source and writes its destination behind
    /// the compiler's back until the transfer completes or fails. Until then
    /// the caller must own both ranges: nothing else reads the destination or
    /// writes either range (and no Rust reference to them exists). Both must
    /// be mapped SDRAM; a range in cacheable memory must have been cleaned
    /// (source) or invalidated (destination) first, since the engine does not
    /// see the ARM caches (see `cache`). The plan checked that the ranges are
    /// SDRAM the engine can address and that no block reads what an earlier
    /// one wrote.
    pub unsafe fn start(&mut self, plan: Plan) -> Result<(), DmaError> {
        if self.job.is_some() {
            return Err(DmaError::InFlight);
        }
        self.job = Some(Job {
            plan,
            next: 0,
            chains: 0,
            chain_len: 0,
            deadline: 0,
            chain_started: 0,
            self_linked: core::mem::take(&mut self.self_link_next),
        });
        self.start_chain();
        Ok(())
    }

    /// Test hook: the next [`start`](Self::start) links the last control
    /// block of its chain back to the first, so the engine copies the same
    /// blocks again and again and the transfer never completes. It then
    /// fails with a timeout and is aborted like any stuck transfer, which is
    /// what the fault tests need, with no reliance on behaviour the
    /// datasheet does not promise (a channel disabled in ENABLE is documented
    /// for nothing more than its bit). The blocks themselves stay valid, and
    /// repeating them rewrites the same bytes.
    ///
    /// QEMU 7.2 runs a whole chain inside the CS write that starts it, so a
    /// looping chain would never return from that write there: under QEMU
    /// the caller must keep the engine from running it (the fault test
    /// clears the channel's ENABLE bit first, which QEMU honours).
    pub fn self_link_next_start(&mut self) {
        self.self_link_next = true;
    }

    /// Writes the next chain of the current job into the control-block area
    /// and starts it. Does nothing when the plan has no blocks left.
    fn start_chain(&mut self) {
        let Some(job) = self.job.as_mut() else { return };
        let total = job.plan.block_count();
        let first = job.next;
        let count = (total - first).min(CB_SLOTS);
        if count == 0 {
            return;
        }
        let mut bytes = 0u64;
        for i in 0..count {
            let block = job
                .plan
                .block(first + i)
                .expect("block index within the plan");
            bytes += u64::from(block.txfr_len);
            let next = if i + 1 < count {
                Some(self.cbs_bus.offset(((i + 1) * CB_ALIGN) as u32))
            } else {
                job.self_linked.then_some(self.cbs_bus)
            };
            // SAFETY: `i < CB_SLOTS`, the area is claimed by this channel, and
            // the engine is idle, so nothing else reads or writes the slot.
            unsafe {
                self.cbs
                    .add(i)
                    .write_volatile(ControlBlock::new(&block, next))
            };
        }
        job.next = first + count;
        job.chain_len = count;
        job.chains += 1;
        // Deadline: generous for silicon (a lite channel under contention
        // moves well over 16 MB/s), irrelevant under QEMU where the chain has
        // completed before the CS write returns.
        let budget_ns = 20_000_000 + bytes * 1_000 / 16;
        let now = timer::now_ticks();
        job.chain_started = now;
        job.deadline = now + timer::ns_to_ticks(budget_ns);

        let cs = &self.regs.cs;
        // Clear END and INT left by the previous chain in a separate write, so
        // the END seen later can only come from this chain.
        cs.write(CS::END::SET + CS::INT::SET);
        // The control blocks (and, for the caller, the source data in the
        // non-cacheable pool) must have left the CPU's write buffer before the
        // engine fetches them: the engine is not in the CPU's shareability
        // domain, so only a full-system barrier orders the two.
        barrier::dsb_sy();
        self.regs.conblk_ad.set(self.cbs_bus.0);
        // Priority 1 keeps the copy from starving the VideoCore's display and
        // GPU traffic; WAIT_FOR_OUTSTANDING_WRITES makes END mean "written".
        cs.write(
            CS::ACTIVE::SET
                + CS::PRIORITY.val(1)
                + CS::PANIC_PRIORITY.val(15)
                + CS::WAIT_FOR_OUTSTANDING_WRITES::SET,
        );
        self.starts += 1;
    }

    /// Checks the running transfer without waiting: `None` while it runs (or
    /// when nothing runs), `Some(Ok)` once it completed, `Some(Err)` when it
    /// failed or missed its deadline (the channel is then reset).
    pub fn poll(&mut self) -> Option<Result<Completion, DmaFault>> {
        let job = self.job.as_ref()?;
        let (deadline, chain_started) = (job.deadline, job.chain_started);
        if job.plan.block_count() == 0 {
            let done = Completion {
                blocks: 0,
                chains: 0,
            };
            self.job = None;
            return Some(Ok(done));
        }
        let cs = self.regs.cs.extract();
        if cs.is_set(CS::ERROR) {
            // Silicon only: QEMU 7.2 never sets ERROR. Newer QEMU sets it for a
            // length that is not a multiple of 4 or for DEST_WIDTH.
            return Some(Err(self.fail(FaultKind::Error, cs.get())));
        }
        if cs.is_set(CS::ACTIVE) {
            let now = timer::now_ticks();
            if now > deadline {
                let waited_ns = timer::ticks_to_ns(now - chain_started);
                return Some(Err(self.fail(FaultKind::Timeout { waited_ns }, cs.get())));
            }
            return None;
        }
        // Inactive: the chain ended (CONBLK_AD loaded the last block's
        // NEXTCONBK, 0) with END set by its last block; anything else means the
        // channel stopped part way.
        if !cs.is_set(CS::END) || self.regs.conblk_ad.get() != 0 {
            return Some(Err(self.fail(FaultKind::Stopped, cs.get())));
        }
        // The engine's writes are complete (WAIT_RESP, WAIT_FOR_OUTSTANDING_
        // WRITES); keep the CPU's later reads of the destination after the CS
        // read that observed it.
        barrier::dsb_sy();
        let job = self.job.as_ref().expect("job checked above");
        if job.next < job.plan.block_count() {
            self.start_chain();
            return None;
        }
        let done = Completion {
            blocks: job.plan.block_count(),
            chains: job.chains,
        };
        self.job = None;
        Some(Ok(done))
    }

    /// Waits for the running transfer (returns `Ok` at once when idle).
    pub fn wait(&mut self) -> Result<Completion, DmaFault> {
        if self.job.is_none() {
            return Ok(Completion {
                blocks: 0,
                chains: 0,
            });
        }
        loop {
            if let Some(result) = self.poll() {
                return result;
            }
            core::hint::spin_loop();
        }
    }

    /// Records a fault of the running job, stops the channel and drops the job.
    fn fail(&mut self, kind: FaultKind, cs: u32) -> DmaFault {
        let debug = self.regs.debug.get();
        let conblk_ad = self.regs.conblk_ad.get();
        let job = self.job.take().expect("a job to fail");
        let chain_first = job.next - job.chain_len;
        let resume_at = block_in_chain(conblk_ad, self.cbs_bus, chain_first, job.chain_len)
            .map(|block| job.plan.resume_offset(block));
        self.abort();
        DmaFault {
            channel: self.number,
            kind,
            cs,
            debug,
            conblk_ad,
            resume_at,
        }
    }

    /// Stops a running transfer: pause (clear ACTIVE), let outstanding AXI
    /// writes drain, then reset. Resetting with writes in flight can wedge the
    /// AXI bus on silicon; QEMU has nothing in flight ever. (CS.ABORT is not
    /// used: it only ends the current block and loads the next, which a
    /// looping or damaged chain would just run again.)
    fn abort(&mut self) {
        self.regs.cs.set(0);
        let until = timer::now_ticks() + timer::ns_to_ticks(1_000_000);
        while self.regs.cs.is_set(CS::WAITING_FOR_OUTSTANDING_WRITES) && timer::now_ticks() < until
        {
            core::hint::spin_loop();
        }
        if let Err(e) = self.reset() {
            defmt::error!("DMA channel {=u8}: {}", self.number, e);
        }
    }

    /// Resets the channel, waits (bounded) until CS.RESET reads 0 again, and
    /// clears its flags and error bits.
    fn reset(&mut self) -> Result<(), DmaError> {
        self.regs.cs.write(CS::RESET::SET);
        let until = timer::deadline_after_us(RESET_TIMEOUT_US);
        while self.regs.cs.is_set(CS::RESET) {
            if timer::now_ticks() > until {
                return Err(DmaError::ResetStuck {
                    cs: self.regs.cs.get(),
                });
            }
            core::hint::spin_loop();
        }
        self.regs.cs.write(CS::END::SET + CS::INT::SET);
        // DEBUG's error bits are write-1-to-clear on silicon, but QEMU 7.2
        // stores whatever is written: write back only the bits that are set.
        let errors = self.regs.debug.get() & DEBUG_ERRORS;
        if errors != 0 {
            self.regs.debug.set(errors);
        }
        self.regs.conblk_ad.set(0);
        barrier::dsb_sy();
        Ok(())
    }
}

impl Drop for DmaChannel {
    fn drop(&mut self) {
        if self.job.is_some() {
            self.abort();
        }
        CB_CLAIMED.store(false, Ordering::Release);
    }
}

/// Sets or clears channel `number`'s bit in the global ENABLE register (0 to
/// 14; channel 15 has no bit). QEMU does not run a disabled channel, which
/// the fault tests use there to keep a self-linked chain from looping inside
/// the CS write (see [`DmaChannel::self_link_next_start`]).
///
/// The datasheet defines enable bits for channels 0-14 only; the rest of the
/// register is reserved, so it is read-modified-written. (QEMU resets ENABLE
/// to 0xffff, so this only matters on silicon, where the GPU firmware may
/// have disabled unused channels.)
pub fn set_channel_enabled(number: u8, enabled: bool) {
    if number >= 15 {
        return;
    }
    // SAFETY: the controller's global block, mapped Device memory; only
    // ENABLE is touched, and only this channel's bit of it changes.
    let global: Mmio<GlobalRegs> = unsafe { Mmio::new(memory_map::DMA_GLOBAL) };
    let bit = 1 << number;
    let value = global.enable.get();
    global
        .enable
        .set(if enabled { value | bit } else { value & !bit });
}
