//! Opening a capture: file or standard input, gzip or not, and the magic that says the format.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::gzip::PyGzip;
use super::CaptureError;

/// The OS's text for an error without Rust's " (os error N)" suffix: Python's `strerror`.
pub(crate) fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_owned(),
        None => text,
    }
}

/// Python's `str()` of the exception a read raised: "[Errno N] text" for an OS error, the
/// message for a gzip or deflate error.
pub(crate) fn exc_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("[Errno {code}] {}", strerror(e)),
        None => e.to_string(),
    }
}

/// Counts the bytes read from the file itself (compressed, when it is), for progress.
pub(crate) struct Counted<R> {
    pub(crate) inner: R,
    pub(crate) count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Up to `n` bytes, fewer only at end of input.
fn read_up_to(input: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; n];
    let mut have = 0;
    while have < n {
        match input.read(head.get_mut(have..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(got) => have += got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(have);
    Ok(head)
}

/// The stream of a capture with its first (decompressed) bytes taken off, up to 4.
pub(crate) struct Opened {
    pub(crate) head: Vec<u8>,
    pub(crate) rest: Box<dyn Read + Send>,
}

/// The file at `path`, its size, and whether it is a regular file (not a FIFO or a device: reads
/// that may wait); the messages are the Python reader's ("<path>: <strerror>").
pub(crate) fn open_file(path: &str) -> Result<(File, u64, bool), CaptureError> {
    let fail = |e: io::Error| CaptureError(format!("{path}: {}", strerror(&e)));
    let meta = std::fs::metadata(path).map_err(fail)?;
    if meta.is_dir() {
        // Opening a directory succeeds on Linux; Python's open() refuses it (EISDIR).
        return Err(CaptureError(format!("{path}: Is a directory")));
    }
    let file = File::open(path).map_err(fail)?;
    Ok((file, meta.len(), meta.is_file()))
}

/// Take the magic off `raw`, through gzip when it starts with the gzip magic.
pub(crate) fn sniff(
    mut raw: Box<dyn Read + Send>,
    path: &str,
    name: &str,
) -> Result<Opened, CaptureError> {
    let head =
        read_up_to(&mut raw, 4).map_err(|e| CaptureError(format!("{path}: {}", strerror(&e))))?;
    if head.starts_with(b"\x1f\x8b") {
        let mut gz = PyGzip::new(io::Cursor::new(head).chain(raw));
        let head = gz
            .read_head(4)
            .map_err(|e| CaptureError(format!("{name}: corrupt gzip data ({})", exc_text(&e))))?;
        return Ok(Opened {
            head,
            rest: Box::new(gz),
        });
    }
    Ok(Opened { head, rest: raw })
}
