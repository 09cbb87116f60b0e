//! Moves in flight. A [`Mover`] may finish a move later than it is submitted
//! (a DMA copy runs beside the replay), so the pool keeps every move it has not
//! yet seen complete, with the unit ranges it reads and writes, and waits for
//! one before touching its buffer or writing over those ranges. A buffer has at
//! most one move in flight.
//!
//! Each check is O(f) in the f moves in flight; submission polls once more
//! than [`POLL_AT`] are in flight, which keeps f small.

use super::Pool;
use crate::mover::{Move, Mover, Ticket};

/// A move that may not have completed; ranges are in units, [start, end).
#[derive(Clone, Copy, Debug)]
pub(super) struct InFlight {
    pub(super) ticket: Ticket,
    pub(super) buffer: u32,
    pub(super) src: Option<(u32, u32)>,
    pub(super) dst: Option<(u32, u32)>,
}

/// More moves than this in flight are polled at submission, so conflict
/// checks stay short even when defrag submits many moves in one event.
const POLL_AT: usize = 32;

fn overlaps(r: Option<(u32, u32)>, a: u32, b: u32) -> bool {
    matches!(r, Some((s, e)) if s < b && a < e)
}

impl Pool {
    /// Waits for every move in flight.
    pub fn drain<M: Mover + ?Sized>(&mut self, mover: &mut M) {
        for f in core::mem::take(&mut self.inflight) {
            mover.wait(f.ticket);
            self.counters.waits += 1;
            self.clear_ticket(f.buffer, f.ticket);
        }
    }

    fn clear_ticket(&mut self, buffer: u32, ticket: Ticket) {
        let b = &mut self.bufs[buffer as usize];
        if b.inflight == Some(ticket) {
            b.inflight = None;
        }
    }

    pub(super) fn poll<M: Mover + ?Sized>(&mut self, mover: &mut M) {
        let mut k = 0;
        while k < self.inflight.len() {
            let f = self.inflight[k];
            if mover.poll(f.ticket) {
                self.inflight.swap_remove(k);
                self.clear_ticket(f.buffer, f.ticket);
            } else {
                k += 1;
            }
        }
    }

    pub(super) fn submit<M: Mover + ?Sized>(
        &mut self,
        mover: &mut M,
        mv: Move,
        src: Option<(u32, u32)>,
        dst: Option<(u32, u32)>,
    ) {
        let ticket = mover.submit(&mv);
        if mover.completes_at_submit() {
            return;
        }
        let buffer = mv.buffer();
        self.inflight.push(InFlight {
            ticket,
            buffer,
            src,
            dst,
        });
        self.bufs[buffer as usize].inflight = Some(ticket);
        if self.inflight.len() > POLL_AT {
            self.poll(mover);
        }
    }

    /// Before touching a buffer: its move (at most one) must be complete.
    pub(super) fn wait_buffer<M: Mover + ?Sized>(&mut self, mover: &mut M, i: u32) {
        if let Some(t) = self.bufs[i as usize].inflight.take() {
            mover.wait(t);
            self.counters.waits += 1;
            if let Some(k) = self.inflight.iter().position(|f| f.ticket == t) {
                self.inflight.swap_remove(k);
            }
        }
    }

    /// Before writing [a, b): no move may still read or write there.
    pub(super) fn wait_range<M: Mover + ?Sized>(&mut self, mover: &mut M, a: u32, b: u32) {
        let mut k = 0;
        while k < self.inflight.len() {
            let f = self.inflight[k];
            if overlaps(f.src, a, b) || overlaps(f.dst, a, b) {
                mover.wait(f.ticket);
                self.counters.waits += 1;
                self.inflight.swap_remove(k);
                self.clear_ticket(f.buffer, f.ticket);
            } else {
                k += 1;
            }
        }
    }
}
