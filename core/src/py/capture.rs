//! Captures as Python opens them: the reader, a capture filter's verdicts, one flow's packets.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::{filter_from, transport, CaptureError, Programs};
use crate::detect::engine::Transport;
use crate::source::CaptureReader;

/// The 0-based numbers of the frames of `capture` that `programs` keep (tests compare them
/// with what libpcap keeps).
#[pyfunction]
pub(super) fn filter_capture(
    py: Python<'_>,
    path: PathBuf,
    programs: Programs,
) -> PyResult<Vec<u64>> {
    let filter = filter_from(programs)?;
    let mut reader =
        CaptureReader::open(&path).map_err(|e| CaptureError::new_err(e.to_string()))?;
    let kept = py.detach(|| {
        let mut kept = Vec::new();
        let mut n = 0u64;
        while let Some(rec) = reader.next_record() {
            if filter.matches(rec.linktype, rec.data, rec.orig_len) {
                kept.push(n);
            }
            n += 1;
        }
        kept
    });
    if let Some(e) = reader.error() {
        return Err(CaptureError::new_err(e.to_string()));
    }
    Ok(kept)
}

/// An open capture file (or "-" for standard input).
#[pyclass(name = "Capture", module = "portwatch._core")]
pub(super) struct PyCapture {
    // A Mutex makes the reader (which may hold a boxed stdin or gzip stream) shareable, as
    // Python objects must be; it is locked by the thread that runs the analyzer, for a step
    // at a time.
    pub(super) reader: Arc<Mutex<CaptureReader>>,
    name: String,
    size: Option<u64>,
    /// Bytes read so far, followed without waiting for the reader's lock.
    progress: Arc<AtomicU64>,
    pub(super) done: Arc<AtomicBool>,
}

impl PyCapture {
    pub(super) fn reader(&self) -> std::sync::MutexGuard<'_, CaptureReader> {
        lock_reader(&self.reader)
    }
}

#[pymethods]
impl PyCapture {
    #[new]
    fn new(path: &str) -> PyResult<Self> {
        let reader = CaptureReader::open(path).map_err(|e| CaptureError::new_err(e.0))?;
        Ok(PyCapture {
            name: reader.name().to_string(),
            size: reader.size(),
            progress: reader.progress(),
            reader: Arc::new(Mutex::new(reader)),
            done: Arc::new(AtomicBool::new(false)),
        })
    }
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }
    #[getter]
    fn size(&self) -> Option<u64> {
        self.size
    }
    #[getter]
    fn bytes_read(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }
    #[getter]
    fn done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }
    /// Why reading stopped early (a truncated or corrupt file), if it did.
    #[getter]
    fn error(&self) -> Option<String> {
        self.reader().error().map(str::to_string)
    }
}

pub(super) fn lock_reader(
    reader: &Mutex<CaptureReader>,
) -> std::sync::MutexGuard<'_, CaptureReader> {
    reader.lock().unwrap_or_else(|e| e.into_inner())
}

/// The packets of one flow in a capture (the notebook's `flow_packets`): rows of (ts,
/// direction "c2s"/"s2c", payload bytes, TCP flags as letters) for packets between `start` and
/// `end` on the 5-tuple, in capture order. The core reads and decodes; Python gets rows.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(super) fn flow_packets(
    py: Python<'_>,
    path: &str,
    transport_name: &str,
    client_ip: &str,
    client_port: u16,
    server_ip: &str,
    server_port: u16,
    start: f64,
    end: f64,
) -> PyResult<Vec<(f64, &'static str, usize, String)>> {
    use crate::decode::{Addr, Decoded, Decoder};
    let proto = match transport(transport_name)? {
        Transport::Tcp => crate::decode::TCP,
        Transport::Udp => crate::decode::UDP,
    };
    let addr = |text: &str| -> PyResult<Addr> {
        match text.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => Ok(Addr::V4(a.octets())),
            Ok(std::net::IpAddr::V6(a)) => Ok(Addr::V6(a.octets())),
            Err(_) => Err(PyValueError::new_err(format!(
                "not an IP address: {text:?}"
            ))),
        }
    };
    let (client, server) = (
        (addr(client_ip)?, client_port),
        (addr(server_ip)?, server_port),
    );
    let mut reader = CaptureReader::open(path).map_err(|e| CaptureError::new_err(e.0))?;
    py.detach(|| {
        let mut decoder = Decoder::new();
        let mut rows = Vec::new();
        while let Some(rec) = reader.next_record() {
            if rec.ts < start || rec.ts > end {
                continue;
            }
            let Decoded::Packet(mut p) = decoder.decode(rec.ts, rec.linktype, rec.data) else {
                continue;
            };
            // The flow asked for may be the GTP-U tunnel the packet came in.
            if let Some(outer) = p.tunnel.take() {
                let ends = [(outer.src, outer.sport), (outer.dst, outer.dport)];
                if outer.proto == proto && ends.contains(&client) && ends.contains(&server) {
                    p = *outer;
                }
            }
            if p.proto != proto {
                continue;
            }
            let direction = if ((p.src, p.sport), (p.dst, p.dport)) == (client, server) {
                "c2s"
            } else if ((p.src, p.sport), (p.dst, p.dport)) == (server, client) {
                "s2c"
            } else {
                continue;
            };
            let flags = if proto == crate::decode::TCP {
                flag_letters(p.flags)
            } else {
                String::new()
            };
            rows.push((rec.ts, direction, p.payload.len(), flags));
        }
        Ok(rows)
    })
}

/// TCP flags as the letters tcpdump uses, in a fixed order.
fn flag_letters(flags: u8) -> String {
    [
        (0x02, 'S'),
        (0x10, 'A'),
        (0x08, 'P'),
        (0x01, 'F'),
        (0x04, 'R'),
        (0x20, 'U'),
    ]
    .iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}
