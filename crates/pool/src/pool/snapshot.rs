//! Pictures of the pool: where every live buffer is and whether it may move.
//! The replay takes one at a few marked events for the report's animation;
//! each walks every buffer created so far.

use super::{Buf, Pool, NONE};
use alloc::vec::Vec;
use records::{BufferState, Snapshot, SnapshotBuffer};

impl Pool {
    /// The pool and the overflow now; the overflow is laid out end to end in
    /// buffer order.
    pub fn snapshot(&self) -> Snapshot {
        let state = |b: &Buf| {
            if b.unmoveable {
                BufferState::Unmoveable
            } else if b.pinned {
                BufferState::Pinned
            } else {
                BufferState::Movable
            }
        };
        let resident = self
            .residents()
            .map(|(o, i)| {
                let b = &self.bufs[i as usize];
                SnapshotBuffer {
                    buffer: i,
                    offset: (o as u64) << self.shift,
                    size: b.size,
                    state: state(b),
                }
            })
            .collect();
        let mut at = 0;
        // `bufs` holds every buffer the trace ever created (75 000 in the
        // glmark2 trace), the live ones outside the pool are few or none:
        // the walk stops once it has found them all.
        let outside = self.live - self.residents.len();
        let mut overflow = Vec::with_capacity(outside);
        for (i, b) in self.bufs.iter().enumerate() {
            if overflow.len() == outside {
                break;
            }
            if b.live && b.offset == NONE {
                overflow.push(SnapshotBuffer {
                    buffer: i as u32,
                    offset: at,
                    size: b.size,
                    state: state(b),
                });
                at += b.size;
            }
        }
        Snapshot {
            event: self.events.saturating_sub(1),
            time_us: self.last_time_us,
            resident,
            overflow,
        }
    }
}
