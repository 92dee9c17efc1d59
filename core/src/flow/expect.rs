//! Expectations: connections a control connection announced (FTP data, RTP/RTCP from SDP or
//! RTSP), as conntrack's helpers, Zeek's scheduled analyzers and Suricata's expectations keep
//! them. The announcement parsers (`detect::announce`) say what the bytes name; this module
//! decides whether to believe it, remembers it for a while, and names the connection that
//! comes: its record says `ftp-data`/`rtp`/`rtcp` and which control flow announced it.
//!
//! Rules:
//! - An announced address must be its owner's address on the control connection (the sender's
//!   for PASV/EPSV/PORT/EPRT/SDP). Any other host is refused and listed on the control flow as
//!   `announced_foreign` (a PORT naming a third host is an FTP bounce, RFC 2577; the policy
//!   reports it).
//! - A new flow matches when one endpoint is the announced (address, port, transport) and the
//!   other endpoint's address is the control connection's other host, within `EXPECT_TIMEOUT`
//!   of the announcement. An expectation is used once (as conntrack's).
//! - The table holds at most `MAX_EXPECTATIONS`; the oldest goes first.
//!
//! The outcome is a function of the capture's packet order alone: `parallel` replays the
//! announcements and flow creations of every shard in packet order through one table, so the
//! records are the same for every worker count.
#![forbid(unsafe_code)]

use std::collections::VecDeque;

use hashbrown::HashMap;

use super::community_id::community_id;
use super::key::Key;
use super::slot::Flow;
use crate::decode::{Addr, TCP};
use crate::detect::announce::{Announced, Owner};
use crate::meta::{json, Meta, Value};
use crate::record::FlowRecord;

/// Expectations held at most (each a few dozen bytes).
pub const MAX_EXPECTATIONS: usize = 4096;
/// Seconds an announcement stays good: a SIP call may ring this long before media flows.
pub const EXPECT_TIMEOUT: f64 = 120.0;
/// Announcements listed on a control flow's meta at most (each list).
pub const MAX_ANNOUNCED_META: usize = 16;

/// One announced connection, and who announced it.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    pub ip: Addr,
    pub port: u16,
    pub proto: u8,
    /// The control connection's other host: the expected connection's other end.
    pub peer: Addr,
    pub protocol: &'static str,
    pub by: &'static str,
    pub ts: f64,
    pub control_flow_id: u64,
    pub control_community_id: String,
    pub control_protocol: String,
}

type Slot = (Addr, u16, u8);

/// The expectations in force.
#[derive(Debug, Default)]
pub struct ExpectTable {
    map: HashMap<Slot, (u64, Expectation)>,
    /// Insertion order (slot, stamp); an entry whose stamp is not the map's is stale.
    order: VecDeque<(Slot, u64)>,
    next: u64,
    /// Dropped for room before use or expiry.
    pub dropped: u64,
}

impl ExpectTable {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Remember `e` (replacing an earlier announcement of the same endpoint).
    pub fn insert(&mut self, e: Expectation) {
        self.expire(e.ts);
        let slot = (e.ip, e.port, e.proto);
        self.next += 1;
        self.map.insert(slot, (self.next, e));
        self.order.push_back((slot, self.next));
        while self.map.len() > MAX_EXPECTATIONS {
            let Some((s, stamp)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&s).is_some_and(|(t, _)| *t == stamp) {
                self.map.remove(&s);
                self.dropped += 1;
            }
        }
        if self.order.len() > 2 * MAX_EXPECTATIONS {
            // re-announcements left stale entries: keep the live ones, in order
            let map = &self.map;
            self.order
                .retain(|(s, stamp)| map.get(s).is_some_and(|(t, _)| t == stamp));
        }
    }

