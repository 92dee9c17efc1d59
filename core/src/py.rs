//! The Python module `portwatch._core`: what Python calls, converted at the boundary only.
//!
//! Python never sees a packet: it opens a capture, asks the analyzer to run over up to N packets
//! at a time (the GIL released meanwhile) and receives the flow records that ended, as dicts.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hashbrown::HashSet;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::detect::engine::{Engine, Transport};
use crate::detect::signature;
use crate::meta::Value;
use crate::pipeline::{self, KnownPorts};
use crate::record::FlowRecord;
use crate::source::CaptureReader;

pyo3::create_exception!(
    _core,
    CaptureError,
    PyOSError,
    "A capture that cannot be opened or read."
);

fn transport(name: &str) -> PyResult<Transport> {
    match name {
        "tcp" => Ok(Transport::Tcp),
        "udp" => Ok(Transport::Udp),
        other => Err(PyValueError::new_err(format!(
            "unknown transport {other:?}"
        ))),
    }
}

/// The shipped signature files as (file name, TOML text) pairs.
#[pyfunction]
fn builtin_signatures() -> Vec<(&'static str, &'static str)> {
    crate::detect::builtin::BUILTIN.to_vec()
}

/// Every problem of every file, as `file:line: field: problem` lines (empty when all are valid).
#[pyfunction]
fn check_signatures(paths: Vec<PathBuf>) -> Vec<String> {
    signature::check_files(&paths)
}

/// The loaded signature set and the detection engine over it (shared by analyzers).
#[pyclass(name = "Engine", frozen)]
struct PyEngine {
    engine: Arc<Engine>,
}

#[pymethods]
impl PyEngine {
    /// `extra_dirs`: user signature folders or files, after the shipped set; `port_hints`:
    /// {(port, "tcp"|"udp"): [protocol, ...]} from the services database (a tie-break only).
    #[new]
    fn new(
        extra_dirs: Vec<PathBuf>,
        port_hints: Vec<((u16, String), Vec<String>)>,
    ) -> PyResult<Self> {
        let sigs = signature::load_builtin_and(&extra_dirs)
            .map_err(|errs| PyValueError::new_err(errs.join("\n")))?;
        let mut hints = std::collections::HashMap::new();
        for ((port, t), protos) in port_hints {
            hints.insert((port, transport(&t)?), protos);
        }
        Ok(PyEngine {
            engine: Arc::new(Engine::new(sigs, hints)),
        })
    }

    /// The signatures as dicts, for the policy and `signatures list`.
    fn signatures<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for i in 0..self.engine.len() {
            list.append(to_py(py, &self.engine.signature(i).to_json())?)?;
        }
        Ok(list)
    }
}

/// An open capture file (or "-" for standard input).
#[pyclass(name = "Capture")]
struct PyCapture {
    // A Mutex makes the reader (which may hold a boxed stdin or gzip stream) shareable, as
    // Python objects must be; it is only ever locked by the thread that runs the analyzer.
    reader: Mutex<CaptureReader>,
    done: bool,
}

impl PyCapture {
    fn reader(&self) -> std::sync::MutexGuard<'_, CaptureReader> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl PyCapture {
    #[new]
    fn new(path: &str) -> PyResult<Self> {
        let reader = CaptureReader::open(path).map_err(|e| CaptureError::new_err(e.0))?;
        Ok(PyCapture { reader: Mutex::new(reader), done: false })
    }
    #[getter]
    fn name(&self) -> String {
        self.reader().name().to_string()
    }
    #[getter]
    fn size(&self) -> Option<u64> {
        self.reader().size()
    }
    #[getter]
    fn bytes_read(&self) -> u64 {
        self.reader().bytes_read()
    }
    #[getter]
    fn done(&self) -> bool {
        self.done
    }
    /// Why reading stopped early (a truncated or corrupt file), if it did.
    #[getter]
    fn error(&self) -> Option<String> {
        self.reader().error().map(str::to_string)
    }
}

/// Flows, reassembly and detection over one capture (or one shard of it).
#[pyclass(name = "Analyzer")]
struct PyAnalyzer {
    inner: pipeline::Analyzer,
}

