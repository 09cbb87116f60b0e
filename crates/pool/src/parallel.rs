//! Several replays of one trace at once (`std` only): one run per
//! configuration, each with its own pool, mover, clock and sink, spread over
//! the cores by rayon. The trace is parsed once; every run reads the same
//! events (`events` makes a fresh iterator over them for each run).

use crate::replay::{replay, Clock, MeasuredMover, RecordSink, ReplayConfig, ReplayError};
use rayon::prelude::*;
use records::{Record, RunResult};
use std::sync::mpsc;

/// Hands a run's records to the calling thread, tagged with the run's
/// position in the list of configurations.
struct ChannelSink<'a> {
    index: usize,
    out: &'a mpsc::Sender<(usize, Record)>,
}

impl RecordSink for ChannelSink<'_> {
    fn record(&mut self, record: &Record) {
        // The receiver outlives every run (see `replay_all`).
        let _ = self.out.send((self.index, record.clone()));
    }
}

/// Replays the events under every configuration in parallel. `on_record`
/// gets each record on the calling thread while the runs go on, with the
/// index of its configuration; the records of one run come in the order that
/// run made them (runs interleave). Returns each run's outcome, in the order
/// of `configs`.
pub fn replay_all<I, E, M, MF, C, CF>(
    configs: &[ReplayConfig],
    events: E,
    mover: MF,
    clock: CF,
    mut on_record: impl FnMut(usize, Record),
) -> Vec<Result<RunResult, ReplayError>>
where
    I: Iterator<Item = trace::Event>,
    E: Fn() -> I + Sync,
    M: MeasuredMover,
    MF: Fn(&ReplayConfig) -> M + Sync,
    C: Clock,
    CF: Fn() -> C + Sync,
{
    let (tx, rx) = mpsc::channel();
    // Shared by reference with the runs (they are `Sync`).
    let (events, mover, clock) = (&events, &mover, &clock);
    std::thread::scope(|scope| {
        let runs = scope.spawn(move || {
            configs
                .par_iter()
                .enumerate()
                .map_with(tx, |tx, (index, config)| {
                    let mut sink = ChannelSink { index, out: tx };
                    replay(
                        config,
                        events(),
                        &mut mover(config),
                        &mut sink,
                        &mut clock(),
                    )
                })
                .collect::<Vec<_>>()
        });
        // Ends when the last run is over and every sender is gone.
        for (index, record) in rx {
            on_record(index, record);
        }
        runs.join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
