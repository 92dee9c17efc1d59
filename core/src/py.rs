//! The Python module `portwatch._core`: what Python calls, converted at the boundary only.
use pyo3::prelude::*;

/// The shipped signature files as (file name, TOML text) pairs.
#[pyfunction]
fn builtin_signatures() -> Vec<(&'static str, &'static str)> {
    crate::detect::builtin::BUILTIN.to_vec()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(builtin_signatures, m)?)?;
    Ok(())
}
