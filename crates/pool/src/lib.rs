//! The contiguous pool core (being written).
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;
pub mod mover;
pub use records::{MoverKind, Policy};
