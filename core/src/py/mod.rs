//! The Python module `portwatch._core`: what Python calls, converted at the boundary only.
//!
//! Python never sees a packet: it opens a capture, asks the analyzer to run over up to N packets
//! at a time (the GIL released meanwhile) and receives the flow records that ended, as instances
//! of the class it names (`record_type`), their `meta` a `py_meta::PyMeta`.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashbrown::HashSet;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::ahead::{Ahead, Analysis, Home, Next, Spent, Steps};
use crate::bpf::{Filter, Insn, Program};
use crate::detect::engine::{Engine, Transport};
use crate::detect::signature;
use crate::meta::Value;
use crate::monitor::{LiveMonitor, MonitorOptions};
use crate::parallel::{FrameSource, ParallelAnalyzer};
use crate::pipeline::{self, KnownPorts};
use crate::py_meta::PyMeta;
use crate::record::FlowRecord;
use crate::source::live::RingOptions;
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

/// Programs by link type as `portwatch.bpf` compiles them: (code, jt, jf, k) each, or None
/// where the expression does not apply to the link type.
type Programs = std::collections::HashMap<u32, Option<Vec<(u16, u8, u8, u32)>>>;

/// A capture filter from Python's programs, each checked as the kernel checks one.
fn filter_from(programs: Programs) -> PyResult<Filter> {
    let mut by_link = hashbrown::HashMap::new();
    for (linktype, insns) in programs {
        let program = match insns {
            None => None,
            Some(v) => {
                let insns = v
                    .into_iter()
                    .map(|(code, jt, jf, k)| Insn { code, jt, jf, k })
                    .collect();
                Some(Program::new(insns).map_err(|e| PyValueError::new_err(e.0))?)
            }
        };
        by_link.insert(linktype, program);
    }
    Ok(Filter::new(by_link))
}

/// The 0-based numbers of the frames of `capture` that `programs` keep (tests compare them
/// with what libpcap keeps).
#[pyfunction]
fn filter_capture(py: Python<'_>, path: PathBuf, programs: Programs) -> PyResult<Vec<u64>> {
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

/// Port hints as Python gives them, keyed by the core's transport.
fn hint_map(
    port_hints: Vec<((u16, String), Vec<String>)>,
) -> PyResult<std::collections::HashMap<(u16, Transport), Vec<String>>> {
    let mut hints = std::collections::HashMap::new();
    for ((port, t), protos) in port_hints {
        hints.insert((port, transport(&t)?), protos);
    }
    Ok(hints)
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
        Ok(PyEngine {
            engine: Arc::new(Engine::new(sigs, hint_map(port_hints)?)),
        })
    }

    /// This engine's signatures with `port_hints` (as `Engine(...)` takes them), without loading
    /// and compiling them again.
    fn with_port_hints(&self, port_hints: Vec<((u16, String), Vec<String>)>) -> PyResult<Self> {
        Ok(PyEngine {
            engine: Arc::new(self.engine.with_port_hints(hint_map(port_hints)?)),
        })
    }

    /// Score one exchange (the host audit's prober): `client`/`server` are each direction's units.
    /// None while the evidence is too weak and `final_` is false; else a dict with `known`
    /// (a signature decided), protocol, confidence, evidence, meta, swapped.
    #[pyo3(signature = (transport_name, client, server, server_port, may_swap=false, final_=false, client_port=None))]
    #[allow(clippy::too_many_arguments)]
    fn classify<'py>(
        &self,
        py: Python<'py>,
        transport_name: &str,
        client: Vec<Vec<u8>>,
        server: Vec<Vec<u8>>,
        server_port: u16,
        may_swap: bool,
        final_: bool,
        client_port: Option<u16>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let t = transport(transport_name)?;
        let c: Vec<&[u8]> = client.iter().map(Vec::as_slice).collect();
        let s: Vec<&[u8]> = server.iter().map(Vec::as_slice).collect();
        let Some(d) = self
            .engine
            .classify(t, &c, &s, server_port, may_swap, final_, client_port)
            .ok()
        else {
            return Ok(None);
        };
        let out = PyDict::new(py);
        out.set_item("known", d.sig.is_some())?;
        out.set_item("protocol", &*d.protocol)?;
        out.set_item("confidence", d.confidence)?;
        out.set_item("evidence", d.evidence.to_string())?;
        out.set_item("meta", to_py(py, &Value::from(d.meta))?)?;
        out.set_item("swapped", d.swapped)?;
        Ok(Some(out))
    }

    /// What the probes of `protocol`'s signature extract from both directions (empty if unknown).
    fn extract<'py>(
        &self,
        py: Python<'py>,
        protocol: &str,
        transport_name: &str,
        client: Vec<Vec<u8>>,
        server: Vec<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = transport(transport_name)?;
        let Some(i) = self
            .engine
            .signatures()
            .iter()
            .position(|s| s.protocol == protocol)
        else {
            return to_py(py, &Value::Object(Default::default()));
        };
        let c: Vec<&[u8]> = client.iter().map(Vec::as_slice).collect();
        let s: Vec<&[u8]> = server.iter().map(Vec::as_slice).collect();
        let (meta, _, _) = self.engine.extract(i, t, &c, &s);
        to_py(py, &Value::from(meta))
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
    // Python objects must be; it is locked by the thread that runs the analyzer, for a step
    // at a time.
    reader: Arc<Mutex<CaptureReader>>,
    name: String,
    size: Option<u64>,
    /// Bytes read so far, followed without waiting for the reader's lock.
    progress: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

