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

/// Writes little-endian fields into a fixed buffer; `None` once it is full.
struct Put<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Put<'_> {
    fn bytes(&mut self, b: &[u8]) -> Option<()> {
        let end = self.at.checked_add(b.len())?;
        self.buf.get_mut(self.at..end)?.copy_from_slice(b);
        self.at = end;
        Some(())
    }
    fn u8(&mut self, v: u8) -> Option<()> {
        self.bytes(&[v])
    }
    fn u16(&mut self, v: u16) -> Option<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) -> Option<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn i32(&mut self, v: i32) -> Option<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> Option<()> {
        self.bytes(&v.to_le_bytes())
    }
}

impl Record {
    /// Bytes the record takes on disk.
    pub fn encoded_len(&self) -> usize {
        RECORD_HEAD_LEN
            + match &self.body {
                Body::Open { path, .. } => 6 + path.len(),
                Body::Close | Body::Dup | Body::Exit => 0,
                Body::CreateBo { .. } | Body::CreateShaderBo { .. } | Body::Madvise { .. } => 12,
                Body::GemClose { .. } | Body::RmFb { .. } | Body::DestroyDumb { .. } => 4,
                Body::MmapBo { .. } => 16,
                Body::Mmap { .. } => 40,
                Body::Munmap { .. } => 16,
                Body::SubmitCl(s) => 8 + 5 * 4 + 2 * 2 + 4 + 6 * 12 + 8 + 4 * s.handles.len(),
                Body::WaitSeqno { .. } => 24,
                Body::WaitBo { .. } => 24,
                Body::PrimeExport { .. } => 24,
                Body::PrimeImport { .. } => 16,
                Body::AddFb { .. } => 32,
                Body::SetCrtc { .. } => 8,
                Body::PageFlip { .. } => 24,
                Body::FlipEvent { .. } => 32,
                Body::Touch { .. } => 24,
                Body::CreateDumb { .. } => 24,
                Body::Note { text } => text.len(),
            }
    }

