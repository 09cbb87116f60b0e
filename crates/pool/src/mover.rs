//! Moves and the mover that performs them.
//!
//! The pool core decides *what* moves; a [`Mover`] (the firmware's DMA or CPU
//! mover, the simulator's model) performs it, possibly later. The pool core
//! guarantees, before it submits a move, that no move in flight conflicts with
//! it: the buffer has no move in flight, and the destination range overlaps no
//! range a move in flight reads from or writes to. A mover may therefore run
//! moves asynchronously and needs no knowledge of policies.

use trace::BufferIndex;

/// Where a buffer's content lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// In the pool, at this byte offset from its start.
    Pool { offset: u64 },
    /// In the backing store outside the pool.
    Overflow,
}

/// The content of a buffer is derived from its index and a generation; a
/// purged buffer comes back with the next generation.
pub type Generation = u32;

/// One change a mover performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Move {
    /// Fresh content appears at `to`: a created buffer's first placement, or a
    /// purged buffer coming back. Nothing is copied; the mover writes the
    /// content of (`buffer`, `generation`) there.
    Fill {
        buffer: BufferIndex,
        generation: Generation,
        size: u64,
        to: Location,
    },
    /// Content is copied from `from` to `to` (page-in: overflow to pool;
    /// page-out: pool to overflow; compaction: pool to pool, downward
    /// possibly overlapping, upward (defrag's small buffers) never).
    Copy {
        buffer: BufferIndex,
        generation: Generation,
        size: u64,
        from: Location,
        to: Location,
    },
    /// A purge: the content at `from` is dropped, nothing is copied.
    Drop {
        buffer: BufferIndex,
        size: u64,
        from: Location,
    },
    /// The buffer is destroyed: whatever holds it at `at` is released.
    Free {
        buffer: BufferIndex,
        size: u64,
        at: Location,
    },
}

impl Move {
    pub fn buffer(&self) -> BufferIndex {
        match *self {
            Move::Fill { buffer, .. }
            | Move::Copy { buffer, .. }
            | Move::Drop { buffer, .. }
            | Move::Free { buffer, .. } => buffer,
        }
    }
}

/// Names a submitted move until it completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// Performs moves. Implemented by the firmware (DMA engine, CPU) and by the
/// simulator (a model).
pub trait Mover {
    /// Starts `mv` and returns at once; the move may complete later.
    fn submit(&mut self, mv: &Move) -> Ticket;
    /// Returns `true` once the move is complete (and verified), without waiting.
    fn poll(&mut self, ticket: Ticket) -> bool;
    /// Waits until the move is complete. Time spent here is stall time.
    fn wait(&mut self, ticket: Ticket);
    /// Whether every move is complete (and verified) when `submit` returns:
    /// then the pool keeps no record of moves in flight, as there is never
    /// anything to wait for. Only for movers that guarantee it: the default
    /// is the general case.
    fn completes_at_submit(&self) -> bool {
        false
    }
}

/// A mover whose moves complete at once and copy nothing: for runs that
/// want the pool's decisions alone (sweep points, placement timing).
#[derive(Debug, Default)]
pub struct NullMover(u64);

impl Mover for NullMover {
    fn submit(&mut self, _: &Move) -> Ticket {
        self.0 += 1;
        Ticket(self.0)
    }
    fn poll(&mut self, _: Ticket) -> bool {
        true
    }
    fn wait(&mut self, _: Ticket) {}
    fn completes_at_submit(&self) -> bool {
        true
    }
}
