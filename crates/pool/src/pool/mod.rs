//! The pool: buffers, residency, the MRU order, the four policies and the
//! moves they cause. This module holds the pool's state, its configuration,
//! errors and counters, and [`Pool::apply`], which turns one event into
//! changes of placement. The rest lives beside it:
//!
//! - `placement`: a buffer into and out of the pool (page-in, page-out,
//!   purge, move down) and the LRU walk every eviction makes;
//! - `policy`: how each of the four policies finds room, one file each;
//! - `inflight`: moves submitted and not yet seen complete;
//! - `mru`: the most-recently-used order of the resident buffers;
//! - `residents`: the resident buffers by address;
//! - `snapshot` and `invariants`: pictures and checks of the whole state.
//!
//! Cost per event (n = live buffers, U = pool units, f = moves in flight):
//! `use`, `add_usecnt`, `madv` on a resident buffer: O(1) (+ O(log n) for
//! madv's purgeable set; + O(log U) when defrag slides the used buffer);
//! `remove_usecnt`: O(1), O(log U) when `compact` or `defrag` slides the
//! buffer; `create`, `destroy`, a page-in that fits: O(log U) (+ O(log n)
//! for drm-mm's best-fit view) plus O(f) conflict checks. Only a page-in that does not fit
//! scans: purge visits the purgeable set, eviction walks the LRU order (each
//! buffer at most once per page-in), drm-mm's scan keeps O(log k) per
//! candidate, defrag walks the resident buffers to find its segments.

mod inflight;
mod invariants;
mod mru;
mod placement;
mod policy;
mod residents;
mod snapshot;

use crate::freeindex::FreeIndex;
use crate::mover::{Generation, Location, Move, Mover, Ticket};
use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use inflight::InFlight;
use mru::{Links, MruList};
use records::{BytesByKind, Policy};
use residents::Residents;
use trace::{BufferIndex, Event, EventKind, Madv};

const NONE: u32 = u32::MAX;

/// The number of alignment units of a pool of `pool_bytes`, or why that
/// is no pool: the one rule for the pool and for the `fluid` reference.
pub(crate) fn checked_units(pool_bytes: u64, alignment: u64) -> Result<u64, ConfigError> {
    if !alignment.is_power_of_two() {
        return Err(ConfigError::AlignmentNotPowerOfTwo(alignment));
    }
    if pool_bytes == 0 {
        return Err(ConfigError::Empty);
    }
    if !pool_bytes.is_multiple_of(alignment) {
        return Err(ConfigError::SizeNotMultiple {
            pool_bytes,
            alignment,
        });
    }
    let units = pool_bytes / alignment;
    if units > MAX_UNITS {
        return Err(ConfigError::TooManyUnits { units });
    }
    Ok(units)
}

/// Most alignment units a pool may have (the free-space index holds about
/// 12 bytes per unit, up to 20 just above a power of two, and 8 more for
/// drm-mm's best-fit view: 16 Mi units is 192 to 448 MiB of index).
pub const MAX_UNITS: u64 = 1 << 24;

/// Size, alignment and policy of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    pub pool_bytes: u64,
    /// Placement granularity: a power of two; buffer sizes are rounded up to it.
    pub alignment: u64,
    pub policy: Policy,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            pool_bytes: 128 << 20,
            alignment: 4096,
            policy: Policy::FirstFit,
        }
    }
}

/// A pool that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    AlignmentNotPowerOfTwo(u64),
    SizeNotMultiple { pool_bytes: u64, alignment: u64 },
    Empty,
    TooManyUnits { units: u64 },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::AlignmentNotPowerOfTwo(a) => write!(f, "alignment {a} is not a power of two"),
            ConfigError::SizeNotMultiple { pool_bytes, alignment } => {
                write!(f, "pool size {pool_bytes} is not a multiple of the alignment {alignment}")
            }
            ConfigError::Empty => write!(f, "pool size is zero"),
            ConfigError::TooManyUnits { units } => write!(
                f,
                "pool of {units} alignment units exceeds the index limit of {MAX_UNITS}; use a larger alignment"
            ),
        }
    }
}

/// An event that does not fit the pool's state (the trace parser rejects
/// these, so seeing one is a bug upstream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventError {
    /// `create` of an index that was already created.
    Recreated { buffer: BufferIndex },
    /// An event about a buffer that is not live.
    NotLive { buffer: BufferIndex },
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Recreated { buffer } => {
                write!(f, "buffer #{buffer} is created a second time")
            }
            EventError::NotLive { buffer } => {
                write!(f, "event for buffer #{buffer}, which is not live")
            }
        }
    }
}

/// A broken invariant, described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantError(pub String);

impl fmt::Display for InvariantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pool invariant broken: {}", self.0)
    }
}

