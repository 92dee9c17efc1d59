//! A quiet record's row for the table formats, made without the Python record: the tuple
//! `SqliteWriter.write_flow` makes of it (`portwatch/report/sqlite.py`), the one Parquet's
//! `to_row` makes (`portwatch/report/parquet.py`), or the one a notebook's frame gathers
//! (`frames.FlowRows.add`). All three are in `FLOW_COLUMNS`' order, with `confidence` rounded as
//! Python's `round(x, 3)`; they differ in the columns `Spelled` holds.
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use super::convert::{pcap_of, Texts};
use super::meta::PyMeta;
use crate::compact_json::{push_array, push_str};
use crate::record::FlowRecord;
use crate::tunnel::pyfmt::{micros_in_i64 as micros, round_to};

/// The columns each form spells its own way.
struct Spelled<'py> {
    flow_id: Bound<'py, PyAny>,
    ts_start: Bound<'py, PyAny>,
    ts_end: Bound<'py, PyAny>,
    assigned: Bound<'py, PyAny>,
    meta: Bound<'py, PyAny>,
    findings: Bound<'py, PyAny>,
}

fn row<'py>(
    py: Python<'py>,
    rec: &FlowRecord,
    texts: &mut Texts,
    spelled: Spelled<'py>,
) -> PyResult<Bound<'py, PyTuple>> {
    let fields: [Bound<'py, PyAny>; 23] = [
        spelled.flow_id,
        PyString::new(py, &rec.community_id).into_any(),
        pcap_of(py, rec, texts),
        spelled.ts_start,
        spelled.ts_end,
        rec.duration.into_pyobject(py)?.into_any(),
        texts.get(py, rec.transport).into_any(),
        PyString::new(py, &rec.src_ip).into_any(),
        rec.src_port.into_pyobject(py)?.into_any(),
        PyString::new(py, &rec.dst_ip).into_any(),
        rec.dst_port.into_pyobject(py)?.into_any(),
        texts.get(py, rec.orientation).into_any(),
        texts.get(py, &rec.protocol).into_any(),
        round_to(rec.confidence, 3).into_pyobject(py)?.into_any(),
        spelled.assigned,
        rec.packets_c2s.into_pyobject(py)?.into_any(),
        rec.packets_s2c.into_pyobject(py)?.into_any(),
        rec.bytes_c2s.into_pyobject(py)?.into_any(),
        rec.bytes_s2c.into_pyobject(py)?.into_any(),
        texts.get(py, rec.state).into_any(),
        PyString::new(py, &rec.history).into_any(),
        spelled.meta,
        spelled.findings,
    ];
    PyTuple::new(py, fields)
}

/// The flow id as text (the SQLite and Parquet columns are text: the monitor's ids are).
fn flow_id_text<'py>(py: Python<'py>, rec: &FlowRecord) -> Bound<'py, PyAny> {
    PyString::new(py, itoa::Buffer::new().format(rec.flow_id)).into_any()
}

/// `rec`'s SQLite `flows` row with `assigned` and no findings: `assigned` and `meta` as Python's
/// compact JSON (`json.dumps(..., ensure_ascii=False, separators=(",", ":"))`), findings `[]`.
pub(super) fn flows_row<'py>(
    py: Python<'py>,
    rec: &FlowRecord,
    assigned: &[String],
    texts: &mut Texts,
) -> PyResult<Bound<'py, PyTuple>> {
    // json's escapes are serde_json's, compact_json's (`crate::pyjson`).
    let mut names = Vec::new();
    push_array(&mut names, assigned, |out, name| push_str(out, name));
    let names = String::from_utf8(names).unwrap_or_default();
    let spelled = Spelled {
        flow_id: flow_id_text(py, rec),
        ts_start: rec.ts_start.into_pyobject(py)?.into_any(),
        ts_end: rec.ts_end.into_pyobject(py)?.into_any(),
        assigned: texts.get(py, &names).into_any(),
        meta: PyString::new(py, &crate::pyjson::dumps_compact(&rec.meta)).into_any(),
        findings: intern!(py, "[]").clone().into_any(),
    };
    row(py, rec, texts, spelled)
}

/// `rec`'s Parquet row with `assigned` and no findings: times as whole microseconds (`_micros`:
/// Python's `round(ts * 1e6)`), `assigned` a list, `meta` as Python's sorted JSON
/// (`Meta.json_sorted`). None when a time is past what 64-bit microseconds hold: Python then keeps
/// the seconds in the row's `meta`.
pub(super) fn parquet_row<'py>(
    py: Python<'py>,
    rec: &FlowRecord,
    assigned: &[String],
    texts: &mut Texts,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let (Some(start), Some(end)) = (micros(rec.ts_start), micros(rec.ts_end)) else {
        return Ok(None);
    };
    let names = PyList::new(py, assigned.iter().map(|name| texts.get(py, name)))?;
    let spelled = Spelled {
        flow_id: flow_id_text(py, rec),
        ts_start: start.into_pyobject(py)?.into_any(),
        ts_end: end.into_pyobject(py)?.into_any(),
        assigned: names.into_any(),
        meta: PyString::new(py, &crate::pyjson::dumps_sorted(&rec.meta)).into_any(),
        findings: PyList::empty(py).into_any(),
    };
    row(py, rec, texts, spelled).map(Some)
}

/// `rec`'s row for a notebook's frame with `assigned` and no findings: the flow id a number,
/// `assigned` a tuple, `meta` the core's map (made a safe dict by the frame, `Meta.safe_dict`),
/// findings `()`.
pub(super) fn frame_row<'py>(
    py: Python<'py>,
    rec: &FlowRecord,
    assigned: &[String],
    meta: Bound<'py, PyMeta>,
    texts: &mut Texts,
) -> PyResult<Bound<'py, PyTuple>> {
    let names = PyTuple::new(py, assigned.iter().map(|name| texts.get(py, name)))?;
    let spelled = Spelled {
        flow_id: rec.flow_id.into_pyobject(py)?.into_any(),
        ts_start: rec.ts_start.into_pyobject(py)?.into_any(),
        ts_end: rec.ts_end.into_pyobject(py)?.into_any(),
        assigned: names.into_any(),
        meta: meta.into_any(),
        findings: PyTuple::empty(py).into_any(),
    };
    row(py, rec, texts, spelled)
}
