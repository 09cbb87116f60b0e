//! Talking to a board that runs the resident runner (command 9) over a
//! serial line: a USB serial adapter on a Pi, or QEMU's `-serial pty`.
//!
//! [`Link`] reads the board's defmt stream and writes frames;
//! [`push`] sends a compiled trace with the framing of
//! `protocol::transfer` (go-back-N within the window the board announced,
//! resending from the first frame not acknowledged on a Nak or after
//! [`resend_after`] without progress); [`collect`] then gathers the report
//! stream the runner sends for it, up to its Finished record.

use crate::decode::{Decoded, Decoder};
use anyhow::{bail, Context, Result};
use protocol::transfer::{self, Offer, MAX_FRAME, MAX_PAYLOAD};
use records::Record;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// No acknowledgement for this long: resend from the first frame not
/// acknowledged. Well above a USB adapter's latency timer (16 ms) plus a
/// window's time on the wire at 921600 baud (8 KiB, 90 ms).
pub const RESEND_AFTER: Duration = Duration::from_secs(1);
/// Resends of the same frame before the host gives up.
pub const MAX_RESENDS: u32 = 10;
/// How long the host waits for the runner's answer to a truncated
/// transfer: the runner's silence limit and a margin.
pub const REFUSAL_WAIT: Duration = Duration::from_secs(10);
/// A line that takes no byte for this long is given up on.
pub const WRITE_STALL: Duration = Duration::from_secs(10);

/// A serial line to the board, with the decoder of its firmware's stream.
pub struct Link {
    port: Box<dyn serialport::SerialPort>,
    decoder: Decoder,
    pending: VecDeque<Decoded>,
    /// When the last byte arrived.
    pub heard: Instant,
}

impl Link {
    /// Opens `path` at `baud` (8N1, raw, no flow control); `elf` is the
    /// firmware the board runs (its defmt table decodes the stream).
    pub fn open(path: &Path, baud: u32, elf: &[u8]) -> Result<Self> {
        let port = serialport::new(path.to_string_lossy(), baud)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(10))
            .open()
            .with_context(|| format!("opening {} at {baud} baud", path.display()))?;
        Ok(Link {
            port,
            decoder: Decoder::from_elf(elf).context("reading the defmt table of the ELF")?,
            pending: VecDeque::new(),
            heard: Instant::now(),
        })
    }

    /// The next decoded event, waiting at most `wait` for one.
    pub fn next_event(&mut self, wait: Duration) -> Result<Option<Decoded>> {
        let deadline = crate::qemu::deadline_in(wait);
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            self.read_into_pending()?;
            if self.pending.is_empty() && Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// Writes `bytes`; while the line will not take more (the adapter's or
    /// the pty's buffer is full), reads what the board says meanwhile, so
    /// neither side waits for the other. Bounded by [`WRITE_STALL`].
    fn send(&mut self, mut bytes: &[u8]) -> Result<()> {
        let mut stalled_since = Instant::now();
        while !bytes.is_empty() {
            match self.port.write(bytes) {
                Ok(n) if n > 0 => {
                    bytes = &bytes[n..];
                    stalled_since = Instant::now();
                    continue;
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e).context("writing to the serial line"),
            }
            if stalled_since.elapsed() > WRITE_STALL {
                bail!(
                    "the serial line took no byte for {} s",
                    WRITE_STALL.as_secs()
                );
            }
            self.read_into_pending()?;
        }
        Ok(())
    }

    /// One read (at most the port's 10 ms timeout), decoded into `pending`.
    fn read_into_pending(&mut self) -> Result<()> {
        let mut buffer = [0u8; 4096];
        match self.port.read(&mut buffer) {
            Ok(n) if n > 0 => {
                self.heard = Instant::now();
                let pending = &mut self.pending;
                self.decoder
                    .feed(&buffer[..n], &mut |event| pending.push_back(event));
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e).context("reading the serial line"),
        }
        Ok(())
    }
}

/// A deliberate fault on the host's side of a transfer, for the tests (and
/// for trying a board's error handling by hand; not a user option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The first transmission of this frame has one payload byte flipped.
    CorruptFrame(u32),
    /// Nothing is sent after this data frame, as if the cable were pulled.
    TruncateAfter(u32),
}

/// How a transfer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The runner took the trace; its report follows.
    Accepted { events: u64 },
    /// The runner refused it, and why.
    Refused(String),
}

