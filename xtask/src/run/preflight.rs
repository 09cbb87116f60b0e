//! Before `run` boots QEMU: the simulator replays the trace under every
//! policy the firmware will replay, which gives each run's peak overflow
//! (checked against the backing heap the firmware's layout leaves) and its
//! bytes moved (turned into a prediction of QEMU time).

use crate::firmware::{BuildOptions, Built};
use anyhow::{bail, Context, Result};
use bcm::layout::{self, LayoutError};
use object::{Object, ObjectSymbol};
use pool::model::ModelMover;
use pool::parallel::replay_all;
use pool::replay::{Clock, ReplayConfig, SimMover};
use records::{Policy, Timer};
use std::ops::Range;
use std::time::Duration;

/// ARM memory as QEMU raspi3b's mailbox reports it (a 1 GiB Pi 3 with the
/// default 64 MiB GPU split reports the same).
pub const QEMU_ARM_MEMORY: (u32, u32) = (0, 0x3c00_0000);

/// The movers the firmware runs per policy under QEMU (DMA, then CPU).
const MOVERS_PER_POLICY: usize = 2;

/// QEMU's cost of the replay, measured on this project's 2-core host
/// (QEMU 7.2) from `cargo xtask run` on the default trace (48 MiB pool,
/// 200 000 events, 47-55 MiB moved per run; QEMU ran 6.7 s in all): a
/// fixed cost, a cost per event replayed and a copy rate per mover. QEMU's
/// DMA engine moves 4 bytes per step, so its rate is far below the CPU's.
pub mod measured {
    /// QEMU's time outside the runs (boot, checks, writing records out):
    /// 6.67 s in all less 5.73 s of summed replay time.
    pub const BOOT_S: f64 = 1.0;
    /// Host time per event replayed, whatever it moves (placement, stamps):
    /// the CPU runs took 0.20-0.36 s for 200 000 events.
    pub const NS_PER_EVENT: f64 = 1_000.0;
    /// Bytes per second the DMA mover copies under QEMU: the DMA runs took
    /// 0.7-1.4 s longer than the CPU runs for 47-55 MiB (40-67 MB/s).
    pub const DMA_BYTES_PER_S: f64 = 60.0e6;
    /// Bytes per second the CPU mover copies under QEMU: within the noise
    /// of the per-event cost on the default trace, so at least this.
    pub const CPU_BYTES_PER_S: f64 = 800.0e6;
}

/// The firmware writes its buffered records out ten times per run
/// (`src/output.rs`, `FLUSH_EVERY_PROGRESS`): the longest a healthy run
/// stays silent is a tenth of it.
const WRITE_OUTS_PER_RUN: u32 = 10;

/// One policy's run as the simulator predicts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyWork {
    pub policy: Policy,
    pub peak_overflow_bytes: u64,
    pub bytes_moved: u64,
}

/// What the firmware's replay will do, before it boots.
#[derive(Clone, Debug)]
pub struct Work {
    pub events: u64,
    pub pool_bytes: u64,
    /// The backing heap the firmware's layout leaves with this pool.
    pub heap_bytes: u64,
    pub policies: Vec<PolicyWork>,
}

impl Work {
    /// Runs the firmware will make (every policy with each mover).
    pub fn runs(&self) -> usize {
        self.policies.len() * MOVERS_PER_POLICY
    }

    /// Predicted QEMU time of the longest single run (a DMA run).
    pub fn longest_run(&self) -> Duration {
        let per_event = self.events as f64 * measured::NS_PER_EVENT * 1e-9;
        let secs = self
            .policies
            .iter()
            .map(|p| per_event + p.bytes_moved as f64 / measured::DMA_BYTES_PER_S)
            .fold(0.0, f64::max);
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }

    /// The watchdog when `--watchdog` is not given: the documented default
    /// ([`crate::qemu::DEFAULT_WATCHDOG_SECS`]), or three times the longest
    /// predicted silence (a tenth of the longest run) when that is more, so
    /// a long healthy run is never taken for a stuck one.
    pub fn watchdog(&self) -> Duration {
        let default = Duration::from_secs(crate::qemu::DEFAULT_WATCHDOG_SECS);
        let silence = self.longest_run() / WRITE_OUTS_PER_RUN;
        default.max(silence.saturating_mul(3))
    }

