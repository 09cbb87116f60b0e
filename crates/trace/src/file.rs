//! Reading logs from files and other byte streams (`std` only).

use crate::binary::{self, EncodeError};
use crate::problem::{Mode, Problem, Warnings};
use crate::stats::{Stats, StatsBuilder};
use crate::validate::{Validator, MAX_LINE};
use crate::Event;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Why a trace file could not be read, parsed or compiled.
#[derive(Debug)]
pub enum Error {
    /// The file could not be opened or read (or its gzip stream is corrupt).
    Io {
        path: Option<PathBuf>,
        source: io::Error,
    },
    /// A problem in the log (strict mode).
    Trace(Problem),
    /// The events could not be encoded (e.g. the name is too long).
    Encode(EncodeError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                path: Some(path),
                source,
            } => write!(f, "cannot read {}: {source}", path.display()),
            Error::Io { path: None, source } => write!(f, "cannot read trace: {source}"),
            Error::Trace(problem) => problem.fmt(f),
            Error::Encode(e) => e.fmt(f),
        }
    }
}

/// No `source()`: the message above already holds the cause's, and a chain
/// printed in full (anyhow's `{:#}`, as every xtask verb prints errors) would
/// otherwise say it twice.
impl std::error::Error for Error {}

impl From<Problem> for Error {
    fn from(p: Problem) -> Self {
        Error::Trace(p)
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Self {
        Error::Encode(e)
    }
}

/// Streaming parser over any [`BufRead`]: yields validated events one by
/// one, in memory bounded by the live buffers, whatever the log's length.
///
/// Lines are parsed in place in the reader's buffer when they fit in it, so
/// there is no allocation per line. In strict mode the first problem is
/// yielded as `Err` and the iterator ends; an I/O error ends it in any mode.
pub struct Parser<R> {
    reader: R,
    /// A line split across reader buffers, or cut at [`MAX_LINE`].
    partial: Vec<u8>,
    overlong: bool,
    validator: Validator,
    path: Option<PathBuf>,
    done: bool,
}

impl<R: BufRead> Parser<R> {
    /// A parser reading `reader` from its current position.
    pub fn new(reader: R, mode: Mode) -> Self {
        Parser {
            reader,
            partial: Vec::new(),
            overlong: false,
            validator: Validator::new(mode),
            path: None,
            done: false,
        }
    }

    /// The validator: warnings so far, current line number, buffers created.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// Warnings so far.
    pub fn warnings(&self) -> &Warnings {
        self.validator.warnings()
    }

    /// Gives the warnings up once the events are consumed.
    pub fn into_warnings(self) -> Warnings {
        self.validator.into_warnings()
    }