    /// Writes the record into `buf` without allocating (the recorder calls
    /// this in its signal handler); the number of bytes, or `None` if `buf`
    /// is too short.
    pub fn encode_into(&self, buf: &mut [u8]) -> Option<usize> {
        let len = self.encoded_len();
        let mut p = Put { buf, at: 0 };
        p.u16(self.body.kind())?;
        p.u16(0)?;
        p.u32(u32::try_from(len).ok()?)?;
        p.u64(self.time_ns)?;
        p.i32(self.fd)?;
        p.i32(self.result)?;
        match &self.body {
            Body::Open { flags, path } => {
                p.i32(*flags)?;
                p.u16(u16::try_from(path.len()).ok()?)?;
                p.bytes(path)?;
            }
            Body::Close | Body::Dup | Body::Exit => {}
            Body::CreateBo {
                size,
                flags,
                handle,
            }
            | Body::CreateShaderBo {
                size,
                flags,
                handle,
            } => {
                p.u32(*size)?;
                p.u32(*flags)?;
                p.u32(*handle)?;
            }
            Body::GemClose { handle } | Body::DestroyDumb { handle } => p.u32(*handle)?,
            Body::RmFb { fb_id } => p.u32(*fb_id)?,
            Body::MmapBo { handle, offset } => {
                p.u32(*handle)?;
                p.u32(0)?;
                p.u64(*offset)?;
            }
            Body::Mmap {
                addr,
                len,
                offset,
                prot,
                flags,
                handle,
            } => {
                p.u64(*addr)?;
                p.u64(*len)?;
                p.u64(*offset)?;
                p.i32(*prot)?;
                p.i32(*flags)?;
                p.u32(*handle)?;
                p.u32(0)?;
            }
            Body::Munmap { addr, len } => {
                p.u64(*addr)?;
                p.u64(*len)?;
            }
            Body::Madvise {
                handle,
                madv,
                retained,
            } => {
                p.u32(*handle)?;
                p.u32(*madv)?;
                p.u32(*retained)?;
            }
            Body::SubmitCl(s) => {
                p.u64(s.seqno)?;
                for v in [
                    s.flags,
                    s.bin_cl_size,
                    s.shader_rec_size,
                    s.shader_rec_count,
                    s.uniforms_size,
                ] {
                    p.u32(v)?;
                }
                p.u16(s.width)?;
                p.u16(s.height)?;
                for v in [s.min_x_tile, s.min_y_tile, s.max_x_tile, s.max_y_tile] {
                    p.u8(v)?;
                }
                for surface in &s.surfaces {
                    p.u32(surface.hindex)?;
                    p.u32(surface.offset)?;
                    p.u16(surface.bits)?;
                    p.u16(surface.flags)?;
                }
                p.u32(s.bo_handle_count)?;
                p.u32(u32::try_from(s.handles.len()).ok()?)?;
                for h in &s.handles {
                    p.u32(*h)?;
                }
            }
            Body::WaitSeqno {
                seqno,
                timeout_ns,
                start_ns,
            } => {
                p.u64(*seqno)?;
                p.u64(*timeout_ns)?;
                p.u64(*start_ns)?;
            }
            Body::WaitBo {
                handle,
                timeout_ns,
                start_ns,
            } => {
                p.u32(*handle)?;
                p.u32(0)?;
                p.u64(*timeout_ns)?;
                p.u64(*start_ns)?;
            }
            Body::PrimeExport {
                handle,
                flags,
                dmabuf_fd,
                inode,
            } => {
                p.u32(*handle)?;
                p.u32(*flags)?;
                p.i32(*dmabuf_fd)?;
                p.u32(0)?;
                p.u64(*inode)?;
            }
            Body::PrimeImport {
                dmabuf_fd,
                handle,
                inode,
            } => {
                p.i32(*dmabuf_fd)?;
                p.u32(*handle)?;
                p.u64(*inode)?;
            }
            Body::AddFb {
                fb_id,
                width,
                height,
                pixel_format,
                handles,
            } => {
                for v in [*fb_id, *width, *height, *pixel_format] {
                    p.u32(v)?;
                }
                for h in handles {
                    p.u32(*h)?;
                }
            }
            Body::SetCrtc { crtc_id, fb_id } => {
                p.u32(*crtc_id)?;
                p.u32(*fb_id)?;
            }
            Body::PageFlip {
                crtc_id,
                fb_id,
                flags,
                user_data,
            } => {
                p.u32(*crtc_id)?;
                p.u32(*fb_id)?;
                p.u32(*flags)?;
                p.u32(0)?;
                p.u64(*user_data)?;
            }
            Body::FlipEvent {
                event_type,
                crtc_id,
                sequence,
                tv_sec,
                tv_usec,
                user_data,
            } => {
                for v in [*event_type, *crtc_id, *sequence, *tv_sec, *tv_usec, 0] {
                    p.u32(v)?;
                }
                p.u64(*user_data)?;
            }
            Body::Touch {
                handle,
                map_addr,
                fault_addr,
            } => {
                p.u32(*handle)?;
                p.u32(0)?;
                p.u64(*map_addr)?;
                p.u64(*fault_addr)?;
            }
            Body::CreateDumb {
                handle,
                width,
                height,
                bpp,
                size,
            } => {
                for v in [*handle, *width, *height, *bpp] {
                    p.u32(v)?;
                }
                p.u64(*size)?;
            }
            Body::Note { text } => p.bytes(text)?,
        }
        debug_assert_eq!(p.at, len);
        Some(p.at)
    }

    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = alloc::vec![0u8; self.encoded_len()];
        let n = self.encode_into(&mut buf);
        debug_assert_eq!(n, Some(buf.len()));
        buf
    }
}

/// Why a raw file cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawError {
    /// Shorter than a header, or not starting with [`MAGIC`].
    NotRaw,
    /// A version this reader does not know.
    Version(u16),
    /// A header length below 128.
    BadHeader,
    /// A record whose length or body does not fit its kind, at this byte offset.
    BadRecord { offset: usize, kind: u16 },
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawError::NotRaw => write!(f, "not a recorder raw file (no PBVC4RAW header)"),
            RawError::Version(v) => write!(
                f,
                "raw format version {v}; this converter reads version {VERSION}"
            ),
            RawError::BadHeader => write!(f, "the raw file's header is damaged"),
            RawError::BadRecord { offset, kind } => {
                write!(f, "damaged record (kind {kind}) at byte {offset}")
            }
        }
    }
}

/// A whole raw file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawFile {
    pub header: Header,
    pub records: Vec<Record>,
    /// Records of kinds this reader does not know, skipped.
    pub unknown_records: u64,
    /// Bytes at the end too short for a record (the process died mid-write).
    pub truncated_tail: usize,
}

/// Reads little-endian fields; `None` past the end.
struct Get<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Get<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let b = self.buf.get(self.at..end)?;
        self.at = end;
        Some(b)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.bytes(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
}

