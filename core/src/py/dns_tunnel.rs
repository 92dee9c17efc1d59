//! `portwatch._core.DnsTunnelTracker`: `dns_tunnel::Tracker` for the DNS-tunnel policy, reading
//! a flow record's facts where they lie (the core's map of a `Meta`, else the mapping's own).
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::dns_name::{split_name, NameParts};
use crate::dns_tunnel::{Query, Settings, Socket, Tracker};
use crate::meta::{FlowMeta, Value};
use crate::py::convert::{value_to_py, Texts};
use crate::py::meta::PyMeta;
use crate::record::FlowRecord;

/// The policy's constants, as a dict of these names.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct PySettings {
    max_domains: usize,
    max_names: usize,
    long_label: usize,
    long_data: usize,
    min_char_entropy: f64,
    large_answer: u64,
    agg_suspicious_names: u64,
    agg_suspicious_share: f64,
    agg_unusual_queries: u64,
    agg_unusual_names: u64,
    flow_queries: u64,
    unusual_qtypes: HashSet<String>,
    not_resolution: HashSet<String>,
    second_levels: HashSet<String>,
    allowed: HashSet<String>,
}

/// (query name, query type, (domain, longest data label, data, suspicious), large answer,
/// reasons): what `account` hands the policy to word.
pub(crate) type PySignal = (
    String,
    String,
    (String, usize, String, bool),
    Option<String>,
    Vec<String>,
);

/// The DNS-tunnel bookkeeping of one policy context (`account(record)` for each DNS record).
#[pyclass(module = "portwatch._core", name = "DnsTunnelTracker")]
pub struct PyDnsTunnelTracker {
    tracker: Tracker,
    second_levels: HashSet<String>,
    /// Splits a name with characters past ASCII by Python's rules (the policy's `split_name`):
    /// its lowercase and its digits are Unicode's there.
    split_other: Py<PyAny>,
}

/// A record's DNS facts, borrowed from the core's map or owned from a Python mapping.
struct Facts<'a> {
    qname: Cow<'a, str>,
    qtype: Cow<'a, str>,
    answers: Vec<Cow<'a, str>>,
}

impl PyDnsTunnelTracker {
    /// `account` of the Python record the core would make of `rec`, with `assigned` its
    /// services' names: for records the core hands over as lines (`py::convert`), so that every
    /// DNS record is counted in its order whichever way it goes.
    pub(crate) fn account_record(
        &mut self,
        py: Python<'_>,
        rec: &FlowRecord,
        assigned: &[String],
    ) -> PyResult<Option<PySignal>> {
        if &*rec.protocol != "dns" || assigned.iter().any(|n| self.tracker.not_resolution(n)) {
            return Ok(None);
        }
        let Some(facts) = core_facts(py, &rec.meta)? else {
            return Ok(None);
        };
        let socket = Socket {
            src_ip: rec.src_ip.clone(),
            src_port: i64::from(rec.src_port),
            dst_ip: rec.dst_ip.clone(),
            dst_port: i64::from(rec.dst_port),
            ts_start: if rec.ts_start == 0.0 {
                0
            } else {
                rec.ts_start.to_bits()
            },
        };
        let packets = i64::try_from(rec.packets_c2s).unwrap_or(i64::MAX);
        self.account_facts(py, &facts, packets, socket)
    }

