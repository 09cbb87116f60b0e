//! The event model: what one `@@@` line means once it is parsed and validated.

/// Dense index of a buffer within one trace, assigned in order of `create`.
///
/// Log ids (8 to 16 hex digits) may be reused after `destroy`; every `create`
/// gets a fresh index, so an index names exactly one buffer lifetime.
pub type BufferIndex = u32;

/// `madvise` state set by userspace's buffer cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Madv {
    /// The buffer is needed again: it may no longer be purged.
    WillNeed,
    /// The content may be dropped under memory pressure (purge).
    DontNeed,
}

/// What happened to a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new buffer of `size` bytes; `unmoveable` buffers (BIN, FBCON) are never moved or evicted.
    Create { size: u64, unmoveable: bool },
    /// CPU access: the buffer must be resident and becomes most recently used.
    Use,
    /// A GPU job references the buffer: pinned (usecnt 0 -> 1).
    AddUsecnt,
    /// The job finished: unpinned (usecnt 1 -> 0).
    RemoveUsecnt,
    /// Userspace marks the buffer purgeable or needed.
    Madv(Madv),
    /// The buffer is freed, wherever it is, pinned or not.
    Destroy,
}

/// One validated trace event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// Kernel log timestamp in microseconds.
    pub time_us: u64,
    /// The buffer this event is about.
    pub buffer: BufferIndex,
    pub kind: EventKind,
}
