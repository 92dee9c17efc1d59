//! The decompressed byte stream of a capture as a window over the blocks a reading thread hands
//! over (`prefetch`), from which records are lent.
#![forbid(unsafe_code)]

use std::io::Read;

use super::prefetch::{Piece, Prefetch, BLOCK_BYTES, HEADROOM};

/// A window over the stream: `bytes[start..end]` is read and not yet consumed. The window is a
/// block from the reading thread; `need(n)` moves on to the next block by copying the
/// unconsumed tail (less than `n`, at most one record) into the room in front of it, or, when the
/// next block holds fewer bytes than that tail (a pipe's small reads), appends the block to the
/// window instead: either way the cheaper copy, so every byte is copied a bounded number of times.
pub(crate) struct Buffer {
    prefetch: Prefetch,
    bytes: Vec<u8>,
    start: usize,
    end: usize,
    /// Stream offset of `bytes[start]`, for messages.
    pos: u64,
    eof: bool,
    /// The first reason reading stopped early: a read error, or what the parser found.
    pub(crate) error: Option<String>,
    /// Prefix for read-error messages ("<name>: read error: ").
    read_error_prefix: String,
    /// While set (a chunk is being gathered), a window left behind is handed over whole in
    /// `detached` (its records still lent from it) instead of going back to the reading thread.
    pub(crate) detach: bool,
    pub(crate) detached: Option<Vec<u8>>,
    /// Windows handed back after use (`recycle`), for `detach_now`: a fresh one per chunk costs
    /// more in page faults than filling it. More than one: records under 32 bytes make a chunk
    /// smaller than a block, so chunks detach windows faster than the reading thread takes
    /// blocks back, and each one fresh, freed later, grew the heap with the capture.
    spares: Vec<Vec<u8>>,
}

/// Windows `Buffer::spares` keeps at most: about the chunks a capture has in flight at once
/// (the decoding thread's queue and the one the analysis reads).
const SPARE_WINDOWS: usize = 8;

impl Buffer {
    /// `head`: bytes already taken from `input` (the magic), which start the stream. `fill`:
    /// `input` is a file (see `Prefetch::start`).
    pub(crate) fn new(
        head: &[u8],
        input: Box<dyn Read + Send>,
        fill: bool,
        name: &str,
    ) -> std::io::Result<Self> {
        let prefetch = Prefetch::start(input, fill)?;
        let mut bytes = vec![0u8; BLOCK_BYTES];
        let head = head.get(..HEADROOM).unwrap_or(head);
        let start = HEADROOM - head.len();
        if let Some(dst) = bytes.get_mut(start..HEADROOM) {
            dst.copy_from_slice(head);
        }
        Ok(Buffer {
            prefetch,
            bytes,
            start,
            end: HEADROOM,
            pos: 0,
            eof: false,
            error: None,
            read_error_prefix: format!("{name}: read error: "),
            detach: false,
            detached: None,
            spares: Vec::new(),
        })
    }

    /// Hand over the window (bytes lent so far stay valid in it) and go on in a fresh one that
    /// starts with the unconsumed tail.
    pub(crate) fn detach_now(&mut self) -> Vec<u8> {
        let mut fresh = self.spares.pop().unwrap_or_else(|| vec![0u8; BLOCK_BYTES]);
        let tail = self.bytes.get(self.start..self.end).unwrap_or(&[]);
        // The tail fits: the window it comes from is no longer than a block.
        let at = HEADROOM.saturating_sub(tail.len());
        if let Some(dst) = fresh.get_mut(at..at + tail.len()) {
            dst.copy_from_slice(tail);
        }
        self.start = at;
        self.end = at + tail.len();
        std::mem::replace(&mut self.bytes, fresh)
    }

    /// A window handed over by `detach_now`, back for reuse.
    pub(crate) fn recycle(&mut self, bytes: Vec<u8>) {
        if bytes.len() != BLOCK_BYTES {
            return;
        }
        if self.spares.len() < SPARE_WINDOWS {
            self.spares.push(bytes);
        } else {
            self.prefetch.give_back(bytes);
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
        self.pos
    }

    pub(crate) fn consume(&mut self, n: usize) {
        let to = self.start.saturating_add(n).min(self.end);
        self.pos += (to - self.start) as u64;
        self.start = to;
    }

    /// Set the error unless one is already set: the first reason wins, as in the Python reader.
    pub(crate) fn fail(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(msg);
        }
    }

    /// Make at least `n` bytes available; false at end of input (or after a read error) when
    /// fewer remain. `n` past a block's headroom can never be satisfied (no record is that long).
    pub(crate) fn need(&mut self, n: usize) -> bool {
        if self.end - self.start >= n {
            return true;
        }
        if n > HEADROOM {
            return false;
        }
        while self.end - self.start < n && !self.eof {
            match self.prefetch.next() {
                Some(Piece::Data(block, len)) => self.take(block, len),
                Some(Piece::End(None)) => self.eof = true,
                // The thread ended without saying why: it panicked. What it read stays; the
                // capture is reported cut, not taken as whole.
                None => {
                    self.eof = true;
                    let msg = format!("{}the reading thread stopped", self.read_error_prefix);
                    self.fail(msg);
                }
                Some(Piece::End(Some(e))) => {
                    self.eof = true;
                    let msg = format!("{}{}", self.read_error_prefix, super::open::exc_text(&e));
                    self.fail(msg);
                }
            }
        }
        self.end - self.start >= n
    }

    /// The next block's `len` bytes (at `HEADROOM..`) onto the window. Called only while the
    /// unconsumed tail is shorter than a record (`need`), so it fits the block's headroom.
    fn take(&mut self, mut block: Vec<u8>, len: usize) {
        let tail = self.end - self.start;
        let data = HEADROOM..HEADROOM + len;
        if len <= tail && self.end + len <= self.bytes.len() {
            if let (Some(dst), Some(src)) = (
                self.bytes.get_mut(self.end..self.end + len),
                block.get(data),
            ) {
                dst.copy_from_slice(src);
                self.end += len;
            }
            self.prefetch.give_back(block);
            return;
        }
        let at = HEADROOM - tail;
        if let (Some(dst), Some(src)) = (
            block.get_mut(at..HEADROOM),
            self.bytes.get(self.start..self.end),
        ) {
            dst.copy_from_slice(src);
        }
        let old = std::mem::replace(&mut self.bytes, block);
        self.start = at;
        self.end = HEADROOM + len;
        if self.detach && self.detached.is_none() {
            self.detached = Some(old);
        } else {
            self.recycle(old);
        }
    }
}