#[pymethods]
impl PyAnalyzer {
    /// `known_ports`: every (port, transport) the services database names (orients mid-stream
    /// flows); `config`: overrides of pipeline::Config by field name.
    #[new]
    #[pyo3(signature = (engine, known_ports, pcap_name=None, config=None, report_classified=false))]
    fn new(
        engine: &PyEngine,
        known_ports: Vec<(u16, String)>,
        pcap_name: Option<String>,
        config: Option<Bound<'_, PyDict>>,
        report_classified: bool,
    ) -> PyResult<Self> {
        let mut known = HashSet::new();
        for (port, t) in known_ports {
            known.insert((port, transport(&t)?));
        }
        let mut cfg = pipeline::Config::default();
        if let Some(c) = config {
            for (k, v) in c.iter() {
                let key: String = k.extract()?;
                match key.as_str() {
                    "max_flows" => cfg.max_flows = v.extract()?,
                    "idle_tcp" => cfg.idle_tcp = v.extract()?,
                    "idle_udp" => cfg.idle_udp = v.extract()?,
                    "idle_dns" => cfg.idle_dns = v.extract()?,
                    "linger" => cfg.linger = v.extract()?,
                    "sweep_interval" => cfg.sweep_interval = v.extract()?,
                    "max_payload_packets" => cfg.max_payload_packets = v.extract()?,
                    "meta_packets" => cfg.meta_packets = v.extract()?,
                    "shard_index" => cfg.shard_index = v.extract()?,
                    "shard_count" => cfg.shard_count = v.extract()?,
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "unknown analyzer setting {other:?}"
                        )))
                    }
                }
            }
        }
        let mut inner = pipeline::Analyzer::new(
            cfg,
            Arc::clone(&engine.engine),
            Arc::new(KnownPorts(known)),
            pcap_name,
        );
        inner.flows.report_classified = report_classified;
        Ok(PyAnalyzer { inner })
    }

    /// Read up to `max_packets` packets of `capture` (GIL released); the records of the flows that
    /// ended meanwhile. `capture.done` turns true at the end of the file (or its first error).
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        capture: &mut PyCapture,
        max_packets: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let inner = &mut self.inner;
        let mut guard = capture.reader();
        let reader = &mut *guard;
        let done = py.detach(|| {
            for _ in 0..max_packets {
                match reader.next_record() {
                    Some(rec) => inner.packet(rec.ts, rec.linktype, rec.data),
                    None => return true,
                }
            }
            false
        });
        drop(guard);
        capture.done |= done;
        records_to_py(py, std::mem::take(&mut self.inner.flows.finished))
    }

    /// Records of flows classified since the last call (with `report_classified`).
    fn classified<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        records_to_py(py, std::mem::take(&mut self.inner.flows.classified))
    }

    /// End of input: every flow still open, as records.
    fn drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.inner.drain();
        records_to_py(py, std::mem::take(&mut self.inner.flows.finished))
    }

    fn live_flows(&self) -> usize {
        self.inner.flows.live_flows()
    }

    /// The counters, by CaptureStats' names.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.inner.flows.stats;
        let d = PyDict::new(py);
        for (k, v) in [
            ("packets", s.packets),
            ("bytes", s.bytes),
            ("malformed", s.malformed),
            ("non_ip", s.non_ip),
            ("fragments", s.fragments),
            ("fragments_dropped", s.fragments_dropped),
            ("unsupported_link", s.unsupported_link),
            ("flows_evicted", s.flows_evicted),
            ("other_shard", s.other_shard),
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }
}

fn records_to_py(py: Python<'_>, records: Vec<FlowRecord>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for r in records {
        let d = PyDict::new(py);
        if let Some(p) = &r.pcap {
            d.set_item("pcap", p)?;
        }
        d.set_item("ts_start", r.ts_start)?;
        d.set_item("ts_end", r.ts_end)?;
        d.set_item("transport", r.transport)?;
        d.set_item("src_ip", r.src_ip)?;
        d.set_item("src_port", r.src_port)?;
        d.set_item("dst_ip", r.dst_ip)?;
        d.set_item("dst_port", r.dst_port)?;
        d.set_item("orientation", r.orientation)?;
        d.set_item("protocol", r.protocol)?;
        d.set_item("confidence", r.confidence)?;
        d.set_item("packets_c2s", r.packets_c2s)?;
        d.set_item("packets_s2c", r.packets_s2c)?;
        d.set_item("bytes_c2s", r.bytes_c2s)?;
        d.set_item("bytes_s2c", r.bytes_s2c)?;
        d.set_item("meta", to_py(py, &Value::Object(r.meta))?)?;
        list.append(d)?;
    }
    Ok(list)
}

/// A JSON-like value as the Python object json.loads would give.
fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let d = PyDict::new(py);
            for (k, item) in map {
                d.set_item(k, to_py(py, item)?)?;
            }
            d.into_any()
        }
    })
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CaptureError", m.py().get_type::<CaptureError>())?;
    m.add_function(wrap_pyfunction!(builtin_signatures, m)?)?;
    m.add_function(wrap_pyfunction!(check_signatures, m)?)?;
    m.add_class::<PyEngine>()?;
    m.add_class::<PyCapture>()?;
    m.add_class::<PyAnalyzer>()?;
    Ok(())
}
