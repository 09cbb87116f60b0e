//! Records: the one vocabulary shared by the firmware, the host simulator and
//! the report builder.
//!
//! Data flows one way: a replay (on the Pi, under QEMU or in the simulator)
//! emits [`Record`]s; the host feeds them to a [`Collector`], which yields a
//! [`Report`]. On the wire each record is serialized with postcard and carried
//! in one defmt message; in `report.json` the same types are written with
//! serde_json. Every field of [`Report`] and [`RunResult`] is documented in
//! `docs/design.md`, section 5.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod alloc_bench;
pub mod bringup;
mod collect;
pub mod conditions;
mod hex;
mod names;
mod platform;
pub mod units;
pub mod validate;

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

pub use alloc_bench::{AllocBenchRow, Background, NsPerCall, ZeroVariant};
pub use bringup::{Bringup, BringupItem, BringupReport};
pub use collect::{CollectError, Collector, RunDetail, Streams};
pub use conditions::{Calibration, ClockCheck, RunConditions, RunFlag};
pub use names::{MoverKind, ParseNameError, Policy};
pub use platform::{MemRange, Platform, PlatformField, PlatformKey, UNAVAILABLE};

/// Version of the wire protocol; the host refuses a stream of another version.
/// 2: clocks and throttling in the platform block, run conditions in every
/// result, bring-up records. 3: the runner's transfer records (Ready, Ack,
/// Nak, Accepted, Refused). 4: every frame on the wire ends in a sequence
/// number and a CRC-32 (`protocol::frame`); the host's `Lost` record.
/// 5: `compactions_delayed` in every run's result. 6: the allocation
/// bench's `AllocBench` records (appended last).
pub const PROTOCOL_VERSION: u16 = 6;

/// Where the numbers of a report came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The host simulator with a modelled mover.
    Sim,
    /// The firmware under QEMU: timings are emulation timings.
    Qemu,
    /// The firmware on a real Raspberry Pi 3.
    Hardware,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sim => "sim",
            Source::Qemu => "qemu",
            Source::Hardware => "hardware",
        }
    }
}

/// The trace a run replayed.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TraceInfo {
    pub name: String,
    pub events: u64,
    pub buffers: u64,
    pub peak_live_bytes: u64,
}

/// The clock that timed a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// For example "CNTPCT_EL0", "PMU cycle counter" or "model (virtual ns)".
    pub name: String,
    pub hz: u64,
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// Move latency for moves of one size class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeClassLatency {
    /// Inclusive upper bound of the class in bytes (moves of `<= max_bytes`).
    pub max_bytes: u64,
    pub moves: u64,
    pub bytes: u64,
    pub latency_ns: Latency,
}

/// Bytes moved, by kind of move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BytesByKind {
    /// Overflow to pool (content copied in).
    pub page_in: u64,
    /// Pool to overflow.
    pub page_out: u64,
    /// Pool to pool (compaction, defragmentation).
    pub compaction: u64,
    /// Bytes dropped by purges (not copied).
    pub purged: u64,
}

/// The result of one run: one policy, one mover, one pool size, one trace.
/// Every field is documented in docs/design.md, section 5.4.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub policy: Policy,
    pub mover: MoverKind,
    pub pool_bytes: u64,
    /// Events replayed.
    pub events: u64,
    pub rule1_failures: u64,
    pub page_ins: u64,
    pub page_outs: u64,
    pub purges: u64,
    pub compaction_moves: u64,
    /// Every move that copied content (page-ins, page-outs, compaction moves).
    pub moves: u64,
    pub bytes_moved: u64,
    pub bytes_by_kind: BytesByKind,
    pub peak_used_bytes: u64,
    pub peak_overflow_bytes: u64,
    /// 1 - largest_free_hole / total_free (0 when nothing is free), averaged over events.
    pub mean_fragmentation: f64,
    /// Wall time of the replay on the run's timer.
    pub replay_ns: u64,
    /// DMA moves redone by the CPU after an error or a timeout.
    pub dma_fallbacks: u64,
    /// Time the replay waited for moves in flight.
    pub stall_ns: u64,
    /// Compaction moves that first waited for a move in flight (of the
    /// buffer itself or over the units it lands on); at most
    /// `compaction_moves`. 0 with a mover that finishes every move at once.
    pub compactions_delayed: u64,
    pub move_latency_ns: Latency,
    pub latency_by_size: Vec<SizeClassLatency>,
    /// Bytes per second over the summed move latencies (0 when nothing moved).
    pub throughput_bytes_per_s: u64,
    pub verified_pages: u64,
    pub corrupted_pages: u64,
    pub timer: Timer,
    /// What the firmware measured around the run (clocks, UART time kept out
    /// of the timings, the copy routine, flags); `None` in the simulator.
    #[serde(default)]
    pub conditions: Option<RunConditions>,
}

impl RunResult {
    /// The flags of the run (none in the simulator).
    pub fn flags(&self) -> &[RunFlag] {
        self.conditions.as_ref().map_or(&[], |c| c.flags.as_slice())
    }
}

/// Pool occupancy after one event.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Index of the event (0-based) after which this was taken.
    pub event: u64,
    pub time_us: u64,
    pub used_bytes: u64,
    pub overflow_bytes: u64,
    pub largest_hole: u64,
    pub holes: u32,
    pub fragmentation: f32,
}

