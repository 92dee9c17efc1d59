//! The signature set and its engine as Python loads, checks and queries them.
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::convert::to_py;
use super::transport;
use crate::detect::engine::{Engine, Transport};
use crate::detect::signature;
use crate::meta::Value;

/// The shipped signature files as (file name, TOML text) pairs.
#[pyfunction]
pub(super) fn builtin_signatures() -> Vec<(&'static str, &'static str)> {
    crate::detect::builtin::BUILTIN.to_vec()
}

/// Every problem of every file, as `file:line: field: problem` lines (empty when all are valid).
#[pyfunction]
pub(super) fn check_signatures(paths: Vec<PathBuf>) -> Vec<String> {
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
#[pyclass(name = "Engine", module = "portwatch._core", frozen)]
pub(super) struct PyEngine {
    pub(super) engine: Arc<Engine>,
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

/// Entropy facts of a unit, as the engine stores them in `meta.entropy_client` (policy tests).
#[pyfunction]
pub(super) fn entropy_facts<'py>(py: Python<'py>, data: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
    to_py(
        py,
        &Value::Object(crate::detect::entropy::entropy_facts(&data)),
    )
}
