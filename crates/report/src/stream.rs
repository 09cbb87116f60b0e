//! `records.bin`: a saved record stream, so a full report (timeline, charts,
//! animation) can be rebuilt later from exactly what the replay sent.
//!
//! Format: the 8-byte magic `POOLRECS`, a little-endian `u16` file-format
//! version ([`FORMAT_VERSION`]), then records, each a little-endian `u32` length
//! followed by that many bytes of postcard-encoded [`Record`]. The record
//! protocol itself is versioned by the stream's `Hello` record.
//!
//! Files written one after the other (`cat a/records.bin b/records.bin`)
//! read as one stream: a header where a length would be is skipped (no
//! length starts with `POOL`: it would be over a GiB). A stream of several
//! boots is split at their `Hello` records ([`boots`]), as `listen` splits
//! a serial line.

use anyhow::{bail, Context};
use records::{CollectError, Collector, Record, Streams, PROTOCOL_VERSION};
use std::io::{self, Read, Write};
use std::path::Path;

/// First bytes of a record-stream file.
pub const MAGIC: &[u8; 8] = b"POOLRECS";
/// Version of the file framing (not of the records).
pub const FORMAT_VERSION: u16 = 1;
/// No record is anywhere near this; a larger length means a damaged file.
const MAX_RECORD_BYTES: u32 = 256 << 20;

/// Writes records one at a time, e.g. while a replay streams them.
pub struct StreamWriter<W: Write> {
    out: W,
}

impl<W: Write> StreamWriter<W> {
    /// Starts a stream: writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        Ok(Self { out })
    }

    /// Appends one record.
    pub fn push(&mut self, record: &Record) -> anyhow::Result<()> {
        let bytes = record.to_bytes().context("encoding a record")?;
        let len = u32::try_from(bytes.len()).context("record larger than 4 GiB")?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&bytes)?;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes a whole stream.
pub fn write<'a, W: Write>(
    out: W,
    records: impl IntoIterator<Item = &'a Record>,
) -> anyhow::Result<W> {
    let mut writer = StreamWriter::new(out)?;
    for record in records {
        writer.push(record)?;
    }
    Ok(writer.finish()?)
}

/// A whole stream in memory, the records encoded in parallel (rayon): the
/// same bytes as [`write`]. The snapshots of a big trace's runs are millions
/// of buffers, and encoding them one by one was half of a report's time.
pub fn encode(records: &[Record]) -> anyhow::Result<Vec<u8>> {
    use rayon::prelude::*;
    let frames: Vec<Vec<u8>> = records
        .par_iter()
        .map(|record| -> anyhow::Result<Vec<u8>> {
            let bytes = record.to_bytes().context("encoding a record")?;
            let len = u32::try_from(bytes.len()).context("record larger than 4 GiB")?;
            let mut frame = Vec::with_capacity(4 + bytes.len());
            frame.extend_from_slice(&len.to_le_bytes());
            frame.extend_from_slice(&bytes);
            Ok(frame)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + frames.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    for frame in &frames {
        out.extend_from_slice(frame);
    }
    Ok(out)
}

/// True when `bytes` start like a record-stream file.
pub fn looks_like_stream(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Reads a whole stream. A truncated last record (a replay cut short) is an
/// error that says how many records were read before it.
pub fn read(mut input: impl Read) -> anyhow::Result<Vec<Record>> {
    let mut header = [0u8; 10];
    input
        .read_exact(&mut header)
        .context("reading the record-stream header")?;
    if &header[..8] != MAGIC {
        bail!(
            "not a record stream (the file does not start with {:?})",
            std::str::from_utf8(MAGIC).unwrap()
        );
    }
    let version = u16::from_le_bytes([header[8], header[9]]);
    if version != FORMAT_VERSION {
        bail!("record-stream format version {version}; this build reads version {FORMAT_VERSION}");
    }
    let mut records = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match read_exact_or_eof(&mut input, &mut len)? {
            Fill::Eof => break,
            Fill::Partial => bail!(
                "record stream truncated after {} records (inside a length)",
                records.len()
            ),
            Fill::Full => {}
        }
        if len == MAGIC[..4] {
            let mut rest = [0u8; 6];
            input.read_exact(&mut rest).with_context(|| {
                format!(
                    "record stream truncated after {} records (inside a second file header)",
                    records.len()
                )
            })?;
            if rest[..4] != MAGIC[4..] {
                bail!(
                    "record {} claims over a GiB: the stream is damaged",
                    records.len()
                );
            }
            let version = u16::from_le_bytes([rest[4], rest[5]]);
            if version != FORMAT_VERSION {
                bail!("a second record stream of format version {version} follows record {}; this build reads version {FORMAT_VERSION}", records.len());
            }
            continue;
        }
        let len = u32::from_le_bytes(len);
        if len > MAX_RECORD_BYTES {
            bail!(
                "record {} claims {len} bytes: the stream is damaged",
                records.len()
            );
        }
        let mut body = vec![0u8; len as usize];
        input
            .read_exact(&mut body)
            .with_context(|| format!("record stream truncated inside record {}", records.len()))?;
        let record = Record::from_bytes(&body).with_context(|| {
            format!(
                "record {} does not decode (protocol {PROTOCOL_VERSION} expected)",
                records.len()
            )
        })?;
        records.push(record);
    }
    Ok(records)
}

enum Fill {
    Full,
    Partial,
    Eof,
}

fn read_exact_or_eof(input: &mut impl Read, buf: &mut [u8]) -> io::Result<Fill> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => {
                return Ok(if filled == 0 {
                    Fill::Eof
                } else {
                    Fill::Partial
                })
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Fill::Full)
}

/// Reads a record-stream file into a collector.
pub fn load(path: &Path) -> anyhow::Result<Collector> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let records =
        read(io::BufReader::new(file)).with_context(|| format!("reading {}", path.display()))?;
    collect(records)
}

