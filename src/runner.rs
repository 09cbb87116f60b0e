//! The resident runner (command 9, what a card runs by default): flash once,
//! push many traces.
//!
//! After the platform block it says `Ready` (again every second) and
//! receives a compiled trace over the PL011's RX line in the frames of
//! `protocol::transfer`, acknowledging each (`Ack`), asking for a resend of
//! a damaged or missing one (`Nak`), and ending with `Accepted` (the
//! trace's header and checksum are good) or `Refused` (why not). An
//! accepted trace is replayed under every policy and mover exactly as the
//! replay mode does, its report stream starting again with Hello and
//! Platform and ending with Finished; then the runner waits again. If no
//! host offers a trace within the wait (the command word's argument in
//! seconds, default `protocol::command::RUNNER_DEFAULT_WAIT_SECS`), it
//! replays the embedded trace, so a board on its own still reports.
//!
//! Every wait is bounded: a transfer that stops for [`SILENCE_US`] is
//! refused as truncated. Receiving is polled (nothing else runs meanwhile);
//! every byte the firmware writes first empties the RX FIFO into a ring
//! (`uart::set_receiving`), so acknowledgements cannot overrun it.

use crate::logger::send_record;
use crate::memory::Layout;
use crate::platform::Platform;
use crate::{replay, timer, uart};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::transfer::{FrameParser, Offer, Parsed, MAX_PAYLOAD, OFFER_SEQUENCE, WINDOW};
use records::Record;
use trace::binary::BinaryTrace;

/// How often Ready is repeated while the runner waits, so a host that
/// opens the port late still hears it.
const READY_EVERY_US: u64 = 1_000_000;
/// The pause between polls of an empty receive FIFO (see [`idle`]).
const IDLE_US: u64 = 20;
/// A transfer that goes quiet this long is refused as truncated.
pub const SILENCE_US: u64 = 2_000_000;

/// What one wait ended with.
enum Received {
    /// A whole trace, with the pool size to replay it in.
    Trace { bytes: Vec<u8>, pool_bytes: usize },
    /// No host within the wait.
    Nothing,
    /// A transfer was refused (already reported).
    Refused,
}

/// Runs forever: wait, receive, replay, report, wait again.
pub fn run(platform: &Platform, layout: &Layout, wait_secs: u16) -> ! {
    let wait_secs = if wait_secs == 0 {
        protocol::command::RUNNER_DEFAULT_WAIT_SECS
    } else {
        wait_secs
    };
    loop {
        // Each report is a stream of its own (Hello, Platform, Trace, the
        // runs, Finished), as if the board had just booted: a host that
        // opened the port after the boot still gets the whole picture.
        let code = match receive(layout, u64::from(wait_secs) * 1_000_000) {
            Received::Trace { bytes, pool_bytes } => match BinaryTrace::parse(&bytes) {
                Ok(trace) => {
                    send_hello(platform);
                    replay::replay_all(&trace, pool_bytes, platform, layout)
                }
                // Checked before Accepted was sent; cannot happen.
                Err(_) => continue,
            },
            Received::Nothing => {
                defmt::info!(
                    "no host offered a trace within {=u16} s: replaying the embedded trace",
                    wait_secs
                );
                send_hello(platform);
                replay::run(platform, layout)
            }
            Received::Refused => continue,
        };
        send_record(&Record::Finished { exit_code: code });
        defmt::info!(
            "finished with exit code {=u32}; waiting for the next trace",
            code
        );
        uart::flush();
    }
}

fn send_hello(platform: &Platform) {
    send_record(&Record::Hello {
        protocol: records::PROTOCOL_VERSION,
        firmware: String::from(crate::FIRMWARE),
    });
    send_record(&Record::Platform(platform.record.clone()));
}

/// The largest trace the runner takes: half the free heap (the rest stays
/// for the backing store of the replay), and what a u32 length can say.
fn max_trace_bytes() -> usize {
    (crate::HEAP.free() / 2).min(u32::MAX as usize)
}

/// A transfer in progress.
struct Transfer {
    offer: Offer,
    pool_bytes: usize,
    bytes: Vec<u8>,
    /// The next data frame wanted.
    expected: u32,
    /// A Nak was sent for `expected` already: one per gap, the host's
    /// timeout covers a lost one.
    nak_sent: bool,
}

/// Waits up to `wait_us` for an offer, then receives the trace.
fn receive(layout: &Layout, wait_us: u64) -> Received {
    uart::set_receiving(true);
    let received = receive_inner(layout, wait_us);
    uart::set_receiving(false);
    received
}

