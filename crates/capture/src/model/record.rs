//! Pass 2, one recorded call at a time: what the kernel does when serving it.

use super::*;

impl Model<'_> {
    pub(super) fn record(&mut self, r: &Record, touch_file: bool) {
        if !r.ok() {
            return;
        }
        match &r.body {
            Body::Open { .. } => {
                self.close_fd(r.result);
                let p = self.proc();
                p.files.push(DrmFile {
                    fds: 1,
                    ..DrmFile::default()
                });
                let f = p.files.len() - 1;
                p.fds.insert(r.result, FdRef::Drm(f));
            }
            Body::Dup => {
                let Some(src) = self.proc().fds.get(&r.fd).copied() else {
                    return;
                };
                if r.result != r.fd {
                    self.close_fd(r.result);
                }
                match src {
                    FdRef::Drm(f) => self.procs[self.process].files[f].fds += 1,
                    FdRef::Dmabuf(d) => self.dmabufs[d].fds += 1,
                }
                self.proc().fds.insert(r.result, src);
            }
            Body::Close => self.close_fd(r.fd),
            Body::CreateBo { size, handle, .. } => {
                self.new_user_bo(r.fd, *size as u64, *handle, BoKind::V3d)
            }
            Body::CreateShaderBo { size, handle, .. } => {
                self.new_user_bo(r.fd, *size as u64, *handle, BoKind::V3dShader)
            }
            Body::CreateDumb { handle, size, .. } => {
                self.new_user_bo(r.fd, *size, *handle, BoKind::Dumb)
            }
            Body::GemClose { handle } | Body::DestroyDumb { handle } => {
                let Some(f) = self.drm_file(r.fd) else { return };
                match self.procs[self.process].files[f].handles.remove(handle) {
                    Some(obj) => {
                        self.objs[obj].handles -= 1;
                        self.maybe_destroy(obj);
                    }
                    None => self.warn(format!(
                        "GEM_CLOSE of handle {handle}, which the model does not know"
                    )),
                }
            }
            Body::MmapBo { handle, offset } => {
                if let Some(obj) = self.lookup(r.fd, *handle, "MMAP_BO") {
                    if let Some(f) = self.drm_file(r.fd) {
                        self.procs[self.process].files[f]
                            .offsets
                            .insert(*offset, obj);
                    }
                }
            }
            Body::Mmap {
                addr,
                len,
                offset,
                handle,
                ..
            } => {
                let by_offset = self.drm_file(r.fd).and_then(|f| {
                    self.procs[self.process].files[f]
                        .offsets
                        .get(offset)
                        .copied()
                });
                let obj = match by_offset {
                    Some(o) => Some(o),
                    None => self.lookup(r.fd, *handle, "mmap"),
                };
                let Some(obj) = obj else { return };
                self.unmap(*addr, *len);
                self.emit(obj, Op::Use, Source::Mmap);
                self.objs[obj].maps += 1;
                self.proc().maps.insert(*addr, (*len, obj));
            }
            Body::Munmap { addr, len } => self.unmap(*addr, *len),
            Body::Madvise { handle, madv, .. } => {
                if let Some(obj) = self.lookup(r.fd, *handle, "GEM_MADVISE") {
                    match *madv {
                        VC4_MADV_WILLNEED => {
                            self.emit(obj, Op::Madv { willneed: true }, Source::Measured)
                        }
                        VC4_MADV_DONTNEED => {
                            self.emit(obj, Op::Madv { willneed: false }, Source::Measured)
                        }
                        other => self.warn(format!("GEM_MADVISE with advice {other}")),
                    }
                }
            }
            Body::SubmitCl(s) => self.submit(r, s),
            Body::PrimeExport {
                handle,
                dmabuf_fd,
                inode,
                ..
            } => {
                let Some(obj) = self.lookup(r.fd, *handle, "PRIME_HANDLE_TO_FD") else {
                    return;
                };
                self.close_fd(*dmabuf_fd);
                let live = (*inode != 0)
                    .then(|| self.dmabuf_by_inode.get(inode).copied())
                    .flatten();
                let d = match live {
                    Some(d) => {
                        self.dmabufs[d].fds += 1;
                        d
                    }
                    None => {
                        self.dmabufs.push(Dmabuf {
                            obj,
                            fds: 1,
                            inode: *inode,
                        });
                        let d = self.dmabufs.len() - 1;
                        if *inode != 0 {
                            self.dmabuf_by_inode.insert(*inode, d);
                        }
                        self.objs[obj].dmabufs += 1;
                        // vc4_prime_export takes a usecnt it never gives back.
                        self.inc_usecnt(obj, Source::PrimeExport);
                        d
                    }
                };
                self.proc().fds.insert(*dmabuf_fd, FdRef::Dmabuf(d));
            }
            Body::PrimeImport {
                dmabuf_fd,
                handle,
                inode,
            } => {
                let d = match self.proc().fds.get(dmabuf_fd) {
                    Some(FdRef::Dmabuf(d)) => Some(*d),
                    _ => (*inode != 0)
                        .then(|| self.dmabuf_by_inode.get(inode).copied())
                        .flatten(),
                };
                let Some(d) = d else {
                    self.warn(format!("import of dma-buf fd {dmabuf_fd} from outside the recording: its BO is not in the trace"));
                    return;
                };
                let obj = self.dmabufs[d].obj;
                // A dma-buf fd received from elsewhere: its close is recorded from now on.
                if !self.proc().fds.contains_key(dmabuf_fd) {
                    self.dmabufs[d].fds += 1;
                    self.proc().fds.insert(*dmabuf_fd, FdRef::Dmabuf(d));
                }
                let Some(f) = self.drm_file(r.fd) else { return };
                let file = &mut self.procs[self.process].files[f];
                match file.handles.get(handle) {
                    Some(&o) if o == obj => {}
                    Some(_) => self.warn(format!(
                        "import returned handle {handle}, open for another BO"
                    )),
                    None => {
                        file.handles.insert(*handle, obj);
                        self.objs[obj].handles += 1;
                    }
                }
            }
            Body::AddFb { fb_id, handles, .. } => {
                let Some(f) = self.drm_file(r.fd) else { return };
                let mut objs = Vec::new();
                for (i, &h) in handles.iter().enumerate() {
                    if h == 0 && i > 0 {
                        continue;
                    }
                    if let Some(obj) = self.lookup(r.fd, h, "ADDFB") {
                        if !objs.contains(&obj) {
                            objs.push(obj);
                        }
                    }
                }
                if objs.is_empty() {
                    return;
                }
                for &obj in &objs {
                    self.objs[obj].fbs += 1;
                }
                self.proc().fbs.insert(
                    *fb_id,
                    Fb {
                        file: f,
                        objs,
                        removed: false,
                        scanning: 0,
                    },
                );
            }
            Body::RmFb { fb_id } => self.remove_fb(*fb_id),
            Body::SetCrtc { crtc_id, fb_id } => {
                let shown = *fb_id != 0 && self.scanout_begin(*fb_id);
                let crtc = self.proc().crtcs.entry(*crtc_id).or_default();
                let old = if shown {
                    crtc.shown.replace(*fb_id)
                } else {
                    crtc.shown.take()
                };
                if shown {
                    self.out.scanout_flips += 1;
                }
                if let Some(old) = old {
                    self.scanout_end(old);
                }
            }
            Body::PageFlip { crtc_id, fb_id, .. } => {
                let k = self.proc().flips;
                self.proc().flips += 1;
                if self.scanout_begin(*fb_id) {
                    self.proc().crtcs.entry(*crtc_id).or_default().pending = Some((*fb_id, k));
                } else {
                    self.warn(format!(
                        "PAGE_FLIP to framebuffer {fb_id}, which the model does not know"
                    ));
                }
            }
            Body::Touch { map_addr, .. } => {
                if !(self.opts.touch && touch_file) {
                    return;
                }
                match self.proc().maps.get(map_addr).map(|&(_, o)| o) {
                    Some(obj) => self.emit(obj, Op::Use, Source::CpuTouch),
                    None => self.warn(format!(
                        "touch of a mapping at {map_addr:#x} the model does not know"
                    )),
                }
            }
            Body::Note { text } => {
                let text = String::from_utf8_lossy(text).into_owned();
                self.warn(format!("recorder: {text}"));
            }
            Body::WaitSeqno { .. } | Body::WaitBo { .. } | Body::FlipEvent { .. } | Body::Exit => {}
        }
    }
}
