//! What the vc4 recorder writes and what the converter makes of it.
//!
//! - [`uapi`]: the ioctl numbers and struct layouts of the Linux DRM and vc4
//!   UAPI headers that the recorder decodes (and the test device answers);
//! - [`raw`]: the recorder's per-process raw file, versioned, with a header;
//! - [`model`]: the converter, a model of what the vc4 kernel branch with
//!   buffer-object logging would have printed for the recorded calls, and
//!   the `@@@` log it writes.
//!
//! Everything here is pure and tested on the host; the recorder library
//! (`recorder/`) and `cargo xtask record-convert` are thin layers over it.

extern crate alloc;

pub mod model;
pub mod raw;
pub mod uapi;
