//! `portwatch._core.tunnel_*`: the classifier for Python's `portwatch.tunnels` (its only
//! implementation), for tests, notebooks and benchmarks/tunnel_eval.py. Python values are
//! converted exactly (floats as floats, no text round trip) and with bounded depth.
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::features::{self, Sequence, MAX_SIZE, MODEL_FEATURES, NAMES};
use super::forest::{Model, Tree};
use crate::meta::{Map, Meta, Value};
use crate::py::convert::to_py;
use crate::py::meta::PyMeta;

/// Deepest Python value converted (a model tree is ~6 levels, a record's meta ~4).
const MAX_DEPTH: usize = 64;

pub(crate) fn from_py(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err("value nested too deeply"));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(i.into());
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(u.into());
        }
        return Err(PyValueError::new_err("integer out of range"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let x = f.value();
        return serde_json::Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err("not a finite number"));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(m) = obj.cast::<PyMeta>() {
        // A record's meta: as the dict it becomes.
        let d = m.try_borrow_mut()?.dict(obj.py())?;
        return from_py(d.as_any(), depth);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = Map::new();
        for (k, v) in d.iter() {
            let k: String = k.extract()?;
            m.insert(k, from_py(&v, depth + 1)?);
        }
        return Ok(Value::Object(m));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items = obj
            .try_iter()?
            .map(|x| from_py(&x?, depth + 1))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(Value::Array(items));
    }
    Err(PyValueError::new_err(format!(
        "cannot convert {} to JSON",
        obj.get_type().name()?
    )))
}

fn object(obj: &Bound<'_, PyAny>) -> PyResult<Map<String, Value>> {
    match from_py(obj, 0)? {
        Value::Object(m) => Ok(m),
        _ => Err(PyValueError::new_err("expected a dict")),
    }
}

fn model_from(model: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Model>> {
    let Some(m) = model.filter(|m| !m.is_none()) else {
        return Ok(None);
    };
    Model::from_value(&from_py(m, 0)?)
        .map(Some)
        .map_err(PyValueError::new_err)
}

fn checked(sizes: &[i64]) -> PyResult<()> {
    if sizes
        .iter()
        .any(|s| s.unsigned_abs() > MAX_SIZE.unsigned_abs())
    {
        return Err(PyValueError::new_err("packet size out of range"));
    }
    Ok(())
}

fn sequence_of(
    shape: &Bound<'_, PyAny>,
    protocol: &str,
) -> PyResult<(Map<String, Value>, Sequence)> {
    let shape = object(shape)?;
    let seq = features::sequence(&shape, protocol).ok_or_else(|| {
        PyValueError::new_err("not a shape: sizes and iat_ms must be lists of numbers")
    })?;
    Ok((shape, seq))
}

/// Names and thresholds Python documents and trains with.
#[pyfunction]
fn tunnel_constants(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("features", MODEL_FEATURES.to_vec())?;
    d.set_item("all_features", NAMES.to_vec())?;
    d.set_item("ssh_auth_packets", features::SSH_AUTH_PACKETS)?;
    let min = PyDict::new(py);
    min.set_item("ssh", features::MIN_PACKETS_SSH)?;
    min.set_item("tls", features::MIN_PACKETS_OTHER)?;
    d.set_item("min_packets", min)?;
    d.set_item("small", features::SMALL)?;
    d.set_item("full", features::FULL)?;
    let confident = super::shipped().map_or(super::forest::DEFAULT_CONFIDENT, |m| m.confident);
    d.set_item("confident", confident)?;
    Ok(d)
}

/// The shipped model's JSON text (what the core classifies with).
#[pyfunction]
fn tunnel_model_json() -> &'static str {
    super::MODEL_JSON
}

#[pyfunction]
#[pyo3(signature = (shape, protocol = "tls"))]
fn tunnel_sequence(shape: &Bound<'_, PyAny>, protocol: &str) -> PyResult<(Vec<i64>, Vec<f64>)> {
    let (_, seq) = sequence_of(shape, protocol)?;
    Ok((seq.sizes, seq.iats))
}

#[pyfunction]
fn tunnel_turns(sizes: Vec<i64>) -> PyResult<Vec<(i64, i64)>> {
    checked(&sizes)?;
    Ok(features::turns(&sizes))
}

#[pyfunction]
fn tunnel_opens(sizes: Vec<i64>, iats: Vec<f64>) -> PyResult<Vec<i64>> {
    checked(&sizes)?;
    Ok(features::opens(&sizes, &iats))
}

