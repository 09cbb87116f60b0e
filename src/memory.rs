//! Where the pool and the backing heap go: the pool size this image was
//! built with, and the plan of `bcm::layout` (host-tested) applied to the
//! ARM memory the mailbox reported.

use core::ops::Range;

pub use bcm::layout::{Layout, LayoutError};

/// Pool size in bytes: `POOLBED_POOL_SIZE` at build time (decimal bytes, as
/// `cargo xtask build --pool-size` passes it), default 128 MiB. A bad value
/// stops the build.
pub const POOL_SIZE: usize = match option_env!("POOLBED_POOL_SIZE") {
    Some(text) => match bcm::layout::parse_pool_size(text) {
        Ok(bytes) => bytes,
        Err(e) => panic!("{}", e.describe()),
    },
    None => bcm::layout::DEFAULT_POOL_SIZE,
};

/// Places a pool of [`POOL_SIZE`] and the heap in ARM memory `(base, size)`
/// after `coherent`.
pub fn plan(arm_memory: Option<(u32, u32)>, coherent: Range<usize>) -> Result<Layout, LayoutError> {
    bcm::layout::plan(arm_memory, coherent, POOL_SIZE)
}
