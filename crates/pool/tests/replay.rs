//! The replay loop: the records it streams and the result it returns.

mod common;
use common::*;
use pool::model::{LatencyModel, ModelMover};
use pool::replay::{replay, Clock, RecordSink, ReplayConfig};
use records::{Collector, Policy, Record, Timer, TraceInfo};

struct Sink(Vec<Record>);
impl RecordSink for Sink {
    fn record(&mut self, r: Record) {
        self.0.push(r);
    }
}
/// 1 µs per reading.
struct Ticks(u64);
impl Clock for Ticks {
    fn now_ns(&mut self) -> u64 {
        self.0 += 1000;
        self.0
    }
    fn timer(&self) -> Timer {
        Timer {
            name: "test".into(),
            hz: 1_000_000_000,
        }
    }
}

fn story() -> Vec<trace::Event> {
    let mut ev: Vec<_> = (0..5).map(|b| create(b, MIB)).collect();
    ev.push(create(5, 10 * MIB));
    ev.extend((6..11).map(|b| create(b, MIB)));
    ev.extend([destroy(5), create(11, 11 * MIB), use_(0), dontneed(1)]);
    for (t, e) in ev.iter_mut().enumerate() {
        e.time_us = t as u64 * 100;
    }
    ev
}

#[test]
fn records_and_result() {
    let events = story();
    let n = events.len() as u64;
    let config = ReplayConfig {
        pool_bytes: 20 * MIB,
        samples: 4,
        snapshots: 3,
        progress_updates: 2,
        ..ReplayConfig::new(3, Policy::FirstFit, n)
    };
    let mut sink = Sink(Vec::new());
    let result = replay(
        &config,
        events.into_iter(),
        &mut ModelMover::instant(),
        &mut sink,
        &mut Ticks(0),
    )
    .unwrap();
    let recs = &sink.0;
    assert!(
        matches!(recs[0], Record::RunStart { run: 3, policy: Policy::FirstFit, events, .. } if events == n)
    );
    assert!(matches!(recs.last(), Some(Record::RunEnd { run: 3, .. })));
    let samples: Vec<u64> = recs
        .iter()
        .filter_map(|r| {
            if let Record::Sample { sample, .. } = r {
                Some(sample.event)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(samples, [2, 6, 10, 14]);
    let snapshots = recs
        .iter()
        .filter(|r| matches!(r, Record::Snapshot { .. }))
        .count();
    assert_eq!(snapshots, 3);
    let progress: Vec<u64> = recs
        .iter()
        .filter_map(|r| {
            if let Record::Progress { events_done, .. } = r {
                Some(*events_done)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(progress, [7, 15]);
    assert_eq!(result.events, n);
    // The story: 0..=4 paged out for 11, then 0 back in above it.
    assert_eq!(
        (result.page_outs, result.page_ins, result.rule1_failures),
        (5, 1, 0)
    );
    assert_eq!(result.moves, 6);
    assert_eq!(result.bytes_moved, 6 * MIB);
    assert_eq!(result.peak_used_bytes, 20 * MIB);
    assert_eq!(result.peak_overflow_bytes, 5 * MIB);
    // At most one hole after every event of this story.
    assert_eq!(result.mean_fragmentation, 0.0);
    assert_eq!(result.replay_ns, 1000);
    let moves: usize = recs
        .iter()
        .map(|r| {
            if let Record::Moves { moves, .. } = r {
                moves.len()
            } else {
                0
            }
        })
        .sum();
    assert_eq!(moves, 6);
    // A collector turns the stream into a report.
    let mut c = Collector::new();
    c.push(Record::Trace(TraceInfo {
        name: "story".into(),
        ..TraceInfo::default()
    }))
    .unwrap();
    for r in recs {
        c.push(r.clone()).unwrap();
    }
    assert_eq!(c.report().unwrap().runs, [result]);
}

#[test]
fn fragmentation_is_averaged_over_events() {
    // 4 MiB: 0, 1, 2, 3; destroy 0 and 2: two 1 MiB holes, fragmentation 0.5.
    let events = [
        create(0, MIB),
        create(1, MIB),
        create(2, MIB),
        create(3, MIB),
        destroy(0),
        destroy(2),
    ];
    let config = ReplayConfig {
        pool_bytes: 4 * MIB,
        ..ReplayConfig::new(0, Policy::FirstFit, 6)
    };
    let r = replay(
        &config,
        events.into_iter(),
        &mut ModelMover::instant(),
        &mut Sink(Vec::new()),
        &mut Ticks(0),
    )
    .unwrap();
    // Per event: 0, 0, 0, 0 (full), 0 (one hole), 0.5.
    assert!(
        (r.mean_fragmentation - 0.5 / 6.0).abs() < 1e-12,
        "{}",
        r.mean_fragmentation
    );
}

#[test]
fn the_last_event_is_always_sampled() {
    // total_events understated: the stream is longer than announced.
    let events = story();
    let config = ReplayConfig {
        pool_bytes: 20 * MIB,
        samples: 2,
        ..ReplayConfig::new(0, Policy::Defrag, 5)
    };
    let mut sink = Sink(Vec::new());
    replay(
        &config,
        events.iter().copied(),
        &mut ModelMover::instant(),
        &mut sink,
        &mut Ticks(0),
    )
    .unwrap();
    let last = sink.0.iter().rev().find_map(|r| {
        if let Record::Sample { sample, .. } = r {
            Some(sample.event)
        } else {
            None
        }
    });
    assert_eq!(last, Some(events.len() as u64 - 1));
}

#[test]
fn modelled_latency_stalls_and_reports_percentiles() {
    let model = LatencyModel {
        setup_ns: 1000,
        bytes_per_s: 1 << 30,
    };
    let config = ReplayConfig {
        pool_bytes: 20 * MIB,
        ..ReplayConfig::new(0, Policy::FirstFit, 15)
    };
    let mut sink = Sink(Vec::new());
    let r = replay(
        &config,
        story().into_iter(),
        &mut ModelMover::with_latency(model),
        &mut sink,
        &mut Ticks(0),
    )
    .unwrap();
    let one_mib = model.duration_ns(MIB);
    assert_eq!(r.move_latency_ns.max, one_mib);
    // Page-outs queue on one engine; the fill of 11 waits for the one of 4
    // (it reuses 4's range), i.e. for all five.
    assert!(r.stall_ns >= 5 * one_mib - 1000, "{}", r.stall_ns);
    assert!(r.throughput_bytes_per_s > 0);
}

#[test]
fn bad_configuration_and_bad_events_are_errors() {
    let mut sink = Sink(Vec::new());
    let config = ReplayConfig {
        pool_bytes: 1000,
        ..ReplayConfig::new(0, Policy::FirstFit, 1)
    };
    assert!(replay(
        &config,
        std::iter::empty(),
        &mut ModelMover::instant(),
        &mut sink,
        &mut Ticks(0)
    )
    .is_err());
    let config = ReplayConfig::new(0, Policy::FirstFit, 1);
    let err = replay(
        &config,
        [use_(3)].into_iter(),
        &mut ModelMover::instant(),
        &mut sink,
        &mut Ticks(0),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "event 0: event for buffer #3, which is not live"
    );
}
