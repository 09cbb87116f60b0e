//! Arbitrary bytes as a record-stream file (records.bin), through all that
//! `cargo xtask report` does short of writing files: read, split per boot,
//! build each report, its timeline, charts and page. Refusing is fine;
//! panicking (an overflow in the chart arithmetic among others) is not.
//! Seed: xtask/tests/data's capture as records.bin, in
//! crates/report/tests/data/qemu-vc4-sample.records.bin.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // With the header in front as well, so the fuzzer need not find it.
    let _ = report::stream::render_in_memory(data);
    let mut framed = b"POOLRECS\x01\x00".to_vec();
    framed.extend_from_slice(data);
    let _ = report::stream::render_in_memory(&framed);
});
