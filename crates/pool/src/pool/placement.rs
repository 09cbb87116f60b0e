//! Placement: how a buffer enters and leaves the pool. `place` and `unplace`
//! keep the free index, the address index, the purgeable set and the MRU list
//! in step; every change of placement is one [`Move`] submitted to the mover.
//! A page-in asks the policy (the `policy` module) for room; a buffer leaves
//! its place by a page-out, a purge, or (compaction) a move down the pool.
//!
//! A page-in that fits costs O(log n + log U) plus the O(f) checks against
//! moves in flight; purging visits the purgeable set, and evictions walk the
//! LRU order from the tail, each buffer at most once per page-in.

use super::{Pool, NONE};
use crate::mover::{Location, Move, Mover};
use alloc::vec::Vec;

impl Pool {
    pub(super) fn evictable(&self, i: u32) -> bool {
        let b = &self.bufs[i as usize];
        b.offset != NONE && !b.pinned && !b.unmoveable
    }

    /// The LRU walk every eviction makes: the first evictable buffer at
    /// `cursor` or more recently used than it (start at `self.mru.tail()`), and
    /// where the walk goes on, read before the caller evicts that buffer.
    pub(super) fn next_evictable(&self, mut cursor: Option<u32>) -> Option<(u32, Option<u32>)> {
        while let Some(c) = cursor {
            cursor = self.mru.newer(&self.bufs, c);
            if self.evictable(c) {
                return Some((c, cursor));
            }
        }
        None
    }

    /// Takes a resident buffer out of the pool's structures (no move).
    pub(super) fn unplace(&mut self, i: u32) -> u32 {
        let b = self.bufs[i as usize];
        self.free.release(b.offset, b.units);
        self.residents.remove(b.offset);
        if b.dontneed {
            self.purgeable.remove(&i);
        }
        self.mru.unlink(&mut self.bufs, i);
        self.bufs[i as usize].offset = NONE;
        b.offset
    }

    /// Makes a non-resident buffer resident at `at` and moves its content there.
    fn place<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32, at: u32, create: bool) {
        let b = self.bufs[i as usize];
        self.wait_range(mover, at, at + b.units);
        self.free.allocate(at, b.units);
        self.residents.insert(at, i);
        if b.dontneed {
            self.purgeable.insert(i);
        }
        self.bufs[i as usize].offset = at;
        self.overflow_bytes -= b.size;
        self.mru.push(&mut self.bufs, i);
        let to = self.pool_loc(at);
        let dst = Some((at, at + b.units));
        let mv = if create || !b.has_content {
            let generation = if create {
                b.generation
            } else {
                b.generation + 1
            };
            let buf = &mut self.bufs[i as usize];
            buf.generation = generation;
            buf.has_content = true;
            self.counters.fills += 1;
            Move::Fill {
                buffer: i,
                generation,
                size: b.size,
                to,
            }
        } else {
            self.counters.page_ins += 1;
            self.counters.moves += 1;
            self.counters.bytes.page_in += b.size;
            Move::Copy {
                buffer: i,
                generation: b.generation,
                size: b.size,
                from: Location::Overflow,
                to,
            }
        };
        self.submit(mover, mv, None, dst);
    }

    /// Brings a non-resident buffer into the pool where its policy finds room
    /// (a create, or a use of a paged-out or purged buffer). Without room it
    /// stays in the overflow: a rule 1 failure.
    pub(super) fn page_in<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32, create: bool) {
        let need = self.bufs[i as usize].units;
        let spot = if need > self.free.units() {
            None
        } else {
            self.room(mover, need)
        };
        match spot {
            Some(at) => self.place(mover, i, at, create),
            None => {
                self.counters.rule1_failures += 1;
                if create {
                    let b = self.bufs[i as usize];
                    self.counters.fills += 1;
                    let mv = Move::Fill {
                        buffer: i,
                        generation: b.generation,
                        size: b.size,
                        to: Location::Overflow,
                    };
                    self.submit(mover, mv, None, None);
                }
            }
        }
    }

    /// Copies a resident buffer out to the overflow.
    pub(super) fn page_out<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32) {
        self.wait_buffer(mover, i);
        let b = self.bufs[i as usize];
        let at = self.unplace(i);
        self.overflow_bytes += b.size;
        self.counters.page_outs += 1;
        self.counters.moves += 1;
        self.counters.bytes.page_out += b.size;
        let mv = Move::Copy {
            buffer: i,
            generation: b.generation,
            size: b.size,
            from: self.pool_loc(at),
            to: Location::Overflow,
        };
        // The old range is being read until the copy completes.
        self.submit(mover, mv, Some((at, at + b.units)), None);
    }

    /// Purges every resident dontneed buffer that is neither pinned nor
    /// unmoveable. Returns how many were purged.
    pub(super) fn purge_all<M: Mover + ?Sized>(&mut self, mover: &mut M) -> usize {
        if self.purgeable.is_empty() {
            return 0;
        }
        let victims: Vec<u32> = self
            .purgeable
            .iter()
            .copied()
            .filter(|&i| self.evictable(i))
            .collect();
        for &i in &victims {
            self.purge(mover, i);
        }
        victims.len()
    }

    /// Drops one resident, evictable, dontneed buffer without a copy.
    pub(super) fn purge<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32) {
        self.wait_buffer(mover, i);
        let b = self.bufs[i as usize];
        let at = self.unplace(i);
        self.overflow_bytes += b.size;
        self.bufs[i as usize].has_content = false;
        self.counters.purges += 1;
        self.counters.bytes.purged += b.size;
        self.submit(
            mover,
            Move::Drop {
                buffer: i,
                size: b.size,
                from: self.pool_loc(at),
            },
            None,
            None,
        );
    }

    /// Moves a resident buffer down to `to` (pool to pool, possibly overlapping).
    pub(super) fn move_down<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32, to: u32) {
        debug_assert!(to < self.bufs[i as usize].offset);
        self.relocate(mover, i, to);
    }

    /// Moves a resident buffer up to `to`, which must lie wholly above it:
    /// the movers copy overlapping ranges only downward.
    pub(super) fn move_up<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32, to: u32) {
        let b = self.bufs[i as usize];
        debug_assert!(to >= b.offset + b.units);
        self.relocate(mover, i, to);
    }

    /// A compaction move of a resident buffer to `to` (pool to pool).
    fn relocate<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32, to: u32) {
        // Moves the mover has finished are not in the way: only a wait for
        // one still running delays this compaction.
        if !self.inflight.is_empty() {
            self.poll(mover);
        }
        let waits = self.counters.waits;
        self.wait_buffer(mover, i);
        let b = self.bufs[i as usize];
        self.free.release(b.offset, b.units);
        self.wait_range(mover, to, to + b.units);
        if self.counters.waits > waits {
            self.counters.compactions_delayed += 1;
        }
        self.free.allocate(to, b.units);
        self.residents.remove(b.offset);
        self.residents.insert(to, i);
        self.bufs[i as usize].offset = to;
        self.counters.compaction_moves += 1;
        self.counters.moves += 1;
        self.counters.bytes.compaction += b.size;
        let mv = Move::Copy {
            buffer: i,
            generation: b.generation,
            size: b.size,
            from: self.pool_loc(b.offset),
            to: self.pool_loc(to),
        };
        self.submit(
            mover,
            mv,
            Some((b.offset, b.offset + b.units)),
            Some((to, to + b.units)),
        );
    }
}
