//! `portwatch._core.Meta`: a record's metadata as Python sees it, a mapping that stays the
//! core's map until Python needs more than a look at it.
//!
//! Most records are written out without anyone reading their metadata beyond a key or two (the
//! policy's `get`s), yet a TLS or SSH record's meta is a hundred-odd Python objects (the packet
//! shape's sizes and gaps). Held as the core's map, a lookup of a text or a number converts that
//! value only, and a JSON writer takes the map's own serialization (`json()`, `compact_json`:
//! serde_json's bytes, the same as orjson writes for the dict). Anything else (iteration, a
//! nested value, any change, equality, pickling) turns it into a real dict first, once, and goes
//! on with that dict: what Python code sees and changes is then a plain dict's behaviour.
#![forbid(unsafe_code)]

use pyo3::basic::CompareOp;
use pyo3::exceptions::PyKeyError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::ahead::{Home, Spent};
use crate::meta::{python_json, FlowMeta, Meta, Value};
use crate::py::convert::{object_to_py, value_to_py, Texts};
use crate::tunnel::py::from_py;

enum State {
    /// The core's map (as the flow kept it: a frozen buffer is looked up without decoding it
    /// whole), not converted yet, and its JSON if the core serialized it already.
    Core(FlowMeta, Option<Vec<u8>>),
    /// Converted: a real dict, which every operation now uses.
    Dict(Py<PyDict>),
}

#[pyclass(name = "Meta", module = "portwatch._core", mapping)]
pub struct PyMeta {
    state: State,
    /// The thread that made the map, to free it there (`ahead::Home`).
    home: Option<Home>,
}

impl PyMeta {
    pub fn new(meta: FlowMeta) -> Self {
        Self::with_json(meta, None)
    }

    /// `meta` with its JSON as `compact_json` wrote it (on the thread that made the record).
    pub fn with_json(meta: FlowMeta, json: Option<Vec<u8>>) -> Self {
        PyMeta {
            state: State::Core(meta, json),
            home: None,
        }
    }

    /// As `with_json`, the map to be freed by the thread that made it.
    pub fn from_home(meta: FlowMeta, json: Option<Vec<u8>>, home: Home) -> Self {
        PyMeta {
            state: State::Core(meta, json),
            home: Some(home),
        }
    }

    /// The dict this mapping is from now on (converted at the first call).
    pub fn dict<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        if let State::Dict(d) = &self.state {
            return Ok(d.bind(py).clone());
        }
        let State::Core(meta, _) = &self.state else {
            unreachable!("matched above")
        };
        let d = object_to_py(py, &**meta, &mut Texts::uncached())?;
        let before = std::mem::replace(&mut self.state, State::Dict(d.clone().unbind()));
        self.give_back(before);
        Ok(d)
    }

    /// The core's map, while this mapping is still one (None once it is a dict).
    pub(crate) fn core_map(&self) -> Option<&FlowMeta> {
        match &self.state {
            State::Core(meta, _) => Some(meta),
            State::Dict(_) => None,
        }
    }

    /// The JSON object of the core's map (see `json()`) appended to `out`; false once it is a
    /// dict, with nothing appended.
    pub(crate) fn append_json(&self, out: &mut Vec<u8>) -> PyResult<bool> {
        match &self.state {
            State::Dict(_) => Ok(false),
            State::Core(_, Some(json)) => {
                out.extend_from_slice(json);
                Ok(true)
            }
            State::Core(meta, None) => {
                meta.push_json(out);
                Ok(true)
            }
        }
    }
}

impl PyMeta {
    fn give_back(&mut self, state: State) {
        if let (State::Core(meta, json), Some(home)) = (state, self.home.as_ref()) {
            home.give_back(Spent::Meta(meta, json));
        }
    }
}

impl Drop for PyMeta {
    fn drop(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Core(FlowMeta::new(), None));
        self.give_back(state);
    }
}

/// What a look-up of one key found.
enum Lookup<'py> {
    /// The value, converted alone from the core's map.
    Found(Bound<'py, PyAny>),
    Absent,
    /// To be looked up in this dict: the mapping is one already, or has just been made one (a
    /// list or an object asked for with `get` or `[]`, which the caller may change in place, so
    /// it must be the dict's own).
    InDict(Bound<'py, PyDict>),
}

/// `key` in `slf`. With `copy_nested` a list or an object of the core's map is converted alone,
/// a copy (`peek`); without, the mapping becomes its dict for it.
fn lookup<'py>(
    slf: &Bound<'py, PyMeta>,
    key: &Bound<'py, PyAny>,
    copy_nested: bool,
) -> PyResult<Lookup<'py>> {
    let py = slf.py();
    let found = match &slf.try_borrow()?.state {
        State::Dict(d) => return Ok(Lookup::InDict(d.bind(py).clone())),
        State::Core(meta, _) => {
            let Ok(key) = key.cast::<PyString>() else {
                // Not a text: in no map of ours (a dict would say KeyError too).
                return Ok(Lookup::Absent);
            };
            match meta.value_of(key.to_str()?).as_deref() {
                None => return Ok(Lookup::Absent),
                Some(Value::Array(_) | Value::Object(_)) if !copy_nested => None,
                Some(v) => Some(value_to_py(py, v, &mut Texts::uncached())?),
            }
        }
    };
    match found {
        Some(v) => Ok(Lookup::Found(v)),
        // The borrow above has ended: the mapping can become its dict.
        None => Ok(Lookup::InDict(dict_of(slf)?)),
    }
}