/// Feeds records to a new collector: the stream must hold one boot (see
/// [`boots`] for several).
pub fn collect(records: impl IntoIterator<Item = Record>) -> anyhow::Result<Collector> {
    let mut boots = boots(records)?;
    if boots.len() > 1 {
        bail!(
            "the stream holds {} boots (one report each): `cargo xtask report` writes them one by one; give anything else one boot",
            boots.len()
        );
    }
    Ok(boots.pop().unwrap_or_default())
}

/// Splits records at boot banners (`records::Streams`, the same as
/// `listen`'s), one collector per boot that reported anything. A record
/// with values out of range is counted as lost (the report is marked
/// incomplete); any other collector error refuses the stream.
pub fn boots(records: impl IntoIterator<Item = Record>) -> anyhow::Result<Vec<Collector>> {
    let mut streams = Streams::default();
    for (i, record) in records.into_iter().enumerate() {
        match streams.push(record) {
            Ok(()) | Err(CollectError::Invalid { .. }) => {}
            Err(e) => bail!("record {i}: {e}"),
        }
    }
    Ok(streams.into_all())
}

/// Reads a record-stream file into one collector per boot.
pub fn load_boots(path: &Path) -> anyhow::Result<Vec<Collector>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let records =
        read(io::BufReader::new(file)).with_context(|| format!("reading {}", path.display()))?;
    boots(records)
}

/// Move samples per `Moves` record when a collector is written back out.
const MOVES_PER_RECORD: usize = 1024;

/// The records that rebuild `collector`: pushing them into a new collector
/// gives the same runs, samples, snapshots, moves and results.
pub fn records_of(collector: &Collector) -> Vec<Record> {
    let mut out = Vec::new();
    if let Some(firmware) = &collector.firmware {
        out.push(Record::Hello {
            protocol: PROTOCOL_VERSION,
            firmware: firmware.clone(),
        });
    }
    if let Some(p) = &collector.platform {
        out.push(Record::Platform(p.clone()));
    }
    if let Some(t) = &collector.trace {
        out.push(Record::Trace(t.clone()));
    }
    for run in &collector.runs {
        out.push(Record::RunStart {
            run: run.run,
            policy: run.policy,
            mover: run.mover,
            pool_bytes: run.pool_bytes,
            events: run.events,
        });
        for s in &run.samples {
            out.push(Record::Sample {
                run: run.run,
                sample: *s,
            });
        }
        for s in &run.snapshots {
            out.push(Record::Snapshot {
                run: run.run,
                snapshot: s.clone(),
            });
        }
        for chunk in run.moves.chunks(MOVES_PER_RECORD) {
            out.push(Record::Moves {
                run: run.run,
                moves: chunk.to_vec(),
            });
        }
        for &(buffer, page, expected, found) in &run.corruptions {
            out.push(Record::Corruption {
                run: run.run,
                buffer,
                page,
                expected,
                found,
            });
        }
        match &run.result {
            Some(result) => out.push(Record::RunEnd {
                run: run.run,
                result: result.clone(),
            }),
            None => out.push(Record::Progress {
                run: run.run,
                events_done: run.events_done,
            }),
        }
    }
    if let Some(b) = &collector.bringup {
        use records::BringupItem as Item;
        out.extend(b.calibration.map(Item::Calibration).map(Record::Bringup));
        out.extend(
            b.coherency
                .iter()
                .map(|p| Record::Bringup(Item::Coherency(*p))),
        );
        out.extend(
            b.copies
                .iter()
                .map(|c| Record::Bringup(Item::Copy(c.clone()))),
        );
        out.extend(
            b.notes
                .iter()
                .map(|n| Record::Bringup(Item::Note(n.clone()))),
        );
    }
    for (name, passed, detail) in &collector.checks {
        out.push(Record::Check {
            name: name.clone(),
            passed: *passed,
            detail: detail.clone(),
        });
    }
    out.extend(
        collector
            .alloc_bench
            .iter()
            .cloned()
            .map(Record::AllocBench),
    );
    if collector.lost_frames > 0 {
        out.push(Record::Lost {
            frames: collector.lost_frames,
        });
    }
    if let Some(exit_code) = collector.exit_code {
        out.push(Record::Finished { exit_code });
    }
    out
}

