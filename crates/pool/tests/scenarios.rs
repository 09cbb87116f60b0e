//! Hand-made scenarios for each policy (docs/design.md, section 4).

mod common;
use common::*;
use pool::mover::{Location, Move, Ticket};
use pool::{Pool, PoolConfig};
use records::Policy;
use trace::Event;

fn pool(policy: Policy, pool_bytes: u64) -> Pool {
    Pool::new(PoolConfig {
        pool_bytes,
        alignment: 4096,
        policy,
    })
    .unwrap()
}

fn run(p: &mut Pool, m: &mut Recorder, events: &[Event]) {
    for e in events {
        p.apply(e, m, &mut ()).unwrap();
        p.check_invariants().unwrap();
    }
    assert!(m.violations.is_empty(), "{:?}", m.violations);
}

fn at(offset: u64) -> Option<Location> {
    Some(Location::Pool { offset })
}

/// 20 MiB pool: buffers 0..=4 (1 MiB) at 0..5 MiB, buffer 5 (10 MiB) at
/// 5..15 MiB, buffers 6..=10 (1 MiB) at 15..20 MiB, created in address order
/// (so 0 is least recently used); then 5 is destroyed, leaving a 10 MiB hole
/// that 11 MiB cannot use.
fn fragmented() -> Vec<Event> {
    let mut ev: Vec<Event> = (0..5).map(|b| create(b, MIB)).collect();
    ev.push(create(5, 10 * MIB));
    ev.extend((6..11).map(|b| create(b, MIB)));
    ev.push(destroy(5));
    ev
}

fn page_outs(m: &Recorder) -> Vec<u32> {
    m.moves()
        .iter()
        .filter_map(|mv| match *mv {
            Move::Copy {
                buffer,
                from: Location::Pool { .. },
                to: Location::Overflow,
                ..
            } => Some(buffer),
            _ => None,
        })
        .collect()
}

#[test]
fn fragmentation_story_first_fit_and_compact_page_out_5_mib() {
    for policy in [Policy::FirstFit, Policy::Compact] {
        let (mut p, mut m) = (pool(policy, 20 * MIB), Recorder::instant());
        run(&mut p, &mut m, &fragmented());
        for b in 0..5 {
            assert_eq!(p.location(b), at(b as u64 * MIB));
        }
        run(&mut p, &mut m, &[create(11, 11 * MIB)]);
        assert_eq!(page_outs(&m), [0, 1, 2, 3, 4], "{policy}");
        assert_eq!(p.counters().bytes.page_out, 5 * MIB);
        assert_eq!(p.location(11), at(0));
        assert_eq!(p.counters().rule1_failures, 0);
    }
}

#[test]
fn fragmentation_story_defrag_pages_out_1_mib() {
    let (mut p, mut m) = (pool(Policy::Defrag, 20 * MIB), Recorder::instant());
    run(&mut p, &mut m, &fragmented());
    run(&mut p, &mut m, &[create(11, 11 * MIB)]);
    assert_eq!(page_outs(&m), [0]);
    assert_eq!(p.counters().bytes.page_out, MIB);
    // Everyone left slid down; the new buffer sits on top of them.
    for (k, b) in (1..5).chain(6..11).enumerate() {
        assert_eq!(p.location(b), at(k as u64 * MIB), "buffer {b}");
    }
    assert_eq!(p.location(11), at(9 * MIB));
    assert_eq!(p.counters().compaction_moves, 9);
}

#[test]
fn fragmentation_story_drm_mm_evicts_under_the_lowest_window() {
    let (mut p, mut m) = (pool(Policy::DrmMm, 20 * MIB), Recorder::instant());
    run(&mut p, &mut m, &fragmented());
    run(&mut p, &mut m, &[create(11, 11 * MIB)]);
    // The scan adds 0..=4 in LRU order; with 4 the run 0..15 MiB fits. As in
    // Linux (`hit_start`), the window is the run's lowest, 0..11 MiB, so all
    // of 0..=4 lie under it and go, newest candidate first as Linux walks
    // its eviction list (the highest window, 4..15 MiB, would have cost only
    // 4).
    assert_eq!(page_outs(&m), [4, 3, 2, 1, 0]);
    assert_eq!(p.location(11), at(0));
    assert_eq!(p.counters().compaction_moves, 0);
}

