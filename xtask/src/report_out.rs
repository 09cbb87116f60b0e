//! Where every verb's report goes: `run`, `listen`, `sim` and `report` write
//! the report directory and show it through here, and nowhere else.

use anyhow::Context;
use records::Collector;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// `--wide`: every column in the end table. Set once from the command line.
static WIDE: AtomicBool = AtomicBool::new(false);

/// Whether the end table shows every column (`--wide`).
pub fn set_wide(wide: bool) {
    WIDE.store(wide, Ordering::Relaxed);
}

/// The report directory: `--out DIR`, or `target/report`.
pub fn dir(out: Option<PathBuf>) -> PathBuf {
    out.unwrap_or_else(|| crate::firmware::target_dir().join("report"))
}

/// Writes the full report directory from the records of a replay, then shows it.
pub fn write(collector: &Collector, out: &Path) -> anyhow::Result<report::Written> {
    let written = report::write_dir(collector, out)
        .with_context(|| format!("writing the report to {}", out.display()))?;
    show(&written);
    Ok(written)
}

/// Writes what a saved result allows (a record stream gives everything; a
/// report.json alone has no timeline or animation), then shows it.
pub fn write_loaded(loaded: &report::Loaded, out: &Path) -> anyhow::Result<report::Written> {
    let written = report::write_loaded(loaded, out)
        .with_context(|| format!("writing the report to {}", out.display()))?;
    show(&written);
    Ok(written)
}

/// Prints what a report directory holds: the table of every run, the notes,
/// and where the files are.
fn show(written: &report::Written) {
    print!(
        "{}",
        report::table::render_for_stdout(&written.report, WIDE.load(Ordering::Relaxed))
    );
    for note in &written.notes {
        println!("note: {note}");
    }
    println!(
        "report: {} ({} files; open index.html)",
        written.dir.display(),
        written.files.len()
    );
}
