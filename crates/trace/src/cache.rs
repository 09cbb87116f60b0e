//! The compiled-trace cache (`std` only): a log parsed once is kept in its
//! binary form ([`crate::binary`]), so the next replay of the same file reads
//! a few bytes per event instead of inflating and parsing its text again.
//!
//! One cache file per source path. It holds the key it was made for (the
//! source's size, modification time and XXH3 hash of its content, and the
//! parse mode), the warnings the parse gave, the XXH3 hash of the binary
//! trace, and the binary trace. The binary form carries its own FNV-1a
//! checksum too (the firmware checks that one), but FNV-1a takes a multiply
//! per byte in a chain, about 3 ms for the 3 MB of the glmark2 trace, where
//! XXH3 reads it in a tenth of that: a second run checks the entry by XXH3. Any
//! difference in the key, or a cache file that does not read back whole,
//! means the log is parsed again and the entry rewritten (to a temporary
//! name, then renamed, so that a concurrent run never sees half a file).

use crate::binary::{self, BinaryTrace};
use crate::file::{default_name, open_bytes, Error};
use crate::problem::Mode;
use crate::StrParser;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

const MAGIC: [u8; 8] = *b"PBCACHE\0";
/// Bumped whenever the parser could give other events or warnings for the
/// same log, or the layout below changes.
const VERSION: u32 = 4;
/// magic, version, size, mtime s, mtime ns, xxh3, mode, pad, warning count,
/// warnings length, xxh3 of the binary trace.
const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 4 + 8 + 1 + 3 + 8 + 8 + 8;

/// Bytes of a compiled trace: encoded in this process, or a cache entry
/// mapped in place.
#[derive(Clone, Debug)]
enum Storage {
    Owned(Vec<u8>),
    Mapped(Arc<memmap2::Mmap>),
}

impl std::ops::Deref for Storage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Storage::Owned(v) => v,
            Storage::Mapped(m) => m,
        }
    }
}

/// Maps a file read-only.
///
/// Reading a file by mapping it, rather than copying it into fresh memory,
/// takes a third of the time for the 5 to 6 MB of openarena's log and cache
/// entry (2.8 ms against 8.5 ms to read and hash both, on this project's
/// 2-core machine): no copy, and page-cache pages mapped a batch per fault.
fn map(path: &Path) -> io::Result<memmap2::Mmap> {
    let file = fs::File::open(path)?;
    // SAFETY: a mapping is undefined behaviour if the file changes under it.
    // The sources are logs that nothing here writes, and this module never
    // writes an entry in place: it writes a temporary file and renames it
    // over the entry, which leaves an existing mapping on the old file. A
    // file changed anyway while mapped can give a wrong hash, which only
    // means a parse (a source) or a refused entry (the entry's own hash), or
    // at worst a SIGBUS if it is truncated: never a silently wrong trace
    // accepted, since every entry is checked by its hash after mapping.
    unsafe { memmap2::Mmap::map(&file) }
}

/// A trace in binary form, with what its parse warned about.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// A binary trace, checked (its hash, its checksum, or just encoded here).
    bytes: Storage,
    /// Where it starts in `bytes` (after a cache entry's header).
    start: usize,
    /// The parse's problems in one line, [`crate::Warnings::summary`] (empty: none).
    pub warnings: String,
    /// How many problems the warnings count.
    pub warning_count: u64,
    /// Read from the cache rather than parsed.
    pub from_cache: bool,
    /// Why the cache could not be written, if it could not (the trace is fine).
    pub cache_error: Option<String>,
}

impl Compiled {
    /// The trace, read in place (checked once already: no second pass).
    pub fn trace(&self) -> Result<BinaryTrace<'_>, binary::BinaryError> {
        BinaryTrace::parse_trusted(self.bytes())
    }

    /// The binary trace's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// What an entry is valid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    size: u64,
    mtime_s: u64,
    mtime_ns: u32,
    xxh3: u64,
    mode: u8,
}

impl Key {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.mtime_s.to_le_bytes());
        out.extend_from_slice(&self.mtime_ns.to_le_bytes());
        out.extend_from_slice(&self.xxh3.to_le_bytes());
        out.push(self.mode);
        out.extend_from_slice(&[0; 3]);
    }
}

