//! Arbitrary bytes into the log parser (both modes, in memory and streaming)
//! and into the binary decoder: nothing may panic, and what is accepted must
//! be consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{BufReader, Cursor};
use trace::binary::{self, BinaryTrace};
use trace::{Mode, Parser, StrParser};

fuzz_target!(|data: &[u8]| {
    for mode in [Mode::Lenient, Mode::Strict] {
        let in_memory: Vec<_> = StrParser::from_bytes(data, mode)
            .map(|r| r.map_err(|p| p.to_string()))
            .collect();
        // A small reader buffer so lines straddle refills.
        let streaming: Vec<_> = Parser::new(BufReader::with_capacity(7, Cursor::new(data)), mode)
            .map(|r| r.map_err(|e| e.to_string()))
            .collect();
        assert_eq!(in_memory, streaming);
        if mode == Mode::Lenient {
            // Whatever lenient mode lets through is a valid, encodable trace.
            let events: Vec<_> = in_memory.into_iter().map(Result::unwrap).collect();
            let bytes =
                binary::encode(events.iter().copied(), "fuzz").expect("lenient output encodes");
            let trace = BinaryTrace::parse(&bytes).expect("encoded output decodes");
            assert!(trace.events().eq(events.iter().copied()));
        }
    }
    if let Ok(trace) = BinaryTrace::parse(data) {
        assert_eq!(trace.events().count() as u64, trace.event_count());
    }
});
