//! The decompressed byte stream of a capture, read in large pieces, from which records are lent.
#![forbid(unsafe_code)]

use std::io::{ErrorKind, Read};

/// What one read asks for, and so the most a record or block can span: a record never needs more
/// than `MAX_RECORD` + 64 bytes (see `pcap::MAX_RECORD`), half of this. Small enough that the
/// window just read is still in a core's L2 cache when it is parsed (2 MB measured no faster).
pub(crate) const READ_SIZE: usize = 512 << 10;

/// A window over the stream: `bytes[start..end]` is read and not yet consumed. `need(n)` moves
/// the unconsumed tail to the front (the only copy: at most one record's worth per read) and
/// reads behind it, so a record that spans two reads is whole in the window.
pub(crate) struct Buffer {
    input: Box<dyn Read + Send + Sync>,
    bytes: Vec<u8>,
    start: usize,
    end: usize,
    /// Stream offset of `bytes[0]`, for messages.
    base: u64,
    eof: bool,
    /// The first reason reading stopped early: a read error, or what the parser found.
    pub(crate) error: Option<String>,
    /// Prefix for read-error messages ("<name>: read error: ").
    read_error_prefix: String,
    /// While set (a chunk is being gathered), the window is never shifted in place: it is
    /// handed over whole in `detached` (its records still lent from it) and reading goes on in
    /// a fresh window holding the unconsumed tail.
    pub(crate) detach: bool,
    pub(crate) detached: Option<Vec<u8>>,
    /// Windows handed back after use (`recycle`): a fresh multi-megabyte buffer per chunk costs
    /// more in page faults than reading into it.
    spare: Vec<Vec<u8>>,
}

/// Windows kept for reuse.
const MAX_SPARE: usize = 8;
/// While gathering chunks, what one read asks for at most (and so about a chunk's size): a
/// chunk is walked by every worker on another core, and a small one is still in cache then.
const CHUNK_READ: usize = 256 << 10;

impl Buffer {
    /// `head`: bytes already taken from `input` (the magic), which start the stream.
    pub(crate) fn new(head: &[u8], input: Box<dyn Read + Send + Sync>, name: &str) -> Self {
        let mut bytes = vec![0u8; READ_SIZE];
        let n = head.len().min(READ_SIZE);
        bytes[..n].copy_from_slice(&head[..n]);
        Buffer {
            input,
            bytes,
            start: 0,
            end: n,
            base: 0,
            eof: false,
            error: None,
            read_error_prefix: format!("{name}: read error: "),
            detach: false,
            detached: None,
            spare: Vec::new(),
        }
    }

    /// Hand over the window (bytes lent so far stay valid in it) and go on in a fresh one that
    /// starts with the unconsumed tail: the only copy, at most one record's worth.
    pub(crate) fn detach_now(&mut self) -> Vec<u8> {
        // A fresh window is zeroed lazily by the allocator: only the pages read into are touched.
        let mut fresh = self.spare.pop().unwrap_or_else(|| vec![0u8; READ_SIZE]);
        fresh.resize(READ_SIZE, 0);
        let tail = self.bytes.get(self.start..self.end).unwrap_or(&[]);
        let n = tail.len();
        if let Some(dst) = fresh.get_mut(..n) {
            dst.copy_from_slice(tail);
        }
        self.base += self.start as u64;
        self.start = 0;
        self.end = n;
        std::mem::replace(&mut self.bytes, fresh)
    }

    /// A window handed over by `detach_now`, back for reuse.
    pub(crate) fn recycle(&mut self, bytes: Vec<u8>) {
        if bytes.len() == READ_SIZE && self.spare.len() < MAX_SPARE {
            self.spare.push(bytes);
        }
    }

    /// The unconsumed bytes in the window.
    pub(crate) fn avail(&self) -> &[u8] {
        self.bytes.get(self.start..self.end).unwrap_or(&[])
    }

    /// Index in the window of the first unconsumed byte (records are lent by index).
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    pub(crate) fn window(&self) -> &[u8] {
        &self.bytes
    }

    /// Stream offset of the first unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
    }

    /// Set the error unless one is already set: the first reason wins, as in the Python reader.
    pub(crate) fn fail(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(msg);
        }
    }

    /// Make at least `n` bytes available; false at end of input (or after a read error) when
    /// fewer remain. `n` larger than the window can never be satisfied.
    pub(crate) fn need(&mut self, n: usize) -> bool {
        if self.end - self.start >= n {
            return true;
        }
        if n > self.bytes.len() {
            return false;
        }
        if self.start > 0 && self.detach && self.detached.is_none() {
            let old = self.detach_now();
            self.detached = Some(old);
        } else if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        while self.end < n && !self.eof {
            let limit = if self.detach {
                self.end.saturating_add(CHUNK_READ.max(n - self.end))
            } else {
                usize::MAX
            };
            let limit = limit.min(self.bytes.len());
            let free = match self.bytes.get_mut(self.end..limit) {
                Some(free) if !free.is_empty() => free,
                _ => break,
            };
            match self.input.read(free) {
                Ok(0) => self.eof = true,
                Ok(got) => self.end = (self.end + got).min(self.bytes.len()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.eof = true;
                    let msg = format!("{}{}", self.read_error_prefix, super::open::exc_text(&e));
                    self.fail(msg);
                }
            }
        }
        self.end - self.start >= n
    }
}
