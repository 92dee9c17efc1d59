//! Capture sources: classic pcap (both byte orders, micro/nanosecond), pcapng (several
//! interfaces, each with its own link type and clock), gzip-compressed either way, standard input.
//!
//! INTERFACE (implemented by the source work; the pipeline codes against exactly this):
//!
//! ```ignore
//! let mut src = CaptureReader::open("x.pcap")?;   // Err(CaptureError(one-line message)); "-" is stdin
//! while let Some(rec) = src.next_record() {       // a lending iterator: rec borrows the reader
//!     rec.ts; rec.linktype; rec.data;             // f64 seconds, link type, captured bytes
//! }
//! src.error()       // Some(one-line reason) if reading stopped early (truncated, corrupt)
//! src.name()        // the file's base name (sanitised) or "-"
//! src.size(); src.bytes_read();   // for progress
//! ```
// The parsers below each forbid unsafe code; live/mod.rs (system calls, the shared ring) allows
// it, and the parser of the ring's blocks (live/frames.rs) forbids it too.
#![deny(unsafe_code)]

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError(pub String);

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CaptureError {}

#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Capture time in epoch seconds, computed exactly as the Python reader did (seconds plus
    /// fraction divided by the interface's ticks per second, rounded once).
    pub ts: f64,
    pub linktype: u32,
    /// The captured bytes of the frame.
    pub data: &'a [u8],
    /// The frame's length on the wire (at least `data.len()` in a sound capture; more when a
    /// snap length cut it): BPF's `len`.
    pub orig_len: u32,
}

mod buffer;
mod gzip;
pub mod live;
mod name;
mod open;
mod pcap;
mod pcapng;
mod prefetch;

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use buffer::Buffer;

/// Counters the source keeps beside the records (the Python reader's `stats.malformed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounters {
    /// pcapng packet blocks skipped as unsound: too short, an unknown interface, a caplen past
    /// the block's end; or a simple packet block before any interface.
    pub malformed: u64,
}

/// A record found by a format reader: its frame is `len` bytes at `start` of the buffer window.
#[derive(Clone, Copy)]
pub(crate) struct Found {
    ts: f64,
    linktype: u32,
    start: usize,
    len: usize,
    orig_len: u32,
}

enum Format {
    Pcap(pcap::Pcap),
    Pcapng(pcapng::Pcapng),
}

const PCAPNG_MAGIC: &[u8] = b"\x0a\x0d\x0d\x0a";

/// The records of one capture, read front to back; `error()` says why reading stopped early.
pub struct CaptureReader {
    name: String,
    size: Option<u64>,
    read: Arc<AtomicU64>,
    buf: Buffer,
    format: Format,
    done: bool,
    /// A record found while gathering a chunk but lying in the next window: the next one out.
    carry: Option<Found>,
}

/// Where a frame of a `Chunk` lies in its bytes.
#[derive(Debug, Clone, Copy)]
pub struct FrameAt {
    pub ts: f64,
    pub linktype: u32,
    pub start: usize,
    pub len: usize,
    pub orig_len: u32,
}

/// Consecutive records in one owned buffer (`CaptureReader::next_chunk`): handed whole to
/// other threads without copying the frames.
#[derive(Debug, Default)]
pub struct Chunk {
    pub data: Vec<u8>,
    pub frames: Vec<FrameAt>,
}

impl Chunk {
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frames, in capture order.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.frames.iter().map(|f| Record {
            ts: f.ts,
            linktype: f.linktype,
            data: self.data.get(f.start..f.start + f.len).unwrap_or(&[]),
            orig_len: f.orig_len,
        })
    }
}

fn frame_at(f: Found) -> FrameAt {
    FrameAt {
        ts: f.ts,
        linktype: f.linktype,
        start: f.start,
        len: f.len,
        orig_len: f.orig_len,
    }
}