/// defrag's two ends (docs/design.md 4.7): in a 64 MiB pool buffers of at
/// most 64 KiB are small and go to the top, larger ones to the bottom; a
/// `use` of an unpinned resident buffer slides it toward its end (a small one
/// only into a gap at least its size), and a pinned one stays put.
#[test]
fn defrag_keeps_small_buffers_at_the_top_and_large_ones_at_the_bottom() {
    const KIB: u64 = 1024;
    let top = 64 * MIB;
    let (mut p, mut m) = (pool(Policy::Defrag, top), Recorder::instant());
    run(
        &mut p,
        &mut m,
        &[
            create_unmoveable(0, 16 * MIB),
            create(1, 4 * KIB),
            create(2, 4 * KIB),
            create(3, 8 * MIB),
        ],
    );
    assert_eq!(p.location(0), at(0));
    assert_eq!(p.location(1), at(top - 4 * KIB));
    assert_eq!(p.location(2), at(top - 8 * KIB));
    assert_eq!(p.location(3), at(16 * MIB));
    // 1 goes: the used small buffer 2 slides up into its place.
    run(&mut p, &mut m, &[destroy(1), use_(2)]);
    assert_eq!(p.location(2), at(top - 4 * KIB));
    assert_eq!(p.counters().compaction_moves, 1);
    // A pinned small buffer, used again, does not move; unpinned, it finds no
    // gap of its size above it (the movers never copy upward onto the
    // source) and stays too.
    run(&mut p, &mut m, &[create(4, 4 * KIB), pin(4), use_(4)]);
    assert_eq!(p.location(4), at(top - 8 * KIB));
    // A large buffer used while the hole below it is free slides down.
    run(&mut p, &mut m, &[create(5, 8 * MIB), destroy(3), use_(5)]);
    assert_eq!(p.location(5), at(16 * MIB));
    run(&mut p, &mut m, &[unpin(4), use_(4)]);
    assert_eq!(p.location(4), at(top - 8 * KIB));
    assert_eq!(p.counters().compaction_moves, 2);
    // First-fit puts the same small buffers at the bottom, after the binner.
    let (mut f, mut fm) = (pool(Policy::FirstFit, top), Recorder::instant());
    run(
        &mut f,
        &mut fm,
        &[create_unmoveable(0, 16 * MIB), create(1, 4 * KIB)],
    );
    assert_eq!(f.location(1), at(16 * MIB));
}

/// Among holes of the same size drm-mm takes the most recently made one, as
/// Linux's `best_hole` does (an equal size goes right in its hole tree, and
/// it takes the rightmost hole that fits).
#[test]
fn drm_mm_best_fit_takes_the_newest_of_equal_holes() {
    let (mut p, mut m) = (pool(Policy::DrmMm, 20 * MIB), Recorder::instant());
    let mut ev: Vec<Event> = (0..4).map(|b| create(b, MIB)).collect();
    ev.push(create(4, 16 * MIB));
    // Two 1 MiB holes, at 1 MiB and (made later) at 3 MiB.
    ev.extend([destroy(1), destroy(3), create(5, MIB)]);
    run(&mut p, &mut m, &ev);
    assert_eq!(p.location(5), at(3 * MIB));
    // Then the only hole left, at 1 MiB.
    run(&mut p, &mut m, &[create(6, MIB)]);
    assert_eq!(p.location(6), at(MIB));
}

