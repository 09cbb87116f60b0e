//! The replay loop shared by the simulator and the firmware: events in,
//! records out.

use crate::mover::Mover;
use crate::pool::{ConfigError, EventError, EventMetrics, MetricsSink, Pool, PoolConfig};
use crate::stats::LatencyRecorder;
use alloc::vec::Vec;
use core::fmt;
use records::{MoverKind, Policy, Record, RunResult, Sample, Timer};

/// Where records go: the UART on the firmware, a collector in the simulator.
/// A sink takes each record whole: one that keeps it (the simulator's)
/// needs no copy of a snapshot's buffer list.
pub trait RecordSink {
    fn record(&mut self, record: Record);
}

/// The run's clock.
pub trait Clock {
    fn now_ns(&mut self) -> u64;
    fn timer(&self) -> Timer;
}

/// What a mover measured over a run.
#[derive(Clone, Debug, Default)]
pub struct MoverSummary {
    pub latency: LatencyRecorder,
    /// Time spent in `wait`.
    pub stall_ns: u64,
    pub dma_fallbacks: u64,
    pub verified_pages: u64,
    pub corrupted_pages: u64,
    /// (buffer, page, expected, found) of the first mismatches.
    pub corruptions: Vec<(u32, u64, u64, u64)>,
}

/// A mover that measures what it does.
pub trait MeasuredMover: Mover {
    fn kind(&self) -> MoverKind;
    /// The measurements so far; the mover starts afresh.
    fn take_summary(&mut self) -> MoverSummary;
    /// Called before each event with its trace time, so a modelled mover can
    /// advance its clock. Real movers ignore it.
    fn at_event(&mut self, _time_us: u64) {}
}

/// One run's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayConfig {
    pub run: u16,
    pub policy: Policy,
    pub pool_bytes: u64,
    pub alignment: u64,
    /// Events the trace holds (for spacing samples and progress).
    pub total_events: u64,
    /// Target number of `Sample` records (the last event is always sampled).
    pub samples: u32,
    pub snapshots: u32,
    pub progress_updates: u32,
}

impl ReplayConfig {
    /// Defaults: 128 MiB, 4 KiB, 1000 samples, 200 snapshots, 100 progress updates.
    pub fn new(run: u16, policy: Policy, total_events: u64) -> Self {
        ReplayConfig {
            run,
            policy,
            pool_bytes: 128 << 20,
            alignment: 4096,
            total_events,
            samples: 1000,
            snapshots: 200,
            progress_updates: 100,
        }
    }
}

/// A replay that could not go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayError {
    Config(ConfigError),
    /// Event `index` (0-based) does not fit the pool's state.
    Event {
        index: u64,
        error: EventError,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Config(e) => write!(f, "{e}"),
            ReplayError::Event { index, error } => write!(f, "event {index}: {error}"),
        }
    }
}

/// Evenly spaced event indices: the k-th mark of `count` over `total` events.
struct Marks {
    total: u64,
    count: u64,
    k: u64,
    next: u64,
}

impl Marks {
    fn new(total: u64, count: u32) -> Self {
        let mut m = Marks {
            total: total.max(1),
            count: count as u64,
            k: 0,
            next: u64::MAX,
        };
        m.advance();
        m
    }

    fn advance(&mut self) {
        self.next = if self.k < self.count {
            // Marks at ceil-spaced positions ending on the last event.
            let idx = (self.k + 1) * self.total / self.count;
            idx.saturating_sub(1)
        } else {
            u64::MAX
        };
        self.k += 1;
    }

    /// Whether `index` is a mark (and moves past it).
    #[inline]
    fn hit(&mut self, index: u64) -> bool {
        if index < self.next {
            return false;
        }
        while self.next <= index {
            self.advance();
        }
        true
    }
}

/// Accumulates per-event figures; the hot path is a few adds and compares.
struct Tally {
    frag_sum: f64,
    /// (largest hole, free bytes) of the last fragmentation computed, and
    /// its value: most events (use, usecnt) change neither, and the sum is
    /// the same, term for term, without a division each time.
    frag_of: (u64, u64),
    frag_last: f64,
    peak_used: u64,
    peak_overflow: u64,
    last: EventMetrics,
}

impl MetricsSink for Tally {
    #[inline]
    fn after_event(&mut self, m: &EventMetrics) {
        if m.free_bytes != 0 {
            if self.frag_of != (m.largest_hole, m.free_bytes) {
                self.frag_of = (m.largest_hole, m.free_bytes);
                self.frag_last = 1.0 - m.largest_hole as f64 / m.free_bytes as f64;
            }
            self.frag_sum += self.frag_last;
        }
        self.peak_used = self.peak_used.max(m.used_bytes);
        self.peak_overflow = self.peak_overflow.max(m.overflow_bytes);
        self.last = *m;
    }
}

fn sample_of(m: &EventMetrics) -> Sample {
    Sample {
        event: m.event,
        time_us: m.time_us,
        used_bytes: m.used_bytes,
        overflow_bytes: m.overflow_bytes,
        largest_hole: m.largest_hole,
        holes: m.holes,
        fragmentation: m.fragmentation() as f32,
    }
}

/// Move samples per `Moves` record (keeps each record small on the wire).
const MOVES_PER_RECORD: usize = 64;