fn receive_inner(layout: &Layout, wait_us: u64) -> Received {
    let ready = Record::Ready {
        max_trace_bytes: max_trace_bytes() as u64,
        pool_bytes: layout.pool.len() as u64,
        window: WINDOW,
        wait_ms: (wait_us / 1000) as u32,
        heap_free_bytes: crate::HEAP.free() as u64,
    };
    send_record(&ready);
    let give_up = timer::deadline_after_us(wait_us);
    let mut next_ready = timer::deadline_after_us(READY_EVERY_US);
    let mut parser = FrameParser::new();
    let mut transfer: Option<Transfer> = None;
    let mut silent_since = timer::now_ticks();
    let silence = timer::ns_to_ticks(SILENCE_US * 1000);
    loop {
        let Some(rx) = uart::read_byte() else {
            let now = timer::now_ticks();
            match &transfer {
                Some(t) if now - silent_since > silence => {
                    let got = t.bytes.len();
                    refuse(format!(
                        "truncated: {got} of {} bytes arrived, then nothing for {} s",
                        t.offer.trace_bytes,
                        SILENCE_US / 1_000_000
                    ));
                    return Received::Refused;
                }
                Some(_) => {}
                None if now >= give_up => return Received::Nothing,
                None if now >= next_ready => {
                    send_record(&ready);
                    next_ready = timer::deadline_after_us(READY_EVERY_US);
                }
                None => {}
            }
            idle();
            continue;
        };
        silent_since = timer::now_ticks();
        match parser.push(rx.byte, rx.error) {
            Parsed::Pending => {}
            Parsed::Bad(why) => {
                if let Some(t) = &mut transfer {
                    nak(t, why.as_str());
                }
            }
            Parsed::Frame { sequence, len: _ } if sequence == OFFER_SEQUENCE => {
                // A new offer, also in the middle of a transfer: the host
                // started over.
                match take_offer(parser.payload(), layout) {
                    Ok(t) => {
                        send_record(&Record::Ack { next: 1 });
                        transfer = Some(t);
                    }
                    Err(why) => {
                        refuse(why);
                        return Received::Refused;
                    }
                }
            }
            Parsed::Frame { sequence, len } => {
                let Some(t) = &mut transfer else {
                    // Data from a transfer this runner does not know (the
                    // host's resends after a reset): ignored.
                    continue;
                };
                if sequence < t.expected {
                    // A resend of what arrived (the Ack was lost or late).
                    send_record(&Record::Ack { next: t.expected });
                    continue;
                }
                if sequence > t.expected {
                    nak(t, "a frame is missing");
                    continue;
                }
                let remaining = t.offer.trace_bytes as usize - t.bytes.len();
                if len != remaining.min(MAX_PAYLOAD) {
                    let why = format!(
                        "frame {sequence} has {len} bytes, {} expected",
                        remaining.min(MAX_PAYLOAD)
                    );
                    nak(t, &why);
                    continue;
                }
                t.bytes.extend_from_slice(parser.payload());
                t.expected += 1;
                t.nak_sent = false;
                send_record(&Record::Ack { next: t.expected });
                if t.bytes.len() == t.offer.trace_bytes as usize {
                    let t = transfer.take().expect("a transfer");
                    return finish(t);
                }
            }
        }
    }
}

/// Nothing arrived: wait [`IDLE_US`] before polling the PL011 again. On
/// silicon the 16-byte FIFO holds 174 µs of input at 921600 baud, so this
/// loses nothing; under QEMU a vCPU that reads the PL011 without pause
/// holds the lock its I/O thread needs to deliver the next byte, and the
/// transfer crawls.
fn idle() {
    let until = timer::deadline_after_us(IDLE_US);
    while timer::now_ticks() < until {}
}

fn nak(t: &mut Transfer, reason: &str) {
    if !t.nak_sent {
        t.nak_sent = true;
        send_record(&Record::Nak {
            expected: t.expected,
            reason: String::from(reason),
        });
    }
}

fn refuse(reason: String) {
    defmt::error!("trace refused: {=str}", reason.as_str());
    send_record(&Record::Refused { reason });
}

/// Checks an offer and makes room for the trace.
fn take_offer(payload: &[u8], layout: &Layout) -> Result<Transfer, String> {
    let offer = Offer::decode(payload).ok_or_else(|| String::from("the offer is malformed"))?;
    let size = offer.trace_bytes as usize;
    let max = max_trace_bytes();
    if size == 0 || size > max {
        return Err(format!(
            "a trace of {size} bytes does not fit: this runner takes 1 to {max} bytes"
        ));
    }
    let pool_bytes = match offer.pool_bytes {
        0 => layout.pool.len(),
        p => p as usize,
    };
    let page = crate::mover::PAGE;
    if pool_bytes == 0 || !pool_bytes.is_multiple_of(page) || pool_bytes > layout.pool.len() {
        return Err(format!(
            "a pool of {pool_bytes} bytes is not possible: this image's pool region is {} bytes (build the card with a larger --pool-size), and the size must be a multiple of {page}",
            layout.pool.len()
        ));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(size)
        .map_err(|_| format!("no room for {size} bytes on the heap"))?;
    defmt::info!(
        "receiving a trace of {=u32} bytes for a pool of {=usize} KiB",
        offer.trace_bytes,
        pool_bytes >> 10
    );
    Ok(Transfer {
        offer,
        pool_bytes,
        bytes,
        expected: 1,
        nak_sent: false,
    })
}

/// Checks the received trace's header and checksum.
fn finish(t: Transfer) -> Received {
    match BinaryTrace::parse(&t.bytes) {
        Ok(trace) => {
            send_record(&Record::Accepted {
                bytes: t.bytes.len() as u64,
                events: trace.event_count(),
                pool_bytes: t.pool_bytes as u64,
            });
            Received::Trace {
                bytes: t.bytes,
                pool_bytes: t.pool_bytes,
            }
        }
        Err(e) => {
            refuse(format!("the trace is not a valid compiled trace: {e}"));
            Received::Refused
        }
    }
}
