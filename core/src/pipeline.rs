//! Wires the core's stages: decode -> flows -> detect, one packet at a time, and hands each
//! finished flow out as a `FlowRecord`. Policy, findings and outputs are Python's.
//!
//! A packet of a flow whose inspection has ended costs a decode, one table look-up and counter
//! updates; detection work is bounded per flow by payload packets, not bytes.
use std::sync::Arc;

use hashbrown::HashSet;

use crate::decode::{Decoded, Decoder, Encap, Packet, SUPPORTED_LINKTYPES, TCP};
use crate::detect::engine::{Decision, Engine, Transport};
use crate::detect::entropy::entropy_facts;
use crate::detect::upgrades::{upgrade_meta, upgrade_pending, upgrade_settles, upgrade_watch};
use crate::flow::table::{Buffers, Flow, FlowId, FlowTable, Key, ACK, MAX_UDP_UNITS, RST, SYN};
use crate::flow::reassembly::StreamBuffer;
use crate::meta::{set_default, Meta, Value};
use crate::record::FlowRecord;

/// Tunables, with the Python engine's defaults.
#[derive(Clone, Debug)]
pub struct Config {
    pub max_flows: usize,
    pub idle_tcp: f64,
    pub idle_udp: f64,
    /// Zeek's dns_session_timeout: a DNS flow is over once answered.
    pub idle_dns: f64,
    /// A closed TCP flow stays this long to absorb its last ACKs before it is reported.
    pub linger: f64,
    /// Capture seconds between idle sweeps (each is O(live flows)).
    pub sweep_interval: f64,
    /// Give up classifying after this many payload packets (nDPI-like).
    pub max_payload_packets: u32,
    /// Payload packets inspected after classification, for metadata.
    pub meta_packets: i32,
    /// This analyzer keeps only flows whose symmetric hash falls in shard `shard_index`.
    pub shard_index: u32,
    pub shard_count: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_flows: 200_000,
            idle_tcp: 300.0,
            idle_udp: 60.0,
            idle_dns: 10.0,
            linger: 2.0,
            sweep_interval: 1.0,
            max_payload_packets: 12,
            meta_packets: 8,
            shard_index: 0,
            shard_count: 1,
        }
    }
}

/// A datagram is kept up to this much for detection.
pub const UDP_UNIT_BYTES: usize = 4096;
/// Below this many held bytes, the payload-packet budget stretches (1-byte segments)...
pub const MIN_EVIDENCE_BYTES: usize = 256;
/// ... up to this many times the budget.
pub const TINY_SEGMENT_FACTOR: u32 = 8;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub malformed: u64,
    pub non_ip: u64,
    pub fragments: u64,
    pub fragments_dropped: u64,
    pub unsupported_link: u64,
    pub flows_evicted: u64,
    pub other_shard: u64,
}

/// What the analyzer needs to know of the services database: which ports it names at all
/// (orientation of mid-stream flows).
#[derive(Clone, Debug, Default)]
pub struct KnownPorts(pub HashSet<(u16, Transport)>);

impl KnownPorts {
    fn has(&self, port: u16, t: Transport) -> bool {
        self.0.contains(&(port, t))
    }
}

/// The decoder and the flow state side by side, so a decoded packet (which may borrow the
/// decoder's reassembled datagram) goes to the flows without a copy.
pub struct Analyzer {
    decoder: Decoder,
    pub flows: Tracker,
}

/// Everything after decoding: the flow table, timers, detection and the finished records.
pub struct Tracker {
    pub config: Config,
    pub engine: Arc<Engine>,
    known: Arc<KnownPorts>,
    pub pcap_name: Option<String>,
    pub stats: Stats,
    table: FlowTable,
    next_sweep: f64,
    swept: bool,
    /// Finished flows, in the order they ended, waiting for the caller.
    pub finished: Vec<FlowRecord>,
    /// When set, flows are also handed out as soon as they are classified (the monitor).
    pub report_classified: bool,
    pub classified: Vec<FlowRecord>,
}

fn transport_of(proto: u8) -> Transport {
    if proto == TCP {
        Transport::Tcp
    } else {
        Transport::Udp
    }
}

impl Analyzer {
    pub fn new(config: Config, engine: Arc<Engine>, known: Arc<KnownPorts>, pcap_name: Option<String>) -> Self {
        let table = FlowTable::new(config.max_flows);
        let flows = Tracker {
            config,
            engine,
            known,
            pcap_name,
            stats: Stats::default(),
            table,
            next_sweep: f64::NEG_INFINITY,
            swept: false,
            finished: Vec::new(),
            report_classified: false,
            classified: Vec::new(),
        };
        Analyzer { decoder: Decoder::new(), flows }
    }

