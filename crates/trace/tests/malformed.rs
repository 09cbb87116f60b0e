//! Validation: every problem kind, in both modes, with the right line numbers.

use proptest::prelude::*;
use std::io::{BufReader, Cursor};
use trace::{
    Event, EventKind, Madv, Mode, Parser, Problem, ProblemKind, StrParser, Warnings, MAX_LINE,
};

fn lenient(text: &str) -> (Vec<Event>, Warnings) {
    let mut p = StrParser::new(text, Mode::Lenient);
    let events = p
        .by_ref()
        .map(|r| r.expect("lenient never fails"))
        .collect();
    (events, p.validator().warnings().clone())
}

fn strict(text: &str) -> Result<Vec<Event>, Problem> {
    StrParser::new(text, Mode::Strict).collect()
}

fn ev(time_us: u64, buffer: u32, kind: EventKind) -> Event {
    Event {
        time_us,
        buffer,
        kind,
    }
}

fn create(size: u64) -> EventKind {
    EventKind::Create {
        size,
        unmoveable: false,
    }
}

/// A valid preamble (lines 1-3) and then `bad` on line 4 and a valid line 5.
fn with_problem_at_line_4(bad: &str) -> String {
    format!(
        "[    1.000000] @@@ create aaaaaaaa 4096\n\
         some unrelated kernel line\n\
         [    1.000001] @@@ create bbbbbbbb 8192\n\
         {bad}\n\
         [    2.000000] @@@ use aaaaaaaa\n"
    )
}

#[test]
fn each_problem_kind_in_both_modes() {
    let cases: &[(&str, ProblemKind)] = &[
        ("[    1.5] @@@ use aaaaaaaa", ProblemKind::BadTimestamp),
        ("@@@ use aaaaaaaa", ProblemKind::BadTimestamp),
        ("[    1.500000] @@@ touch aaaaaaaa", ProblemKind::UnknownOp),
        ("[    1.500000] @@@ use aaaa", ProblemKind::BadId),
        (
            "[    1.500000] @@@ create cccccccc 4k",
            ProblemKind::BadSize,
        ),
        (
            "[    1.500000] @@@ create cccccccc 0",
            ProblemKind::ZeroSize,
        ),
        (
            "[    1.500000] @@@ create cccccccc",
            ProblemKind::MissingField,
        ),
        (
            "[    1.500000] @@@ use aaaaaaaa now",
            ProblemKind::ExtraToken,
        ),
        (
            "[    1.500000] @@@ madv aaaaaaaa purge",
            ProblemKind::BadMadv,
        ),
        (
            "[    1.500000] @@@ create cccccccc 4294967296",
            ProblemKind::SizeTooLarge,
        ),
        (
            "[    1.500000] @@@ create cccccccc 4096 SCANOUT",
            ProblemKind::UnknownFlag,
        ),
        (
            "[    1.500000] @@@ use cccccccc",
            ProblemKind::UnknownBuffer,
        ),
        (
            "[    1.500000] @@@ create aaaaaaaa 4096",
            ProblemKind::CreateOfLiveId,
        ),
        (
            "[    1.500000] @@@ remove_usecnt aaaaaaaa",
            ProblemKind::UnpinOfUnpinned,
        ),
    ];
    for &(bad, kind) in cases {
        let text = with_problem_at_line_4(bad);
        let err = strict(&text).expect_err(bad);
        assert_eq!((err.line, err.kind), (4, kind), "{bad}");
        assert_eq!(err.text, bad);

        let (events, warnings) = lenient(&text);
        assert_eq!(warnings.total(), 1, "{bad}");
        assert_eq!(warnings.count(kind), 1, "{bad}");
        assert_eq!(warnings.first()[0].line, 4);
        assert_eq!(warnings.first()[0].kind, kind);
        // Skipped: only the three valid events remain.
        assert_eq!(
            events,
            [
                ev(1_000_000, 0, create(4096)),
                ev(1_000_001, 1, create(8192)),
                ev(2_000_000, 0, EventKind::Use)
            ],
            "{bad}"
        );
    }
}