fn decode_body(kind: u16, g: &mut Get<'_>) -> Option<Option<Body>> {
    let body = match kind {
        1 => {
            let flags = g.i32()?;
            let n = g.u16()? as usize;
            Body::Open {
                flags,
                path: g.bytes(n)?.to_vec(),
            }
        }
        2 => Body::Close,
        3 => Body::Dup,
        4 => Body::CreateBo {
            size: g.u32()?,
            flags: g.u32()?,
            handle: g.u32()?,
        },
        5 => Body::CreateShaderBo {
            size: g.u32()?,
            flags: g.u32()?,
            handle: g.u32()?,
        },
        6 => Body::GemClose { handle: g.u32()? },
        7 => {
            let handle = g.u32()?;
            g.u32()?;
            Body::MmapBo {
                handle,
                offset: g.u64()?,
            }
        }
        8 => {
            let (addr, len, offset) = (g.u64()?, g.u64()?, g.u64()?);
            let (prot, flags, handle) = (g.i32()?, g.i32()?, g.u32()?);
            g.u32()?;
            Body::Mmap {
                addr,
                len,
                offset,
                prot,
                flags,
                handle,
            }
        }
        9 => Body::Munmap {
            addr: g.u64()?,
            len: g.u64()?,
        },
        10 => Body::Madvise {
            handle: g.u32()?,
            madv: g.u32()?,
            retained: g.u32()?,
        },
        11 => {
            let mut s = Submit {
                seqno: g.u64()?,
                flags: g.u32()?,
                bin_cl_size: g.u32()?,
                shader_rec_size: g.u32()?,
                shader_rec_count: g.u32()?,
                uniforms_size: g.u32()?,
                width: g.u16()?,
                height: g.u16()?,
                min_x_tile: g.u8()?,
                min_y_tile: g.u8()?,
                max_x_tile: g.u8()?,
                max_y_tile: g.u8()?,
                ..Submit::default()
            };
            for surface in &mut s.surfaces {
                *surface = Surface {
                    hindex: g.u32()?,
                    offset: g.u32()?,
                    bits: g.u16()?,
                    flags: g.u16()?,
                };
            }
            s.bo_handle_count = g.u32()?;
            let n = g.u32()? as usize;
            let bytes = g.bytes(n.checked_mul(4)?)?;
            s.handles = bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Body::SubmitCl(s)
        }
        12 => Body::WaitSeqno {
            seqno: g.u64()?,
            timeout_ns: g.u64()?,
            start_ns: g.u64()?,
        },
        13 => {
            let handle = g.u32()?;
            g.u32()?;
            Body::WaitBo {
                handle,
                timeout_ns: g.u64()?,
                start_ns: g.u64()?,
            }
        }
        14 => {
            let (handle, flags, dmabuf_fd) = (g.u32()?, g.u32()?, g.i32()?);
            g.u32()?;
            Body::PrimeExport {
                handle,
                flags,
                dmabuf_fd,
                inode: g.u64()?,
            }
        }
        15 => Body::PrimeImport {
            dmabuf_fd: g.i32()?,
            handle: g.u32()?,
            inode: g.u64()?,
        },
        16 => Body::AddFb {
            fb_id: g.u32()?,
            width: g.u32()?,
            height: g.u32()?,
            pixel_format: g.u32()?,
            handles: [g.u32()?, g.u32()?, g.u32()?, g.u32()?],
        },
        17 => Body::RmFb { fb_id: g.u32()? },
        18 => Body::SetCrtc {
            crtc_id: g.u32()?,
            fb_id: g.u32()?,
        },
        19 => {
            let (crtc_id, fb_id, flags) = (g.u32()?, g.u32()?, g.u32()?);
            g.u32()?;
            Body::PageFlip {
                crtc_id,
                fb_id,
                flags,
                user_data: g.u64()?,
            }
        }
        20 => {
            let (event_type, crtc_id, sequence, tv_sec, tv_usec) =
                (g.u32()?, g.u32()?, g.u32()?, g.u32()?, g.u32()?);
            g.u32()?;
            Body::FlipEvent {
                event_type,
                crtc_id,
                sequence,
                tv_sec,
                tv_usec,
                user_data: g.u64()?,
            }
        }
        21 => {
            let handle = g.u32()?;
            g.u32()?;
            Body::Touch {
                handle,
                map_addr: g.u64()?,
                fault_addr: g.u64()?,
            }
        }
        22 => Body::CreateDumb {
            handle: g.u32()?,
            width: g.u32()?,
            height: g.u32()?,
            bpp: g.u32()?,
            size: g.u64()?,
        },
        23 => Body::DestroyDumb { handle: g.u32()? },
        24 => Body::Exit,
        25 => {
            let rest = g.buf.len() - g.at;
            Body::Note {
                text: g.bytes(rest)?.to_vec(),
            }
        }
        _ => return Some(None),
    };
    Some(Some(body))
}