    /// Predicted QEMU time of each run, in the firmware's order: every
    /// policy with the DMA mover, then the CPU mover.
    pub fn run_plan(&self) -> Vec<Duration> {
        let per_event = self.events as f64 * measured::NS_PER_EVENT * 1e-9;
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX);
        self.policies
            .iter()
            .flat_map(|p| {
                let bytes = p.bytes_moved as f64;
                [
                    secs(per_event + bytes / measured::DMA_BYTES_PER_S),
                    secs(per_event + bytes / measured::CPU_BYTES_PER_S),
                ]
            })
            .collect()
    }

    /// Predicted QEMU time of the whole replay.
    pub fn qemu_estimate(&self) -> Duration {
        let per_event = self.events as f64 * measured::NS_PER_EVENT * 1e-9;
        let copies: f64 = self
            .policies
            .iter()
            .map(|p| {
                p.bytes_moved as f64
                    * (1.0 / measured::DMA_BYTES_PER_S + 1.0 / measured::CPU_BYTES_PER_S)
            })
            .sum();
        let secs = measured::BOOT_S + self.runs() as f64 * per_event + copies;
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }

    /// The prediction in words, for the terminal.
    pub fn describe(&self, estimate: Duration) -> String {
        let moved: u64 = self.policies.iter().map(|p| p.bytes_moved).sum();
        let per_policy: Vec<String> = self
            .policies
            .iter()
            .map(|p| format!("{} {}", p.policy, crate::size::mib(p.bytes_moved)))
            .collect();
        format!(
            "host: pool {}, backing heap {}: holds the simulator's peak overflow of {} plus {} for the firmware\n\
             host: the simulator predicts {} moved per mover ({}) over {} runs of {} events; \
             at QEMU's measured rates (DMA {:.0} MB/s, CPU {:.0} MB/s, {:.1} us per event) about {} under QEMU",
            crate::size::mib(self.pool_bytes),
            crate::size::mib(self.heap_bytes),
            crate::size::mib(peak_overflow(&self.policies)),
            crate::size::mib(layout::MIN_HEAP as u64),
            crate::size::mib(moved),
            per_policy.join(", "),
            self.runs(),
            self.events,
            measured::DMA_BYTES_PER_S / 1e6,
            measured::CPU_BYTES_PER_S / 1e6,
            measured::NS_PER_EVENT / 1e3,
            seconds(estimate)
        )
    }
}

/// A duration as `95 s` or `1 h 12 min`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s / 60 % 60),
    }
}

/// The overall limit when `--timeout` is not given: three times the
/// prediction (QEMU's speed varies with the host's load) plus two minutes.
pub fn scaled_limit(estimate: Duration) -> Duration {
    estimate
        .saturating_mul(3)
        .saturating_add(Duration::from_secs(crate::qemu::DEFAULT_TIMEOUT_SECS))
}

/// A clock that stands still: the simulator's times are not needed here.
struct Still;

impl Clock for Still {
    fn now_ns(&mut self) -> u64 {
        0
    }
    fn timer(&self) -> Timer {
        Timer {
            name: "none (the pre-boot check)".into(),
            hz: 1_000_000_000,
        }
    }
}

/// Replays `trace` in a pool of `pool_bytes` under every policy, as the
/// firmware will (4 KiB placement), with an instant model mover.
fn simulate(trace: &trace::binary::BinaryTrace<'_>, pool_bytes: u64) -> Result<Vec<PolicyWork>> {
    let events = trace.event_count();
    let configs: Vec<ReplayConfig> = Policy::ALL
        .iter()
        .enumerate()
        .map(|(run, &policy)| ReplayConfig {
            pool_bytes,
            alignment: 4096,
            samples: 0,
            snapshots: 0,
            progress_updates: 0,
            ..ReplayConfig::new(run as u16, policy, events)
        })
        .collect();
    let outcomes = replay_all(
        &configs,
        || trace.events(),
        |_| SimMover::none(ModelMover::instant()),
        || Still,
        |_, _| {},
    );
    configs
        .iter()
        .zip(outcomes)
        .map(|(config, outcome)| {
            let result = outcome.map_err(|e| {
                anyhow::anyhow!(
                    "the simulator cannot replay the trace ({}): {e}",
                    config.policy
                )
            })?;
            Ok(PolicyWork {
                policy: config.policy,
                peak_overflow_bytes: result.peak_overflow_bytes,
                bytes_moved: result.bytes_moved,
            })
        })
        .collect()
}