impl PyCapture {
    fn reader(&self) -> std::sync::MutexGuard<'_, CaptureReader> {
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

/// Flows, reassembly and detection over one capture (or one shard of it).
#[pyclass(name = "Analyzer")]
struct PyAnalyzer {
    state: State,
    workers: usize,
    /// What each record becomes in Python (see `RecordType`).
    record_type: RecordType,
    /// Records the capture reader found malformed (a pcapng packet block that lies about its length).
    source_malformed: u64,
}

enum Inner {
    Single(Box<pipeline::Analyzer>),
    /// `workers` > 1: threads over shards of the flows, the same records in the same order.
    Parallel(Box<ParallelAnalyzer>),
}

enum State {
    /// Driven by the caller's thread, a call at a time.
    Here(Inner),
    /// On its own thread, batches ahead of the caller (`start`).
    Ahead(Box<Running>),
    /// Its thread panicked: nothing more can be asked of it.
    Lost,
}

/// An analysis running ahead, and what the caller has been handed of it so far.
struct Running {
    // A Mutex only to make the receiving end shareable, as Python objects must be.
    ahead: Mutex<Ahead<Inner>>,
    capture: Arc<Mutex<CaptureReader>>,
    done: Arc<AtomicBool>,
    /// The counters and open flows as of the last batch handed over, and its classified records.
    stats: pipeline::Stats,
    live_flows: usize,
    classified: Vec<FlowRecord>,
    /// The batch that ended the input was handed over: the rest are the drain's.
    input_over: bool,
}

impl Analysis for Inner {
    fn read<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        max_packets: usize,
        max_records: usize,
    ) -> (Vec<FlowRecord>, bool) {
        match self {
            Inner::Single(a) => a.read(source, max_packets, max_records),
            Inner::Parallel(p) => p.read(source, max_packets, max_records),
        }
    }
    fn drain_some(&mut self, max_records: usize) -> Vec<FlowRecord> {
        match self {
            Inner::Single(a) => Analysis::drain_some(&mut **a, max_records),
            Inner::Parallel(p) => Analysis::drain_some(&mut **p, max_records),
        }
    }
    fn take_classified(&mut self) -> Vec<FlowRecord> {
        match self {
            Inner::Single(a) => a.take_classified(),
            Inner::Parallel(p) => p.take_classified(),
        }
    }
    fn stats(&self) -> pipeline::Stats {
        match self {
            Inner::Single(a) => Analysis::stats(&**a),
            Inner::Parallel(p) => Analysis::stats(&**p),
        }
    }
    fn live_flows(&self) -> usize {
        match self {
            Inner::Single(a) => Analysis::live_flows(&**a),
            Inner::Parallel(p) => Analysis::live_flows(&**p),
        }
    }
    fn predecodes(&self) -> bool {
        match self {
            Inner::Single(a) => a.predecodes(),
            Inner::Parallel(p) => p.predecodes(),
        }
    }
}

/// How often a caller waiting for a batch looks at signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

impl PyAnalyzer {
    /// The analysis, when the caller drives it (not while it runs ahead).
    fn here(&mut self) -> PyResult<&mut Inner> {
        match &mut self.state {
            State::Here(inner) => Ok(inner),
            State::Ahead(_) => Err(PyRuntimeError::new_err(
                "the analyzer is running ahead: take its batches (next_batch, drain) first",
            )),
            State::Lost => Err(lost()),
        }
    }