#[test]
fn pinned_neighbours_make_it_impossible_for_every_policy() {
    // Pinned 4 (4..5 MiB) and 6 (15..16 MiB) wall the hole in: the largest
    // hole any policy could make is 10 MiB < 11 MiB.
    for policy in Policy::ALL {
        let (mut p, mut m) = (pool(policy, 20 * MIB), Recorder::instant());
        run(&mut p, &mut m, &fragmented());
        run(&mut p, &mut m, &[pin(4), pin(6)]);
        let before = m.log.len();
        run(&mut p, &mut m, &[create(11, 11 * MIB)]);
        assert_eq!(p.counters().rule1_failures, 1, "{policy}");
        assert_eq!(p.location(11), Some(Location::Overflow), "{policy}");
        assert_eq!(p.location(4), at(4 * MIB));
        assert_eq!(p.location(6), at(15 * MIB));
        for op in &m.log[before..] {
            if let Op::Submit(_, mv) = op {
                assert!(
                    mv.buffer() != 4 && mv.buffer() != 6,
                    "{policy} moved a pinned buffer: {mv:?}"
                );
            }
        }
        // First-fit and compact page out everything movable, as the rule
        // says, and so does defrag, though its arithmetic knows it is
        // hopeless (docs/design.md 4.7 says why); drm-mm's scan pages out
        // nothing.
        let expected: &[u32] = match policy {
            Policy::FirstFit | Policy::Compact | Policy::Defrag => &[0, 1, 2, 3, 7, 8, 9, 10],
            Policy::DrmMm => &[],
        };
        assert_eq!(page_outs(&m), expected, "{policy}");
        // The failed create still has its content, in the overflow.
        assert!(matches!(
            m.moves().last(),
            Some(Move::Fill {
                buffer: 11,
                to: Location::Overflow,
                ..
            })
        ));
        // A later use tries again and fails again, without crashing.
        run(&mut p, &mut m, &[use_(11)]);
        assert_eq!(p.counters().rule1_failures, 2);
        // Once unpinned, the policy can make room.
        run(&mut p, &mut m, &[unpin(4), unpin(6), use_(11)]);
        assert!(
            matches!(p.location(11), Some(Location::Pool { .. })),
            "{policy}"
        );
        assert_eq!(p.counters().rule1_failures, 2);
    }
}

#[test]
fn unmoveable_and_pinned_never_move() {
    for policy in Policy::ALL {
        let (mut p, mut m) = (pool(policy, 8 * MIB), Recorder::instant());
        // 0 at 0, 2 at 1 MiB, unmoveable 1 at 2 MiB, 3 at 3 MiB.
        run(
            &mut p,
            &mut m,
            &[
                create(0, MIB),
                create(2, MIB),
                create_unmoveable(1, MIB),
                create(3, MIB),
                pin(2),
            ],
        );
        run(&mut p, &mut m, &[destroy(0), unpin(2), pin(2)]);
        // With 2 and 1 in place no hole can exceed 5 MiB: 6 MiB fails, 5 MiB fits.
        run(&mut p, &mut m, &[create(4, 6 * MIB), create(5, 5 * MIB)]);
        assert_eq!(p.location(1), at(2 * MIB), "{policy}");
        assert_eq!(p.location(5), at(3 * MIB), "{policy}");
        for mv in m.moves() {
            match mv {
                Move::Copy { buffer, .. } | Move::Drop { buffer, .. } => {
                    assert!(buffer != 1, "{policy}: {mv:?}")
                }
                _ => {}
            }
        }
        // Compact and defrag moved 2 down on its unpin (while unpinned);
        // otherwise 2 never moved.
        let moves_of_2 = m
            .moves()
            .iter()
            .filter(|mv| matches!(mv, Move::Copy { buffer: 2, .. }))
            .count();
        assert_eq!(
            moves_of_2,
            usize::from(matches!(policy, Policy::Compact | Policy::Defrag)),
            "{policy}"
        );
        assert_eq!(p.counters().rule1_failures, 1, "{policy}");
    }
}

