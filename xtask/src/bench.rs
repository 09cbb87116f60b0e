//! `cargo xtask bench`: what the simulator costs, in figures (never a test).
//!
//! 1. Floors: what cargo itself costs before any of our code runs.
//! 2. In process, per trace: parse (inflate + parse + encode), the cached
//!    load, replay per policy and end to end, in events per second.
//! 3. Whole process, per trace: the xtask binary and the user's
//!    `cargo xtask sim`, cold (`--no-cache`) and cached, one policy and all,
//!    and the report's share of the wall time.
//! 4. The placement scaling table: one placement at 1k, 10k and 100k live
//!    buffers, every policy.
//! 5. With `SEED_GIT` (a git dir of bpeel/cma-pool-log) and the anchors
//!    anchors scripts where `POOLBED_ANCHORS` points:
//!    the user's command side by side with the seed's Python pool and with
//!    its `test-drm-mm`, runs alternated so that the ratios survive a busy
//!    machine. Without them it says so and skips.

use crate::firmware::{target_dir, workspace_root};
use crate::size::parse_pool_size;
use anyhow::{bail, Context, Result};
use pool::model::ModelMover;
use pool::parallel::replay_all;
use pool::replay::{replay_modelled, Clock, RecordSink, ReplayConfig, SimMover};
use records::{Policy, Record, Timer};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// A trace to measure (repeat for several; default: every traces/*.log.gz).
    #[arg(long)]
    pub trace: Vec<PathBuf>,
    /// Whole-process runs of each command (pairs, for the comparisons).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Pool size of every run.
    #[arg(long, default_value = "128MiB", value_parser = parse_pool_size)]
    pub pool_size: u64,
    /// Only the in-process figures and the placement table.
    #[arg(long)]
    pub quick: bool,
}

/// The goals of issue 11, checked where they are measured.
const GOAL_COLD_VS_PYTHON: f64 = 40.0;
const GOAL_CACHED_VS_PYTHON: f64 = 80.0;
const GOAL_VS_DRM_MM: f64 = 3.0;
const GOAL_ALL_VS_ONE: f64 = 1.5;
const GOAL_SCALING: f64 = 1.5;
const GOAL_SMALL_VS_PYTHON: f64 = 3.0;
/// Traces above this many events are held to the ratio goals.
const BIG_TRACE: u64 = 100_000;

struct Discard;

impl RecordSink for Discard {
    fn record(&mut self, record: Record) {
        std::hint::black_box(record);
    }
}

struct Wall(Instant);

