//! The target tests of what QEMU can show of the silicon path: the run
//! conditions every replay carries, the UART isolation test and the
//! bring-up mode.

use super::{checks_passed, ensure, CheckContext};
use protocol::check;

/// What every firmware run under QEMU must carry: the copy routine, the
/// record write-outs, calibrations at both ends, and no flag (a run timed
/// with CNTPCT_EL0 is never flagged for its cycle counter, and QEMU answers
/// no throttled flags).
pub(super) fn check_conditions(name: &str, run: &records::RunResult) -> Result<(), String> {
    let c = run
        .conditions
        .as_ref()
        .ok_or_else(|| format!("{name}: no run conditions"))?;
    let routine = match run.mover {
        records::MoverKind::Dma => "DMA channel",
        _ => "ldp/stp",
    };
    ensure(c.copy_routine.contains(routine), || {
        format!("{name}: copy routine `{}`", c.copy_routine)
    })?;
    ensure(c.output_flushes >= 10 && c.output_bytes > 0, || {
        format!(
            "{name}: {} write-outs of {} bytes during the run",
            c.output_flushes, c.output_bytes
        )
    })?;
    ensure(c.cycle_timer_hz.is_none(), || {
        format!("{name}: timed with the cycle counter under QEMU")
    })?;
    ensure(
        c.start.calibration.cycles > 0 && c.end.calibration.cycles > 0,
        || format!("{name}: a calibration counted no cycles"),
    )?;
    ensure(
        c.start.throttled.is_none() && c.end.arm_clock_measured_hz.is_none(),
        || {
            format!("{name}: QEMU 7.2 answers neither 0x00030046 nor 0x00030047, yet a value was recorded")
        },
    )?;
    ensure(c.flags.is_empty() && c.evaluate().is_empty(), || {
        format!("{name}: flagged {:?} under QEMU", c.flags)
    })
}

/// The UART isolation test: per mover, a normal run and one with the UART
/// writer paced like a Pi's at 921600 baud (about 10.85 µs per character).
/// The paced run must spend at least that wire time writing (`output_ns`
/// grows with the bytes written), while its `replay_ns` stays within the
/// stated tolerance of the normal run's: the two differ by less than a fifth
/// of the paced run's output time. Had the output been inside the timed
/// interval, they would differ by all of it (about 5 s here, against runs of
/// 0.3 to 1.5 s); the fifth leaves room for QEMU's timing noise on a busy
/// host. Stall and the largest move latency may not grow by more than a
/// tenth of the output time.
pub(super) fn check_uart_isolation(cx: &CheckContext<'_>) -> Result<(), String> {
    let s = cx.session;
    ensure(s.exit_code == 0, || {
        format!("exit code {} (want 0)", s.exit_code)
    })?;
    let report = s.collector.report().map_err(|e| e.to_string())?;
    ensure(report.runs.len() == 4, || {
        format!(
            "{} runs, want 4 (DMA and CPU, each normal and paced)",
            report.runs.len()
        )
    })?;
    let character_ns = 10 * 1_000_000_000 / 921_600u64;
    for pair in report.runs.chunks(2) {
        let (normal, paced) = (&pair[0], &pair[1]);
        let name = format!("{}/{}", paced.policy, paced.mover);
        let (n, p) = match (&normal.conditions, &paced.conditions) {
            (Some(n), Some(p)) => (n, p),
            _ => return Err(format!("{name}: no run conditions")),
        };
        ensure(
            normal.mover == paced.mover && normal.moves == paced.moves,
            || format!("{name}: the two runs differ in mover or moves"),
        )?;
        let wire_ns = p.output_bytes * character_ns;
        ensure(p.output_ns >= wire_ns * 9 / 10, || {
            format!(
                "{name}: {} bytes written paced in {} ns, less than their wire time {wire_ns} ns",
                p.output_bytes, p.output_ns
            )
        })?;
        ensure(n.output_ns * 4 < p.output_ns, || {
            format!(
                "{name}: pacing did not show: output {} ns normal, {} ns paced",
                n.output_ns, p.output_ns
            )
        })?;
        let diff = normal.replay_ns.abs_diff(paced.replay_ns);
        ensure(diff < p.output_ns / 5, || {
            format!(
                "{name}: replay {} ns normal, {} ns paced (difference {diff} ns) with {} ns of paced output: UART time leaks into replay_ns",
                normal.replay_ns, paced.replay_ns, p.output_ns
            )
        })?;
        ensure(paced.stall_ns <= normal.stall_ns + p.output_ns / 10, || {
            format!(
                "{name}: stall {} ns normal, {} ns paced: write-out drains counted as stall",
                normal.stall_ns, paced.stall_ns
            )
        })?;
        ensure(
            paced.move_latency_ns.max <= normal.move_latency_ns.max * 2 + p.output_ns / 10,
            || {
                format!(
                    "{name}: max move latency {} ns normal, {} ns paced",
                    normal.move_latency_ns.max, paced.move_latency_ns.max
                )
            },
        )?;
        println!(
            "    {name}: replay {:.3} s normal / {:.3} s paced; output {:.3} s / {:.3} s for {} / {} bytes",
            normal.replay_ns as f64 / 1e9,
            paced.replay_ns as f64 / 1e9,
            n.output_ns as f64 / 1e9,
            p.output_ns as f64 / 1e9,
            n.output_bytes,
            p.output_bytes
        );
    }
    Ok(())
}

