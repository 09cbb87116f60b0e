//! Turning a stream of records back into a report.

use crate::{
    Bringup, BringupReport, MoveSample, MoverKind, Platform, Policy, Record, Report, RunResult,
    Sample, Snapshot, Source, TraceInfo, PROTOCOL_VERSION,
};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Everything streamed about one run beyond its result: what charts,
/// the timeline and the animation are drawn from.
#[derive(Clone, Debug, PartialEq)]
pub struct RunDetail {
    pub run: u16,
    pub policy: Policy,
    pub mover: MoverKind,
    pub pool_bytes: u64,
    /// Events the run will replay.
    pub events: u64,
    pub events_done: u64,
    pub samples: Vec<Sample>,
    pub snapshots: Vec<Snapshot>,
    pub moves: Vec<MoveSample>,
    /// (buffer, page, expected, found) of reported mismatches.
    pub corruptions: Vec<(u32, u64, u64, u64)>,
    pub result: Option<RunResult>,
}

/// A stream that does not make sense.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CollectError {
    Protocol {
        found: u16,
    },
    UnknownRun {
        run: u16,
    },
    NoTrace,
    /// A record whose values are out of range ([`crate::validate`]); it was
    /// not taken, and counts as lost.
    Invalid {
        record: &'static str,
        why: String,
    },
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectError::Protocol { found } => write!(
                f,
                "record protocol {found} is not this host's {PROTOCOL_VERSION}: rebuild the firmware (cargo xtask build) and capture again, or read the stream with the poolbed that made it"
            ),
            CollectError::UnknownRun { run } => {
                write!(f, "record for run {run} before its RunStart")
            }
            CollectError::NoTrace => write!(f, "the stream never said which trace it replayed"),
            CollectError::Invalid { record, why } => write!(
                f,
                "a {record} record is out of range ({why}); it is counted as lost, not reported"
            ),
        }
    }
}

/// Accumulates records in stream order.
#[derive(Clone, Debug, Default)]
pub struct Collector {
    pub firmware: Option<String>,
    pub platform: Option<Platform>,
    pub trace: Option<TraceInfo>,
    pub runs: Vec<RunDetail>,
    pub checks: Vec<(String, bool, String)>,
    /// The bring-up check's measurements, if the stream had any.
    pub bringup: Option<Bringup>,
    /// The allocation bench's rows, in stream order.
    pub alloc_bench: Vec<crate::AllocBenchRow>,
    pub exit_code: Option<u32>,
    /// Marked by the host when the stream was cut off before `Finished`
    /// (`listen` seeing a new boot banner); the report says so.
    pub incomplete: bool,
    /// Frames the host lost on the wire (its `Lost` records) and records
    /// refused for values out of range; any makes the report incomplete.
    pub lost_frames: u64,
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    fn run_mut(&mut self, run: u16) -> Result<&mut RunDetail, CollectError> {
        self.runs
            .iter_mut()
            .rev()
            .find(|r| r.run == run)
            .ok_or(CollectError::UnknownRun { run })
    }