    /// One captured frame.
    pub fn packet(&mut self, ts: f64, linktype: u32, frame: &[u8]) {
        let flows = &mut self.flows;
        flows.stats.packets += 1;
        flows.stats.bytes += frame.len() as u64;
        // Timers run before the packet and only from capture time, so a shard that sees a subset
        // of the packets ends and expires its flows exactly as the whole run does.
        if ts >= flows.next_sweep {
            flows.sweep(ts);
        }
        flows.release_closed(ts);
        let decoded = self.decoder.decode(ts, linktype, frame);
        match decoded {
            Decoded::Packet(p) => flows.packet(ts, p),
            Decoded::NotIp => flows.stats.non_ip += 1,
            Decoded::UnsupportedLink => {
                if SUPPORTED_LINKTYPES.contains(&linktype) {
                    flows.stats.non_ip += 1;
                } else {
                    flows.stats.unsupported_link += 1;
                }
            }
            Decoded::Malformed => flows.stats.malformed += 1,
            Decoded::Held => {}
        }
        let d = self.decoder.stats();
        self.flows.stats.fragments = d.fragments;
        self.flows.stats.fragments_dropped = d.fragments_dropped;
    }

    /// Report every flow still open (end of capture or shutdown).
    pub fn drain(&mut self) {
        self.flows.drain();
    }
}

impl Tracker {
    pub fn live_flows(&self) -> usize {
        self.table.len()
    }

    fn packet(&mut self, ts: f64, pkt: Packet<'_>) {
        let key = Key { proto: pkt.proto, a: pkt.src, b: pkt.dst, a_port: pkt.sport, b_port: pkt.dport };
        self.flow_packet(ts, key, pkt.flags, pkt.seq, pkt.payload, pkt.encap);
    }

    fn flow_packet(&mut self, ts: f64, key: Key, flags: u8, seq: u32, payload: &[u8], encap: Option<Encap>) {
        let plen = payload.len();
        let is_tcp = key.proto == TCP;
        let (id, d) = match self.table.lookup(&key) {
            None => {
                if self.config.shard_count > 1 && key.shard(self.config.shard_count) != self.config.shard_index {
                    self.stats.other_shard += 1;
                    return;
                }
                (self.new_flow(ts, key, flags, encap), 0)
            }
            Some((id, d)) => {
                let f = self.table.get(id);
                if flags & SYN != 0 && flags & ACK == 0 && f.closed_at.is_some() {
                    // A new connection on the same 5-tuple: the old one is over.
                    self.remove(id, "closed");
                    (self.new_flow(ts, key, flags, encap), 0)
                } else {
                    (id, d)
                }
            }
        };
        let flow = self.table.get_mut(id);
        let side = &mut flow.sides[d];
        side.ts = ts;
        side.pkts += 1;
        side.bytes += plen as u64;
        if flow.inspecting && (plen > 0 || flags & SYN != 0) {
            self.inspect(id, d, flags, seq, payload);
        }
        if is_tcp && flags & 5 != 0 {
            self.tcp_close(id, d, flags, ts);
        }
    }

    fn new_flow(&mut self, ts: f64, key: Key, flags: u8, encap: Option<Encap>) -> FlowId {
        let (client_dir, orientation) = if key.proto == TCP && flags & SYN != 0 {
            // SYN: the sender is the client; SYN-ACK first: the receiver is.
            (usize::from(flags & ACK != 0), "handshake")
        } else {
            self.infer_client(key.proto, key.a_port, key.b_port)
        };
        if self.table.is_full() {
            if let Some(old) = self.table.oldest() {
                self.table.evicted += 1;
                self.stats.flows_evicted = self.table.evicted;
                self.table.get_mut(old).meta.insert("evicted".into(), Value::Bool(true));
                self.remove(old, "evicted");
            }
        }
        self.table.insert(Flow::new(key, ts, client_dir, orientation, encap))
    }

    /// Who is the client of a flow seen mid-stream? Evidence from ports, best first.
    fn infer_client(&self, proto: u8, sport: u16, dport: u16) -> (usize, &'static str) {
        let t = transport_of(proto);
        let s_known = self.known.has(sport, t);
        let d_known = self.known.has(dport, t);
        if proto != TCP {
            // UDP: the first datagram's sender is the client, unless it plainly came from a
            // service port to an unassigned higher one (a reply seen before its request).
            if s_known && !d_known && sport < dport {
                return (1, "inferred");
            }
            return (0, "handshake");
        }
        if d_known && !s_known {
            return (0, "inferred");
        }
        if s_known && !d_known {
            return (1, "inferred");
        }
        (if dport <= sport { 0 } else { 1 }, "inferred")
    }

