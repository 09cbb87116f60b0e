//! Test movers and event helpers shared by the pool's integration tests.
#![allow(dead_code)]

use pool::mover::{Location, Move, Mover, Ticket};
use std::collections::BTreeMap;
use trace::{BufferIndex, Event, EventKind, Madv};

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;

pub fn create(buffer: BufferIndex, size: u64) -> Event {
    Event {
        time_us: 0,
        buffer,
        kind: EventKind::Create {
            size,
            unmoveable: false,
        },
    }
}
pub fn create_unmoveable(buffer: BufferIndex, size: u64) -> Event {
    Event {
        time_us: 0,
        buffer,
        kind: EventKind::Create {
            size,
            unmoveable: true,
        },
    }
}
pub fn ev(buffer: BufferIndex, kind: EventKind) -> Event {
    Event {
        time_us: 0,
        buffer,
        kind,
    }
}
pub fn use_(b: BufferIndex) -> Event {
    ev(b, EventKind::Use)
}
pub fn pin(b: BufferIndex) -> Event {
    ev(b, EventKind::AddUsecnt)
}
pub fn unpin(b: BufferIndex) -> Event {
    ev(b, EventKind::RemoveUsecnt)
}
pub fn dontneed(b: BufferIndex) -> Event {
    ev(b, EventKind::Madv(Madv::DontNeed))
}
pub fn willneed(b: BufferIndex) -> Event {
    ev(b, EventKind::Madv(Madv::WillNeed))
}
pub fn destroy(b: BufferIndex) -> Event {
    ev(b, EventKind::Destroy)
}

/// A move in flight: (buffer, src byte range, dst byte range).
type InFlight = (BufferIndex, Option<(u64, u64)>, Option<(u64, u64)>);

/// What a mover was asked, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Submit(Ticket, Move),
    Poll(Ticket, bool),
    Wait(Ticket),
}

/// A mover that logs every call and checks the pool's side of the contract:
/// at submission the buffer has no move in flight and the destination range
/// overlaps no range a move in flight reads or writes.
///
/// `complete_on_poll`: each poll completes a move with this probability (in
/// 1/256ths, from a fixed xorshift stream); 256 means moves are instantaneous,
/// 0 means they complete only when waited for.
pub struct Recorder {
    pub log: Vec<Op>,
    pub complete_on_poll: u32,
    rng: u64,
    next: u64,
    /// Ticket -> (buffer, src byte range, dst byte range).
    in_flight: BTreeMap<u64, InFlight>,
    pub violations: Vec<String>,
}

fn range(loc: Location, size: u64) -> Option<(u64, u64)> {
    match loc {
        Location::Pool { offset } => Some((offset, offset + size)),
        Location::Overflow => None,
    }
}

fn overlap(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> bool {
    matches!((a, b), (Some((s, e)), Some((t, f))) if s < f && t < e)
}

impl Recorder {
    pub fn instant() -> Self {
        Self::new(256, 1)
    }
    pub fn new(complete_on_poll: u32, seed: u64) -> Self {
        Recorder {
            log: Vec::new(),
            complete_on_poll,
            rng: seed | 1,
            next: 0,
            in_flight: BTreeMap::new(),
            violations: Vec::new(),
        }
    }
    /// The moves submitted, in order.
    pub fn moves(&self) -> Vec<Move> {
        self.log
            .iter()
            .filter_map(|op| {
                if let Op::Submit(_, m) = op {
                    Some(*m)
                } else {
                    None
                }
            })
            .collect()
    }
    fn roll(&mut self) -> u32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng & 255) as u32
    }
}

impl Mover for Recorder {
    fn submit(&mut self, mv: &Move) -> Ticket {
        let t = Ticket(self.next);
        self.next += 1;
        let (src, dst) = match *mv {
            Move::Fill { size, to, .. } => (None, range(to, size)),
            Move::Copy { size, from, to, .. } => (range(from, size), range(to, size)),
            Move::Drop { .. } | Move::Free { .. } => (None, None),
        };
        for (&other, &(b, s, d)) in &self.in_flight {
            if b == mv.buffer() {
                self.violations.push(format!(
                    "{mv:?} submitted while move {other} of the same buffer is in flight"
                ));
            }
            if overlap(dst, s) || overlap(dst, d) {
                self.violations.push(format!(
                    "{mv:?} writes over move {other} (buffer {b}) still in flight"
                ));
            }
        }
        self.in_flight.insert(t.0, (mv.buffer(), src, dst));
        self.log.push(Op::Submit(t, *mv));
        t
    }
    fn poll(&mut self, t: Ticket) -> bool {
        let done = !self.in_flight.contains_key(&t.0)
            || self.complete_on_poll >= 256
            || self.roll() < self.complete_on_poll;
        if done {
            self.in_flight.remove(&t.0);
        }
        self.log.push(Op::Poll(t, done));
        done
    }
    fn wait(&mut self, t: Ticket) {
        self.in_flight.remove(&t.0);
        self.log.push(Op::Wait(t));
    }
}