#[test]
fn double_pin_is_skipped() {
    let text = "[ 1.000000] @@@ create 11111111 4096\n\
                [ 1.000001] @@@ add_usecnt 11111111\n\
                [ 1.000002] @@@ add_usecnt 11111111\n\
                [ 1.000003] @@@ remove_usecnt 11111111\n\
                [ 1.000004] @@@ remove_usecnt 11111111\n";
    let err = strict(text).unwrap_err();
    assert_eq!((err.line, err.kind), (3, ProblemKind::DoublePin));
    assert_eq!(
        err.to_string(),
        r#"line 3: pin of buffer 11111111 that is already pinned: "[ 1.000002] @@@ add_usecnt 11111111""#
    );
    let (events, warnings) = lenient(text);
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [create(4096), EventKind::AddUsecnt, EventKind::RemoveUsecnt]
    );
    assert_eq!(warnings.count(ProblemKind::DoublePin), 1);
    assert_eq!(warnings.count(ProblemKind::UnpinOfUnpinned), 1);
    assert_eq!(warnings.first()[1].line, 5);
}

#[test]
fn destroy_of_a_pinned_buffer_is_applied_in_lenient_mode() {
    let text = "[ 1.000000] @@@ create 11111111 4096\n\
                [ 1.000001] @@@ add_usecnt 11111111\n\
                [ 1.000002] @@@ destroy 11111111\n";
    let err = strict(text).unwrap_err();
    assert_eq!((err.line, err.kind), (3, ProblemKind::DestroyPinned));
    let (events, warnings) = lenient(text);
    assert_eq!(events.last(), Some(&ev(1_000_002, 0, EventKind::Destroy)));
    assert_eq!(warnings.count(ProblemKind::DestroyPinned), 1);
}

#[test]
fn after_destroy_is_told_apart_from_never_created() {
    let text = "[ 1.000000] @@@ create 11111111 4096\n\
                [ 1.000001] @@@ destroy 11111111\n\
                [ 1.000002] @@@ use 11111111\n\
                [ 1.000003] @@@ use 22222222\n\
                [ 1.000004] @@@ destroy 11111111\n";
    let err = strict(text).unwrap_err();
    assert_eq!((err.line, err.kind), (3, ProblemKind::AfterDestroy));
    assert_eq!(
        err.to_string(),
        r#"line 3: event for buffer 11111111 after it was destroyed: "[ 1.000002] @@@ use 11111111""#
    );
    let (events, warnings) = lenient(text);
    assert_eq!(events.len(), 2);
    let got: Vec<_> = warnings.first().iter().map(|p| (p.line, p.kind)).collect();
    assert_eq!(
        got,
        [
            (3, ProblemKind::AfterDestroy),
            (4, ProblemKind::UnknownBuffer),
            (5, ProblemKind::AfterDestroy)
        ]
    );
}

#[test]
fn a_reused_id_is_a_new_buffer() {
    let text = "[ 1.000000] @@@ create 11111111 4096\n\
                [ 1.000001] @@@ create 22222222 8192 BIN\n\
                [ 1.000002] @@@ destroy 11111111\n\
                [ 1.000003] @@@ create 11111111 12288\n\
                [ 1.000004] @@@ madv 11111111 dontneed\n\
                [ 1.000005] @@@ madv 22222222 willneed\n";
    let events = strict(text).unwrap();
    assert_eq!(
        events,
        [
            ev(1_000_000, 0, create(4096)),
            ev(
                1_000_001,
                1,
                EventKind::Create {
                    size: 8192,
                    unmoveable: true
                }
            ),
            ev(1_000_002, 0, EventKind::Destroy),
            ev(1_000_003, 2, create(12288)),
            ev(1_000_004, 2, EventKind::Madv(Madv::DontNeed)),
            ev(1_000_005, 1, EventKind::Madv(Madv::WillNeed)),
        ]
    );
}

