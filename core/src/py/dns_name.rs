//! `portwatch._core.DnsNameSplitter`: `dns_name::split_name` for the DNS-tunnel policy.
#![forbid(unsafe_code)]

use std::collections::HashSet;

use pyo3::prelude::*;

use crate::dns_name::split_name;

/// Splits ASCII query names (`split(name)`); made once with the policy's list of country
/// second-level labels, which stays the policy's data.
#[pyclass(frozen, module = "portwatch._core")]
pub struct DnsNameSplitter {
    second_levels: HashSet<String>,
}

#[pymethods]
impl DnsNameSplitter {
    #[new]
    fn new(second_levels: HashSet<String>) -> Self {
        DnsNameSplitter { second_levels }
    }

    /// (registered domain, data in front of it, longest data label) of an ASCII name, None
    /// when it has fewer than two labels; a name with other characters is a ValueError (the
    /// caller splits those by Python's rules).
    fn split(&self, name: &str) -> PyResult<Option<(String, String, usize)>> {
        if !name.is_ascii() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "DnsNameSplitter.split takes ASCII names",
            ));
        }
        Ok(split_name(name, |label| self.second_levels.contains(label))
            .map(|p| (p.domain, p.data, p.longest_label)))
    }
}