/// How a buffer is drawn in the pool animation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BufferState {
    Movable,
    Pinned,
    Unmoveable,
}

/// One buffer in a snapshot: `offset` is its pool offset (resident) or its
/// position in the overflow bar (non-resident).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotBuffer {
    pub buffer: u32,
    pub offset: u64,
    pub size: u64,
    pub state: BufferState,
}

/// The whole pool and overflow at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub event: u64,
    pub time_us: u64,
    pub resident: Vec<SnapshotBuffer>,
    pub overflow: Vec<SnapshotBuffer>,
}

/// One timed move, for the latency-against-size chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveSample {
    pub bytes: u64,
    pub latency_ns: u64,
}

/// Everything a replay streams to the host, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// First record of a stream.
    Hello { protocol: u16, firmware: String },
    /// The board (absent in simulation).
    Platform(Platform),
    /// The trace about to be replayed.
    Trace(TraceInfo),
    /// A run begins; `run` numbers runs from 0 within the stream.
    RunStart {
        run: u16,
        policy: Policy,
        mover: MoverKind,
        pool_bytes: u64,
        events: u64,
    },
    /// `events_done` of the run's events have been replayed.
    Progress { run: u16, events_done: u64 },
    /// Sampled occupancy.
    Sample { run: u16, sample: Sample },
    /// Sampled pool picture for the animation.
    Snapshot { run: u16, snapshot: Snapshot },
    /// Sampled move timings.
    Moves { run: u16, moves: Vec<MoveSample> },
    /// A data mismatch found by verification (the first few per run).
    Corruption {
        run: u16,
        buffer: u32,
        page: u64,
        expected: u64,
        found: u64,
    },
    /// A run ended.
    RunEnd { run: u16, result: RunResult },
    /// One measurement of the bring-up check.
    Bringup(BringupItem),
    /// A self-test on the target finished (`cargo xtask test`).
    Check {
        name: String,
        passed: bool,
        detail: String,
    },
    /// The stream ends; the firmware exits with `exit_code` next. The
    /// runner sends one after each trace's report and then waits again.
    Finished { exit_code: u32 },
    /// The runner can take a trace (repeated while it waits): the largest
    /// it can hold, its pool region, how many frames the host may send
    /// ahead of an acknowledgement, how long it waits before it replays
    /// the embedded trace instead, and its free heap.
    Ready {
        max_trace_bytes: u64,
        pool_bytes: u64,
        window: u16,
        wait_ms: u32,
        /// Free bytes of the firmware's heap now: a pushed trace is received
        /// into it, and the replay's paged-out buffers then live in what is left.
        heap_free_bytes: u64,
    },
    /// Every frame before `next` has been received whole.
    Ack { next: u32 },
    /// A frame was damaged or out of order; the runner wants `expected`
    /// next (the host resends from there).
    Nak { expected: u32, reason: String },
    /// The whole trace arrived and its header and checksum are good: its
    /// report follows.
    Accepted {
        bytes: u64,
        events: u64,
        pool_bytes: u64,
    },
    /// The transfer or the trace is refused, and why; the runner waits again.
    Refused { reason: String },
    /// Made by the host, never sent by the firmware: `frames` frames of the
    /// stream were lost here (damaged, failing their CRC, or missing from
    /// the sequence numbers). Kept in records.bin, so a report read again
    /// still says what was lost.
    Lost { frames: u64 },
    /// One row of the allocation bench (`alloc-bench` mode).
    AllocBench(AllocBenchRow),
}

impl Record {
    /// The record's kind, as messages name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Hello { .. } => "Hello",
            Record::Platform(_) => "Platform",
            Record::Trace(_) => "Trace",
            Record::RunStart { .. } => "RunStart",
            Record::Progress { .. } => "Progress",
            Record::Sample { .. } => "Sample",
            Record::Snapshot { .. } => "Snapshot",
            Record::Moves { .. } => "Moves",
            Record::Corruption { .. } => "Corruption",
            Record::RunEnd { .. } => "RunEnd",
            Record::Bringup(_) => "Bringup",
            Record::Check { .. } => "Check",
            Record::Finished { .. } => "Finished",
            Record::Ready { .. } => "Ready",
            Record::Ack { .. } => "Ack",
            Record::Nak { .. } => "Nak",
            Record::Accepted { .. } => "Accepted",
            Record::Refused { .. } => "Refused",
            Record::Lost { .. } => "Lost",
            Record::AllocBench(_) => "AllocBench",
        }
    }

    /// Serializes for the wire (postcard).
    pub fn to_bytes(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }

    /// Parses one record from the wire.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// What `report.json` holds (docs/design.md, section 5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    pub trace: TraceInfo,
    pub runs: Vec<RunResult>,
    /// The stream ended before the firmware said it had finished (a board
    /// reset mid-stream, a cut cable) or frames were lost: the runs are
    /// those that ended and arrived whole.
    #[serde(default)]
    pub incomplete: bool,
    /// Frames lost on the wire (damaged, or missing from the sequence) and
    /// records refused for values out of range; any makes the report
    /// incomplete.
    #[serde(default)]
    pub lost_frames: u64,
}
