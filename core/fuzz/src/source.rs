//! Target `source`: the capture reader over arbitrary file bytes (pcap, pcapng, gzip of either).
//!
//! The bytes are read through `CaptureReader::from_reader` twice: in one piece, and through a
//! reader that hands out at most a few bytes per `read` call (the count taken from the last input
//! byte), as a pipe or a slow disk would. Checked, beyond "no panic":
//! - both reads give the same records (time, link type, bytes), the same `error()` and the same
//!   malformed count: the buffer's refills never change what is read;
//! - every message (open error, `error()`) is one line, as the Python reader's;
//! - a record is at most `MAX_RECORD` bytes; `bytes_read` never exceeds the input's length.
use _core::source::CaptureReader;
use std::io::{Cursor, Read};

/// pcap.rs's `MAX_RECORD` (crate-private there): no record is longer.
const MAX_RECORD: usize = 1 << 18;
/// Records read per input at most (a gzip bomb of tiny records would otherwise take seconds).
const MAX_RECORDS: usize = 20_000;

/// What a read produced, to compare the two reads.
#[derive(Debug, PartialEq)]
enum Outcome {
    OpenError(String),
    Read {
        records: Vec<(u64, u32, Vec<u8>)>,
        error: Option<String>,
        malformed: u64,
    },
}

/// Hands out at most `step` bytes per call.
struct Trickle {
    data: Cursor<Vec<u8>>,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step);
        self.data.read(&mut buf[..n])
    }
}

fn read_all(input: impl Read + Send + Sync + 'static, len: usize) -> Outcome {
    let mut src = match CaptureReader::from_reader("fuzz.pcap", input) {
        Ok(s) => s,
        Err(e) => {
            assert!(
                !e.0.contains('\n'),
                "open error of several lines: {:?}",
                e.0
            );
            return Outcome::OpenError(e.0);
        }
    };
    let mut records = Vec::new();
    while let Some(rec) = src.next_record() {
        assert!(
            rec.data.len() <= MAX_RECORD,
            "record of {} bytes",
            rec.data.len()
        );
        records.push((rec.ts.to_bits(), rec.linktype, rec.data.to_vec()));
        if records.len() >= MAX_RECORDS {
            break;
        }
    }
    let error = src.error().map(str::to_owned);
    if let Some(e) = &error {
        assert!(!e.contains('\n'), "error() of several lines: {e:?}");
    }
    assert!(
        src.bytes_read() <= len as u64,
        "bytes_read {} > input {len}",
        src.bytes_read()
    );
    Outcome::Read {
        records,
        error,
        malformed: src.counters().malformed,
    }
}

pub fn run(data: &[u8]) {
    let whole = read_all(Cursor::new(data.to_vec()), data.len());
    let step = usize::from(data.last().copied().unwrap_or(0) % 13) + 1;
    let trickled = read_all(
        Trickle {
            data: Cursor::new(data.to_vec()),
            step,
        },
        data.len(),
    );
    assert!(
        whole == trickled,
        "reading {step} bytes at a time changed the result"
    );
}
