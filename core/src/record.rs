//! The flow record handed to Python: the schema's fields the core knows. Python adds what the
//! services database and the policy say (`assigned`, `findings`).
use std::sync::Arc;

use crate::meta::FlowMeta;

/// A record's keys in its JSON line, in `FlowRecord.as_dict`'s order: the line Python's record
/// writes (`py::line`) and the one the core writes for a quiet record (`quiet_lines`).
pub const LINE_FIELDS: [&str; 23] = [
    "flow_id",
    "community_id",
    "pcap",
    "ts_start",
    "ts_end",
    "duration",
    "transport",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "orientation",
    "protocol",
    "confidence",
    "assigned",
    "packets_c2s",
    "packets_s2c",
    "bytes_c2s",
    "bytes_s2c",
    "state",
    "history",
    "meta",
    "findings",
];

#[derive(Clone, Debug, PartialEq)]
pub struct FlowRecord {
    pub ts_start: f64,
    pub ts_end: f64,
    pub transport: &'static str,
    /// The client.
    pub src_ip: String,
    pub src_port: u16,
    /// The server.
    pub dst_ip: String,
    pub dst_port: u16,
    pub orientation: &'static str,
    /// The decision's name, shared with it (`Arc`): a copy per record was an allocation each.
    pub protocol: Arc<str>,
    pub confidence: f64,
    pub packets_c2s: u64,
    pub packets_s2c: u64,
    /// Transport payload bytes, as Zeek's orig_bytes/resp_bytes.
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    /// The flow's facts as the flow kept them (a frozen buffer, the record's own in its tail).
    pub meta: FlowMeta,
    pub pcap: Option<Arc<str>>,
    /// For joining with Zeek and Suricata logs. `flow_id`: the flow's 1-based creation order in
    /// its capture (the same for every worker count; the monitor's flows count from its start).
    pub flow_id: u64,
    /// Community ID v1, seed 0.
    pub community_id: String,
    /// ts_end - ts_start to the microsecond (Python's `round(x, 6)`).
    pub duration: f64,
    /// Zeek's conn_state and history (see flow::conn_state).
    pub state: &'static str,
    pub history: String,
}

/// A TLS flow's record with every field set, for the record writers' tests.
#[cfg(test)]
pub(crate) fn sample() -> FlowRecord {
    FlowRecord {
        ts_start: 1764170033.123456,
        ts_end: 1764170035.9,
        transport: "tcp",
        src_ip: "10.0.0.1".into(),
        src_port: 40000,
        dst_ip: "10.0.0.2".into(),
        dst_port: 443,
        orientation: "handshake",
        protocol: "tls".into(),
        confidence: 0.99951,
        packets_c2s: 7,
        packets_s2c: 5,
        bytes_c2s: 1455,
        bytes_s2c: 1633,
        meta: Default::default(),
        pcap: Some("a.pcap".into()),
        flow_id: 12,
        community_id: "1:abc=".into(),
        duration: 2.776544,
        state: "SF",
        history: "ShADadFf".into(),
    }
}
