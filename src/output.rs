//! Keeping the UART out of what a run times.
//!
//! On silicon the PL011 blocks the writer on a full FIFO, about 11 µs per
//! byte at 921600 baud, and a DMA move's completion is seen only at the next
//! poll. Records written while a move is in flight or while the run's clock
//! runs would therefore add UART time to move latencies, stall and
//! `replay_ns`. So a run's records are not written as they are made:
//!
//! - they are serialized into a RAM buffer of [`BUFFER_BYTES`] (64 KiB, a
//!   bound: a record that does not fit first makes the buffer be written
//!   out; one larger than the whole buffer is written on its own);
//! - the buffer is written out at the run's start (before its clock
//!   starts), at every [`FLUSH_EVERY_PROGRESS`]th progress record (so the
//!   host's progress bars still move, in 10 % steps) and after the run;
//! - a write-out during the run first completes the move in flight
//!   ([`OutputDrain`], not counted as stall: the pool did not ask for it),
//!   then stops the run's clock ([`PausableClock`]) while the UART works.
//!   The time it took is the result's `output_ns`.
//!
//! What still reaches the UART directly during a run: log lines of rare
//! faults (a DMA error, a refused plan), which are worth their cost.

use crate::logger;
use crate::timer;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use pool::mover::{Move, Mover, Ticket};
use pool::replay::{Clock, MeasuredMover, MoverSummary};
use records::{MoverKind, Record, Timer};

/// The bound on the records held in RAM between write-outs.
pub const BUFFER_BYTES: usize = 64 * 1024;

/// Write-outs happen at every this many progress records (the replay sends
/// about 100 per run).
pub const FLUSH_EVERY_PROGRESS: u32 = 10;

/// Each record in the buffer is its postcard bytes behind a 4-byte length.
const LEN_BYTES: usize = 4;

/// What a mover must do before the UART may be written during a run: finish
/// every move in flight, without counting the wait as stall.
pub trait OutputDrain {
    fn complete_for_output(&mut self);
}

/// The records buffer and what writing it out cost. Shared (by reference)
/// between the run's record sink and its clock.
pub struct Output {
    buf: RefCell<Vec<u8>>,
    used: Cell<usize>,
    /// Stopwatch nanoseconds spent writing during timed intervals, in total;
    /// the run's clock subtracts it.
    paused_ns: Cell<u64>,
    /// Since [`start_run`](Self::start_run): write-out time, bytes, count.
    run_ns: Cell<u64>,
    run_bytes: Cell<u64>,
    run_flushes: Cell<u32>,
}

impl Output {
    /// An empty buffer of [`BUFFER_BYTES`] (from the heap).
    pub fn new() -> Self {
        Output {
            buf: RefCell::new(vec![0; BUFFER_BYTES]),
            used: Cell::new(0),
            paused_ns: Cell::new(0),
            run_ns: Cell::new(0),
            run_bytes: Cell::new(0),
            run_flushes: Cell::new(0),
        }
    }

    /// Starts counting a new run's write-outs.
    pub fn start_run(&self) {
        self.run_ns.set(0);
        self.run_bytes.set(0);
        self.run_flushes.set(0);
    }

    /// (time, bytes, write-outs) since [`start_run`](Self::start_run).
    pub fn run_totals(&self) -> (u64, u64, u32) {
        (
            self.run_ns.get(),
            self.run_bytes.get(),
            self.run_flushes.get(),
        )
    }

    /// Adds `record` to the buffer. When it does not fit, `make_room` runs
    /// (it writes the buffer out) and the record goes into the emptied
    /// buffer; a record larger than the whole buffer is written at once.
    pub fn push(&self, record: &Record, make_room: &mut dyn FnMut()) {
        if !self.try_push(record) {
            make_room();
            if !self.try_push(record) {
                logger::send_record(record);
            }
        }
    }

    fn try_push(&self, record: &Record) -> bool {
        let mut buf = self.buf.borrow_mut();
        let at = self.used.get();
        let Some(room) = buf.get_mut(at + LEN_BYTES..) else {
            return false;
        };
        let Ok(written) = postcard::to_slice(record, room) else {
            return false;
        };
        let n = written.len();
        buf[at..at + LEN_BYTES].copy_from_slice(&(n as u32).to_le_bytes());
        self.used.set(at + LEN_BYTES + n);
        true
    }

    /// Writes every buffered record to the UART and empties the buffer.
    /// With `timed`, the time it took counts as the run's output and stops
    /// its clock; the caller has completed every move in flight.
    pub fn flush(&self, timed: bool) {
        let used = self.used.get();
        if used == 0 {
            return;
        }
        let start = timer::stopwatch_ticks();
        let buf = self.buf.borrow();
        let mut at = 0;
        let mut bytes = 0u64;
        while at < used {
            let mut len = [0u8; LEN_BYTES];
            len.copy_from_slice(&buf[at..at + LEN_BYTES]);
            let n = u32::from_le_bytes(len) as usize;
            let body = &buf[at + LEN_BYTES..at + LEN_BYTES + n];
            logger::send_record_bytes(body);
            bytes += n as u64;
            at += LEN_BYTES + n;
        }
        drop(buf);
        self.used.set(0);
        if timed {
            let took = timer::stopwatch_elapsed_ns(start);
            self.paused_ns.set(self.paused_ns.get() + took);
            self.run_ns.set(self.run_ns.get() + took);
            self.run_bytes.set(self.run_bytes.get() + bytes);
            self.run_flushes.set(self.run_flushes.get() + 1);
        }
    }
}

/// The run's clock: the stopwatch (`timer`), minus the time spent writing
/// records out during the run.
pub struct PausableClock<'a> {
    pub output: &'a Output,
}

impl Clock for PausableClock<'_> {
    fn now_ns(&mut self) -> u64 {
        timer::stopwatch_ns(timer::stopwatch_ticks()).saturating_sub(self.output.paused_ns.get())
    }

    fn timer(&self) -> Timer {
        timer::stopwatch_timer()
    }
}

/// A mover the replay drives while the record sink may also reach it (to
/// complete the move in flight before a write-out). The replay never calls
/// the sink from inside a mover call, so the two borrows never overlap.
pub struct SharedMover<'a, M>(pub &'a RefCell<M>);

impl<M: Mover> Mover for SharedMover<'_, M> {
    fn submit(&mut self, mv: &Move) -> Ticket {
        self.0.borrow_mut().submit(mv)
    }

    fn poll(&mut self, ticket: Ticket) -> bool {
        self.0.borrow_mut().poll(ticket)
    }

    fn wait(&mut self, ticket: Ticket) {
        self.0.borrow_mut().wait(ticket)
    }

    fn completes_at_submit(&self) -> bool {
        self.0.borrow().completes_at_submit()
    }
}

impl<M: MeasuredMover> MeasuredMover for SharedMover<'_, M> {
    fn kind(&self) -> MoverKind {
        self.0.borrow().kind()
    }

    fn take_summary(&mut self) -> MoverSummary {
        self.0.borrow_mut().take_summary()
    }

    fn at_event(&mut self, time_us: u64) {
        self.0.borrow_mut().at_event(time_us)
    }
}