    fn account_facts(
        &mut self,
        py: Python<'_>,
        facts: &Facts<'_>,
        packets: i64,
        socket: Socket,
    ) -> PyResult<Option<PySignal>> {
        let Self {
            tracker,
            second_levels,
            split_other,
        } = self;
        let failed: RefCell<Option<PyErr>> = RefCell::new(None);
        let split = |name: &str| -> Option<NameParts> {
            if name.is_ascii() {
                return split_name(name, |label| second_levels.contains(label));
            }
            match split_other
                .call1(py, (name,))
                .and_then(|r| r.extract::<Option<(String, String, usize)>>(py))
            {
                Ok(parts) => parts.map(|(domain, data, longest_label)| NameParts {
                    domain,
                    data,
                    longest_label,
                }),
                Err(e) => {
                    failed.borrow_mut().get_or_insert(e);
                    None
                }
            }
        };
        let answers: Vec<&str> = facts.answers.iter().map(|a| a.as_ref()).collect();
        let query = Query {
            qname: &facts.qname,
            qtype: &facts.qtype,
            packets,
            socket,
            answers: &answers,
        };
        let signal = tracker.account(&query, &split);
        if let Some(e) = failed.into_inner() {
            return Err(e);
        }
        Ok(signal.map(|s| {
            let p = s.shape.parts;
            (
                facts.qname.to_string(),
                facts.qtype.to_string(),
                (p.domain, p.longest_label, p.data, s.shape.suspicious),
                s.answer,
                s.reasons,
            )
        }))
    }
}

/// An integer field of a record (a count, a port) as a number: an int or anything with
/// `__index__` as it is, a float cut to an integer, anything else -1. A record made by hand with an
/// odd value is still counted rather than failing the policy.
fn int_like(obj: &Bound<'_, PyAny>) -> i64 {
    obj.extract::<i64>()
        .or_else(|_| obj.extract::<f64>().map(|f| f as i64))
        .unwrap_or(-1)
}

