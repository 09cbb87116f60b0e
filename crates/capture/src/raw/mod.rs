//! The recorder's raw file: one per traced process, written as the process
//! runs (one `write(2)` per record, so a crash loses nothing already written).
//!
//! All integers are little-endian. A file is a 128-byte header then records.
//!
//! Header (`HEADER_LEN` bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `PBVC4RAW` |
//! | 8 | 2 | format version ([`VERSION`]) |
//! | 10 | 2 | header length (128; a reader skips what it does not know) |
//! | 12 | 4 | flags ([`FLAG_TOUCH`]) |
//! | 16 | 4 | process id |
//! | 20 | 4 | parent process id |
//! | 24 | 8 | CLOCK_MONOTONIC at start, ns |
//! | 32 | 8 | CLOCK_REALTIME at start, ns |
//! | 40 | 4 | page size |
//! | 44 | 4 | pointer width in bits (32 or 64) |
//! | 48 | 16 | `comm` (the kernel's process name), NUL-padded |
//! | 64 | 64 | the executable's file name, NUL-padded, cut at 64 bytes |
//!
//! Each record starts with a 24-byte head: kind (u16), reserved (u16, 0),
//! total length in bytes including the head (u32), CLOCK_MONOTONIC time in ns
//! when the call returned (u64), the fd the call was on (i32; -1 if none) and
//! the call's result (i32: the return value, or `-errno` on failure). The
//! body follows; [`Body`] lists each kind's fields in order. A reader skips
//! kinds it does not know by their length, so new kinds need no new version;
//! a change to an existing body does.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The file's first eight bytes.
pub const MAGIC: [u8; 8] = *b"PBVC4RAW";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Bytes in the header.
pub const HEADER_LEN: usize = 128;
/// Bytes in a record's head.
pub const RECORD_HEAD_LEN: usize = 24;
/// Header flag: CPU touches of mapped BOs were tracked (page protection).
pub const FLAG_TOUCH: u32 = 1 << 0;
/// `handle` of an mmap the recorder could not attribute to a BO.
pub const NO_HANDLE: u32 = u32::MAX;

/// Who recorded the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub flags: u32,
    pub pid: u32,
    pub ppid: u32,
    pub start_monotonic_ns: u64,
    pub start_realtime_ns: u64,
    pub page_size: u32,
    pub pointer_bits: u32,
    /// The kernel's name of the process (`/proc/self/comm`).
    pub comm: String,
    /// The executable's file name.
    pub exe: String,
}

fn put_padded(out: &mut [u8], text: &[u8]) {
    let n = text.len().min(out.len());
    out[..n].copy_from_slice(&text[..n]);
    for b in &mut out[n..] {
        *b = 0;
    }
}

fn padded_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Header {
    /// The header's bytes; `comm` and `exe` are given as raw bytes so the
    /// recorder needs no `String`.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        Self::encode_parts(self, self.comm.as_bytes(), self.exe.as_bytes())
    }

    /// As [`Header::encode`], with the names given separately (the recorder's
    /// `comm` and `exe` fields may be left empty).
    pub fn encode_parts(&self, comm: &[u8], exe: &[u8]) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_le_bytes());
        h[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        h[12..16].copy_from_slice(&self.flags.to_le_bytes());
        h[16..20].copy_from_slice(&self.pid.to_le_bytes());
        h[20..24].copy_from_slice(&self.ppid.to_le_bytes());
        h[24..32].copy_from_slice(&self.start_monotonic_ns.to_le_bytes());
        h[32..40].copy_from_slice(&self.start_realtime_ns.to_le_bytes());
        h[40..44].copy_from_slice(&self.page_size.to_le_bytes());
        h[44..48].copy_from_slice(&self.pointer_bits.to_le_bytes());
        put_padded(&mut h[48..64], comm);
        put_padded(&mut h[64..128], exe);
        h
    }
}

/// A surface of a job's render-control list: which BO (an index into the
/// job's BO list) and how it is read or written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Surface {
    pub hindex: u32,
    pub offset: u32,
    pub bits: u16,
    pub flags: u16,
}

impl Surface {
    /// Whether the job has this surface (`hindex != ~0`).
    pub fn present(&self) -> bool {
        self.hindex != u32::MAX
    }
}