/// Replays `events` through a pool with `config.policy`, streaming records to
/// `sink`, and returns the run's result (also sent as `RunEnd`).
pub fn replay<M: MeasuredMover, S: RecordSink + ?Sized, C: Clock + ?Sized>(
    config: &ReplayConfig,
    events: impl Iterator<Item = trace::Event>,
    mover: &mut M,
    sink: &mut S,
    clock: &mut C,
) -> Result<RunResult, ReplayError> {
    let run = config.run;
    let mut pool = Pool::new(PoolConfig {
        pool_bytes: config.pool_bytes,
        alignment: config.alignment,
        policy: config.policy,
    })
    .map_err(ReplayError::Config)?;
    // Whatever the mover measured before this run is not this run's.
    let _ = mover.take_summary();
    sink.record(Record::RunStart {
        run,
        policy: config.policy,
        mover: mover.kind(),
        pool_bytes: config.pool_bytes,
        events: config.total_events,
    });
    let mut tally = Tally {
        frag_sum: 0.0,
        frag_of: (0, 0),
        frag_last: 0.0,
        peak_used: 0,
        peak_overflow: 0,
        last: EventMetrics::default(),
    };
    let mut samples = Marks::new(config.total_events, config.samples);
    let mut snapshots = Marks::new(config.total_events, config.snapshots);
    let mut progress = Marks::new(config.total_events, config.progress_updates);
    let mut last_sampled = None;
    let start = clock.now_ns();
    let mut index = 0u64;
    for event in events {
        mover.at_event(event.time_us);
        pool.apply(&event, mover, &mut tally)
            .map_err(|error| ReplayError::Event { index, error })?;
        if samples.hit(index) {
            sink.record(Record::Sample {
                run,
                sample: sample_of(&tally.last),
            });
            last_sampled = Some(index);
        }
        if snapshots.hit(index) {
            sink.record(Record::Snapshot {
                run,
                snapshot: pool.snapshot(),
            });
        }
        if progress.hit(index) {
            sink.record(Record::Progress {
                run,
                events_done: index + 1,
            });
        }
        index += 1;
    }
    pool.drain(mover);
    let replay_ns = clock.now_ns().saturating_sub(start);
    if index > 0 && last_sampled != Some(index - 1) && config.samples > 0 {
        sink.record(Record::Sample {
            run,
            sample: sample_of(&tally.last),
        });
    }
    let summary = mover.take_summary();
    let latency = summary.latency.finish();
    for chunk in latency.samples.chunks(MOVES_PER_RECORD) {
        sink.record(Record::Moves {
            run,
            moves: chunk.to_vec(),
        });
    }
    for &(buffer, page, expected, found) in &summary.corruptions {
        sink.record(Record::Corruption {
            run,
            buffer,
            page,
            expected,
            found,
        });
    }
    let c = pool.counters();
    let result = RunResult {
        policy: config.policy,
        mover: mover.kind(),
        pool_bytes: config.pool_bytes,
        events: index,
        rule1_failures: c.rule1_failures,
        page_ins: c.page_ins,
        page_outs: c.page_outs,
        purges: c.purges,
        compaction_moves: c.compaction_moves,
        moves: c.moves,
        bytes_moved: c.bytes_moved(),
        bytes_by_kind: c.bytes,
        peak_used_bytes: tally.peak_used,
        peak_overflow_bytes: tally.peak_overflow,
        mean_fragmentation: if index == 0 {
            0.0
        } else {
            tally.frag_sum / index as f64
        },
        replay_ns,
        dma_fallbacks: summary.dma_fallbacks,
        stall_ns: summary.stall_ns,
        compactions_delayed: c.compactions_delayed,
        move_latency_ns: latency.latency,
        latency_by_size: latency.by_size,
        throughput_bytes_per_s: latency.throughput_bytes_per_s,
        verified_pages: summary.verified_pages,
        corrupted_pages: summary.corrupted_pages,
        timer: clock.timer(),
        conditions: None,
    };
    sink.record(Record::RunEnd {
        run,
        result: result.clone(),
    });
    Ok(result)
}

/// The simulator's mover: the model, with the zeroing policy of `--zero`.
pub type SimMover = crate::zeroing::ZeroingMover<crate::model::ModelMover>;

/// [`replay`] of a binary trace with the simulator's modelled mover, as
/// one function compiled in this crate: the simulator, the sweep and the
/// bench call it from xtask, whose own code is built with the dev profile's
/// many codegen units, where the replay's generic code, instantiated there,
/// would be split from its callees and lose their inlining (about a fifth
/// of the replay's time on the glmark2 trace). The sink and the clock are
/// called a few thousand times a run, not per event: dynamic calls cost
/// nothing there.
#[inline(never)]
pub fn replay_modelled(
    config: &ReplayConfig,
    events: trace::binary::Events<'_>,
    mover: &mut SimMover,
    sink: &mut dyn RecordSink,
    clock: &mut dyn Clock,
) -> Result<RunResult, ReplayError> {
    replay(config, events, mover, sink, clock)
}

#[cfg(test)]
mod tests {
    use super::Marks;
    use alloc::vec::Vec;

    fn marks(total: u64, count: u32, run: u64) -> Vec<u64> {
        let mut m = Marks::new(total, count);
        (0..run).filter(|&i| m.hit(i)).collect()
    }

    #[test]
    fn marks_are_even_and_end_on_the_last_event() {
        assert_eq!(marks(10, 5, 10), [1, 3, 5, 7, 9]);
        assert_eq!(marks(10, 3, 10), [2, 5, 9]);
        // More marks than events: every event once.
        assert_eq!(marks(3, 10, 3), [0, 1, 2]);
        assert_eq!(marks(10, 0, 10), Vec::<u64>::new());
    }
}
