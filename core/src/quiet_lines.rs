//! Quiet records: the records the policy has nothing to say about, written as JSON lines by the
//! core for a caller that only writes lines (`analyze --format jsonl`), or counted for one that
//! writes only the closing report (`py::tally`).
//!
//! Most records of a capture are a protocol on a port it fits, nothing insecure, nothing
//! announced: the policy's `quiet` test passes and no rule speaks. Building such a record as a
//! Python object, running the policy over it and writing its line from the object cost Python's
//! thread several microseconds each, most of a capture's end when its flows end there. The
//! policy stays in Python: it teaches this table which (protocol, server port, transport) keys
//! its record-only rules can never speak about (`PolicyContext.quiet_static`), and gives the
//! facts its other rules read; the DNS-tunnel tracker, already the core's, counts each DNS record
//! on the way (`py::convert`). A record is quiet here only when every other test of
//! `rules.quiet` and `rules.evaluate` is decided by the record's own fields, and conservatively:
//! a fact whose value would need Python to read sends the record the usual way.
//! `tests/scale/test_quiet_records.py` checks that a capture's lines are the same bytes, and its
//! summary the same, either way.
#![forbid(unsafe_code)]

use hashbrown::{HashMap, HashSet};

use crate::detect::engine::Transport;
use crate::meta::{FlowMeta, Value};
use crate::record::FlowRecord;
use crate::tunnel::pyfmt::round_to;

/// Keys taught at most: past this (a scan over every port), the rest go the usual way.
pub const MAX_QUIET_KEYS: usize = 65_536;

/// Facts that let a rule speak on a quiet key (`rules.quiet`: a login, an HTTP CONNECT) or on any
/// record (`rules.evaluate`: an announced flow's control connection, overlapping segments that
/// disagreed). Present at all, whatever the value, the record goes the usual way.
const LOUD_FACTS: [&str; 5] = [
    "control_flow_id",
    "cleartext_login",
    "anonymous_login",
    "http_connect_target",
    "tcp_overlap_conflicts",
];
/// An unrecognised flow with the core's entropy facts may be `encrypted-unknown` or cleartext on
/// a TLS port.
const ENTROPY_FACTS: [&str; 2] = ["entropy_client", "entropy_server"];

/// What the policy taught: which records it has nothing to say about, and what their lines carry.
#[derive(Default, Debug)]
pub struct QuietLines {
    /// The services database's names for a port (`assigned`), only ports that have some.
    names: HashMap<(u16, Transport), Vec<String>>,
    /// (protocol, server port, transport) keys no record-only rule speaks about.
    keys: HashSet<(String, u16, Transport)>,
    /// fact -> values with a reason (`insecure_versions`, `insecure_settings`).
    listed: Vec<(String, HashSet<String>)>,
    /// An unrecognised flow nobody answered is quiet (no signature named "unknown").
    unknown_quiet: bool,
    /// A TCP client port below this, with the direction known, is a rule's question (r-services).
    trusted_port_limit: u16,
}

impl QuietLines {
    pub fn new(
        names: impl IntoIterator<Item = (u16, String, Vec<String>)>,
        listed: Vec<(String, HashSet<String>)>,
        unknown_quiet: bool,
        trusted_port_limit: u16,
    ) -> Self {
        let names = names
            .into_iter()
            .filter(|(_, _, n)| !n.is_empty())
            .filter_map(|(port, t, n)| Some(((port, Transport::parse(&t)?), n)))
            .collect();
        QuietLines {
            names,
            keys: HashSet::new(),
            listed,
            unknown_quiet,
            trusted_port_limit,
        }
    }

    /// The policy says no record-only rule speaks about `protocol` on this port: false when the
    /// table is full or the key cannot be one (a transport other than TCP and UDP, a port with
    /// no service name, the unrecognised).
    pub fn teach(&mut self, protocol: &str, port: u16, transport: &str) -> bool {
        let Some(t) = Transport::parse(transport) else {
            return false;
        };
        if protocol == "unknown" || !self.names.contains_key(&(port, t)) {
            return false;
        }
        if self.keys.len() >= MAX_QUIET_KEYS {
            return self.keys.contains(&(protocol.to_owned(), port, t));
        }
        self.keys.insert((protocol.to_owned(), port, t));
        true
    }

