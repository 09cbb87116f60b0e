//! The binary trace: round trips, and corruption is always caught.

use proptest::prelude::*;
use trace::binary::{self, BinaryError, BinaryTrace, EncodeError, HEADER_LEN, MAX_NAME};
use trace::{Event, EventKind, Madv, Stats};

/// A valid event sequence built from random choices: each step picks an
/// operation and a live buffer (by position), so every kind and index occurs.
fn valid_events() -> impl Strategy<Value = Vec<Event>> {
    let step = (
        0u8..8,
        any::<prop::sample::Index>(),
        0u64..5_000_000,
        1u64..=trace::MAX_CREATE_SIZE,
        -3i64..1_000_000,
    );
    proptest::collection::vec(step, 0..300).prop_map(|steps| {
        let mut events = Vec::new();
        let mut live: Vec<(u32, bool)> = Vec::new();
        let mut created = 0u32;
        let mut time = 10_000_000u64;
        for (op, pick, _, size, dt) in steps {
            time = time.saturating_add_signed(dt);
            if live.is_empty() || op < 2 {
                events.push(Event {
                    time_us: time,
                    buffer: created,
                    kind: EventKind::Create {
                        size,
                        unmoveable: op == 1,
                    },
                });
                live.push((created, false));
                created += 1;
                continue;
            }
            let at = pick.index(live.len());
            let (buffer, pinned) = live[at];
            let kind = match op {
                2 => EventKind::Use,
                3 if !pinned => EventKind::AddUsecnt,
                3 => EventKind::RemoveUsecnt,
                4 => EventKind::Madv(Madv::WillNeed),
                5 => EventKind::Madv(Madv::DontNeed),
                _ => EventKind::Destroy,
            };
            match kind {
                EventKind::AddUsecnt => live[at].1 = true,
                EventKind::RemoveUsecnt => live[at].1 = false,
                EventKind::Destroy => {
                    live.swap_remove(at);
                }
                _ => {}
            }
            events.push(Event {
                time_us: time,
                buffer,
                kind,
            });
        }
        events
    })
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for &b in *part {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Rewrites the checksum after a deliberate edit, to reach the checks behind it.
fn reseal(bytes: &mut [u8]) {
    let sum = fnv1a(&[&bytes[..48], &bytes[56..]]);
    bytes[48..56].copy_from_slice(&sum.to_le_bytes());
}

fn small_trace() -> (Vec<Event>, Vec<u8>) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../traces/vc4-sample.log"
    ))
    .unwrap();
    let events: Vec<Event> = trace::StrParser::new(&text, trace::Mode::Strict)
        .collect::<Result<_, _>>()
        .unwrap();
    let bytes = binary::encode(events.iter().copied(), "vc4-sample").unwrap();
    (events, bytes)
}

proptest! {
    #[test]
    fn round_trip(events in valid_events(), name in "[a-z0-9é-]{0,20}") {
        let bytes = binary::encode(events.iter().copied(), &name).unwrap();
        let trace = BinaryTrace::parse(&bytes).unwrap();
        let decoded: Vec<Event> = trace.events().collect();
        prop_assert_eq!(&decoded, &events);
        let stats = Stats::of(events.iter().copied());
        prop_assert_eq!(trace.name(), name.as_str());
        prop_assert_eq!(trace.event_count(), events.len() as u64);
        prop_assert_eq!(trace.buffer_count() as u64, stats.buffers);
        prop_assert_eq!(trace.peak_live_bytes(), stats.peak_live_bytes);
        prop_assert_eq!(trace.total_created_bytes(), stats.total_created_bytes);
    }

    /// The decoder reads bytes, not words: any alignment works.
    #[test]
    fn any_alignment(events in valid_events(), shift in 0usize..8) {
        let bytes = binary::encode(events.iter().copied(), "t").unwrap();
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(&bytes);
        let trace = BinaryTrace::parse(&shifted[shift..]).unwrap();
        prop_assert!(trace.events().eq(events.iter().copied()));
    }

    /// Random bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes_are_rejected_or_decode(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(trace) = BinaryTrace::parse(&bytes) {
            prop_assert_eq!(trace.events().count() as u64, trace.event_count());
        }
    }
}

#[test]
fn every_single_byte_corruption_is_detected() {
    let (_, bytes) = small_trace();
    for at in 0..bytes.len() {
        for flip in [0x01u8, 0x10, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[at] ^= flip;
            assert!(
                BinaryTrace::parse(&bad).is_err(),
                "byte {at} ^ {flip:#x} went unnoticed"
            );
        }
    }
}