    fn tcp_close(&mut self, id: FlowId, d: usize, flags: u8, ts: f64) {
        let flow = self.table.get_mut(id);
        if flags & RST != 0 {
            flow.rst = true;
        } else {
            flow.fins |= 1 << d;
        }
        if flow.closed_at.is_none() && (flow.rst || flow.fins == 3) {
            flow.closed_at = Some(ts);
            let settle = flow.inspecting && !flow.rst;
            self.table.mark_closed(id);
            // After both FINs no data may follow: settle now. A RST is only the sender's word
            // (an end host ignores one with a bad sequence number: Ptacek & Newsham's
            // insertion), so the verdict waits for the linger time.
            if settle {
                self.conclude(id);
            }
        }
    }

    // ---- timers ---------------------------------------------------------------------------

    fn release_closed(&mut self, now: f64) {
        let linger = self.config.linger;
        while let Some(&(id, stamp)) = self.table.closed.front() {
            if !self.table.is_current(id, stamp) {
                self.table.closed.pop_front();
                continue;
            }
            match self.table.get(id).closed_at {
                Some(at) if now - at < linger => return,
                Some(_) => {
                    self.table.closed.pop_front();
                    self.remove(id, "closed");
                }
                None => {
                    // Reopened by data after its RST: it leaves the queue, the flow goes on.
                    self.table.closed.pop_front();
                }
            }
        }
    }

    fn sweep(&mut self, ts: f64) {
        let interval = self.config.sweep_interval;
        let boundary = (ts / interval).floor() * interval;
        if self.swept {
            self.expire(boundary);
        }
        self.swept = true;
        self.next_sweep = boundary + interval;
    }

    fn expire(&mut self, now: f64) {
        let c = &self.config;
        let (idle_tcp, idle_udp, idle_dns, linger) = (c.idle_tcp, c.idle_udp, c.idle_dns, c.linger);
        for (id, stamp) in self.table.ids_in_order() {
            if !self.table.is_current(id, stamp) {
                continue;
            }
            let flow = self.table.get(id);
            if let Some(at) = flow.closed_at {
                if now - at >= linger {
                    self.remove(id, "closed");
                }
                continue;
            }
            let idle = if flow.is_tcp() {
                idle_tcp
            } else if flow.decision.as_ref().is_some_and(|d| d.protocol == "dns") {
                idle_dns
            } else {
                idle_udp
            };
            if now - flow.ts_end() >= idle {
                self.remove(id, "idle");
            }
        }
    }

    fn drain(&mut self) {
        for (id, stamp) in self.table.ids_in_order() {
            if self.table.is_current(id, stamp) {
                self.remove(id, "end");
            }
        }
        self.table.closed.clear();
        self.stats.flows_evicted = self.table.evicted;
    }

    fn remove(&mut self, id: FlowId, reason: &str) {
        if self.table.get(id).inspecting {
            self.conclude(id);
        }
        let flow = self.table.take(id);
        let mut rec = self.record(&flow);
        if reason != "end" {
            set_default(&mut rec.meta, "end_reason", reason.into());
        }
        self.finished.push(rec);
    }

    // ---- detection ------------------------------------------------------------------------

    fn inspect(&mut self, id: FlowId, d: usize, flags: u8, seq: u32, payload: &[u8]) {
        let flow = self.table.get_mut(id);
        let grew;
        let Some(buffers) = flow.buffers.as_mut() else { return };
        if flow.key.proto == TCP {
            let mut seq = seq;
            if flags & SYN != 0 {
                if flow.isn[d].is_none() {
                    flow.isn[d] = Some(seq);
                    if let Some(s) = buffers.streams[d].as_mut() {
                        s.syn(seq);
                    }
                }
                seq = seq.wrapping_add(1);
            }
            if payload.is_empty() {
                return;
            }
            let isn = flow.isn[d];
            let stream = buffers.streams[d].get_or_insert_with(|| {
                let mut s = StreamBuffer::default();
                if let Some(isn) = isn {
                    s.syn(isn);
                }
                s
            });
            grew = stream.add(seq, payload);
        } else if !payload.is_empty() {
            let units = &mut buffers.units[d];
            grew = units.len() < MAX_UDP_UNITS;
            if grew {
                units.push(payload[..payload.len().min(UDP_UNIT_BYTES)].to_vec());
            }
        } else {
            return;
        }
        if flow.rst && flow.closed_at.is_some() {
            flow.rst = false; // data after a RST: the RST was not honoured
            flow.closed_at = None;
        }
        // Every payload packet counts, grown or not: a flow that never shows classifiable bytes
        // still ends its inspection. Tiny segments (a banner sent a byte at a time) get a longer
        // budget, up to a hard cap.
        flow.payload_pkts += 1;
        if flow.decision.is_none() {
            let budget = self.config.max_payload_packets;
            let n = flow.payload_pkts;
            let fin = full(flow) || (n >= budget && (n >= budget * TINY_SEGMENT_FACTOR || held(flow) >= MIN_EVIDENCE_BYTES));
            if grew || fin {
                self.classify(id, fin);
            }
        } else {
            flow.meta_left -= 1;
            if grew {
                self.collect_meta(id, Some(d));
            }
            let flow = self.table.get(id);
            if flow.inspecting && (flow.meta_left <= 0 || full(flow)) {
                self.end_inspection(id);
            }
        }
    }

