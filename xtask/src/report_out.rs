//! Where every verb's report goes: `run`, `listen`, `sim` and `report` write
//! the report directory and show it through here, and nowhere else.

use anyhow::Context;
use records::Collector;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

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
    let written = replace_dir(out, |fresh| report::write_dir(collector, fresh))
        .with_context(|| format!("writing the report to {}", out.display()))?;
    let written = moved(written, out);
    show(&written);
    Ok(written)
}

/// Writes what a saved result allows (a record stream gives everything; a
/// report.json alone has no timeline or animation), then shows it.
pub fn write_loaded(loaded: &report::Loaded, out: &Path) -> anyhow::Result<report::Written> {
    let written = replace_dir(out, |fresh| report::write_loaded(loaded, fresh))
        .with_context(|| format!("writing the report to {}", out.display()))?;
    let written = moved(written, out);
    show(&written);
    Ok(written)
}

/// Writes a bring-up stream's directory (bringup.json, records.bin,
/// index.html) in place of `out`; `None`, and nothing touched, when the
/// stream holds no bring-up.
pub fn write_bringup(collector: &Collector, out: &Path) -> anyhow::Result<Option<Vec<PathBuf>>> {
    if collector.bringup_report().is_none() {
        return Ok(None);
    }
    let files = replace_dir(out, |fresh| {
        Ok(report::bringup::write_dir(collector, fresh)?.unwrap_or_default())
    })?;
    Ok(Some(files))
}

/// Writes a sweep's directory (sweep.json, sweep.csv, the curves, index.html)
/// in place of `out`; returns how many files it holds.
pub fn write_sweep(sweep: &report::sweep::Sweep, out: &Path) -> anyhow::Result<usize> {
    let files = replace_dir(out, |fresh| report::sweep::write_dir(sweep, fresh))
        .with_context(|| format!("writing the sweep to {}", out.display()))?;
    Ok(files.len())
}

/// The paths of a report written into a fresh directory, as they are now
/// that the directory is `out`.
fn moved(mut written: report::Written, out: &Path) -> report::Written {
    let fresh = std::mem::replace(&mut written.dir, out.to_path_buf());
    for file in &mut written.files {
        if let Ok(name) = file.strip_prefix(&fresh) {
            *file = out.join(name);
        }
    }
    written
}

