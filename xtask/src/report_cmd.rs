//! `cargo xtask report` and `cargo xtask compare`: saved results, read again.

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
/// allows.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let loaded = report::load(&args.path)?;
    crate::report_out::write_loaded(&loaded, &crate::report_out::dir(args.out))?;
    Ok(ExitCode::SUCCESS)
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
