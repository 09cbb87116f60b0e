//! The cost of one placement as the pool fills with live buffers (`std`
//! only; used by `cargo xtask bench` and `cargo bench -p pool`). Figures, not
//! a test: the claim is that a placement costs the same at 100 000 live
//! buffers as at 1 000, for every policy.

use crate::mover::NullMover;
use crate::{Pool, PoolConfig};
use records::Policy;
use std::hint::black_box;
use std::time::Instant;
use trace::{Event, EventKind};

/// Placement unit of the scaling pool.
const UNIT: u64 = 4096;

fn create(buffer: u32, size: u64) -> Event {
    Event {
        time_us: 0,
        buffer,
        kind: EventKind::Create {
            size,
            unmoveable: false,
        },
    }
}

fn destroy(buffer: u32) -> Event {
    Event {
        time_us: 0,
        buffer,
        kind: EventKind::Destroy,
    }
}

/// Nanoseconds per placement (one create and its destroy) under `policy`
/// in a 4 GiB pool holding `live` buffers of 1 to 4 units with as many
/// holes between them, best of `repeats` batches of `rounds` placements.
pub fn placement_ns(policy: Policy, live: u32, rounds: u32, repeats: u32) -> f64 {
    let mut pool = Pool::new(PoolConfig {
        pool_bytes: 4 << 30,
        alignment: UNIT,
        policy,
    })
    .expect("the scaling pool is a valid configuration");
    let mut mover = NullMover::default();
    let mut apply = |pool: &mut Pool, event: Event| {
        pool.apply(&event, &mut mover, &mut ())
            .expect("the scaling pool never runs out of space");
    };
    // 2 * live buffers of 1..=4 units, then every other one destroyed:
    // `live` buffers and as many holes of assorted sizes.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = 0u32;
    for _ in 0..2 * live {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        apply(&mut pool, create(next, (1 + x % 4) * UNIT));
        next += 1;
    }
    for b in (0..2 * live).step_by(2) {
        apply(&mut pool, destroy(b));
    }
    let mut best = f64::MAX;
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        for r in 0..rounds {
            // 5 units fits no hole of the fragmented part: the policy must
            // find the space above everything; 1..4 units land in holes.
            apply(&mut pool, create(next, (1 + (r as u64 % 5)) * UNIT));
            apply(&mut pool, destroy(next));
            next += 1;
        }
        let ns = started.elapsed().as_nanos() as f64 / rounds.max(1) as f64;
        best = best.min(ns);
    }
    black_box(&pool);
    best
}
