//! `Analyzer`: flows, reassembly and detection over a capture, run from Python a batch at a time.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashbrown::HashSet;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::capture::{lock_reader, PyCapture};
use super::convert::{AheadRecords, Lines, QuietOutput, RecordType};
use super::dns_tunnel::PyDnsTunnelTracker;
use super::signatures::PyEngine;
use super::{filter_from, transport, Programs};
use crate::ahead::{Ahead, Analysis, Next, Spent, Steps};
use crate::parallel::{FrameSource, ParallelAnalyzer};
use crate::pipeline::{self, KnownPorts};
use crate::quiet_lines::QuietLines;
use crate::record::FlowRecord;
use crate::source::CaptureReader;

/// Flows, reassembly and detection over one capture (or one shard of it).
#[pyclass(name = "Analyzer", module = "portwatch._core")]
pub(super) struct PyAnalyzer {
    state: State,
    workers: usize,
    /// What each record becomes in Python (see `RecordType`).
    record_type: RecordType,
    /// Records the capture reader found malformed (a pcapng packet block that lies about its length).
    source_malformed: u64,
    /// Quiet records handed over as their lines or tallies, DNS records counted by the
    /// policy's tracker on the way (`quiet_records`).
    quiet: Option<QuietLines>,
    dns: Option<Py<PyDnsTunnelTracker>>,
    quiet_output: QuietOutput,
    report_classified: bool,
}

pub(super) enum Inner {
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
    fn spill_to(&mut self, spill: Option<(usize, pipeline::Spill)>) {
        match self {
            Inner::Single(a) => a.spill_to(spill),
            Inner::Parallel(p) => p.spill_to(spill),
        }
    }
}

/// How often a caller waiting for a batch looks at signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

impl PyAnalyzer {
    fn lines(&self) -> Option<Lines<'_>> {
        self.quiet.as_ref().map(|quiet| Lines {
            quiet,
            dns: self.dns.as_ref(),
            output: self.quiet_output,
        })
    }

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
            return self.record_type.to_py_with_json(
                py,
                &mut records,
                meta_json,
                None,
                self.lines(),
            );
        };
        // Not locked while the records' class (Python code) runs.
        let home = run.ahead.lock().unwrap_or_else(|e| e.into_inner()).home();
        let list = self.record_type.to_py_with_json(
            py,
            &mut records,
            meta_json,
            Some(&home),
            self.lines(),
        );
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
        if workers == 0 || workers > crate::parallel::MAX_WORKERS {
            return Err(PyValueError::new_err(format!(
                "workers must be 1 to {}, not {workers}",
                crate::parallel::MAX_WORKERS
            )));
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
                quiet: None,
                dns: None,
                quiet_output: QuietOutput::Jsonl,
                report_classified,
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
            quiet: None,
            dns: None,
            quiet_output: QuietOutput::Jsonl,
            report_classified,
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
        self.record_type
            .to_py_or_quiet(py, &mut records, self.lines())
    }

    /// Run over `capture` on a thread of its own, up to `depth` batches ahead of the caller:
    /// batches of `max_packets` packets or `max_records` records, whichever comes first
    /// (`next_batch`), then, at the end of input, of `drain_records` of the flows still open
    /// (`drain`). Records, counters and their order are
    /// those of calling `run` and `drain` in turn; meanwhile `stats`, `live_flows` and
    /// `classified` tell what came with the last batch taken.
    /// With `meta_json`, for a caller that writes each record's `meta` as JSON, the records of
    /// a batch made while the caller had one still to take come serialized on that thread
    /// (`Meta.json()` then hands those bytes over); see `ahead::Steps::meta_json`.
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
        self.record_type
            .to_py_or_quiet(py, &mut records, self.lines())
    }

    /// Expire idle flows as of `now` (wall clock); their records.
    fn expire<'py>(&mut self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyList>> {
        let Inner::Single(a) = self.here()? else {
            return Err(PyValueError::new_err("expire needs workers=1"));
        };
        a.flows.expire_idle(now);
        let mut records = std::mem::take(&mut a.flows.finished);
        self.record_type
            .to_py_or_quiet(py, &mut records, self.lines())
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
        self.record_type
            .to_py_or_quiet(py, &mut records, self.lines())
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
        self.record_type
            .to_py_or_quiet(py, &mut records, self.lines())
    }

    /// From now on, hand over each record no finding can come of as its line in the format
    /// `lines` names ("jsonl": its JSON line, "eve": its EVE flow event, "csv": its CSV row; a
    /// `QuietLines` among the records, runs of lines joined), for a caller that only writes
    /// lines, or counted (a `QuietTally` in place of each run; `lines=None`), for one that only
    /// writes the closing report; see `quiet_lines`. `names`: the services database's (port,
    /// transport, names) (`assigned`); `listed`: facts and the values the policy gives a reason
    /// for; `unknown_quiet`: an unanswered, unrecognised flow is quiet; `trusted_port_limit`: TCP
    /// client ports below it are a rule's; `dns`: the policy's DNS-tunnel tracker, which then
    /// counts every DNS record here (one not handed over as quiet comes as (record, what
    /// `account` answered)). Keys are then taught one at a time (`teach_quiet`).
    #[pyo3(signature = (names, listed, unknown_quiet, trusted_port_limit, dns=None, *, lines=Some("jsonl")))]
    fn quiet_records(
        &mut self,
        names: Vec<(u16, String, Vec<String>)>,
        listed: Vec<(String, Vec<String>)>,
        unknown_quiet: bool,
        trusted_port_limit: u16,
        dns: Option<Py<PyDnsTunnelTracker>>,
        lines: Option<&str>,
    ) -> PyResult<()> {
        let output = QuietOutput::named(lines)?;
        if self.report_classified {
            return Err(PyValueError::new_err(
                "quiet records leave out records report_classified hands over",
            ));
        }
        let listed = listed
            .into_iter()
            .map(|(fact, values)| (fact, values.into_iter().collect()))
            .collect();
        self.quiet = Some(QuietLines::new(
            names,
            listed,
            unknown_quiet,
            trusted_port_limit,
        ));
        self.dns = dns;
        self.quiet_output = output;
        Ok(())
    }

    /// No record-only rule speaks about `protocol` on this server port: its records are quiet
    /// lines or tallies (`quiet_records`) when nothing else in them asks the policy. False when the key
    /// was not taken (see `QuietLines::teach`) or lines are not written.
    fn teach_quiet(&mut self, protocol: &str, port: u16, transport: &str) -> bool {
        self.quiet
            .as_mut()
            .is_some_and(|q| q.teach(protocol, port, transport))
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
pub(super) fn config_from(config: Option<Bound<'_, PyDict>>) -> PyResult<pipeline::Config> {
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

pub(super) fn known_set(known_ports: Vec<(u16, String)>) -> PyResult<KnownPorts> {
    let mut known = HashSet::new();
    for (port, t) in known_ports {
        known.insert((port, transport(&t)?));
    }
    Ok(KnownPorts(known))
}