    /// The next batch of a running analysis, waiting for it with the GIL released (and Ctrl-C
    /// noticed); None once every batch was taken, and the analysis is back `Here`.
    fn next_ahead(&mut self, py: Python<'_>) -> PyResult<Option<AheadRecords>> {
        let State::Ahead(run) = &mut self.state else {
            return Ok(None);
        };
        loop {
            let ahead = &run.ahead;
            let next = py.detach(|| {
                ahead
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .next(SIGNAL_POLL)
            });
            match next {
                Next::Batch(b) => {
                    run.stats = b.stats;
                    run.live_flows = b.live_flows;
                    run.classified.extend(b.classified);
                    if b.input_over && !run.input_over {
                        run.input_over = true;
                        run.done.store(true, Ordering::Relaxed);
                        self.source_malformed = lock_reader(&run.capture).counters().malformed;
                    }
                    return Ok(Some((b.records, b.meta_json)));
                }
                Next::Waiting => py.check_signals()?,
                Next::Over => {
                    self.settle()?;
                    return Ok(None);
                }
            }
        }
    }

    /// A batch from the analysis running ahead as Python records; the batch goes back to that
    /// thread to be freed (`ahead::Home`).
    fn batch_to_py<'py>(
        &self,
        py: Python<'py>,
        (mut records, meta_json): AheadRecords,
    ) -> PyResult<Bound<'py, PyList>> {
        let State::Ahead(run) = &self.state else {
            return self
                .record_type
                .to_py_with_json(py, &mut records, meta_json, None);
        };
        // Not locked while the records' class (Python code) runs.
        let home = run.ahead.lock().unwrap_or_else(|e| e.into_inner()).home();
        let list = self
            .record_type
            .to_py_with_json(py, &mut records, meta_json, Some(&home));
        home.give_back(Spent::Records(records));
        list
    }

    /// A finished run's analysis back `Here` (its thread joined).
    fn settle(&mut self) -> PyResult<()> {
        let State::Ahead(run) = std::mem::replace(&mut self.state, State::Lost) else {
            return Ok(());
        };
        let ahead = run.ahead.into_inner().unwrap_or_else(|e| e.into_inner());
        match ahead.finish() {
            Ok(mut inner) => {
                // Classified records not yet taken stay for `classified()`.
                if let Inner::Single(a) = &mut inner {
                    let mut pending = run.classified;
                    pending.append(&mut a.flows.classified);
                    a.flows.classified = pending;
                }
                self.state = State::Here(inner);
                Ok(())
            }
            Err(payload) => {
                let text = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the analysis thread panicked".to_string());
                Err(PanicException::new_err(text))
            }
        }
    }
}

fn lost() -> PyErr {
    PyRuntimeError::new_err("the analyzer failed earlier and cannot go on")
}

fn lock_reader(reader: &Mutex<CaptureReader>) -> std::sync::MutexGuard<'_, CaptureReader> {
    reader.lock().unwrap_or_else(|e| e.into_inner())
}

#[pymethods]
impl PyAnalyzer {
    /// `known_ports`: every (port, transport) the services database names (orients mid-stream
    /// flows); `config`: overrides of pipeline::Config by field name.
    /// `workers`: threads tracking shards of the flows (the capture is read and decoded once);
    /// each shard's table holds `max_flows / workers` flows at most.
    /// `record_type`: the class each record is built as (see `RecordType`).
    #[new]
    #[pyo3(signature = (engine, known_ports, pcap_name=None, config=None, report_classified=false, workers=1, *, record_type))]
    fn new(
        engine: &PyEngine,
        known_ports: Vec<(u16, String)>,
        pcap_name: Option<String>,
        config: Option<Bound<'_, PyDict>>,
        report_classified: bool,
        workers: usize,
        record_type: Py<PyAny>,
    ) -> PyResult<Self> {
        let record_type = RecordType(record_type);
        let mut known = HashSet::new();
        for (port, t) in known_ports {
            known.insert((port, transport(&t)?));
        }
        let cfg = config_from(config)?;
        if workers == 0 {
            return Err(PyValueError::new_err("workers must be at least 1"));
        }
        if workers > 1 {
            if report_classified {
                return Err(PyValueError::new_err("report_classified needs workers=1"));
            }
            if cfg.shard_count > 1 {
                return Err(PyValueError::new_err(
                    "shard_count and workers cannot be combined",
                ));
            }
            let inner = ParallelAnalyzer::new(
                cfg,
                Arc::clone(&engine.engine),
                Arc::new(KnownPorts(known)),
                pcap_name,
                workers,
            );
            return Ok(PyAnalyzer {
                state: State::Here(Inner::Parallel(Box::new(inner))),
                workers,
                record_type,
                source_malformed: 0,
            });
        }
        let mut inner = pipeline::Analyzer::new(
            cfg,
            Arc::clone(&engine.engine),
            Arc::new(KnownPorts(known)),
            pcap_name,
        );
        inner.flows.report_classified = report_classified;
        Ok(PyAnalyzer {
            state: State::Here(Inner::Single(Box::new(inner))),
            workers: 1,
            record_type,
            source_malformed: 0,
        })
    }

