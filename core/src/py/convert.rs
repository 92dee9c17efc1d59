//! The core's records and values as Python objects.
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::ahead::{Home, Spent};
use crate::csv_line::push_csv_row;
use crate::eve_line::push_eve_line;
use crate::meta::{FlowMeta, Value};
use crate::py::dns_tunnel::PyDnsTunnelTracker;
use crate::py::meta::PyMeta;
use crate::py::quiet_rows::{flows_row, frame_row, parquet_row};
use crate::py::tally::{PyQuietLines, PyQuietTally};
use crate::quiet_lines::{push_line, QuietLines};
use crate::record::FlowRecord;

/// A batch's records and, when asked for, their `meta` as JSON (`ahead::Batch`).
pub(super) type AheadRecords = (Vec<FlowRecord>, Vec<Option<Vec<u8>>>);

/// Records handed over as their lines, or counted in a `QuietTally`, where `quiet` finds them
/// quiet (`py::analyzer`'s `quiet_records`): each run of them is one `QuietLines` or one tally
/// in its place among the records. With `dns`, the policy's DNS-tunnel tracker, every DNS
/// record is counted here, in its order: one with a signal, or not quiet, goes to Python as
/// (record, signal) so that the policy words the signal rather than count the record again.
#[derive(Clone, Copy)]
pub(super) struct Lines<'a> {
    pub(super) quiet: &'a QuietLines,
    pub(super) dns: Option<&'a Py<PyDnsTunnelTracker>>,
    pub(super) output: QuietOutput,
}

/// What a run of quiet records becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum QuietOutput {
    /// Their JSON lines (`--format jsonl`, `quiet_lines::push_line`).
    Jsonl,
    /// Their EVE flow events (`--format eve`, `eve_line::push_eve_line`).
    Eve,
    /// Their CSV rows (`--format csv`, `csv_line::push_csv_row`).
    Csv,
    /// Their rows of the SQLite `flows` table (`--format sqlite`, `quiet_rows::flows_row`).
    Sqlite,
    /// Their Parquet rows (`--format parquet`, `quiet_rows::parquet_row`).
    Parquet,
    /// Their rows of a notebook's frame (`portwatch.analyze`, `quiet_rows::frame_row`).
    Frame,
    /// Their tally (the closing report alone).
    Tally,
}

impl QuietOutput {
    /// The format named `name` (`SinkFormat.quiet_lines`), or a tally for None.
    pub(super) fn named(name: Option<&str>) -> PyResult<Self> {
        match name {
            None => Ok(QuietOutput::Tally),
            Some("jsonl") => Ok(QuietOutput::Jsonl),
            Some("eve") => Ok(QuietOutput::Eve),
            Some("csv") => Ok(QuietOutput::Csv),
            Some("sqlite") => Ok(QuietOutput::Sqlite),
            Some("parquet") => Ok(QuietOutput::Parquet),
            Some("frame") => Ok(QuietOutput::Frame),
            Some(other) => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "no quiet lines in the {other:?} format (jsonl, eve, csv, sqlite, parquet, frame)"
            ))),
        }
    }
}

/// What the core's records become in Python: instances of a class called with the record's
/// fields positionally in the order of `portwatch.model.FlowRecord`, with `assigned` and
/// `findings` empty lists for the policy to fill. Built directly, a record costs no dict that
/// Python would then read field by field.
pub(super) struct RecordType(pub(super) Py<PyAny>);

impl RecordType {
    pub(super) fn to_py<'py>(
        &self,
        py: Python<'py>,
        records: &mut [FlowRecord],
    ) -> PyResult<Bound<'py, PyList>> {
        records_to_class(py, self.0.bind(py), records, Vec::new(), None, None)
    }

    /// As `to_py`, but each run of records `lines` finds quiet (if given) is their JSON lines
    /// or their tally, in its place among the others (see `Lines`).
    pub(super) fn to_py_or_quiet<'py>(
        &self,
        py: Python<'py>,
        records: &mut [FlowRecord],
        lines: Option<Lines<'_>>,
    ) -> PyResult<Bound<'py, PyList>> {
        records_to_class(py, self.0.bind(py), records, Vec::new(), None, lines)
    }

    /// As `to_py_or_quiet`, with the records' `meta` serialized already (`Batch::meta_json`;
    /// empty: not), their maps to be freed at `home` (the thread that made them).
    pub(super) fn to_py_with_json<'py>(
        &self,
        py: Python<'py>,
        records: &mut [FlowRecord],
        meta_json: Vec<Option<Vec<u8>>>,
        home: Option<&Home>,
        lines: Option<Lines<'_>>,
    ) -> PyResult<Bound<'py, PyList>> {
        records_to_class(py, self.0.bind(py), records, meta_json, home, lines)
    }
}

