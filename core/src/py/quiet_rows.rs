//! A quiet record's row for the table formats, made without the Python record: the tuple
//! `SqliteWriter.write_flow` makes of it (`portwatch/report/sqlite.py`), the one Parquet's
//! `to_row` makes (`portwatch/report/parquet.py`), or the one a notebook's frame gathers
//! (`frames.FlowRows.add`).
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use super::convert::Texts;
use super::meta::PyMeta;
use crate::compact_json::{push_array, push_str};
use crate::record::FlowRecord;
use crate::tunnel::pyfmt::{micros_in_i64 as micros, round_to};

/// `rec`'s SQLite `flows` row with `assigned` and no findings, in the table's column order: the flow id
/// as text, `confidence` as Python's `round(x, 3)`, `assigned` and `meta` as Python's compact JSON
/// (`json.dumps(..., ensure_ascii=False, separators=(",", ":"))`), findings `[]`.
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
    let pcap = match &rec.pcap {
        Some(p) => texts.get(py, p).into_any(),
        None => py.None().into_bound(py),
    };
    let fields: [Bound<'py, PyAny>; 23] = [
        PyString::new(py, itoa::Buffer::new().format(rec.flow_id)).into_any(),
        PyString::new(py, &rec.community_id).into_any(),
        pcap,
        rec.ts_start.into_pyobject(py)?.into_any(),
        rec.ts_end.into_pyobject(py)?.into_any(),
        rec.duration.into_pyobject(py)?.into_any(),
        texts.get(py, rec.transport).into_any(),
        PyString::new(py, &rec.src_ip).into_any(),
        rec.src_port.into_pyobject(py)?.into_any(),
        PyString::new(py, &rec.dst_ip).into_any(),
        rec.dst_port.into_pyobject(py)?.into_any(),
        texts.get(py, rec.orientation).into_any(),
        texts.get(py, &rec.protocol).into_any(),
        round_to(rec.confidence, 3).into_pyobject(py)?.into_any(),
        texts.get(py, &names).into_any(),
        rec.packets_c2s.into_pyobject(py)?.into_any(),
        rec.packets_s2c.into_pyobject(py)?.into_any(),
        rec.bytes_c2s.into_pyobject(py)?.into_any(),
        rec.bytes_s2c.into_pyobject(py)?.into_any(),
        texts.get(py, rec.state).into_any(),
        PyString::new(py, &rec.history).into_any(),
        PyString::new(py, &crate::pyjson::dumps_compact(&rec.meta)).into_any(),
        intern!(py, "[]").clone().into_any(),
    ];
    PyTuple::new(py, fields)
}

/// `rec`'s Parquet row with `assigned` and no findings, in `SCHEMA`'s order: times as whole
/// microseconds (`_micros`: Python's `round(ts * 1e6)`), `meta` as Python's sorted JSON
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
    let pcap = match &rec.pcap {
        Some(p) => texts.get(py, p).into_any(),
        None => py.None().into_bound(py),
    };
    let names = PyList::new(py, assigned.iter().map(|name| texts.get(py, name)))?;
    let fields: [Bound<'py, PyAny>; 23] = [
        PyString::new(py, itoa::Buffer::new().format(rec.flow_id)).into_any(),
        PyString::new(py, &rec.community_id).into_any(),
        pcap,
        start.into_pyobject(py)?.into_any(),
        end.into_pyobject(py)?.into_any(),
        rec.duration.into_pyobject(py)?.into_any(),
        texts.get(py, rec.transport).into_any(),
        PyString::new(py, &rec.src_ip).into_any(),
        rec.src_port.into_pyobject(py)?.into_any(),
        PyString::new(py, &rec.dst_ip).into_any(),
        rec.dst_port.into_pyobject(py)?.into_any(),
        texts.get(py, rec.orientation).into_any(),
        texts.get(py, &rec.protocol).into_any(),
        round_to(rec.confidence, 3).into_pyobject(py)?.into_any(),
        names.into_any(),
        rec.packets_c2s.into_pyobject(py)?.into_any(),
        rec.packets_s2c.into_pyobject(py)?.into_any(),
        rec.bytes_c2s.into_pyobject(py)?.into_any(),
        rec.bytes_s2c.into_pyobject(py)?.into_any(),
        texts.get(py, rec.state).into_any(),
        PyString::new(py, &rec.history).into_any(),
        PyString::new(py, &crate::pyjson::dumps_sorted(&rec.meta)).into_any(),
        PyList::empty(py).into_any(),
    ];
    PyTuple::new(py, fields).map(Some)
}

/// `rec`'s row for a notebook's frame with `assigned` and no findings: `FlowRows.add`'s tuple,
/// `FlowRecord`'s fields in `FLOW_COLUMNS`' order, `confidence` rounded as Python rounds, `meta`
/// the core's map (made a safe dict by the frame, `Meta.safe_dict`).
pub(super) fn frame_row<'py>(
    py: Python<'py>,
    rec: &FlowRecord,
    assigned: &[String],
    meta: Bound<'py, PyMeta>,
    texts: &mut Texts,
) -> PyResult<Bound<'py, PyTuple>> {
    let pcap = match &rec.pcap {
        Some(p) => texts.get(py, p).into_any(),
        None => py.None().into_bound(py),
    };
    let names = PyTuple::new(py, assigned.iter().map(|name| texts.get(py, name)))?;
    let fields: [Bound<'py, PyAny>; 23] = [
        rec.flow_id.into_pyobject(py)?.into_any(),
        PyString::new(py, &rec.community_id).into_any(),
        pcap,
        rec.ts_start.into_pyobject(py)?.into_any(),
        rec.ts_end.into_pyobject(py)?.into_any(),
        rec.duration.into_pyobject(py)?.into_any(),
        texts.get(py, rec.transport).into_any(),
        PyString::new(py, &rec.src_ip).into_any(),
        rec.src_port.into_pyobject(py)?.into_any(),
        PyString::new(py, &rec.dst_ip).into_any(),
        rec.dst_port.into_pyobject(py)?.into_any(),
        texts.get(py, rec.orientation).into_any(),
        texts.get(py, &rec.protocol).into_any(),
        round_to(rec.confidence, 3).into_pyobject(py)?.into_any(),
        names.into_any(),
        rec.packets_c2s.into_pyobject(py)?.into_any(),
        rec.packets_s2c.into_pyobject(py)?.into_any(),
        rec.bytes_c2s.into_pyobject(py)?.into_any(),
        rec.bytes_s2c.into_pyobject(py)?.into_any(),
        texts.get(py, rec.state).into_any(),
        PyString::new(py, &rec.history).into_any(),
        meta.into_any(),
        PyTuple::empty(py).into_any(),
    ];
    PyTuple::new(py, fields)
}