    /// Read up to `max_packets` packets of `capture` (GIL released), ending early once
    /// `max_records` flows ended; their records. `capture.done` turns true at the end of the
    /// file (or its first error).
    #[pyo3(signature = (capture, max_packets, max_records=usize::MAX))]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        capture: &PyCapture,
        max_packets: usize,
        max_records: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let inner = self.here()?;
        let mut guard = capture.reader();
        let reader = &mut *guard;
        let (mut records, done) = py.detach(|| inner.read(reader, max_packets, max_records));
        self.source_malformed = guard.counters().malformed;
        drop(guard);
        if done {
            capture.done.store(true, Ordering::Relaxed);
        }
        self.record_type.to_py(py, &mut records)
    }

    /// Run over `capture` on a thread of its own, up to `depth` batches ahead of the caller:
    /// batches of `max_packets` packets or `max_records` records, whichever comes first
    /// (`next_batch`), then, at the end of input, of `drain_records` of the flows still open
    /// (`drain`). Records, counters and their order are
    /// those of calling `run` and `drain` in turn; meanwhile `stats`, `live_flows` and
    /// `classified` tell what came with the last batch taken.
    /// With `meta_json`, each record's `meta` is also serialized on that thread, for a caller
    /// that writes it as JSON (`Meta.json()` then hands those bytes over).
    #[pyo3(signature = (capture, max_packets, drain_records, depth=2, meta_json=false, max_records=usize::MAX))]
    fn start(
        &mut self,
        capture: &PyCapture,
        max_packets: usize,
        drain_records: usize,
        depth: usize,
        meta_json: bool,
        max_records: usize,
    ) -> PyResult<()> {
        self.here()?;
        let State::Here(inner) = std::mem::replace(&mut self.state, State::Lost) else {
            unreachable!("checked by here()");
        };
        let stats = inner.stats();
        let live_flows = inner.live_flows();
        let steps = Steps {
            max_packets,
            max_records,
            drain_records,
            meta_json,
        };
        let ahead = Ahead::start(inner, Arc::clone(&capture.reader), steps, depth)
            .map_err(|e| PyOSError::new_err(format!("cannot start the analysis thread: {e}")))?;
        self.state = State::Ahead(Box::new(Running {
            ahead: Mutex::new(ahead),
            capture: Arc::clone(&capture.reader),
            done: Arc::clone(&capture.done),
            stats,
            live_flows,
            classified: Vec::new(),
            input_over: false,
        }));
        Ok(())
    }

    /// The records of the next batch read by `start`; None after the batch that found the end
    /// of input (or the analysis was not started).
    fn next_batch<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        match &self.state {
            State::Ahead(run) if !run.input_over => {}
            _ => return Ok(None),
        }
        match self.next_ahead(py)? {
            Some(records) => Ok(Some(self.batch_to_py(py, records)?)),
            None => Ok(None),
        }
    }

    /// Frames handed over by Python (a live socket, a test): (ts, linktype, bytes) each; the
    /// records of the flows that ended meanwhile.
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        frames: Vec<(f64, u32, Vec<u8>)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let Inner::Single(a) = self.here()? else {
            return Err(PyValueError::new_err("feed needs workers=1"));
        };
        let mut records = py.detach(|| {
            for (ts, linktype, data) in &frames {
                a.packet(*ts, *linktype, data);
            }
            std::mem::take(&mut a.flows.finished)
        });
        self.record_type.to_py(py, &mut records)
    }

    /// Expire idle flows as of `now` (wall clock); their records.
    fn expire<'py>(&mut self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyList>> {
        let Inner::Single(a) = self.here()? else {
            return Err(PyValueError::new_err("expire needs workers=1"));
        };
        a.flows.expire_idle(now);
        let mut records = std::mem::take(&mut a.flows.finished);
        self.record_type.to_py(py, &mut records)
    }

    /// The active timeout: segments of flows older than `active` seconds (see
    /// `Tracker::split_long_flows`); their records.
    fn split_long_flows<'py>(
        &mut self,
        py: Python<'py>,
        active: f64,
        now: f64,
        reason: &str,
    ) -> PyResult<Bound<'py, PyList>> {
        let Inner::Single(a) = self.here()? else {
            return Err(PyValueError::new_err("split_long_flows needs workers=1"));
        };
        a.flows.split_long_flows(active, now, reason);
        let mut records = std::mem::take(&mut a.flows.finished);
        self.record_type.to_py(py, &mut records)
    }

    /// A reload: new signatures and services; live flows keep their state.
    fn set_engine(&mut self, engine: &PyEngine, known_ports: Vec<(u16, String)>) -> PyResult<()> {
        let Inner::Single(a) = self.here()? else {
            return Err(PyValueError::new_err("set_engine needs workers=1"));
        };
        let mut known = HashSet::new();
        for (port, t) in known_ports {
            known.insert((port, transport(&t)?));
        }
        a.flows
            .set_engine(Arc::clone(&engine.engine), Arc::new(KnownPorts(known)));
        Ok(())
    }

    /// Records of flows classified since the last call (with `report_classified`).
    fn classified<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut records = match &mut self.state {
            State::Ahead(run) => std::mem::take(&mut run.classified),
            State::Here(inner) => inner.take_classified(),
            State::Lost => return Err(lost()),
        };
        self.record_type.to_py(py, &mut records)
    }

    /// End of input: the flows still open, as records, up to `max_records` a call (oldest
    /// first; call again until it returns an empty list), all at once without a limit.
    /// An analysis running ahead stops reading after its current batch: the records of every
    /// batch it read come first (through here), then those of its drain.
    #[pyo3(signature = (max_records=None))]
    fn drain<'py>(
        &mut self,
        py: Python<'py>,
        max_records: Option<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        if let State::Ahead(run) = &self.state {
            run.ahead
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .stop_reading();
            while let Some(batch) = self.next_ahead(py)? {
                if !batch.0.is_empty() {
                    return self.batch_to_py(py, batch);
                }
            }
        }
        let inner = self.here()?;
        let mut records = py.detach(|| inner.drain_some(max_records.unwrap_or(usize::MAX)));
        self.record_type.to_py(py, &mut records)
    }

    fn live_flows(&self) -> PyResult<usize> {
        match &self.state {
            State::Here(inner) => Ok(inner.live_flows()),
            State::Ahead(run) => Ok(run.live_flows),
            State::Lost => Err(lost()),
        }
    }

    /// The capture filter: `programs` by link type (see `portwatch.bpf`), None for none.
    #[pyo3(signature = (programs=None))]
    fn set_filter(&mut self, programs: Option<Programs>) -> PyResult<()> {
        let filter = programs.map(filter_from).transpose()?.map(Arc::new);
        match self.here()? {
            Inner::Single(a) => a.set_filter(filter),
            Inner::Parallel(p) => p.set_filter(filter),
        }
        Ok(())
    }

    /// Threads tracking flows (1: the calling thread alone).
    #[getter]
    fn workers(&self) -> usize {
        self.workers
    }

    /// The counters, by CaptureStats' names.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = match &self.state {
            State::Here(inner) => inner.stats(),
            State::Ahead(run) => run.stats.clone(),
            State::Lost => return Err(lost()),
        };
        let d = PyDict::new(py);
        for (k, v) in [
            ("packets", s.packets),
            ("bytes", s.bytes),
            ("malformed", s.malformed + self.source_malformed),
            ("non_ip", s.non_ip),
            ("fragments", s.fragments),
            ("fragments_dropped", s.fragments_dropped),
            ("unsupported_link", s.unsupported_link),
            ("encrypted_frames", s.encrypted_frames),
            ("flows_evicted", s.flows_evicted),
            ("other_shard", s.other_shard),
            ("filtered", s.filtered),
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }
}

