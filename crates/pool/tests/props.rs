//! Property tests: random valid event sequences against every policy.

mod common;
use common::*;
use pool::mover::{Location, Move};
use pool::{Pool, PoolConfig};
use proptest::prelude::*;
use records::{BufferState, Policy};
use trace::{Event, EventKind, Madv};

const UNIT: u64 = 4096;
/// A small pool (64 units) so that pressure, eviction and Rule 1 happen often.
const POOL: u64 = 64 * UNIT;

/// One step of a generated trace; `pick` chooses among the live buffers.
#[derive(Clone, Debug)]
enum Step {
    Create {
        units: u64,
        extra_bytes: u64,
        unmoveable: bool,
    },
    Use(usize),
    TogglePin(usize),
    Madv(usize, bool),
    Destroy(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u64..24, 0u64..UNIT, prop::bool::weighted(0.05))
            .prop_map(|(units, extra_bytes, unmoveable)| Step::Create { units, extra_bytes, unmoveable }),
        4 => any::<usize>().prop_map(Step::Use),
        3 => any::<usize>().prop_map(Step::TogglePin),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(k, d)| Step::Madv(k, d)),
        2 => any::<usize>().prop_map(Step::Destroy),
    ]
}

/// Turns steps into a valid trace (pins toggle, so no double pin; events
/// name live buffers only).
fn events(steps: &[Step]) -> Vec<Event> {
    let mut live: Vec<(u32, bool)> = Vec::new();
    let mut next = 0u32;
    let mut out = Vec::new();
    for (t, s) in steps.iter().enumerate() {
        let time_us = t as u64 * 10;
        let mut e = |buffer, kind| {
            out.push(Event {
                time_us,
                buffer,
                kind,
            })
        };
        match *s {
            Step::Create {
                units,
                extra_bytes,
                unmoveable,
            } => {
                // Sizes that are not multiples of the alignment exercise rounding.
                let size = (units - 1) * UNIT + extra_bytes.max(1);
                e(next, EventKind::Create { size, unmoveable });
                live.push((next, false));
                next += 1;
            }
            _ if live.is_empty() => {}
            Step::Use(k) => e(live[k % live.len()].0, EventKind::Use),
            Step::TogglePin(k) => {
                let n = live.len();
                let (b, pinned) = &mut live[k % n];
                e(
                    *b,
                    if *pinned {
                        EventKind::RemoveUsecnt
                    } else {
                        EventKind::AddUsecnt
                    },
                );
                *pinned = !*pinned;
            }
            Step::Madv(k, d) => e(
                live[k % live.len()].0,
                EventKind::Madv(if d { Madv::DontNeed } else { Madv::WillNeed }),
            ),
            Step::Destroy(k) => {
                let (b, _) = live.swap_remove(k % live.len());
                e(b, EventKind::Destroy);
            }
        }
    }
    out
}

fn new_pool(policy: Policy) -> Pool {
    Pool::new(PoolConfig {
        pool_bytes: POOL,
        alignment: UNIT,
        policy,
    })
    .unwrap()
}