#[test]
fn backwards_time_is_a_warning_even_in_strict_mode() {
    let text = "[ 2.000000] @@@ create 11111111 4096\n[ 1.000000] @@@ use 11111111\n";
    let mut p = StrParser::new(text, Mode::Strict);
    let events: Vec<_> = p.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(events[1].time_us, 1_000_000);
    assert_eq!(
        p.validator().warnings().count(ProblemKind::TimeBackwards),
        1
    );
    assert_eq!(p.validator().warnings().first()[0].line, 2);
}

#[test]
fn only_the_first_warnings_are_kept_but_all_are_counted() {
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&format!("[ 1.{i:06}] @@@ use {i:08x}\n"));
    }
    let (events, warnings) = lenient(&text);
    assert!(events.is_empty());
    assert_eq!(warnings.count(ProblemKind::UnknownBuffer), 1000);
    assert_eq!(warnings.first().len(), trace::KEPT_WARNINGS);
    assert_eq!(
        warnings.first().last().unwrap().line,
        trace::KEPT_WARNINGS as u64
    );
    let shown = warnings.to_string();
    assert!(shown.contains("... and 980 more"), "{shown}");
    assert!(shown.contains("unknown_buffer"), "{shown}");
}

#[test]
fn crlf_and_missing_final_newline_are_fine() {
    let text = "[ 1.000000] @@@ create 11111111 4096 BIN\r\n[ 1.000001] @@@ destroy 11111111";
    let events = strict(text).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].kind,
        EventKind::Create {
            size: 4096,
            unmoveable: true
        }
    );
}

#[test]
fn an_overlong_trace_line_is_malformed_but_other_long_lines_are_ignored() {
    let long_noise = "x".repeat(MAX_LINE * 3);
    let long_trace = format!("[ 1.000001] @@@ use 11111111 {}", "y".repeat(MAX_LINE * 3));
    let text = format!("[ 1.000000] @@@ create 11111111 4096\n{long_noise}\n{long_trace}\n[ 1.000002] @@@ use 11111111\n");
    let err = strict(&text).unwrap_err();
    assert_eq!((err.line, err.kind), (3, ProblemKind::LineTooLong));
    assert!(err.text.len() <= 200);
    let (events, warnings) = lenient(&text);
    assert_eq!(events.len(), 2);
    assert_eq!(warnings.count(ProblemKind::LineTooLong), 1);
    // The streaming parser, which never holds more than MAX_LINE bytes of a line, agrees.
    let mut p = Parser::new(
        BufReader::with_capacity(64, Cursor::new(text.as_bytes())),
        Mode::Lenient,
    );
    assert_eq!(p.by_ref().collect::<Result<Vec<_>, _>>().unwrap(), events);
    assert_eq!(p.warnings(), &warnings);
}

#[test]
fn strict_parsers_stop_after_the_first_error() {
    let text = "[ 1.000000] @@@ use 11111111\n[ 1.000000] @@@ use 22222222\n";
    let results: Vec<_> = StrParser::new(text, Mode::Strict).collect();
    assert_eq!(results.len(), 1);
    let results: Vec<_> = Parser::new(Cursor::new(text), Mode::Strict).collect();
    assert_eq!(results.len(), 1);
    match &results[0] {
        Err(trace::Error::Trace(p)) => assert_eq!(p.line, 1),
        other => panic!("{other:?}"),
    }
}