/// The bring-up mode under QEMU: its checks pass, the platform block shows
/// the clocks set and says *unavailable* for what QEMU does not answer, the
/// coherency probe sees no stale word (QEMU has no caches) and the table says
/// so, every size, route and engine was measured and exact, and the table is
/// marked QEMU.
pub(super) fn check_bringup(cx: &CheckContext<'_>) -> Result<(), String> {
    let s = cx.session;
    let wanted: Vec<String> = check::bringup::ALL.iter().map(|n| n.to_string()).collect();
    checks_passed(s, &wanted)?;
    let p = s.collector.platform.as_ref().ok_or("no platform record")?;
    ensure(
        p.arm_clock_set_hz.is_some() && p.core_clock_set_hz.is_some(),
        || "no clock read back after the set".into(),
    )?;
    ensure(
        p.arm_clock_measured_hz.is_none() && p.throttled.is_none(),
        || "QEMU 7.2 answers neither measured clocks nor throttled flags".into(),
    )?;
    for label in ["ARM clock measured", "throttled"] {
        ensure(
            s.log.iter().any(|l| {
                l.message.starts_with(label) && l.message.trim_end().ends_with("unavailable")
            }),
            || format!("the platform block does not show `{label}` as unavailable"),
        )?;
    }
    let bringup = s.collector.bringup_report().ok_or("no bring-up records")?;
    let b = &bringup.bringup;
    ensure(b.coherency.iter().all(|p| p.stale_words == 0), || {
        format!("stale words under QEMU: {:?}", b.coherency)
    })?;
    ensure(b.calibration.is_some_and(|c| c.cycles > 0), || {
        "no calibration".into()
    })?;
    ensure(
        b.copies.len() == 4 * 3 * 3 && b.copies.iter().all(|c| c.correct),
        || {
            format!(
                "{} measurements (want 36), some wrong: {:?}",
                b.copies.len(),
                b.copies.iter().filter(|c| !c.correct).collect::<Vec<_>>()
            )
        },
    )?;
    let table = report::bringup::render(&bringup);
    ensure(table.starts_with("Bring-up check (QEMU)"), || {
        format!("the table is not marked QEMU:\n{table}")
    })?;
    ensure(table.contains("QEMU: the stale case is not seen"), || {
        format!("the table does not say the stale case is not seen:\n{table}")
    })?;
    ensure(
        !table.contains("WRONG DATA") && table.contains("8 MiB"),
        || format!("the table:\n{table}"),
    )?;
    for line in table.lines() {
        println!("    {line}");
    }
    Ok(())
}
