//! The defmt global logger over the PL011, the critical section it and the
//! heap rely on, and [`send_record`], which carries a measurement record to
//! the host inside one defmt frame.
//!
//! Frames are rzCOBS-encoded (defmt feature `encoding-rzcobs`) and end with a
//! 0x00 byte, so the host can resynchronise after bytes that are not frames.
//! Inside the encoding every frame ends with the trailer of
//! `protocol::frame`: a sequence number counted from 0 at boot and a CRC-32
//! of the frame, so the host decodes no damaged frame and counts the lost
//! ones. The CRC is computed as the bytes pass (one table lookup per byte,
//! far below the UART's 11 µs per byte), with no copy of the frame.

use crate::uart;
use core::arch::asm;
use core::cell::UnsafeCell;
use protocol::frame::FrameDigest;

/// Masks all of D, A, I and F and returns the previous DAIF. Single core and
/// no interrupt handlers: this is all a critical section needs, and it uses no
/// exclusive accesses (which need the MMU on with cacheable memory on silicon).
struct DaifCriticalSection;
critical_section::set_impl!(DaifCriticalSection);

// SAFETY: masking DAIF on the only running core excludes every other context.
unsafe impl critical_section::Impl for DaifCriticalSection {
    unsafe fn acquire() -> u64 {
        let daif: u64;
        // SAFETY: reading and setting DAIF at EL1 has no memory effects.
        unsafe {
            asm!("mrs {}, daif", "msr daifset, #0xf", out(reg) daif, options(nostack, preserves_flags))
        };
        daif
    }

    unsafe fn release(daif: u64) {
        // SAFETY: restores the mask saved by `acquire`.
        unsafe { asm!("msr daif, {}", in(reg) daif, options(nostack, preserves_flags)) };
    }
}

struct State {
    encoder: defmt::Encoder,
    /// The CRC of the frame being written.
    digest: FrameDigest,
    /// The sequence number of the next frame to end.
    next_sequence: u32,
    taken: bool,
    restore: u64,
}

struct Shared(UnsafeCell<State>);

// SAFETY: only touched with DAIF masked on a single core (see `Logger`).
unsafe impl Sync for Shared {}

static STATE: Shared = Shared(UnsafeCell::new(State {
    encoder: defmt::Encoder::new(),
    digest: FrameDigest::new(),
    next_sequence: 0,
    taken: false,
    restore: 0,
}));

#[defmt::global_logger]
struct Logger;

// SAFETY: acquire/release bracket every frame inside a DAIF-masked critical
// section; the only way to re-enter is a CPU exception or a panic raised in
// the middle of a frame, which `acquire` handles by abandoning that frame.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        // SAFETY: paired with `release` below.
        let restore = unsafe { <DaifCriticalSection as critical_section::Impl>::acquire() };
        // SAFETY: DAIF is masked; nothing else runs.
        let state = unsafe { &mut *STATE.0.get() };
        if state.taken {
            // A fault or panic while a frame was being written: that frame
            // never ends. Terminate it with the frame separator so the host
            // drops it and decodes the report that follows.
            // Its number is not reused: the host counts it as lost.
            uart::write_byte(0);
            state.encoder = defmt::Encoder::new();
            state.digest = FrameDigest::new();
            state.next_sequence = state.next_sequence.wrapping_add(1);
        }
        state.taken = true;
        state.restore = restore;
        state.encoder.start_frame(uart::write_bytes);
    }

    unsafe fn flush() {
        uart::flush();
    }

    unsafe fn release() {
        // SAFETY: called after `acquire`, with DAIF still masked.
        let state = unsafe { &mut *STATE.0.get() };
        let trailer = state.digest.finish(state.next_sequence);
        state.next_sequence = state.next_sequence.wrapping_add(1);
        state.encoder.write(&trailer, uart::write_bytes);
        state.encoder.end_frame(uart::write_bytes);
        state.taken = false;
        let restore = state.restore;
        // SAFETY: restores the mask `acquire` saved.
        unsafe { <DaifCriticalSection as critical_section::Impl>::release(restore) };
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: between acquire and release, DAIF masked.
        let state = unsafe { &mut *STATE.0.get() };
        state.digest.update(bytes);
        state.encoder.write(bytes, uart::write_bytes);
    }
}

/// Sends one record to the host: postcard bytes in one defmt frame whose
/// format string is exactly `@rec {=[u8]}`, which the host turns back into a
/// [`records::Record`]. Needs the heap.
pub fn send_record(record: &records::Record) {
    match record.to_bytes() {
        Ok(bytes) => send_record_bytes(&bytes),
        Err(_) => defmt::error!("a record could not be serialized with postcard; it is lost"),
    }
}

/// Sends a record already serialized with postcard (see [`send_record`]).
pub fn send_record_bytes(bytes: &[u8]) {
    defmt::info!("@rec {=[u8]}", bytes);
}