    /// Takes one record, if its values are in range.
    pub fn push(&mut self, record: Record) -> Result<(), CollectError> {
        let run_pool = match &record {
            Record::Sample { run, .. } | Record::Snapshot { run, .. } => {
                Some(self.run_mut(*run)?.pool_bytes)
            }
            _ => None,
        };
        if let Err(why) = crate::validate::record(&record, run_pool) {
            self.lost_frames += 1;
            return Err(CollectError::Invalid {
                record: record.kind(),
                why,
            });
        }
        match record {
            Record::Hello { protocol, firmware } => {
                if protocol != PROTOCOL_VERSION {
                    return Err(CollectError::Protocol { found: protocol });
                }
                self.firmware = Some(firmware);
            }
            Record::Platform(p) => self.platform = Some(p),
            Record::Trace(t) => self.trace = Some(t),
            Record::RunStart {
                run,
                policy,
                mover,
                pool_bytes,
                events,
            } => self.runs.push(RunDetail {
                run,
                policy,
                mover,
                pool_bytes,
                events,
                events_done: 0,
                samples: Vec::new(),
                snapshots: Vec::new(),
                moves: Vec::new(),
                corruptions: Vec::new(),
                result: None,
            }),
            Record::Progress { run, events_done } => self.run_mut(run)?.events_done = events_done,
            Record::Sample { run, sample } => self.run_mut(run)?.samples.push(sample),
            Record::Snapshot { run, snapshot } => self.run_mut(run)?.snapshots.push(snapshot),
            Record::Moves { run, moves } => self.run_mut(run)?.moves.extend(moves),
            Record::Corruption {
                run,
                buffer,
                page,
                expected,
                found,
            } => self
                .run_mut(run)?
                .corruptions
                .push((buffer, page, expected, found)),
            Record::RunEnd { run, result } => {
                let detail = self.run_mut(run)?;
                detail.events_done = result.events;
                detail.result = Some(result);
            }
            Record::Check {
                name,
                passed,
                detail,
            } => self.checks.push((name, passed, detail)),
            Record::Bringup(item) => self.bringup.get_or_insert_with(Bringup::default).push(item),
            Record::Finished { exit_code } => self.exit_code = Some(exit_code),
            // The transfer's conversation, not part of any report.
            Record::Ready { .. }
            | Record::Ack { .. }
            | Record::Nak { .. }
            | Record::Accepted { .. }
            | Record::Refused { .. } => {}
            Record::Lost { frames } => self.lost_frames = self.lost_frames.saturating_add(frames),
            Record::AllocBench(row) => self.alloc_bench.push(row),
        }
        Ok(())
    }

    /// Whether anything of a report arrived (a trace, a run, a check or a
    /// bring-up item): a stream with only its banner is no report.
    pub fn started(&self) -> bool {
        self.trace.is_some()
            || !self.runs.is_empty()
            || self.bringup.is_some()
            || !self.alloc_bench.is_empty()
            || !self.checks.is_empty()
    }

    /// Whether the report must say it is incomplete: cut off, or frames lost.
    pub fn is_incomplete(&self) -> bool {
        self.incomplete || self.lost_frames > 0
    }

    /// Where the numbers came from: the platform says QEMU or silicon; no
    /// platform means the simulator.
    pub fn source(&self) -> Source {
        self.platform.as_ref().map_or(Source::Sim, Platform::source)
    }

    /// The bring-up check, if the stream was one.
    pub fn bringup_report(&self) -> Option<BringupReport> {
        Some(BringupReport {
            source: self.source(),
            platform: self.platform.clone(),
            bringup: self.bringup.clone()?,
        })
    }

    /// The report of every run that finished.
    pub fn report(&self) -> Result<Report, CollectError> {
        Ok(Report {
            source: self.source(),
            platform: self.platform.clone(),
            trace: self.trace.clone().ok_or(CollectError::NoTrace)?,
            runs: self.runs.iter().filter_map(|r| r.result.clone()).collect(),
            incomplete: self.is_incomplete(),
            lost_frames: self.lost_frames,
        })
    }
}

/// The streams of a line or of a capture file, split at boot banners (the
/// `Hello` record): one code path for `listen` on a serial device, on a
/// capture file, and for records.bin files read again, so two boots are never
/// mixed in one report. A stream a new banner cuts off before its `Finished`
/// is kept and marked incomplete; a finished one is kept as it is; one with
/// nothing but its banner (the runner's boot before its first report) is
/// dropped.
#[derive(Default)]
pub struct Streams {
    /// The stream being received.
    pub current: Collector,
    /// Every stream before the current one, in order.
    pub earlier: Vec<Collector>,
}

