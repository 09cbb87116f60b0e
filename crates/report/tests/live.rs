//! The live view's ETA (report::live), fed records as `run` feeds them.

mod common;

use common::result;
use records::{MoverKind, Policy, Record};
use report::live::{eta_text, Progress};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn start(run: u16) -> Record {
    Record::RunStart {
        run,
        policy: Policy::FirstFit,
        mover: MoverKind::Cpu,
        pool_bytes: 16 << 20,
        events: 1000,
    }
}

#[test]
fn the_eta_covers_every_expected_run() {
    let out = Shared::default();
    let mut progress = Progress::plain(Box::new(out.clone()));
    progress.on_record(&start(0));
    progress.on_record(&Record::Progress {
        run: 0,
        events_done: 300,
    });
    // Without a plan there is no ETA for all runs.
    assert_eq!(progress.eta(), None);
    let run = Duration::from_secs(30);
    progress.expect(vec![run; 4]);
    std::thread::sleep(Duration::from_millis(20));
    progress.on_record(&Record::Progress {
        run: 0,
        events_done: 500,
    });
    // Events come fast at first, but the plan says 30 s per run: the
    // prediction leads until a run has finished.
    let eta = progress.eta().unwrap();
    assert!(eta > Duration::from_secs(119) && eta <= run * 4, "{eta:?}");
    // Run 0 ends far sooner than predicted: the rest scale down with it.
    progress.on_record(&Record::RunEnd {
        run: 0,
        result: result(Policy::FirstFit, MoverKind::Cpu, 1000),
    });
    let eta = progress.eta().unwrap();
    assert!(eta < Duration::from_secs(1), "{eta:?}");
    progress.finish();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("expecting 4 runs, about 2 min 0 s in all"),
        "{text}"
    );
    assert!(
        text.contains("run 0 first-fit/cpu: 50% (500/1 000 events"),
        "{text}"
    );
    assert!(
        text.contains(", run ETA 0 s, all runs ETA 119 s)"),
        "{text}"
    );
    assert_eq!(eta_text(Duration::from_secs(7300)), "2 h 1 min");
}
