//! The flow record handed to Python: the schema's fields the core knows. Python adds what the
//! services database and the policy say (`assigned`, `findings`).
use crate::meta::Meta;

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
    pub protocol: String,
    pub confidence: f64,
    pub packets_c2s: u64,
    pub packets_s2c: u64,
    /// Transport payload bytes, as Zeek's orig_bytes/resp_bytes.
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    pub meta: Meta,
    pub pcap: Option<String>,
}
