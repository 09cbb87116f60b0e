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
use crate::output::{Output, OutputDrain, PausableClock, SharedMover, FLUSH_EVERY_PROGRESS};
use crate::platform::Platform;
use crate::{mailbox, timer, uart};
use alloc::string::String;
use alloc::vec::Vec;
use bcm::dma_plan::Engine;
use core::cell::RefCell;
use pool::replay::{replay, MeasuredMover, RecordSink, ReplayConfig};
use protocol::exit_code;
use records::{ClockCheck, MoverKind, Policy, Record, RunConditions, RunResult, TraceInfo};
use trace::binary::BinaryTrace;

/// The compiled binary trace, embedded by `cargo xtask build` (which sets
/// `POOLBED_TRACE_BIN` to the file it compiled).
static TRACE: &[u8] = include_bytes!(env!(
    "POOLBED_TRACE_BIN",
    "POOLBED_TRACE_BIN is not set: build the firmware with `cargo xtask build` (or `cargo xtask run`), which compiles a trace and embeds it"
));

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

/// Sends the Trace record and logs the trace.
fn announce_trace(trace: &BinaryTrace<'_>, pool_bytes: usize) {
    send_record(&Record::Trace(TraceInfo {
        name: trace.name().into(),
        events: trace.event_count(),
        buffers: u64::from(trace.buffer_count()),
        peak_live_bytes: trace.peak_live_bytes(),
    }));
    defmt::info!(
        "trace {=str}: {=u64} events, {=u32} buffers, peak {=u64} KiB live; pool {=usize} KiB; verify {=str}",
        trace.name(),
        trace.event_count(),
        trace.buffer_count(),
        trace.peak_live_bytes() >> 10,
        pool_bytes >> 10,
        BUILT_VERIFY.name()
    );
}

/// The movers this platform runs: DMA (when a channel is usable), then CPU.
fn movers(platform: &Platform) -> Vec<MoverKind> {
    let mut movers = Vec::new();
    if platform.dma_channel.is_some() {
        movers.push(MoverKind::Dma);
    } else {
        defmt::warn!("no usable DMA channel on this platform: only the CPU mover runs");
    }
    movers.push(MoverKind::Cpu);
    movers
}

/// Replays the embedded trace; returns 0 when every run replayed every event
/// with no corrupted page, the number of failed runs otherwise, or
/// [`exit_code::TRACE_REFUSED`].
pub fn run(platform: &Platform, layout: &Layout) -> u32 {
    let Some(trace) = embedded_trace() else {
        return exit_code::TRACE_REFUSED;
    };
    replay_all(&trace, layout.pool.len(), platform, layout)
}

