//! gzip-compressed captures, read the way Python's `gzip.GzipFile` reads them, so that a
//! corrupt or cut file stops at the same record with the same message.
//!
//! Why not `flate2::read::MultiGzDecoder`: it decodes the same bytes, but its errors are its own
//! ("invalid gzip header", ...) and it keeps more of the data before a deflate error than Python
//! does. Python feeds zlib 8 KiB of compressed input per call and, when a call fails, drops
//! everything that call inflated; it checks the trailer after handing out the member's data;
//! it allows zero padding between members and calls anything else "Not a gzipped file". This
//! module follows those steps over `flate2::Decompress` (raw deflate) and `flate2::Crc`.
#![forbid(unsafe_code)]

use std::io::{self, Read};

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// Compressed bytes per inflate call (Python's `io.DEFAULT_BUFFER_SIZE`).
const INPUT_STEP: usize = 8192;
/// Inflated bytes per call once the magic is read (the reader's `read1(CHUNK)`, 1 MiB).
const OUTPUT_STEP: usize = 1 << 20;
/// Inflated bytes per call for the first read (the `BufferedReader` fill behind `read(4)`).
const FIRST_OUTPUT_STEP: usize = 8192;

const EOF_MESSAGE: &str = "Compressed file ended before the end-of-stream marker was reached";

