//! Buffer traces: the event model, the vc4 `@@@` log parser, validation,
//! statistics and the compact binary form the firmware replays.
//!
//! Without the default `std` feature the crate is `no_std` + `alloc`: the
//! binary decoder ([`binary::BinaryTrace`]) never allocates, and the text
//! parser works on logs already in memory ([`StrParser`], [`Validator`]).
//! With `std` it also reads `.log` and `.log.gz` files as a stream
//! ([`Parser`], [`open`], [`read_file`], [`compile_file`]).
//!
//! ```
//! use trace::{binary, Mode, StrParser, Stats};
//!
//! let log = "[    1.000000] @@@ create 8d3f2a00 4096\n\
//!            [    1.000010] @@@ use 8d3f2a00\n\
//!            [    1.000020] @@@ destroy 8d3f2a00\n";
//! let events: Vec<_> = StrParser::new(log, Mode::Strict).collect::<Result<_, _>>()?;
//! assert_eq!(Stats::of(events.iter().copied()).peak_live_bytes, 4096);
//!
//! // What the firmware embeds, and reads back in place:
//! let bytes = binary::encode(events.iter().copied(), "example")?;
//! let trace = binary::BinaryTrace::parse(&bytes)?;
//! assert!(trace.events().eq(events));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;

pub mod binary;
mod event;
mod idmap;
mod line;
mod problem;
mod stats;
mod validate;

#[cfg(feature = "std")]
pub mod cache;
#[cfg(feature = "std")]
mod file;

pub use event::{BufferIndex, Event, EventKind, Madv};
pub use problem::{Action, Mode, Problem, ProblemKind, Warnings, KEPT_WARNINGS, MAX_CREATE_SIZE};
pub use stats::{KindCounts, Stats, StatsBuilder};
pub use validate::{StrParser, Validator, MAX_LINE};

#[cfg(feature = "std")]
pub use file::{
    compile_file, default_name, open, open_bytes, read_file, read_log_bytes, stats_file, Error,
    Parser, TraceFile,
};