/// Pool occupancy after one event. Everything is O(1) to produce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventMetrics {
    /// Index of the event (0-based).
    pub event: u64,
    pub time_us: u64,
    /// Bytes of the pool held by resident buffers (sizes rounded up to the alignment).
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub largest_hole: u64,
    pub holes: u32,
    /// Bytes of live buffers outside the pool (purged ones included).
    pub overflow_bytes: u64,
}

impl EventMetrics {
    /// 1 - largest_hole / free (0 when nothing is free).
    pub fn fragmentation(&self) -> f64 {
        if self.free_bytes == 0 {
            0.0
        } else {
            1.0 - self.largest_hole as f64 / self.free_bytes as f64
        }
    }
}

/// Receives the metrics after every event.
pub trait MetricsSink {
    fn after_event(&mut self, metrics: &EventMetrics);
}

/// Discards metrics.
impl MetricsSink for () {
    fn after_event(&mut self, _: &EventMetrics) {}
}

/// What the pool has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Copies overflow -> pool (a buffer that was created or purged comes
    /// back with a Fill and is counted in `fills`, not here).
    pub page_ins: u64,
    pub page_outs: u64,
    pub purges: u64,
    /// Pool -> pool copies.
    pub compaction_moves: u64,
    /// Fill moves: creates and purged buffers coming back.
    pub fills: u64,
    pub rule1_failures: u64,
    /// Moves that copied content: page-ins + page-outs + compaction moves.
    pub moves: u64,
    pub bytes: BytesByKind,
    /// Times the pool had to wait for a move in flight.
    pub waits: u64,
    /// Compaction moves (compact's and defrag's slides) that had to wait
    /// first for a move in flight: of the buffer itself, or one reading or
    /// writing the units it lands on (with an asynchronous mover, the
    /// driver's "a slot still being copied cannot be reused"). The pool never
    /// skips a compaction for this (placements do not depend on move timing,
    /// section 4.8); it delays it, and the time is the mover's stall.
    pub compactions_delayed: u64,
}

impl Counters {
    /// Bytes copied by all moves.
    pub fn bytes_moved(&self) -> u64 {
        self.bytes.page_in + self.bytes.page_out + self.bytes.compaction
    }
}

#[derive(Clone, Copy, Debug)]
struct Buf {
    size: u64,
    units: u32,
    /// Unit offset when resident, NONE otherwise.
    offset: u32,
    created: bool,
    live: bool,
    pinned: bool,
    unmoveable: bool,
    dontneed: bool,
    has_content: bool,
    generation: Generation,
    inflight: Option<Ticket>,
    /// Place in the MRU list while resident.
    mru: Links,
}

impl mru::Node for Buf {
    fn links(&self) -> &Links {
        &self.mru
    }
    fn links_mut(&mut self) -> &mut Links {
        &mut self.mru
    }
}

const EMPTY: Buf = Buf {
    size: 0,
    units: 0,
    offset: NONE,
    created: false,
    live: false,
    pinned: false,
    unmoveable: false,
    dontneed: false,
    has_content: false,
    generation: 0,
    inflight: None,
    mru: Links::UNLINKED,
};

/// A contiguous pool with one policy. Moves go through a [`Mover`] given to
/// each call, so the same pool runs with the firmware's and the simulator's
/// movers.
#[derive(Clone, Debug)]
pub struct Pool {
    config: PoolConfig,
    shift: u32,
    free: FreeIndex,
    bufs: Vec<Buf>,
    /// Resident buffers by unit offset.
    residents: Residents,
    /// Resident buffers marked dontneed (pinned and unmoveable ones included).
    purgeable: BTreeSet<u32>,
    /// Exactly the resident buffers, most recently used first.
    mru: MruList,
    live: usize,
    overflow_bytes: u64,
    inflight: Vec<InFlight>,
    counters: Counters,
    events: u64,
    last_time_us: u64,
}

impl Pool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Result<Pool, ConfigError> {
        let PoolConfig {
            pool_bytes,
            alignment,
            ..
        } = config;
        let units = checked_units(pool_bytes, alignment)?;
        Ok(Pool {
            config,
            shift: alignment.trailing_zeros(),
            // Only drm-mm places by best fit; the others skip that view's cost.
            free: if config.policy == Policy::DrmMm {
                FreeIndex::with_best_fit(units as u32)
            } else {
                FreeIndex::new(units as u32)
            },
            bufs: Vec::new(),
            residents: Residents::new(units as u32),
            purgeable: BTreeSet::new(),
            mru: MruList::new(),
            live: 0,
            overflow_bytes: 0,
            inflight: Vec::new(),
            counters: Counters::default(),
            events: 0,
            last_time_us: 0,
        })
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Events applied so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Moves submitted and not yet seen complete.
    pub fn moves_in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Where a live buffer is (None: not live).
    pub fn location(&self, buffer: BufferIndex) -> Option<Location> {
        let b = self.bufs.get(buffer as usize).filter(|b| b.live)?;
        Some(if b.offset == NONE {
            Location::Overflow
        } else {
            Location::Pool {
                offset: (b.offset as u64) << self.shift,
            }
        })
    }