fn records_to_class<'py>(
    py: Python<'py>,
    class: &Bound<'py, PyAny>,
    records: &mut [FlowRecord],
    meta_json: Vec<Option<Vec<u8>>>,
    home: Option<&Home>,
    lines: Option<Lines<'_>>,
) -> PyResult<Bound<'py, PyList>> {
    use pyo3::types::PyTuple;
    let mut texts = Texts::default();
    let mut out = Vec::with_capacity(records.len());
    let mut meta_json = meta_json.into_iter();
    let mut run = QuietRun::new();
    for r in records {
        let mut json = meta_json.next().flatten();
        // Some(signal): a DNS record the tracker counted here.
        let mut counted = None;
        if let Some(Lines { quiet, dns, output }) = lines {
            if let Some(dns) = dns.filter(|_| &*r.protocol == "dns") {
                let assigned = quiet.names_of(r);
                counted = Some(
                    dns.bind(py)
                        .try_borrow_mut()?
                        .account_record(py, r, assigned)?,
                );
            }
            if let (None | Some(None), Some(assigned)) = (&counted, quiet.quiet(r)) {
                let handed = match output {
                    QuietOutput::Jsonl => {
                        push_line(&mut run.lines, r, assigned, json.as_deref());
                        true
                    }
                    // A record whose event or row only Python writes the same way goes as a
                    // record.
                    QuietOutput::Eve => push_eve_line(&mut run.lines, r, assigned, json.as_deref()),
                    QuietOutput::Csv => push_csv_row(&mut run.lines, r, assigned),
                    QuietOutput::Sqlite => {
                        run.rows
                            .push(flows_row(py, r, assigned, &mut texts)?.into_any());
                        true
                    }
                    QuietOutput::Parquet => match parquet_row(py, r, assigned, &mut texts)? {
                        Some(row) => {
                            run.rows.push(row.into_any());
                            true
                        }
                        None => false,
                    },
                    QuietOutput::Frame => {
                        // The row keeps the map, freed where it was made once Python drops it.
                        let meta = Bound::new(py, py_meta(&mut r.meta, json.take(), home))?;
                        run.rows
                            .push(frame_row(py, r, assigned, meta, &mut texts)?.into_any());
                        true
                    }
                    QuietOutput::Tally => {
                        run.tally.add(r);
                        true
                    }
                };
                if handed {
                    run.records += u64::from(output != QuietOutput::Tally);
                    // Freed where it was made, as the records are (`ahead::Home`).
                    if let Some(home) = home.filter(|_| output != QuietOutput::Frame) {
                        home.give_back(Spent::Meta(std::mem::take(&mut r.meta), json));
                    }
                    continue;
                }
            }
        }
        run.flush(py, &mut out)?;
        let meta = py_meta(&mut r.meta, json, home);
        let pcap = pcap_of(py, r, &mut texts);
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
        let record = class.call1(PyTuple::new(py, fields)?)?;
        match counted {
            Some(signal) => {
                out.push(PyTuple::new(py, [record, signal.into_pyobject(py)?])?.into_any())
            }
            None => out.push(record),
        }
    }
    run.flush(py, &mut out)?;
    PyList::new(py, out)
}

/// A record's `meta` for Python, taken from it: the core's map (and its JSON, if made), freed
/// where it was made once Python drops it (`ahead::Home`).
fn py_meta(meta: &mut FlowMeta, json: Option<Vec<u8>>, home: Option<&Home>) -> PyMeta {
    let meta = std::mem::take(meta);
    match home {
        Some(home) => PyMeta::from_home(meta, json, home.clone()),
        None => PyMeta::with_json(meta, json),
    }
}

/// A record's `pcap`: the capture's name, or None.
pub(super) fn pcap_of<'py>(
    py: Python<'py>,
    rec: &FlowRecord,
    texts: &mut Texts,
) -> Bound<'py, PyAny> {
    match &rec.pcap {
        Some(p) => texts.get(py, p).into_any(),
        None => py.None().into_bound(py),
    }
}

/// The quiet records since the last record handed over: their lines, rows or tally.
struct QuietRun<'py> {
    lines: Vec<u8>,
    rows: Vec<Bound<'py, PyAny>>,
    /// The records `lines` or `rows` hold.
    records: u64,
    tally: PyQuietTally,
}

impl<'py> QuietRun<'py> {
    fn new() -> Self {
        QuietRun {
            lines: Vec::new(),
            rows: Vec::new(),
            records: 0,
            tally: PyQuietTally::new(),
        }
    }

    fn flush(&mut self, py: Python<'py>, out: &mut Vec<Bound<'py, PyAny>>) -> PyResult<()> {
        if !self.lines.is_empty() {
            let data = PyBytes::new(py, &self.lines).into_any().unbind();
            out.push(Bound::new(py, PyQuietLines::new(data, self.records))?.into_any());
            self.lines.clear();
            self.records = 0;
        }
        if !self.rows.is_empty() {
            let data = PyList::new(py, self.rows.drain(..))?.into_any().unbind();
            out.push(Bound::new(py, PyQuietLines::new(data, self.records))?.into_any());
            self.records = 0;
        }
        if !self.tally.is_empty() {
            let tally = std::mem::replace(&mut self.tally, PyQuietTally::new());
            out.push(Bound::new(py, tally)?.into_any());
        }
        Ok(())
    }
}

/// Python strings made once per conversion call for texts that repeat across records (meta
/// keys, protocol and state names). Bounded: past `MAX_TEXTS` distinct texts a new one is
/// made each time (a key is code's, not data's, but the bound does not rely on it).
#[derive(Default)]
pub(crate) struct Texts {
    made: hashbrown::HashMap<String, Py<PyString>>,
    /// Make every text anew (`Texts::uncached`).
    uncached: bool,
    /// Every key and text as `frames.safe_text` gives it (`Texts::safe`).
    safe: bool,
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
            safe: false,
        }
    }

    /// As `uncached`, every key and text escaped as `frames.safe_text` does (`text::safe_text`).
    pub(crate) fn safe() -> Self {
        Texts {
            safe: true,
            ..Texts::uncached()
        }
    }

    pub(super) fn get<'py>(&mut self, py: Python<'py>, text: &str) -> Bound<'py, PyString> {
        if self.safe {
            return PyString::new(py, &crate::text::safe_text(text));
        }
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
        Value::String(s) if texts.safe => texts.get(py, s).into_any(),
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
