//! Range checks on what a record claims, before anything is drawn from it.
//!
//! The wire's CRC keeps damaged frames out, but a report can also come from a
//! file (records.bin, report.json) or a firmware with a bug; a chart handed a
//! fragmentation of -1.39e24 overflows its pixel arithmetic. So the
//! [`Collector`](crate::Collector) checks every record with [`record`] and
//! refuses one that fails (counted, and the report is marked incomplete),
//! and a summary read from report.json is checked with [`report`].

use crate::{Record, Report, RunResult, Sample, Snapshot, SnapshotBuffer};
use alloc::format;
use alloc::string::String;

/// The largest pool any run can have: the Pi 3's whole 1 GiB of RAM, with a
/// generous margin for a simulated pool (the simulator is not bound to a
/// board). A claim above it is damage, not a measurement.
pub const MAX_POOL_BYTES: u64 = 1 << 40;

/// Checks `record`; `pool_bytes` is the pool of the run it belongs to (from
/// its RunStart), when it belongs to one. `Err` says what is out of range.
pub fn record(record: &Record, pool_bytes: Option<u64>) -> Result<(), String> {
    match record {
        Record::RunStart { pool_bytes, .. } => pool(*pool_bytes),
        Record::Sample { sample, .. } => self::sample(sample, pool_bytes),
        Record::Snapshot { snapshot, .. } => self::snapshot(snapshot, pool_bytes),
        Record::RunEnd { result, .. } => run_result(result),
        Record::AllocBench(row) => row.validate().map_err(String::from),
        _ => Ok(()),
    }
}

/// Checks every run of a summary (report.json).
pub fn report(report: &Report) -> Result<(), String> {
    for (i, run) in report.runs.iter().enumerate() {
        run_result(run).map_err(|e| format!("run {i} ({}/{}): {e}", run.policy, run.mover))?;
    }
    Ok(())
}

fn pool(pool_bytes: u64) -> Result<(), String> {
    if pool_bytes == 0 || pool_bytes > MAX_POOL_BYTES {
        return Err(format!(
            "a pool of {pool_bytes} bytes (a pool is 1 byte to {MAX_POOL_BYTES})"
        ));
    }
    Ok(())
}

fn fraction(name: &str, value: f64) -> Result<(), String> {
    if !value.is_finite() || !(0.0..=1.0).contains(&value) {
        return Err(format!("{name} {value} is not a fraction in [0, 1]"));
    }
    Ok(())
}

fn at_most(name: &str, value: u64, bound_name: &str, bound: u64) -> Result<(), String> {
    if value > bound {
        return Err(format!("{name} {value} exceeds {bound_name} {bound}"));
    }
    Ok(())
}

fn sample(s: &Sample, pool_bytes: Option<u64>) -> Result<(), String> {
    fraction("fragmentation", f64::from(s.fragmentation))?;
    let pool = pool_bytes.unwrap_or(MAX_POOL_BYTES);
    at_most("used bytes", s.used_bytes, "the pool's", pool)?;
    at_most("largest hole", s.largest_hole, "the pool's", pool)?;
    at_most(
        "largest hole",
        s.largest_hole,
        "the free bytes",
        pool - s.used_bytes,
    )?;
    at_most("holes", u64::from(s.holes), "the pool's bytes", pool)?;
    Ok(())
}

fn buffer_end(b: &SnapshotBuffer) -> Result<u64, String> {
    b.offset
        .checked_add(b.size)
        .ok_or_else(|| format!("buffer {} ends past 2^64 bytes", b.buffer))
}

fn snapshot(s: &Snapshot, pool_bytes: Option<u64>) -> Result<(), String> {
    let pool = pool_bytes.unwrap_or(MAX_POOL_BYTES);
    for b in &s.resident {
        let end = buffer_end(b)?;
        at_most("a resident buffer's end", end, "the pool's", pool)?;
    }
    for b in &s.overflow {
        buffer_end(b)?;
    }
    Ok(())
}

fn run_result(r: &RunResult) -> Result<(), String> {
    pool(r.pool_bytes)?;
    fraction("mean fragmentation", r.mean_fragmentation)?;
    at_most(
        "peak used bytes",
        r.peak_used_bytes,
        "the pool's",
        r.pool_bytes,
    )?;
    at_most(
        "compactions delayed",
        r.compactions_delayed,
        "the compaction moves'",
        r.compaction_moves,
    )?;
    let l = &r.move_latency_ns;
    if l.p50 > l.p99 || l.p99 > l.max {
        return Err(format!(
            "move latency p50 {} / p99 {} / max {} is not in order",
            l.p50, l.p99, l.max
        ));
    }
    for c in &r.latency_by_size {
        let l = &c.latency_ns;
        if l.p50 > l.p99 || l.p99 > l.max {
            return Err(format!(
                "the latency of moves up to {} bytes is not in order",
                c.max_bytes
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_sample() -> Sample {
        Sample {
            event: 1,
            time_us: 10,
            used_bytes: 4096,
            overflow_bytes: 0,
            largest_hole: 8192,
            holes: 1,
            fragmentation: 0.25,
        }
    }

    #[test]
    fn a_sane_sample_passes() {
        assert_eq!(sample(&good_sample(), Some(16384)), Ok(()));
    }

    #[test]
    fn the_issue_s_fragmentation_is_refused() {
        let s = Sample {
            fragmentation: -1.39e24,
            ..good_sample()
        };
        let e = sample(&s, Some(16384)).unwrap_err();
        assert!(
            e.contains("fragmentation -1390000") && e.contains("[0, 1]"),
            "{e}"
        );
        for bad in [f32::NAN, f32::INFINITY, 1.01, -0.0001] {
            let s = Sample {
                fragmentation: bad,
                ..good_sample()
            };
            assert!(sample(&s, Some(16384)).is_err(), "{bad}");
        }
    }

    #[test]
    fn bytes_beyond_the_pool_are_refused() {
        let s = Sample {
            used_bytes: 16385,
            ..good_sample()
        };
        assert!(sample(&s, Some(16384))
            .unwrap_err()
            .contains("exceeds the pool's 16384"));
        let s = Sample {
            largest_hole: 16384,
            ..good_sample()
        };
        assert!(sample(&s, Some(16384))
            .unwrap_err()
            .contains("the free bytes"));
        assert!(pool(0).is_err() && pool(MAX_POOL_BYTES + 1).is_err() && pool(4096).is_ok());
    }

    #[test]
    fn snapshot_buffers_stay_inside_the_pool() {
        let b = SnapshotBuffer {
            buffer: 3,
            offset: u64::MAX,
            size: 2,
            state: crate::BufferState::Movable,
        };
        let s = Snapshot {
            overflow: alloc::vec![b],
            ..Snapshot::default()
        };
        assert!(snapshot(&s, Some(4096)).unwrap_err().contains("past 2^64"));
        let s = Snapshot {
            resident: alloc::vec![SnapshotBuffer {
                offset: 4000,
                size: 200,
                ..b
            }],
            ..Snapshot::default()
        };
        assert!(snapshot(&s, Some(4096)).is_err());
    }
}