impl Clock for Wall {
    fn now_ns(&mut self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
    fn timer(&self) -> Timer {
        Timer {
            name: "host monotonic clock".into(),
            hz: 1_000_000_000,
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn best<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let r = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    Ok((best, out.expect("at least one run")))
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}

/// A whole-process command, its output discarded.
#[derive(Clone)]
struct Cmd {
    label: String,
    program: OsString,
    args: Vec<OsString>,
}

impl Cmd {
    fn new(label: &str, program: impl Into<OsString>, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Cmd {
        Cmd {
            label: label.into(),
            program: program.into(),
            args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
        }
    }

    /// Wall and CPU seconds of one run; a failing command is an error (a
    /// figure of a run that did not do its work would be meaningless).
    fn time(&self, dir: &Path) -> Result<Timed> {
        let cpu_before = children_cpu_s();
        let started = Instant::now();
        let status = Command::new(&self.program)
            .args(&self.args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {}", self.label))?;
        let wall = started.elapsed().as_secs_f64();
        if !status.success() {
            bail!("{} failed ({status})", self.label);
        }
        Ok(Timed {
            wall,
            cpu: children_cpu_s() - cpu_before,
        })
    }
}

/// One whole-process run.
#[derive(Clone, Copy, Debug)]
struct Timed {
    wall: f64,
    /// User + system time of the process and everything it waited for: on a
    /// busy machine the wall time grows, this much less.
    cpu: f64,
}

/// CPU seconds (user + system) of all the children waited for so far.
#[cfg(unix)]
fn children_cpu_s() -> f64 {
    // SAFETY: `rusage` is plain integers, for which all zeroes is a value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one `rusage` into the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return f64::NAN;
    }
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    s(usage.ru_utime) + s(usage.ru_stime)
}

#[cfg(not(unix))]
fn children_cpu_s() -> f64 {
    f64::NAN
}

fn walls(runs: &[Timed]) -> Vec<f64> {
    runs.iter().map(|t| t.wall).collect()
}

fn cpus(runs: &[Timed]) -> Vec<f64> {
    runs.iter().map(|t| t.cpu).collect()
}

/// Median over rounds of `a / b`, wall and CPU.
fn ratios(a: &[Timed], b: &[Timed]) -> (f64, f64) {
    let wall: Vec<f64> = a.iter().zip(b).map(|(a, b)| a.wall / b.wall).collect();
    let cpu: Vec<f64> = a.iter().zip(b).map(|(a, b)| a.cpu / b.cpu).collect();
    (median(&wall), median(&cpu))
}

/// Runs the commands in turn, `runs` rounds after one warm-up round: the
/// times of each command, round by round (so ratios can be taken within a
/// round, where the machine's load was about the same).
fn alternate(cmds: &[Cmd], runs: usize, dir: &Path) -> Result<Vec<Vec<Timed>>> {
    for c in cmds {
        c.time(dir)?;
    }
    let mut walls = vec![Vec::new(); cmds.len()];
    for _ in 0..runs.max(1) {
        for (c, w) in cmds.iter().zip(&mut walls) {
            w.push(c.time(dir)?);
        }
    }
    Ok(walls)
}

fn ms(s: f64) -> String {
    format!("{:.1}", s * 1e3)
}

fn mev(events: u64, s: f64) -> String {
    format!("{:.1}", events as f64 / s / 1e6)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "NO"
    }
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn bundled_traces(root: &Path) -> Result<Vec<PathBuf>> {
    let mut traces: Vec<PathBuf> = std::fs::read_dir(root.join("traces"))
        .context("listing traces/")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".log.gz"))
        .collect();
    traces.sort();
    Ok(traces)
}

/// `cargo xtask bench`.
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let root = workspace_root();
    let work = target_dir().join("bench");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let traces = if args.trace.is_empty() {
        bundled_traces(&root)?
    } else {
        args.trace.clone()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "bench: {} cores, load average {} (1, 5, 15 min) at the start; pool {} MiB",
        cores,
        load_average(),
        args.pool_size >> 20
    );
    if !args.quick {
        floors(&root, &work, args.runs)?;
    }
    let mut sizes = Vec::new();
    for trace in &traces {
        sizes.push(in_process(trace, args.pool_size)?);
    }
    if !args.quick {
        for (trace, &events) in traces.iter().zip(&sizes) {
            whole_process(&root, &work, trace, events, args.pool_size, args.runs)?;
        }
    }
    scaling();
    if !args.quick {
        references(&root, &work, &traces, &sizes, args.pool_size, args.runs)?;
    }
    println!("load average at the end: {}", load_average());
    Ok(ExitCode::SUCCESS)
}

/// What cargo costs before our code runs.
fn floors(root: &Path, work: &Path, runs: usize) -> Result<()> {
    // A trivial package in a workspace of its own: cargo's floor for `cargo run`.
    let tiny = work.join("floor");
    std::fs::create_dir_all(tiny.join("src"))?;
    std::fs::write(
        tiny.join("Cargo.toml"),
        "[package]\nname = \"floor\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )?;
    std::fs::write(tiny.join("src/main.rs"), "fn main() {}\n")?;
    let manifest = tiny.join("Cargo.toml");
    let tiny_target = work.join("floor-target");
    let status = Command::new(cargo())
        .args(["build", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &tiny_target)
        .status()
        .context("building the trivial package")?;
    if !status.success() {
        bail!("building the trivial package failed");
    }
    let exe = std::env::current_exe()?;
    let mut run_tiny = Cmd::new(
        "cargo run (trivial package, own workspace)",
        cargo(),
        &[&"run", &"--quiet", &"--manifest-path", &manifest],
    );
    run_tiny.program = "env".into();
    run_tiny.args.splice(
        0..0,
        [
            OsString::from(format!("CARGO_TARGET_DIR={}", tiny_target.display())),
            cargo(),
        ],
    );
    let cmds = [
        Cmd::new("cargo -V", cargo(), &[&"-V"]),
        run_tiny,
        Cmd::new(
            "cargo run of xtask/launcher (no deps, own workspace)",
            cargo(),
            &[
                &"run",
                &"--quiet",
                &"--manifest-path",
                &crate::lint::LAUNCHER_MANIFEST,
                &"--",
                &"--version",
            ],
        ),
        Cmd::new(
            "cargo xtask --version (launcher + exec)",
            cargo(),
            &[&"xtask", &"--version"],
        ),
        Cmd::new("xtask --version (the binary alone)", &exe, &[&"--version"]),
    ];
    let timed = alternate(&cmds, runs * 2, root)?;
    println!(
        "\n1. floors: whole process, ms: wall min / median, CPU median ({} runs)",
        runs * 2
    );
    for (c, t) in cmds.iter().zip(&timed) {
        println!(
            "   {:<56} {:>7} {:>7} {:>7}",
            c.label,
            ms(min(&walls(t))),
            ms(median(&walls(t))),
            ms(median(&cpus(t)))
        );
    }
    Ok(())
}

/// In-process figures of one trace; returns its event count.
fn in_process(path: &Path, pool_bytes: u64) -> Result<u64> {
    let name = trace::default_name(path);
    let (parse_s, compiled) = best(3, || {
        trace::cache::load(path, trace::Mode::Lenient, None)
            .with_context(|| format!("reading {}", path.display()))
    })?;
    let trace = compiled
        .trace()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let events = trace.event_count();
    let cache = tempdir_in_target("bench-cache")?;
    trace::cache::load(path, trace::Mode::Lenient, Some(&cache))?;
    let (cached_s, again) = best(3, || {
        trace::cache::load(path, trace::Mode::Lenient, Some(&cache)).map_err(Into::into)
    })?;
    anyhow::ensure!(
        again.from_cache,
        "{}: the cache was not used",
        path.display()
    );
    let _ = std::fs::remove_dir_all(&cache);
    println!(
        "\n2. {name} ({events} events), in process, best of 3\n   parse (inflate + parse + encode): {} ms, {} M events/s; cached load: {} ms, {} M events/s",
        ms(parse_s),
        mev(events, parse_s),
        ms(cached_s),
        mev(events, cached_s)
    );
    println!(
        "   {:<10} {:>10} {:>12} {:>14} {:>12}",
        "policy", "replay ms", "replay Mev/s", "parse+replay", "e2e Mev/s"
    );
    let config_of = |policy| ReplayConfig {
        pool_bytes,
        ..ReplayConfig::new(0, policy, events)
    };
    for policy in Policy::ALL {
        let config = config_of(policy);
        let (replay_s, _) = best(3, || {
            replay_modelled(
                &config,
                trace.events(),
                &mut SimMover::none(ModelMover::instant()),
                &mut Discard,
                &mut Wall(Instant::now()),
            )
            .map_err(|e| anyhow::anyhow!("{policy}: {e}"))
        })?;
        let (e2e_s, _) = best(2, || {
            let c = trace::cache::load(path, trace::Mode::Lenient, None)?;
            let t = c.trace().map_err(|e| anyhow::anyhow!("{e}"))?;
            replay_modelled(
                &config,
                t.events(),
                &mut SimMover::none(ModelMover::instant()),
                &mut Discard,
                &mut Wall(Instant::now()),
            )
            .map_err(|e| anyhow::anyhow!("{policy}: {e}"))
        })?;
        println!(
            "   {:<10} {:>10} {:>12} {:>14} {:>12}",
            policy.as_str(),
            ms(replay_s),
            mev(events, replay_s),
            ms(e2e_s),
            mev(events, e2e_s)
        );
    }
    let configs: Vec<ReplayConfig> = Policy::ALL
        .iter()
        .enumerate()
        .map(|(run, &policy)| ReplayConfig {
            run: run as u16,
            ..config_of(policy)
        })
        .collect();
    let (all_s, _) = best(3, || {
        let outcomes = replay_all(
            &configs,
            || trace.events(),
            |_| SimMover::none(ModelMover::instant()),
            || Wall(Instant::now()),
            |_, r| {
                std::hint::black_box(r);
            },
        );
        outcomes
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    println!(
        "   all four in parallel: {} ms ({} M events/s per policy)",
        ms(all_s),
        mev(events * configs.len() as u64, all_s)
    );
    Ok(events)
}

fn tempdir_in_target(name: &str) -> Result<PathBuf> {
    let dir = target_dir()
        .join("bench")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `sim` arguments for one whole-process run.
fn sim_args(
    work: &Path,
    trace: &Path,
    policy: &str,
    pool_bytes: u64,
    cached: bool,
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "sim".into(),
        "--trace".into(),
        trace.into(),
        "--policy".into(),
        policy.into(),
        "--pool-size".into(),
        pool_bytes.to_string().into(),
        "--json".into(),
        work.join("o.json").into(),
        "--out".into(),
        work.join("o").into(),
    ];
    if !cached {
        a.push("--no-cache".into());
    }
    a
}

fn sim_cmd(
    via_cargo: bool,
    work: &Path,
    trace: &Path,
    policy: &str,
    pool: u64,
    cached: bool,
) -> Cmd {
    let args = sim_args(work, trace, policy, pool, cached);
    let label = format!(
        "{}sim --policy {policy}{}",
        if via_cargo { "cargo xtask " } else { "xtask " },
        if cached { "" } else { " --no-cache" }
    );
    if via_cargo {
        let mut a: Vec<OsString> = vec!["xtask".into()];
        a.extend(args);
        Cmd {
            label,
            program: cargo(),
            args: a,
        }
    } else {
        Cmd {
            label,
            program: std::env::current_exe()
                .map(Into::into)
                .unwrap_or_else(|_| "xtask".into()),
            args,
        }
    }
}

/// The report's share of a run, from `sim --timings`.
fn report_share(root: &Path, work: &Path, trace: &Path, policy: &str, pool: u64) -> Result<String> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(sim_args(work, trace, policy, pool, true))
        .arg("--timings")
        .current_dir(root)
        .stderr(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("timings: "))
        .unwrap_or("(no timings line)")
        .to_string())
}

fn whole_process(
    root: &Path,
    work: &Path,
    trace: &Path,
    events: u64,
    pool: u64,
    runs: usize,
) -> Result<()> {
    let name = trace::default_name(trace);
    let mut cmds = Vec::new();
    for via_cargo in [false, true] {
        cmds.push(sim_cmd(via_cargo, work, trace, "first-fit", pool, false));
        cmds.push(sim_cmd(via_cargo, work, trace, "first-fit", pool, true));
        cmds.push(sim_cmd(via_cargo, work, trace, "drm-mm", pool, true));
        cmds.push(sim_cmd(via_cargo, work, trace, "all", pool, true));
    }
    let timed = alternate(&cmds, runs, root)?;
    println!(
        "\n3. {name} ({events} events), whole process (.log.gz in, report out), ms: wall min / median, CPU median ({runs} runs); M events/s at the median wall"
    );
    for (c, t) in cmds.iter().zip(&timed) {
        let w = walls(t);
        println!(
            "   {:<48} {:>7} {:>7} {:>7} {:>8}",
            c.label,
            ms(min(&w)),
            ms(median(&w)),
            ms(median(&cpus(t))),
            mev(events, median(&w))
        );
    }
    let (wall, cpu) = ratios(&timed[7], &timed[5]);
    println!(
        "   cargo xtask: --policy all / --policy first-fit (cached): wall {wall:.2}, CPU {cpu:.2} (median of rounds; goal wall <= {GOAL_ALL_VS_ONE}: {})",
        verdict(wall <= GOAL_ALL_VS_ONE)
    );
    for policy in ["first-fit", "all"] {
        println!(
            "   report's share, --policy {policy}: {}",
            report_share(root, work, trace, policy, pool)?
        );
    }
    Ok(())
}

fn scaling() {
    const ROUNDS: u32 = 100_000;
    println!(
        "\n4. one placement (create + destroy) in a fragmented 4 GiB pool, ns (best of 3 x {ROUNDS})"
    );
    println!(
        "   {:<10} {:>8} {:>8} {:>8} {:>9}  goal 100k/1k <= {GOAL_SCALING}",
        "policy", "1k", "10k", "100k", "100k/1k"
    );
    for policy in Policy::ALL {
        let costs: Vec<f64> = [1_000u32, 10_000, 100_000]
            .iter()
            .map(|&live| pool::scaling::placement_ns(policy, live, ROUNDS, 3))
            .collect();
        let ratio = costs[2] / costs[0];
        println!(
            "   {:<10} {:>8.0} {:>8.0} {:>8.0} {:>9.2}  {}",
            policy.as_str(),
            costs[0],
            costs[1],
            costs[2],
            ratio,
            verdict(ratio <= GOAL_SCALING)
        );
    }
}

/// The anchors scripts (a measuring instrument outside the project), where
/// POOLBED_ANCHORS points; a checkout without them skips the comparison.
fn anchors_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("POOLBED_ANCHORS")?);
    dir.join("cma_pool_headless.py").is_file().then_some(dir)
}

fn references(
    root: &Path,
    work: &Path,
    traces: &[PathBuf],
    sizes: &[u64],
    pool: u64,
    runs: usize,
) -> Result<()> {
    println!("\n5. side by side with the references (whole process, runs alternated; ratio = reference / ours, median of rounds)");
    let Some(seed_git) = std::env::var_os("SEED_GIT") else {
        println!("   skipped: set SEED_GIT to a git dir of bpeel/cma-pool-log");
        return Ok(());
    };
    let Some(anchors) = anchors_dir() else {
        println!("   skipped: set POOLBED_ANCHORS to a directory of the anchors scripts (cma_pool_headless.py and its companions)");
        return Ok(());
    };
    let refs = work.join("refs");
    std::fs::create_dir_all(&refs)?;
    let seed_py = refs.join("cma-pool-log.py");
    let shown = Command::new("git")
        .arg("--git-dir")
        .arg(&seed_git)
        .args(["show", "HEAD:cma-pool-log.py"])
        .output()
        .context("running git")?;
    if !shown.status.success() {
        bail!("SEED_GIT has no cma-pool-log.py at HEAD");
    }
    std::fs::write(&seed_py, &shown.stdout)?;
    let built = Command::new(anchors.join("build-test-drm-mm.sh"))
        .arg(pool.to_string())
        .env("SEED_GIT", &seed_git)
        .env(
            "ANCHORS_WORK",
            std::env::var_os("ANCHORS_WORK").unwrap_or_else(|| refs.join("anchors-work").into()),
        )
        .stderr(Stdio::inherit())
        .output()
        .context("building test-drm-mm")?;
    if !built.status.success() {
        bail!("building test-drm-mm failed");
    }
    let drm_mm = String::from_utf8_lossy(&built.stdout).trim().to_string();
    let headless = anchors.join("cma_pool_headless.py");
    println!(
        "   {:<24} {:>8} {:>8} {:>13} {:>9} {:>13}  goal (on the wall ratio)",
        "trace", "py ms", "cold ms", "py/cold", "cached ms", "py/cached"
    );
    println!(
        "   {:<24} {:>8} {:>8} {:>13} {:>9} {:>13}",
        "", "", "", "wall (cpu)", "", "wall (cpu)"
    );
    let mut drm_lines = Vec::new();
    for (trace, &events) in traces.iter().zip(sizes) {
        let big = events > BIG_TRACE;
        let name = trace::default_name(trace);
        let python = Cmd::new(
            "python",
            "python3",
            &[
                &headless,
                &"--seed",
                &seed_py,
                &"--trace",
                trace,
                &"--pool-size",
                &pool.to_string(),
                &"--pools",
                &"basic",
            ],
        );
        let cold = sim_cmd(true, work, trace, "first-fit", pool, false);
        let cached = sim_cmd(true, work, trace, "first-fit", pool, true);
        let w = alternate(&[python, cold, cached], runs, root)?;
        let (cold_wall, cold_cpu) = ratios(&w[0], &w[1]);
        let (cached_wall, cached_cpu) = ratios(&w[0], &w[2]);
        let goal = if big {
            format!(
                ">= {GOAL_COLD_VS_PYTHON} cold: {}, >= {GOAL_CACHED_VS_PYTHON} cached: {}",
                verdict(cold_wall >= GOAL_COLD_VS_PYTHON),
                verdict(cached_wall >= GOAL_CACHED_VS_PYTHON)
            )
        } else {
            // Small traces: cargo's start-up within 3x of Python's start-up and run.
            let (within, _) = ratios(&w[2], &w[0]);
            format!(
                "cached within {GOAL_SMALL_VS_PYTHON}x of python: {} ({within:.2}x)",
                verdict(within <= GOAL_SMALL_VS_PYTHON)
            )
        };
        println!(
            "   {:<24} {:>8} {:>8} {:>13} {:>9} {:>13}  {goal}",
            name,
            ms(median(&walls(&w[0]))),
            ms(median(&walls(&w[1]))),
            format!("{cold_wall:.1} ({cold_cpu:.1})"),
            ms(median(&walls(&w[2]))),
            format!("{cached_wall:.1} ({cached_cpu:.1})"),
        );
        if big {
            let script = format!("gzip -dc '{}' | '{}'", trace.display(), drm_mm);
            let c = Cmd::new("test-drm-mm", "sh", &[&"-c", &script]);
            let ours = sim_cmd(true, work, trace, "drm-mm", pool, true);
            let w = alternate(&[c, ours], runs, root)?;
            let (wall, cpu) = ratios(&w[0], &w[1]);
            drm_lines.push(format!(
                "   {:<24} {:>8} {:>8} {:>13}  goal >= {GOAL_VS_DRM_MM}: {}",
                name,
                ms(median(&walls(&w[0]))),
                ms(median(&walls(&w[1]))),
                format!("{wall:.1} ({cpu:.1})"),
                verdict(wall >= GOAL_VS_DRM_MM)
            ));
        }
    }
    println!(
        "   {:<24} {:>8} {:>8} {:>13}",
        "--policy drm-mm, cached", "C ms", "ours ms", "C/ours"
    );
    for l in drm_lines {
        println!("{l}");
    }
    Ok(())
}
