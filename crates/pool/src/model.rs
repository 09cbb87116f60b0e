//! The simulator's mover: instantaneous, or a latency model on a virtual clock.

use crate::mover::{Move, Mover, Ticket};
use crate::replay::{MeasuredMover, MoverSummary};
use alloc::collections::VecDeque;
use records::MoverKind;

/// Cost of one copy: `setup_ns + bytes / bytes_per_s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyModel {
    pub setup_ns: u64,
    pub bytes_per_s: u64,
}

impl LatencyModel {
    /// Duration of a copy of `bytes`.
    pub fn duration_ns(&self, bytes: u64) -> u64 {
        let transfer = (bytes as u128 * 1_000_000_000).div_ceil(self.bytes_per_s.max(1) as u128);
        self.setup_ns
            .saturating_add(transfer.min(u64::MAX as u128) as u64)
    }
}

/// A modelled mover. Without a latency model every move completes at once
/// and takes 0 ns. With one, copies run one after another on a single engine
/// against a virtual clock that follows trace time; a copy completes when the
/// clock passes its end, and `wait` advances the clock to the end (the
/// difference is stall). Fill, Drop and Free are always instantaneous.
#[derive(Clone, Debug, Default)]
pub struct ModelMover {
    model: Option<LatencyModel>,
    now_ns: u64,
    /// When the engine finishes the last queued copy.
    engine_free_ns: u64,
    next_ticket: u64,
    /// Copies not yet seen complete: (ticket, end), both increasing.
    pending: VecDeque<(u64, u64)>,
    summary: MoverSummary,
}

impl ModelMover {
    /// Instantaneous moves.
    pub fn instant() -> Self {
        Self::default()
    }

    /// Moves that take time.
    pub fn with_latency(model: LatencyModel) -> Self {
        ModelMover {
            model: Some(model),
            ..Self::default()
        }
    }

    pub fn model(&self) -> Option<LatencyModel> {
        self.model
    }

    /// The virtual clock, in ns.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Advances the virtual clock (never backwards).
    pub fn advance_to(&mut self, ns: u64) {
        self.now_ns = self.now_ns.max(ns);
        while self
            .pending
            .front()
            .is_some_and(|&(_, end)| end <= self.now_ns)
        {
            self.pending.pop_front();
        }
    }

    fn end_of(&self, ticket: Ticket) -> Option<u64> {
        let k = self.pending.partition_point(|&(t, _)| t < ticket.0);
        self.pending
            .get(k)
            .filter(|&&(t, _)| t == ticket.0)
            .map(|&(_, e)| e)
    }
}

impl Mover for ModelMover {
    fn submit(&mut self, mv: &Move) -> Ticket {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        if let Move::Copy { size, .. } = *mv {
            match self.model {
                None => self.summary.latency.record(size, 0),
                Some(model) => {
                    let duration = model.duration_ns(size);
                    let start = self.now_ns.max(self.engine_free_ns);
                    let end = start + duration;
                    self.engine_free_ns = end;
                    self.summary.latency.record(size, duration);
                    self.pending.push_back((ticket.0, end));
                }
            }
        }
        ticket
    }

    fn poll(&mut self, ticket: Ticket) -> bool {
        self.end_of(ticket).is_none_or(|end| end <= self.now_ns)
    }

    fn completes_at_submit(&self) -> bool {
        self.model.is_none()
    }

    fn wait(&mut self, ticket: Ticket) {
        if let Some(end) = self.end_of(ticket) {
            if end > self.now_ns {
                self.summary.stall_ns += end - self.now_ns;
                self.advance_to(end);
            }
        }
    }
}

impl MeasuredMover for ModelMover {
    fn kind(&self) -> MoverKind {
        MoverKind::Model
    }

    fn take_summary(&mut self) -> MoverSummary {
        core::mem::take(&mut self.summary)
    }

    fn at_event(&mut self, time_us: u64) {
        if self.model.is_some() {
            self.advance_to(time_us.saturating_mul(1000));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mover::Location;

    fn copy(size: u64) -> Move {
        Move::Copy {
            buffer: 0,
            generation: 0,
            size,
            from: Location::Overflow,
            to: Location::Pool { offset: 0 },
        }
    }

    #[test]
    fn instant_moves_complete_at_once() {
        let mut m = ModelMover::instant();
        let t = m.submit(&copy(4096));
        assert!(m.poll(t));
        let s = m.take_summary();
        assert_eq!(s.latency.moves(), 1);
        assert_eq!(s.stall_ns, 0);
    }

    #[test]
    fn modelled_copies_queue_on_one_engine() {
        let model = LatencyModel {
            setup_ns: 1000,
            bytes_per_s: 1_000_000_000,
        };
        let mut m = ModelMover::with_latency(model);
        m.at_event(1); // t = 1000 ns
        let a = m.submit(&copy(4000)); // 1000..6000
        let b = m.submit(&copy(1000)); // 6000..8000
        assert!(!m.poll(a) && !m.poll(b));
        m.at_event(6); // 6000 ns
        assert!(m.poll(a) && !m.poll(b));
        m.wait(b);
        assert_eq!(m.now_ns(), 8000);
        assert!(m.poll(b));
        let s = m.take_summary();
        assert_eq!(s.stall_ns, 2000);
        assert_eq!(s.latency.finish().latency.max, 5000);
        // A Fill is instantaneous even with a model.
        let f = m.submit(&Move::Fill {
            buffer: 1,
            generation: 0,
            size: 1 << 20,
            to: Location::Overflow,
        });
        assert!(m.poll(f));
    }
}