/// Replays with every check: invariants after each event, the mover's
/// contract checks, and no Copy-away or Drop of a pinned or unmoveable buffer.
fn check_run(policy: Policy, evs: &[Event], mover: &mut Recorder) -> Result<Pool, TestCaseError> {
    let mut p = new_pool(policy);
    let mut unmoveable = std::collections::HashSet::new();
    for e in evs {
        if let EventKind::Create {
            unmoveable: true, ..
        } = e.kind
        {
            unmoveable.insert(e.buffer);
        }
        let before = mover.log.len();
        p.apply(e, mover, &mut ()).unwrap();
        if let Err(err) = p.check_invariants() {
            return Err(TestCaseError::fail(format!("{policy} after {e:?}: {err}")));
        }
        prop_assert!(
            mover.violations.is_empty(),
            "{policy}: {:?}",
            mover.violations
        );
        for op in &mover.log[before..] {
            if let Op::Submit(_, mv) = op {
                let away = matches!(
                    mv,
                    Move::Copy {
                        from: Location::Pool { .. },
                        ..
                    } | Move::Drop { .. }
                );
                if away {
                    prop_assert!(
                        !p.is_pinned(mv.buffer()),
                        "{policy} moved pinned #{}: {mv:?}",
                        mv.buffer()
                    );
                    prop_assert!(
                        !unmoveable.contains(&mv.buffer()),
                        "{policy} moved unmoveable: {mv:?}"
                    );
                }
            }
        }
    }
    p.drain(mover);
    p.check_invariants()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    Ok(p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_with_an_instant_mover(steps in prop::collection::vec(step(), 1..200)) {
        let evs = events(&steps);
        for policy in Policy::ALL {
            check_run(policy, &evs, &mut Recorder::instant())?;
        }
    }

    #[test]
    fn invariants_hold_with_an_async_mover(steps in prop::collection::vec(step(), 1..200), seed in any::<u64>(), rate in 0u32..256) {
        let evs = events(&steps);
        for policy in Policy::ALL {
            check_run(policy, &evs, &mut Recorder::new(rate, seed))?;
        }
    }

    /// Async and instant movers give the same placements: waiting changes
    /// when moves finish, never what the policy decides.
    #[test]
    fn placements_do_not_depend_on_move_timing(steps in prop::collection::vec(step(), 1..150), seed in any::<u64>()) {
        let evs = events(&steps);
        for policy in Policy::ALL {
            let a = check_run(policy, &evs, &mut Recorder::instant())?;
            let b = check_run(policy, &evs, &mut Recorder::new(40, seed))?;
            prop_assert_eq!(a.snapshot(), b.snapshot());
            prop_assert_eq!(a.counters().moves, b.counters().moves);
        }
    }

    /// A mover whose moves are complete at submission (the pool then keeps
    /// no moves in flight) gives the same run as an instant mover whose
    /// moves the pool tracks until it polls them: only the count of waits,
    /// which no result reports, may differ.
    #[test]
    fn untracked_moves_change_nothing(steps in prop::collection::vec(step(), 1..200)) {
        let evs = events(&steps);
        for policy in Policy::ALL {
            let tracked = check_run(policy, &evs, &mut Recorder::instant())?;
            let mut untracked = new_pool(policy);
            let mut null = pool::mover::NullMover::default();
            for e in &evs {
                untracked.apply(e, &mut null, &mut ()).unwrap();
                prop_assert_eq!(untracked.moves_in_flight(), 0);
                if let Err(err) = untracked.check_invariants() {
                    return Err(TestCaseError::fail(format!("{policy} after {e:?}: {err}")));
                }
            }
            prop_assert_eq!(tracked.snapshot(), untracked.snapshot());
            let without_waits = |p: &Pool| pool::Counters { waits: 0, ..*p.counters() };
            prop_assert_eq!(without_waits(&tracked), without_waits(&untracked));
        }
    }

    /// What defrag guarantees (docs/design.md 4.7): with the pinned and unmoveable resident
    /// buffers where they are, if some gap between them (or the pool's ends)
    /// holds the requested buffer, the page-in succeeds. (A bound on sums
    /// alone, pinned + unmoveable + requested <= pool, is not enough: pinned
    /// buffers scattered across the pool can leave no gap big enough, and no
    /// policy may move them. When the immovable buffers are packed, e.g.
    /// unmoveable ones created first into an empty pool and nothing pinned,
    /// the largest gap is exactly pool - their sum, and the bound on sums
    /// holds.) First-fit has no such guarantee.
    #[test]
    fn defrag_fails_only_when_immovable_buffers_leave_no_gap(steps in prop::collection::vec(step(), 1..200)) {
        let evs = events(&steps);
        let mut p = new_pool(Policy::Defrag);
        let mut m = Recorder::instant();
        for e in &evs {
            let pages_in = match e.kind {
                EventKind::Create { size, .. } => Some(size.div_ceil(UNIT) * UNIT),
                EventKind::Use if p.location(e.buffer) == Some(Location::Overflow) => {
                    Some(p.snapshot().overflow.iter().find(|b| b.buffer == e.buffer).unwrap().size.div_ceil(UNIT) * UNIT)
                }
                _ => None,
            };
            let gap = largest_gap_between_immovables(&p);
            p.apply(e, &mut m, &mut ()).unwrap();
            if let Some(need) = pages_in {
                if need <= gap {
                    prop_assert!(matches!(p.location(e.buffer), Some(Location::Pool { .. })),
                        "defrag failed {e:?} ({need} bytes) with a {gap}-byte gap between immovable buffers");
                } else {
                    // A page-in that must fail leaves nothing movable resident
                    // (purged or paged out, as first-fit would).
                    prop_assert!(p.snapshot().resident.iter().all(|b| b.state != BufferState::Movable),
                        "defrag failed {e:?} and kept movable buffers resident");
                }
            }
        }
    }

    /// The packed case in terms of sums: unmoveable buffers created first,
    /// nothing pinned: defrag succeeds whenever unmoveable + requested <= pool.
    #[test]
    fn defrag_with_packed_unmoveable_fits_by_arithmetic(
        fixed in prop::collection::vec(1u64..8, 0..4),
        steps in prop::collection::vec(step(), 1..200),
    ) {
        let mut evs: Vec<Event> = fixed.iter().enumerate().map(|(i, &u)| Event {
            time_us: 0, buffer: 10_000 + i as u32, kind: EventKind::Create { size: u * UNIT, unmoveable: true },
        }).collect();
        evs.extend(events(&steps).into_iter().filter(|e| !matches!(e.kind, EventKind::AddUsecnt | EventKind::RemoveUsecnt)).map(|mut e| {
            if let EventKind::Create { size, .. } = e.kind { e.kind = EventKind::Create { size, unmoveable: false }; }
            e
        }));
        let fixed_bytes: u64 = fixed.iter().sum::<u64>() * UNIT;
        let mut p = new_pool(Policy::Defrag);
        let mut m = Recorder::instant();
        for e in &evs {
            p.apply(e, &mut m, &mut ()).unwrap();
            let need = match e.kind {
                EventKind::Create { size, .. } => Some(size.div_ceil(UNIT) * UNIT),
                _ => None,
            };
            if let Some(need) = need {
                if fixed_bytes + need <= POOL {
                    prop_assert!(matches!(p.location(e.buffer), Some(Location::Pool { .. })), "{e:?}");
                }
            }
        }
        prop_assert_eq!(p.counters().rule1_failures, 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// `fluid` (docs/design.md 4.12) fails a page-in exactly when the buffer
    /// is larger than the pool less its resident pinned and unmoveable
    /// buffers (whatever their arrangement), and its free space is one hole.
    #[test]
    fn fluid_fails_only_for_want_of_space(steps in prop::collection::vec(step(), 1..200)) {
        let evs = events(&steps);
        let mut f = pool::fluid::Fluid::new(POOL, UNIT).unwrap();
        let mut immovable = std::collections::BTreeMap::<u32, (u64, bool, bool)>::new();
        let mut sizes = std::collections::HashMap::new();
        for e in &evs {
            let need = match e.kind {
                EventKind::Create { size, unmoveable } => {
                    sizes.insert(e.buffer, size.div_ceil(UNIT) * UNIT);
                    immovable.insert(e.buffer, (size.div_ceil(UNIT) * UNIT, unmoveable, false));
                    Some(size.div_ceil(UNIT) * UNIT)
                }
                EventKind::Use if f.is_resident(e.buffer) == Some(false) => Some(sizes[&e.buffer]),
                _ => None,
            };
            let fixed: u64 = immovable
                .iter()
                .filter(|&(&b, &(_, u, pinned))| (u || pinned) && f.is_resident(b) == Some(true))
                .map(|(_, &(units, _, _))| units)
                .sum();
            let failures = f.counters().rule1_failures;
            f.apply(e, &mut ()).unwrap();
            match e.kind {
                EventKind::AddUsecnt => { immovable.get_mut(&e.buffer).unwrap().2 = true; }
                EventKind::RemoveUsecnt => { immovable.get_mut(&e.buffer).unwrap().2 = false; }
                EventKind::Destroy => { immovable.remove(&e.buffer); }
                _ => {}
            }
            if let Some(need) = need {
                let failed = f.counters().rule1_failures > failures;
                prop_assert_eq!(failed, fixed + need > POOL, "{:?}: need {} fixed {}", e, need, fixed);
                prop_assert_eq!(f.is_resident(e.buffer), Some(!failed));
            }
            let m = f.metrics();
            prop_assert_eq!(m.largest_hole, m.free_bytes);
        }
    }
}

fn largest_gap_between_immovables(p: &Pool) -> u64 {
    let mut cursor = 0;
    let mut best = 0;
    for b in p.snapshot().resident {
        if b.state != BufferState::Movable {
            best = best.max(b.offset - cursor);
            cursor = b.offset + b.size.div_ceil(UNIT) * UNIT;
        }
    }
    best.max(POOL - cursor)
}

// ---- the reference model for first-fit and compact ----

/// The rules of docs/design.md (sections 4.4, 4.5) for first-fit and compact, written
/// with linear scans and no cleverness.
#[derive(Default)]
struct Reference {
    /// (buffer, units, offset or None, pinned, unmoveable, dontneed)
    bufs: Vec<(u32, u64, Option<u64>, bool, bool, bool)>,
    /// Resident buffers, most recently used first.
    mru: Vec<u32>,
    compact: bool,
    units: u64,
    page_outs: u64,
    purges: u64,
    rule1: u64,
}

impl Reference {
    fn find(&mut self, b: u32) -> usize {
        self.bufs.iter().position(|x| x.0 == b).unwrap()
    }

    fn first_fit(&self, need: u64) -> Option<u64> {
        let mut used: Vec<(u64, u64)> = self
            .bufs
            .iter()
            .filter_map(|x| x.2.map(|o| (o, x.1)))
            .collect();
        used.sort();
        let mut cursor = 0;
        for (o, u) in used {
            if o - cursor >= need {
                return Some(cursor);
            }
            cursor = o + u;
        }
        (self.units - cursor >= need).then_some(cursor)
    }

    fn evict(&mut self, i: usize) {
        let b = self.bufs[i].0;
        self.bufs[i].2 = None;
        self.mru.retain(|&x| x != b);
    }

    fn page_in(&mut self, b: u32) {
        let i = self.find(b);
        let need = self.bufs[i].1;
        let mut spot = None;
        if need <= self.units {
            spot = self.first_fit(need);
            if spot.is_none() {
                let victims: Vec<usize> = (0..self.bufs.len())
                    .filter(|&j| {
                        self.bufs[j].2.is_some()
                            && self.bufs[j].5
                            && !self.bufs[j].3
                            && !self.bufs[j].4
                    })
                    .collect();
                for &j in &victims {
                    self.evict(j);
                    self.purges += 1;
                }
                spot = self.first_fit(need);
            }
            while spot.is_none() {
                let lru = self.mru.iter().rev().copied().find(|&x| {
                    let j = self.bufs.iter().position(|y| y.0 == x).unwrap();
                    !self.bufs[j].3 && !self.bufs[j].4
                });
                let Some(victim) = lru else { break };
                let j = self.find(victim);
                self.evict(j);
                self.page_outs += 1;
                spot = self.first_fit(need);
            }
        }
        match spot {
            Some(o) => {
                self.bufs[i].2 = Some(o);
                self.mru.insert(0, b);
            }
            None => self.rule1 += 1,
        }
    }

    fn apply(&mut self, e: &Event) {
        match e.kind {
            EventKind::Create { size, unmoveable } => {
                self.bufs.push((
                    e.buffer,
                    size.div_ceil(UNIT).max(1),
                    None,
                    false,
                    unmoveable,
                    false,
                ));
                self.page_in(e.buffer);
            }
            EventKind::Use => {
                let i = self.find(e.buffer);
                if self.bufs[i].2.is_some() {
                    self.mru.retain(|&x| x != e.buffer);
                    self.mru.insert(0, e.buffer);
                } else {
                    self.page_in(e.buffer);
                }
            }
            EventKind::AddUsecnt => {
                let i = self.find(e.buffer);
                self.bufs[i].3 = true;
            }
            EventKind::RemoveUsecnt => {
                let i = self.find(e.buffer);
                self.bufs[i].3 = false;
                if let (true, Some(o), false) = (self.compact, self.bufs[i].2, self.bufs[i].4) {
                    let floor = self
                        .bufs
                        .iter()
                        .filter_map(|x| x.2.map(|p| p + x.1))
                        .filter(|&end| end <= o)
                        .max()
                        .unwrap_or(0);
                    self.bufs[i].2 = Some(floor);
                }
            }
            EventKind::Madv(m) => {
                let i = self.find(e.buffer);
                self.bufs[i].5 = m == Madv::DontNeed;
            }
            EventKind::Destroy => {
                let i = self.find(e.buffer);
                self.evict(i);
                self.bufs.remove(i);
            }
        }
    }

    fn compare(&self, p: &Pool, e: &Event) -> Result<(), TestCaseError> {
        for x in &self.bufs {
            let want = match x.2 {
                Some(o) => Location::Pool { offset: o * UNIT },
                None => Location::Overflow,
            };
            prop_assert_eq!(p.location(x.0), Some(want), "buffer {} after {:?}", x.0, e);
        }
        prop_assert_eq!(p.mru_order(), self.mru.clone());
        prop_assert_eq!(
            (
                p.counters().page_outs,
                p.counters().purges,
                p.counters().rule1_failures
            ),
            (self.page_outs, self.purges, self.rule1)
        );
        Ok(())
    }
}

/// Replays `evs` through the pool and the reference side by side.
fn compare_with_reference(
    policy: Policy,
    pool_bytes: u64,
    evs: &[Event],
) -> Result<(), TestCaseError> {
    let mut p = Pool::new(PoolConfig {
        pool_bytes,
        alignment: UNIT,
        policy,
    })
    .unwrap();
    let mut r = Reference {
        compact: policy == Policy::Compact,
        units: pool_bytes / UNIT,
        ..Reference::default()
    };
    let mut m = Recorder::instant();
    for e in evs {
        p.apply(e, &mut m, &mut ()).unwrap();
        r.apply(e);
        r.compare(&p, e)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn first_fit_and_compact_match_the_reference(steps in prop::collection::vec(step(), 1..250)) {
        let evs = events(&steps);
        compare_with_reference(Policy::FirstFit, POOL, &evs)?;
        compare_with_reference(Policy::Compact, POOL, &evs)?;
    }
}

/// The real kmscube traces, at pool sizes that fit them and that force
/// eviction, give the reference placements event by event.
#[test]
fn first_fit_and_compact_match_the_reference_on_kmscube() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../traces");
    for name in ["kmscube-msaa4.log.gz", "kmscube-rgba.log.gz"] {
        let file = trace::read_file(dir.join(name), trace::Mode::Lenient).unwrap();
        for pool_mib in [24u64, 32, 128] {
            for policy in [Policy::FirstFit, Policy::Compact] {
                compare_with_reference(policy, pool_mib << 20, &file.events)
                    .unwrap_or_else(|e| panic!("{name} {pool_mib} MiB {policy}: {e}"));
            }
        }
    }
}