#[pyfunction]
fn tunnel_server_opens(sizes: Vec<i64>, iats: Vec<f64>) -> PyResult<usize> {
    checked(&sizes)?;
    Ok(features::server_opens(&sizes, &iats))
}

#[pyfunction]
fn tunnel_keystrokes(sizes: Vec<i64>, iats: Vec<f64>) -> PyResult<usize> {
    checked(&sizes)?;
    Ok(features::keystrokes(&sizes, &iats))
}

#[pyfunction]
fn tunnel_sessions(sizes: Vec<i64>, iats: Vec<f64>) -> usize {
    features::sessions(&sizes, &iats)
}

/// The feature dict of a shape (every feature, in the order Python always listed them); None
/// when the sequence is too short.
#[pyfunction]
#[pyo3(signature = (shape, protocol = "tls"))]
fn tunnel_features<'py>(
    py: Python<'py>,
    shape: &Bound<'py, PyAny>,
    protocol: &str,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let (shape, seq) = sequence_of(shape, protocol)?;
    if seq.sizes.len() < features::min_packets(protocol) {
        return Ok(None);
    }
    let bytes = |k| {
        features::dir_bytes(&shape, k)
            .ok_or_else(|| PyValueError::new_err("shape byte counts not numbers"))
    };
    let Some(f) = features::features(&seq, protocol, bytes("c2s")?, bytes("s2c")?) else {
        return Ok(None);
    };
    let d = PyDict::new(py);
    for (name, v) in NAMES.iter().zip(f.0) {
        d.set_item(name, v)?;
    }
    Ok(Some(d))
}

/// `meta.tunnel_contents` for a flow's meta with `model` (a model dict; the shipped one when
/// None), or None.
#[pyfunction]
#[pyo3(signature = (protocol, meta, model = None))]
fn tunnel_classify<'py>(
    py: Python<'py>,
    protocol: &str,
    meta: &Bound<'py, PyAny>,
    model: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let meta = object(meta)?;
    let given = model_from(model)?;
    let model = match &given {
        Some(m) => m,
        None => super::shipped()
            .ok_or_else(|| PyValueError::new_err("the shipped tunnel model does not load"))?,
    };
    super::classify(protocol, &Meta::from(meta).into(), model)
        .map(|v| to_py(py, &v))
        .transpose()
}

/// (feature, threshold, went <=)
type PathStep = (&'static str, f64, bool);

/// The leaf a tree (a model's tree dict) sends `feats` to, and the path: (feature, threshold,
/// went <=).
#[pyfunction]
fn tunnel_walk<'py>(
    py: Python<'py>,
    tree: &Bound<'py, PyAny>,
    feats: &Bound<'py, PyDict>,
) -> PyResult<(Bound<'py, PyAny>, Vec<PathStep>)> {
    let tree = Tree::from_value(&from_py(tree, 0)?).map_err(PyValueError::new_err)?;
    let mut values = [None; NAMES.len()];
    for (k, v) in feats.iter() {
        let k: String = k.extract()?;
        if let Some(i) = features::index(&k) {
            if let Some(slot) = values.get_mut(i) {
                *slot = Some(v.extract::<f64>()?);
            }
        }
    }
    let (leaf, path) = tree
        .walk_with(|i| values.get(i).copied().flatten(), true)
        .ok_or_else(|| PyKeyError::new_err("a feature the tree splits on is missing"))?;
    let mut l = Map::new();
    l.insert("class".into(), leaf.class.clone().into());
    l.insert("counts".into(), Value::Object(leaf.raw.clone()));
    let path = path
        .into_iter()
        .map(|(i, t, le)| (NAMES.get(i).copied().unwrap_or("?"), t, le))
        .collect();
    Ok((to_py(py, &Value::Object(l))?, path))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tunnel_constants, m)?)?;
    m.add_function(wrap_pyfunction!(tunnel_model_json, m)?)?;
    m.add_function(wrap_pyfunction!(tunnel_sequence, m)?)?;
    m.add_function(wrap_pyfunction!(tunnel_turns, m)?)?;
    m.add_function(wrap_pyfunction!(tunnel_opens, m)?)?;
    m.add_function(wrap_pyfunction!(tunnel_server_opens, m)?)?;
    m.add_function(wrap_pyfunction!(tunnel_keystrokes, m)?)?;
    m.add_function(wrap_pyfunction!(tunnel_sessions, m)?)?;
    m.add_function(wrap_pyfunction!(tunnel_features, m)?)?;
    m.add_function(wrap_pyfunction!(tunnel_classify, m)?)?;
    m.add_function(wrap_pyfunction!(tunnel_walk, m)?)?;
    Ok(())
}
