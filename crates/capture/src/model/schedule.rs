//! Pass 1: when each job and each flip finished, from the evidence a
//! program saw (waits that returned, vblank events), before any object is modelled.

use super::*;

// ---------------------------------------------------------------------------
// Pass 1: when did each job and each flip finish?

/// When a job or flip finishes, and whether that moment is after the call
/// that started it (so it sorts before records at the same nanosecond).
#[derive(Clone, Copy, Debug)]
pub(super) struct Done {
    pub(super) time_ns: u64,
    pub(super) after_start: bool,
}

#[derive(Default)]
pub(super) struct Schedule {
    /// Per process: completion of each successful SUBMIT_CL, in order.
    pub(super) jobs: Vec<Vec<Done>>,
    /// Per process: completion of each successful PAGE_FLIP, in order.
    pub(super) flips: Vec<Vec<Done>>,
    /// Per process: the time its last record was written.
    pub(super) end_ns: Vec<u64>,
}

pub(super) fn sorted_records(file: &RawFile) -> Vec<&Record> {
    let mut v: Vec<&Record> = file.records.iter().collect();
    // Threads write their own records; a later call can land first by a hair.
    v.sort_by_key(|r| r.time_ns);
    v
}

pub(super) fn schedule(files: &[RawFile]) -> Schedule {
    let mut sched = Schedule::default();
    for file in files {
        let records = sorted_records(file);
        let end = records.last().map_or(0, |r| r.time_ns);
        // fd -> DRM file (numbered as opened), for handle lookups.
        let mut fds: HashMap<i32, usize> = HashMap::new();
        let mut opened = 0usize;
        let mut submits: Vec<u64> = Vec::new();
        let mut bound: Vec<u64> = Vec::new();
        let mut seqnos: Vec<u64> = Vec::new();
        let mut last_job: HashMap<(usize, u32), usize> = HashMap::new();
        let mut fbs: HashMap<u32, (usize, u32)> = HashMap::new();
        // Per flip: start, completion, and the last job using its buffer.
        let mut flips: Vec<(u64, Option<Done>, Option<usize>)> = Vec::new();
        let mut pending: HashMap<u32, usize> = HashMap::new();
        let finish = |flips: &mut Vec<(u64, Option<Done>, Option<usize>)>, i: usize, t: u64| {
            let start = flips[i].0;
            let time_ns = t.max(start);
            flips[i].1.get_or_insert(Done {
                time_ns,
                after_start: time_ns > start,
            });
        };
        for r in &records {
            if !r.ok() {
                continue;
            }
            let key = fds.get(&r.fd).copied();
            match &r.body {
                Body::Open { .. } => {
                    fds.insert(r.result, opened);
                    opened += 1;
                }
                Body::Dup => {
                    if let Some(k) = key {
                        fds.insert(r.result, k);
                    }
                }
                Body::Close => {
                    fds.remove(&r.fd);
                }
                Body::SubmitCl(s) => {
                    let j = submits.len();
                    submits.push(r.time_ns);
                    bound.push(u64::MAX);
                    seqnos.push(s.seqno);
                    if let Some(k) = key {
                        for &h in &s.handles {
                            last_job.insert((k, h), j);
                        }
                    }
                }
                Body::WaitSeqno { seqno, .. } => {
                    // The newest job the wait covers; in-order completion covers the rest.
                    if let Some(j) = seqnos.iter().rposition(|s| s <= seqno) {
                        bound[j] = bound[j].min(r.time_ns);
                    }
                }
                Body::WaitBo { handle, .. } => {
                    if let Some(&j) = key.and_then(|k| last_job.get(&(k, *handle))) {
                        bound[j] = bound[j].min(r.time_ns);
                    }
                }
                Body::AddFb { fb_id, handles, .. } => {
                    if let Some(k) = key {
                        fbs.insert(*fb_id, (k, handles[0]));
                    }
                }
                Body::SetCrtc { crtc_id, .. } => {
                    if let Some(i) = pending.remove(crtc_id) {
                        finish(&mut flips, i, r.time_ns);
                    }
                }
                Body::PageFlip { crtc_id, fb_id, .. } => {
                    if let Some(i) = pending.remove(crtc_id) {
                        finish(&mut flips, i, r.time_ns);
                    }
                    pending.insert(*crtc_id, flips.len());
                    // The kernel shows the new buffer only once its last job is done.
                    let job = fbs.get(fb_id).and_then(|kh| last_job.get(kh)).copied();
                    flips.push((r.time_ns, None, job));
                }
                Body::FlipEvent {
                    crtc_id,
                    tv_sec,
                    tv_usec,
                    ..
                } => {
                    let mut which = pending.remove(crtc_id);
                    if which.is_none() && *crtc_id == 0 && pending.len() == 1 {
                        let only = pending.keys().next().copied();
                        which = only.and_then(|c| pending.remove(&c));
                    }
                    if let Some(i) = which {
                        let stamp = *tv_sec as u64 * 1_000_000_000 + *tv_usec as u64 * 1000;
                        let t = stamp.clamp(flips[i].0, r.time_ns.max(flips[i].0));
                        finish(&mut flips, i, t);
                    }
                }
                _ => {}
            }
        }
        for (_, done, job) in &flips {
            if let (Some(done), Some(j)) = (done, job) {
                bound[*j] = bound[*j].min(done.time_ns);
            }
        }
        // In order: a job is done no later than any job after it.
        let mut later = u64::MAX;
        let mut jobs = Vec::with_capacity(bound.len());
        for i in (0..bound.len()).rev() {
            later = later.min(bound[i]);
            jobs.push(if later == u64::MAX {
                Done {
                    time_ns: end.max(submits[i]),
                    after_start: false,
                }
            } else {
                let time_ns = later.max(submits[i]);
                Done {
                    time_ns,
                    after_start: time_ns > submits[i],
                }
            });
        }
        jobs.reverse();
        let flips = flips
            .iter()
            .map(|&(start, done, _)| {
                done.unwrap_or(Done {
                    time_ns: end.max(start),
                    after_start: false,
                })
            })
            .collect();
        sched.jobs.push(jobs);
        sched.flips.push(flips);
        sched.end_ns.push(end);
    }
    sched
}