/// The facts of a core map: None when it has no query name that is text. Looked up a fact at
/// a time (a frozen map is not decoded whole for three of its facts).
fn core_facts<'a>(py: Python<'_>, meta: &'a FlowMeta) -> PyResult<Option<Facts<'a>>> {
    let Some(Ok(qname)) = meta.value_of("dns_query").map(text_of) else {
        return Ok(None);
    };
    let qtype = match meta.value_of("dns_qtype").map(text_of) {
        None => "".into(),
        Some(Ok(text)) => text,
        // Whatever else a map holds reads as Python's str() of it, as the policy read it.
        Some(Err(other)) => value_to_py(py, &other, &mut Texts::uncached())?
            .str()?
            .to_string()
            .into(),
    };
    let answers = match meta.value_of("dns_answers") {
        Some(Cow::Borrowed(Value::Array(items))) => items
            .iter()
            .filter_map(|v| v.as_str())
            .map(Into::into)
            .collect(),
        Some(Cow::Owned(Value::Array(items))) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(Cow::Owned(s)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Some(Facts {
        qname,
        qtype,
        answers,
    }))
}

/// A text value as a text, borrowed where the value is; any other value as it is.
fn text_of(value: Cow<'_, Value>) -> Result<Cow<'_, str>, Cow<'_, Value>> {
    match value {
        Cow::Borrowed(Value::String(s)) => Ok(Cow::Borrowed(s.as_str())),
        Cow::Owned(Value::String(s)) => Ok(Cow::Owned(s)),
        other => Err(other),
    }
}

/// The facts of any other mapping (a dict of a record made in Python, a `Meta` made a dict).
fn mapping_facts(meta: &Bound<'_, PyAny>) -> PyResult<Option<Facts<'static>>> {
    let py = meta.py();
    let get = intern!(py, "get");
    let qname = meta.call_method1(get, (intern!(py, "dns_query"),))?;
    let Ok(qname) = qname.cast::<PyString>() else {
        return Ok(None);
    };
    let qtype = meta
        .call_method1(get, (intern!(py, "dns_qtype"), ""))?
        .str()?
        .to_string();
    let answers = meta.call_method1(get, (intern!(py, "dns_answers"),))?;
    let items = if let Ok(list) = answers.cast::<PyList>() {
        list.iter().collect::<Vec<_>>()
    } else if let Ok(tuple) = answers.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        Vec::new()
    };
    let answers = items
        .iter()
        .filter_map(|a| a.cast::<PyString>().ok())
        .map(|a| a.to_str().map(|s| s.to_owned().into()))
        .collect::<PyResult<_>>()?;
    Ok(Some(Facts {
        qname: qname.to_str()?.to_owned().into(),
        qtype: qtype.into(),
        answers,
    }))
}

#[pymethods]
impl PyDnsTunnelTracker {
    #[new]
    fn new(settings: PySettings, split_other: Py<PyAny>) -> Self {
        let s = settings;
        PyDnsTunnelTracker {
            tracker: Tracker::new(Settings {
                max_domains: s.max_domains,
                max_names: s.max_names,
                long_label: s.long_label,
                long_data: s.long_data,
                min_char_entropy: s.min_char_entropy,
                large_answer: s.large_answer,
                agg_suspicious_names: s.agg_suspicious_names,
                agg_suspicious_share: s.agg_suspicious_share,
                agg_unusual_queries: s.agg_unusual_queries,
                agg_unusual_names: s.agg_unusual_names,
                flow_queries: s.flow_queries,
                unusual_qtypes: s.unusual_qtypes,
                not_resolution: s.not_resolution,
                allowed: s.allowed,
            }),
            second_levels: s.second_levels,
            split_other,
        }
    }

    /// Count one flow record (any record: only DNS resolution ones are counted); what it
    /// showed (`PySignal`) when it, or its domain so far, looks like a tunnel, else None.
    fn account(&mut self, rec: &Bound<'_, PyAny>) -> PyResult<Option<PySignal>> {
        let py = rec.py();
        let protocol = rec.getattr(intern!(py, "protocol"))?;
        if !protocol
            .cast::<PyString>()
            .is_ok_and(|p| p.to_str().is_ok_and(|p| p == "dns"))
        {
            return Ok(None);
        }
        for service in rec.getattr(intern!(py, "assigned"))?.try_iter()? {
            let service = service?;
            if let Ok(name) = service.cast::<PyString>() {
                if self.tracker.not_resolution(name.to_str()?) {
                    return Ok(None);
                }
            }
        }
        let packets = int_like(&rec.getattr(intern!(py, "packets_c2s"))?);
        let ts: f64 = rec
            .getattr(intern!(py, "ts_start"))?
            .extract()
            .unwrap_or(0.0);
        let text =
            |name| -> PyResult<String> { Ok(rec.getattr(name)?.extract().unwrap_or_default()) };
        let socket = Socket {
            src_ip: text(intern!(py, "src_ip"))?,
            src_port: int_like(&rec.getattr(intern!(py, "src_port"))?),
            dst_ip: text(intern!(py, "dst_ip"))?,
            dst_port: int_like(&rec.getattr(intern!(py, "dst_port"))?),
            ts_start: if ts == 0.0 { 0 } else { ts.to_bits() },
        };
        let meta = rec.getattr(intern!(py, "meta"))?;
        if let Ok(core) = meta.cast::<PyMeta>() {
            let core = core.try_borrow()?;
            if let Some(map) = core.core_map() {
                return match core_facts(py, map)? {
                    Some(facts) => self.account_facts(py, &facts, packets, socket),
                    None => Ok(None),
                };
            }
        }
        match mapping_facts(&meta)? {
            Some(facts) => self.account_facts(py, &facts, packets, socket),
            None => Ok(None),
        }
    }

    /// The registered domains the site expects encoded names under (replacing any before).
    fn set_allowed(&mut self, allowed: HashSet<String>) {
        self.tracker.set_allowed(allowed);
    }

    /// Domains pushed out to keep `max_domains`.
    #[getter]
    fn evicted(&self) -> u64 {
        self.tracker.evicted
    }

    /// Domains kept.
    fn __len__(&self) -> usize {
        self.tracker.domain_count()
    }

    /// A kept domain's counts (a dict), None when it is not kept.
    fn counts<'py>(&self, py: Python<'py>, domain: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(c) = self.tracker.counts(domain) else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("remembered_names", c.remembered_names)?;
        d.set_item("unique", c.unique)?;
        d.set_item("suspicious", c.suspicious)?;
        d.set_item("unusual_queries", c.unusual_queries)?;
        d.set_item("queries", c.queries)?;
        d.set_item("longest_label", c.longest_label)?;
        d.set_item("max_entropy", c.max_entropy)?;
        Ok(Some(d))
    }
}