/// Before a trace is pushed to a board: the board's heap must hold the
/// trace itself and then the replay's peak overflow under every policy (as
/// the simulator finds it for the pool the board will use), plus the
/// firmware's own allocations. The board's memory is only known from its
/// Ready, so this is checked there rather than before the build, as under QEMU.
pub fn check_board(
    trace_bytes: &[u8],
    pool_bytes: u64,
    room: crate::board::BoardRoom,
) -> Result<()> {
    let trace = trace::binary::BinaryTrace::parse(trace_bytes)
        .map_err(|e| anyhow::anyhow!("the compiled trace: {e}"))?;
    let pool_bytes = if pool_bytes == 0 {
        room.pool_bytes
    } else {
        pool_bytes
    };
    let work = simulate(&trace, pool_bytes)?;
    let overflow = peak_overflow(&work);
    let need = (trace_bytes.len() as u64).saturating_add(layout::heap_needed(overflow) as u64);
    if need <= room.heap_free_bytes {
        return Ok(());
    }
    let per_policy = overflow_by_policy(&work);
    bail!(
        "the board's heap cannot hold this replay: it has {} free, and needs {} for the trace, \
         the simulator's peak overflow of {} at a {} pool ({}) and {} for the firmware's own allocations; \
         a pool closer to the trace's peak live size ({}) overflows less",
        crate::size::mib(room.heap_free_bytes),
        crate::size::mib(trace_bytes.len() as u64),
        crate::size::mib(overflow),
        crate::size::mib(pool_bytes),
        per_policy,
        crate::size::mib(layout::MIN_HEAP as u64),
        crate::size::mib(trace.peak_live_bytes()),
    )
}

/// The `.coherent` section of the firmware ELF, which the pool follows.
pub fn coherent_range(elf: &[u8]) -> Result<Range<usize>> {
    let file = object::File::parse(elf).context("the firmware ELF does not parse")?;
    let address = |name: &str| -> Result<usize> {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address() as usize)
            .with_context(|| format!("the firmware ELF has no symbol {name} (see linker.ld)"))
    };
    Ok(address("__coherent_start")?..address("__coherent_end")?)
}