fn mode_byte(mode: Mode) -> u8 {
    match mode {
        Mode::Lenient => 0,
        Mode::Strict => 1,
    }
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The entry for `path` in `dir`: named after the trace, and the hash of the
/// source's absolute path so that two files of one name do not share it.
pub fn entry_path(dir: &Path, path: &Path) -> PathBuf {
    let absolute = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let id = xxhash_rust::xxh3::xxh3_64(absolute.as_os_str().as_encoded_bytes());
    dir.join(format!("{}-{id:016x}.pbcache", default_name(path)))
}

/// Reads an entry made for `key`: `None` if there is none, it is for another
/// key, or it does not read back whole (then it is rebuilt).
fn read_entry(entry: &Path, key: &Key) -> Option<Compiled> {
    let data = map(entry).ok()?;
    if data.len() < HEADER_LEN {
        return None;
    }
    let mut want = Vec::with_capacity(HEADER_LEN);
    key.write(&mut want);
    if data[..want.len()] != want[..] {
        return None;
    }
    let warning_count = le_u64(&data, want.len());
    let warnings_len = usize::try_from(le_u64(&data, want.len() + 8)).ok()?;
    let binary_xxh3 = le_u64(&data, want.len() + 16);
    let text_end = HEADER_LEN.checked_add(warnings_len)?;
    let warnings = std::str::from_utf8(data.get(HEADER_LEN..text_end)?)
        .ok()?
        .to_owned();
    // A damaged entry is refused here, by the hash of the binary form;
    // then its header is read as usual (and must end where the entry does).
    if xxhash_rust::xxh3::xxh3_64(&data[text_end..]) != binary_xxh3 {
        return None;
    }
    BinaryTrace::parse_trusted_whole(&data[text_end..]).ok()?;
    Some(Compiled {
        bytes: Storage::Mapped(Arc::new(data)),
        start: text_end,
        warnings,
        warning_count,
        from_cache: true,
        cache_error: None,
    })
}

fn write_entry(entry: &Path, key: &Key, compiled: &Compiled) -> io::Result<()> {
    let mut data =
        Vec::with_capacity(HEADER_LEN + compiled.warnings.len() + compiled.bytes().len());
    key.write(&mut data);
    data.extend_from_slice(&compiled.warning_count.to_le_bytes());
    data.extend_from_slice(&(compiled.warnings.len() as u64).to_le_bytes());
    data.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(compiled.bytes()).to_le_bytes());
    data.extend_from_slice(compiled.warnings.as_bytes());
    data.extend_from_slice(compiled.bytes());
    if let Some(dir) = entry.parent() {
        fs::create_dir_all(dir)?;
    }
    let partial = entry.with_extension(format!("pbcache.{}.partial", std::process::id()));
    fs::write(&partial, &data)?;
    fs::rename(&partial, entry).inspect_err(|_| {
        let _ = fs::remove_file(&partial);
    })
}

/// The text of a log already read into `raw` when it is plain text: parsed
/// in place, with no reading thread copying it into chunks. `None` for gzip
/// (inflated on a thread of its own while the parse goes on: inflating the
/// whole file first, even with libdeflate at 2.7 times zlib-rs's speed, made
/// the glmark2 load 92 ms against 70 ms for the two threads) and for a `.gz`
/// name on something else, which the streaming reader refuses with its message.
fn text_in_memory<'a>(path: &Path, raw: &'a [u8]) -> Option<&'a [u8]> {
    let named_gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    (!raw.starts_with(&[0x1f, 0x8b]) && !named_gz).then_some(raw)
}

/// The binary form of the log at `path`: from the cache in `cache_dir` when
/// it holds an entry for exactly this content, otherwise parsed (in `mode`)
/// and stored there. Without a `cache_dir` it is always parsed. The trace
/// name is [`default_name`] of the path.
pub fn load(path: &Path, mode: Mode, cache_dir: Option<&Path>) -> Result<Compiled, Error> {
    let io_err = |source| Error::Io {
        path: Some(path.to_path_buf()),
        source,
    };
    let modified = fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(io_err)?;
    let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    let key_of = |content: &[u8]| Key {
        size: content.len() as u64,
        mtime_s: since.as_secs(),
        mtime_ns: since.subsec_nanos(),
        xxh3: xxhash_rust::xxh3::xxh3_64(content),
        mode: mode_byte(mode),
    };
    let entry = cache_dir.map(|dir| entry_path(dir, path));
    if let Some(entry) = &entry {
        // The source is only hashed here: mapped (see `map`), not copied.
        let key = match map(path) {
            Ok(source) => key_of(&source),
            Err(_) => key_of(&fs::read(path).map_err(io_err)?),
        };
        if let Some(found) = read_entry(entry, &key) {
            return Ok(found);
        }
    }
    // Parsed from a copy, and keyed by that copy's own hash: what is
    // stored is exactly what was parsed, whatever happened to the file.
    let raw: Arc<[u8]> = fs::read(path).map_err(io_err)?.into();
    let key = key_of(&raw);
    let name = default_name(path);
    let mut failure = None;
    let (bytes, warnings) = match text_in_memory(path, &raw) {
        // The whole text at hand: parsed in place on this thread.
        Some(text) => {
            let mut parser = StrParser::from_bytes(text, mode);
            let events = parser
                .by_ref()
                .map_while(|r| r.map_err(|e| failure = Some(Error::from(e))).ok());
            let bytes = binary::encode(events, &name)?;
            (bytes, parser.into_warnings())
        }
        // Otherwise streamed, inflated on a thread of its own.
        None => {
            let mut parser = open_bytes(path, raw.clone(), mode)?;
            let events = parser
                .by_ref()
                .map_while(|r| r.map_err(|e| failure = Some(e)).ok());
            let bytes = binary::encode(events, &name)?;
            (bytes, parser.into_warnings())
        }
    };
    if let Some(e) = failure {
        return Err(e);
    }
    let mut compiled = Compiled {
        bytes: Storage::Owned(bytes),
        start: 0,
        warnings: warnings.summary(),
        warning_count: warnings.total(),
        from_cache: false,
        cache_error: None,
    };
    if let Some(entry) = &entry {
        if let Err(e) = write_entry(entry, &key, &compiled) {
            compiled.cache_error = Some(format!("cannot write {}: {e}", entry.display()));
        }
    }
    Ok(compiled)
}
