//! `LiveMonitor`: live capture in the core, polled by Python.
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::analyzer::{config_from, known_set};
use super::convert::RecordType;
use super::signatures::PyEngine;
use super::CaptureError;
use crate::monitor::{LiveMonitor, MonitorOptions};
use crate::source::live::RingOptions;

/// Live capture in the core (`monitor::LiveMonitor`): rings and analyzers in threads; Python
/// polls for records (classified, finished) and counters, never frames.
#[pyclass(name = "LiveMonitor", module = "portwatch._core")]
pub(super) struct PyLiveMonitor {
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