/// pipeline::Config with overrides by field name (the Python Config's `core_settings()`).
fn config_from(config: Option<Bound<'_, PyDict>>) -> PyResult<pipeline::Config> {
    let mut cfg = pipeline::Config::default();
    if let Some(c) = config {
        for (k, v) in c.iter() {
            let key: String = k.extract()?;
            match key.as_str() {
                "max_flows" => cfg.max_flows = v.extract()?,
                "idle_tcp" => cfg.idle_tcp = v.extract()?,
                "idle_udp" => cfg.idle_udp = v.extract()?,
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
    Ok(cfg)
}

fn known_set(known_ports: Vec<(u16, String)>) -> PyResult<KnownPorts> {
    let mut known = HashSet::new();
    for (port, t) in known_ports {
        known.insert((port, transport(&t)?));
    }
    Ok(KnownPorts(known))
}

/// Live capture in the core (`monitor::LiveMonitor`): rings and analyzers in threads; Python
/// polls for records (classified, finished) and counters, never frames.
#[pyclass(name = "LiveMonitor")]
struct PyLiveMonitor {
    inner: Mutex<LiveMonitor>,
    record_type: RecordType,
}

impl PyLiveMonitor {
    fn inner(&self) -> std::sync::MutexGuard<'_, LiveMonitor> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl PyLiveMonitor {
    /// Open the rings (root or CAP_NET_RAW); no frame is read before `start()`.
    /// `bpf`: classic BPF as (code, jt, jf, k) tuples (portwatch/monitor/bpf.py).
    #[new]
    #[pyo3(signature = (interfaces, engine, known_ports, config=None, workers=1, block_size=1<<20,
        block_count=64, block_timeout_ms=50, bpf=None, promisc=true, expire_interval=5.0,
        active_timeout=1800.0, active_reason="active-timeout".to_string(), max_pending=200_000,
        *, record_type))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        interfaces: Vec<String>,
        engine: &PyEngine,
        known_ports: Vec<(u16, String)>,
        config: Option<Bound<'_, PyDict>>,
        workers: usize,
        block_size: usize,
        block_count: usize,
        block_timeout_ms: u32,
        bpf: Option<Vec<(u16, u8, u8, u32)>>,
        promisc: bool,
        expire_interval: f64,
        active_timeout: f64,
        active_reason: String,
        max_pending: usize,
        record_type: Py<PyAny>,
    ) -> PyResult<Self> {
        let cfg = config_from(config)?;
        let known = Arc::new(known_set(known_ports)?);
        let opts = MonitorOptions {
            ring: RingOptions {
                block_size,
                block_count,
                block_timeout_ms,
                fanout: None,
                fanout_new: false,
                filter: bpf,
                promisc,
            },
            workers,
            expire_interval,
            active_timeout,
            active_reason,
            max_pending: max_pending.max(1),
        };
        let inner = LiveMonitor::open(&interfaces, opts, cfg, Arc::clone(&engine.engine), known)
            .map_err(CaptureError::new_err)?;
        Ok(PyLiveMonitor {
            inner: Mutex::new(inner),
            record_type: RecordType(record_type),
        })
    }

    /// Start the capture threads (after dropping privileges: they inherit the credentials).
    fn start(&self) -> PyResult<()> {
        self.inner().start().map_err(CaptureError::new_err)
    }

    /// Wait up to `timeout` seconds (GIL released) for events: (classified, finished) records.
    fn poll<'py>(
        &self,
        py: Python<'py>,
        timeout: f64,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
        let wait = std::time::Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
        let (mut classified, mut finished) = py.detach(|| self.inner().poll(wait));
        Ok((
            self.record_type.to_py(py, &mut classified)?,
            self.record_type.to_py(py, &mut finished)?,
        ))
    }

    /// A reload: new signatures and services for every thread; live flows keep their state.
    fn set_engine(&self, engine: &PyEngine, known_ports: Vec<(u16, String)>) -> PyResult<()> {
        let known = Arc::new(known_set(known_ports)?);
        self.inner().set_engine(Arc::clone(&engine.engine), known);
        Ok(())
    }

    /// The reload generation asked for last; each ring's `engine_generation` reaches it.
    #[getter]
    fn generation(&self) -> u64 {
        self.inner().generation()
    }

    #[getter]
    fn rings(&self) -> usize {
        self.inner().rings()
    }

    /// Stop the threads (GIL released): each reports its open flows; `poll` returns them.
    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.inner().stop());
    }

    /// Per ring: iface, kernel counters (packets, drops, freeze_q_cnt), received, truncated,
    /// bad_blocks, socket_errors, the analyzer's counters, live_flows, engine_generation, stalls.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for w in self.inner().stats() {
            let d = PyDict::new(py);
            d.set_item("iface", &w.iface)?;
            d.set_item("last_error", w.ring.last_error)?;
            let (r, a) = (&w.ring, &w.analyzer);
            for (k, v) in [
                ("kernel_packets", r.packets),
                ("kernel_drops", r.drops),
                ("freeze_q_cnt", r.freeze_q_cnt),
                ("received", r.received),
                ("truncated", r.truncated),
                ("bad_blocks", r.bad_blocks),
                ("socket_errors", r.socket_errors),
                ("packets", a.packets),
                ("bytes", a.bytes),
                ("malformed", a.malformed),
                ("non_ip", a.non_ip),
                ("fragments", a.fragments),
                ("fragments_dropped", a.fragments_dropped),
                ("unsupported_link", a.unsupported_link),
                ("flows_evicted", a.flows_evicted),
                ("live_flows", w.live_flows as u64),
                ("engine_generation", w.engine_generation),
                ("stalls", w.stalls),
            ] {
                d.set_item(k, v)?;
            }
            list.append(d)?;
        }
        Ok(list)
    }
}

