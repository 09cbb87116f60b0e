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
    Protocol { found: u16 },
    UnknownRun { run: u16 },
    NoTrace,
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectError::Protocol { found } => write!(
                f,
                "record protocol {found} is not the host's {PROTOCOL_VERSION}: rebuild the firmware"
            ),
            CollectError::UnknownRun { run } => {
                write!(f, "record for run {run} before its RunStart")
            }
            CollectError::NoTrace => write!(f, "the stream never said which trace it replayed"),
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
    pub exit_code: Option<u32>,
    /// Marked by the host when the stream was cut off before `Finished`
    /// (`listen` seeing a new boot banner); the report says so.
    pub incomplete: bool,
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

    /// Takes one record.
    pub fn push(&mut self, record: Record) -> Result<(), CollectError> {
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
        }
        Ok(())
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
            incomplete: self.incomplete,
        })
    }
}