impl Streams {
    /// Takes one record; a collector error is returned (the caller decides
    /// whether it is a warning: only a protocol mismatch is fatal).
    pub fn push(&mut self, record: Record) -> Result<(), CollectError> {
        if matches!(record, Record::Hello { .. }) {
            let mut old = core::mem::take(&mut self.current);
            if old.started() {
                old.incomplete |= old.exit_code.is_none();
                self.earlier.push(old);
            }
        }
        self.current.push(record)
    }

    /// Whether the current stream has finished.
    pub fn finished(&self) -> bool {
        self.current.exit_code.is_some()
    }

    /// The earlier streams cut off by a new boot.
    pub fn incomplete(&self) -> impl Iterator<Item = &Collector> {
        self.earlier.iter().filter(|c| c.incomplete)
    }

    /// Every stream with something in it, in order, the current one last
    /// (when it started).
    pub fn into_all(self) -> Vec<Collector> {
        let mut all = self.earlier;
        if self.current.started() {
            all.push(self.current);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sample, TraceInfo};

    fn hello() -> Record {
        Record::Hello {
            protocol: PROTOCOL_VERSION,
            firmware: "fw".into(),
        }
    }

    fn trace() -> Record {
        Record::Trace(TraceInfo {
            name: "t".into(),
            events: 10,
            buffers: 1,
            peak_live_bytes: 4096,
        })
    }

    fn run_start() -> Record {
        Record::RunStart {
            run: 0,
            policy: Policy::FirstFit,
            mover: MoverKind::Cpu,
            pool_bytes: 1 << 20,
            events: 10,
        }
    }

    #[test]
    fn a_new_banner_cuts_a_started_stream_and_drops_a_bare_one() {
        let mut streams = Streams::default();
        // The runner's boot banner, then its first report's banner: the
        // bare first stream is no report.
        streams.push(hello()).unwrap();
        streams.push(hello()).unwrap();
        assert!(streams.earlier.is_empty());
        streams.push(trace()).unwrap();
        // A reset: the started stream is kept, marked incomplete.
        streams.push(hello()).unwrap();
        assert_eq!(streams.incomplete().count(), 1);
        assert!(streams.earlier[0].report().unwrap().incomplete);
        assert!(streams.current.trace.is_none() && !streams.current.incomplete);
        streams.push(trace()).unwrap();
        streams.push(Record::Finished { exit_code: 0 }).unwrap();
        assert!(streams.finished());
        // A finished stream followed by a banner is kept, complete.
        streams.push(hello()).unwrap();
        assert_eq!(streams.earlier.len(), 2);
        assert_eq!(streams.incomplete().count(), 1);
        assert!(!streams.earlier[1].report().unwrap().incomplete);
        // The bare current stream is not a report.
        assert_eq!(streams.into_all().len(), 2);
    }

    #[test]
    fn the_old_protocol_is_refused_naming_both_versions() {
        let mut c = Collector::new();
        let e = c
            .push(Record::Hello {
                protocol: 4,
                firmware: "old".into(),
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("record protocol 4 is not this host's 6"), "{e}");
    }

    #[test]
    fn out_of_range_records_are_refused_and_counted() {
        let mut c = Collector::new();
        c.push(trace()).unwrap();
        c.push(run_start()).unwrap();
        let bad = Sample {
            fragmentation: -1.39e24,
            ..Sample::default()
        };
        let e = c
            .push(Record::Sample {
                run: 0,
                sample: bad,
            })
            .unwrap_err();
        assert!(
            matches!(
                e,
                CollectError::Invalid {
                    record: "Sample",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(c.runs[0].samples.is_empty(), "the bad sample is not kept");
        c.push(Record::Lost { frames: 2 }).unwrap();
        c.push(Record::Finished { exit_code: 0 }).unwrap();
        let report = c.report().unwrap();
        assert_eq!(report.lost_frames, 3);
        assert!(report.incomplete, "lost frames make the report incomplete");
    }
}