/// The largest peak overflow over `work`.
/// "first-fit 64.0 MiB, compact 64.0 MiB, ...": each policy's peak overflow.
fn overflow_by_policy(work: &[PolicyWork]) -> String {
    work.iter()
        .map(|p| format!("{} {}", p.policy, crate::size::mib(p.peak_overflow_bytes)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn peak_overflow(work: &[PolicyWork]) -> u64 {
    work.iter()
        .map(|p| p.peak_overflow_bytes)
        .max()
        .unwrap_or(0)
}

/// How many times [`largest_fitting_pool`] re-simulates at most.
const MAX_DESCENT_STEPS: usize = 32;

/// The largest pool below the one asked whose replay's overflow fits the
/// heap it leaves. A smaller pool leaves more heap but overflows more, so
/// the answer is found by descent: the largest pool whose heap holds the
/// overflow seen so far, re-simulated, until its own overflow fits too.
/// While the overflow does not shrink as the pool shrinks (the usual case),
/// no pool between a step and the one before it can fit, so the first fit
/// is the largest.
fn largest_fitting_pool(
    trace: &trace::binary::BinaryTrace<'_>,
    coherent: &Range<usize>,
    overflow_asked: u64,
) -> Result<Option<u64>> {
    let mut overflow = overflow_asked;
    let mut previous: Option<usize> = None;
    for _ in 0..MAX_DESCENT_STEPS {
        let need = layout::heap_needed(overflow);
        let Some(pool) = layout::largest_pool(Some(QEMU_ARM_MEMORY), coherent.clone(), need) else {
            return Ok(None);
        };
        if previous.is_some_and(|p| pool >= p) {
            return Ok(None);
        }
        let work = simulate(trace, pool as u64)?;
        let peak = peak_overflow(&work);
        if layout::heap_needed(peak) <= need {
            return Ok(Some(pool as u64));
        }
        overflow = peak;
        previous = Some(pool);
    }
    Ok(None)
}

/// Simulates the trace `build` embeds under every policy and refuses, with
/// the numbers, a replay whose overflow the backing heap cannot hold (or a
/// pool that does not fit at all); otherwise returns the predicted work.
pub fn check(build: &BuildOptions, built: &Built) -> Result<Work> {
    let source = build
        .trace
        .clone()
        .unwrap_or_else(|| crate::firmware::workspace_root().join(crate::firmware::DEFAULT_TRACE));
    let cache = crate::sim::cache_dir();
    let compiled = trace::cache::load(&source, trace::Mode::Lenient, Some(&cache))
        .with_context(|| format!("reading {}", source.display()))?;
    let trace = compiled
        .trace()
        .map_err(|e| anyhow::anyhow!("{}: {e}", source.display()))?;
    let elf =
        std::fs::read(&built.elf).with_context(|| format!("reading {}", built.elf.display()))?;
    let coherent = coherent_range(&elf)?;
    let pool_bytes = build.effective_pool_size();
    let work = simulate(&trace, pool_bytes)?;
    let need = layout::heap_needed(peak_overflow(&work));
    let layout = match layout::plan_with_heap(
        Some(QEMU_ARM_MEMORY),
        coherent.clone(),
        pool_bytes as usize,
        need,
    ) {
        Ok(layout) => layout,
        Err(e @ LayoutError::HeapTooSmall { heap, .. }) => {
            let per_policy = overflow_by_policy(&work);
            let largest = largest_fitting_pool(&trace, &coherent, peak_overflow(&work))?;
            bail!(
                "the backing heap cannot hold this replay's overflow: with a {} pool the firmware's heap is {}, \
                 and the simulator's peak overflow is {} ({}) plus {} for the firmware's own allocations ({e}); {}",
                crate::size::mib(pool_bytes),
                crate::size::mib(heap as u64),
                crate::size::mib(peak_overflow(&work)),
                per_policy,
                crate::size::mib(layout::MIN_HEAP as u64),
                match largest {
                    Some(pool) => format!("the largest pool that fits is {} (--pool-size {}MiB)", crate::size::mib(pool), pool >> 20),
                    None => "no pool size fits: the trace's overflow exceeds the board's memory".into(),
                }
            );
        }
        Err(e) => bail!("{e}"),
    };
    Ok(Work {
        events: trace.event_count(),
        pool_bytes,
        heap_bytes: layout.heap.len() as u64,
        policies: work,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three 32 MiB buffers, each used (paged in) in turn.
    fn three_big_buffers() -> Vec<u8> {
        use trace::{Event, EventKind};
        let mut events = Vec::new();
        for buffer in 0..3u32 {
            let at = u64::from(buffer) * 10;
            events.push(Event {
                time_us: at,
                buffer,
                kind: EventKind::Create {
                    size: 32 << 20,
                    unmoveable: false,
                },
            });
            events.push(Event {
                time_us: at + 1,
                buffer,
                kind: EventKind::Use,
            });
        }
        trace::binary::encode(events, "three").unwrap()
    }

    #[test]
    fn a_board_whose_heap_cannot_hold_the_overflow_is_refused_with_the_numbers() {
        let trace = three_big_buffers();
        let room = |heap_free_bytes| crate::board::BoardRoom {
            pool_bytes: 80 << 20,
            heap_free_bytes,
        };
        // A 32 MiB pool holds one of them: two are out, 64 MiB of overflow.
        let error = check_board(&trace, 32 << 20, room(40 << 20))
            .unwrap_err()
            .to_string();
        assert!(error.contains("has 40.0 MiB free"), "{error}");
        assert!(
            error.contains("peak overflow of 64.0 MiB at a 32.0 MiB pool"),
            "{error}"
        );
        assert!(check_board(&trace, 32 << 20, room(200 << 20)).is_ok());
        // 0 asks for the board's own pool (80 MiB: one buffer out).
        let error = check_board(&trace, 0, room(20 << 20))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("peak overflow of 32.0 MiB at a 80.0 MiB pool"),
            "{error}"
        );
    }

    #[test]
    fn limits_scale_with_the_estimate_and_saturate() {
        assert_eq!(
            scaled_limit(Duration::from_secs(10)),
            Duration::from_secs(150)
        );
        assert_eq!(scaled_limit(Duration::MAX), Duration::MAX);
        assert_eq!(seconds(Duration::from_secs(95)), "95 s");
        assert_eq!(seconds(Duration::from_secs(4000)), "66 min 40 s");
        assert_eq!(seconds(Duration::from_secs(7300)), "2 h 1 min");
    }

    #[test]
    fn the_estimate_grows_with_bytes_moved() {
        let work = |moved| Work {
            events: 1000,
            pool_bytes: 16 << 20,
            heap_bytes: 900 << 20,
            policies: vec![PolicyWork {
                policy: Policy::FirstFit,
                peak_overflow_bytes: 0,
                bytes_moved: moved,
            }],
        };
        let small = work(0).qemu_estimate();
        let large = work(1 << 30).qemu_estimate();
        let copy = (1u64 << 30) as f64
            * (1.0 / measured::DMA_BYTES_PER_S + 1.0 / measured::CPU_BYTES_PER_S);
        assert!((large.as_secs_f64() - small.as_secs_f64() - copy).abs() < 1e-6);
        assert_eq!(work(0).runs(), 2);
        let plan = work(1 << 30).run_plan();
        assert_eq!(plan.len(), 2);
        let plan_total: f64 = plan.iter().map(Duration::as_secs_f64).sum();
        assert!((large.as_secs_f64() - measured::BOOT_S - plan_total).abs() < 1e-6);
        // A run that stays silent for minutes between write-outs gets a
        // watchdog to match; a short one keeps the default.
        assert_eq!(
            work(0).watchdog(),
            Duration::from_secs(crate::qemu::DEFAULT_WATCHDOG_SECS)
        );
        let long = work(100 << 30);
        let silence = long.longest_run().as_secs_f64() / 10.0;
        assert!((long.watchdog().as_secs_f64() - 3.0 * silence).abs() < 1e-3);
        assert!(long.watchdog() > Duration::from_secs(300));
        assert!(work(1 << 30).describe(large).contains("1024.0 MiB moved"));
    }
}
