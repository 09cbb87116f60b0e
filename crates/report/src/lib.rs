//! Everything people read about a replay, built from its records.
//!
//! A replay (firmware under QEMU or on a Pi, or the host simulator) streams
//! [`records::Record`]s; the host feeds them to a [`records::Collector`] and,
//! while it does, to a [`live::Progress`] for the progress bars. At the end
//! [`write_dir`] writes the report directory:
//!
//! * `report.json` — [`records::Report`], docs/design.md, section 5;
//! * `records.bin` — the record stream again ([`stream`]), so everything can be rebuilt;
//! * `timeline.csv` — one line per sampled event;
//! * `occupancy.svg`, `fragmentation.svg`, `overflow.svg` — the policies over trace time;
//! * `move_latency.svg` — latency against move size, per mover;
//! * `index.html` — one self-contained page: platform, table, charts and the pool animation.
//!
//! [`table::render`] gives the terminal table, [`compare::render`] two results side by side.
//! A bring-up stream gets its own table and directory ([`bringup`]).

pub mod alloc_bench;
pub mod bringup;
pub mod charts;
pub mod compare;
pub mod html;
pub mod live;
pub mod metrics;
pub mod stream;
pub mod sweep;
pub mod table;
pub mod timeline;
pub mod units;

use anyhow::Context;
use records::{Collector, MoverKind, Report, RunDetail};
use std::path::{Path, PathBuf};

/// What [`write_dir`] wrote.
#[derive(Debug)]
pub struct Written {
    pub dir: PathBuf,
    /// Every file written, in the order written.
    pub files: Vec<PathBuf>,
    /// The summary that went into report.json.
    pub report: Report,
    /// Things a reader should know (runs that never finished, charts without data).
    pub notes: Vec<String>,
}

impl Written {
    /// The path of a written file by name, e.g. `"index.html"`.
    pub fn file(&self, name: &str) -> Option<&Path> {
        self.files
            .iter()
            .map(PathBuf::as_path)
            .find(|p| p.file_name().is_some_and(|n| n == name))
    }
}

/// A report as loaded from disk: a summary alone (report.json) or the full
/// record stream (records.bin).
pub enum Loaded {
    Summary(Report),
    Full(Collector),
}

impl Loaded {
    /// The summary, whichever was loaded.
    pub fn report(&self) -> anyhow::Result<Report> {
        match self {
            Loaded::Summary(r) => Ok(r.clone()),
            Loaded::Full(c) => c.report().map_err(|e| anyhow::anyhow!("{e}")),
        }
    }
}

/// Loads a saved report: a `report.json`, a `records.bin`, or a report
/// directory (its records.bin when present, else its report.json).
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    if path.is_dir() {
        let records = path.join("records.bin");
        if records.is_file() {
            return load(&records);
        }
        let json = path.join("report.json");
        if json.is_file() {
            return load(&json);
        }
        anyhow::bail!(
            "{} holds neither records.bin nor report.json",
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if stream::looks_like_stream(&bytes) {
        let records = stream::read(bytes.as_slice())
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(Loaded::Full(stream::collect(records)?));
    }
    let report: Report = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is neither a record stream nor a report.json (docs/design.md, section 5)",
            path.display()
        )
    })?;
    Ok(Loaded::Summary(report))
}

/// Writes the full report directory from a collector (see the crate docs).
pub fn write_dir(collector: &Collector, dir: &Path) -> anyhow::Result<Written> {
    let report = collector
        .report()
        .map_err(|e| anyhow::anyhow!("cannot build the report: {e}"))?;
    let mut w = Writer::new(dir, report)?;
    for run in collector.runs.iter().filter(|r| r.result.is_none()) {
        w.notes.push(format!(
            "run {} ({}/{}) did not finish: {} of {} events replayed; it is not in the table",
            run.run, run.policy, run.mover, run.events_done, run.events
        ));
    }
    w.json()?;
    // Two halves of about equal work on two threads: the animation's data
    // (most of the page) beside the record stream, the CSV and the charts.
    let report = &w.report;
    let (files, page_start) = rayon::join(
        || -> anyhow::Result<_> {
            let bin = stream::encode(&stream::records_of(collector))?;
            let csv = timeline::csv(collector);
            let charts = charts::all(report, Some(collector))?;
            Ok((bin, csv, charts))
        },
        || html::page_start(report, Some(collector)),
    );
    let (bin, csv, charts) = files?;
    w.put("records.bin", &bin)?;
    w.put("timeline.csv", csv.as_bytes())?;
    for chart in &charts {
        w.put(chart.file, chart.svg.as_bytes())?;
    }
    w.notes.extend(charts.iter().filter_map(|c| c.note.clone()));
    let mut page = page_start;
    html::page_end(&mut page, &charts);
    w.put("index.html", page.as_bytes())?;
    Ok(w.done())
}

/// Writes what a summary alone allows: report.json, the latency chart (from the
/// per-size-class latencies) and index.html without timeline charts or animation.
pub fn write_summary_dir(report: &Report, dir: &Path) -> anyhow::Result<Written> {
    let mut w = Writer::new(dir, report.clone())?;
    w.json()?;
    let charts = charts::all(report, None)?;
    for chart in &charts {
        w.put(chart.file, chart.svg.as_bytes())?;
    }
    w.notes.extend(charts.iter().filter_map(|c| c.note.clone()));
    w.notes
        .push("a summary alone has no samples or snapshots: no timeline, no animation".into());
    let page = html::page(report, None, &charts);
    w.put("index.html", page.as_bytes())?;
    Ok(w.done())
}

/// Writes whichever [`Loaded`] holds.
pub fn write_loaded(loaded: &Loaded, dir: &Path) -> anyhow::Result<Written> {
    match loaded {
        Loaded::Summary(r) => write_summary_dir(r, dir),
        Loaded::Full(c) => write_dir(c, dir),
    }
}

struct Writer {
    dir: PathBuf,
    files: Vec<PathBuf>,
    report: Report,
    notes: Vec<String>,
}

impl Writer {
    fn new(dir: &Path, report: Report) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the report directory {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            report,
            notes: Vec::new(),
        })
    }

    fn put(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        self.files.push(path);
        Ok(())
    }

    fn json(&mut self) -> anyhow::Result<()> {
        let mut json = serde_json::to_string_pretty(&self.report)?;
        json.push('\n');
        self.put("report.json", json.as_bytes())
    }

    fn done(self) -> Written {
        Written {
            dir: self.dir,
            files: self.files,
            report: self.report,
            notes: self.notes,
        }
    }
}

/// The runs whose samples and snapshots stand for their policy in charts and
/// the animation: one mover only, because placement does not depend on the
/// mover (the modelled one when present, else DMA, else CPU), and per policy the
/// first such run.
pub fn representative_runs(collector: &Collector) -> (Option<MoverKind>, Vec<&RunDetail>) {
    let has_data = |r: &&RunDetail| !r.samples.is_empty() || !r.snapshots.is_empty();
    let mover = [MoverKind::Model, MoverKind::Dma, MoverKind::Cpu]
        .into_iter()
        .find(|m| {
            collector
                .runs
                .iter()
                .filter(has_data)
                .any(|r| r.mover == *m)
        });
    let Some(mover) = mover else {
        return (None, Vec::new());
    };
    let mut runs: Vec<&RunDetail> = Vec::new();
    for r in collector
        .runs
        .iter()
        .filter(has_data)
        .filter(|r| r.mover == mover)
    {
        if !runs.iter().any(|x| x.policy == r.policy) {
            runs.push(r);
        }
    }
    runs.sort_by_key(|r| r.policy);
    (Some(mover), runs)
}