#[test]
fn errors_name_what_is_wrong() {
    let (_, bytes) = small_trace();
    assert_eq!(
        BinaryTrace::parse(b"").unwrap_err(),
        BinaryError::Truncated {
            needed: 56,
            available: 0
        }
    );
    assert_eq!(
        BinaryTrace::parse(b"PBTR").unwrap_err(),
        BinaryError::Truncated {
            needed: 56,
            available: 4
        }
    );
    assert_eq!(
        BinaryTrace::parse(b"[    1.0").unwrap_err(),
        BinaryError::BadMagic
    );

    let mut v2 = bytes.clone();
    v2[8] = 2;
    assert_eq!(
        BinaryTrace::parse(&v2).unwrap_err(),
        BinaryError::UnsupportedVersion { found: 2 }
    );

    let n = bytes.len() as u64;
    assert_eq!(
        BinaryTrace::parse(&bytes[..bytes.len() - 1]).unwrap_err(),
        BinaryError::Truncated {
            needed: n,
            available: n - 1
        }
    );

    let mut longer = bytes.clone();
    longer.extend_from_slice(b"xyz");
    assert_eq!(
        BinaryTrace::parse(&longer).unwrap_err(),
        BinaryError::TrailingBytes { extra: 3 }
    );
    let (trace, len) = BinaryTrace::parse_prefix(&longer).unwrap();
    assert_eq!((len, trace.event_count()), (bytes.len(), 11));

    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert!(matches!(
        BinaryTrace::parse(&flipped).unwrap_err(),
        BinaryError::ChecksumMismatch { .. }
    ));

    let mut miscounted = bytes.clone();
    miscounted[16] += 1;
    reseal(&mut miscounted);
    assert_eq!(
        BinaryTrace::parse(&miscounted).unwrap_err(),
        BinaryError::CountMismatch {
            field: "events",
            header: 12,
            payload: 11
        }
    );

    let mut buffers = bytes.clone();
    buffers[12] = 7;
    reseal(&mut buffers);
    assert_eq!(
        BinaryTrace::parse(&buffers).unwrap_err(),
        BinaryError::CountMismatch {
            field: "buffers",
            header: 7,
            payload: 6
        }
    );

    // The payload starts after the name; its first event is a create: make it kind 9.
    let mut bad_kind = bytes.clone();
    bad_kind[HEADER_LEN + "vc4-sample".len()] = 9;
    reseal(&mut bad_kind);
    assert_eq!(
        BinaryTrace::parse(&bad_kind).unwrap_err(),
        BinaryError::CorruptEvent {
            event: 0,
            offset: 0
        }
    );

    let mut bad_name = bytes.clone();
    bad_name[HEADER_LEN] = 0xff;
    reseal(&mut bad_name);
    assert_eq!(
        BinaryTrace::parse(&bad_name).unwrap_err(),
        BinaryError::BadName
    );

    assert_eq!(
        BinaryTrace::parse(&v2).unwrap_err().to_string(),
        "binary trace version 2 is not supported (this build reads version 1)"
    );
}

#[test]
fn encode_refuses_what_it_cannot_represent() {
    let long = "n".repeat(MAX_NAME + 1);
    assert_eq!(
        binary::encode([], &long).unwrap_err(),
        EncodeError::NameTooLong { len: MAX_NAME + 1 }
    );
    let create = |buffer| Event {
        time_us: 0,
        buffer,
        kind: EventKind::Create {
            size: 1,
            unmoveable: false,
        },
    };
    assert_eq!(
        binary::encode([create(1)], "x").unwrap_err(),
        EncodeError::CreateOutOfOrder {
            event: 0,
            buffer: 1,
            expected: 0
        }
    );
    let use_ = Event {
        time_us: 0,
        buffer: 1,
        kind: EventKind::Use,
    };
    assert_eq!(
        binary::encode([create(0), use_], "x").unwrap_err(),
        EncodeError::UnknownBuffer {
            event: 1,
            buffer: 1
        }
    );
}

#[test]
fn empty_trace_round_trips() {
    let bytes = binary::encode([], "").unwrap();
    assert_eq!(bytes.len(), HEADER_LEN);
    let trace = BinaryTrace::parse(&bytes).unwrap();
    assert_eq!(
        (trace.event_count(), trace.buffer_count(), trace.name()),
        (0, 0, "")
    );
    assert_eq!(trace.events().next(), None);
}

/// The encoder refuses what the decoder would call corrupt, so a compiled
/// trace always decodes.
#[test]
fn sizes_above_a_32_bit_pool_do_not_encode() {
    let create = |size| Event {
        time_us: 0,
        buffer: 0,
        kind: trace::EventKind::Create {
            size,
            unmoveable: false,
        },
    };
    let err = binary::encode([create(trace::MAX_CREATE_SIZE + 1)], "t").unwrap_err();
    assert_eq!(
        err.to_string(),
        "event 0: create of 4294967296 bytes (sizes are 1 to 4294967295 bytes)"
    );
    let bytes = binary::encode([create(trace::MAX_CREATE_SIZE)], "t").unwrap();
    assert_eq!(
        BinaryTrace::parse(&bytes).unwrap().peak_live_bytes(),
        trace::MAX_CREATE_SIZE
    );
}
