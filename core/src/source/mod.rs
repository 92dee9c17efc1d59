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
#![forbid(unsafe_code)]

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
}
