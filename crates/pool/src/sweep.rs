//! One point of a pool-size sweep: a whole trace replayed through one pool
//! with an instantaneous mover and no records, down to the figures a sweep
//! table shows. The grid itself (which sizes, which policies, in parallel) is
//! the caller's: the bench `sweep_table` and the grid test run it with rayon.

use crate::fluid::Fluid;
use crate::model::{LatencyModel, ModelMover};
use crate::mover::{Mover, NullMover};
use crate::pool::{ConfigError, Counters, EventError, EventMetrics, MetricsSink, Pool, PoolConfig};
use crate::replay::MeasuredMover;
use records::Policy;
use trace::Event;

/// What one grid point is run with: a policy, or the `fluid` capacity
/// reference (section 4.12 of docs/design.md), which is not a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Policy(Policy),
    Fluid,
}

impl Subject {
    pub fn name(self) -> &'static str {
        match self {
            Subject::Policy(p) => p.as_str(),
            Subject::Fluid => "fluid",
        }
    }
}

/// The figures of one run (the field names of a run in `report.json`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PointResult {
    pub events: u64,
    pub counters: Counters,
    /// Time the replay waited for moves in flight (0 with instantaneous moves).
    pub stall_ns: u64,
    pub peak_overflow_bytes: u64,
    pub mean_fragmentation: f64,
}

/// A run that could not go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PointError {
    Config(ConfigError),
    Event { index: u64, error: EventError },
}

impl core::fmt::Display for PointError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PointError::Config(e) => write!(f, "{e}"),
            PointError::Event { index, error } => write!(f, "event {index}: {error}"),
        }
    }
}

#[derive(Default)]
struct Tally {
    frag_sum: f64,
    peak_overflow: u64,
}

impl MetricsSink for Tally {
    #[inline]
    fn after_event(&mut self, m: &EventMetrics) {
        self.frag_sum += m.fragmentation();
        self.peak_overflow = self.peak_overflow.max(m.overflow_bytes);
    }
}

/// Replays `events` with `subject` in a pool of `pool_bytes` (alignment
/// `alignment`), with instantaneous moves.
pub fn run_point(
    events: &[Event],
    subject: Subject,
    pool_bytes: u64,
    alignment: u64,
) -> Result<PointResult, PointError> {
    run_point_with(events, subject, pool_bytes, alignment, None)
}

/// As [`run_point`]; with a latency model, moves take time on the
/// simulator's modelled engine (section 4.9), so compactions can be delayed
/// by moves in flight (`Counters::compactions_delayed`) and the replay
/// stalls (`stall_ns`). `fluid` copies nothing and never stalls.
pub fn run_point_with(
    events: &[Event],
    subject: Subject,
    pool_bytes: u64,
    alignment: u64,
    latency: Option<LatencyModel>,
) -> Result<PointResult, PointError> {
    let policy = match subject {
        Subject::Policy(p) => p,
        Subject::Fluid => {
            let mut f = Fluid::new(pool_bytes, alignment).map_err(PointError::Config)?;
            let mut tally = Tally::default();
            for (index, e) in events.iter().enumerate() {
                f.apply(e, &mut tally).map_err(|error| PointError::Event {
                    index: index as u64,
                    error,
                })?;
            }
            return Ok(PointResult {
                events: events.len() as u64,
                counters: *f.counters(),
                stall_ns: 0,
                peak_overflow_bytes: tally.peak_overflow,
                mean_fragmentation: 0.0,
            });
        }
    };
    let pool = Pool::new(PoolConfig {
        pool_bytes,
        alignment,
        policy,
    })
    .map_err(PointError::Config)?;
    match latency {
        None => replay_counted(pool, events, &mut NullMover::default(), |_, _| {}),
        Some(model) => {
            let mut mover = ModelMover::with_latency(model);
            let mut r = replay_counted(pool, events, &mut mover, |m, e| m.at_event(e.time_us))?;
            r.stall_ns = mover.take_summary().stall_ns;
            Ok(r)
        }
    }
}

fn replay_counted<M: Mover>(
    mut pool: Pool,
    events: &[Event],
    mover: &mut M,
    before: impl Fn(&mut M, &Event),
) -> Result<PointResult, PointError> {
    let mut tally = Tally::default();
    for (index, e) in events.iter().enumerate() {
        before(mover, e);
        pool.apply(e, mover, &mut tally)
            .map_err(|error| PointError::Event {
                index: index as u64,
                error,
            })?;
    }
    pool.drain(mover);
    let n = events.len() as u64;
    Ok(PointResult {
        events: n,
        counters: *pool.counters(),
        stall_ns: 0,
        peak_overflow_bytes: tally.peak_overflow,
        mean_fragmentation: if n == 0 {
            0.0
        } else {
            tally.frag_sum / n as f64
        },
    })
}