/// True for what a report, a bring-up or a sweep directory holds: its files
/// (json, bin, csv, svg, html) and the `boot-N` reports of `listen` and
/// `report` (the earlier boots of a capture).
fn is_report_entry(name: &str, is_dir: bool) -> bool {
    if is_dir {
        return name
            .strip_prefix("boot-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    }
    [".json", ".bin", ".csv", ".svg", ".html"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Where a report directory lives: its parent and its own name, with a
/// path that exists resolved (so `--out .` names the directory it means).
fn place(out: &Path) -> anyhow::Result<(PathBuf, std::ffi::OsString)> {
    let out = if out.exists() {
        out.canonicalize()
            .with_context(|| format!("--out {}: cannot resolve it", out.display()))?
    } else {
        out.to_path_buf()
    };
    let Some(name) = out.file_name() else {
        anyhow::bail!("--out {}: does not name a directory", out.display());
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_owned()))
}

/// A directory beside `out` for the new report (`.NAME.new-PID`) or the old
/// one while it is replaced (`.NAME.old-PID`).
fn sibling(parent: &Path, name: &std::ffi::OsStr, role: &str) -> PathBuf {
    let mut sibling = std::ffi::OsString::from(".");
    sibling.push(name);
    sibling.push(format!(".{role}-{}", std::process::id()));
    parent.join(sibling)
}

/// Checks `--out` before any replay, so a long run never ends in an error
/// about where to write: it must not be a file, it must be creatable and
/// writable, and an existing directory must hold only what a report writes,
/// since the report replaces it whole. Creates its parent directories.
pub fn check_out(out: &Path) -> anyhow::Result<()> {
    if out.exists() && !out.is_dir() {
        anyhow::bail!("--out {}: is a file, not a directory", out.display());
    }
    if out.is_dir() {
        let entries = std::fs::read_dir(out)
            .with_context(|| format!("--out {}: cannot list it", out.display()))?;
        let mut foreign = Vec::new();
        for entry in entries {
            let entry =
                entry.with_context(|| format!("--out {}: cannot list it", out.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_report_entry(&name, entry.path().is_dir()) {
                foreign.push(name);
            }
        }
        if !foreign.is_empty() {
            foreign.sort();
            anyhow::bail!(
                "--out {}: holds {} entries that no report writes ({}{}); a report replaces its directory whole, \
                 so give a new or empty directory, or one a report was written to",
                out.display(),
                foreign.len(),
                foreign[..foreign.len().min(3)].join(", "),
                if foreign.len() > 3 { ", ..." } else { "" }
            );
        }
    }
    let (parent, name) = place(out)?;
    std::fs::create_dir_all(&parent).with_context(|| {
        format!(
            "--out {}: cannot create {}",
            out.display(),
            parent.display()
        )
    })?;
    // Writable: the directory the report will be written into can be made.
    let probe = sibling(&parent, &name, "check");
    std::fs::create_dir(&probe).with_context(|| {
        format!(
            "--out {}: cannot create a directory in {}",
            out.display(),
            parent.display()
        )
    })?;
    let _ = std::fs::remove_dir(&probe);
    Ok(())
}

/// Report directories this process wrote, so the earlier boots' reports
/// inside `--out` survive the main report replacing `--out` after them,
/// while those of an earlier run do not.
static WRITTEN_HERE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Runs `write` on a fresh directory beside `out`, then puts that directory
/// in place of `out`: the old report stays whole until the rename and is
/// removed after it, so a reused `--out` never mixes two runs' files and a
/// failed write leaves the old report as it was. Subdirectories of `out`
/// that this process wrote are carried over.
pub fn replace_dir<T>(
    out: &Path,
    write: impl FnOnce(&Path) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    check_out(out)?;
    let (parent, name) = place(out)?;
    let target = parent.join(&name);
    let fresh = sibling(&parent, &name, "new");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)
            .with_context(|| format!("removing the leftover {}", fresh.display()))?;
    }
    std::fs::create_dir(&fresh).with_context(|| format!("creating {}", fresh.display()))?;
    let value = match write(&fresh) {
        Ok(value) => value,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(error);
        }
    };
    let mut written_here = WRITTEN_HERE.lock().unwrap_or_else(|e| e.into_inner());
    for dir in written_here.iter() {
        if dir.parent() == Some(target.as_path()) && dir.is_dir() {
            if let Some(sub) = dir.file_name() {
                if !fresh.join(sub).exists() {
                    std::fs::rename(dir, fresh.join(sub))
                        .with_context(|| format!("keeping {}", dir.display()))?;
                }
            }
        }
    }
    if target.exists() {
        let old = sibling(&parent, &name, "old");
        if old.exists() {
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("removing the leftover {}", old.display()))?;
        }
        std::fs::rename(&target, &old)
            .with_context(|| format!("moving the old report {} aside", target.display()))?;
        if let Err(error) = std::fs::rename(&fresh, &target) {
            // Put the old report back rather than leave no report at all.
            let _ = std::fs::rename(&old, &target);
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(error)
                .with_context(|| format!("moving the new report to {}", target.display()));
        }
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the old report {}", old.display()))?;
    } else {
        std::fs::rename(&fresh, &target)
            .with_context(|| format!("moving the new report to {}", target.display()))?;
    }
    written_here.push(target);
    Ok(value)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_reused_directory_holds_only_the_new_report() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("nested").join("report");
        replace_dir(&out, |d| {
            std::fs::write(d.join("report.json"), "old")?;
            std::fs::write(d.join("timeline.csv"), "old")?;
            Ok(())
        })
        .unwrap();
        replace_dir(&out, |d| Ok(std::fs::write(d.join("report.json"), "new")?)).unwrap();
        assert_eq!(names(&out), ["report.json"]);
        assert_eq!(
            std::fs::read_to_string(out.join("report.json")).unwrap(),
            "new"
        );
        // Nothing is left beside it.
        assert_eq!(names(&tmp.path().join("nested")), ["report"]);
        // A failed write leaves the old report whole, and nothing beside it.
        let failed: anyhow::Result<()> = replace_dir(&out, |d| {
            std::fs::write(d.join("report.json"), "half")?;
            anyhow::bail!("the chart panicked")
        });
        assert_eq!(failed.unwrap_err().to_string(), "the chart panicked");
        assert_eq!(
            std::fs::read_to_string(out.join("report.json")).unwrap(),
            "new"
        );
        assert_eq!(names(&tmp.path().join("nested")), ["report"]);
    }

    #[test]
    fn earlier_boots_written_by_this_process_survive_the_main_one() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("listen");
        // An earlier run's report of an earlier boot: not carried over.
        replace_dir(&out.join("boot-2"), |d| {
            Ok(std::fs::write(d.join("report.json"), "earlier")?)
        })
        .unwrap();
        WRITTEN_HERE.lock().unwrap().clear();
        replace_dir(&out.join("boot-1"), |d| {
            Ok(std::fs::write(d.join("report.json"), "cut")?)
        })
        .unwrap();
        replace_dir(&out, |d| Ok(std::fs::write(d.join("report.json"), "main")?)).unwrap();
        assert_eq!(names(&out), ["boot-1", "report.json"]);
    }

    #[test]
    fn out_is_checked_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(
            check_out(&file).unwrap_err().to_string(),
            format!("--out {}: is a file, not a directory", file.display())
        );
        let below_a_file = file.join("report");
        assert!(check_out(&below_a_file)
            .unwrap_err()
            .to_string()
            .starts_with(&format!("--out {}: cannot create", below_a_file.display())));
        let home = tmp.path().join("home");
        std::fs::create_dir_all(home.join("src")).unwrap();
        std::fs::write(home.join("notes.txt"), "mine").unwrap();
        std::fs::write(home.join("report.json"), "{}").unwrap();
        let error = check_out(&home).unwrap_err().to_string();
        assert!(
            error.contains("holds 2 entries that no report writes (notes.txt, src)"),
            "{error}"
        );
        // Refused, and untouched.
        assert!(replace_dir(&home, |_| Ok(())).is_err());
        assert_eq!(names(&home), ["notes.txt", "report.json", "src"]);
    }
}
