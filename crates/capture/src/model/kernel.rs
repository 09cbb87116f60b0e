//! Pass 2, the kernel's side: objects, references, usecnts, framebuffers and
//! jobs, and what the log says when they change.

use super::*;

impl Model<'_> {
    pub(super) fn warn(&mut self, text: String) {
        if self.out.warnings.len() < MAX_WARNINGS {
            self.out
                .warnings
                .push(format!("process {}: {text}", self.process));
        } else {
            self.dropped_warnings += 1;
        }
    }

    pub(super) fn emit(&mut self, obj: usize, op: Op, source: Source) {
        let id = self.objs[obj].id;
        self.out.events.push(OutEvent {
            time_ns: self.now,
            op,
            id,
            source,
            process: self.process,
        });
    }

    pub(super) fn create(&mut self, size: u64, kind: BoKind) -> usize {
        let n = self.objs.len();
        let id = bo_id(n as u32);
        let source = if kind.is_userspace() {
            Source::Measured
        } else {
            Source::Kernel
        };
        self.out.bos.push(BoInfo {
            id,
            size,
            kind,
            process: self.process,
            created_ns: self.now,
            destroyed_ns: None,
        });
        self.objs.push(Obj {
            id,
            info: self.out.bos.len() - 1,
            ..Obj::default()
        });
        self.emit(
            n,
            Op::Create {
                size,
                bin: kind == BoKind::KernelBin,
            },
            source,
        );
        n
    }

    pub(super) fn maybe_destroy(&mut self, obj: usize) {
        let o = &self.objs[obj];
        if o.destroyed || o.referenced() {
            return;
        }
        if o.usecnt > 0 {
            self.objs[obj].usecnt = 0;
            self.emit(obj, Op::RemoveUsecnt, Source::FreeReset);
        }
        self.objs[obj].destroyed = true;
        self.emit(obj, Op::Destroy, Source::Model);
        let info = self.objs[obj].info;
        self.out.bos[info].destroyed_ns = Some(self.now);
        if self.bin == Some(obj) {
            self.bin = None;
        }
    }

    pub(super) fn inc_usecnt(&mut self, obj: usize, source: Source) {
        if self.objs[obj].usecnt == 0 {
            self.emit(obj, Op::Use, Source::IncUsecnt);
            self.emit(obj, Op::AddUsecnt, source);
        }
        self.objs[obj].usecnt += 1;
    }

    pub(super) fn dec_usecnt(&mut self, obj: usize, source: Source) {
        let o = &mut self.objs[obj];
        if o.usecnt == 0 {
            return;
        }
        o.usecnt -= 1;
        if o.usecnt == 0 {
            self.emit(obj, Op::RemoveUsecnt, source);
        }
    }

    pub(super) fn bin_get(&mut self) -> usize {
        let bin = match self.bin {
            Some(b) => b,
            None => {
                let b = self.create(BIN_BO_SIZE, BoKind::KernelBin);
                self.bin = Some(b);
                b
            }
        };
        self.objs[bin].bin_users += 1;
        bin
    }

    pub(super) fn bin_put(&mut self) {
        if let Some(b) = self.bin {
            self.objs[b].bin_users -= 1;
            self.maybe_destroy(b);
        }
    }

    pub(super) fn proc(&mut self) -> &mut Proc {
        &mut self.procs[self.process]
    }

    pub(super) fn drm_file(&mut self, fd: i32) -> Option<usize> {
        match self.proc().fds.get(&fd) {
            Some(FdRef::Drm(f)) => Some(*f),
            _ => None,
        }
    }

    pub(super) fn lookup(&mut self, fd: i32, handle: u32, what: &str) -> Option<usize> {
        let found = self.drm_file(fd).and_then(|f| {
            self.procs[self.process].files[f]
                .handles
                .get(&handle)
                .copied()
        });
        if found.is_none() {
            self.warn(format!(
                "{what} of handle {handle} on fd {fd}, which the model does not know"
            ));
        }
        found
    }

    pub(super) fn close_fd(&mut self, fd: i32) {
        let Some(r) = self.proc().fds.remove(&fd) else {
            return;
        };
        match r {
            FdRef::Drm(f) => {
                let file = &mut self.procs[self.process].files[f];
                file.fds -= 1;
                if file.fds == 0 {
                    self.release_file(f);
                }
            }
            FdRef::Dmabuf(d) => {
                self.dmabufs[d].fds -= 1;
                if self.dmabufs[d].fds == 0 {
                    let (obj, inode) = (self.dmabufs[d].obj, self.dmabufs[d].inode);
                    if inode != 0 && self.dmabuf_by_inode.get(&inode) == Some(&d) {
                        self.dmabuf_by_inode.remove(&inode);
                    }
                    self.objs[obj].dmabufs -= 1;
                    self.maybe_destroy(obj);
                }
            }
        }
    }

    /// The last fd of a DRM file closed: its framebuffers, then its GEM
    /// handles, then its hold on the binner BO (`drm_file_free` order).
    pub(super) fn release_file(&mut self, f: usize) {
        let mut fb_ids: Vec<u32> = self
            .proc()
            .fbs
            .iter()
            .filter(|(_, fb)| fb.file == f && !fb.removed)
            .map(|(&id, _)| id)
            .collect();
        fb_ids.sort_unstable();
        for id in fb_ids {
            self.remove_fb(id);
        }
        let file = &mut self.procs[self.process].files[f];
        file.released = true;
        let mut handles: Vec<(u32, usize)> = file.handles.drain().collect();
        handles.sort_unstable();
        for (_, obj) in handles {
            self.objs[obj].handles -= 1;
            self.maybe_destroy(obj);
        }
        if std::mem::take(&mut self.procs[self.process].files[f].bin_used) {
            self.bin_put();
        }
    }

    pub(super) fn fb_release_if_dead(&mut self, fb_id: u32) {
        let dead = self
            .proc()
            .fbs
            .get(&fb_id)
            .is_some_and(|fb| fb.removed && fb.scanning == 0);
        if dead {
            if let Some(fb) = self.proc().fbs.remove(&fb_id) {
                for obj in fb.objs {
                    self.objs[obj].fbs -= 1;
                    self.maybe_destroy(obj);
                }
            }
        }
    }

    /// `prepare_fb`: the framebuffer is about to be scanned out.
    pub(super) fn scanout_begin(&mut self, fb_id: u32) -> bool {
        let Some(fb) = self.proc().fbs.get_mut(&fb_id) else {
            return false;
        };
        fb.scanning += 1;
        let first = fb.objs[0];
        self.objs[first].scanout += 1;
        self.inc_usecnt(first, Source::Scanout);
        true
    }

    /// `cleanup_fb`: the framebuffer has been replaced on screen.
    pub(super) fn scanout_end(&mut self, fb_id: u32) {
        let Some(fb) = self.proc().fbs.get_mut(&fb_id) else {
            return;
        };
        fb.scanning -= 1;
        let first = fb.objs[0];
        self.dec_usecnt(first, Source::Scanout);
        self.objs[first].scanout -= 1;
        self.fb_release_if_dead(fb_id);
        self.maybe_destroy(first);
    }

    pub(super) fn remove_fb(&mut self, fb_id: u32) {
        match self.proc().fbs.get_mut(&fb_id) {
            Some(fb) if !fb.removed => fb.removed = true,
            _ => return,
        }
        // Removing a framebuffer on screen switches its CRTC off.
        let mut crtcs: Vec<u32> = self
            .proc()
            .crtcs
            .iter()
            .filter(|(_, c)| c.shown == Some(fb_id))
            .map(|(&id, _)| id)
            .collect();
        crtcs.sort_unstable();
        for c in crtcs {
            if let Some(crtc) = self.proc().crtcs.get_mut(&c) {
                crtc.shown = None;
            }
            self.scanout_end(fb_id);
        }
        self.fb_release_if_dead(fb_id);
    }

    pub(super) fn flip_done(&mut self, flip: u32) {
        let crtc = self
            .proc()
            .crtcs
            .iter()
            .find(|(_, c)| c.pending.is_some_and(|(_, k)| k == flip))
            .map(|(&id, _)| id);
        if let Some(c) = crtc {
            self.complete_flip(c);
        }
    }

    pub(super) fn complete_flip(&mut self, crtc_id: u32) {
        let Some(crtc) = self.proc().crtcs.get_mut(&crtc_id) else {
            return;
        };
        let Some((new, _)) = crtc.pending.take() else {
            return;
        };
        let old = crtc.shown.replace(new);
        self.out.scanout_flips += 1;
        if let Some(old) = old {
            self.scanout_end(old);
        }
    }

    pub(super) fn job_done(&mut self, j: usize) {
        let Some(job) = self.proc().jobs.get_mut(j).and_then(Option::take) else {
            return;
        };
        for &obj in &job.objs {
            self.dec_usecnt(obj, Source::Job);
            self.objs[obj].jobs -= 1;
            self.maybe_destroy(obj);
        }
        for &obj in &job.kernel {
            self.objs[obj].jobs -= 1;
            self.maybe_destroy(obj);
        }
        if job.uses_bin {
            self.bin_put();
        }
    }

    pub(super) fn submit(&mut self, r: &Record, s: &Submit) {
        let mut objs = Vec::with_capacity(s.handles.len());
        for &h in &s.handles {
            if let Some(obj) = self.lookup(r.fd, h, "SUBMIT_CL") {
                objs.push(obj);
            }
        }
        // vc4_cl_lookup_bos: every entry of the BO list is counted.
        for &obj in &objs {
            self.inc_usecnt(obj, Source::Job);
            self.objs[obj].jobs += 1;
        }
        let mut kernel = Vec::new();
        let mut uses_bin = false;
        if self.opts.kernel_bos {
            if s.bin_cl_size != 0 {
                self.bin_get();
                uses_bin = true;
                let exec = self.create(round_up(exec_bo_bytes(s), self.page), BoKind::KernelBcl);
                kernel.push(exec);
            }
            let rcl = self.create(round_up(rcl_bo_bytes(s), self.page), BoKind::KernelRcl);
            kernel.push(rcl);
            for &k in &kernel {
                self.objs[k].jobs += 1;
            }
        }
        self.out.gpu_jobs += 1;
        self.proc().jobs.push(Some(Job {
            objs,
            kernel,
            uses_bin,
        }));
    }

    pub(super) fn new_user_bo(&mut self, fd: i32, size: u64, handle: u32, kind: BoKind) {
        let Some(f) = self.drm_file(fd) else {
            self.warn(format!(
                "BO create on fd {fd}, which the model does not know as a DRM device"
            ));
            return;
        };
        if self.opts.kernel_bos
            && kind != BoKind::Dumb
            && !self.procs[self.process].files[f].bin_used
        {
            self.procs[self.process].files[f].bin_used = true;
            self.bin_get();
        }
        let obj = self.create(round_up(size.max(1), self.page), kind);
        self.objs[obj].handles += 1;
        if let Some(old) = self.procs[self.process].files[f]
            .handles
            .insert(handle, obj)
        {
            // A handle the model thought open was reused: it missed a close.
            self.warn(format!(
                "handle {handle} created again while the model had it open"
            ));
            self.objs[old].handles -= 1;
            self.maybe_destroy(old);
        }
    }

    pub(super) fn unmap(&mut self, addr: u64, len: u64) {
        let end = addr.saturating_add(len);
        let hit: Vec<u64> = self
            .proc()
            .maps
            .range(..end)
            .filter(|(&a, &(l, _))| a.saturating_add(l) > addr)
            .map(|(&a, _)| a)
            .collect();
        for a in hit {
            if let Some((_, obj)) = self.proc().maps.remove(&a) {
                self.objs[obj].maps -= 1;
                self.maybe_destroy(obj);
            }
        }
    }

    /// The process is gone: its mappings go first (exit_mm), then its fds (exit_files).
    pub(super) fn end_process(&mut self) {
        self.unmap(0, u64::MAX);
        let mut fds: Vec<i32> = self.proc().fds.keys().copied().collect();
        fds.sort_unstable();
        for fd in fds {
            self.close_fd(fd);
        }
    }
}