/// Everything `cargo xtask report` does with a record-stream file short of
/// writing it out: read, split per boot, and for each boot with a report,
/// its summary, timeline, charts and page. The number of reports built.
/// The body of the record-stream fuzz target and of the property tests: it
/// may refuse the bytes, never panic.
pub fn render_in_memory(bytes: &[u8]) -> anyhow::Result<usize> {
    let mut built = 0;
    for collector in boots(read(bytes)?)? {
        let Ok(report) = collector.report() else {
            continue;
        };
        let _ = crate::timeline::csv(&collector);
        let charts = crate::charts::all(&report, Some(&collector))?;
        let _ = crate::html::page(&report, Some(&collector), &charts);
        built += 1;
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `records.bin` of the real capture in xtask/tests/data (the report
    /// `listen` wrote from it).
    const REAL: &[u8] = include_bytes!("../tests/data/qemu-vc4-sample.records.bin");

    #[test]
    fn the_real_stream_renders_one_complete_report() {
        assert_eq!(render_in_memory(REAL).unwrap(), 1);
        let boots = boots(read(REAL).unwrap()).unwrap();
        let report = boots[0].report().unwrap();
        assert_eq!(report.runs.len(), 8);
        assert!(!report.incomplete);
    }

    #[test]
    fn truncation_at_every_offset_refuses_with_a_message_or_renders() {
        for cut in 0..REAL.len() {
            match render_in_memory(&REAL[..cut]) {
                Ok(_) => {}
                Err(e) => {
                    let text = format!("{e:#}");
                    assert!(
                        text.contains("truncated") || text.contains("header"),
                        "cut at {cut}: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_parallel_encoding_is_the_streamed_one() {
        let records = read(REAL).unwrap();
        let streamed = write(Vec::new(), &records).unwrap();
        assert_eq!(encode(&records).unwrap(), streamed);
        assert_eq!(read(encode(&records).unwrap().as_slice()).unwrap(), records);
        assert_eq!(encode(&[]).unwrap(), write(Vec::new(), &[]).unwrap());
    }

    #[test]
    fn two_streams_one_after_the_other_are_two_boots() {
        let mut both = REAL.to_vec();
        both.extend_from_slice(REAL);
        assert_eq!(render_in_memory(&both).unwrap(), 2);
        let e = collect(read(both.as_slice()).unwrap()).unwrap_err();
        assert!(e.to_string().contains("holds 2 boots"), "{e}");
    }

    #[test]
    fn an_out_of_range_sample_is_lost_not_charted() {
        let mut records = read(REAL).unwrap();
        let at = records
            .iter()
            .position(|r| matches!(r, Record::Sample { .. }))
            .expect("the capture has samples");
        if let Record::Sample { sample, .. } = &mut records[at] {
            sample.fragmentation = -1.39e24;
        }
        let mut bytes = Vec::new();
        write(&mut bytes, &records).unwrap();
        assert_eq!(render_in_memory(&bytes).unwrap(), 1);
        let report = collect(records).unwrap().report().unwrap();
        assert_eq!(report.lost_frames, 1);
        assert!(report.incomplete);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_after_the_header_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut bytes = b"POOLRECS\x01\x00".to_vec();
            bytes.extend_from_slice(&body);
            let _ = render_in_memory(&bytes);
        }

        #[test]
        fn bit_flips_and_garbage_in_the_real_stream_never_panic(
            flips in proptest::collection::vec((10usize..REAL.len(), 0u8..8), 0..6),
            at in 10usize..REAL.len(),
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = REAL.to_vec();
            for &(i, bit) in &flips {
                bytes[i] ^= 1 << bit;
            }
            bytes.splice(at..at, garbage);
            let _ = render_in_memory(&bytes);
        }
    }
}
