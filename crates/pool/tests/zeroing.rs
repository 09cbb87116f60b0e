//! The zeroing wrapper on a real trace: `none` gives exactly the records of
//! the bare mover (the default of `cargo xtask sim --zero`), and the other
//! policies only add zeroing time to the stall.

use pool::model::{LatencyModel, ModelMover};
use pool::replay::{replay, Clock, RecordSink, ReplayConfig};
use pool::zeroing::{ZeroCosts, ZeroingMover};
use records::{Policy, Record, Timer, ZeroVariant};
use std::path::Path;

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

fn mover() -> ModelMover {
    ModelMover::with_latency(LatencyModel {
        setup_ns: 2000,
        bytes_per_s: 400_000_000,
    })
}

#[test]
fn none_is_exactly_the_bare_mover_and_the_others_cost_stall() {
    let events = events();
    for policy in Policy::ALL {
        let config = ReplayConfig {
            pool_bytes: 48 << 20,
            ..ReplayConfig::new(0, policy, events.len() as u64)
        };
        let mut bare = Keep(Vec::new());
        let want = replay(
            &config,
            events.iter().copied(),
            &mut mover(),
            &mut bare,
            &mut Still,
        )
        .unwrap();
        let mut wrapped = Keep(Vec::new());
        let mut none = ZeroingMover::new(mover(), ZeroVariant::None, ZeroCosts::default());
        let got = replay(
            &config,
            events.iter().copied(),
            &mut none,
            &mut wrapped,
            &mut Still,
        )
        .unwrap();
        assert_eq!(got, want, "{policy}: --zero none changed the result");
        assert_eq!(
            wrapped.0, bare.0,
            "{policy}: --zero none changed the records"
        );
        assert_eq!(none.stats().zeroed_on_path, 0);

        let mut stalls = Vec::new();
        for variant in [ZeroVariant::Cpu, ZeroVariant::Dma, ZeroVariant::Deferred] {
            let mut m = ZeroingMover::new(mover(), variant, ZeroCosts::default());
            let r = replay(
                &config,
                events.iter().copied(),
                &mut m,
                &mut Keep(Vec::new()),
                &mut Still,
            )
            .unwrap();
            let s = m.stats();
            assert!(s.fills > 0, "{policy} {variant:?}: no fill seen");
            // Placement does not depend on zeroing: the same moves.
            assert_eq!(
                (r.moves, r.page_outs, r.rule1_failures),
                (want.moves, want.page_outs, want.rule1_failures)
            );
            assert_eq!(
                r.stall_ns,
                want.stall_ns + s.zero_ns,
                "{policy} {variant:?}"
            );
            if variant != ZeroVariant::Deferred {
                assert!(s.zero_ns > 0, "{policy} {variant:?}: zeroing cost nothing");
            }
            stalls.push((variant, s));
        }
        let deferred = stalls[2].1;
        assert_eq!(
            deferred.served_prezeroed + deferred.fallbacks,
            deferred.fills
        );
        assert!(deferred.zeroed_on_path <= stalls[0].1.zeroed_on_path);
    }
}