    fn classify(&mut self, id: FlowId, fin: bool) {
        let engine = Arc::clone(&self.engine);
        let flow = self.table.get_mut(id);
        let transport = transport_of(flow.key.proto);
        let decision = {
            let (client, server) = flow.units_by_role();
            engine.classify(
                transport,
                &client,
                &server,
                flow.server_port(),
                flow.orientation == "inferred",
                fin,
                Some(flow.client_port()),
            )
        };
        let Some(mut decision) = decision else { return };
        if decision.swapped {
            flow.client_dir ^= 1;
        }
        let found = std::mem::take(&mut decision.meta);
        let had_meta = !found.is_empty();
        for (k, v) in found {
            flow.meta.insert(k, v);
        }
        let done = decision.done;
        let has_sig = decision.sig.is_some();
        let protocol_watch = upgrade_watch(&decision.protocol);
        flow.decision = Some(decision);
        if !has_sig {
            self.give_up(id);
            return;
        }
        let meta_packets = self.config.meta_packets;
        let flow = self.table.get_mut(id);
        flow.meta_left = meta_packets;
        if had_meta {
            // Scoring already ran the probes on the bytes held: parse again only when a side
            // grows, and not at all when its probe said that side is done.
            let (has_c, has_s) = {
                let (c, s) = flow.units_by_role();
                (!c.is_empty(), !s.is_empty())
            };
            for (role, has) in [(0usize, has_c), (1usize, has_s)] {
                if has {
                    let bit = 1u8 << if flow.client_dir == 0 { role } else { 1 - role };
                    flow.meta_seen |= bit;
                    if (done >> role) & 1 != 0 {
                        flow.meta_done |= bit;
                    }
                }
            }
            if flow.meta_done == 3 && !protocol_watch {
                self.end_inspection(id);
            }
        } else {
            self.collect_meta(id, None);
        }
        if self.report_classified {
            let flow = self.table.get_mut(id);
            flow.reported = true;
            let rec = self.record(self.table.get(id));
            self.classified.push(rec);
        }
    }

    /// Let the protocol's probes read more of the direction that grew (both, right after the
    /// verdict). A direction is finished once its probes have said something and a further
    /// segment adds nothing new: re-parsing a ClientHello per bulk segment is what would make a
    /// classified flow expensive.
    fn collect_meta(&mut self, id: FlowId, grown: Option<usize>) {
        let engine = Arc::clone(&self.engine);
        let flow = self.table.get_mut(id);
        let Some(decision) = flow.decision.as_ref() else { return };
        let Some(sig) = decision.sig else { return };
        let protocol = decision.protocol.clone();
        let transport = transport_of(flow.key.proto);
        let dirs: &[usize] = match grown {
            None => &[0, 1],
            Some(0) => &[0],
            Some(_) => &[1],
        };
        for &d in dirs {
            let bit = 1u8 << d;
            if flow.meta_done & bit != 0 {
                continue;
            }
            let is_client = d == flow.client_dir;
            let (found, done) = {
                let units = flow.units_of(d);
                if is_client {
                    engine.extract(sig, transport, &units, &[])
                } else {
                    engine.extract(sig, transport, &[], &units)
                }
            };
            let mut new = false;
            for (k, v) in found {
                if flow.meta.get(&k) != Some(&v) {
                    flow.meta.insert(k, v);
                    new = true;
                }
            }
            if new {
                flow.meta_seen |= bit;
            } else if grown.is_some() && flow.meta_seen & bit != 0 {
                flow.meta_done |= bit;
            }
            if done {
                flow.meta_done |= bit;
            }
        }
        let mut watching = false;
        if transport == Transport::Tcp && upgrade_watch(&protocol) {
            // Banners, logins in clear, STARTTLS, CONNECT, WebSocket. Where the answer can only
            // come from the whole conversation it is worked out once, when inspection ends.
            if grown.is_none() || upgrade_settles(&protocol) {
                let found = {
                    let (client, server) = flow.units_by_role();
                    upgrade_meta(&protocol, &client, &server, &engine)
                };
                for (k, v) in found {
                    flow.meta.insert(k, v);
                }
                flow.upgrades_stale = false;
            } else {
                flow.upgrades_stale = true;
            }
            watching = upgrade_pending(&protocol, &flow.meta);
        }
        if flow.meta_done == 3 && !watching {
            self.end_inspection(id);
        }
    }

