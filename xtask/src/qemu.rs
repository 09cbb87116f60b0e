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
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The firmware's modes, from the protocol crate the firmware uses too.
pub use protocol::Command as FirmwareCommand;

/// Default limit for one QEMU run.
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;

/// One QEMU run.
#[derive(Clone, Debug)]
pub struct QemuRun {
    pub image: PathBuf,
    /// None: no command word (the firmware's default, replay).
    pub command: Option<FirmwareCommand>,
    pub timeout: Duration,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// QEMU exited; the code is the guest's semihosting exit code (or QEMU's own on error).
    Exited(i32),
    /// The timeout hit and QEMU was killed.
    TimedOut,
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
            command.loader_data()
        ));
    }
    args
}

/// Runs QEMU, handing every chunk of serial output to `on_bytes` as it arrives.
pub fn run(run: &QemuRun, on_bytes: &mut dyn FnMut(&[u8])) -> Result<Outcome> {
    let args = command_line(run);
    let start = Instant::now();
    let mut child = Command::new(crate::setup::QEMU)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} {}", crate::setup::QEMU, args.join(" ")))?;

    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
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

    let deadline = start + run.timeout;
    let mut first_byte_after = None;
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(chunk) => {
                first_byte_after.get_or_insert_with(|| start.elapsed());
                on_bytes(&chunk);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            // stdout closed: QEMU is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if timed_out {
        let _ = child.kill();
    }
    let status = child.wait().context("waiting for QEMU")?;
    let _ = reader.join();
    // Bytes that arrived between the timeout and the kill.
    while let Ok(chunk) = rx.try_recv() {
        on_bytes(&chunk);
    }
    let stderr = err_reader.join().unwrap_or_default();
    let ending = if timed_out {
        Ending::TimedOut
    } else {
        Ending::Exited(status.code().unwrap_or(-1))
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
            image: "k.img".into(),
            command: None,
            timeout: Duration::from_secs(1),
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
}

/// QEMU with its first serial port on a pseudo-terminal, as a board on a
/// serial line: what `cargo xtask run --board` and `listen` talk to in the
/// tests. It starts paused (`-S`) so the host can open the pty first (QEMU
/// drops serial output while no one has the pty open), and its monitor is a
/// unix socket for `cont` and `system_reset` (a real mid-stream restart on
/// the same pty). No semihosting: like a Pi, it never exits by itself; it
/// is killed when this is dropped.
pub struct PtyBoard {
    child: std::process::Child,
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
        let mut child = Command::new(crate::setup::QEMU)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} {}", crate::setup::QEMU, args.join(" ")))?;
        // "char device redirected to /dev/pts/N (label serial0)", on stdout
        // or stderr depending on the version: read both.
        let (tx, rx) = mpsc::channel::<String>();
        for stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
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
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    anyhow::bail!(
                        "QEMU named no pty within {} s; it said: {}",
                        PTY_WAIT.as_secs(),
                        said.join(" / ")
                    );
                }
            }
        };
        let monitor = connect_monitor(&socket).inspect_err(|_| {
            let _ = child.kill();
            let _ = child.wait();
        })?;
        Ok(PtyBoard {
            child,
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

impl Drop for PtyBoard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
