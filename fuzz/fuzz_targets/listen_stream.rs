//! Arbitrary bytes as the firmware's UART stream, decoded as `listen` and
//! `run` decode it (xtask/src/decode.rs, included here as it is) against the
//! defmt table of the firmware that made the capture in xtask/tests/data,
//! split at boot banners (records::Streams), and every report built (the
//! record_stream target draws the charts). Nothing may panic, and how the
//! bytes are cut into reads must not change what comes out.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// What decode.rs asks of xtask's firmware module: paths in log locations
/// are shown relative to it (the fuzzed table has no locations).
mod firmware {
    pub fn workspace_root() -> std::path::PathBuf {
        std::path::PathBuf::from("/")
    }
}

#[path = "../../xtask/src/decode.rs"]
#[allow(dead_code)]
mod decode;

use decode::{Decoded, Decoder};

const TABLE: &str = include_str!("../../xtask/tests/data/qemu-vc4-sample.defmt.json");

/// What the decoder made of `data` read `piece` bytes at a time, as text.
fn run(data: &[u8], piece: usize) -> Vec<String> {
    static PARSED: std::sync::OnceLock<defmt_decoder::Table> = std::sync::OnceLock::new();
    let table = PARSED.get_or_init(|| serde_json::from_str(TABLE).unwrap());
    let mut decoder = Decoder::new(table.clone(), None);
    let mut events = Vec::new();
    let mut streams = records::Streams::default();
    let mut on_event = |d: Decoded| {
        events.push(format!("{d:?}"));
        if let Decoded::Record(r) = d {
            let _ = streams.push(*r);
        }
    };
    for chunk in data.chunks(piece) {
        decoder.feed(chunk, &mut on_event);
    }
    decoder.finish(&mut on_event);
    for collector in streams.into_all() {
        if let Ok(report) = collector.report() {
            events.push(format!(
                "{} runs, {} lost",
                report.runs.len(),
                report.lost_frames
            ));
        }
    }
    events
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let whole = run(rest, rest.len().max(1));
    let pieces = run(rest, usize::from(first % 64) + 1);
    assert_eq!(whole, pieces, "the reads' sizes changed the result");
});
