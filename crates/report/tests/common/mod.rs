//! A synthetic record stream shaped like a firmware replay under QEMU: four
//! policies times two movers, with samples, snapshots (resident and overflow
//! buffers in all three states) and timed moves. The values are chosen so each
//! test knows which cell must be best.
#![allow(dead_code)]

use records::*;
use std::path::PathBuf;

pub const POOL: u64 = 16 << 20;
pub const EVENTS: u64 = 2_000;
pub const PAGE: u64 = 4096;

/// Knobs for the generator.
#[derive(Clone, Copy)]
pub struct Shape {
    pub events: u64,
    pub sample_every: u64,
    pub snapshot_every: u64,
    /// Buffers per snapshot (resident plus overflow).
    pub buffers: u64,
    pub movers: &'static [MoverKind],
    pub emulated: bool,
    /// Every policy gets the same samples: the worst case for telling them apart.
    pub identical_samples: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            events: EVENTS,
            sample_every: 20,
            snapshot_every: 100,
            buffers: 40,
            movers: &[MoverKind::Dma, MoverKind::Cpu],
            emulated: true,
            identical_samples: false,
        }
    }
}

/// A small deterministic generator (xorshift), so runs are reproducible.
pub struct Rng(u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn platform(emulated: bool) -> Platform {
    Platform {
        board_revision: Some(0xa02082),
        board_model: None,
        board_serial: Some(0x1234_5678),
        firmware_revision: Some(0x5e0f_2b1c),
        arm_memory: Some(MemRange {
            base: 0,
            size: 0x3b40_0000,
        }),
        vc_memory: Some(MemRange {
            base: 0x3c00_0000,
            size: 0x0400_0000,
        }),
        arm_clock_hz: Some(1_200_000_000),
        arm_max_clock_hz: Some(1_200_000_000),
        arm_clock_set_hz: Some(1_200_000_000),
        arm_clock_measured_hz: (!emulated).then_some(1_199_998_000),
        core_clock_hz: Some(250_000_000),
        core_max_clock_hz: Some(400_000_000),
        core_clock_set_hz: Some(400_000_000),
        core_clock_measured_hz: (!emulated).then_some(400_000_000),
        throttled: (!emulated).then_some(0),
        cycle_calibration: None,
        uart_clock_hz: Some(48_000_000),
        timer_hz: 62_500_000,
        temperature_mc: None,
        dma_channel_mask: Some(0x7f35),
        dma_channel: Some(4),
        emulated,
        detection: if emulated {
            "MIDR and missing temperature sensor".into()
        } else {
            "silicon".into()
        },
        pool: Some(MemRange {
            base: 0x0800_0000,
            size: POOL,
        }),
        heap: Some(MemRange {
            base: 0x1000_0000,
            size: 0x1000_0000,
        }),
    }
}

/// Page-outs per policy: defrag is the best (fewest).
pub fn page_outs(p: Policy) -> u64 {
    match p {
        Policy::FirstFit => 40,
        Policy::Compact => 30,
        Policy::DrmMm => 35,
        Policy::Defrag => 12,
    }
}

/// p50 move latency: DMA beats the CPU; within a mover, policies differ a little.
pub fn p50_ns(p: Policy, m: MoverKind) -> u64 {
    let base = match m {
        MoverKind::Dma => 48_000,
        MoverKind::Cpu => 131_000,
        MoverKind::Model => 0,
    };
    base + 1_000 * p as u64
}

pub fn result(p: Policy, m: MoverKind, events: u64) -> RunResult {
    let page_ins = page_outs(p) - 2;
    let compaction = match p {
        Policy::Compact => 55,
        Policy::Defrag => 21,
        _ => 0,
    };
    let moves = page_ins + page_outs(p) + compaction;
    let p50 = p50_ns(p, m);
    RunResult {
        policy: p,
        mover: m,
        pool_bytes: POOL,
        events,
        rule1_failures: if p == Policy::FirstFit { 3 } else { 0 },
        page_ins,
        page_outs: page_outs(p),
        purges: 5,
        compaction_moves: compaction,
        moves,
        bytes_moved: moves * 256 * 1024,
        bytes_by_kind: BytesByKind {
            page_in: page_ins * 256 * 1024,
            page_out: page_outs(p) * 256 * 1024,
            compaction: compaction * 256 * 1024,
            purged: 5 * 64 * 1024,
        },
        peak_used_bytes: POOL - (1 << 20),
        peak_overflow_bytes: page_outs(p) * 200 * 1024,
        mean_fragmentation: 0.05 * (4 - p as u64) as f64,
        replay_ns: 900_000_000
            + 10_000_000 * p as u64
            + if m == MoverKind::Cpu { 300_000_000 } else { 0 },
        dma_fallbacks: 0,
        stall_ns: moves * p50 / 3,
        compactions_delayed: compaction / 4,
        move_latency_ns: Latency {
            p50,
            p99: p50 * 6,
            max: p50 * 11,
        },
        latency_by_size: vec![
            SizeClassLatency {
                max_bytes: 64 << 10,
                moves: moves / 2,
                bytes: (moves / 2 * 32) << 10,
                latency_ns: Latency {
                    p50: p50 / 4,
                    p99: p50,
                    max: p50 * 2,
                },
            },
            SizeClassLatency {
                max_bytes: 4 << 20,
                moves: moves - moves / 2,
                bytes: (moves - moves / 2) << 20,
                latency_ns: Latency {
                    p50: p50 * 2,
                    p99: p50 * 6,
                    max: p50 * 11,
                },
            },
        ],
        throughput_bytes_per_s: 250_000_000,
        verified_pages: moves * 64,
        corrupted_pages: 0,
        timer: Timer {
            name: "CNTPCT_EL0".into(),
            hz: 62_500_000,
        },
        conditions: None,
    }
}

fn state(i: u64) -> BufferState {
    match i % 6 {
        0 => BufferState::Unmoveable,
        1 | 4 => BufferState::Pinned,
        _ => BufferState::Movable,
    }
}

/// A snapshot: buffers laid out along the pool with holes that grow and move
/// with the event index (so consecutive frames differ), the rest in overflow.
pub fn snapshot(p: Policy, event: u64, shape: &Shape, rng: &mut Rng) -> Snapshot {
    let mut resident = Vec::new();
    let mut overflow = Vec::new();
    let mut offset = (event * PAGE * (p as u64 + 1)) % (256 * PAGE);
    let mut ovf_offset = 0;
    for i in 0..shape.buffers {
        let size = PAGE * (1 + rng.below(64));
        let gap = PAGE * rng.below(16);
        if offset + gap + size <= POOL && !(i + event / shape.snapshot_every).is_multiple_of(9) {
            offset += gap;
            resident.push(SnapshotBuffer {
                buffer: i as u32,
                offset,
                size,
                state: state(i),
            });
            offset += size;
        } else {
            // Only movable buffers leave the pool.
            overflow.push(SnapshotBuffer {
                buffer: i as u32,
                offset: ovf_offset,
                size,
                state: BufferState::Movable,
            });
            ovf_offset += size;
        }
    }
    Snapshot {
        event,
        time_us: event * 8_000,
        resident,
        overflow,
    }
}

pub fn trace_info(events: u64) -> TraceInfo {
    TraceInfo {
        name: "synthetic-kmscube".into(),
        events,
        buffers: 120,
        peak_live_bytes: 24 << 20,
    }
}

/// The full record stream.
pub fn records(shape: Shape) -> Vec<Record> {
    let mut out = vec![Record::Hello {
        protocol: PROTOCOL_VERSION,
        firmware: "poolbed 0.1.0 (synthetic)".into(),
    }];
    out.push(Record::Platform(platform(shape.emulated)));
    out.push(Record::Trace(trace_info(shape.events)));
    let mut run = 0u16;
    for &mover in shape.movers {
        for policy in Policy::ALL {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (u64::from(run) + 1));
            out.push(Record::RunStart {
                run,
                policy,
                mover,
                pool_bytes: POOL,
                events: shape.events,
            });
            let mut moves = Vec::new();
            for e in 0..shape.events {
                if e % shape.sample_every == 0 {
                    let k = if shape.identical_samples {
                        0
                    } else {
                        policy as u64
                    };
                    let used = (POOL / 2) + (e * 4096 * (k + 1)) % (POOL / 2);
                    let overflow = (e * 1024 * (4 - k)) % (8 << 20);
                    let largest = (POOL - used) / (1 + k);
                    let free = POOL - used;
                    out.push(Record::Sample {
                        run,
                        sample: Sample {
                            event: e,
                            time_us: e * 8_000,
                            used_bytes: used,
                            overflow_bytes: overflow,
                            largest_hole: largest,
                            holes: 1 + (k as u32) * 3,
                            fragmentation: if free == 0 {
                                0.0
                            } else {
                                1.0 - largest as f32 / free as f32
                            },
                        },
                    });
                }
                if e % shape.snapshot_every == 0 || e == shape.events - 1 {
                    out.push(Record::Snapshot {
                        run,
                        snapshot: snapshot(policy, e, &shape, &mut rng),
                    });
                }
                if e % 10 == 0 && mover != MoverKind::Model {
                    let bytes = PAGE << rng.below(12);
                    let per_byte = if mover == MoverKind::Dma { 4 } else { 9 };
                    moves.push(MoveSample {
                        bytes,
                        latency_ns: 20_000 + bytes * per_byte / 10 + rng.below(5_000),
                    });
                    if moves.len() == 50 {
                        out.push(Record::Moves {
                            run,
                            moves: std::mem::take(&mut moves),
                        });
                    }
                }
                if (e + 1) % 500 == 0 {
                    out.push(Record::Progress {
                        run,
                        events_done: e + 1,
                    });
                }
            }
            if !moves.is_empty() {
                out.push(Record::Moves { run, moves });
            }
            out.push(Record::RunEnd {
                run,
                result: result(policy, mover, shape.events),
            });
            run += 1;
        }
    }
    out.push(Record::Finished { exit_code: 0 });
    out
}

pub fn collector(shape: Shape) -> Collector {
    let mut c = Collector::new();
    for r in records(shape) {
        c.push(r).unwrap();
    }
    c
}

/// A fresh, empty directory for one test.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