    fn io_error(&mut self, source: io::Error) -> Error {
        self.done = true;
        Error::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn feed_partial(&mut self) -> Result<Option<Event>, Problem> {
        let result = if self.overlong {
            self.validator.feed_overlong(&self.partial)
        } else {
            self.validator.feed(&self.partial)
        };
        self.partial.clear();
        self.overlong = false;
        result
    }

    fn step(&mut self) -> Result<Option<Option<Event>>, Error> {
        let available = match self.reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Some(None)),
            Err(e) => return Err(self.io_error(e)),
        };
        if available.is_empty() {
            // End of input: a last line without a newline still counts.
            if self.partial.is_empty() && !self.overlong {
                return Ok(None);
            }
            return Ok(Some(self.feed_partial()?));
        }
        match memchr::memchr(b'\n', available) {
            Some(n) if self.partial.is_empty() && !self.overlong => {
                let result = if n > MAX_LINE {
                    self.validator.feed_overlong(&available[..MAX_LINE])
                } else {
                    self.validator.feed(&available[..n])
                };
                self.reader.consume(n + 1);
                Ok(Some(result?))
            }
            found => {
                // A line continued from the previous buffer, or one that does
                // not end in this buffer: collect it (bounded) in `partial`.
                let end = found.unwrap_or(available.len());
                let room = MAX_LINE - self.partial.len();
                self.overlong |= end > room;
                self.partial.extend_from_slice(&available[..end.min(room)]);
                match found {
                    Some(n) => {
                        self.reader.consume(n + 1);
                        Ok(Some(self.feed_partial()?))
                    }
                    None => {
                        self.reader.consume(end);
                        Ok(Some(None))
                    }
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for Parser<R> {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.step() {
                Ok(Some(Some(event))) => return Some(Ok(event)),
                Ok(Some(None)) => {}
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl<R: BufRead> std::iter::FusedIterator for Parser<R> {}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUFFER: usize = 256 * 1024;
/// Text handed from the inflating thread to the parser in one piece: big
/// enough that the hand-over costs nothing, small enough to stay in cache.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight: the inflater may run this far ahead of the parser.
const CHUNKS_IN_FLIGHT: usize = 8;

/// A chunk of text: a buffer, of which the first `len` bytes are lines.
/// Buffers keep their full length (initialised once) as they go round, so
/// refilling one never clears it first.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

/// The text of a log, in chunks of whole lines, from the thread that reads
/// (and inflates) it. Spent chunks go back to that thread to be filled
/// again, so there is no allocation per chunk once the pipeline is full.
struct ChunkReader {
    chunks: crossbeam_channel::Receiver<io::Result<Chunk>>,
    spent: crossbeam_channel::Sender<Vec<u8>>,
    current: Chunk,
    pos: usize,
    done: bool,
}

impl ChunkReader {
    /// Starts the reading thread over `source` (plain text or an inflater).
    fn spawn(source: impl Read + Send + 'static) -> io::Result<ChunkReader> {
        let (chunk_tx, chunks) = crossbeam_channel::bounded(CHUNKS_IN_FLIGHT);
        let (spent, spent_rx) = crossbeam_channel::bounded(CHUNKS_IN_FLIGHT + 1);
        std::thread::Builder::new()
            .name("trace-read".into())
            .spawn(move || split_lines(source, &chunk_tx, &spent_rx))?;
        Ok(ChunkReader {
            chunks,
            spent,
            current: Chunk {
                buf: Vec::new(),
                len: 0,
            },
            pos: 0,
            done: false,
        })
    }
}

/// The reading thread: fills chunks, cuts each after its last newline (the
/// rest starts the next chunk), sends them. It ends at the end of the input,
/// on an error (sent on), or when the parser is gone (its channel closed).
fn split_lines(
    mut source: impl Read,
    chunks: &crossbeam_channel::Sender<io::Result<Chunk>>,
    spent: &crossbeam_channel::Receiver<Vec<u8>>,
) {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buf = spent.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        // A line longer than a chunk: the buffer grows to hold it whole.
        if buf.len() < carry.len() + CHUNK / 2 {
            buf.resize(carry.len() + CHUNK, 0);
        }
        buf[..carry.len()].copy_from_slice(&carry);
        let mut len = carry.len();
        carry.clear();
        let mut eof = false;
        while len < buf.len() {
            match source.read(&mut buf[len..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = chunks.send(Err(e));
                    return;
                }
            }
        }
        if !eof {
            // No newline at all: the line is longer than the buffer; it goes
            // on in the next chunk and the parser joins the pieces.
            if let Some(last) = memchr::memrchr(b'\n', &buf[..len]) {
                carry.extend_from_slice(&buf[last + 1..len]);
                len = last + 1;
            }
        }
        if len > 0 && chunks.send(Ok(Chunk { buf, len })).is_err() {
            return;
        }
        if eof {
            return;
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.len && !self.done {
            let spent = std::mem::take(&mut self.current.buf);
            if !spent.is_empty() {
                // Full only if the reader has stopped: then it is not needed.
                let _ = self.spent.try_send(spent);
            }
            self.current.len = 0;
            self.pos = 0;
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The reading thread ended: end of input.
                Err(_) => self.done = true,
            }
        }
        Ok(&self.current.buf[self.pos..self.current.len])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.current.len);
    }
}

/// A reader of the text of a log whose raw bytes `raw` yields, starting with
/// `head` (its first bytes): inflated if it is gzip, on a thread of its own.
fn text_reader(
    path: &Path,
    head: &[u8],
    raw: impl BufRead + Send + 'static,
) -> Result<Box<dyn BufRead + Send>, Error> {
    let io_err = |source| Error::Io {
        path: Some(path.to_path_buf()),
        source,
    };
    let is_gzip = head.len() >= 2 && head[..2] == GZIP_MAGIC;
    let named_gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let reader = if is_gzip {
        // Multi-member: `cat a.gz b.gz` and some compressors write several members.
        ChunkReader::spawn(flate2::bufread::MultiGzDecoder::new(raw))
    } else if named_gz {
        return Err(io_err(io::Error::new(
            io::ErrorKind::InvalidData,
            "named .gz but is not gzip data",
        )));
    } else {
        ChunkReader::spawn(raw)
    };
    Ok(Box::new(reader.map_err(io_err)?))
}

/// Opens a `.log` or `.log.gz` file for streaming. Gzip is recognised by its
/// magic bytes (a `.gz` name holding plain text is refused, to catch mix-ups).
/// The file is read and inflated on a thread of its own, a few chunks ahead
/// of the parser.
pub fn open(path: impl AsRef<Path>, mode: Mode) -> Result<Parser<Box<dyn BufRead + Send>>, Error> {
    let path = path.as_ref();
    let io_err = |source| Error::Io {
        path: Some(path.to_path_buf()),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut head = Vec::with_capacity(2);
    file.by_ref()
        .take(2)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    let raw = io::Cursor::new(head.clone()).chain(BufReader::with_capacity(READ_BUFFER, file));
    let reader = text_reader(path, &head, raw)?;
    let mut parser = Parser::new(reader, mode);
    parser.path = Some(path.to_path_buf());
    Ok(parser)
}

/// As [`open`], for a file already read into memory (`path` names it in
/// errors and, with the content, decides whether it is gzip).
pub fn open_bytes(
    path: impl AsRef<Path>,
    bytes: std::sync::Arc<[u8]>,
    mode: Mode,
) -> Result<Parser<Box<dyn BufRead + Send>>, Error> {
    let path = path.as_ref();
    let head = bytes[..bytes.len().min(2)].to_vec();
    let reader = text_reader(path, &head, io::Cursor::new(bytes))?;
    let mut parser = Parser::new(reader, mode);
    parser.path = Some(path.to_path_buf());
    Ok(parser)
}

/// A whole trace read into memory.
#[derive(Clone, Debug)]
pub struct TraceFile {
    /// The validated events, in log order.
    pub events: Vec<Event>,
    /// Their statistics.
    pub stats: Stats,
    /// What lenient mode warned about (in strict mode: only backwards time).
    pub warnings: Warnings,
}

/// Reads, validates and measures a whole trace file.
pub fn read_file(path: impl AsRef<Path>, mode: Mode) -> Result<TraceFile, Error> {
    let mut parser = open(path, mode)?;
    let mut events = Vec::new();
    let mut stats = StatsBuilder::new();
    for event in parser.by_ref() {
        let event = event?;
        stats.push(&event);
        events.push(event);
    }
    Ok(TraceFile {
        events,
        stats: stats.finish(),
        warnings: parser.into_warnings(),
    })
}

/// Validates and measures a trace file without keeping its events.
pub fn stats_file(path: impl AsRef<Path>, mode: Mode) -> Result<(Stats, Warnings), Error> {
    let mut parser = open(path, mode)?;
    let mut stats = StatsBuilder::new();
    for event in parser.by_ref() {
        stats.push(&event?);
    }
    Ok((stats.finish(), parser.into_warnings()))
}

/// The trace name for a file: its name without `.gz` and `.log`, cut to
/// [`binary::MAX_NAME`] bytes.
pub fn default_name(path: &Path) -> String {
    let mut name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for suffix in [".gz", ".log"] {
        if let Some(stripped) = name.strip_suffix(suffix) {
            name.truncate(stripped.len());
        }
    }
    let mut cut = name.len().min(binary::MAX_NAME);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    name.truncate(cut);
    name
}

/// Parses, validates and encodes a trace file into the binary form, in one
/// streaming pass. `name` defaults to [`default_name`]. Returns the bytes and
/// the warnings.
pub fn compile_file(
    path: impl AsRef<Path>,
    mode: Mode,
    name: Option<&str>,
) -> Result<(Vec<u8>, Warnings), Error> {
    let path = path.as_ref();
    let name = name.map_or_else(|| default_name(path), str::to_owned);
    let mut parser = open(path, mode)?;
    let mut failure = None;
    let events = parser
        .by_ref()
        .map_while(|r| r.map_err(|e| failure = Some(e)).ok());
    let bytes = binary::encode(events, &name)?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok((bytes, parser.into_warnings()))
}

/// Reads a whole file into memory: used by tests and tools that want the raw log.
#[doc(hidden)]
pub fn read_log_bytes(path: &Path) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    File::open(path)?.read_to_end(&mut raw)?;
    if raw.starts_with(&GZIP_MAGIC) {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut text)?;
        return Ok(text);
    }
    Ok(raw)
}
