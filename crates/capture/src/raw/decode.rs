//! Reading a raw file back, checked field by field: the converter's side.

use super::*;

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