/// Parses a whole raw file.
pub fn parse(bytes: &[u8]) -> Result<RawFile, RawError> {
    if bytes.len() < HEADER_LEN || bytes[0..8] != MAGIC {
        return Err(RawError::NotRaw);
    }
    let mut g = Get { buf: bytes, at: 8 };
    let version = g.u16().ok_or(RawError::NotRaw)?;
    if version != VERSION {
        return Err(RawError::Version(version));
    }
    let header_len = g.u16().ok_or(RawError::BadHeader)? as usize;
    if header_len < HEADER_LEN || header_len > bytes.len() {
        return Err(RawError::BadHeader);
    }
    let mut header = Header {
        version,
        flags: g.u32().ok_or(RawError::BadHeader)?,
        pid: g.u32().ok_or(RawError::BadHeader)?,
        ppid: g.u32().ok_or(RawError::BadHeader)?,
        start_monotonic_ns: g.u64().ok_or(RawError::BadHeader)?,
        start_realtime_ns: g.u64().ok_or(RawError::BadHeader)?,
        page_size: g.u32().ok_or(RawError::BadHeader)?,
        pointer_bits: g.u32().ok_or(RawError::BadHeader)?,
        ..Header::default()
    };
    header.comm = padded_str(&bytes[48..64]);
    header.exe = padded_str(&bytes[64..128]);

    let mut file = RawFile {
        header,
        ..RawFile::default()
    };
    let mut at = header_len;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < RECORD_HEAD_LEN {
            file.truncated_tail = rest.len();
            break;
        }
        let mut head = Get { buf: rest, at: 0 };
        let kind = head.u16().unwrap_or(0);
        head.u16();
        let len = head.u32().unwrap_or(0) as usize;
        if len < RECORD_HEAD_LEN {
            return Err(RawError::BadRecord { offset: at, kind });
        }
        if len > rest.len() {
            file.truncated_tail = rest.len();
            break;
        }
        let time_ns = head.u64().unwrap_or(0);
        let fd = head.i32().unwrap_or(-1);
        let result = head.i32().unwrap_or(0);
        let mut body = Get {
            buf: &rest[RECORD_HEAD_LEN..len],
            at: 0,
        };
        match decode_body(kind, &mut body) {
            Some(Some(b)) if body.at == body.buf.len() => file.records.push(Record {
                time_ns,
                fd,
                result,
                body: b,
            }),
            Some(None) => file.unknown_records += 1,
            _ => return Err(RawError::BadRecord { offset: at, kind }),
        }
        at += len;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn samples() -> Vec<Body> {
        vec![
            Body::Open {
                flags: 2,
                path: b"/dev/dri/card0".to_vec(),
            },
            Body::Close,
            Body::Dup,
            Body::CreateBo {
                size: 5000,
                flags: 0,
                handle: 3,
            },
            Body::CreateShaderBo {
                size: 64,
                flags: 0,
                handle: 4,
            },
            Body::GemClose { handle: 3 },
            Body::MmapBo {
                handle: 3,
                offset: 0x1_0000_0000,
            },
            Body::Mmap {
                addr: 0x7f00_0000_0000,
                len: 8192,
                offset: 0x1000,
                prot: 3,
                flags: 1,
                handle: 3,
            },
            Body::Munmap {
                addr: 0x7f00_0000_0000,
                len: 8192,
            },
            Body::Madvise {
                handle: 3,
                madv: 1,
                retained: 1,
            },
            Body::SubmitCl(Submit {
                seqno: 7,
                bin_cl_size: 100,
                max_x_tile: 29,
                max_y_tile: 16,
                surfaces: [Surface {
                    hindex: u32::MAX,
                    ..Surface::default()
                }; 6],
                bo_handle_count: 3,
                handles: vec![3, 4, 9],
                ..Submit::default()
            }),
            Body::WaitSeqno {
                seqno: 7,
                timeout_ns: u64::MAX,
                start_ns: 5,
            },
            Body::WaitBo {
                handle: 3,
                timeout_ns: 0,
                start_ns: 6,
            },
            Body::PrimeExport {
                handle: 3,
                flags: 0x80000,
                dmabuf_fd: 9,
                inode: 1234,
            },
            Body::PrimeImport {
                dmabuf_fd: 9,
                handle: 3,
                inode: 1234,
            },
            Body::AddFb {
                fb_id: 40,
                width: 1920,
                height: 1080,
                pixel_format: 0x34325258,
                handles: [3, 0, 0, 0],
            },
            Body::RmFb { fb_id: 40 },
            Body::SetCrtc {
                crtc_id: 31,
                fb_id: 40,
            },
            Body::PageFlip {
                crtc_id: 31,
                fb_id: 40,
                flags: 1,
                user_data: 0xdead,
            },
            Body::FlipEvent {
                event_type: 2,
                crtc_id: 31,
                sequence: 9,
                tv_sec: 100,
                tv_usec: 5,
                user_data: 0xdead,
            },
            Body::Touch {
                handle: 3,
                map_addr: 0x7f00_0000_0000,
                fault_addr: 0x7f00_0000_0010,
            },
            Body::CreateDumb {
                handle: 5,
                width: 64,
                height: 64,
                bpp: 32,
                size: 16384,
            },
            Body::DestroyDumb { handle: 5 },
            Body::Exit,
            Body::Note {
                text: b"stopped".to_vec(),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        let header = Header {
            version: VERSION,
            flags: FLAG_TOUCH,
            pid: 42,
            ppid: 1,
            comm: "kmscube".into(),
            exe: "kmscube".into(),
            page_size: 4096,
            pointer_bits: 64,
            ..Header::default()
        };
        let mut bytes = header.encode().to_vec();
        let records: Vec<Record> = samples()
            .into_iter()
            .enumerate()
            .map(|(i, body)| Record {
                time_ns: 1000 + i as u64,
                fd: 3,
                result: if i == 4 { -22 } else { 0 },
                body,
            })
            .collect();
        for r in &records {
            bytes.extend(r.encode());
        }
        let file = parse(&bytes).unwrap();
        assert_eq!(file.header, header);
        assert_eq!(file.records, records);
        assert_eq!(file.truncated_tail, 0);
        let kinds: Vec<u16> = records.iter().map(|r| r.body.kind()).collect();
        assert_eq!(kinds, (1..=25).collect::<Vec<u16>>());
    }

    #[test]
    fn a_torn_last_record_is_reported_and_unknown_kinds_are_skipped() {
        let header = Header::default();
        let mut bytes = header.encode().to_vec();
        let mut unknown = Record {
            time_ns: 1,
            fd: 3,
            result: 0,
            body: Body::RmFb { fb_id: 1 },
        }
        .encode();
        unknown[0] = 200;
        bytes.extend(unknown);
        let good = Record {
            time_ns: 2,
            fd: 3,
            result: 0,
            body: Body::GemClose { handle: 1 },
        };
        bytes.extend(good.encode());
        let torn = Record {
            time_ns: 3,
            fd: 3,
            result: 0,
            body: Body::GemClose { handle: 2 },
        }
        .encode();
        bytes.extend(&torn[..torn.len() - 1]);
        let file = parse(&bytes).unwrap();
        assert_eq!(file.records, vec![good]);
        assert_eq!(file.unknown_records, 1);
        assert_eq!(file.truncated_tail, torn.len() - 1);
    }

    #[test]
    fn bad_files_are_refused() {
        assert_eq!(parse(b"hello"), Err(RawError::NotRaw));
        let mut bytes = Header::default().encode().to_vec();
        bytes[8] = 9;
        assert_eq!(parse(&bytes), Err(RawError::Version(9)));
        let mut bytes = Header::default().encode().to_vec();
        let mut rec = Record {
            time_ns: 1,
            fd: 3,
            result: 0,
            body: Body::GemClose { handle: 1 },
        }
        .encode();
        rec[4] = 30; // longer than a gem_close body
        rec.extend([0u8; 6]);
        bytes.extend(rec);
        assert!(matches!(
            parse(&bytes),
            Err(RawError::BadRecord { kind: 6, .. })
        ));
    }

    #[test]
    fn encode_into_a_short_buffer_fails_cleanly() {
        let r = Record {
            time_ns: 1,
            fd: 3,
            result: 0,
            body: Body::Touch {
                handle: 1,
                map_addr: 2,
                fault_addr: 3,
            },
        };
        let mut small = [0u8; 30];
        assert_eq!(r.encode_into(&mut small), None);
        let mut buf = [0u8; 64];
        assert_eq!(r.encode_into(&mut buf), Some(48));
    }
}
