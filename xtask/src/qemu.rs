//! Booting kernel8.img under `qemu-system-aarch64 -M raspi3b`.
//!
//! The invocation (see also qemu/README.md):
//! - `-kernel kernel8.img`: a raw image, loaded at 0x80000 and entered at EL2
//!   on core 0 with cores 1-3 in QEMU's spin table, as on a real Pi 3 (an ELF
//!   would start all four cores at EL3 instead).
//! - `-serial stdio`: the PL011 (UART0) is the first serial port; its bytes
//!   (binary defmt frames) arrive on QEMU's stdout. stdin is null.
//! - `-semihosting-config enable=on,target=native`: the firmware ends the run
//!   with SYS_EXIT and QEMU exits with the guest's code. Without it QEMU
//!   never exits, so there is always a timeout.
//! - `-device loader,addr=0x7f000,data=...,data-len=8`: the command word
//!   choosing the firmware's mode (`protocol::command`).

use anyhow::{Context, Result};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// The firmware's modes, from the protocol crate the firmware uses too.
pub use protocol::Command as FirmwareCommand;

/// Overall limit for one target-test boot (the tests' `--timeout`); `run`
/// has no fixed limit, it scales one from the predicted work.
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;

/// How long the firmware may go without a log line or record before the
/// run counts as stuck. The firmware sends a Progress record at
/// least every few hundred events and the longest single move of a real
/// trace under QEMU takes seconds, so a minute of silence is a hang.
pub const DEFAULT_WATCHDOG_SECS: u64 = 60;

/// When a run is given up: silence, an overall limit, Ctrl-C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Stuck after this long without a log line or record from the firmware.
    pub watchdog: Duration,
    /// Given up after this long in all; None: no overall limit.
    pub overall: Option<Duration>,
}

impl Limits {
    /// The watchdog's default and an overall limit of `limit` (any
    /// duration: a limit past what an `Instant` holds means none).
    pub fn with_overall(limit: Duration) -> Self {
        Limits {
            watchdog: Duration::from_secs(DEFAULT_WATCHDOG_SECS),
            overall: Some(limit),
        }
    }
}

/// `from + after`, or None when that is past what an `Instant` can hold
/// (`--timeout 18446744073709551615`): no deadline, never a panic.
pub fn deadline(from: Instant, after: Duration) -> Option<Instant> {
    from.checked_add(after)
}