const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;
const FHCRC: u8 = 2;

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Compressed input: bytes handed back (Python's `_PaddedFile.prepend`) before the file's.
struct Input<R> {
    raw: R,
    back: Vec<u8>,
    back_at: usize,
}

impl<R: Read> Input<R> {
    /// Up to `n` bytes: fewer only at end of file.
    fn read(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(INPUT_STEP));
        let back = self.back.get(self.back_at..).unwrap_or(&[]);
        let take = back.len().min(n);
        out.extend_from_slice(back.get(..take).unwrap_or(&[]));
        self.back_at += take;
        if self.back_at >= self.back.len() {
            self.back.clear();
            self.back_at = 0;
        }
        while out.len() < n {
            let have = out.len();
            out.resize(n, 0);
            match self.raw.read(out.get_mut(have..).unwrap_or(&mut [])) {
                Ok(got) => {
                    out.truncate(have + got);
                    if got == 0 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => out.truncate(have),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let data = self.read(n)?;
        if data.len() < n {
            return Err(bad(EOF_MESSAGE));
        }
        Ok(data)
    }

    fn prepend(&mut self, rest: &[u8]) {
        let mut back = rest.to_vec();
        back.extend_from_slice(self.back.get(self.back_at..).unwrap_or(&[]));
        self.back = back;
        self.back_at = 0;
    }
}

/// A gzip stream of one or more members, inflated as Python's `gzip` module does.
pub(crate) struct PyGzip<R> {
    input: Input<R>,
    inflate: Decompress,
    crc: Crc,
    /// Inflated bytes of this member (Python's `_stream_size`, compared mod 2^32).
    member_size: u64,
    new_member: bool,
    member_done: bool,
    /// The last call's inflated bytes are `out[..out_len]`; `out` keeps its full length between
    /// calls, so it is zeroed once rather than for every 8 KiB of input.
    out: Vec<u8>,
    out_len: usize,
    out_at: usize,
    /// True once the first read is done: later calls inflate up to `OUTPUT_STEP`.
    started: bool,
    finished: bool,
}

impl<R: Read> PyGzip<R> {
    /// `raw` starts with the gzip magic.
    pub(crate) fn new(raw: R) -> Self {
        PyGzip {
            input: Input {
                raw,
                back: Vec::new(),
                back_at: 0,
            },
            inflate: Decompress::new(false),
            crc: Crc::new(),
            member_size: 0,
            new_member: true,
            member_done: false,
            out: Vec::new(),
            out_len: 0,
            out_at: 0,
            started: false,
            finished: false,
        }
    }

    /// The first `n` inflated bytes (fewer at the end), as `GzipFile.read(n)` fills them.
    pub(crate) fn read_head(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut got: Vec<u8> = Vec::new();
        while got.len() < n && !self.finished {
            let room = FIRST_OUTPUT_STEP.saturating_sub(got.len()).max(1);
            let len = self.step(room)?;
            got.extend_from_slice(self.out.get(..len).unwrap_or(&[]));
        }
        self.started = true;
        let rest = got.split_off(n.min(got.len()));
        if self.out.len() < rest.len() {
            self.out.resize(rest.len(), 0);
        }
        if let Some(into) = self.out.get_mut(..rest.len()) {
            into.copy_from_slice(&rest);
        }
        self.out_len = rest.len();
        self.out_at = 0;
        Ok(got)
    }

    /// One `_GzipReader.read(size)`: the length of what it inflated into `out`, zero only at the
    /// end of the last member. Overwrites `out`: call it once `out` is handed out.
    fn step(&mut self, size: usize) -> io::Result<usize> {
        // Each turn either reads input or ends: bounded by the input.
        loop {
            if self.member_done {
                self.read_trailer()?;
                self.new_member = true;
                self.member_done = false;
                self.inflate.reset(false);
            }
            if self.new_member {
                self.crc.reset();
                self.member_size = 0;
                if !self.read_header()? {
                    self.finished = true;
                    return Ok(0);
                }
                self.new_member = false;
            }
            let chunk = self.input.read(INPUT_STEP)?;
            let (gave, used) = self.inflate_call(&chunk, size)?;
            if let Some(rest) = chunk.get(used..) {
                if !rest.is_empty() {
                    self.input.prepend(rest);
                }
            }
            if gave > 0 {
                self.crc.update(self.out.get(..gave).unwrap_or(&[]));
                self.member_size += gave as u64;
                return Ok(gave);
            }
            if chunk.is_empty() {
                return Err(bad(EOF_MESSAGE));
            }
            if used == 0 && !self.member_done {
                // Input that inflates to nothing and is not taken would come back forever.
                return Err(bad("Error -3 while decompressing data: no progress"));
            }
        }
    }

    /// One `decompressobj.decompress(chunk, size)` into `out[..size]`: how much it inflated and
    /// how much input it used. A deflate error loses the call's output, as zlib's binding does.
    fn inflate_call(&mut self, chunk: &[u8], size: usize) -> io::Result<(usize, usize)> {
        if self.out.len() < size {
            self.out.resize(size, 0);
        }
        let (mut have, mut used) = (0usize, 0usize);
        // Every turn makes progress or stops: bounded by `chunk` and `size`.
        while have < size && !self.member_done {
            let before_in = self.inflate.total_in();
            let before_out = self.inflate.total_out();
            let status = self.inflate.decompress(
                chunk.get(used..).unwrap_or(&[]),
                self.out.get_mut(have..size).unwrap_or(&mut []),
                FlushDecompress::None,
            );
            let took = (self.inflate.total_in() - before_in) as usize;
            let gave = (self.inflate.total_out() - before_out) as usize;
            have += gave;
            used += took;
            match status {
                Ok(Status::StreamEnd) => self.member_done = true,
                Ok(_) if took == 0 && gave == 0 => break,
                Ok(_) => {}
                Err(e) => {
                    let why = e.message().unwrap_or("invalid deflate data").to_owned();
                    return Err(bad(format!("Error -3 while decompressing data: {why}")));
                }
            }
        }
        Ok((have, used))
    }

    /// Python's `_read_gzip_header`: false at a clean end of input.
    fn read_header(&mut self) -> io::Result<bool> {
        let magic = self.input.read(2)?;
        if magic.is_empty() {
            return Ok(false);
        }
        if magic != b"\x1f\x8b" {
            return Err(bad(format!(
                "Not a gzipped file ({})",
                crate::text::bytes_repr(&magic)
            )));
        }
        let fixed = self.input.read_exact(8)?;
        let (method, flag) = (fixed.first().copied(), fixed.get(1).copied().unwrap_or(0));
        if method != Some(8) {
            return Err(bad("Unknown compression method"));
        }
        if flag & FEXTRA != 0 {
            let len = self.input.read_exact(2)?;
            let n = usize::from(u16::from_le_bytes([len[0], len[1]]));
            self.input.read_exact(n)?;
        }
        for field in [FNAME, FCOMMENT] {
            if flag & field != 0 {
                // A zero-terminated string; each turn reads a byte: bounded by the input.
                loop {
                    let b = self.input.read(1)?;
                    if b.first().is_none_or(|&c| c == 0) {
                        break;
                    }
                }
            }
        }
        if flag & FHCRC != 0 {
            self.input.read_exact(2)?;
        }
        Ok(true)
    }

    /// Python's `_read_eof`: check the member's CRC and length, skip zero padding.
    fn read_trailer(&mut self) -> io::Result<()> {
        let t = self.input.read_exact(8)?;
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let isize = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
        if crc != self.crc.sum() {
            return Err(bad(format!(
                "CRC check failed {crc:#x} != {:#x}",
                self.crc.sum()
            )));
        }
        if u64::from(isize) != self.member_size & 0xffff_ffff {
            return Err(bad("Incorrect length of data produced"));
        }
        loop {
            let c = self.input.read(1)?;
            match c.first() {
                Some(0) => {}
                Some(_) => {
                    self.input.prepend(&c);
                    break;
                }
                None => break,
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for PyGzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_at >= self.out_len {
            if self.finished {
                return Ok(0);
            }
            let size = if self.started {
                OUTPUT_STEP
            } else {
                FIRST_OUTPUT_STEP
            };
            self.out_len = 0;
            self.out_at = 0;
            self.out_len = self.step(size)?;
        }
        let left = self.out.get(self.out_at..self.out_len).unwrap_or(&[]);
        let n = left.len().min(buf.len());
        buf.get_mut(..n)
            .unwrap_or(&mut [])
            .copy_from_slice(left.get(..n).unwrap_or(&[]));
        self.out_at += n;
        Ok(n)
    }
}
