//! The Python module `portwatch._core`: what Python calls, converted at the boundary only.
//!
//! Python never sees a packet: it opens a capture, asks the analyzer to run over up to N packets
//! at a time (the GIL released meanwhile) and receives the flow records that ended, as instances
//! of the class it names (`record_type`), their `meta` a `meta::PyMeta`.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::bpf::{Filter, Insn, Program};
use crate::detect::engine::Transport;

mod analyzer;
mod capture;
pub(crate) mod convert;
pub(crate) mod dns_name;
pub(crate) mod dns_tunnel;
pub(crate) mod line;
pub(crate) mod meta;
mod monitor;
mod quiet_rows;
mod signatures;
mod tally;

use analyzer::PyAnalyzer;
use capture::{filter_capture, flow_packets, PyCapture};
use meta::PyMeta;
use monitor::PyLiveMonitor;
use signatures::{builtin_signatures, check_signatures, entropy_facts, PyEngine};

pyo3::create_exception!(
    _core,
    CaptureError,
    PyOSError,
    "A capture that cannot be opened or read."
);

fn transport(name: &str) -> PyResult<Transport> {
    match name {
        "tcp" => Ok(Transport::Tcp),
        "udp" => Ok(Transport::Udp),
        other => Err(PyValueError::new_err(format!(
            "unknown transport {other:?}"
        ))),
    }
}

/// Programs by link type as `portwatch.bpf` compiles them: (code, jt, jf, k) each, or None
/// where the expression does not apply to the link type.
type Programs = std::collections::HashMap<u32, Option<Vec<(u16, u8, u8, u32)>>>;

/// A capture filter from Python's programs, each checked as the kernel checks one.
fn filter_from(programs: Programs) -> PyResult<Filter> {
    let mut by_link = hashbrown::HashMap::new();
    for (linktype, insns) in programs {
        let program = match insns {
            None => None,
            Some(v) => {
                let insns = v
                    .into_iter()
                    .map(|(code, jt, jf, k)| Insn { code, jt, jf, k })
                    .collect();
                Some(Program::new(insns).map_err(|e| PyValueError::new_err(e.0))?)
            }
        };
        by_link.insert(linktype, program);
    }
    Ok(Filter::new(by_link))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CaptureError", m.py().get_type::<CaptureError>())?;
    m.add("CSV_META_COLUMNS", crate::csv_line::META_COLUMNS.to_vec())?;
    m.add("MAX_WORKERS", crate::parallel::MAX_WORKERS)?;
    m.add_function(wrap_pyfunction!(builtin_signatures, m)?)?;
    m.add_function(wrap_pyfunction!(check_signatures, m)?)?;
    m.add_function(wrap_pyfunction!(filter_capture, m)?)?;
    m.add_function(wrap_pyfunction!(flow_packets, m)?)?;
    m.add_function(wrap_pyfunction!(entropy_facts, m)?)?;
    m.add_function(wrap_pyfunction!(line::record_line, m)?)?;
    m.add_function(wrap_pyfunction!(meta::json_records, m)?)?;
    m.add_class::<dns_name::DnsNameSplitter>()?;
    m.add_class::<dns_tunnel::PyDnsTunnelTracker>()?;
    m.add_class::<tally::PyQuietTally>()?;
    m.add_class::<tally::PyQuietLines>()?;
    m.add_class::<PyEngine>()?;
    m.add_class::<PyCapture>()?;
    m.add_class::<PyAnalyzer>()?;
    m.add_class::<PyLiveMonitor>()?;
    m.add_class::<PyMeta>()?;
    crate::tunnel::py::register(m)?;
    Ok(())
}