/// `get` and `peek`: `key`'s value, else `default` (None if not given).
fn value_or<'py>(
    slf: &Bound<'py, PyMeta>,
    key: &Bound<'py, PyAny>,
    default: Option<Bound<'py, PyAny>>,
    copy_nested: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let default = || default.unwrap_or_else(|| slf.py().None().into_bound(slf.py()));
    Ok(match lookup(slf, key, copy_nested)? {
        Lookup::Found(v) => v,
        Lookup::Absent => default(),
        Lookup::InDict(d) => d.get_item(key)?.unwrap_or_else(default),
    })
}

/// The dict `slf` is from now on, its borrow released before the caller runs any Python code
/// (a key's `__eq__`, a dict method) that might come back to `slf`.
fn dict_of<'py>(slf: &Bound<'py, PyMeta>) -> PyResult<Bound<'py, PyDict>> {
    slf.try_borrow_mut()?.dict(slf.py())
}

#[pymethods]
impl PyMeta {
    /// A dict is unhashable; so is this.
    #[classattr]
    #[allow(non_upper_case_globals)]
    const __hash__: Option<Py<PyAny>> = None;

    /// A mapping over the core's map of `items` (a dict of JSON-like values, converted exactly
    /// and with bounded depth): what a record's meta is, for tests and tools.
    #[new]
    fn py_new(items: &Bound<'_, PyDict>) -> PyResult<Self> {
        match from_py(items.as_any(), 0)? {
            Value::Object(map) => Ok(PyMeta::new(Meta::from(map).into())),
            _ => unreachable!("a dict converts to an object"),
        }
    }

