//! `portwatch._core.record_line`: a flow record's JSON line, written here from the record's
//! fields, for the JSON-lines writer.
//!
//! The bytes are those of `orjson.dumps(rec.as_dict(copy=False), default=jsonl._fragment,
//! option=OPT_APPEND_NEWLINE)`, without the dict: building a record's dict of 23 keys and
//! handing its meta to orjson through a Python callback took more of Python's thread at the
//! end of a capture than the policy did. The fields are read from the record as it is now, so a
//! record changed after the core made it is written as changed. A value the dict's path would
//! treat differently from a plain scalar (a subclass, an integer past 64 bits, a text with a
//! lone surrogate, a meta that is already a dict, a finding of another type) makes the answer
//! None, and the writer takes that path. Field order and rounding follow `FlowRecord.as_dict`;
//! tests/core/test_record_line.py checks the bytes against it.
#![forbid(unsafe_code)]

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyList, PyString, PyType};

use crate::py::meta::PyMeta;
use crate::record::LINE_FIELDS;
use crate::tunnel::pyfmt::round_to;

/// A value this writer leaves to the dict's path.
struct Unsupported;

type Written = Result<(), Unsupported>;

/// None, a bool, an int within 64 bits, a float or a text, exactly those types: as orjson
/// writes it (a float that is not finite as null).
fn scalar(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> Written {
    if obj.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(s) = obj.cast_exact::<PyString>() {
        let text = s.to_str().map_err(|_| Unsupported)?;
        crate::compact_json::push_str(out, text);
    } else if let Ok(f) = obj.cast_exact::<PyFloat>() {
        serde_json::to_writer(&mut *out, &f.value()).map_err(|_| Unsupported)?;
    } else if let Ok(b) = obj.cast_exact::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if obj.cast_exact::<PyInt>().is_ok() {
        if let Ok(i) = obj.extract::<i64>() {
            out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        } else if let Ok(u) = obj.extract::<u64>() {
            out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
        } else {
            return Err(Unsupported);
        }
    } else {
        return Err(Unsupported);
    }
    Ok(())
}

/// `round(x, 3)` of a float (an int stays as it is), written as `scalar` would.
fn rounded(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> Written {
    match obj.cast_exact::<PyFloat>() {
        Ok(f) => serde_json::to_writer(&mut *out, &round_to(f.value(), 3)).map_err(|_| Unsupported),
        Err(_) if obj.cast_exact::<PyInt>().is_ok() => scalar(out, obj),
        Err(_) => Err(Unsupported),
    }
}

/// A list (exactly) of scalars.
fn scalars(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> Written {
    let list = obj.cast_exact::<PyList>().map_err(|_| Unsupported)?;
    out.push(b'[');
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        scalar(out, &item)?;
    }
    out.push(b']');
    Ok(())
}

/// `[f.as_dict() for f in findings]`, each finding of exactly `finding_type`.
fn findings(
    out: &mut Vec<u8>,
    obj: &Bound<'_, PyAny>,
    finding_type: &Bound<'_, PyType>,
) -> Written {
    let py = obj.py();
    let list = obj.cast_exact::<PyList>().map_err(|_| Unsupported)?;
    let keys = [
        (&b"{\"kind\":"[..], intern!(py, "kind")),
        (&b",\"severity\":"[..], intern!(py, "severity")),
        (&b",\"message\":"[..], intern!(py, "message")),
    ];
    out.push(b'[');
    for (i, f) in list.iter().enumerate() {
        if !f.get_type().is(finding_type) {
            return Err(Unsupported);
        }
        if i > 0 {
            out.push(b',');
        }
        for (key, attr) in &keys {
            out.extend_from_slice(key);
            scalar(out, &f.getattr(*attr).map_err(|_| Unsupported)?)?;
        }
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

/// A record's meta: the core's map as its JSON; a dict (or anything else) is the dict path's.
fn meta(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> Written {
    let meta = obj.cast_exact::<PyMeta>().map_err(|_| Unsupported)?;
    let meta = meta.try_borrow().map_err(|_| Unsupported)?;
    match meta.append_json(out) {
        Ok(true) => Ok(()),
        _ => Err(Unsupported),
    }
}

/// How each field is written.
#[derive(Clone, Copy)]
enum Kind {
    Scalar,
    /// `pcap`: left out when None.
    Optional,
    Rounded,
    Scalars,
    Meta,
    Findings,
}

impl Kind {
    fn of(field: &str) -> Kind {
        match field {
            "pcap" => Kind::Optional,
            "confidence" => Kind::Rounded,
            "assigned" => Kind::Scalars,
            "meta" => Kind::Meta,
            "findings" => Kind::Findings,
            _ => Kind::Scalar,
        }
    }
}

/// `record::LINE_FIELDS` with each one's name as a Python string (a `getattr` by `&str` makes
/// one each time) and how it is written, made once.
fn fields(py: Python<'_>) -> &[(&'static str, Py<PyString>, Kind)] {
    static FIELDS: PyOnceLock<Vec<(&'static str, Py<PyString>, Kind)>> = PyOnceLock::new();
    FIELDS.get_or_init(py, || {
        LINE_FIELDS
            .iter()
            .map(|name| (*name, PyString::intern(py, name).unbind(), Kind::of(name)))
            .collect()
    })
}

fn line(rec: &Bound<'_, PyAny>, finding_type: &Bound<'_, PyType>, out: &mut Vec<u8>) -> Written {
    let py = rec.py();
    out.push(b'{');
    let mut first = true;
    for (name, attr, kind) in fields(py) {
        let value = rec.getattr(attr.bind(py)).map_err(|_| Unsupported)?;
        if matches!(kind, Kind::Optional) && value.is_none() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match kind {
            Kind::Scalar | Kind::Optional => scalar(out, &value)?,
            Kind::Rounded => rounded(out, &value)?,
            Kind::Scalars => scalars(out, &value)?,
            Kind::Meta => meta(out, &value)?,
            Kind::Findings => findings(out, &value, finding_type)?,
        }
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// `rec` (a `FlowRecord`) as its JSON line, newline included, or None when one of its values
/// is for `FlowRecord.as_dict` and orjson to write (see the module's comment).
#[pyfunction]
pub fn record_line<'py>(
    rec: &Bound<'py, PyAny>,
    finding_type: &Bound<'py, PyType>,
) -> Option<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(1024);
    line(rec, finding_type, &mut out).ok()?;
    Some(PyBytes::new(rec.py(), &out))
}
