//! `fluid`: the capacity reference of a sweep (docs/design.md, 4.12). The same
//! events against a pool that never fragments: the free space is always one
//! hole, so a page-in fits whenever `need` is at most the free units. When it
//! does not fit it follows the shared rules: purge every resident dontneed
//! buffer that is neither pinned nor unmoveable, then page out least recently
//! used evictable buffers until it fits; if none is left, a Rule 1 failure.
//!
//! It is **not a policy** (no real pool can keep its free space whole without
//! copying, and nothing here is copied) and **not a lower bound** on any
//! policy's failures: a policy that keeps fewer buffers resident has fewer of
//! them pinned later, which can leave it more room than `fluid` at some
//! moment. What it shows is which failures are about space (fluid fails too)
//! and which about its arrangement (fluid does not).
//!
//! Cost per event: O(log n) (the LRU order is a map from use stamps); a
//! page-in that does not fit also visits the purgeable set and the victims.

use crate::pool::{ConfigError, Counters, EventError, EventMetrics, MetricsSink};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use trace::{Event, EventKind, Madv};

#[derive(Clone, Copy, Debug, Default)]
struct FluidBuf {
    size: u64,
    units: u64,
    live: bool,
    created: bool,
    resident: bool,
    pinned: bool,
    unmoveable: bool,
    dontneed: bool,
    has_content: bool,
    /// Key in the LRU order while resident.
    stamp: u64,
}

/// A never-fragmenting pool replaying events (see the module notes).
#[derive(Clone, Debug)]
pub struct Fluid {
    units: u64,
    alignment: u64,
    free_units: u64,
    bufs: Vec<FluidBuf>,
    /// Resident buffers by last use, oldest first.
    lru: BTreeMap<u64, u32>,
    next_stamp: u64,
    /// Resident dontneed buffers.
    purgeable: BTreeSet<u32>,
    overflow_bytes: u64,
    counters: Counters,
    events: u64,
    last_time_us: u64,
}