#[test]
fn purge_comes_before_lru_page_out() {
    for policy in Policy::ALL {
        let (mut p, mut m) = (pool(policy, 4 * MIB), Recorder::instant());
        run(
            &mut p,
            &mut m,
            &[
                create(0, MIB),
                create(1, MIB),
                create(2, MIB),
                create(3, MIB),
                dontneed(2),
            ],
        );
        run(&mut p, &mut m, &[create(4, MIB)]);
        assert_eq!(p.counters().purges, 1, "{policy}");
        assert_eq!(p.counters().page_outs, 0, "{policy}");
        assert_eq!(p.location(0), at(0));
        assert_eq!(p.location(2), Some(Location::Overflow));
        assert!(!p.has_content(2));
        assert!(matches!(
            m.moves().iter().rev().nth(1),
            Some(Move::Drop { buffer: 2, .. })
        ));
        // Purged content comes back as a fresh generation, not a copy; the
        // LRU buffer (0) makes room.
        run(&mut p, &mut m, &[willneed(2), use_(2)]);
        assert_eq!(p.counters().page_ins, 0);
        assert_eq!(page_outs(&m), [0], "{policy}");
        assert!(
            matches!(
                m.moves().last(),
                Some(Move::Fill {
                    buffer: 2,
                    generation: 1,
                    ..
                })
            ),
            "{policy}"
        );
        assert_eq!(p.generation(2), Some(1));
        // Pinned or unmoveable dontneed buffers are not purged.
        run(&mut p, &mut m, &[dontneed(1), pin(1), create(5, MIB)]);
        assert_eq!(p.counters().purges, 1, "{policy}");
        assert!(matches!(p.location(1), Some(Location::Pool { .. })));
    }
}

#[test]
fn compact_slides_down_once_and_only_on_unpin() {
    let (mut p, mut m) = (pool(Policy::Compact, 8 * MIB), Recorder::instant());
    run(
        &mut p,
        &mut m,
        &[
            create(0, MIB),
            create(1, MIB),
            create(2, MIB),
            create(3, MIB),
            pin(2),
        ],
    );
    run(&mut p, &mut m, &[destroy(1), destroy(0)]);
    assert_eq!(p.counters().compaction_moves, 0, "no move without an unpin");
    run(&mut p, &mut m, &[unpin(2)]);
    assert_eq!(p.location(2), at(0));
    // No cascade: 3 stays where it was.
    assert_eq!(p.location(3), at(3 * MIB));
    assert_eq!(p.counters().compaction_moves, 1);
    assert_eq!(
        m.moves().last(),
        Some(&Move::Copy {
            buffer: 2,
            generation: 0,
            size: MIB,
            from: Location::Pool { offset: 2 * MIB },
            to: Location::Pool { offset: 0 }
        })
    );
    // Unpinning a buffer already against its neighbour does nothing.
    run(&mut p, &mut m, &[pin(2), unpin(2)]);
    assert_eq!(p.counters().compaction_moves, 1);
    // The slide is to the end of the lower neighbour, overlapping itself.
    run(&mut p, &mut m, &[pin(3), unpin(3)]);
    assert_eq!(p.location(3), at(MIB));
    assert_eq!(p.counters().compaction_moves, 2);
    // First-fit never slides.
    let (mut p, mut m) = (pool(Policy::FirstFit, 8 * MIB), Recorder::instant());
    run(
        &mut p,
        &mut m,
        &[create(0, MIB), create(1, MIB), pin(1), destroy(0), unpin(1)],
    );
    assert_eq!(p.location(1), at(MIB));
}

#[test]
fn a_buffer_with_a_move_in_flight_is_not_touched_before_completion() {
    // Moves complete only when waited for.
    let (mut p, mut m) = (pool(Policy::FirstFit, MIB), Recorder::new(0, 1));
    run(&mut p, &mut m, &[create(0, MIB)]);
    run(&mut p, &mut m, &[use_(0)]);
    assert_eq!(
        m.log[1..],
        [Op::Poll(Ticket(0), false), Op::Wait(Ticket(0))]
    );
    m.log.clear();
    // 1 needs 0's space: 0 is paged out, and the range it is still read
    // from is not given to 1 before the copy completes.
    run(&mut p, &mut m, &[create(1, MIB)]);
    let expected = [
        Op::Submit(
            Ticket(1),
            Move::Copy {
                buffer: 0,
                generation: 0,
                size: MIB,
                from: Location::Pool { offset: 0 },
                to: Location::Overflow,
            },
        ),
        Op::Wait(Ticket(1)),
        Op::Submit(
            Ticket(2),
            Move::Fill {
                buffer: 1,
                generation: 0,
                size: MIB,
                to: Location::Pool { offset: 0 },
            },
        ),
    ];
    assert_eq!(m.log, expected);
    // A pin waits for the fill; destroy waits too.
    m.log.clear();
    run(&mut p, &mut m, &[pin(1)]);
    assert_eq!(m.log, [Op::Poll(Ticket(2), false), Op::Wait(Ticket(2))]);
    assert_eq!(p.moves_in_flight(), 0);
}

