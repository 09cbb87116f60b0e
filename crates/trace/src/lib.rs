//! Buffer traces: the event model, the vc4 `@@@` log parser, validation, statistics and the compact binary form.
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;
mod event;
pub use event::{BufferIndex, Event, EventKind, Madv};
