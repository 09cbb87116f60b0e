//! The allocation bench's target test (issue 13): a short `alloc-bench`
//! under QEMU (a few calls per size, every word checked) must hand out only
//! zeroed memory in every zeroing variant, report all four variants at all
//! four sizes on both backgrounds, and the deferred variant must have served
//! some allocations from space the background fill had already zeroed.

use crate::firmware::Built;
use crate::qemu::{FirmwareCommand, Limits};
use anyhow::{bail, Result};
use records::{Background, ZeroVariant};
use std::time::Duration;

/// Calls per size: enough for the deferred queue to have filled a freed
/// range before the next allocation takes it (the second call onwards).
const CALLS: u16 = 4;

pub fn short(built: &Built, timeout: Duration) -> Result<String> {
    let session = crate::run::boot_and_collect_with_argument(
        built,
        Some(FirmwareCommand::AllocBench),
        crate::bench_alloc::argument(Some(CALLS), true),
        Limits::with_overall(timeout),
        &mut |_| {},
    )?;
    if let Some(why) = &session.stopped {
        bail!("{why}");
    }
    let rows = &session.collector.alloc_bench;
    let failures: u64 = rows.iter().map(|r| r.zero_failures).sum();
    if failures > 0 || session.exit_code != 0 {
        bail!(
            "{failures} allocations handed out non-zero memory (exit code {})",
            session.exit_code
        );
    }
    for background in Background::ALL {
        for variant in ZeroVariant::ALL {
            for size in [4u64 << 10, 1 << 20, 8 << 20, 32 << 20] {
                let row = rows
                    .iter()
                    .find(|r| r.background == background && r.variant == variant && r.size == size)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "no row for {} B {} on the {} pool",
                            size,
                            variant.name(),
                            background.name()
                        )
                    })?;
                if row.calls != u64::from(CALLS) || !row.verify_full {
                    bail!("row {row:?}: want {CALLS} calls, every word verified");
                }
            }
        }
    }
    let served: u64 = rows
        .iter()
        .filter(|r| r.variant == ZeroVariant::Deferred)
        .map(|r| r.served_prezeroed)
        .sum();
    if served == 0 {
        bail!("the deferred variant served no allocation from pre-zeroed space");
    }
    if session.collector.source() != records::Source::Qemu {
        bail!("the rows are not labelled QEMU");
    }
    Ok(format!(
        "{} rows, no non-zero memory, deferred served {served} allocations pre-zeroed",
        rows.len()
    ))
}
