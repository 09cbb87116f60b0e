//! `cargo xtask report` and `cargo xtask compare`: saved results, read again.

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// A report.json, a records.bin, or a report directory.
    pub path: PathBuf,
    /// Directory to write the report into (default target/report).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The first result (report.json, records.bin or a report directory).
    pub a: PathBuf,
    /// The second result.
    pub b: PathBuf,
}

/// `cargo xtask report PATH`: the table again, and every file the saved data
/// allows (a record stream gives everything; a report.json alone has no
/// timeline or animation).
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let loaded = report::load(&args.path)?;
    let out = args
        .out
        .unwrap_or_else(|| crate::firmware::target_dir().join("report"));
    let written = report::write_loaded(&loaded, &out)
        .with_context(|| format!("writing the report to {}", out.display()))?;
    show(&written);
    Ok(ExitCode::SUCCESS)
}

/// Prints what a report directory holds: the table of every run, the notes,
/// and where the files are. The end of `run`, `sim` and `report` alike.
pub fn show(written: &report::Written) {
    print!("{}", report::table::render_for_stdout(&written.report));
    for note in &written.notes {
        println!("note: {note}");
    }
    println!(
        "report: {} ({} files; open index.html)",
        written.dir.display(),
        written.files.len()
    );
}

/// `cargo xtask compare A B`: runs matched by policy and mover, each metric
/// of A and B with the difference, and a warning when the sources differ.
pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let a = report::load(&args.a)?.report()?;
    let b = report::load(&args.b)?.report()?;
    let name = |p: &PathBuf| p.display().to_string();
    print!(
        "{}",
        report::compare::render(&a, &b, &name(&args.a), &name(&args.b))
    );
    Ok(ExitCode::SUCCESS)
}
