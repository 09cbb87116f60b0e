//! The live view while a replay runs: one progress bar per run on stderr, or,
//! when stderr is not a terminal (CI logs), a plain line at each quarter.

use crate::units;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use records::{MoverKind, Policy, Record};
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Feed every record to [`Progress::on_record`]; call [`Progress::finish`] at the end.
pub struct Progress {
    out: Output,
    runs: Vec<RunProgress>,
}

enum Output {
    Bars(MultiProgress),
    Plain(Box<dyn Write + Send>),
}

struct RunProgress {
    run: u16,
    label: String,
    events: u64,
    done: u64,
    started: Instant,
    /// Quarters already reported in plain mode.
    quarters: u64,
    bar: Option<ProgressBar>,
    finished: bool,
}

fn label(run: u16, policy: Policy, mover: MoverKind) -> String {
    format!("run {run} {policy}/{mover}")
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// Bars on stderr when it is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        if std::io::stderr().is_terminal() {
            Self {
                out: Output::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
                runs: Vec::new(),
            }
        } else {
            Self::plain(Box::new(std::io::stderr()))
        }
    }

    /// Plain lines to `out`, whatever it is (for logs and tests).
    pub fn plain(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Output::Plain(out),
            runs: Vec::new(),
        }
    }

    fn line(&mut self, text: &str) {
        match &mut self.out {
            Output::Bars(mp) => {
                let _ = mp.println(text);
            }
            Output::Plain(w) => {
                // A progress line that cannot be written must not stop the replay.
                let _ = writeln!(w, "{text}");
            }
        }
    }

    /// Prints a line (a firmware log line, say) above the bars without
    /// tearing them.
    pub fn println(&mut self, text: &str) {
        self.line(text);
    }

    /// Updates the view from one record; records that say nothing about
    /// progress are ignored.
    pub fn on_record(&mut self, record: &Record) {
        match record {
            Record::Trace(t) => {
                let text = format!(
                    "trace {}: {} events, {} buffers, peak live {}",
                    t.name,
                    units::count(t.events),
                    units::count(t.buffers),
                    units::bytes(t.peak_live_bytes)
                );
                self.line(&text);
            }
            Record::Platform(p) => {
                let text = format!(
                    "platform: {}",
                    crate::metrics::source_description(p.source())
                );
                self.line(&text);
            }
            Record::RunStart {
                run,
                policy,
                mover,
                pool_bytes,
                events,
            } => {
                let label = label(*run, *policy, *mover);
                let bar = match &self.out {
                    Output::Bars(mp) => {
                        let bar = mp.add(ProgressBar::new(*events));
                        bar.set_style(bar_style());
                        bar.set_prefix(label.clone());
                        Some(bar)
                    }
                    Output::Plain(_) => None,
                };
                if bar.is_none() {
                    let text = format!(
                        "{label}: started, {} events, pool {}",
                        units::count(*events),
                        units::bytes(*pool_bytes)
                    );
                    self.line(&text);
                }
                self.runs.push(RunProgress {
                    run: *run,
                    label,
                    events: *events,
                    done: 0,
                    started: Instant::now(),
                    quarters: 0,
                    bar,
                    finished: false,
                });
            }
            Record::Progress { run, events_done } => self.advance(*run, *events_done),
            Record::RunEnd { run, result } => {
                self.advance(*run, result.events);
                let Some(r) = self.runs.iter_mut().rev().find(|r| r.run == *run) else {
                    return;
                };
                r.finished = true;
                let summary = format!(
                    "{}: done, {} events, {} moves, replay {}",
                    r.label,
                    units::count(result.events),
                    units::count(result.moves),
                    units::duration_ns(result.replay_ns)
                );
                match r.bar.take() {
                    Some(bar) => bar.finish_with_message(format!(
                        "done: {} moves, replay {}",
                        units::count(result.moves),
                        units::duration_ns(result.replay_ns)
                    )),
                    None => self.line(&summary),
                }
            }
            _ => {}
        }
    }

    fn advance(&mut self, run: u16, done: u64) {
        let Some(r) = self.runs.iter_mut().rev().find(|r| r.run == run) else {
            return;
        };
        r.done = done;
        if let Some(bar) = &r.bar {
            bar.set_position(done);
            return;
        }
        if r.events == 0 {
            return;
        }
        let quarter = (done.min(r.events) * 4) / r.events;
        if quarter > r.quarters && quarter < 4 {
            r.quarters = quarter;
            let secs = r.started.elapsed().as_secs_f64();
            let text = format!(
                "{}: {}% ({}/{} events, {})",
                r.label,
                quarter * 25,
                units::count(done),
                units::count(r.events),
                units::rate(if secs > 0.0 { done as f64 / secs } else { 0.0 })
            );
            self.line(&text);
        }
    }

    /// Ends the view; runs that never finished are marked as stopped.
    pub fn finish(&mut self) {
        let mut stopped = Vec::new();
        for r in self.runs.iter_mut().filter(|r| !r.finished) {
            r.finished = true;
            match r.bar.take() {
                Some(bar) => {
                    bar.abandon_with_message(format!("stopped at {}/{} events", r.done, r.events))
                }
                None => stopped.push(format!(
                    "{}: stopped at {}/{} events",
                    r.label,
                    units::count(r.done),
                    units::count(r.events)
                )),
            }
        }
        for line in stopped {
            self.line(&line);
        }
        if let Output::Plain(w) = &mut self.out {
            let _ = w.flush();
        }
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:<28} [{bar:36.cyan/blue}] {pos:>9}/{len:9} events {rate:>14} {msg}",
    )
    .expect("the progress template is valid")
    .with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&units::rate(state.per_sec()));
        },
    )
    .progress_chars("=> ")
}