/// What `DRM_IOCTL_VC4_SUBMIT_CL` was given and returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Submit {
    /// Out: the job's sequence number.
    pub seqno: u64,
    pub flags: u32,
    pub bin_cl_size: u32,
    pub shader_rec_size: u32,
    pub shader_rec_count: u32,
    pub uniforms_size: u32,
    pub width: u16,
    pub height: u16,
    pub min_x_tile: u8,
    pub min_y_tile: u8,
    pub max_x_tile: u8,
    pub max_y_tile: u8,
    /// color_read, color_write, zs_read, zs_write, msaa_color_write, msaa_zs_write.
    pub surfaces: [Surface; 6],
    /// `bo_handle_count` as passed (the list below is empty when the call failed).
    pub bo_handle_count: u32,
    /// The job's BO list (`bo_handles`), read after a successful call.
    pub handles: Vec<u32>,
}

/// Indices into [`Submit::surfaces`].
pub mod surface {
    pub const COLOR_READ: usize = 0;
    pub const COLOR_WRITE: usize = 1;
    pub const ZS_READ: usize = 2;
    pub const ZS_WRITE: usize = 3;
    pub const MSAA_COLOR_WRITE: usize = 4;
    pub const MSAA_ZS_WRITE: usize = 5;
}

/// One record's body, by kind. Field order is the order on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// 1: `open`/`openat` of a DRM device node: flags (i32), path length (u16), path.
    Open { flags: i32, path: Vec<u8> },
    /// 2: `close` of a DRM or dma-buf fd (head's fd); no body.
    Close,
    /// 3: `dup`/`dup2`/`dup3`/`fcntl(F_DUPFD*)` of a DRM or dma-buf fd: the new fd is the result.
    Dup,
    /// 4: `VC4_CREATE_BO`: size, flags, handle (u32 each).
    CreateBo { size: u32, flags: u32, handle: u32 },
    /// 5: `VC4_CREATE_SHADER_BO`: size, flags, handle.
    CreateShaderBo { size: u32, flags: u32, handle: u32 },
    /// 6: `GEM_CLOSE`: handle.
    GemClose { handle: u32 },
    /// 7: `VC4_MMAP_BO` (and `MODE_MAP_DUMB`): handle (u32), pad (u32), offset (u64).
    MmapBo { handle: u32, offset: u64 },
    /// 8: `mmap` on a DRM fd: address, length, offset (u64), prot, flags (i32),
    /// the BO's handle ([`NO_HANDLE`] if the offset named none), pad (u32).
    /// The address is the result (the head's result is 0 or `-errno`).
    Mmap {
        addr: u64,
        len: u64,
        offset: u64,
        prot: i32,
        flags: i32,
        handle: u32,
    },
    /// 9: `munmap` overlapping a BO mapping: address, length (u64).
    Munmap { addr: u64, len: u64 },
    /// 10: `VC4_GEM_MADVISE`: handle, madv, retained.
    Madvise {
        handle: u32,
        madv: u32,
        retained: u32,
    },
    /// 11: `VC4_SUBMIT_CL`: seqno (u64), flags, bin_cl_size, shader_rec_size,
    /// shader_rec_count, uniforms_size (u32), width, height (u16), min_x, min_y,
    /// max_x, max_y tile (u8), six surfaces (hindex, offset: u32; bits,
    /// flags: u16), bo_handle_count (u32), handles recorded (u32), the handles.
    SubmitCl(Submit),
    /// 12: `VC4_WAIT_SEQNO`: seqno, timeout_ns, call start time (u64 each).
    WaitSeqno {
        seqno: u64,
        timeout_ns: u64,
        start_ns: u64,
    },
    /// 13: `VC4_WAIT_BO`: handle (u32), pad (u32), timeout_ns, start time (u64).
    WaitBo {
        handle: u32,
        timeout_ns: u64,
        start_ns: u64,
    },
    /// 14: `PRIME_HANDLE_TO_FD`: handle, flags (u32), dma-buf fd (i32), pad, dma-buf inode (u64).
    PrimeExport {
        handle: u32,
        flags: u32,
        dmabuf_fd: i32,
        inode: u64,
    },
    /// 15: `PRIME_FD_TO_HANDLE`: dma-buf fd (i32), handle (u32), dma-buf inode (u64).
    PrimeImport {
        dmabuf_fd: i32,
        handle: u32,
        inode: u64,
    },
    /// 16: `MODE_ADDFB` / `MODE_ADDFB2`: fb_id, width, height, pixel format
    /// (0 for legacy ADDFB), four handles (u32 each).
    AddFb {
        fb_id: u32,
        width: u32,
        height: u32,
        pixel_format: u32,
        handles: [u32; 4],
    },
    /// 17: `MODE_RMFB`: fb_id.
    RmFb { fb_id: u32 },
    /// 18: `MODE_SETCRTC`: crtc_id, fb_id (0: the CRTC is switched off).
    SetCrtc { crtc_id: u32, fb_id: u32 },
    /// 19: `MODE_PAGE_FLIP`: crtc_id, fb_id, flags (u32), pad, user_data (u64).
    PageFlip {
        crtc_id: u32,
        fb_id: u32,
        flags: u32,
        user_data: u64,
    },
    /// 20: a vblank or flip-complete event read from the DRM fd: type, crtc_id,
    /// sequence, tv_sec, tv_usec (u32), pad, user_data (u64).
    FlipEvent {
        event_type: u32,
        crtc_id: u32,
        sequence: u32,
        tv_sec: u32,
        tv_usec: u32,
        user_data: u64,
    },
    /// 21: the first CPU access to a BO mapping since the last job submission:
    /// handle (u32), pad, mapping start, fault address (u64).
    Touch {
        handle: u32,
        map_addr: u64,
        fault_addr: u64,
    },
    /// 22: `MODE_CREATE_DUMB`: handle, width, height, bpp (u32), size (u64).
    CreateDumb {
        handle: u32,
        width: u32,
        height: u32,
        bpp: u32,
        size: u64,
    },
    /// 23: `MODE_DESTROY_DUMB`: handle.
    DestroyDumb { handle: u32 },
    /// 24: the process is exiting (`atexit`); no body.
    Exit,
    /// 25: a message from the recorder (why it stopped), UTF-8.
    Note { text: Vec<u8> },
}

