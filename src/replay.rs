//! The default mode: replay the embedded trace under every policy with every
//! mover, streaming records to the host.
//!
//! One boot runs, for each policy in [`Policy::ALL`], the DMA mover (when the
//! platform names a usable channel) and then the CPU mover, on the same pool
//! region. Each run starts from an empty pool and a fresh mover whose content
//! stamps carry the run number, so nothing a previous run left in the pool
//! can pass verification; every backing allocation is freed at the end of a
//! run and the firmware checks that none leaked.

use crate::dma::DmaChannel;
use crate::logger::send_record;
use crate::memory::Layout;
use crate::mover::{backing_bytes, CpuMover, DmaMover, BUILT_VERIFY, PAGE};
use crate::platform::Platform;
use crate::timer;
use alloc::vec::Vec;
use bcm::dma_plan::Engine;
use pool::replay::{replay, Clock, MeasuredMover, RecordSink, ReplayConfig};
use protocol::exit_code;
use records::{MoverKind, Policy, Record, RunResult, Timer, TraceInfo};
use trace::binary::BinaryTrace;

/// The compiled binary trace, embedded by `cargo xtask build` (which sets
/// `POOLBED_TRACE_BIN` to the file it compiled).
static TRACE: &[u8] = include_bytes!(env!(
    "POOLBED_TRACE_BIN",
    "POOLBED_TRACE_BIN is not set: build the firmware with `cargo xtask build` (or `cargo xtask run`), which compiles a trace and embeds it"
));

/// Sends every record over the UART.
struct UartSink;

impl RecordSink for UartSink {
    fn record(&mut self, record: &Record) {
        send_record(record);
    }
}

/// The stopwatch that also times every move (`timer::stopwatch_ticks`): the
/// PMU cycle counter on silicon, CNTPCT_EL0 under QEMU.
struct StopwatchClock;

impl Clock for StopwatchClock {
    fn now_ns(&mut self) -> u64 {
        timer::stopwatch_ns(timer::stopwatch_ticks())
    }

    fn timer(&self) -> Timer {
        timer::stopwatch_timer()
    }
}

/// The DMA engine the movers use on this platform: full 128-bit writes on
/// silicon; narrow writes under emulation, because newer QEMU releases flag
/// DEST_WIDTH as an error (QEMU 7.2 ignores the width bits either way).
pub fn engine_for(channel: u8, emulated: bool) -> Engine {
    let mut engine = Engine::for_channel(channel).expect("the platform picks channels 0 to 15");
    engine.wide_writes = !emulated;
    engine
}

/// Parses the embedded trace, or says why it cannot be used.
pub fn embedded_trace() -> Option<BinaryTrace<'static>> {
    if TRACE.is_empty() {
        defmt::error!(
            "no trace is embedded in this image: build it with `cargo xtask build --trace FILE`"
        );
        return None;
    }
    match BinaryTrace::parse(TRACE) {
        Ok(t) => Some(t),
        Err(e) => {
            defmt::error!(
                "the embedded trace ({=usize} bytes) is refused: {}",
                TRACE.len(),
                defmt::Display2Format(&e)
            );
            None
        }
    }
}