/// A batch's records and, when asked for, their `meta` as JSON (`ahead::Batch`).
type AheadRecords = (Vec<FlowRecord>, Vec<Option<Vec<u8>>>);

/// What the core's records become in Python: instances of a class called with the record's
/// fields positionally in the order of `portwatch.model.FlowRecord`, with `assigned` and
/// `findings` empty lists for the policy to fill. Built directly, a record costs no dict that
/// Python would then read field by field.
struct RecordType(Py<PyAny>);

impl RecordType {
    fn to_py<'py>(
        &self,
        py: Python<'py>,
        records: &mut [FlowRecord],
    ) -> PyResult<Bound<'py, PyList>> {
        records_to_class(py, self.0.bind(py), records, Vec::new(), None)
    }

    /// As `to_py`, with the records' `meta` serialized already (`Batch::meta_json`; empty: not),
    /// their maps to be freed at `home` (the thread that made them).
    fn to_py_with_json<'py>(
        &self,
        py: Python<'py>,
        records: &mut [FlowRecord],
        meta_json: Vec<Option<Vec<u8>>>,
        home: Option<&Home>,
    ) -> PyResult<Bound<'py, PyList>> {
        records_to_class(py, self.0.bind(py), records, meta_json, home)
    }
}

fn records_to_class<'py>(
    py: Python<'py>,
    class: &Bound<'py, PyAny>,
    records: &mut [FlowRecord],
    meta_json: Vec<Option<Vec<u8>>>,
    home: Option<&Home>,
) -> PyResult<Bound<'py, PyList>> {
    use pyo3::types::PyTuple;
    let mut texts = Texts::default();
    let mut out = Vec::with_capacity(records.len());
    let mut meta_json = meta_json.into_iter();
    for r in records {
        let json = meta_json.next().flatten();
        let meta = std::mem::take(&mut r.meta);
        let meta = match home {
            Some(home) => PyMeta::from_home(meta, json, home.clone()),
            None => PyMeta::with_json(meta, json),
        };
        let pcap = match &r.pcap {
            Some(p) => texts.get(py, p).into_any(),
            None => py.None().into_bound(py),
        };
        let fields: [Bound<'py, PyAny>; 23] = [
            r.ts_start.into_pyobject(py)?.into_any(),
            r.ts_end.into_pyobject(py)?.into_any(),
            texts.get(py, r.transport).into_any(),
            PyString::new(py, &r.src_ip).into_any(),
            r.src_port.into_pyobject(py)?.into_any(),
            PyString::new(py, &r.dst_ip).into_any(),
            r.dst_port.into_pyobject(py)?.into_any(),
            texts.get(py, r.orientation).into_any(),
            texts.get(py, &r.protocol).into_any(),
            r.confidence.into_pyobject(py)?.into_any(),
            PyList::empty(py).into_any(),
            r.packets_c2s.into_pyobject(py)?.into_any(),
            r.packets_s2c.into_pyobject(py)?.into_any(),
            r.bytes_c2s.into_pyobject(py)?.into_any(),
            r.bytes_s2c.into_pyobject(py)?.into_any(),
            Bound::new(py, meta)?.into_any(),
            PyList::empty(py).into_any(),
            pcap,
            r.flow_id.into_pyobject(py)?.into_any(),
            PyString::new(py, &r.community_id).into_any(),
            r.duration.into_pyobject(py)?.into_any(),
            texts.get(py, r.state).into_any(),
            PyString::new(py, &r.history).into_any(),
        ];
        out.push(class.call1(PyTuple::new(py, fields)?)?);
    }
    PyList::new(py, out)
}