impl Body {
    /// The kind number on disk.
    pub fn kind(&self) -> u16 {
        match self {
            Body::Open { .. } => 1,
            Body::Close => 2,
            Body::Dup => 3,
            Body::CreateBo { .. } => 4,
            Body::CreateShaderBo { .. } => 5,
            Body::GemClose { .. } => 6,
            Body::MmapBo { .. } => 7,
            Body::Mmap { .. } => 8,
            Body::Munmap { .. } => 9,
            Body::Madvise { .. } => 10,
            Body::SubmitCl(_) => 11,
            Body::WaitSeqno { .. } => 12,
            Body::WaitBo { .. } => 13,
            Body::PrimeExport { .. } => 14,
            Body::PrimeImport { .. } => 15,
            Body::AddFb { .. } => 16,
            Body::RmFb { .. } => 17,
            Body::SetCrtc { .. } => 18,
            Body::PageFlip { .. } => 19,
            Body::FlipEvent { .. } => 20,
            Body::Touch { .. } => 21,
            Body::CreateDumb { .. } => 22,
            Body::DestroyDumb { .. } => 23,
            Body::Exit => 24,
            Body::Note { .. } => 25,
        }
    }

    /// A short name for messages and statistics.
    pub fn name(&self) -> &'static str {
        match self {
            Body::Open { .. } => "open",
            Body::Close => "close",
            Body::Dup => "dup",
            Body::CreateBo { .. } => "create_bo",
            Body::CreateShaderBo { .. } => "create_shader_bo",
            Body::GemClose { .. } => "gem_close",
            Body::MmapBo { .. } => "mmap_bo",
            Body::Mmap { .. } => "mmap",
            Body::Munmap { .. } => "munmap",
            Body::Madvise { .. } => "madvise",
            Body::SubmitCl(_) => "submit_cl",
            Body::WaitSeqno { .. } => "wait_seqno",
            Body::WaitBo { .. } => "wait_bo",
            Body::PrimeExport { .. } => "prime_export",
            Body::PrimeImport { .. } => "prime_import",
            Body::AddFb { .. } => "addfb",
            Body::RmFb { .. } => "rmfb",
            Body::SetCrtc { .. } => "setcrtc",
            Body::PageFlip { .. } => "page_flip",
            Body::FlipEvent { .. } => "flip_event",
            Body::Touch { .. } => "touch",
            Body::CreateDumb { .. } => "create_dumb",
            Body::DestroyDumb { .. } => "destroy_dumb",
            Body::Exit => "exit",
            Body::Note { .. } => "note",
        }
    }
}

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// CLOCK_MONOTONIC when the call returned, ns.
    pub time_ns: u64,
    /// The fd the call was on (-1 if none).
    pub fd: i32,
    /// The return value, or `-errno`.
    pub result: i32,
    pub body: Body,
}

impl Record {
    /// Whether the call succeeded.
    pub fn ok(&self) -> bool {
        self.result >= 0
    }
}

mod decode;
mod encode;

pub use decode::{parse, RawError, RawFile};

#[cfg(test)]
mod tests;