/// Lines that exercise every path: valid, noise, malformed and invalid.
fn any_line() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        Just("11111111"),
        Just("22222222"),
        Just("0000000033333333"),
        Just("zz")
    ];
    let op = prop_oneof![
        Just("create"),
        Just("destroy"),
        Just("use"),
        Just("add_usecnt"),
        Just("remove_usecnt"),
        Just("madv"),
        Just("bogus"),
    ];
    let arg = prop_oneof![
        Just(""),
        Just(" 4096"),
        Just(" 0"),
        Just(" dontneed"),
        Just(" 4096 BIN"),
        Just(" a b")
    ];
    prop_oneof![
        8 => (0u64..3_000_000, op, id, arg)
            .prop_map(|(t, op, id, arg)| format!("[{:5}.{:06}] @@@ {op} {id}{arg}", t / 1_000_000, t % 1_000_000)),
        1 => "[ -~]{0,80}",
        1 => Just(String::new()),
    ]
}

proptest! {
    /// The streaming parser gives the same events and warnings as the
    /// in-memory one, however the reader's buffer cuts the lines.
    #[test]
    fn streaming_matches_in_memory(lines in proptest::collection::vec(any_line(), 0..60), cap in 1usize..100, crlf: bool) {
        let end = if crlf { "\r\n" } else { "\n" };
        let text = lines.join(end);
        for mode in [Mode::Lenient, Mode::Strict] {
            let mut reference = StrParser::new(&text, mode);
            let want: Vec<_> = reference.by_ref().map(|r| r.map_err(|p| p.to_string())).collect();
            let mut streaming = Parser::new(BufReader::with_capacity(cap, Cursor::new(text.as_bytes())), mode);
            let got: Vec<_> = streaming.by_ref().map(|r| r.map_err(|e| e.to_string())).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(streaming.warnings(), reference.validator().warnings());
        }
    }

    /// Whatever the input, lenient mode yields a consistent sequence: creates
    /// numbered densely, no event for a dead buffer, pins alternating.
    #[test]
    fn lenient_output_is_valid(lines in proptest::collection::vec(any_line(), 0..80)) {
        let text = lines.join("\n");
        let (events, _) = lenient(&text);
        let mut pinned = std::collections::HashMap::new();
        let mut created = 0u32;
        for e in &events {
            match e.kind {
                EventKind::Create { .. } => {
                    prop_assert_eq!(e.buffer, created);
                    created += 1;
                    pinned.insert(e.buffer, false);
                }
                EventKind::Destroy => { prop_assert!(pinned.remove(&e.buffer).is_some()); }
                EventKind::AddUsecnt => { prop_assert_eq!(pinned.insert(e.buffer, true), Some(false)); }
                EventKind::RemoveUsecnt => { prop_assert_eq!(pinned.insert(e.buffer, false), Some(true)); }
                _ => { prop_assert!(pinned.contains_key(&e.buffer)); }
            }
        }
    }
}

/// Sizes that would sum past u64::MAX never reach the statistics: each is a
/// line-numbered problem, and the counts of what remains are exact.
#[test]
fn sizes_past_a_32_bit_pool_are_problems_and_sums_never_overflow() {
    let text = "[ 1.000000] @@@ create 11111111 18446744073709551615\n\
                [ 1.000001] @@@ create 22222222 1\n\
                [ 1.000002] @@@ destroy 11111111\n\
                [ 1.000003] @@@ destroy 22222222\n\
                [ 1.000004] @@@ create 33333333 4294967295\n";
    let err = strict(text).expect_err("a size above 2^32 - 1");
    assert_eq!((err.line, err.kind), (1, ProblemKind::SizeTooLarge));
    assert!(
        err.to_string().starts_with(
            "line 1: malformed line: create of buffer 11111111 larger than 4294967295 bytes"
        ),
        "{err}"
    );
    let (events, warnings) = lenient(text);
    assert_eq!(warnings.count(ProblemKind::SizeTooLarge), 1);
    // The destroy of the skipped create is a problem of its own.
    assert_eq!(warnings.count(ProblemKind::UnknownBuffer), 1);
    let stats = trace::Stats::of(events.iter().copied());
    assert_eq!(stats.peak_live_bytes, 4_294_967_295);
    assert_eq!(stats.total_created_bytes, 4_294_967_296);
}