/// Python strings made once per conversion call for texts that repeat across records (meta
/// keys, protocol and state names). Bounded: past `MAX_TEXTS` distinct texts a new one is
/// made each time (a key is code's, not data's, but the bound does not rely on it).
#[derive(Default)]
pub(crate) struct Texts {
    made: hashbrown::HashMap<String, Py<PyString>>,
    /// Make every text anew (`Texts::uncached`).
    uncached: bool,
}

const MAX_TEXTS: usize = 1024;

impl Texts {
    /// For one record's values (a `get` of a nested fact, a meta made a dict): its keys rarely
    /// repeat, and remembering each cost more than the string it saves (`peek` of the 7-key
    /// entropy facts: 11,300 instructions with the cache, 9,100 without, callgrind).
    pub(crate) fn uncached() -> Self {
        Texts {
            made: hashbrown::HashMap::new(),
            uncached: true,
        }
    }

    fn get<'py>(&mut self, py: Python<'py>, text: &str) -> Bound<'py, PyString> {
        if self.uncached {
            return PyString::new(py, text);
        }
        if let Some(s) = self.made.get(text) {
            return s.bind(py).clone();
        }
        let s = PyString::new(py, text);
        if self.made.len() < MAX_TEXTS {
            self.made.insert(text.to_owned(), s.clone().unbind());
        }
        s
    }
}