impl CaptureReader {
    /// Open a capture file, or standard input for "-".
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref().to_string_lossy().into_owned();
        let read = Arc::new(AtomicU64::new(0));
        let (raw, size, regular): (Box<dyn Read + Send>, Option<u64>, bool) = if path == "-" {
            (
                Box::new(open::Counted {
                    inner: std::io::stdin(),
                    count: read.clone(),
                }),
                None,
                false,
            )
        } else {
            let (file, size, regular) = open::open_file(&path)?;
            (
                Box::new(open::Counted {
                    inner: file,
                    count: read.clone(),
                }),
                Some(size),
                regular,
            )
        };
        Self::start(raw, &path, name::display_name(&path), size, regular, read)
    }

    /// Read a capture from any byte stream (`name` is used as given, for messages).
    pub fn from_reader(
        name: &str,
        input: impl Read + Send + 'static,
    ) -> Result<Self, CaptureError> {
        let read = Arc::new(AtomicU64::new(0));
        let raw = Box::new(open::Counted {
            inner: input,
            count: read.clone(),
        });
        Self::start(raw, name, name.to_owned(), None, false, read)
    }

    fn start(
        raw: Box<dyn Read + Send>,
        path: &str,
        name: String,
        size: Option<u64>,
        regular: bool,
        read: Arc<AtomicU64>,
    ) -> Result<Self, CaptureError> {
        let opened = open::sniff(raw, path, &name)?;
        let head = opened.head;
        if head.is_empty() {
            return Err(CaptureError(format!("{name}: empty file, not a capture")));
        }
        let format = if let Some((big_endian, tick)) = pcap::magic(&head) {
            Format::Pcap(pcap::Pcap::new(big_endian, tick))
        } else if head == PCAPNG_MAGIC {
            Format::Pcapng(pcapng::Pcapng::new())
        } else {
            let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
            return Err(CaptureError(format!(
                "{name}: not a pcap or pcapng capture (starts with {hex})"
            )));
        };
        // A regular file is read a block at a time; a pipe's reads are handed over as they come.
        let buf = Buffer::new(&head, opened.rest, regular, &name).map_err(|e| {
            CaptureError(format!(
                "{name}: cannot start reading: {}",
                open::strerror(&e)
            ))
        })?;
        Ok(CaptureReader {
            name,
            size,
            read,
            buf,
            format,
            done: false,
            carry: None,
        })
    }

    fn next_found(&mut self) -> Option<Found> {
        if let Some(c) = self.carry.take() {
            return Some(c);
        }
        if self.done {
            return None;
        }
        let found = match &mut self.format {
            Format::Pcap(p) => p.next(&mut self.buf, &self.name),
            Format::Pcapng(p) => p.next(&mut self.buf, &self.name),
        };
        if found.is_none() {
            self.done = true;
        }
        found
    }

    /// Up to `max` next records in one owned buffer, None at the end (see `error()`). The
    /// buffer is the reader's own window, handed over: no frame is copied. Give it back with
    /// `recycle` when done.
    pub fn next_chunk(&mut self, max: usize) -> Option<Chunk> {
        let mut frames = Vec::new();
        self.buf.detach = true;
        while frames.len() < max {
            let Some(found) = self.next_found() else {
                break;
            };
            if let Some(old) = self.buf.detached.take() {
                // `found` lies in the fresh window; the frames gathered so far in `old`.
                if frames.is_empty() {
                    self.buf.recycle(old);
                } else {
                    self.carry = Some(found);
                    self.buf.detach = false;
                    return Some(Chunk { data: old, frames });
                }
            }
            frames.push(frame_at(found));
        }
        self.buf.detach = false;
        // The end of input may be found after the window was handed over: the frames are in it.
        let data = match self.buf.detached.take() {
            Some(old) if !frames.is_empty() => old,
            Some(old) => {
                self.buf.recycle(old);
                return None;
            }
            None if frames.is_empty() => return None,
            None => self.buf.detach_now(),
        };
        Some(Chunk { data, frames })
    }

    /// A chunk's buffer, back for reuse.
    pub fn recycle(&mut self, data: Vec<u8>) {
        self.buf.recycle(data);
    }

    /// The next record, lent until the next call; None at the end (see `error()`).
    pub fn next_record(&mut self) -> Option<Record<'_>> {
        let found = self.next_found()?;
        let data = self
            .buf
            .window()
            .get(found.start..found.start + found.len)
            .unwrap_or(&[]);
        Some(Record {
            ts: found.ts,
            linktype: found.linktype,
            data,
            orig_len: found.orig_len,
        })
    }

    /// Why reading stopped before the end of the capture, if it did.
    pub fn error(&self) -> Option<&str> {
        self.buf.error.as_deref()
    }

    /// The file's base name (sanitised), or "-" for standard input.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's size in bytes; None for standard input.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// Bytes read so far from the file itself (compressed, when it is), for progress.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// `bytes_read` as a handle, to follow from another thread while this one reads.
    pub fn progress(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.read)
    }

    pub fn counters(&self) -> SourceCounters {
        match &self.format {
            Format::Pcap(_) => SourceCounters::default(),
            Format::Pcapng(p) => SourceCounters {
                malformed: p.malformed,
            },
        }
    }
}

#[cfg(test)]
mod tests;