    /// Forget the announcements older than `EXPECT_TIMEOUT` at `now` (oldest first; a capture
    /// whose clock steps back keeps them until a lookup finds them stale).
    fn expire(&mut self, now: f64) {
        while let Some(&(s, stamp)) = self.order.front() {
            match self.map.get(&s) {
                Some((t, e)) if *t == stamp => {
                    if now - e.ts <= EXPECT_TIMEOUT {
                        return;
                    }
                    self.map.remove(&s);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// The expectation a new flow (its first packet's `key`, at `ts`) fulfils, used up.
    pub fn take(&mut self, key: &Key, ts: f64) -> Option<Expectation> {
        if self.map.is_empty() {
            return None;
        }
        self.expire(ts);
        for (end, port, other) in [(key.b, key.b_port, key.a), (key.a, key.a_port, key.b)] {
            let slot = (end, port, key.proto);
            let fits = self
                .map
                .get(&slot)
                .is_some_and(|(_, e)| e.peer == other && (ts - e.ts).abs() <= EXPECT_TIMEOUT);
            if fits {
                return self.map.remove(&slot).map(|(_, e)| e);
            }
        }
        None
    }
}

/// What a shard of `parallel` reports instead of using a table of its own: an expectation may
/// name a flow of another shard, so the reader replays every shard's events in packet order.
#[derive(Clone, Debug)]
pub enum Event {
    Announce {
        pkt: u64,
        exp: Expectation,
    },
    Create {
        pkt: u64,
        ts: f64,
        key: Key,
        flow_id: u64,
    },
}

impl Event {
    fn pkt(&self) -> u64 {
        match self {
            Event::Announce { pkt, .. } | Event::Create { pkt, .. } => *pkt,
        }
    }
}

/// The reader's side of `parallel`: one table for every shard, and the flows it named until
/// their records pass.
#[derive(Debug, Default)]
pub struct Replay {
    table: ExpectTable,
    named: HashMap<u64, Expectation>,
}

impl Replay {
    /// One chunk's events of every shard. Every event of a packet comes from the one shard that
    /// tracks its flow, in the order that shard made them (a SIP INVITE creates its flow, then
    /// announces), so a stable sort by packet is the single-threaded order.
    pub fn replay(&mut self, mut events: Vec<Event>) {
        events.sort_by_key(Event::pkt);
        for ev in events {
            match ev {
                Event::Announce { exp, .. } => self.table.insert(exp),
                Event::Create {
                    ts, key, flow_id, ..
                } => {
                    if let Some(e) = self.table.take(&key, ts) {
                        self.named.insert(flow_id, e);
                    }
                }
            }
        }
    }

    /// Name `rec` if its flow was expected (its record is final: the entry goes).
    pub fn name(&mut self, rec: &mut FlowRecord) {
        if let Some(e) = self.named.remove(&rec.flow_id) {
            apply(rec, &e);
        }
    }
}

/// Check what a control flow's packet announced: the expectations to keep, and the control
/// flow's meta updated (`announced`, `announced_foreign`). `from_client`: the flow's client sent
/// the packet.
pub fn believe(
    flow: &mut Flow,
    from_client: bool,
    ts: f64,
    found: Vec<Announced>,
) -> Vec<Expectation> {
    let (client, server) = (flow.client_ip(), flow.server_ip());
    let (sender, receiver) = if from_client {
        (client, server)
    } else {
        (server, client)
    };
    let protocol = flow
        .decision
        .as_ref()
        .map_or_else(|| "unknown".to_string(), |d| d.protocol.to_string());
    let mut out = Vec::new();
    for a in found {
        let (owner, other) = match a.owner {
            Owner::Sender => (sender, receiver),
            Owner::Receiver => (receiver, sender),
        };
        let ip = a.ip.unwrap_or(owner);
        let entry = json!({
            "endpoint": endpoint(&ip, a.port),
            "transport": if a.proto == TCP { "tcp" } else { "udp" },
            "protocol": a.protocol,
            "by": a.by,
        });
        if ip != owner {
            note(&mut flow.meta, "announced_foreign", entry);
            continue;
        }
        note(&mut flow.meta, "announced", entry);
        out.push(Expectation {
            ip,
            port: a.port,
            proto: a.proto,
            peer: other,
            protocol: a.protocol,
            by: a.by,
            ts,
            control_flow_id: flow.number,
            control_community_id: community_id(
                0,
                flow.key.proto,
                &client,
                flow.client_port(),
                &server,
                flow.server_port(),
            ),
            control_protocol: protocol.clone(),
        });
    }
    out
}

fn endpoint(ip: &Addr, port: u16) -> String {
    match ip {
        Addr::V4(_) => format!("{ip}:{port}"),
        Addr::V6(_) => format!("[{ip}]:{port}"),
    }
}

/// Add `entry` to the list `key` of `meta` unless it is there or the list is full.
fn note(meta: &mut Meta, key: &'static str, entry: Value) {
    let list = meta.get_or_insert_with(key, || Value::Array(Vec::new()));
    if let Value::Array(items) = list {
        if items.len() < MAX_ANNOUNCED_META && !items.contains(&entry) {
            items.push(entry);
        }
    }
}

/// Name an expected flow's record: the announced protocol, which flow announced it and how.
/// What detection made of its bytes, when it was something else, stays as `content_protocol`.
pub fn apply(rec: &mut FlowRecord, e: &Expectation) {
    let detected = std::mem::replace(&mut rec.protocol, e.protocol.into());
    if &*detected != "unknown" && &*detected != e.protocol {
        rec.meta
            .insert("content_protocol".into(), detected.to_string().into());
    }
    rec.confidence = 1.0;
    rec.meta.insert(
        "evidence".into(),
        format!(
            "announced by {} flow {} ({})",
            e.control_protocol, e.control_flow_id, e.by
        )
        .into(),
    );
    rec.meta
        .insert("control_flow_id".into(), e.control_flow_id.into());
    rec.meta.insert(
        "control_community_id".into(),
        e.control_community_id.clone().into(),
    );
    rec.meta.insert("announced_by".into(), e.by.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Addr = Addr::V4([10, 77, 0, 1]);
    const C: Addr = Addr::V4([10, 77, 0, 2]);

    fn exp(ip: Addr, port: u16, peer: Addr, ts: f64) -> Expectation {
        Expectation {
            ip,
            port,
            proto: TCP,
            peer,
            protocol: "ftp-data",
            by: "EPSV",
            ts,
            control_flow_id: 1,
            control_community_id: "1:x".into(),
            control_protocol: "ftp".into(),
        }
    }

    fn key(a: (Addr, u16), b: (Addr, u16)) -> Key {
        Key {
            proto: TCP,
            a: a.0,
            b: b.0,
            a_port: a.1,
            b_port: b.1,
        }
    }

    #[test]
    fn a_flow_to_the_announced_port_from_the_peer_matches_once() {
        let mut t = ExpectTable::default();
        t.insert(exp(S, 50000, C, 1.0));
        // another host: no
        let stranger = Addr::V4([10, 77, 0, 9]);
        assert!(t.take(&key((stranger, 4000), (S, 50000)), 1.5).is_none());
        // another port: no
        assert!(t.take(&key((C, 4000), (S, 50001)), 1.5).is_none());
        assert!(t.take(&key((C, 4000), (S, 50000)), 1.5).is_some());
        assert!(
            t.take(&key((C, 4001), (S, 50000)), 1.6).is_none(),
            "used once"
        );
        assert!(t.is_empty());
    }

    #[test]
    fn either_endpoint_may_be_the_announced_one() {
        // active FTP: the server connects from port 20 to the client's announced port; RTP:
        // the first datagram may leave from the announced port
        let mut t = ExpectTable::default();
        t.insert(exp(C, 40001, S, 1.0));
        assert!(t.take(&key((C, 40001), (S, 20)), 1.1).is_some());
    }

    #[test]
    fn expectations_expire() {
        let mut t = ExpectTable::default();
        t.insert(exp(S, 50000, C, 1.0));
        assert!(t
            .take(&key((C, 4000), (S, 50000)), 1.0 + EXPECT_TIMEOUT + 0.1)
            .is_none());
        assert!(t.is_empty(), "expired ones are forgotten");
        // a later announcement expires the old ones without a lookup
        t.insert(exp(S, 50001, C, 1.0));
        t.insert(exp(S, 50002, C, 2.0 + EXPECT_TIMEOUT));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_table_is_bounded_and_drops_the_oldest() {
        let mut t = ExpectTable::default();
        for i in 0..(MAX_EXPECTATIONS + 10) {
            t.insert(exp(S, 1 + i as u16, C, 1.0));
        }
        assert_eq!(t.len(), MAX_EXPECTATIONS);
        assert_eq!(t.dropped, 10);
        assert!(t.take(&key((C, 9), (S, 1)), 1.0).is_none());
        assert!(t.take(&key((C, 9), (S, 11)), 1.0).is_some());
        // the same endpoint announced over and over: one entry, the order queue stays bounded
        for _ in 0..(5 * MAX_EXPECTATIONS) {
            t.insert(exp(S, 7, C, 1.0));
        }
        assert!(t.order.len() <= 2 * MAX_EXPECTATIONS + 1);
    }

    #[test]
    fn apply_names_the_flow_and_its_control_flow() {
        let mut rec = FlowRecord {
            ts_start: 0.0,
            ts_end: 0.0,
            transport: "tcp",
            src_ip: "10.77.0.2".into(),
            src_port: 4000,
            dst_ip: "10.77.0.1".into(),
            dst_port: 50000,
            orientation: "handshake",
            protocol: "http".into(),
            confidence: 0.5,
            packets_c2s: 0,
            packets_s2c: 0,
            bytes_c2s: 0,
            bytes_s2c: 0,
            meta: Meta::new().into(),
            pcap: None,
            flow_id: 5,
            community_id: String::new(),
            duration: 0.0,
            state: "SF",
            history: String::new(),
        };
        apply(&mut rec, &exp(S, 50000, C, 1.0));
        assert_eq!(&*rec.protocol, "ftp-data");
        assert_eq!(rec.meta["content_protocol"], "http");
        assert_eq!(rec.meta["control_flow_id"], 1);
        assert_eq!(rec.meta["announced_by"], "EPSV");
    }
}
