//! Several replays of one trace at once (`std` only): one run per
//! configuration, each with its own pool, mover, clock and sink, spread over
//! the cores by rayon. The trace is parsed once; every run reads the same
//! events (`events` makes a fresh iterator over them for each run).

use crate::replay::{replay_modelled, Clock, RecordSink, ReplayConfig, ReplayError, SimMover};
use rayon::prelude::*;
use records::{Record, RunResult};
use std::sync::mpsc;

/// Records sent to the calling thread at a time, at most: one wake-up of it
/// per batch rather than per record.
const BATCH: usize = 256;

/// Hands a run's records to the calling thread in batches, tagged with the
/// run's position in the list of configurations. A batch goes at each
/// progress record (so the live view moves), when full, and at the end.
struct ChannelSink<'a> {
    index: usize,
    out: &'a mpsc::Sender<(usize, Vec<Record>)>,
    pending: Vec<Record>,
}

impl ChannelSink<'_> {
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH));
            // The receiver outlives every run (see `replay_all`).
            let _ = self.out.send((self.index, batch));
        }
    }
}

impl RecordSink for ChannelSink<'_> {
    fn record(&mut self, record: Record) {
        let hand_over = matches!(record, Record::Progress { .. } | Record::RunEnd { .. });
        self.pending.push(record);
        if self.pending.len() >= BATCH || hand_over {
            self.flush();
        }
    }
}

impl Drop for ChannelSink<'_> {
    /// A run that stopped early (an error) still delivers what it recorded.
    fn drop(&mut self) {
        self.flush();
    }
}

/// Replays the events under every configuration in parallel. `on_record`
/// gets each record on the calling thread while the runs go on, with the
/// index of its configuration; the records of one run come in the order that
/// run made them (runs interleave). Returns each run's outcome, in the order
/// of `configs`.
///
/// Every run is [`replay_modelled`]: the simulator's mover over a binary
/// trace, compiled in this crate.
pub fn replay_all<'t, E, MF, C, CF>(
    configs: &[ReplayConfig],
    events: E,
    mover: MF,
    clock: CF,
    mut on_record: impl FnMut(usize, Record),
) -> Vec<Result<RunResult, ReplayError>>
where
    E: Fn() -> trace::binary::Events<'t> + Sync,
    MF: Fn(&ReplayConfig) -> SimMover + Sync,
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
                    let mut sink = ChannelSink {
                        index,
                        out: tx,
                        pending: Vec::with_capacity(BATCH),
                    };
                    replay_modelled(
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
        for (index, batch) in rx {
            for record in batch {
                on_record(index, record);
            }
        }
        runs.join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
