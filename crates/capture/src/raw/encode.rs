//! Writing records: the recorder's side of the format.

use super::*;

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