    /// Whether a live buffer has content (false after a purge until it comes back).
    pub fn has_content(&self, buffer: BufferIndex) -> bool {
        self.bufs
            .get(buffer as usize)
            .is_some_and(|b| b.live && b.has_content)
    }

    /// Whether a buffer is pinned.
    pub fn is_pinned(&self, buffer: BufferIndex) -> bool {
        self.bufs
            .get(buffer as usize)
            .is_some_and(|b| b.live && b.pinned)
    }

    /// Content generation of a buffer.
    pub fn generation(&self, buffer: BufferIndex) -> Option<Generation> {
        self.bufs
            .get(buffer as usize)
            .filter(|b| b.live)
            .map(|b| b.generation)
    }

    /// Resident buffers from most to least recently used.
    pub fn mru_order(&self) -> Vec<BufferIndex> {
        self.mru.iter(&self.bufs).collect()
    }

    /// Occupancy now, O(1).
    pub fn metrics(&self) -> EventMetrics {
        let align = self.config.alignment;
        let free = (self.free.free_units() as u64) << self.shift;
        EventMetrics {
            event: self.events.saturating_sub(1),
            time_us: self.last_time_us,
            used_bytes: self.config.pool_bytes - free,
            free_bytes: free,
            largest_hole: self.free.largest() as u64 * align,
            holes: self.free.hole_count() as u32,
            overflow_bytes: self.overflow_bytes,
        }
    }

    fn units_of(&self, size: u64) -> u32 {
        let u = size.div_ceil(self.config.alignment).max(1);
        // A buffer larger than the pool can never be placed; clamping keeps
        // the unit count in range and it still never fits.
        u.min(self.free.units() as u64 + 1) as u32
    }

    pub(super) fn pool_loc(&self, offset: u32) -> Location {
        Location::Pool {
            offset: (offset as u64) << self.shift,
        }
    }

    /// Applies one event, then reports the metrics to `sink`.
    pub fn apply<M: Mover + ?Sized, S: MetricsSink + ?Sized>(
        &mut self,
        event: &Event,
        mover: &mut M,
        sink: &mut S,
    ) -> Result<(), EventError> {
        if !self.inflight.is_empty() {
            self.poll(mover);
        }
        let i = event.buffer;
        if let EventKind::Create { size, unmoveable } = event.kind {
            if self.bufs.len() <= i as usize {
                self.bufs.resize(i as usize + 1, EMPTY);
            }
            if self.bufs[i as usize].created {
                return Err(EventError::Recreated { buffer: i });
            }
            let units = self.units_of(size);
            self.bufs[i as usize] = Buf {
                size,
                units,
                created: true,
                live: true,
                unmoveable,
                has_content: true,
                ..EMPTY
            };
            self.live += 1;
            self.overflow_bytes += size;
            self.page_in(mover, i, true);
        } else {
            if !self.bufs.get(i as usize).is_some_and(|b| b.live) {
                return Err(EventError::NotLive { buffer: i });
            }
            match event.kind {
                EventKind::Create { .. } => unreachable!(),
                EventKind::Use => {
                    self.wait_buffer(mover, i);
                    if self.bufs[i as usize].offset == NONE {
                        self.page_in(mover, i, false);
                    } else {
                        self.mru.touch(&mut self.bufs, i);
                        self.after_resident_use(mover, i);
                    }
                }
                EventKind::AddUsecnt => {
                    // The GPU is about to read it: no move may still be writing it.
                    self.wait_buffer(mover, i);
                    self.bufs[i as usize].pinned = true;
                }
                EventKind::RemoveUsecnt => {
                    self.bufs[i as usize].pinned = false;
                    self.after_unpin(mover, i);
                }
                EventKind::Madv(m) => {
                    let dontneed = m == Madv::DontNeed;
                    let b = &mut self.bufs[i as usize];
                    b.dontneed = dontneed;
                    if b.offset != NONE {
                        if dontneed {
                            self.purgeable.insert(i);
                        } else {
                            self.purgeable.remove(&i);
                        }
                    }
                }
                EventKind::Destroy => self.destroy(mover, i),
            }
        }
        self.events += 1;
        self.last_time_us = event.time_us;
        sink.after_event(&self.metrics());
        Ok(())
    }

    fn destroy<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32) {
        self.wait_buffer(mover, i);
        let b = self.bufs[i as usize];
        let at = if b.offset != NONE {
            let at = self.unplace(i);
            self.pool_loc(at)
        } else {
            self.overflow_bytes -= b.size;
            Location::Overflow
        };
        let buf = &mut self.bufs[i as usize];
        buf.live = false;
        buf.pinned = false;
        buf.dontneed = false;
        self.live -= 1;
        self.submit(
            mover,
            Move::Free {
                buffer: i,
                size: b.size,
                at,
            },
            None,
            None,
        );
    }
}
