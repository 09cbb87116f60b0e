//! `replay_all` gives each run exactly what a replay of its own gives: the
//! same result and the same records in the same order, whatever the threads.

use pool::model::ModelMover;
use pool::parallel::replay_all;
use pool::replay::{replay, Clock, RecordSink, ReplayConfig, SimMover};
use records::{Policy, Record, RunResult, Timer};
use std::path::Path;

/// A clock that always says 0, so records compare equal run to run.
struct Still;

impl Clock for Still {
    fn now_ns(&mut self) -> u64 {
        0
    }
    fn timer(&self) -> Timer {
        Timer {
            name: "still".into(),
            hz: 1,
        }
    }
}

struct Keep(Vec<Record>);

impl RecordSink for Keep {
    fn record(&mut self, record: Record) {
        self.0.push(record);
    }
}

fn events() -> Vec<trace::Event> {
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../traces/kmscube-msaa4.log.gz");
    trace::read_file(log, trace::Mode::Lenient).unwrap().events
}

/// The events as the binary trace `replay_all` reads.
fn binary(events: &[trace::Event]) -> Vec<u8> {
    trace::binary::encode(events.iter().copied(), "kmscube-msaa4").unwrap()
}

#[test]
fn parallel_runs_equal_runs_one_by_one() {
    let events = events();
    let bytes = binary(&events);
    let trace = trace::binary::BinaryTrace::parse(&bytes).unwrap();
    assert!(trace.events().eq(events.iter().copied()));
    // Every policy, twice, at a pool small enough to make them work.
    let configs: Vec<ReplayConfig> = Policy::ALL
        .iter()
        .chain(Policy::ALL.iter())
        .enumerate()
        .map(|(run, &policy)| ReplayConfig {
            pool_bytes: 48 << 20,
            ..ReplayConfig::new(run as u16, policy, events.len() as u64)
        })
        .collect();
    let mut got: Vec<Vec<Record>> = vec![Vec::new(); configs.len()];
    let outcomes = replay_all(
        &configs,
        || trace.events(),
        |_| SimMover::none(ModelMover::instant()),
        || Still,
        |index, record| got[index].push(record),
    );
    for ((config, outcome), records) in configs.iter().zip(outcomes).zip(got) {
        let mut alone = Keep(Vec::new());
        let want: RunResult = replay(
            config,
            events.iter().copied(),
            &mut ModelMover::instant(),
            &mut alone,
            &mut Still,
        )
        .unwrap();
        assert_eq!(outcome.unwrap(), want, "run {}", config.run);
        assert_eq!(records, alone.0, "records of run {}", config.run);
    }
}

#[test]
fn a_failing_run_reports_its_error_and_the_others_finish() {
    let events = events();
    let bytes = binary(&events);
    let trace = trace::binary::BinaryTrace::parse(&bytes).unwrap();
    let good = ReplayConfig::new(0, Policy::FirstFit, events.len() as u64);
    let bad = ReplayConfig {
        alignment: 3,
        ..ReplayConfig::new(1, Policy::Compact, events.len() as u64)
    };
    let outcomes = replay_all(
        &[good, bad],
        || trace.events(),
        |_| SimMover::none(ModelMover::instant()),
        || Still,
        |_, _| {},
    );
    assert!(outcomes[0].is_ok());
    assert!(outcomes[1].is_err());
}
