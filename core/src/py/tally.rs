//! `portwatch._core.QuietTally`: a run of quiet records, counted as the closing report counts a
//! record no finding came of (`report.summary.Summary.add`: flows, first and last seen, flows
//! per protocol), for a run that writes only that report; `QuietLines`: such a run as the lines
//! the core wrote, for a run that writes only records.
#![forbid(unsafe_code)]

use std::sync::Arc;

use pyo3::prelude::*;

use crate::record::FlowRecord;

/// Quiet records counted in their order (see `py::convert::Lines`).
#[pyclass(module = "portwatch._core", name = "QuietTally", frozen)]
pub struct PyQuietTally {
    #[pyo3(get)]
    flows: u64,
    /// The least `ts_start`, as `Summary.add` keeps it (a NaN never replaces a bound).
    #[pyo3(get)]
    first_seen: f64,
    #[pyo3(get)]
    last_seen: f64,
    /// Flows per protocol in the order each protocol first came.
    by_protocol: Vec<(Arc<str>, u64)>,
}

#[pymethods]
impl PyQuietTally {
    /// (protocol, flows) in the order each protocol first came, as a Counter adds them.
    #[getter]
    fn by_protocol(&self) -> Vec<(String, u64)> {
        self.by_protocol
            .iter()
            .map(|(p, n)| (p.to_string(), *n))
            .collect()
    }
}

impl PyQuietTally {
    pub(super) fn new() -> Self {
        PyQuietTally {
            flows: 0,
            first_seen: f64::INFINITY,
            last_seen: f64::NEG_INFINITY,
            by_protocol: Vec::new(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.flows == 0
    }

    pub(super) fn add(&mut self, rec: &FlowRecord) {
        self.flows += 1;
        if rec.ts_start < self.first_seen {
            self.first_seen = rec.ts_start;
        }
        if rec.ts_end > self.last_seen {
            self.last_seen = rec.ts_end;
        }
        // A few protocols a batch: a scan of them is cheaper than a map.
        match self
            .by_protocol
            .iter_mut()
            .find(|(p, _)| *p == rec.protocol)
        {
            Some((_, n)) => *n += 1,
            None => self.by_protocol.push((Arc::clone(&rec.protocol), 1)),
        }
    }
}

/// A run of quiet records as the core wrote them (`data`: the lines, UTF-8 bytes, of a text
/// format; for SQLite a list of `flows` rows) and how many records they are (`records`: a CSV row
/// may span lines), for a writer that counts whole records on disk.
#[pyclass(module = "portwatch._core", name = "QuietLines", frozen)]
pub struct PyQuietLines {
    #[pyo3(get)]
    data: Py<PyAny>,
    #[pyo3(get)]
    records: u64,
}

impl PyQuietLines {
    pub(super) fn new(data: Py<PyAny>, records: u64) -> Self {
        PyQuietLines { data, records }
    }
}
