//! The pool's invariants, checked from scratch. Tests call
//! [`Pool::check_invariants`] after every event; the replay never does.

use super::{InvariantError, Pool, NONE};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

impl Pool {
    /// Checks every invariant; O(n log n). Tests call it after every event.
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        let err = |s: String| Err(InvariantError(s));
        let units = self.free.units();
        let mut used = Vec::new();
        let (mut resident, mut live, mut overflow) = (0usize, 0usize, 0u64);
        for (i, b) in self.bufs.iter().enumerate() {
            let i = i as u32;
            if !b.live {
                if b.offset != NONE || b.pinned {
                    return err(format!("dead buffer #{i} is resident or pinned"));
                }
                continue;
            }
            live += 1;
            if b.units as u64
                != b.size
                    .div_ceil(self.config.alignment)
                    .max(1)
                    .min(units as u64 + 1)
            {
                return err(format!(
                    "buffer #{i} holds {} units for {} bytes",
                    b.units, b.size
                ));
            }
            if b.offset == NONE {
                overflow += b.size;
                if self.purgeable.contains(&i) {
                    return err(format!("non-resident #{i} in the purgeable set"));
                }
                continue;
            }
            resident += 1;
            if b.offset + b.units > units {
                return err(format!(
                    "buffer #{i} at unit {} + {} runs past the pool ({units})",
                    b.offset, b.units
                ));
            }
            if self.residents.at(b.offset) != Some(i) {
                return err(format!("buffer #{i} missing from the address index"));
            }
            if b.dontneed != self.purgeable.contains(&i) {
                return err(format!("purgeable set wrong for #{i}"));
            }
            if !b.has_content {
                return err(format!("resident #{i} has no content"));
            }
        }
        if live != self.live || resident != self.mru.len() || self.residents.len() != resident {
            return err(format!(
                "counts: live {live}/{} resident {resident}, MRU list {} indexed {}",
                self.live,
                self.mru.len(),
                self.residents.len()
            ));
        }
        if overflow != self.overflow_bytes {
            return err(format!(
                "overflow bytes {} but non-resident buffers sum to {overflow}",
                self.overflow_bytes
            ));
        }
        let mut end = 0;
        for (o, i) in self.residents.scan() {
            if o < end {
                return err(format!(
                    "buffer #{i} at unit {o} overlaps the one below (ends at {end})"
                ));
            }
            let b = &self.bufs[i as usize];
            end = o + b.units;
            used.push((o, b.units));
        }
        if let Err(e) = self.free.check(&used) {
            return err(e);
        }
        let used_units: u32 = used.iter().map(|u| u.1).sum();
        if used_units + self.free.free_units() != units {
            return err(format!(
                "used {used_units} + free {} != {units} units",
                self.free.free_units()
            ));
        }
        // MRU: exactly the resident buffers (the counts above match), links
        // consistent both ways.
        self.mru.check(&self.bufs).or_else(err)?;
        if let Some(c) = self
            .mru
            .iter(&self.bufs)
            .find(|&c| self.bufs[c as usize].offset == NONE)
        {
            return err(format!("MRU list holds non-resident #{c}"));
        }
        // Moves in flight: one per buffer, ticket recorded, and no resident
        // buffer other than the mover's own overlaps a range still in use.
        for (k, f) in self.inflight.iter().enumerate() {
            if self.bufs[f.buffer as usize].inflight != Some(f.ticket) {
                return err(format!(
                    "move {:?} of #{} not recorded on the buffer",
                    f.ticket, f.buffer
                ));
            }
            if self.inflight[k + 1..].iter().any(|g| g.buffer == f.buffer) {
                return err(format!("two moves in flight for #{}", f.buffer));
            }
            for (s, e) in [f.src, f.dst].into_iter().flatten() {
                for (o, j) in self.residents.scan().take_while(|&(o, _)| o < e) {
                    if j != f.buffer && o + self.bufs[j as usize].units > s {
                        return err(format!(
                            "#{j} placed over [{s}, {e}) still used by a move of #{}",
                            f.buffer
                        ));
                    }
                }
            }
        }
        for (i, b) in self.bufs.iter().enumerate() {
            if let Some(t) = b.inflight {
                if !self.inflight.iter().any(|f| f.ticket == t) {
                    return err(format!("#{i} waits for {t:?}, which is not in flight"));
                }
            }
        }
        Ok(())
    }
}
