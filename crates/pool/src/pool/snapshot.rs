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
            .by_offset
            .iter()
            .map(|(&o, &i)| {
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
        let mut overflow = Vec::new();
        for (i, b) in self.bufs.iter().enumerate() {
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