/// What a transfer did.
#[derive(Clone, Debug)]
pub struct PushOutcome {
    pub result: Pushed,
    /// The reasons of the runner's Naks, in order.
    pub naks: Vec<String>,
    /// Frames sent more than once.
    pub resent_frames: u64,
    /// From the offer to Accepted or Refused.
    pub elapsed: Duration,
}

/// What the runner's Ready says about the board, for the host's checks
/// before a trace is sent.
#[derive(Clone, Copy, Debug)]
pub struct BoardRoom {
    /// The pool region of the board's firmware.
    pub pool_bytes: u64,
    /// The firmware's free heap, which receives the trace and then holds the
    /// replay's paged-out buffers.
    pub heap_free_bytes: u64,
}

/// Waits up to `ready_wait` for the runner's Ready, asks `fits` whether the
/// trace can be replayed in the room the board has, then sends `trace` for a
/// pool of `pool_bytes` (0: the board's own). Events that are not part of
/// the transfer (log lines, the boot's records) go to `observe`.
pub fn push(
    link: &mut Link,
    trace: &[u8],
    pool_bytes: u64,
    fault: Fault,
    ready_wait: Duration,
    fits: &dyn Fn(BoardRoom) -> Result<()>,
    observe: &mut dyn FnMut(&Decoded),
) -> Result<PushOutcome> {
    let (window, room) = wait_for_ready(link, trace.len() as u64, pool_bytes, ready_wait, observe)?;
    fits(room)?;
    let offer = Offer {
        trace_bytes: u32::try_from(trace.len()).context("a trace above 4 GiB")?,
        pool_bytes,
    };
    let last = offer.data_frames();
    let bar = progress_bar(trace.len() as u64);
    let started = Instant::now();
    let mut outcome = PushOutcome {
        result: Pushed::Refused(String::new()),
        naks: Vec::new(),
        resent_frames: 0,
        elapsed: Duration::ZERO,
    };
    // Frames below `base` are acknowledged; `next` is the next to send.
    let (mut base, mut next, mut highest_sent) = (0u32, 0u32, None::<u32>);
    let mut progress_at = Instant::now();
    let mut resends = 0u32;
    let mut frame = [0u8; MAX_FRAME];
    let cut_after = match fault {
        Fault::TruncateAfter(n) => Some(n),
        _ => None,
    };
    loop {
        let stop_at = cut_after.map_or(last, |n| n.min(last));
        while next <= stop_at && next < base + u32::from(window) {
            let payload: &[u8] = if next == transfer::OFFER_SEQUENCE {
                &offer.encode()
            } else {
                let start = (next as usize - 1) * MAX_PAYLOAD;
                &trace[start..(start + MAX_PAYLOAD).min(trace.len())]
            };
            let len = transfer::encode_frame(next, payload, &mut frame);
            let first_time = highest_sent.is_none_or(|h| next > h);
            if !first_time {
                outcome.resent_frames += 1;
            }
            if first_time && fault == Fault::CorruptFrame(next) {
                frame[transfer::HEADER_BYTES] ^= 0x5a;
            }
            link.send(&frame[..len])?;
            highest_sent = Some(highest_sent.map_or(next, |h| h.max(next)));
            next += 1;
        }
        match link.next_event(Duration::from_millis(20))? {
            Some(Decoded::Record(record)) => match *record {
                Record::Ack { next: acked } if acked > base => {
                    base = acked;
                    next = next.max(base);
                    progress_at = Instant::now();
                    resends = 0;
                    let done = (u64::from(base.saturating_sub(1)) * MAX_PAYLOAD as u64)
                        .min(trace.len() as u64);
                    bar.set_position(done);
                }
                Record::Ack { .. } | Record::Ready { .. } => {}
                Record::Nak { expected, reason } => {
                    bar.println(format!("host: frame {expected} resent: {reason}"));
                    outcome.naks.push(reason);
                    if expected >= base {
                        base = expected;
                        next = expected;
                    }
                }
                Record::Accepted { events, .. } => {
                    bar.finish_and_clear();
                    let seconds = started.elapsed().as_secs_f64();
                    eprintln!(
                        "host: {} bytes pushed in {seconds:.2} s ({:.1} KiB/s; window {window} frames, {} Naks, {} frames resent)",
                        trace.len(),
                        trace.len() as f64 / 1024.0 / seconds.max(1e-6),
                        outcome.naks.len(),
                        outcome.resent_frames
                    );
                    outcome.result = Pushed::Accepted { events };
                    break;
                }
                Record::Refused { reason } => {
                    bar.finish_and_clear();
                    outcome.result = Pushed::Refused(reason);
                    break;
                }
                other => observe(&Decoded::Record(Box::new(other))),
            },
            Some(other) => observe(&other),
            None => {}
        }
        if cut_after.is_some() {
            if started.elapsed() > REFUSAL_WAIT {
                bail!(
                    "the board did not refuse the truncated transfer within {} s",
                    REFUSAL_WAIT.as_secs()
                );
            }
            continue;
        }
        if progress_at.elapsed() > resend_after(u32::from(window), base, started.elapsed()) {
            resends += 1;
            if resends > MAX_RESENDS {
                bail!(
                    "the board acknowledged nothing after frame {base} for {} s ({} resends); is it running the runner, and is its RX wired?",
                    (RESEND_AFTER * MAX_RESENDS).as_secs(),
                    MAX_RESENDS
                );
            }
            next = base;
            progress_at = Instant::now();
        }
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// How long to wait for an acknowledgement before resending from `base`:
/// [`RESEND_AFTER`], or three windows' time at the rate the line has shown
/// so far when that is longer. A slow line (QEMU takes a byte per main-loop
/// turn from a pty) must not make the host resend frames that are merely
/// queued, which would only queue more.
fn resend_after(window: u32, base: u32, elapsed: Duration) -> Duration {
    let acked = u64::from(base.saturating_sub(1)) * MAX_PAYLOAD as u64;
    if acked == 0 {
        return RESEND_AFTER * 3;
    }
    let rate = acked as f64 / elapsed.as_secs_f64().max(1e-3);
    let window_time = Duration::from_secs_f64(3.0 * f64::from(window) * MAX_PAYLOAD as f64 / rate);
    window_time.max(RESEND_AFTER)
}

/// Waits for Ready and checks the trace fits; returns the board's window
/// and room.
fn wait_for_ready(
    link: &mut Link,
    trace_bytes: u64,
    pool_bytes: u64,
    wait: Duration,
    observe: &mut dyn FnMut(&Decoded),
) -> Result<(u16, BoardRoom)> {
    let deadline = crate::qemu::deadline_in(wait);
    while Instant::now() < deadline {
        match link.next_event(Duration::from_millis(100))? {
            Some(Decoded::Record(record)) => match *record {
                Record::Ready {
                    max_trace_bytes,
                    pool_bytes: board_pool,
                    window,
                    heap_free_bytes,
                    ..
                } => {
                    if trace_bytes > max_trace_bytes {
                        bail!("the trace has {trace_bytes} bytes; the board takes at most {max_trace_bytes}");
                    }
                    if pool_bytes > board_pool {
                        bail!(
                            "a pool of {} MiB was asked for; the board's firmware has a pool region of {} MiB (build its card with --pool-size {}MiB)",
                            pool_bytes >> 20,
                            board_pool >> 20,
                            pool_bytes >> 20
                        );
                    }
                    let room = BoardRoom {
                        pool_bytes: board_pool,
                        heap_free_bytes,
                    };
                    return Ok((window.clamp(1, 64), room));
                }
                other => observe(&Decoded::Record(Box::new(other))),
            },
            Some(other) => observe(&other),
            None => {}
        }
    }
    bail!(
        "the board did not say Ready within {} s: is it running the card's firmware (the runner), wired to GPIO 14/15, and not busy replaying?",
        wait.as_secs()
    )
}

fn progress_bar(bytes: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(bytes);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "push {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("a valid template"),
    );
    bar
}

/// Collects the report stream that follows Accepted, up to its Finished
/// record; fails after `silence` without a byte.
pub fn collect(
    link: &mut Link,
    silence: Duration,
    observe: &mut dyn FnMut(&Decoded),
) -> Result<records::Collector> {
    let mut collector = records::Collector::new();
    link.heard = Instant::now();
    loop {
        match link.next_event(Duration::from_millis(100))? {
            Some(event) => {
                observe(&event);
                if let Decoded::Record(record) = event {
                    let finished = matches!(*record, Record::Finished { .. });
                    if let Err(e) = collector.push(*record) {
                        eprintln!("warning: {e}");
                    }
                    if finished {
                        return Ok(collector);
                    }
                }
            }
            None if link.heard.elapsed() > silence => bail!(
                "the board was silent for {} s before it finished the trace",
                silence.as_secs()
            ),
            None => {}
        }
    }
}
