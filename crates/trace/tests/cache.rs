//! The threaded reader gives the events the in-memory parser gives, whatever
//! the chunk boundaries; the compiled-trace cache gives back exactly what a
//! parse gives, and is rebuilt whenever its key (size, mtime, content, mode)
//! no longer matches.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};
use trace::cache::{entry_path, load};
use trace::{binary, Event, Mode, StrParser};

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "trace-cache-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A log of `n` buffers (create, use, destroy each), with a malformed line,
/// a non-trace line longer than the reader's chunks, and trace lines of
/// every length in between, so that lines straddle chunk boundaries.
fn synthetic_log(n: u32) -> String {
    let mut log = String::new();
    for i in 0..n {
        let t = 1_000_000 + i as u64 * 10;
        log.push_str(&format!(
            "[{:5}.{:06}] @@@ create {:08x} {}\n",
            t / 1_000_000,
            t % 1_000_000,
            0x1000_0000 + i,
            4096 * (1 + i % 7)
        ));
        if i % 97 == 0 {
            log.push_str(&format!(
                "[    9.000000] noise {}\n",
                "x".repeat(i as usize % 300)
            ));
        }
        if i == n / 2 {
            log.push_str("[    1.000000] @@@ use ");
            log.push_str(&"y".repeat(600 * 1024));
            log.push('\n');
            log.push_str("[    1.000000] @@@ frobnicate 12345678\n");
        }
        log.push_str(&format!(
            "[{:5}.{:06}] @@@ use {:08x}\n",
            t / 1_000_000,
            t % 1_000_000 + 1,
            0x1000_0000 + i
        ));
        log.push_str(&format!(
            "[{:5}.{:06}] @@@ destroy {:08x}\n",
            t / 1_000_000,
            t % 1_000_000 + 2,
            0x1000_0000 + i
        ));
    }
    log
}

fn write_gz(path: &Path, text: &str) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    fs::write(path, enc.finish().unwrap()).unwrap();
}

fn in_memory(text: &str) -> Vec<Event> {
    StrParser::new(text, Mode::Lenient)
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn threaded_reader_matches_the_in_memory_parser() {
    let dir = Scratch::new();
    let text = synthetic_log(40_000);
    assert!(text.len() > 3 * 256 * 1024, "spans several chunks");
    let want = in_memory(&text);
    let plain = dir.0.join("t.log");
    fs::write(&plain, &text).unwrap();
    let gz = dir.0.join("t.log.gz");
    write_gz(&gz, &text);
    for path in [&plain, &gz] {
        let mut parser = trace::open(path, Mode::Lenient).unwrap();
        let got: Vec<Event> = parser.by_ref().map(|e| e.unwrap()).collect();
        assert_eq!(got, want, "{}", path.display());
        let warnings = parser.into_warnings();
        assert_eq!(warnings.total(), 2, "the overlong line and the unknown op");
    }
}

#[test]
fn cached_load_gives_back_what_the_parse_gave() {
    let dir = Scratch::new();
    let cache = dir.0.join("cache");
    let log = dir.0.join("t.log.gz");
    let text = synthetic_log(5_000);
    write_gz(&log, &text);
    let first = load(&log, Mode::Lenient, Some(&cache)).unwrap();
    assert!(!first.from_cache);
    assert!(first.cache_error.is_none());
    assert!(entry_path(&cache, &log).is_file());
    let want = binary::encode(in_memory(&text), "t").unwrap();
    assert_eq!(first.bytes(), &want[..]);
    assert_eq!(first.warning_count, 2);
    // The one-line summary every verb prints: each kind with its first line.
    assert!(
        first.warnings.starts_with("2 problems: ")
            && first.warnings.contains("unknown_op (first at line "),
        "{}",
        first.warnings
    );
    let second = load(&log, Mode::Lenient, Some(&cache)).unwrap();
    assert!(second.from_cache);
    assert_eq!(second.bytes(), first.bytes());
    assert_eq!(second.warnings, first.warnings);
    assert_eq!(second.warning_count, first.warning_count);
    assert!(second.trace().unwrap().events().eq(in_memory(&text)));
    // Without a cache directory: always parsed, nothing stored.
    assert!(!load(&log, Mode::Lenient, None).unwrap().from_cache);
}

#[test]
fn any_change_of_the_key_rebuilds() {
    let dir = Scratch::new();
    let cache = dir.0.join("cache");
    let log = dir.0.join("t.log");
    fs::write(&log, synthetic_log(100)).unwrap();
    load(&log, Mode::Lenient, Some(&cache)).unwrap();
    assert!(load(&log, Mode::Lenient, Some(&cache)).unwrap().from_cache);

    // New content of the same size and modification time: the hash tells.
    let text = fs::read_to_string(&log).unwrap();
    let mtime = fs::metadata(&log).unwrap().modified().unwrap();
    let edited = text.replacen("create 10000000 4096", "create 10000000 8192", 1);
    assert_eq!(edited.len(), text.len());
    fs::write(&log, &edited).unwrap();
    fs::File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let reloaded = load(&log, Mode::Lenient, Some(&cache)).unwrap();
    assert!(!reloaded.from_cache);
    assert_eq!(
        reloaded.trace().unwrap().events().next(),
        in_memory(&edited).first().copied()
    );

    // Same content, touched.
    fs::File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    assert!(!load(&log, Mode::Lenient, Some(&cache)).unwrap().from_cache);
    assert!(load(&log, Mode::Lenient, Some(&cache)).unwrap().from_cache);

    // Another mode is another key.
    assert!(!load(&log, Mode::Strict, Some(&cache))
        .map(|c| c.from_cache)
        .unwrap_or(false));
}

#[test]
fn a_damaged_entry_is_rebuilt() {
    let dir = Scratch::new();
    let cache = dir.0.join("cache");
    let log = dir.0.join("t.log");
    let text = synthetic_log(200);
    fs::write(&log, &text).unwrap();
    load(&log, Mode::Lenient, Some(&cache)).unwrap();
    let entry = entry_path(&cache, &log);
    let mut bytes = fs::read(&entry).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    fs::write(&entry, &bytes).unwrap();
    let again = load(&log, Mode::Lenient, Some(&cache)).unwrap();
    assert!(!again.from_cache);
    assert!(again.trace().unwrap().events().eq(in_memory(&text)));
    fs::write(&entry, &bytes[..100]).unwrap();
    assert!(!load(&log, Mode::Lenient, Some(&cache)).unwrap().from_cache);
}

#[test]
fn strict_errors_are_not_cached() {
    let dir = Scratch::new();
    let cache = dir.0.join("cache");
    let log = dir.0.join("bad.log");
    fs::write(&log, "[ 1.000000] @@@ create 12345678 0\n").unwrap();
    assert!(load(&log, Mode::Strict, Some(&cache)).is_err());
    assert!(!entry_path(&cache, &log).exists());
}