    /// The facts in `text`, a JSON object (an output's `meta` column), as a mapping over the
    /// core's map; None where Python's `json.loads` must read the text (`meta::python_json`).
    #[staticmethod]
    fn from_json(text: &Bound<'_, PyString>) -> Option<Self> {
        let map = python_json::object(text.to_str().ok()?)?;
        Some(PyMeta::new(Meta::from(map).into()))
    }

    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match lookup(slf, key, false)? {
            Lookup::Found(v) => Ok(v),
            Lookup::Absent => Err(PyKeyError::new_err(key.clone().unbind())),
            Lookup::InDict(d) => d.as_any().get_item(key),
        }
    }

    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        value_or(slf, key, default, false)
    }

    /// `key`'s value to read, not to change: a list or an object comes as a new copy, and the
    /// mapping stays the core's map (its JSON still the core's), where `get` makes the dict
    /// first so that a change to the value is a change to the mapping. Once the mapping is a
    /// dict, the dict's own value.
    #[pyo3(signature = (key, default=None))]
    fn peek<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        value_or(slf, key, default, true)
    }

    /// The first reason `listing` gives for one of this map's values: for each (fact, reasons)
    /// of `listing` in its order, where the fact's value is there and not None,
    /// `reasons.get(str(value))` if that is truthy; None when no fact has one. What
    /// `model.listed_reason` loops over for a dict, in one call: the policy asks it of every
    /// record (`insecure_versions`), and most records hold none of the facts, each a `get`
    /// of its own otherwise. A nested value is converted alone, as `peek` does.
    fn listed_reason<'py>(
        slf: &Bound<'py, Self>,
        listing: &Bound<'py, PyDict>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        for (fact, reasons) in listing.iter() {
            let value = value_or(slf, &fact, None, true)?;
            if value.is_none() {
                continue;
            }
            let text = value.str()?;
            let why = match reasons.cast::<PyDict>() {
                Ok(d) => d.get_item(text)?,
                Err(_) => Some(reasons.call_method1(intern!(slf.py(), "get"), (text,))?),
            };
            if let Some(why) = why {
                if why.is_truthy()? {
                    return Ok(Some(why));
                }
            }
        }
        Ok(None)
    }

    fn __contains__(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let dict = match &slf.try_borrow()?.state {
            State::Dict(d) => d.bind(slf.py()).clone(),
            State::Core(meta, _) => {
                return Ok(match key.cast::<PyString>() {
                    Ok(k) => meta.contains_key(k.to_str()?),
                    Err(_) => false,
                })
            }
        };
        dict.contains(key)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        match &self.state {
            State::Dict(d) => d.bind(py).len(),
            State::Core(meta, _) => meta.len(),
        }
    }

    /// The JSON object of the core's map, as orjson would write the dict; None once it is a
    /// dict (Python may have changed it: write the dict).
    fn json<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if let State::Core(_, Some(json)) = &self.state {
            return Ok(Some(PyBytes::new(py, json)));
        }
        let mut bytes = Vec::new();
        Ok(self
            .append_json(&mut bytes)?
            .then(|| PyBytes::new(py, &bytes)))
    }

    /// `json.dumps(self, ensure_ascii=False, sort_keys=True)` of the core's map (the CSV and
    /// Parquet writers' `meta` column, `crate::pyjson`); None once it is a dict.
    fn json_sorted(&self) -> Option<String> {
        match &self.state {
            State::Core(meta, _) => Some(crate::pyjson::dumps_sorted(meta)),
            State::Dict(_) => None,
        }
    }

    /// `json.dumps(self, ensure_ascii=False, separators=(",", ":"))` of the core's map, in its
    /// order (the SQLite writer's `meta` column, `crate::pyjson`); None once it is a dict.
    fn json_compact(&self) -> Option<String> {
        match &self.state {
            State::Core(meta, _) => Some(crate::pyjson::dumps_compact(meta)),
            State::Dict(_) => None,
        }
    }

    /// A new dict of the core's map with every key and text as `frames.safe_text` gives it
    /// (a notebook frame's `meta`), made without a dict between; None once it is a dict.
    fn safe_dict<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        match &self.state {
            State::Core(meta, _) => Ok(Some(object_to_py(py, meta.iter(), &mut Texts::safe())?)),
            State::Dict(_) => Ok(None),
        }
    }

    /// A new dict with the same items (as `dict.copy`).
    fn copy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        dict_of(slf)?.copy()
    }

    /// The dict itself (not a copy): changes to it are changes to this mapping.
    fn to_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        dict_of(slf)
    }

    fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Ok(dict_of(slf)?.as_any().try_iter()?.into_any())
    }

    fn __richcmp__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return Ok(py.NotImplemented());
        }
        let theirs = match other.cast::<PyMeta>() {
            Ok(m) => dict_of(m)?,
            Err(_) => match other.cast::<PyDict>() {
                Ok(d) => d.clone(),
                Err(_) => return Ok(py.NotImplemented()),
            },
        };
        let equal = dict_of(slf)?.as_any().eq(&theirs)?;
        Ok((equal == matches!(op, CompareOp::Eq))
            .into_pyobject(py)?
            .to_owned()
            .into_any()
            .unbind())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(dict_of(slf)?.repr()?.to_str()?.to_owned())
    }

    /// Pickled (a Dask task's records, `copy.deepcopy`) as the dict it is.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let d = dict_of(slf)?;
        PyTuple::new(
            py,
            [
                py.get_type::<PyDict>().into_any(),
                PyTuple::new(py, [d])?.into_any(),
            ],
        )
    }

    fn __setitem__(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        dict_of(slf)?.set_item(key, value)
    }

    fn __delitem__(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        dict_of(slf)?.del_item(key)
    }

    /// Every other dict method (keys, items, values, pop, setdefault, update, clear...): the
    /// dict's own, made first. One implementation of dict's behaviour, errors included.
    fn __getattr__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        dict_of(slf)?.as_any().getattr(name)
    }
}

/// Each of `lines` read as `json.loads` reads it, but for the object at the path `meta_at` (the
/// keys down to a flow's facts: `["meta"]` in a record line, `["portwatch", "meta"]` in an EVE
/// flow event), which comes as a `Meta` over the core's map; None for a line Python's parser
/// must read (not an object, or one it reads otherwise: `meta::python_json`). What
/// `portwatch.read()` does with JSON lines, where `json.loads` and a walk over each meta dict took
/// most of a read.
#[pyfunction]
pub(crate) fn json_records<'py>(
    py: Python<'py>,
    lines: &Bound<'py, PyList>,
    meta_at: Vec<String>,
) -> PyResult<Bound<'py, PyList>> {
    let mut texts = Texts::default();
    let mut out = Vec::with_capacity(lines.len());
    for line in lines.iter() {
        let map = line
            .cast::<PyString>()
            .ok()
            .and_then(|s| s.to_str().ok())
            .and_then(python_json::object);
        out.push(match map {
            Some(map) => record_to_py(py, map, &meta_at, &mut texts)?.into_any(),
            None => py.None().into_bound(py),
        });
    }
    PyList::new(py, out)
}

/// `map` as a dict, the object at the path `meta_at` (if the path leads to one) a `Meta`.
fn record_to_py<'py>(
    py: Python<'py>,
    map: crate::meta::Map<String, Value>,
    meta_at: &[String],
    texts: &mut Texts,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (key, value) in map {
        let value = match (meta_at.split_first(), value) {
            (Some((head, rest)), Value::Object(inner)) if *head == key => {
                if rest.is_empty() {
                    Bound::new(py, PyMeta::new(Meta::from(inner).into()))?.into_any()
                } else {
                    record_to_py(py, inner, rest, texts)?.into_any()
                }
            }
            (_, value) => value_to_py(py, &value, texts)?,
        };
        dict.set_item(texts.get(py, &key), value)?;
    }
    Ok(dict)
}