pub(crate) fn object_to_py<'py, 'a, K: AsRef<str>>(
    py: Python<'py>,
    map: impl IntoIterator<Item = (K, &'a Value)>,
    texts: &mut Texts,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, item) in map {
        d.set_item(texts.get(py, k.as_ref()), value_to_py(py, item, texts)?)?;
    }
    Ok(d)
}

/// A JSON-like value as the Python object json.loads would give (`texts`: see `Texts`).
pub(crate) fn value_to_py<'py>(
    py: Python<'py>,
    v: &Value,
    texts: &mut Texts,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Array(items) => {
            // Made at its length and filled, rather than grown an append at a time (the shape's
            // sizes and gaps are 64 numbers each).
            let mut objs = Vec::with_capacity(items.len());
            for item in items {
                objs.push(value_to_py(py, item, texts)?);
            }
            PyList::new(py, objs)?.into_any()
        }
        Value::Object(map) => object_to_py(py, map, texts)?.into_any(),
        other => to_py(py, other)?,
    })
}

/// A JSON-like value as the Python object json.loads would give.
pub(crate) fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
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

/// The packets of one flow in a capture (the notebook's `flow_packets`): rows of (ts,
/// direction "c2s"/"s2c", payload bytes, TCP flags as letters) for packets between `start` and
/// `end` on the 5-tuple, in capture order. The core reads and decodes; Python gets rows.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn flow_packets(
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

/// Entropy facts of a unit, as the engine stores them in `meta.entropy_client` (policy tests).
#[pyfunction]
fn entropy_facts<'py>(py: Python<'py>, data: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
    to_py(
        py,
        &Value::Object(crate::detect::entropy::entropy_facts(&data)),
    )
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

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CaptureError", m.py().get_type::<CaptureError>())?;
    m.add_function(wrap_pyfunction!(builtin_signatures, m)?)?;
    m.add_function(wrap_pyfunction!(check_signatures, m)?)?;
    m.add_function(wrap_pyfunction!(filter_capture, m)?)?;
    m.add_function(wrap_pyfunction!(flow_packets, m)?)?;
    m.add_function(wrap_pyfunction!(entropy_facts, m)?)?;
    m.add_function(wrap_pyfunction!(crate::py_line::record_line, m)?)?;
    m.add_class::<crate::py_dns_name::DnsNameSplitter>()?;
    m.add_class::<crate::py_dns_tunnel::PyDnsTunnelTracker>()?;
    m.add_class::<PyEngine>()?;
    m.add_class::<PyCapture>()?;
    m.add_class::<PyAnalyzer>()?;
    m.add_class::<PyLiveMonitor>()?;
    m.add_class::<PyMeta>()?;
    crate::tunnel::py::register(m)?;
    Ok(())
}
