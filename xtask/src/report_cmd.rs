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
/// A record stream of several boots (saved streams concatenated) gives one
/// report per boot: the last in the out directory, the earlier ones in
/// `boot-N` under it. A report that is incomplete (cut short, frames lost)
/// is written, then the verb fails, so nothing claims success.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let out = crate::report_out::dir(args.out);
    let stream = record_stream_path(&args.path);
    let incomplete = match stream {
        Some(path) => {
            let boots = report::stream::load_boots(&path)?;
            let Some((last, earlier)) = boots.split_last() else {
                anyhow::bail!(
                    "{} holds no report (no trace, run or check)",
                    path.display()
                );
            };
            let mut incomplete = Vec::new();
            let dirs = (1..).map(|n| out.join(format!("boot-{n}")));
            for (n, (collector, dir)) in earlier
                .iter()
                .zip(dirs)
                .chain(std::iter::once((last, out.clone())))
                .enumerate()
            {
                if boots.len() > 1 {
                    println!(
                        "host: boot {} of {}, report in {}",
                        n + 1,
                        boots.len(),
                        dir.display()
                    );
                }
                let written = crate::report_out::write(collector, &dir)?;
                if written.report.incomplete {
                    incomplete.push((n + 1, written.report.lost_frames, dir));
                }
            }
            incomplete
        }
        None => {
            let loaded = report::load(&args.path)?;
            let written = crate::report_out::write_loaded(&loaded, &out)?;
            if written.report.incomplete {
                vec![(1, written.report.lost_frames, out)]
            } else {
                Vec::new()
            }
        }
    };
    if !incomplete.is_empty() {
        let each: Vec<String> = incomplete
            .iter()
            .map(|(boot, lost, dir)| {
                format!("boot {boot} ({lost} frame(s) lost; {})", dir.display())
            })
            .collect();
        anyhow::bail!("the report is incomplete: {}", each.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// The record stream `path` names: itself, or a directory's records.bin
/// (which a directory's report is loaded from when it has one).
fn record_stream_path(path: &std::path::Path) -> Option<std::path::PathBuf> {
    let file = if path.is_dir() {
        path.join("records.bin")
    } else {
        path.to_path_buf()
    };
    let mut head = [0u8; 8];
    let mut f = std::fs::File::open(&file).ok()?;
    std::io::Read::read_exact(&mut f, &mut head).ok()?;
    report::stream::looks_like_stream(&head).then_some(file)
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