impl Fluid {
    /// An empty fluid pool; the same configuration rules as [`crate::Pool`].
    pub fn new(pool_bytes: u64, alignment: u64) -> Result<Fluid, ConfigError> {
        let units = crate::pool::checked_units(pool_bytes, alignment)?;
        Ok(Fluid {
            units,
            alignment,
            free_units: units,
            bufs: Vec::new(),
            lru: BTreeMap::new(),
            next_stamp: 0,
            purgeable: BTreeSet::new(),
            overflow_bytes: 0,
            counters: Counters::default(),
            events: 0,
            last_time_us: 0,
        })
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Occupancy now; the largest hole is all the free space.
    pub fn metrics(&self) -> EventMetrics {
        let free = self.free_units * self.alignment;
        EventMetrics {
            event: self.events.saturating_sub(1),
            time_us: self.last_time_us,
            used_bytes: self.units * self.alignment - free,
            free_bytes: free,
            largest_hole: free,
            holes: u32::from(free > 0),
            overflow_bytes: self.overflow_bytes,
        }
    }

    /// Whether a live buffer is resident (None: not live).
    pub fn is_resident(&self, buffer: u32) -> Option<bool> {
        self.bufs
            .get(buffer as usize)
            .filter(|b| b.live)
            .map(|b| b.resident)
    }

    /// Applies one event, then reports the metrics to `sink`.
    pub fn apply<S: MetricsSink + ?Sized>(
        &mut self,
        event: &Event,
        sink: &mut S,
    ) -> Result<(), EventError> {
        let i = event.buffer;
        if let EventKind::Create { size, unmoveable } = event.kind {
            if self.bufs.len() <= i as usize {
                self.bufs.resize(i as usize + 1, FluidBuf::default());
            }
            if self.bufs[i as usize].created {
                return Err(EventError::Recreated { buffer: i });
            }
            self.bufs[i as usize] = FluidBuf {
                size,
                units: size.div_ceil(self.alignment).max(1),
                live: true,
                created: true,
                unmoveable,
                has_content: true,
                ..FluidBuf::default()
            };
            self.overflow_bytes += size;
            self.page_in(i, true);
        } else {
            if !self.bufs.get(i as usize).is_some_and(|b| b.live) {
                return Err(EventError::NotLive { buffer: i });
            }
            match event.kind {
                EventKind::Create { .. } => unreachable!(),
                EventKind::Use => {
                    if self.bufs[i as usize].resident {
                        self.touch(i);
                    } else {
                        self.page_in(i, false);
                    }
                }
                EventKind::AddUsecnt => self.bufs[i as usize].pinned = true,
                EventKind::RemoveUsecnt => self.bufs[i as usize].pinned = false,
                EventKind::Madv(m) => {
                    let b = &mut self.bufs[i as usize];
                    b.dontneed = m == Madv::DontNeed;
                    if b.resident {
                        if b.dontneed {
                            self.purgeable.insert(i);
                        } else {
                            self.purgeable.remove(&i);
                        }
                    }
                }
                EventKind::Destroy => {
                    if self.bufs[i as usize].resident {
                        self.take_out(i);
                    } else {
                        self.overflow_bytes -= self.bufs[i as usize].size;
                    }
                    let b = &mut self.bufs[i as usize];
                    b.live = false;
                    b.pinned = false;
                    b.dontneed = false;
                }
            }
        }
        self.events += 1;
        self.last_time_us = event.time_us;
        sink.after_event(&self.metrics());
        Ok(())
    }

    fn touch(&mut self, i: u32) {
        let b = &mut self.bufs[i as usize];
        self.lru.remove(&b.stamp);
        b.stamp = self.next_stamp;
        self.next_stamp += 1;
        self.lru.insert(b.stamp, i);
    }

    fn evictable(&self, i: u32) -> bool {
        let b = &self.bufs[i as usize];
        b.resident && !b.pinned && !b.unmoveable
    }

    /// Takes a resident buffer out (no counting).
    fn take_out(&mut self, i: u32) {
        let b = &mut self.bufs[i as usize];
        b.resident = false;
        self.free_units += b.units;
        self.lru.remove(&b.stamp);
        if b.dontneed {
            self.purgeable.remove(&i);
        }
    }

    fn page_in(&mut self, i: u32, create: bool) {
        let need = self.bufs[i as usize].units;
        if need > self.units || !self.make_room(need) {
            self.counters.rule1_failures += 1;
            if create {
                self.counters.fills += 1;
            }
            return;
        }
        let b = &mut self.bufs[i as usize];
        b.resident = true;
        self.free_units -= b.units;
        self.overflow_bytes -= b.size;
        b.stamp = self.next_stamp;
        self.next_stamp += 1;
        self.lru.insert(b.stamp, i);
        if b.dontneed {
            self.purgeable.insert(i);
        }
        if create || !b.has_content {
            b.has_content = true;
            self.counters.fills += 1;
        } else {
            let size = b.size;
            self.counters.page_ins += 1;
            self.counters.moves += 1;
            self.counters.bytes.page_in += size;
        }
    }

    /// Purges, then pages out from the LRU end, until `need` units are free.
    fn make_room(&mut self, need: u64) -> bool {
        if self.free_units >= need {
            return true;
        }
        let victims: Vec<u32> = self
            .purgeable
            .iter()
            .copied()
            .filter(|&i| self.evictable(i))
            .collect();
        for i in victims {
            self.take_out(i);
            let b = &mut self.bufs[i as usize];
            b.has_content = false;
            self.overflow_bytes += b.size;
            self.counters.purges += 1;
            self.counters.bytes.purged += b.size;
        }
        if self.free_units >= need {
            return true;
        }
        let mut after = None;
        loop {
            let next = match after {
                None => self.lru.iter().next(),
                Some(s) => self
                    .lru
                    .range((core::ops::Bound::Excluded(s), core::ops::Bound::Unbounded))
                    .next(),
            };
            let Some((&stamp, &i)) = next else {
                return false;
            };
            after = Some(stamp);
            if !self.evictable(i) {
                continue;
            }
            self.take_out(i);
            let size = self.bufs[i as usize].size;
            self.overflow_bytes += size;
            self.counters.page_outs += 1;
            self.counters.moves += 1;
            self.counters.bytes.page_out += size;
            if self.free_units >= need {
                return true;
            }
        }
    }
}