/// Replays `trace` under every policy and mover in the first `pool_bytes`
/// of the layout's pool (at most its length, a multiple of [`PAGE`]); the
/// return value as for [`run`].
pub fn replay_all(
    trace: &BinaryTrace<'_>,
    pool_bytes: usize,
    platform: &Platform,
    layout: &Layout,
) -> u32 {
    announce_trace(trace, pool_bytes);
    if !heap_can_hold(trace, pool_bytes, layout) {
        return exit_code::TRACE_REFUSED;
    }
    let events = trace.event_count();
    let output = Output::new();
    let started = timer::now_ns();
    let mut run_no: u16 = 0;
    let mut failed = 0u32;
    for policy in Policy::ALL {
        for &kind in &movers(platform) {
            let config = run_config(run_no, policy, events, pool_bytes);
            let result = run_with(kind, &config, trace, platform, layout, &output);
            if !judge_run(result.as_ref(), events) {
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

/// Whether the backing heap can hold the overflow every replay of `trace`
/// in a pool of `pool_bytes` reaches at least: what is live at the trace's
/// peak beyond the pool. When it cannot, every run would end in the
/// movers' "backing heap exhausted" panic, so none is started and the log
/// says why with the numbers (the host's `cargo xtask run` refuses such a
/// build before booting, from the simulator's exact peak overflow).
fn heap_can_hold(trace: &BinaryTrace<'_>, pool_bytes: usize, layout: &Layout) -> bool {
    let least_overflow = trace.peak_live_bytes().saturating_sub(pool_bytes as u64);
    let needed = bcm::layout::heap_needed(least_overflow);
    if needed <= layout.heap.len() {
        return true;
    }
    defmt::error!(
        "the backing heap cannot hold this replay: {=u64} KiB live at the trace's peak, {=usize} KiB pool, so at least {=u64} KiB overflow plus {=usize} KiB for the firmware, and the heap has {=usize} KiB; no run is made (rebuild with a smaller --pool-size, or a trace that fits)",
        trace.peak_live_bytes() >> 10,
        pool_bytes >> 10,
        least_overflow >> 10,
        bcm::layout::MIN_HEAP >> 10,
        layout.heap.len() >> 10
    );
    false
}

/// The UART isolation mode: first-fit with each mover, once with the UART as
/// it is and once with the writer paced as a Pi's PL011 at 921600 baud
/// (`uart::set_paced`), with four times the usual samples and snapshots so
/// there is plenty to write. The host's target test compares the pairs:
/// `replay_ns` must stay put while `output_ns` grows with the bytes written.
pub fn run_uart_isolation(platform: &Platform, layout: &Layout) -> u32 {
    let Some(trace) = embedded_trace() else {
        return exit_code::TRACE_REFUSED;
    };
    announce_trace(&trace, layout.pool.len());
    let events = trace.event_count();
    let output = Output::new();
    let mut run_no: u16 = 0;
    let mut failed = 0u32;
    for &kind in &movers(platform) {
        for paced in [false, true] {
            let mut config = run_config(run_no, Policy::FirstFit, events, layout.pool.len());
            config.samples *= 4;
            config.snapshots *= 4;
            uart::set_paced(paced);
            let result = run_with(kind, &config, &trace, platform, layout, &output);
            uart::flush();
            uart::set_paced(false);
            if let Some(r) = &result {
                let c = r.conditions.as_ref();
                defmt::info!(
                    "{=str}, UART {=str}: replay {=u64} us, output {=u64} us for {=u64} bytes in {=u32} write-outs",
                    kind.as_str(),
                    if paced { "paced at 921600 baud" } else { "as it is" },
                    r.replay_ns / 1000,
                    c.map_or(0, |c| c.output_ns / 1000),
                    c.map_or(0, |c| c.output_bytes),
                    c.map_or(0, |c| c.output_flushes)
                );
            }
            if !judge_run(result.as_ref(), events) {
                failed += 1;
            }
            run_no += 1;
        }
    }
    failed
}

fn run_config(run: u16, policy: Policy, events: u64, pool_bytes: usize) -> ReplayConfig {
    ReplayConfig {
        pool_bytes: pool_bytes as u64,
        // The movers copy whole pages; the pool must place in pages.
        alignment: PAGE as u64,
        ..ReplayConfig::new(run, policy, events)
    }
}

/// Judges a run and checks that its mover (gone by now) freed every backing
/// allocation.
fn judge_run(result: Option<&RunResult>, events: u64) -> bool {
    let leaked = backing_bytes();
    result.is_some_and(|r| judge(r, events, leaked))
}

/// One run of `config` with a fresh mover of `kind`, whose content stamps
/// are salted with the run number.
fn run_with(
    kind: MoverKind,
    config: &ReplayConfig,
    trace: &BinaryTrace<'_>,
    platform: &Platform,
    layout: &Layout,
    output: &Output,
) -> Option<RunResult> {
    let salt = u64::from(config.run);
    match (kind, platform.dma_channel) {
        (MoverKind::Dma, Some(n)) => match DmaChannel::open(n, engine_for(n, platform.emulated)) {
            Ok(ch) => {
                // SAFETY: the layout's pool, used by this mover alone until
                // it is dropped at the end of this call.
                let mover = unsafe { DmaMover::new(ch, layout.pool.clone(), salt, BUILT_VERIFY) };
                let routine = mover.routine();
                measured_run(config, trace, &RefCell::new(mover), routine, output)
            }
            Err(e) => {
                defmt::error!("cannot open DMA channel {=u8}: {}", n, e);
                None
            }
        },
        _ => {
            // SAFETY: the layout's pool, used by this mover alone until it
            // is dropped at the end of this call.
            let mover = unsafe { CpuMover::new(layout.pool.clone(), salt, BUILT_VERIFY) };
            let routine = String::from(crate::copy::ROUTINE);
            measured_run(config, trace, &RefCell::new(mover), routine, output)
        }
    }
}

/// The clocks now: the measured ARM clock, the throttled flags (the sticky
/// ones cleared first with `clear_sticky`) and a calibration of the cycle
/// counter. Never inside a timed interval: the calibration alone takes
/// `timer::CALIBRATION_US`.
fn clock_check(clear_sticky: bool) -> ClockCheck {
    let state = mailbox::query_clocks(clear_sticky).unwrap_or_default();
    ClockCheck {
        arm_clock_measured_hz: state.arm_measured_hz,
        throttled: state.throttled,
        calibration: timer::calibrate(timer::CALIBRATION_US),
    }
}

/// One run, its records buffered (`output`), bracketed by clock checks.
fn measured_run<M: MeasuredMover + OutputDrain>(
    config: &ReplayConfig,
    trace: &BinaryTrace<'_>,
    mover: &RefCell<M>,
    copy_routine: String,
    output: &Output,
) -> Option<RunResult> {
    output.start_run();
    let mut sink = RunSink {
        output,
        mover,
        start: clock_check(true),
        copy_routine,
        progress: 0,
        timed: false,
        result: None,
    };
    let outcome = replay(
        config,
        trace.events(),
        &mut SharedMover(mover),
        &mut sink,
        &mut PausableClock { output },
    );
    output.flush(false);
    match outcome {
        Ok(_) => sink.result,
        Err(e) => {
            defmt::error!(
                "run {=u16} ({=str}) stopped: {}",
                config.run,
                config.policy.as_str(),
                defmt::Display2Format(&e)
            );
            None
        }
    }
}

/// Where a run's records go: into the buffer, written out at the run's
/// start, every [`FLUSH_EVERY_PROGRESS`]th progress record and when full
/// (see `output`); the RunEnd record gets the run's conditions.
struct RunSink<'a, M> {
    output: &'a Output,
    mover: &'a RefCell<M>,
    start: ClockCheck,
    copy_routine: String,
    progress: u32,
    /// Between RunStart and RunEnd: write-outs count as the run's output.
    timed: bool,
    /// The result as sent, with its conditions.
    result: Option<RunResult>,
}

impl<M: OutputDrain> RunSink<'_, M> {
    fn push(&mut self, record: &Record) {
        let (output, mover, timed) = (self.output, self.mover, self.timed);
        output.push(record, &mut || write_out(output, mover, timed));
    }

    fn conditions(&self) -> RunConditions {
        let (output_ns, output_bytes, output_flushes) = self.output.run_totals();
        let mut c = RunConditions {
            copy_routine: self.copy_routine.clone(),
            output_ns,
            output_bytes,
            output_flushes,
            cycle_timer_hz: timer::stopwatch_cycle_hz(),
            start: self.start,
            end: clock_check(false),
            flags: Vec::new(),
        };
        c.flags = c.evaluate();
        c
    }
}

/// Writes the buffer out; inside the run (`timed`), the move in flight is
/// completed first and the time counts as output.
fn write_out<M: OutputDrain>(output: &Output, mover: &RefCell<M>, timed: bool) {
    if timed {
        mover.borrow_mut().complete_for_output();
    }
    output.flush(timed);
}

impl<M: OutputDrain> RecordSink for RunSink<'_, M> {
    fn record(&mut self, record: Record) {
        match &record {
            // Sent before the run's clock starts: written out at once, so
            // the host sees the run begin.
            Record::RunStart { .. } => {
                self.push(&record);
                self.output.flush(false);
                self.timed = true;
            }
            Record::Progress { .. } => {
                self.push(&record);
                self.progress += 1;
                if self.progress.is_multiple_of(FLUSH_EVERY_PROGRESS) {
                    write_out(self.output, self.mover, true);
                }
            }
            Record::RunEnd { run, result } => {
                self.timed = false;
                let mut result = result.clone();
                result.conditions = Some(self.conditions());
                self.push(&Record::RunEnd {
                    run: *run,
                    result: result.clone(),
                });
                self.result = Some(result);
            }
            _ => self.push(&record),
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
    for flag in r.flags() {
        defmt::warn!(
            "{=str}/{=str}: flagged {=str}: {=str}",
            name.0,
            name.1,
            flag.as_str(),
            flag.meaning()
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