    /// The services database's names for the record's server port (`assigned`).
    pub fn names_of(&self, rec: &FlowRecord) -> &[String] {
        Transport::parse(rec.transport)
            .and_then(|t| self.names.get(&(rec.dst_port, t)))
            .map_or(&[][..], Vec::as_slice)
    }

    /// The record's `assigned` names when it is quiet (no finding could come of it), else None.
    pub fn quiet<'a>(&'a self, rec: &FlowRecord) -> Option<&'a [String]> {
        let t = Transport::parse(rec.transport)?;
        if rec.src_port < self.trusted_port_limit
            && t == Transport::Tcp
            && rec.orientation != "inferred"
        {
            return None;
        }
        let meta = &rec.meta;
        if LOUD_FACTS.iter().any(|f| meta.contains_key(f)) || self.listed_in(meta) {
            return None;
        }
        if &*rec.protocol == "unknown" {
            let answered = rec.bytes_s2c > 0
                || (t == Transport::Tcp && rec.bytes_c2s > 0 && rec.packets_s2c > 0);
            let entropy = ENTROPY_FACTS.iter().any(|f| meta.contains_key(f));
            return (self.unknown_quiet && !answered && !entropy).then(|| self.names_of(rec));
        }
        let key = (rec.protocol.to_string(), rec.dst_port, t);
        if !self.keys.contains(&key) {
            return None;
        }
        self.names.get(&(rec.dst_port, t)).map(Vec::as_slice)
    }

    /// Could a listed fact's value have a reason? Yes when its text (Python's `str`) is listed,
    /// and when the value is one whose text only Python writes (a float, a list, a map).
    fn listed_in(&self, meta: &FlowMeta) -> bool {
        self.listed.iter().any(|(fact, values)| {
            let Some(value) = meta.value_of(fact) else {
                return false;
            };
            match &*value {
                Value::Null => false,
                Value::String(s) => values.contains(s.as_str()),
                Value::Bool(b) => values.contains(if *b { "True" } else { "False" }),
                Value::Number(n) if n.is_i64() || n.is_u64() => values.contains(&n.to_string()),
                _ => true,
            }
        })
    }
}

/// `rec`'s JSON line with `assigned` and no findings: the bytes `portwatch._core.record_line`
/// writes for the Python record the core would have made of it (`py::line`, in its field order).
/// `meta_json`: the record's meta already serialized, else it is serialized here.
pub fn push_line(
    out: &mut Vec<u8>,
    rec: &FlowRecord,
    assigned: &[String],
    meta_json: Option<&[u8]>,
) {
    use crate::compact_json::{push_array, push_str, Members};
    out.extend_from_slice(b"{\"flow_id\":");
    out.extend_from_slice(itoa::Buffer::new().format(rec.flow_id).as_bytes());
    let mut m = Members(out);
    m.text("community_id", &rec.community_id);
    if let Some(pcap) = &rec.pcap {
        m.text("pcap", pcap);
    }
    m.float("ts_start", rec.ts_start);
    m.float("ts_end", rec.ts_end);
    m.float("duration", rec.duration);
    m.text("transport", rec.transport);
    m.text("src_ip", &rec.src_ip);
    m.int("src_port", rec.src_port.into());
    m.text("dst_ip", &rec.dst_ip);
    m.int("dst_port", rec.dst_port.into());
    m.text("orientation", rec.orientation);
    m.text("protocol", &rec.protocol);
    m.float("confidence", round_to(rec.confidence, 3));
    m.key("assigned");
    push_array(m.0, assigned, |out, name| push_str(out, name));
    m.int("packets_c2s", rec.packets_c2s);
    m.int("packets_s2c", rec.packets_s2c);
    m.int("bytes_c2s", rec.bytes_c2s);
    m.int("bytes_s2c", rec.bytes_s2c);
    push_tail(out, rec, meta_json);
    out.extend_from_slice(b"}\n");
}

/// The members a record's line ends with, in `FlowRecord.as_dict`'s order: `state`, `history`,
/// `meta` (`meta_json`: already serialized, else serialized here) and no `findings`.
pub fn push_tail(out: &mut Vec<u8>, rec: &FlowRecord, meta_json: Option<&[u8]>) {
    let mut m = crate::compact_json::Members(out);
    m.text("state", rec.state);
    m.text("history", &rec.history);
    m.key("meta");
    match meta_json {
        Some(json) => out.extend_from_slice(json),
        None => rec.meta.push_json(out),
    }
    out.extend_from_slice(b",\"findings\":[]");
}

#[cfg(test)]
mod tests;
