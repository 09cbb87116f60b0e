//! A register block at a fixed MMIO address, the way the drivers hold their
//! tock-registers structs: the address is given once, to an `unsafe`
//! constructor, and every access after it goes through the struct's
//! volatile cells.

use core::marker::PhantomData;
use core::ops::Deref;

/// The register block `T` at a fixed address.
pub struct Mmio<T> {
    base: usize,
    phantom: PhantomData<fn() -> T>,
}

impl<T> Mmio<T> {
    /// The block at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a device register block laid out as
    /// `T`, mapped Device memory (or reached with the MMU off) for as long
    /// as the value is used, and every driver built on it must agree on who
    /// accesses which register.
    pub const unsafe fn new(base: usize) -> Self {
        Mmio {
            base,
            phantom: PhantomData,
        }
    }
}

impl<T> Deref for Mmio<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `new`'s contract: a mapped register block of type `T`,
        // whose fields are volatile cells, so a shared reference is sound.
        unsafe { &*(self.base as *const T) }
    }
}