/// The longest wait [`deadline_in`] honours: a century is "never" for a
/// person and still far inside what an `Instant` holds.
const LONGEST_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + wait`, saturating: any `--timeout`, u64::MAX seconds included,
/// gives a deadline instead of an overflow panic.
pub fn deadline_in(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait.min(LONGEST_WAIT)).unwrap_or(now)
}

/// One QEMU run.
#[derive(Clone, Debug)]
pub struct QemuRun {
    pub image: PathBuf,
    /// None: no command word (the firmware's default, replay).
    pub command: Option<FirmwareCommand>,
    /// The command's argument (high 16 bits of the command number; 0: its default).
    pub argument: u16,
    pub limits: Limits,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// QEMU exited; the code is the guest's semihosting exit code (or QEMU's own on error).
    Exited(i32),
    /// QEMU was ended by a signal it did not send itself (killed, crashed).
    Died(String),
    /// The firmware made no progress for `Limits::watchdog`; QEMU was killed.
    Stalled(Duration),
    /// The overall limit passed; QEMU was killed.
    OverLimit(Duration),
    /// Ctrl-C (SIGINT) reached the host; QEMU was killed.
    Interrupted,
}

impl Ending {
    /// Why a run was stopped before the firmware ended it, in words; None
    /// when QEMU exited by itself.
    pub fn stop_reason(&self) -> Option<String> {
        match self {
            Ending::Exited(_) => None,
            Ending::Died(how) => Some(format!("QEMU died ({how})")),
            Ending::Stalled(silent) => Some(format!(
                "the watchdog stopped QEMU: no record or log line from the firmware for {} s (--watchdog)",
                silent.as_secs()
            )),
            Ending::OverLimit(limit) => Some(format!(
                "QEMU was stopped at the overall limit of {} s (--timeout)",
                limit.as_secs()
            )),
            Ending::Interrupted => Some("interrupted (Ctrl-C); QEMU was stopped".into()),
        }
    }
}

/// What happened besides the bytes.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub ending: Ending,
    /// From launch to the first byte on the serial port.
    pub first_byte_after: Option<Duration>,
    pub elapsed: Duration,
    /// QEMU's own stderr (warnings, errors).
    pub stderr: String,
}

/// The process ids of every QEMU this process started and has not reaped:
/// the panic hook and the SIGINT handler kill them, so no QEMU outlives the
/// host whatever way it ends.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Set by the SIGINT handler; the QEMU loop polls it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether a QEMU run is waiting on INTERRUPTED; when none is, a Ctrl-C
/// ends the host at once as it would without the handler.
static WAITING: AtomicBool = AtomicBool::new(false);

/// A child process that is killed and reaped when this is dropped: on every
/// return, `?` and unwinding panic. Its pid is in [`CHILDREN`] meanwhile.
pub struct ChildGuard(Child);

impl ChildGuard {
    /// Takes charge of `child`, and makes sure the panic hook and the SIGINT
    /// handler that kill children are installed.
    pub fn new(child: Child) -> Self {
        install_handlers();
        if let Ok(mut pids) = CHILDREN.lock() {
            pids.push(child.id());
        }
        ChildGuard(child)
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let id = self.0.id();
        if let Ok(mut pids) = CHILDREN.lock() {
            pids.retain(|&p| p != id);
        }
    }
}

/// SIGKILLs every child still in [`CHILDREN`]. Only `kill(2)` and a
/// `try_lock` (a panic while the list is locked must not deadlock).
fn kill_children() {
    if let Ok(pids) = CHILDREN.try_lock() {
        for &pid in pids.iter() {
            // SAFETY: kill(2) with a pid this process spawned and has not
            // reaped (Drop removes it before the pid can be reused).
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

/// The SIGINT handler: async-signal-safe work only (atomics, kill, _exit).
extern "C" fn on_sigint(_: libc::c_int) {
    if WAITING.load(Ordering::SeqCst) && !INTERRUPTED.swap(true, Ordering::SeqCst) {
        // The QEMU loop sees the flag, kills QEMU and writes the partial report.
        return;
    }
    // No run to end cleanly, or a second Ctrl-C: end now, children first
    // (kill_children only reads the pid list under a try_lock and calls
    // kill(2): nothing that allocates or blocks).
    kill_children();
    // SAFETY: _exit(2) is async-signal-safe and ends the process at once,
    // as the default SIGINT action would (130: killed by SIGINT).
    unsafe { libc::_exit(130) };
}

/// Installs, once, the panic hook that kills children before the default
/// hook reports, and the SIGINT handler.
fn install_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            kill_children();
            previous(info);
        }));
        // SAFETY: a zeroed sigaction with a handler that does only
        // async-signal-safe work; installed once.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigint as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        }
    });
}

/// Whether Ctrl-C was pressed during the current QEMU run.
fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The full QEMU command line for a run.
pub fn command_line(run: &QemuRun) -> Vec<String> {
    let mut args: Vec<String> = [
        "-M",
        "raspi3b",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(run.image.display().to_string());
    if let Some(command) = run.command {
        args.push("-device".into());
        args.push(format!(
            "loader,addr={:#x},data={:#x},data-len=8",
            protocol::COMMAND_ADDR,
            command.loader_data_with(run.argument)
        ));
    }
    args
}

/// How often the loop looks at Ctrl-C and the limits while QEMU is silent.
const POLL: Duration = Duration::from_millis(100);

/// QEMU with these arguments, its output piped to us, killed when the guard goes.
fn spawn_qemu(args: &[String]) -> Result<ChildGuard> {
    let child = Command::new(crate::setup::QEMU)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} {}", crate::setup::QEMU, args.join(" ")))?;
    Ok(ChildGuard::new(child))
}

/// Runs QEMU, handing every chunk of serial output to `on_bytes` as it
/// arrives, until QEMU exits, the firmware makes no progress for the
/// watchdog's time, the overall limit passes or Ctrl-C is pressed.
/// `on_bytes` returns whether the chunk completed anything (a log line or a
/// record): only that feeds the watchdog, so line noise is no progress.
pub fn run(run: &QemuRun, on_bytes: &mut dyn FnMut(&[u8]) -> bool) -> Result<Outcome> {
    let args = command_line(run);
    let start = Instant::now();
    let mut child = spawn_qemu(&args)?;

    let mut stdout = child.child().stdout.take().context("QEMU's stdout")?;
    let mut stderr = child.child().stderr.take().context("QEMU's stderr")?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    INTERRUPTED.store(false, Ordering::SeqCst);
    WAITING.store(true, Ordering::SeqCst);
    let overall_deadline = run.limits.overall.and_then(|limit| deadline(start, limit));
    let mut last_output = start;
    let mut first_byte_after = None;
    let stopped = loop {
        if interrupted() {
            break Some(Ending::Interrupted);
        }
        let now = Instant::now();
        if let (Some(at), Some(limit)) = (overall_deadline, run.limits.overall) {
            if now >= at {
                break Some(Ending::OverLimit(limit));
            }
        }
        let silent = now.duration_since(last_output);
        if silent >= run.limits.watchdog {
            break Some(Ending::Stalled(run.limits.watchdog));
        }
        let wait = POLL.min(run.limits.watchdog - silent);
        match rx.recv_timeout(wait) {
            Ok(chunk) => {
                first_byte_after.get_or_insert_with(|| start.elapsed());
                if on_bytes(&chunk) {
                    last_output = Instant::now();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // stdout closed: QEMU is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
        }
    };
    WAITING.store(false, Ordering::SeqCst);
    if stopped.is_some() {
        let _ = child.child().kill();
    }
    let status = child.child().wait().context("waiting for QEMU")?;
    let _ = reader.join();
    // Bytes that arrived between the stop and the kill.
    while let Ok(chunk) = rx.try_recv() {
        let _ = on_bytes(&chunk);
    }
    let stderr = err_reader.join().unwrap_or_default();
    // A Ctrl-C in a terminal reaches QEMU too, which then exits by itself.
    let ending = match stopped {
        Some(ending) => ending,
        None if interrupted() => Ending::Interrupted,
        None => match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(signal)) => Ending::Died(format!("signal {signal}")),
            (None, None) => Ending::Died(format!("{status}")),
        },
    };
    Ok(Outcome {
        ending,
        first_byte_after,
        elapsed: start.elapsed(),
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_has_the_loader_only_with_a_command() {
        let mut run = QemuRun {
            argument: 0,
            image: "k.img".into(),
            command: None,
            limits: Limits::with_overall(Duration::from_secs(1)),
        };
        assert!(!command_line(&run).iter().any(|a| a.starts_with("loader")));
        run.command = Some(FirmwareCommand::Panic);
        let line = command_line(&run);
        assert!(
            line.contains(&"loader,addr=0x7f000,data=0x34d434250,data-len=8".to_string()),
            "{line:?}"
        );
        assert!(line.windows(2).any(|w| w == ["-M", "raspi3b"]));
    }

    /// Whether `pid` is a live process (not gone, not a zombie).
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn a_panic_kills_the_guarded_child() {
        let child = Command::new("sleep").arg("60").spawn().unwrap();
        let pid = child.id();
        let guarded = std::panic::catch_unwind(move || {
            let _guard = ChildGuard::new(child);
            panic!("a host bug while QEMU runs");
        });
        assert!(guarded.is_err());
        assert!(!alive(pid), "the child outlived the panic");
        assert!(!CHILDREN.lock().unwrap().contains(&pid));
    }

    #[test]
    fn deadlines_saturate() {
        let far = deadline_in(Duration::from_secs(u64::MAX));
        assert!(far > Instant::now() + Duration::from_secs(50 * 365 * 24 * 3600));
        assert_eq!(deadline(Instant::now(), Duration::MAX), None);
    }
}

/// QEMU with its first serial port on a pseudo-terminal, as a board on a
/// serial line: what `cargo xtask run --board` and `listen` talk to in the
/// tests. It starts paused (`-S`) so the host can open the pty first (QEMU
/// drops serial output while no one has the pty open), and its monitor is a
/// unix socket for `cont` and `system_reset` (a real mid-stream restart on
/// the same pty). No semihosting: like a Pi, it never exits by itself; it
/// is killed when this is dropped.
pub struct PtyBoard {
    /// Killed on drop (the guard does it, and the panic hook on a panic).
    _child: ChildGuard,
    /// The pty the PL011 is on.
    pub pty: PathBuf,
    monitor: std::os::unix::net::UnixStream,
    _dir: tempdir::Dir,
}

/// A private directory for the monitor socket, removed on drop.
mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// How long QEMU may take to say which pty it opened.
const PTY_WAIT: Duration = Duration::from_secs(20);

impl PtyBoard {
    /// Starts QEMU paused on `image` with `command` and its argument.
    pub fn start(image: &std::path::Path, command: FirmwareCommand, argument: u16) -> Result<Self> {
        use std::io::BufRead;
        let dir = crate::firmware::target_dir().join(format!("qemu-pty-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = tempdir::Dir(dir);
        let socket = dir.0.join("monitor.sock");
        let args: Vec<String> = vec![
            "-M".into(),
            "raspi3b".into(),
            "-display".into(),
            "none".into(),
            "-S".into(),
            "-serial".into(),
            "pty".into(),
            "-monitor".into(),
            format!("unix:{},server=on,wait=off", socket.display()),
            "-kernel".into(),
            image.display().to_string(),
            "-device".into(),
            format!(
                "loader,addr={:#x},data={:#x},data-len=8",
                protocol::COMMAND_ADDR,
                command.loader_data_with(argument)
            ),
        ];
        let mut child = spawn_qemu(&args)?;
        // "char device redirected to /dev/pts/N (label serial0)", on stdout
        // or stderr depending on the version: read both.
        let (tx, rx) = mpsc::channel::<String>();
        for stream in [
            Box::new(child.child().stdout.take().context("QEMU's stdout")?) as Box<dyn Read + Send>,
            Box::new(child.child().stderr.take().context("QEMU's stderr")?),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let deadline = Instant::now() + PTY_WAIT;
        let mut said = Vec::new();
        let pty = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(path) = line
                        .split("redirected to ")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                    {
                        break PathBuf::from(path);
                    }
                    said.push(line);
                }
                // The guard kills QEMU on the way out.
                Err(_) => {
                    anyhow::bail!(
                        "QEMU named no pty within {} s; it said: {}",
                        PTY_WAIT.as_secs(),
                        said.join(" / ")
                    );
                }
            }
        };
        let monitor = connect_monitor(&socket)?;
        Ok(PtyBoard {
            _child: child,
            pty,
            monitor,
            _dir: dir,
        })
    }

    /// Lets the guest run (call after opening the pty, see [`PtyBoard`]).
    /// QEMU notices a newly opened pty on a timer (about a second), so this
    /// waits that long first: output written before would be dropped.
    pub fn power_on(&mut self) -> Result<()> {
        std::thread::sleep(Duration::from_millis(1500));
        self.monitor_command("cont")
    }

    /// Resets the guest, as the reset button would: the firmware boots
    /// again on the same pty.
    pub fn reset(&mut self) -> Result<()> {
        self.monitor_command("system_reset")
    }

    fn monitor_command(&mut self, command: &str) -> Result<()> {
        use std::io::Write;
        self.monitor
            .write_all(format!("{command}\n").as_bytes())
            .with_context(|| format!("sending `{command}` to the QEMU monitor"))
    }
}

/// The monitor socket appears once QEMU is up; bounded retries.
fn connect_monitor(socket: &std::path::Path) -> Result<std::os::unix::net::UnixStream> {
    let deadline = Instant::now() + PTY_WAIT;
    loop {
        match std::os::unix::net::UnixStream::connect(socket) {
            Ok(stream) => {
                // The monitor's banner and echoes are not read; a reader
                // thread keeps its buffer from filling.
                let mut reader = stream.try_clone().context("cloning the monitor socket")?;
                std::thread::spawn(move || {
                    let mut sink = [0u8; 1024];
                    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                });
                return Ok(stream);
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(e).with_context(|| format!("connecting to {}", socket.display()))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