/// Replays the embedded trace; returns 0 when every run replayed every event
/// with no corrupted page, the number of failed runs otherwise, or
/// [`exit_code::TRACE_REFUSED`].
pub fn run(platform: &Platform, layout: &Layout) -> u32 {
    let Some(trace) = embedded_trace() else {
        return exit_code::TRACE_REFUSED;
    };
    let events = trace.event_count();
    send_record(&Record::Trace(TraceInfo {
        name: trace.name().into(),
        events,
        buffers: u64::from(trace.buffer_count()),
        peak_live_bytes: trace.peak_live_bytes(),
    }));
    let verify = BUILT_VERIFY;
    defmt::info!(
        "trace {=str}: {=u64} events, {=u32} buffers, peak {=u64} KiB live; pool {=usize} KiB; verify {=str}",
        trace.name(),
        events,
        trace.buffer_count(),
        trace.peak_live_bytes() >> 10,
        layout.pool.len() >> 10,
        verify.name()
    );
    let mut movers = Vec::new();
    if let Some(channel) = platform.dma_channel {
        movers.push((MoverKind::Dma, Some(channel)));
    } else {
        defmt::warn!("no usable DMA channel on this platform: only the CPU mover runs");
    }
    movers.push((MoverKind::Cpu, None));

    let started = timer::now_ns();
    let mut run_no: u16 = 0;
    let mut failed = 0u32;
    for policy in Policy::ALL {
        for &(kind, channel) in &movers {
            let config = ReplayConfig {
                pool_bytes: layout.pool.len() as u64,
                // The movers copy whole pages; the pool must place in pages.
                alignment: PAGE as u64,
                ..ReplayConfig::new(run_no, policy, events)
            };
            let salt = u64::from(run_no);
            let outcome = match (kind, channel) {
                (MoverKind::Dma, Some(n)) => {
                    match DmaChannel::open(n, engine_for(n, platform.emulated)) {
                        Ok(ch) => {
                            // SAFETY: the layout's pool, used by this
                            // mover alone until it is dropped after the run.
                            let mut mover =
                                unsafe { DmaMover::new(ch, layout.pool.clone(), salt, verify) };
                            one_run(&config, &trace, &mut mover)
                        }
                        Err(e) => {
                            defmt::error!("cannot open DMA channel {=u8}: {}", n, e);
                            None
                        }
                    }
                }
                _ => {
                    // SAFETY: the layout's pool, used by this mover alone
                    // until it is dropped after the run.
                    let mut mover = unsafe { CpuMover::new(layout.pool.clone(), salt, verify) };
                    one_run(&config, &trace, &mut mover)
                }
            };
            // The mover (and with it every backing allocation) is gone here.
            let leaked = backing_bytes();
            let ok = match &outcome {
                Some(result) => judge(result, events, leaked),
                None => false,
            };
            if !ok {
                failed += 1;
            }
            run_no += 1;
        }
    }
    let seconds_x10 = (timer::now_ns() - started) / 100_000_000;
    if failed == 0 {
        defmt::info!(
            "all {=u16} runs replayed every event with no corrupted page ({=u64}.{=u64} s)",
            run_no,
            seconds_x10 / 10,
            seconds_x10 % 10
        );
    } else {
        defmt::error!(
            "{=u32} of {=u16} runs failed (see the messages above)",
            failed,
            run_no
        );
    }
    failed
}

/// One policy with one mover.
fn one_run<M: MeasuredMover>(
    config: &ReplayConfig,
    trace: &BinaryTrace<'static>,
    mover: &mut M,
) -> Option<RunResult> {
    match replay(
        config,
        trace.events(),
        mover,
        &mut UartSink,
        &mut StopwatchClock,
    ) {
        Ok(result) => Some(result),
        Err(e) => {
            defmt::error!(
                "run {=u16} ({=str}, {=str}) stopped: {}",
                config.run,
                config.policy.as_str(),
                mover.kind().as_str(),
                defmt::Display2Format(&e)
            );
            None
        }
    }
}

/// Says whether a run is good, and why not.
fn judge(r: &RunResult, events: u64, leaked: usize) -> bool {
    let name = (r.policy.as_str(), r.mover.as_str());
    defmt::info!(
        "{=str}/{=str}: {=u64} events, {=u64} moves ({=u64} KiB), {=u64} rule-1 failures, p50 {=u64} ns, max {=u64} ns, {=u64} ms, {=u64} pages verified",
        name.0,
        name.1,
        r.events,
        r.moves,
        r.bytes_moved >> 10,
        r.rule1_failures,
        r.move_latency_ns.p50,
        r.move_latency_ns.max,
        r.replay_ns / 1_000_000,
        r.verified_pages
    );
    let mut ok = true;
    if r.corrupted_pages != 0 {
        defmt::error!(
            "{=str}/{=str}: {=u64} corrupted pages",
            name.0,
            name.1,
            r.corrupted_pages
        );
        ok = false;
    }
    if r.events != events {
        defmt::error!(
            "{=str}/{=str}: replayed {=u64} of {=u64} events",
            name.0,
            name.1,
            r.events,
            events
        );
        ok = false;
    }
    if r.dma_fallbacks != 0 {
        defmt::warn!(
            "{=str}/{=str}: the CPU redid {=u64} DMA moves",
            name.0,
            name.1,
            r.dma_fallbacks
        );
    }
    if leaked != 0 {
        defmt::error!(
            "{=str}/{=str}: {=usize} bytes of backing store leaked",
            name.0,
            name.1,
            leaked
        );
        ok = false;
    }
    ok
}
