//! The contiguous-pool core: placement, the four policies of docs/design.md
//! section 4, the moves they cause, metrics, and the replay loop shared by the
//! host simulator and the firmware. No hardware knowledge; `no_std` + `alloc`.
//!
//! - [`Pool`]: buffers, residency, MRU order, policies; every change of
//!   placement is a [`mover::Move`] handed to a [`mover::Mover`].
//! - [`replay::replay`]: events in, [`records::Record`]s out;
//!   `parallel::replay_all` (`std`): one parse, every policy at once.
//! - [`model::ModelMover`]: the simulator's mover.
//! - [`stats::LatencyRecorder`]: move latency statistics for any mover.
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;

pub mod fluid;
mod freeindex;
pub mod model;
pub mod mover;
#[cfg(feature = "std")]
pub mod parallel;
mod pool;
pub mod ranges;
pub mod replay;
#[cfg(feature = "std")]
pub mod scaling;
pub mod stats;
pub mod sweep;
pub mod zeroing;

pub use freeindex::FreeIndex;
pub use pool::{
    ConfigError, Counters, EventError, EventMetrics, InvariantError, MetricsSink, Pool, PoolConfig,
    MAX_UNITS,
};
pub use records::{MoverKind, Policy};