    /// Stop reading a flow (classified, or given up): settle what was deferred, keep the heads,
    /// free the buffers.
    fn end_inspection(&mut self, id: FlowId) {
        let engine = Arc::clone(&self.engine);
        let flow = self.table.get_mut(id);
        if flow.upgrades_stale {
            if let Some(protocol) = flow.decision.as_ref().map(|d| d.protocol.clone()) {
                let found = {
                    let (client, server) = flow.units_by_role();
                    upgrade_meta(&protocol, &client, &server, &engine)
                };
                for (k, v) in found {
                    flow.meta.insert(k, v);
                }
            }
            flow.upgrades_stale = false;
        }
        flow.inspecting = false;
        flow.release_buffers();
    }

    fn give_up(&mut self, id: FlowId) {
        let flow = self.table.get_mut(id);
        let (client, server) = flow.units_by_role();
        let ce = client.first().map(|u| entropy_facts(u));
        let se = server.first().map(|u| entropy_facts(u));
        if let Some(e) = ce {
            flow.meta.insert("entropy_client".into(), Value::Object(e));
        }
        if let Some(e) = se {
            flow.meta.insert("entropy_server".into(), Value::Object(e));
        }
        self.end_inspection(id);
    }

    /// No more bytes will come: settle the verdict with whatever evidence there is.
    fn conclude(&mut self, id: FlowId) {
        let flow = self.table.get_mut(id);
        if flow.decision.is_none() {
            if flow.payload_pkts > 0 {
                self.classify(id, true);
            } else {
                flow.inspecting = false;
                flow.release_buffers();
            }
        } else if flow.inspecting {
            self.end_inspection(id);
        }
    }

    // ---- output ---------------------------------------------------------------------------

    fn record(&self, flow: &Flow) -> FlowRecord {
        let c = flow.client_dir;
        let s = 1 - c;
        let decision: Option<&Decision> = flow.decision.as_ref();
        let mut meta: Meta = flow.meta.clone();
        if let Some(d) = decision {
            if !d.evidence.is_empty() {
                set_default(&mut meta, "evidence", Value::String(d.evidence.to_string()));
            }
        }
        if let Some(encap) = &flow.encap {
            meta.insert("encap".into(), Value::Array(encap.iter().map(|l| Value::String((*l).into())).collect()));
        }
        let anomalies = flow.live_anomalies();
        if anomalies > 0 {
            meta.insert("tcp_overlap_conflicts".into(), anomalies.into());
        }
        FlowRecord {
            ts_start: flow.ts_start,
            ts_end: flow.ts_end(),
            transport: if flow.is_tcp() { "tcp" } else { "udp" },
            src_ip: flow.client_ip().to_string(),
            src_port: flow.client_port(),
            dst_ip: flow.server_ip().to_string(),
            dst_port: flow.server_port(),
            orientation: flow.orientation,
            protocol: decision.map_or_else(|| "unknown".to_string(), |d| d.protocol.clone()),
            confidence: decision.map_or(0.0, |d| d.confidence),
            packets_c2s: flow.sides[c].pkts,
            packets_s2c: flow.sides[s].pkts,
            bytes_c2s: flow.sides[c].bytes,
            bytes_s2c: flow.sides[s].bytes,
            meta,
            pcap: self.pcap_name.clone(),
        }
    }
}

fn full(flow: &Flow) -> bool {
    let Some(b) = &flow.buffers else { return true };
    if flow.is_tcp() {
        b.streams.iter().all(|s| s.as_ref().is_some_and(|s| s.full()))
    } else {
        b.units.iter().all(|u| u.len() >= MAX_UDP_UNITS)
    }
}

fn held(flow: &Flow) -> usize {
    let Some(b): Option<&Box<Buffers>> = flow.buffers.as_ref() else { return 0 };
    if flow.is_tcp() {
        b.streams.iter().flatten().map(|s| s.data.len()).sum()
    } else {
        b.units.iter().flatten().map(|u| u.len()).sum()
    }
}