#[test]
fn compaction_waits_for_the_page_out_it_overwrites() {
    // defrag with slow moves: the slide into a range still being paged out
    // waits for that page-out first.
    let (mut p, mut m) = (pool(Policy::Defrag, 4 * MIB), Recorder::new(0, 1));
    run(
        &mut p,
        &mut m,
        &[
            create(0, MIB),
            create(1, MIB),
            create(2, MIB),
            create(3, MIB),
            destroy(2),
        ],
    );
    run(&mut p, &mut m, &[create(4, 2 * MIB)]);
    assert_eq!(page_outs(&m), [0]);
    let pos = |pred: &dyn Fn(&Op) -> bool| m.log.iter().position(pred).unwrap();
    let page_out = pos(&|op| {
        matches!(
            op,
            Op::Submit(
                _,
                Move::Copy {
                    buffer: 0,
                    to: Location::Overflow,
                    ..
                }
            )
        )
    });
    let Op::Submit(t, _) = m.log[page_out] else {
        unreachable!()
    };
    let slide = pos(&|op| matches!(op, Op::Submit(_, Move::Copy { buffer: 1, .. })));
    let waited = pos(&|op| *op == Op::Wait(t));
    assert!(page_out < waited && waited < slide, "{:?}", m.log);
    assert_eq!(p.location(4), at(2 * MIB));
}

#[test]
fn snapshot_lays_out_the_overflow() {
    let (mut p, mut m) = (pool(Policy::FirstFit, 2 * MIB), Recorder::instant());
    run(
        &mut p,
        &mut m,
        &[
            create(0, MIB),
            pin(0),
            create(1, 3 * MIB),
            create(2, MIB),
            create(3, 2 * MIB),
        ],
    );
    let s = p.snapshot();
    assert_eq!(s.event, 4);
    // 1 can never fit (nothing is evicted for it); 3 evicts 2 and still fails.
    assert_eq!(p.counters().page_outs, 1);
    assert_eq!(
        s.resident
            .iter()
            .map(|b| (b.buffer, b.offset))
            .collect::<Vec<_>>(),
        [(0, 0)]
    );
    assert_eq!(s.resident[0].state, records::BufferState::Pinned);
    let overflow: Vec<_> = s.overflow.iter().map(|b| (b.buffer, b.offset)).collect();
    assert_eq!(overflow, [(1, 0), (2, 3 * MIB), (3, 4 * MIB)]);
    let metrics = p.metrics();
    assert_eq!(
        (
            metrics.used_bytes,
            metrics.free_bytes,
            metrics.overflow_bytes
        ),
        (MIB, MIB, 6 * MIB)
    );
    assert_eq!((metrics.largest_hole, metrics.holes), (MIB, 1));
}

#[test]
fn bad_events_are_errors() {
    let (mut p, mut m) = (pool(Policy::FirstFit, MIB), Recorder::instant());
    run(&mut p, &mut m, &[create(0, 4 * KIB), destroy(0)]);
    assert_eq!(
        p.apply(&use_(0), &mut m, &mut ()),
        Err(pool::EventError::NotLive { buffer: 0 })
    );
    assert_eq!(
        p.apply(&create(0, 1), &mut m, &mut ()),
        Err(pool::EventError::Recreated { buffer: 0 })
    );
    assert_eq!(
        p.apply(&use_(7), &mut m, &mut ()),
        Err(pool::EventError::NotLive { buffer: 7 })
    );
    assert!(Pool::new(PoolConfig {
        pool_bytes: 1000,
        alignment: 4096,
        policy: Policy::FirstFit
    })
    .is_err());
    assert!(Pool::new(PoolConfig {
        pool_bytes: 8192,
        alignment: 3000,
        policy: Policy::FirstFit
    })
    .is_err());
}
