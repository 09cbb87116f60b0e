//! Figures, not a timed test: `cargo bench -p pool`.
//!
//! (a) End-to-end simulator throughput on the largest bundled trace: the
//!     `.log.gz` streamed through the parser into the replay, to the result,
//!     in events per second per policy; plus the replay alone (events already
//!     in memory) and the parse alone, to show where the time goes.
//! (b) Cost of one placement (create + destroy of one buffer in a fragmented
//!     pool) at 1k, 10k and 100k live buffers, every policy
//!     (`pool::scaling`, also printed by `cargo xtask bench`).

use pool::model::ModelMover;
use pool::replay::{replay, Clock, RecordSink, ReplayConfig};
use records::{Policy, Record, Timer};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;
use trace::Event;

struct Discard;
impl RecordSink for Discard {
    fn record(&mut self, record: Record) {
        black_box(record);
    }
}

struct Wall(Instant);
impl Clock for Wall {
    fn now_ns(&mut self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
    fn timer(&self) -> Timer {
        Timer {
            name: "host".into(),
            hz: 1_000_000_000,
        }
    }
}

fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../traces")
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.unwrap())
}

fn end_to_end() {
    let path = traces_dir().join("openarena-timedemo.log.gz");
    if !path.exists() {
        println!("(a) skipped: {} not found", path.display());
        return;
    }
    let (parse_s, events) = best_of(2, || {
        trace::open(&path, trace::Mode::Lenient)
            .unwrap()
            .map(|e| e.unwrap())
            .collect::<Vec<Event>>()
    });
    let n = events.len() as f64;
    println!(
        "(a) {} ({} events)",
        path.file_name().unwrap().to_string_lossy(),
        events.len()
    );
    println!(
        "    parse alone (gunzip + parse + validate): {:.1} ms, {:.2} M events/s",
        parse_s * 1e3,
        n / parse_s / 1e6
    );
    println!(
        "    {:<10} {:>14} {:>16} {:>14} {:>16}",
        "policy", "replay ms", "replay Mev/s", "e2e ms", "e2e Mev/s"
    );
    for policy in Policy::ALL {
        let config = ReplayConfig::new(0, policy, events.len() as u64);
        let (replay_s, result) = best_of(5, || {
            let mut clock = Wall(Instant::now());
            replay(
                &config,
                events.iter().copied(),
                &mut ModelMover::instant(),
                &mut Discard,
                &mut clock,
            )
            .unwrap()
        });
        let (e2e_s, _) = best_of(2, || {
            let parser = trace::open(&path, trace::Mode::Lenient).unwrap();
            let mut clock = Wall(Instant::now());
            replay(
                &config,
                parser.map(|e| e.unwrap()),
                &mut ModelMover::instant(),
                &mut Discard,
                &mut clock,
            )
            .unwrap()
        });
        black_box(result);
        println!(
            "    {:<10} {:>14.1} {:>16.1} {:>14.1} {:>16.2}",
            policy.as_str(),
            replay_s * 1e3,
            n / replay_s / 1e6,
            e2e_s * 1e3,
            n / e2e_s / 1e6
        );
    }
}

fn placement() {
    println!("(b) one placement (create + destroy) in a fragmented 4 GiB pool, ns per placement");
    println!(
        "    {:<10} {:>10} {:>10} {:>10} {:>10}",
        "policy", "1k", "10k", "100k", "100k/1k"
    );
    for policy in Policy::ALL {
        let costs: Vec<f64> = [1_000u32, 10_000, 100_000]
            .iter()
            .map(|&live| pool::scaling::placement_ns(policy, live, 200_000, 1))
            .collect();
        println!(
            "    {:<10} {:>10.0} {:>10.0} {:>10.0} {:>10.2}",
            policy.as_str(),
            costs[0],
            costs[1],
            costs[2],
            costs[2] / costs[0]
        );
    }
}

fn main() {
    // `cargo test --benches` runs this binary with `--bench`-less args; keep it quick then.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    end_to_end();
    placement();
}
