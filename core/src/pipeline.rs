//! Wires the core's stages: decode -> flows -> detect, one packet at a time, and hands each
//! finished flow out as a `FlowRecord`. Policy, findings and outputs are Python's.
//!
//! A packet of a flow whose inspection has ended costs a decode, one table look-up and counter
//! updates; detection work is bounded per flow by payload packets, not bytes.
use std::sync::{Arc, LazyLock};

use hashbrown::HashSet;

use crate::bpf::Filter;
use crate::decode::{Decoded, Decoder, Encap, Packet, Peeked, SUPPORTED_LINKTYPES, TCP};
use crate::detect::announce;
use crate::detect::engine::{nothing_matched, Engine, Pending, Transport};
use crate::detect::entropy::entropy_facts;
use crate::detect::signature::Signature;
use crate::detect::upgrades::{upgrade_meta, upgrade_pending, upgrade_settles, upgrade_watch};
use crate::flow::community_id::community_id;
use crate::flow::expect::{self, Event, ExpectTable};
use crate::flow::reassembly::{StreamBuffer, DEFAULT_DEPTH, MIDSTREAM_DEPTH};
use crate::flow::shape::{tunnel_capable, ShapeView, DEFAULT_SHAPE_PACKETS};
use crate::flow::table::{Flow, FlowId, FlowTable, Key, Orientation, Side, Verdict, ACK, RST, SYN};
use crate::flow::verdicts::Verdicts;
use crate::meta::{FlowMeta, Value};
use crate::record::FlowRecord;
use crate::source::Record;
use crate::tunnel;

/// Tunables, with the Python engine's defaults.
#[derive(Clone, Debug)]
pub struct Config {
    pub max_flows: usize,
    /// Seconds without a packet after which a flow ends, by transport, unless its protocol's
    /// signature gives its own (`Signature::idle`).
    pub idle_tcp: f64,
    pub idle_udp: f64,
    /// A closed TCP flow stays this long to absorb its last ACKs before it is reported.
    pub linger: f64,
    /// Capture seconds between idle sweeps (each looks at the flows its timer queue brings up).
    pub sweep_interval: f64,
    /// Give up classifying after this many payload packets (nDPI-like).
    pub max_payload_packets: u32,
    /// Payload packets inspected after classification, for metadata.
    pub meta_packets: i32,
    /// This analyzer keeps only flows whose symmetric hash falls in shard `shard_index`.
    pub shard_index: u32,
    pub shard_count: u32,
    /// Payload packets kept in `meta.shape` (bounded by `shape::MAX_SHAPE_PACKETS`).
    pub shape_packets: usize,
}

/// A timer entry's time brought forward by a margin: the sweep checks the flow itself with
/// `now - a >= b`, and an entry at `a + b` as rounded could otherwise come up a sweep late.
/// An early entry only costs a look.
fn early(at: f64) -> f64 {
    at - (1e-3 + at.abs() * 1e-12)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_flows: 200_000,
            idle_tcp: 300.0,
            idle_udp: 60.0,
            linger: 2.0,
            sweep_interval: 1.0,
            max_payload_packets: 12,
            meta_packets: 8,
            shard_index: 0,
            shard_count: 1,
            shape_packets: DEFAULT_SHAPE_PACKETS,
        }
    }
}

/// Below this many held bytes, the payload-packet budget stretches (1-byte segments)...
pub const MIN_EVIDENCE_BYTES: usize = 256;
/// ... up to this many times the budget.
pub const TINY_SEGMENT_FACTOR: u32 = 8;
/// Growths of the silent side tried against a one-sided verdict (`Tracker::confirm`): an
/// answer split over a few segments, not a bulk transfer re-scored segment by segment.
const CONFIRM_TRIES: u8 = 3;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub malformed: u64,
    pub non_ip: u64,
    pub fragments: u64,
    pub fragments_dropped: u64,
    pub unsupported_link: u64,
    /// Encrypted 802.11 data frames (counted in `non_ip` too).
    pub encrypted_frames: u64,
    pub flows_evicted: u64,
    pub other_shard: u64,
    /// Frames the capture filter (`set_filter`) left out: not in `packets` or `bytes`, but
    /// counted in the packet numbers (a flow's id is its first packet's number in the file).
    pub filtered: u64,
}

/// Where a record falls in the single-threaded output order, so the outputs of shards can be
/// merged back into it (see `parallel`): the packet at which it was emitted, the phase within
/// that packet (0 sweep, 1 release of closed flows, 2 the packet itself; the final drain comes
/// after every packet, as phase 0), then the order within the phase (creation order for a sweep
/// or the drain, (close time, closing packet) for releases).
#[derive(Clone, Copy, Debug)]
pub struct Order {
    pub pkt: u64,
    pub phase: u8,
    pub at: f64,
    pub sub: u64,
    /// The packet that created the flow (0-based; its `flow_id` is this plus one).
    pub created: u64,
    /// Encapsulation layers of the flow: a tunnel's flow and the first flow inside it are
    /// created by the same packet, the tunnel's first (fewer layers), whichever shard each is in.
    pub layers: u8,
}

impl Order {
    pub fn cmp_key(&self, other: &Order) -> std::cmp::Ordering {
        self.pkt
            .cmp(&other.pkt)
            .then(self.phase.cmp(&other.phase))
            .then(self.at.total_cmp(&other.at))
            .then(self.sub.cmp(&other.sub))
            .then(self.layers.cmp(&other.layers))
    }
}

const SWEEP: u8 = 0;
const RELEASE: u8 = 1;
const OWN: u8 = 2;

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
    /// The capture filter (`analyze -f`): frames it rejects are numbered and counted, nothing
    /// else, as if a kernel filter had kept them from the capture.
    filter: Option<Arc<Filter>>,
}

/// The protocol of a record no decision named, one copy for them all.
static UNKNOWN: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("unknown"));

/// Everything after decoding: the flow table, timers, detection and the finished records.
pub struct Tracker {
    pub config: Config,
    pub engine: Arc<Engine>,
    known: Arc<KnownPorts>,
    /// Every record's `pcap`, one copy shared by them.
    pub pcap_name: Option<Arc<str>>,
    pub stats: Stats,
    table: FlowTable,
    next_sweep: f64,
    swept: bool,
    /// Set while a flow being removed is concluded: its metadata goes into the record next,
    /// so freezing it when inspection ends would only be decoded again at once.
    leaving: bool,
    /// Finished flows, in the order they ended, waiting for the caller.
    pub finished: Vec<FlowRecord>,
    /// When set, flows are also handed out as soon as they are classified (the monitor).
    pub report_classified: bool,
    pub classified: Vec<FlowRecord>,
    /// Index (0-based) of the packet being processed, and of the next one.
    pkt: u64,
    next_pkt: u64,
    phase: u8,
    /// When set (a shard of `parallel`), `order[i]` says where `finished[i]` goes in the
    /// single-threaded order.
    pub keyed: bool,
    pub order: Vec<Order>,
    /// Announced connections (`flow::expect`); a keyed shard reports `events` instead.
    expect: ExpectTable,
    /// The verdicts the flows share.
    verdicts: Verdicts,
    pub events: Vec<Event>,
}

pub(crate) fn packet_key(pkt: &Packet<'_>) -> Key {
    Key {
        proto: pkt.proto,
        a: pkt.src,
        b: pkt.dst,
        a_port: pkt.sport,
        b_port: pkt.dport,
    }
}

/// The community ID of a tunnel's flow, put in the meta of each flow it carries
/// (`tunnel_community_id`) so one joins them; computable from the packet alone, so every shard
/// of `parallel` agrees.
fn tunnel_join(outer: &Key) -> String {
    community_id(
        0,
        outer.proto,
        &outer.a,
        outer.a_port,
        &outer.b,
        outer.b_port,
    )
}

/// Where `sig`'s protocol sends credentials in clear (`Conversation::login`).
/// Where a flow's kept client head ends: its signature's `head_stop`, else its conversation's
/// `login` (credentials follow).
fn head_stop_of(sig: Option<&Signature>) -> Option<&regex::bytes::Regex> {
    let sig = sig?;
    let login = || sig.conversation.as_ref()?.login.as_ref();
    sig.head_stop.as_ref().or_else(login)?.regex()
}

fn transport_of(proto: u8) -> Transport {
    if proto == TCP {
        Transport::Tcp
    } else {
        Transport::Udp
    }
}

impl Analyzer {
    pub fn new(
        config: Config,
        engine: Arc<Engine>,
        known: Arc<KnownPorts>,
        pcap_name: Option<String>,
    ) -> Self {
        let table = FlowTable::new(config.max_flows);
        let flows = Tracker {
            config,
            engine,
            known,
            pcap_name: pcap_name.map(Arc::from),
            stats: Stats::default(),
            table,
            next_sweep: f64::NEG_INFINITY,
            swept: false,
            leaving: false,
            finished: Vec::new(),
            report_classified: false,
            classified: Vec::new(),
            pkt: 0,
            next_pkt: 0,
            phase: OWN,
            keyed: false,
            order: Vec::new(),
            expect: ExpectTable::default(),
            verdicts: Verdicts::default(),
            events: Vec::new(),
        };
        Analyzer {
            decoder: Decoder::new(),
            flows,
            filter: None,
        }
    }

    /// Run every frame through `filter` first (None: keep every frame).
    pub fn set_filter(&mut self, filter: Option<Arc<Filter>>) {
        self.filter = filter;
    }

    /// One captured frame, whole on the wire.
    pub fn packet(&mut self, ts: f64, linktype: u32, frame: &[u8]) {
        self.packet_of_shard(ts, linktype, frame, 0, 1);
    }

    /// One frame of a capture, with its length on the wire (the filter's `len`).
    pub fn record(&mut self, rec: Record<'_>) {
        self.record_of_shard(rec, 0, 1);
    }

    /// `packet_of_shard` for a frame of a capture.
    pub fn record_of_shard(&mut self, rec: Record<'_>, shard: u32, shards: u32) {
        if self.filtered_out(rec.linktype, rec.data, rec.orig_len) {
            return;
        }
        self.decode_frame(rec.ts, rec.linktype, rec.data, shard, shards);
    }

    /// A frame of a capture whose packet was found already (`predecode`): as `record`, the
    /// decode left out. Only a packet that no earlier frame can change comes so (`Peeked`):
    /// no fragment, no tunnel.
    pub fn record_peeked(&mut self, rec: Record<'_>, peeked: Peeked) {
        if self.filtered_out(rec.linktype, rec.data, rec.orig_len) {
            return;
        }
        self.flows.frame(rec.ts, rec.data.len());
        let hash = peeked.hash();
        self.flows
            .packet_hashed(rec.ts, peeked.packet(rec.data), Some(hash));
    }

    /// A frame whose packets are all of another shard's flows (`parallel`'s reader found them
    /// with `decode::peek`): its time runs the timers and it is counted, as when its decode
    /// gave nothing of this shard, but it is not decoded.
    pub fn record_elsewhere(&mut self, rec: Record<'_>) {
        self.flows.frame(rec.ts, rec.data.len());
    }

    /// A frame the capture filter left out, found so by `parallel`'s reader.
    pub fn record_filtered(&mut self) {
        self.flows.stats.filtered += 1;
        self.flows.skip_packet();
    }

    /// The filter's verdict; a rejected frame still takes its packet number.
    fn filtered_out(&mut self, linktype: u32, frame: &[u8], orig_len: u32) -> bool {
        let Some(filter) = &self.filter else {
            return false;
        };
        if filter.matches(linktype, frame, orig_len) {
            return false;
        }
        self.flows.stats.filtered += 1;
        self.flows.skip_packet();
        true
    }

    /// One captured frame, its packet tracked only if its flow falls in shard `shard` of
    /// `shards` (`parallel`: every worker decodes every frame, so IP fragments meet in each
    /// worker's defragmenter and every counter but the flow table's is the whole capture's).
    pub fn packet_of_shard(
        &mut self,
        ts: f64,
        linktype: u32,
        frame: &[u8],
        shard: u32,
        shards: u32,
    ) {
        let wire = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        if self.filtered_out(linktype, frame, wire) {
            return;
        }
        self.decode_frame(ts, linktype, frame, shard, shards);
    }

    fn decode_frame(&mut self, ts: f64, linktype: u32, frame: &[u8], shard: u32, shards: u32) {
        let flows = &mut self.flows;
        flows.frame(ts, frame.len());
        let decoded = self.decoder.decode(ts, linktype, frame);
        match decoded {
            Decoded::Packet(mut p) => {
                let mine = |p: &Packet<'_>| shards <= 1 || packet_key(p).shard(shards) == shard;
                // A tunnel's datagram first: its flow is the older one (created at or before
                // the inner flow's first packet), as a single run's creation order has it.
                if let Some(outer) = p.tunnel.take() {
                    // The tunnel's key, not yet its community ID: that is hashed only when the
                    // inner flow first takes it, not for every packet of the tunnel.
                    let joins = packet_key(&outer);
                    if mine(&outer) {
                        flows.packet(ts, *outer);
                    }
                    if mine(&p) {
                        flows.inner_packet(ts, p, joins);
                    }
                } else if mine(&p) {
                    flows.packet(ts, p);
                }
            }
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
        self.flows.stats.encrypted_frames = d.protected;
    }

    /// Report every flow still open (end of capture or shutdown).
    pub fn drain(&mut self) {
        self.flows.drain();
    }

    /// See `Tracker::drain_some`.
    pub fn drain_some(&mut self, max: usize) -> bool {
        self.flows.drain_some(max)
    }
}

impl Tracker {
    /// New, without a decoder: a shard of `parallel` (whose reader decodes).
    pub fn new(
        config: Config,
        engine: Arc<Engine>,
        known: Arc<KnownPorts>,
        pcap_name: Option<String>,
    ) -> Self {
        Analyzer::new(config, engine, known, pcap_name).flows
    }

    pub fn live_flows(&self) -> usize {
        self.table.len()
    }

    /// Entries in the flow table's timer queue (for the fuzz harness's bound).
    pub fn timer_entries(&self) -> usize {
        self.table.timer_entries()
    }

    /// A frame left out by the capture filter: it keeps its number, and nothing else happens
    /// (no timer runs at its time, as none would if a kernel filter had dropped it).
    pub fn skip_packet(&mut self) {
        self.next_pkt += 1;
    }

    /// The timers, before each captured frame (decodable or not). They run from capture time
    /// only, so a shard given every frame's time (and only its own flows' packets) ends and
    /// expires its flows at exactly the packets the whole run does.
    pub fn timers(&mut self, ts: f64) {
        self.pkt = self.next_pkt;
        self.next_pkt += 1;
        if ts >= self.next_sweep {
            self.phase = SWEEP;
            self.sweep(ts);
        }
        self.phase = RELEASE;
        self.release_closed(ts);
        self.phase = OWN;
    }

    /// A frame of `len` bytes captured at `ts`, decoded or not: counted, and its time runs the
    /// timers.
    fn frame(&mut self, ts: f64, len: usize) {
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
        self.timers(ts);
    }

    /// A hint that the packet of the key with this `flow_hash` comes soon
    /// (`FlowTable::prefetch`).
    pub fn prefetch(&self, hash: u64) {
        self.table.prefetch(hash);
    }

    /// A hint that the packet of the key with this `flow_hash` comes later
    /// (`FlowTable::prefetch_index`).
    pub fn prefetch_index(&self, hash: u64) {
        self.table.prefetch_index(hash);
    }

    fn packet(&mut self, ts: f64, pkt: Packet<'_>) {
        self.packet_hashed(ts, pkt, None);
    }

    /// `packet`, with its key's `flow_hash` when it was worked out ahead.
    fn packet_hashed(&mut self, ts: f64, pkt: Packet<'_>, hash: Option<u64>) {
        let key = packet_key(&pkt);
        self.flow_packet(
            ts,
            key,
            hash,
            pkt.flags,
            pkt.seq,
            pkt.payload,
            pkt.wire_len,
            pkt.encap,
        );
    }

    /// A packet found inside a tunnel whose own datagram has its flow: the inner flow's meta
    /// names that flow (see `tunnel_join`).
    fn inner_packet(&mut self, ts: f64, pkt: Packet<'_>, joins: Key) {
        let key = packet_key(&pkt);
        self.packet(ts, pkt);
        if let Some((id, _)) = self.table.lookup(&key) {
            let flow = self.table.get_mut(id);
            if !flow.meta.contains_key("tunnel_community_id") {
                flow.meta
                    .insert("tunnel_community_id".into(), tunnel_join(&joins).into());
            }
        }
    }

    /// One decoded packet, after `timers` for its frame. `wire_len`: the payload length the
    /// headers state (`Packet::wire_len`), for the flow's shape.
    #[allow(clippy::too_many_arguments)]
    pub fn flow_packet(
        &mut self,
        ts: f64,
        key: Key,
        hash: Option<u64>,
        flags: u8,
        seq: u32,
        payload: &[u8],
        wire_len: u32,
        encap: Option<Encap>,
    ) {
        let plen = payload.len();
        let is_tcp = key.proto == TCP;
        let (id, d) = match self.table.lookup_with(&key, hash) {
            None => {
                if self.config.shard_count > 1
                    && key.shard(self.config.shard_count) != self.config.shard_index
                {
                    self.stats.other_shard += 1;
                    return;
                }
                (self.new_flow(ts, key, flags, encap), 0)
            }
            Some((id, d)) => {
                let f = self.table.get(id);
                if flags & SYN != 0 && flags & ACK == 0 && f.closed_at().is_some() {
                    // A new connection on the same 5-tuple: the old one is over.
                    self.remove(id, "closed", (0.0, 0));
                    (self.new_flow(ts, key, flags, encap), 0)
                } else {
                    (id, d)
                }
            }
        };
        let flow = self.table.get_mut(id);
        // Capture times that step back can bring a flow's idle timeout forward.
        let stepped_back = ts < flow.ts_end();
        let stamp = flow.stamp;
        let side = &mut flow.sides[d];
        side.ts = ts;
        side.pkts += 1;
        side.bytes += plen as u64;
        // The payload length is what the decoder kept: the IP/UDP length, cut to what was
        // captured (a snap length makes it short of the header's).
        flow.history.packet(d == flow.client_dir(), flags, plen);
        if is_tcp && wire_len > 0 {
            let n = self.config.shape_packets;
            let skip = flow.shape.skip();
            flow.shape
                .packet(d, wire_len, ts, flow.client_dir(), skip, n);
        }
        if flow.inspecting && (plen > 0 || flags & SYN != 0) {
            self.inspect(id, d, flags, seq, payload);
        }
        if plen > 0 {
            self.announcements(id, d, ts, payload);
        }
        if is_tcp && flags & 5 != 0 {
            self.tcp_close(id, d, flags, ts);
        }
        self.watch_timers(id, stamp, stepped_back);
    }

    /// After a packet of flow (`id`, `stamp`): schedule the flow again if its timeout may have
    /// moved earlier, or if it is inspected and its facts, which the sweep freezes once the flow
    /// is quiet, could shrink while no entry is queued to bring it up for that.
    fn watch_timers(&mut self, id: FlowId, stamp: u64, stepped_back: bool) {
        let Some(flow) = self.table.current(id, stamp) else {
            return;
        };
        if stepped_back || (flow.inspecting && !flow.freeze_queued && flow.meta.would_shrink()) {
            self.reschedule(id);
        }
    }

    /// Queue flow `id` for the sweep at `next_check`.
    fn reschedule(&mut self, id: FlowId) {
        let (at, freeze) = self.next_check(self.table.get(id));
        let flow = self.table.get_mut(id);
        flow.freeze_queued |= freeze;
        self.table.schedule(id, at);
    }

    /// When the sweep must next look at `flow`, early rather than late (`early`): the first
    /// time its linger or idle timeout could fall due, or, while it is inspected and freezing
    /// its facts would give memory back, once it has been quiet a sweep interval (then true).
    fn next_check(&self, flow: &Flow) -> (f64, bool) {
        let c = &self.config;
        let end = flow.ts_end();
        let timeout = match flow.closed_at() {
            Some(at) => at + c.linger,
            // A flow not yet classified may yet be found to be a protocol whose timeout is
            // shorter; a classified one keeps its protocol.
            None if flow.decision.is_none() => {
                let transport = transport_of(flow.key.proto);
                let default = self.transport_idle(flow);
                end + self
                    .engine
                    .shortest_idle(transport)
                    .map_or(default, |s| s.min(default))
            }
            None => end + self.idle(flow),
        };
        let quiet = end + c.sweep_interval;
        if flow.inspecting && flow.meta.would_shrink() && (quiet < timeout || timeout.is_nan()) {
            (early(quiet), true)
        } else {
            (early(timeout), false)
        }
    }

    /// Why the sweep at `now` ends `flow`, if it does.
    fn timed_out(&self, flow: &Flow, now: f64) -> Option<&'static str> {
        let c = &self.config;
        if let Some(at) = flow.closed_at() {
            return (now - at >= c.linger).then_some("closed");
        }
        (now - flow.ts_end() >= self.idle(flow)).then_some("idle")
    }

    /// How long `flow` may stay silent: its protocol's own idle timeout, else its transport's.
    fn idle(&self, flow: &Flow) -> f64 {
        flow.decision
            .as_deref()
            .and_then(Verdict::sig)
            .and_then(|i| self.engine.signatures().get(i))
            .and_then(|s| s.idle[transport_of(flow.key.proto).index()])
            .unwrap_or_else(|| self.transport_idle(flow))
    }

    fn transport_idle(&self, flow: &Flow) -> f64 {
        if flow.is_tcp() {
            self.config.idle_tcp
        } else {
            self.config.idle_udp
        }
    }

    fn new_flow(&mut self, ts: f64, key: Key, flags: u8, encap: Option<Encap>) -> FlowId {
        let (client_dir, orientation) = if key.proto == TCP && flags & SYN != 0 {
            // SYN: the sender is the client; SYN-ACK first: the receiver is.
            (usize::from(flags & ACK != 0), Orientation::Handshake)
        } else {
            self.infer_client(key.proto, key.a_port, key.b_port)
        };
        if self.table.is_full() {
            if let Some(old) = self.table.oldest() {
                self.table.evicted += 1;
                self.stats.flows_evicted = self.table.evicted;
                self.table
                    .get_mut(old)
                    .meta
                    .insert("evicted".into(), Value::Bool(true));
                self.remove(old, "evicted", (0.0, 0));
            }
        }
        let mut flow = Flow::new(key, ts, client_dir, orientation, encap);
        // The flow's id: the number of its first packet in the capture (1-based, tshark's
        // frame.number), the same whatever the worker count or shard.
        flow.number = self.pkt + 1;
        if self.keyed {
            self.events.push(Event::Create {
                pkt: self.pkt,
                ts,
                key,
                flow_id: flow.number,
            });
        } else {
            let expected = self.expect.take(&key, ts);
            flow.set_expected(expected);
        }
        let id = self.table.insert(flow);
        self.reschedule(id);
        id
    }

    /// A control connection's packet (FTP, SIP, RTSP: the signature `announces`): the
    /// connections it announces, for the flows that follow. Every packet of such a flow is read,
    /// inspection over or not; one segment at a time (`detect::announce`).
    fn announcements(&mut self, id: FlowId, d: usize, ts: f64, payload: &[u8]) {
        let flow = self.table.get_mut(id);
        let Some(parser) = flow
            .decision
            .as_deref()
            .and_then(Verdict::sig)
            .and_then(|i| self.engine.signatures().get(i))
            .and_then(|s| s.announces)
        else {
            return;
        };
        let from_client = d == flow.client_dir();
        let found = announce::scan(parser, from_client, payload);
        if found.is_empty() {
            return;
        }
        for exp in expect::believe(flow, from_client, ts, found) {
            if self.keyed {
                self.events.push(Event::Announce { pkt: self.pkt, exp });
            } else {
                self.expect.insert(exp);
            }
        }
    }

    /// Who is the client of a flow seen mid-stream? Evidence from ports, best first.
    fn infer_client(&self, proto: u8, sport: u16, dport: u16) -> (usize, Orientation) {
        let t = transport_of(proto);
        let s_known = self.known.has(sport, t);
        let d_known = self.known.has(dport, t);
        if proto != TCP {
            // UDP: the first datagram's sender is the client, unless it plainly came from a
            // service port to an unassigned higher one (a reply seen before its request).
            if s_known && !d_known && sport < dport {
                return (1, Orientation::Inferred);
            }
            return (0, Orientation::Handshake);
        }
        if d_known && !s_known {
            return (0, Orientation::Inferred);
        }
        if s_known && !d_known {
            return (1, Orientation::Inferred);
        }
        (if dport <= sport { 0 } else { 1 }, Orientation::Inferred)
    }

    fn tcp_close(&mut self, id: FlowId, d: usize, flags: u8, ts: f64) {
        let flow = self.table.get_mut(id);
        if flags & RST != 0 {
            flow.rst = true;
        } else {
            flow.fins |= 1 << d;
        }
        if flow.closed_at().is_none() && (flow.rst || flow.fins == 3) {
            flow.set_closed_at(Some(ts));
            let settle = flow.inspecting && !flow.rst;
            self.table.mark_closed(id, self.pkt);
            self.reschedule(id);
            // After both FINs no data may follow: settle now. A RST is only the sender's word
            // (an end host ignores one with a bad sequence number: Ptacek & Newsham's
            // insertion), so the verdict waits for the linger time.
            if settle {
                self.conclude(id);
            }
        }
    }

    // ---- timers ---------------------------------------------------------------------------

    /// Report the TCP flows closed at least `linger` ago, earliest close first. (A flow reopened
    /// by data after its RST has left the queue; closing again queues it again.)
    fn release_closed(&mut self, now: f64) {
        let linger = self.config.linger;
        while let Some(c) = self.table.next_closed() {
            if now - c.at < linger {
                return;
            }
            self.table.pop_closed();
            self.remove(c.id, "closed", (c.at, c.seq));
        }
    }

    fn sweep(&mut self, ts: f64) {
        let interval = self.config.sweep_interval;
        let boundary = (ts / interval).floor() * interval;
        if self.swept {
            // A flow still inspected but quiet (an answered DNS flow waits out its idle
            // timeout) keeps its facts frozen until it speaks again.
            self.expire(boundary, Some(boundary - interval));
        }
        self.swept = true;
        self.next_sweep = boundary + interval;
    }

    /// End the flows whose timeout is due at `now`, in the order they began; freeze the facts
    /// of those still inspected but quiet since `freeze_before`. Only the flows the timer queue
    /// brings up are looked at.
    fn expire(&mut self, now: f64, freeze_before: Option<f64>) {
        for (id, stamp) in self.table.take_due(now) {
            if !self.table.is_current(id, stamp) {
                continue;
            }
            self.table.get_mut(id).freeze_queued = false;
            let flow = self.table.get(id);
            if let Some(reason) = self.timed_out(flow, now) {
                let created = flow.created();
                self.remove(id, reason, (0.0, created));
                continue;
            }
            if let Some(before) = freeze_before {
                let flow = self.table.get_mut(id);
                if flow.inspecting && flow.ts_end() < before {
                    flow.meta.freeze();
                }
            }
            self.reschedule(id);
        }
    }

    /// Expire idle flows as of `now` (the monitor's wall clock: a silent link still ends its
    /// flows between packets).
    pub fn expire_idle(&mut self, now: f64) {
        self.expire(now, None);
    }

    /// The active timeout: every flow no longer inspected, not closed, and older than `active`
    /// seconds is reported as a segment (`end_reason` = `reason`) and goes on in place, with its
    /// verdict, roles and id, counters from zero and `meta.segment` one higher (as NetFlow
    /// exporters cut long flows). Returns the number of segments cut.
    pub fn split_long_flows(&mut self, active: f64, now: f64, reason: &str) -> usize {
        let mut cut = 0;
        for (id, stamp) in self.table.ids_in_order() {
            if !self.table.is_current(id, stamp) {
                continue;
            }
            let flow = self.table.get(id);
            if flow.inspecting || flow.closed_at().is_some() || now - flow.ts_start < active {
                continue;
            }
            let mut rec = self.record(flow);
            rec.meta.set_default("end_reason", reason.into());
            tunnel::annotate_shape(&mut rec, shape_view(flow).as_ref());
            self.finished.push(rec);
            let flow = self.table.get_mut(id);
            let end = flow.ts_end();
            flow.ts_start = end;
            for side in &mut flow.sides {
                *side = Side {
                    ts: end,
                    ..Side::default()
                };
            }
            flow.meta.remove("end_reason");
            flow.meta.remove("evicted");
            let segment = flow
                .meta
                .get("segment")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                + 1;
            flow.meta.insert("segment".into(), segment.into());
            flow.reported = true;
            cut += 1;
        }
        cut
    }

    /// New signatures (a reload): live flows keep their state; a verdict's signature is found
    /// again by protocol name in the new set (inspection ends if it is gone). Every flow is
    /// filed again for the sweep: the new set may give its protocol a shorter idle timeout.
    pub fn set_engine(&mut self, engine: Arc<Engine>, known: Arc<KnownPorts>) {
        // The old set's verdicts name its signatures' numbers: shared no more; the flows'
        // renumbered verdicts are shared anew.
        self.verdicts.clear();
        let live = self.table.ids_in_order();
        for &(id, stamp) in &live {
            if !self.table.is_current(id, stamp) {
                continue;
            }
            let flow = self.table.get_mut(id);
            // Bytes nothing matched may match a signature of the new set.
            if let Some(b) = flow.buffers.as_mut() {
                b.scored_nothing = false;
            }
            let Some(d) = flow.decision.as_deref() else {
                continue;
            };
            let Some(old) = d.sig() else { continue };
            let mut renumbered = d.clone();
            renumbered.set_sig(
                engine
                    .signatures()
                    .iter()
                    .position(|s| *s.protocol == *d.protocol),
            );
            let gone = renumbered.sig().is_none();
            flow.decision = Some(self.verdicts.share(renumbered));
            if gone && flow.inspecting {
                flow.inspecting = false;
                flow.release_buffers(head_stop_of(self.engine.signatures().get(old)));
                flow.meta.freeze();
            }
        }
        self.engine = engine;
        self.known = known;
        for (id, stamp) in live {
            if self.table.is_current(id, stamp) {
                self.reschedule(id);
            }
        }
    }

    pub fn drain(&mut self) {
        while !self.drain_some(usize::MAX) {}
    }

    /// End of input, a slice at a time: report up to `max` of the flows still open (oldest
    /// first); true once none is left. Records of a large table then never exist all at once.
    pub fn drain_some(&mut self, max: usize) -> bool {
        self.pkt = u64::MAX;
        self.phase = SWEEP;
        let mut n = 0;
        while n < max {
            let Some(id) = self.table.oldest() else { break };
            let created = self.table.get(id).created();
            self.remove(id, "end", (0.0, created));
            n += 1;
        }
        let empty = self.table.is_empty();
        if empty {
            self.table.clear_closed();
        }
        self.stats.flows_evicted = self.table.evicted;
        empty
    }

    /// `tie`: the record's place among those of its packet and phase (see `Order`).
    fn remove(&mut self, id: FlowId, reason: &str, tie: (f64, u64)) {
        if self.table.get(id).inspecting {
            self.leaving = true;
            self.conclude(id);
            self.leaving = false;
        }
        let mut flow = self.table.take(id);
        // The flow is gone: its metadata moves into the record as it is (a frozen buffer stays
        // one), rather than being copied or decoded.
        let meta = std::mem::take(&mut flow.meta);
        let mut rec = self.record_with(&flow, meta);
        if reason != "end" {
            rec.meta.set_default("end_reason", reason.into());
        }
        tunnel::annotate_shape(&mut rec, shape_view(&flow).as_ref()); // last: after end_reason
        if self.keyed {
            let (at, sub) = tie;
            self.order.push(Order {
                pkt: self.pkt,
                phase: self.phase,
                at,
                sub,
                created: flow.created(),
                layers: flow
                    .encap()
                    .map_or(0, |e| u8::try_from(e.len()).unwrap_or(u8::MAX)),
            });
        }
        self.finished.push(rec);
    }

    // ---- detection ------------------------------------------------------------------------

    fn inspect(&mut self, id: FlowId, d: usize, flags: u8, seq: u32, payload: &[u8]) {
        let flow = self.table.get_mut(id);
        let grew;
        if flow.key.proto == TCP {
            let mut seq = seq;
            if flags & SYN != 0 {
                if flow.set_isn(d, seq) {
                    let stream = flow.buffers.as_mut().map(|b| b.streams_mut());
                    if let Some(s) = stream.and_then(|s| s.get_mut(d)).and_then(Option::as_mut) {
                        s.syn(seq);
                    }
                }
                seq = seq.wrapping_add(1);
            }
            if payload.is_empty() {
                return;
            }
            let (isn, midstream) = (flow.isn(d), flow.midstream());
            let Some(slot) = flow.buffers_for_data().streams_mut().get_mut(d) else {
                return;
            };
            let stream = slot.get_or_insert_with(|| {
                let mut s = StreamBuffer::new(if midstream {
                    MIDSTREAM_DEPTH
                } else {
                    DEFAULT_DEPTH
                });
                if let Some(isn) = isn {
                    s.syn(isn);
                }
                s
            });
            grew = stream.add(seq, payload);
        } else if !payload.is_empty() {
            let Some(units) = flow.buffers_for_data().datagrams_mut().get_mut(d) else {
                return;
            };
            grew = units.push(payload);
        } else {
            return;
        }
        if grew {
            if let Some(b) = flow.buffers.as_mut() {
                b.scored_nothing = false; // what was scored is no longer all there is
            }
        }
        if flow.rst && flow.closed_at().is_some() {
            flow.rst = false; // data after a RST: the RST was not honoured
            flow.set_closed_at(None);
        }
        // Every payload packet counts, grown or not: a flow that never shows classifiable bytes
        // still ends its inspection. Tiny segments (a banner sent a byte at a time) get a longer
        // budget, up to a hard cap.
        flow.payload_pkts += 1;
        if flow.decision.is_none() {
            let budget = self.config.max_payload_packets;
            let n = flow.payload_pkts;
            let fin = full(flow)
                || (n >= budget
                    && (n >= budget * TINY_SEGMENT_FACTOR || held(flow) >= MIN_EVIDENCE_BYTES));
            if grew || fin {
                self.classify(id, fin);
            }
        } else {
            flow.meta_left -= 1;
            if grew {
                self.confirm(id, d);
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
        let scored_nothing = flow.buffers.as_ref().is_some_and(|b| b.scored_nothing);
        let decision = if fin && scored_nothing {
            Ok(nothing_matched())
        } else {
            let (client, server) = flow.units_by_role();
            engine.classify(
                transport,
                &client,
                &server,
                flow.server_port(),
                flow.orientation == Orientation::Inferred,
                fin,
                Some(flow.client_port()),
            )
        };
        let mut decision = match decision {
            Ok(d) => d,
            Err(why) => {
                if let Some(b) = flow.buffers.as_mut() {
                    b.scored_nothing = why == Pending::NothingMatched;
                }
                return;
            }
        };
        if decision.swapped {
            // The bytes said the first sender was the server (a reply whose request went to a
            // group address, or came before the capture): roles from evidence, not from order.
            flow.client ^= 1;
            flow.history.swap_roles();
            flow.orientation = Orientation::Inferred;
        }
        let found = std::mem::take(&mut decision.meta);
        let had_meta = !found.is_empty();
        if !flow.meta.is_frozen() && flow.meta.is_empty() {
            // The first facts (most flows): the decision's map becomes the flow's as it is.
            flow.meta = found.into();
        } else {
            for (k, v) in found {
                flow.meta.insert(k, v);
            }
        }
        let done = decision.done;
        let has_sig = decision.sig.is_some();
        // One side's bytes decided: the other side's, when they come, may confirm it.
        let confirm = match (decision.client_match, decision.server_match) {
            (Some(m), None) => Some((1 - flow.client_dir(), (true, m))),
            (None, Some(m)) => Some((flow.client_dir(), (false, m))),
            _ => None,
        };
        if let (Some(b), Some((by, known)), true) = (flow.buffers.as_mut(), confirm, has_sig) {
            b.confirm_by = u8::try_from(by).ok();
            b.confirm_known = (known.0, u32::try_from(known.1).unwrap_or(u32::MAX));
            b.confirm_tries = CONFIRM_TRIES;
        }
        let protocol_watch = decision
            .sig
            .and_then(|i| engine.signatures().get(i))
            .is_some_and(upgrade_watch);
        flow.shape.classified(&decision.protocol);
        flow.decision = Some(self.verdicts.share(Verdict::from(decision)));
        if !has_sig {
            self.give_up(id);
            // The monitor hears of a flow given up on as unknown at once, as of a classified one.
            self.report_early(id);
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
                    let bit = 1u8
                        << if flow.client_dir() == 0 {
                            role
                        } else {
                            1 - role
                        };
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
        // Facts are frozen from the verdict on, not only when inspection ends: what the flow's
        // later bytes add goes on the end of the buffer (`FlowMeta::insert`). With 100,000
        // flows open, most still inspected when the capture ends, their live maps were 15 MB.
        let flow = self.table.get_mut(id);
        if flow.inspecting {
            flow.meta.freeze();
        }
        self.report_early(id);
    }

    /// A verdict reached on one side's bytes gains the other side's evidence when direction `d`
    /// (that other side) grew and its bytes match the signature too: the confidence both sides
    /// give and evidence naming both. Tried on the first `CONFIRM_TRIES` growths of `d`.
    fn confirm(&mut self, id: FlowId, d: usize) {
        let flow = self.table.get_mut(id);
        let Some(b) = flow.buffers.as_mut() else {
            return;
        };
        if b.confirm_by.map(usize::from) != Some(d) || b.confirm_tries == 0 {
            return;
        }
        b.confirm_tries -= 1;
        let Some(sig) = flow.decision.as_deref().and_then(Verdict::sig) else {
            return;
        };
        let known = (b.confirm_known.0, b.confirm_known.1 as usize);
        let ports = [flow.server_port(), flow.client_port()];
        let confirmed = {
            let other = flow.units_of(d);
            self.engine
                .confirm(sig, transport_of(flow.key.proto), known, &other, &ports)
        };
        let Some((confidence, evidence)) = confirmed else {
            return;
        };
        if let Some(b) = flow.buffers.as_mut() {
            b.confirm_by = None;
        }
        if let Some(v) = flow.decision.as_deref() {
            if confidence > v.confidence {
                let mut confirmed = v.clone();
                confirmed.confidence = confidence;
                confirmed.evidence = evidence;
                flow.decision = Some(self.verdicts.share(confirmed));
            }
        }
    }

    /// With `report_classified` (the monitor), a flow's record as soon as its verdict is in.
    fn report_early(&mut self, id: FlowId) {
        if self.report_classified && !self.table.get(id).reported {
            self.table.get_mut(id).reported = true;
            let flow = self.table.get(id);
            let mut rec = self.record(flow);
            tunnel::annotate_shape(&mut rec, shape_view(flow).as_ref());
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
        let Some(decision) = flow.decision.as_deref() else {
            return;
        };
        let Some(sig) = decision.sig() else { return };
        let was_frozen = flow.meta.is_frozen();
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
            let is_client = d == flow.client_dir();
            let (found, done, partial) = {
                let units = flow.units_of(d);
                if is_client {
                    engine.extract(sig, transport, &units, &[])
                } else {
                    engine.extract(sig, transport, &[], &units)
                }
            };
            let mut new = false;
            // Facts the flow lacks are gathered at the front of the list and appended together
            // (a frozen map's buffer copied once, not once a fact); replaced facts keep their
            // place either way, so the map ends the same.
            let mut entries: Vec<(crate::meta::Key, Value)> = found.into_iter().collect();
            let mut fresh = 0;
            for i in 0..entries.len() {
                // The client's statement of a fact wins, whichever side spoke first
                // (`engine::client_first`); a server's own answers have names of their own.
                let (absent, replace) = match flow.meta.value_of(&entries[i].0) {
                    None => (true, false),
                    Some(old) => (false, is_client && *old != entries[i].1),
                };
                if absent {
                    entries.swap(fresh, i);
                    fresh += 1;
                } else if replace {
                    let (k, v) = std::mem::take(&mut entries[i]);
                    flow.meta.insert(k, v);
                }
                new |= absent || replace;
            }
            entries.truncate(fresh);
            if !entries.is_empty() {
                flow.meta.insert_new_all(entries);
            }
            // A growth that adds nothing ends the side, unless the probe read a message cut short.
            if new {
                flow.meta_seen |= bit;
            } else if grown.is_some() && flow.meta_seen & bit != 0 && !partial {
                flow.meta_done |= bit;
            }
            if done {
                flow.meta_done |= bit;
            }
        }
        let mut watching = false;
        let signature = engine.signature(sig);
        if transport == Transport::Tcp && upgrade_watch(signature) {
            // Banners, logins in clear, STARTTLS, CONNECT, WebSocket. Where the answer can only
            // come from the whole conversation it is worked out once, when inspection ends.
            if grown.is_none() || upgrade_settles(signature) {
                let found = {
                    let (client, server) = flow.units_by_role();
                    upgrade_meta(signature, &client, &server, &engine)
                };
                for (k, v) in found {
                    flow.meta.insert(k, v);
                }
                flow.upgrades_stale = false;
            } else {
                flow.upgrades_stale = true;
            }
            watching = upgrade_pending(signature, |k| flow.meta.contains_key(k));
        }
        if was_frozen && flow.meta.would_shrink() {
            // New facts wait in the map's tail, and a fact the client restated differently
            // thawed it: into the buffer now rather than left for the sweep's timer (the flow
            // may live long; a record's tail is written out as it is).
            flow.meta.freeze();
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
            let signature = flow.decision.as_deref().and_then(Verdict::sig);
            if let Some(signature) = signature.and_then(|i| engine.signatures().get(i)) {
                let found = {
                    let (client, server) = flow.units_by_role();
                    upgrade_meta(signature, &client, &server, &engine)
                };
                for (k, v) in found {
                    flow.meta.insert(k, v);
                }
            }
            flow.upgrades_stale = false;
        }
        flow.inspecting = false;
        let signature = flow.decision.as_deref().and_then(Verdict::sig);
        flow.release_buffers(head_stop_of(
            signature.and_then(|i| engine.signatures().get(i)),
        ));
        if !self.leaving {
            flow.meta.freeze();
        }
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
                // A verdict reached only now (a prelude alone, weak evidence) still waits for
                // facts no more bytes will bring: settle it, so the heads are kept.
                if self.table.get(id).inspecting {
                    self.end_inspection(id);
                }
            } else {
                // No verdict: no login pattern to cut the head at (and no payload to show).
                flow.inspecting = false;
                flow.release_buffers(None);
                if !self.leaving {
                    flow.meta.freeze();
                }
            }
        } else if flow.inspecting {
            self.end_inspection(id);
        }
    }

    // ---- output ---------------------------------------------------------------------------

    fn record(&self, flow: &Flow) -> FlowRecord {
        self.record_with(flow, flow.meta.to_meta().into())
    }

    /// The record of `flow`, with `meta` as its metadata so far.
    fn record_with(&self, flow: &Flow, mut meta: FlowMeta) -> FlowRecord {
        let c = flow.client_dir();
        let s = 1 - c;
        let decision: Option<&Verdict> = flow.decision.as_deref();

        if let Some(d) = decision {
            if !d.evidence.is_empty() {
                meta.set_default("evidence", Value::String(d.evidence.to_string()));
            }
        }
        if let Some(encap) = flow.encap() {
            meta.insert(
                "encap".into(),
                Value::Array(encap.iter().map(|l| Value::String((*l).into())).collect()),
            );
        }
        let anomalies = flow.live_anomalies();
        if anomalies > 0 {
            meta.insert("tcp_overlap_conflicts".into(), anomalies.into());
        }
        if shaped(flow) {
            meta.insert_written(
                "shape".into(),
                |w| flow.shape.write_meta(w, c),
                || flow.shape.to_meta(c),
            );
        }
        let (client_ip, server_ip) = (flow.client_ip(), flow.server_ip());
        let mut rec = FlowRecord {
            flow_id: flow.number,
            community_id: community_id(
                0,
                flow.key.proto,
                &client_ip,
                flow.client_port(),
                &server_ip,
                flow.server_port(),
            ),
            // To the microsecond, as Python's round(x, 6) gives it (the schema's duration).
            duration: tunnel::pyfmt::round_to(flow.ts_end() - flow.ts_start, 6),
            state: flow.history.state(),
            history: flow.history.history(),
            ts_start: flow.ts_start,
            ts_end: flow.ts_end(),
            transport: if flow.is_tcp() { "tcp" } else { "udp" },
            src_ip: client_ip.text(),
            src_port: flow.client_port(),
            dst_ip: server_ip.text(),
            dst_port: flow.server_port(),
            orientation: flow.orientation.as_str(),
            protocol: decision.map_or_else(|| Arc::clone(&UNKNOWN), |d| Arc::clone(&d.protocol)),
            confidence: decision.map_or(0.0, |d| d.confidence),
            packets_c2s: flow.sides[c].pkts,
            packets_s2c: flow.sides[s].pkts,
            bytes_c2s: flow.sides[c].bytes,
            bytes_s2c: flow.sides[s].bytes,
            meta,
            pcap: self.pcap_name.clone(),
        };
        if let Some(e) = flow.expected() {
            expect::apply(&mut rec, e);
        }
        rec
    }
}

/// Whether the flow's record carries its shape (`meta.shape`).
fn shaped(flow: &Flow) -> bool {
    let protocol = flow.decision.as_deref().map_or("unknown", |d| &*d.protocol);
    flow.is_tcp() && tunnel_capable(protocol) && !flow.shape.is_empty()
}

/// The flow's shape as the tunnel classifier reads it, when its record carries one: the numbers
/// `meta.shape` was written from, not the record's map decoded again.
fn shape_view(flow: &Flow) -> Option<ShapeView<'_>> {
    shaped(flow).then(|| flow.shape.view(flow.client_dir()))
}

fn full(flow: &Flow) -> bool {
    flow.buffers.as_ref().is_none_or(|b| b.full())
}

fn held(flow: &Flow) -> usize {
    flow.buffers.as_ref().map_or(0, |b| b.held_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::builtin::BUILTIN;
    use crate::detect::signature::load_texts_and;
    use crate::flow::table::FIN;

    const UDP: u8 = 17;
    const PSH: u8 = 0x08;

    /// Ethernet + IPv4 + TCP (flags) or UDP, no options.
    fn frame(
        proto: u8,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        flags: u8,
        seq: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let l4 = if proto == TCP { 20 } else { 8 };
        let total = (20 + l4 + payload.len()) as u16;
        let mut f = vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.1.to_be_bytes());
        f.extend_from_slice(&dst.1.to_be_bytes());
        if proto == TCP {
            f.extend_from_slice(&seq.to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        } else {
            f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
        }
        f.extend_from_slice(payload);
        f
    }

    fn analyzer() -> Analyzer {
        let sigs = load_texts_and(BUILTIN, &[]).expect("shipped signatures load");
        let engine = Arc::new(Engine::new(sigs, Default::default()));
        Analyzer::new(
            Config::default(),
            engine,
            Arc::new(KnownPorts::default()),
            None,
        )
    }

    /// (time, from the client?, flags, payload) between 10.0.0.1:40000 and 10.0.0.2:port.
    fn run(proto: u8, port: u16, packets: &[(f64, bool, u8, &[u8])]) -> Vec<FlowRecord> {
        let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], port));
        let mut a = analyzer();
        let mut seq = [1000u32, 5000u32];
        for &(ts, from_client, flags, payload) in packets {
            let d = usize::from(!from_client);
            let (src, dst) = if from_client { (c, s) } else { (s, c) };
            a.packet(ts, 1, &frame(proto, src, dst, flags, seq[d], payload));
            seq[d] =
                seq[d].wrapping_add(payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0));
        }
        a.drain();
        std::mem::take(&mut a.flows.finished)
    }

    #[test]
    fn a_full_handshake_and_fin_flow_is_sf() {
        let recs = run(
            TCP,
            80,
            &[
                (1.0, true, SYN, b""),
                (1.1, false, SYN | ACK, b""),
                (1.2, true, ACK, b""),
                (1.3, true, PSH | ACK, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                (
                    1.4,
                    false,
                    PSH | ACK,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                ),
                (1.5, true, FIN | ACK, b""),
                (1.6, false, FIN | ACK, b""),
                (1.7, true, ACK, b""),
            ],
        );
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        // No pure ACK from the server: no 'a'.
        assert_eq!((r.state, r.history.as_str()), ("SF", "ShADdFf"));
        assert_eq!(r.flow_id, 1);
        assert_eq!(r.duration, 0.7);
        assert_eq!(
            r.duration,
            crate::tunnel::pyfmt::round_to(r.ts_end - r.ts_start, 6)
        );
    }

    /// A stream nothing matched is scored at each growth; when the capture ends before its
    /// budget, the final call names it unknown from that scoring (`Buffers::scored_nothing`)
    /// rather than scoring the same bytes again. New signatures forget it.
    #[test]
    fn bytes_nothing_matched_are_named_unknown_at_the_end() {
        let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 4433));
        let junk: &[u8] = &[
            0x9c, 0x17, 0xe2, 0x01, 0x55, 0xaa, 0x3e, 0x80, 0x07, 0xd1, 0x6b, 0xf0,
        ];
        let scored_nothing = |a: &Analyzer| {
            let (id, _) = a.flows.table.ids_in_order()[0];
            let flow = a.flows.table.get(id);
            flow.buffers.as_ref().map(|b| b.scored_nothing)
        };
        let mut a = analyzer();
        a.packet(1.0, 1, &frame(TCP, c, s, PSH | ACK, 1000, junk));
        assert_eq!(scored_nothing(&a), Some(true));
        a.packet(1.1, 1, &frame(TCP, c, s, PSH | ACK, 1012, junk));
        assert_eq!(scored_nothing(&a), Some(true), "scored again at the growth");
        a.drain();
        let named = |r: &FlowRecord| {
            let evidence = r.meta.get("evidence").and_then(Value::as_str);
            (r.protocol.to_string(), evidence.unwrap_or("").to_string())
        };
        let want = ("unknown".to_string(), "no signature matched".to_string());
        assert_eq!(named(&a.flows.finished[0]), want);

        let mut b = analyzer();
        b.packet(1.0, 1, &frame(TCP, c, s, PSH | ACK, 1000, junk));
        let engine = Arc::clone(&b.flows.engine);
        b.flows.set_engine(engine, Arc::new(KnownPorts::default()));
        assert_eq!(scored_nothing(&b), Some(false));
        b.drain();
        assert_eq!(
            named(&b.flows.finished[0]),
            want,
            "scored again: the same answer"
        );
    }

    /// Flows that reach the same verdict point to one copy of it; a new signature set gives
    /// them a renumbered copy, shared anew, and never hands out the old set's.
    #[test]
    fn flows_with_the_same_verdict_share_it_until_the_signatures_change() {
        let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut a = analyzer();
        let s = ([10, 0, 0, 2], 80);
        let verdict = |a: &Analyzer, n: usize| {
            let (id, _) = a.flows.table.ids_in_order()[n];
            a.flows.table.get(id).decision.clone().expect("classified")
        };
        for port in [40000, 40001] {
            a.packet(
                1.0,
                1,
                &frame(TCP, ([10, 0, 0, 1], port), s, PSH | ACK, 1, get),
            );
        }
        let (first, second) = (verdict(&a, 0), verdict(&a, 1));
        assert_eq!(&*first.protocol, "http");
        assert!(Arc::ptr_eq(&first, &second));

        let engine = Arc::new(Engine::new(
            load_texts_and(BUILTIN, &[]).expect("shipped signatures load"),
            Default::default(),
        ));
        a.flows
            .set_engine(Arc::clone(&engine), Arc::new(KnownPorts::default()));
        let (renumbered, other) = (verdict(&a, 0), verdict(&a, 1));
        assert!(!Arc::ptr_eq(&renumbered, &first));
        assert_eq!(
            renumbered.sig(),
            first.sig(),
            "the same set: the same number"
        );
        assert_eq!(&*other.protocol, "http");
        a.packet(
            1.1,
            1,
            &frame(TCP, ([10, 0, 0, 1], 40002), s, PSH | ACK, 1, get),
        );
        let later = verdict(&a, 2);
        assert!(
            !Arc::ptr_eq(&later, &first),
            "the old set's copy is not handed out"
        );
        a.drain();
        let protocols: Vec<&str> = a.flows.finished.iter().map(|r| &*r.protocol).collect();
        assert_eq!(protocols, ["http"; 3]);
    }

    /// The packet that ends a stream's budget may also be the one that grows it: that final
    /// call scores the grown bytes, whatever the scoring before it found.
    #[test]
    fn the_packet_ending_the_budget_is_scored_with_the_rest() {
        let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 443));
        let junk = [0x9cu8, 0x17, 0xe2, 0x01, 0x55, 0xaa, 0x3e, 0x80].repeat(4);
        let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x20];
        record.extend_from_slice(&[0x5a; 32]);
        let mut a = analyzer();
        let budget = a.flows.config.max_payload_packets;
        let mut seq = 1000u32;
        for n in 0..budget - 1 {
            a.packet(
                1.0 + f64::from(n) / 10.0,
                1,
                &frame(TCP, c, s, PSH | ACK, seq, &junk),
            );
            seq = seq.wrapping_add(junk.len() as u32);
        }
        let (id, _) = a.flows.table.ids_in_order()[0];
        let flow = a.flows.table.get(id);
        assert!(flow.decision.is_none());
        assert_eq!(flow.buffers.as_ref().map(|b| b.scored_nothing), Some(true));
        a.packet(3.0, 1, &frame(TCP, s, c, PSH | ACK, 7000, &record));
        let flow = a.flows.table.get(id);
        let named = flow.decision.as_deref().map(|d| d.protocol.to_string());
        assert_eq!(named.as_deref(), Some("tls"));
    }

    /// (client's, server's) value of a fact both sides state, in the flow's record.
    fn both_sides(r: &FlowRecord, name: &str) -> (Option<Value>, Option<Value>) {
        let server = format!("{name}_server");
        (r.meta.get(name).cloned(), r.meta.get(&server).cloned())
    }

    /// A TCP flow on `port`: the handshake, then the two messages (from the client?, bytes) in turn.
    fn handshake_then(port: u16, first: (bool, &[u8]), second: (bool, &[u8])) -> Vec<FlowRecord> {
        after_handshake(port, &[first, second])
    }

    /// A TCP handshake to `port`, then each (from the client?, payload) a tenth of a second apart.
    fn after_handshake(port: u16, payloads: &[(bool, &[u8])]) -> Vec<FlowRecord> {
        let mut packets: Vec<(f64, bool, u8, &[u8])> = vec![
            (1.0, true, SYN, b""),
            (1.1, false, SYN | ACK, b""),
            (1.2, true, ACK, b""),
        ];
        for (i, &(from_client, payload)) in payloads.iter().enumerate() {
            packets.push((1.3 + 0.1 * i as f64, from_client, PSH | ACK, payload));
        }
        run(TCP, port, &packets)
    }

    #[test]
    fn a_fact_both_sides_state_keeps_the_clients_and_the_servers_answer_apart() {
        // The server answers last (HTTP) or speaks first (SSH): the record is the same either way.
        let http = handshake_then(
            80,
            (true, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            (false, b"HTTP/1.0 200 OK\r\n\r\n"),
        );
        assert_eq!(
            both_sides(&http[0], "http_version"),
            (Some("1.1".into()), Some("1.0".into()))
        );
        let ssh = handshake_then(
            22,
            (false, b"SSH-1.99-OpenSSH_3.9p1\r\n"),
            (true, b"SSH-2.0-OpenSSH_9.2p1\r\n"),
        );
        assert_eq!(&*ssh[0].protocol, "ssh");
        assert_eq!(
            both_sides(&ssh[0], "ssh_protoversion"),
            (Some("2.0".into()), Some("1.99".into()))
        );
    }

    #[test]
    fn a_verdict_from_one_sides_bytes_gains_the_other_sides_evidence() {
        // Z39.50: the client's InitializeRequest decides alone (0.85); the server's
        // InitializeResponse matches the signature too and confirms it.
        let init = |tag: u8| vec![tag, 0x07, 0x83, 0x02, 0x00, 0xe0, 0x84, 0x01, 0x00];
        let recs = handshake_then(210, (true, &init(0xb4)), (false, &init(0xb5)));
        let r = &recs[0];
        assert_eq!(&*r.protocol, "z3950");
        assert!(
            (r.confidence - (1.0 - 0.15 * 0.15)).abs() < 1e-9,
            "{}",
            r.confidence
        );
        let evidence = r.meta.get("evidence").and_then(Value::as_str).unwrap_or("");
        assert!(
            evidence.starts_with("client bytes match") && evidence.contains("; server bytes match")
        );
        // An answer the signature does not know leaves the verdict as the client's bytes gave it.
        let recs = handshake_then(210, (true, &init(0xb4)), (false, b"\x00\x01garbage"));
        assert_eq!((&*recs[0].protocol, recs[0].confidence), ("z3950", 0.85));
        let evidence = recs[0]
            .meta
            .get("evidence")
            .and_then(Value::as_str)
            .unwrap_or("");
        assert!(!evidence.contains("server bytes"), "{evidence}");
    }

    /// A NetBIOS session request (RFC 1002 4.3.2) from "PWCLI" to "PWSRV".
    fn session_request() -> Vec<u8> {
        let name = |n: &[u8], suffix: u8| {
            let mut raw = n.to_vec();
            raw.resize(15, b' ');
            raw.push(suffix);
            let mut out = vec![32u8];
            for b in raw {
                out.extend([b'A' + (b >> 4), b'A' + (b & 0xf)]);
            }
            out.push(0);
            out
        };
        let mut req = vec![0x81, 0, 0, 68];
        req.extend(name(b"PWSRV", 0x20));
        req.extend(name(b"PWCLI", 0));
        req
    }

    #[test]
    fn a_session_on_139_is_named_by_what_it_carries() {
        // The session request and its positive response only open the session: the SMB2
        // NEGOTIATE that follows names the flow.
        let mut negotiate = vec![0, 0, 0, 68];
        negotiate.extend(b"\xfeSMB");
        negotiate.extend(64u16.to_le_bytes());
        negotiate.resize(4 + 64 + 4, 0);
        let request = session_request();
        let recs = after_handshake(
            139,
            &[
                (true, &request),
                (false, b"\x82\x00\x00\x00"),
                (true, &negotiate),
            ],
        );
        assert_eq!(&*recs[0].protocol, "smb");
        assert_eq!(
            recs[0].meta.get("smb_command").and_then(Value::as_str),
            Some("negotiate")
        );
    }

    #[test]
    fn a_verdict_reached_when_the_flow_ends_keeps_the_heads() {
        // A session request nothing followed: NetBIOS, decided only as the flow is reported,
        // with its first bytes kept like any other verdict's.
        let req = session_request();
        let recs = after_handshake(139, &[(true, &req)]);
        assert_eq!(&*recs[0].protocol, "netbios");
        let head = recs[0].meta.get("client_head").and_then(Value::as_str);
        assert_eq!(head, Some(crate::text::hex(&req[..32]).as_str()));
    }

    #[test]
    fn a_udp_reply_seen_before_its_request_makes_its_sender_the_server() {
        // An LLMNR answer (RFC 4795: QR set) sent by unicast to the port that queried the group:
        // its flow starts with the reply, and neither port is in the services database.
        let mut answer = vec![0x12, 0x34, 0x80, 0, 0, 1, 0, 1, 0, 0, 0, 0];
        answer.extend(b"\x05pwsrv\x00\x00\x01\x00\x01");
        answer.extend(b"\x05pwsrv\x00\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04\x0a\x4d\x00\x01");
        let recs = run(UDP, 5355, &[(1.0, false, 0, &answer)]);
        let r = &recs[0];
        assert_eq!(&*r.protocol, "llmnr");
        assert_eq!((r.dst_port, r.src_port), (5355, 40000));
        assert_eq!((r.packets_c2s, r.packets_s2c), (0, 1));
        assert_eq!(r.orientation, "inferred");
    }

    /// Bytes held by the only live flow.
    fn held_by_the_flow(a: &Analyzer) -> usize {
        let live = a.flows.table.ids_in_order();
        assert_eq!(live.len(), 1);
        held(a.flows.table.get(live[0].0))
    }

    /// `segments` of 1,448 bytes from 10.0.0.2:443 to 10.0.0.1:40000, one every 20 s (a slow
    /// link), after a handshake or with none (a stream picked up in its middle); the bytes the
    /// flow held after each, and its record.
    fn server_segments(handshake: bool, segments: &[Vec<u8>]) -> (Vec<usize>, FlowRecord) {
        let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 443));
        let mut a = analyzer();
        if handshake {
            a.packet(0.0, 1, &frame(TCP, c, s, SYN, 999, b""));
            a.packet(0.1, 1, &frame(TCP, s, c, SYN | ACK, 4999, b""));
        }
        let mut seq = 5000u32;
        let mut held_after = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            a.packet(1.0 + 20.0 * i as f64, 1, &frame(TCP, s, c, ACK, seq, seg));
            seq = seq.wrapping_add(seg.len() as u32);
            held_after.push(held_by_the_flow(&a));
        }
        a.drain();
        let mut recs = std::mem::take(&mut a.flows.finished);
        assert_eq!(recs.len(), 1);
        (held_after, recs.remove(0))
    }

    /// `n` pseudo-random bytes (xorshift), as an encrypted stream looks.
    fn noise(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn a_stream_picked_up_in_its_middle_holds_only_the_midstream_depth() {
        let segments: Vec<Vec<u8>> = (0..6).map(|i| noise(1448, i + 1)).collect();
        let (held_after, rec) = server_segments(false, &segments);
        assert_eq!(
            held_after,
            vec![
                1448,
                MIDSTREAM_DEPTH,
                MIDSTREAM_DEPTH,
                MIDSTREAM_DEPTH,
                MIDSTREAM_DEPTH,
                MIDSTREAM_DEPTH
            ]
        );
        assert_eq!(&*rec.protocol, "unknown");
        // After a handshake the stream's start is known: the full depth, for hellos and
        // certificates.
        let (held_after, _) = server_segments(true, &segments);
        assert_eq!(held_after[..3], [1448, 2896, DEFAULT_DEPTH]);
    }

    #[test]
    fn tls_picked_up_inside_a_long_record_is_named_from_its_header() {
        // A 16 KiB application-data record (RFC 8446 5.2) cut into segments, no handshake seen.
        let mut record = vec![23, 3, 3, 0x40, 0x00];
        record.extend(noise(16384, 7));
        let segments: Vec<Vec<u8>> = record.chunks(1448).take(4).map(<[u8]>::to_vec).collect();
        let (held_after, rec) = server_segments(false, &segments);
        assert!(held_after.iter().all(|&n| n <= MIDSTREAM_DEPTH));
        assert_eq!(&*rec.protocol, "tls");
        assert_eq!(rec.meta.get("tls_midstream"), Some(&Value::Bool(true)));
    }

    #[test]
    fn a_refused_connection_is_rej() {
        let recs = run(
            TCP,
            81,
            &[(1.0, true, SYN, b""), (1.01, false, RST | ACK, b"")],
        );
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].state, recs[0].history.as_str()), ("REJ", "Sr"));
    }

    #[test]
    fn a_one_way_udp_flow_is_s0() {
        let recs = run(
            UDP,
            9999,
            &[(1.0, true, 0, b"\x01\x02\x03"), (2.0, true, 0, b"\x04")],
        );
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].state, recs[0].history.as_str()), ("S0", "D"));
        assert_eq!(recs[0].duration, 1.0);
    }

    /// The shipped set with dns.toml's `idle_udp` set to `secs`.
    fn engine_with_dns_idle(secs: u32) -> Arc<Engine> {
        let texts: Vec<(&str, String)> = BUILTIN
            .iter()
            .map(|&(name, text)| {
                let text = if name == "dns.toml" {
                    assert!(
                        text.contains("\nidle_udp = 10\n"),
                        "dns.toml gives its idle_udp"
                    );
                    text.replace("\nidle_udp = 10\n", &format!("\nidle_udp = {secs}\n"))
                } else {
                    text.to_owned()
                };
                (name, text)
            })
            .collect();
        let refs: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let sigs = load_texts_and(&refs, &[]).expect("signatures load");
        Arc::new(Engine::new(sigs, Default::default()))
    }

    const DNS_QUERY: &[u8] =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
    const DNS_ANSWER: &[u8] = b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x5d\xb8\xd8\x22";

    /// A DNS exchange (client port 40000) and a datagram of another UDP flow at 1 s, then a
    /// third flow's datagram at `at`: the flows the sweep at `at` ended (`ended`).
    fn ended_by(a: &mut Analyzer, at: f64) -> Vec<(u16, String)> {
        datagram(a, 1.0, 40000, 53, false, DNS_QUERY);
        datagram(a, 1.01, 40000, 53, true, DNS_ANSWER);
        datagram(a, 1.0, 40001, 9999, false, b"\x01\x02\x03");
        assert_eq!(ended(a), vec![]);
        datagram(a, at, 40002, 7777, false, b"\x05");
        ended(a)
    }

    fn analyzer_with_dns_idle(secs: u32) -> Analyzer {
        let known = Arc::new(KnownPorts::default());
        Analyzer::new(Config::default(), engine_with_dns_idle(secs), known, None)
    }

    #[test]
    fn a_protocols_signature_gives_its_flows_idle_timeout() {
        // dns.toml: idle_udp = 10. The DNS flow's last packet was at 1.01 s; the other flow
        // keeps the analyzer's 60 s.
        let mut a = analyzer();
        assert_eq!(ended_by(&mut a, 12.0), vec![(40000, "idle".to_owned())]);
        // The same timeout made 30 s by a signature file: the flow is still open at 12 s.
        let mut a = analyzer_with_dns_idle(30);
        assert_eq!(ended_by(&mut a, 12.0), vec![]);
        datagram(&mut a, 32.0, 40002, 7777, false, b"\x06");
        assert_eq!(ended(&a), vec![(40000, "idle".to_owned())]);
    }

    #[test]
    fn a_reload_that_shortens_a_protocols_idle_timeout_takes_effect_on_open_flows() {
        // Filed for the sweep under a 30 s timeout, then the reload makes it 10 s.
        let mut a = analyzer_with_dns_idle(30);
        datagram(&mut a, 1.0, 40000, 53, false, DNS_QUERY);
        datagram(&mut a, 1.01, 40000, 53, true, DNS_ANSWER);
        // A sweep at 3 s: the flow, quiet, is frozen and filed again, now for 31 s.
        datagram(&mut a, 3.0, 40002, 7777, false, b"\x04");
        assert_eq!(ended(&a), vec![]);
        let known = Arc::new(KnownPorts::default());
        a.flows.set_engine(engine_with_dns_idle(10), known);
        datagram(&mut a, 12.0, 40002, 7777, false, b"\x05");
        assert_eq!(ended(&a), vec![(40000, "idle".to_owned())]);
    }

    #[test]
    fn community_id_is_the_published_vector_and_flow_ids_number_first_packets() {
        let mut a = analyzer();
        let (c, s) = (([128, 232, 110, 120], 34855), ([66, 35, 250, 204], 80));
        a.packet(1.0, 1, &frame(TCP, c, s, SYN, 1, b""));
        // A reply seen first for a second flow: the id does not depend on who sent first.
        a.packet(
            1.5,
            1,
            &frame(TCP, s, ([128, 232, 110, 120], 34856), SYN | ACK, 1, b""),
        );
        a.drain();
        let recs = std::mem::take(&mut a.flows.finished);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].community_id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!((recs[0].src_port, recs[0].dst_port), (34855, 80));
        assert_eq!(recs[0].state, "S0");
        assert_eq!(
            recs.iter().map(|r| r.flow_id).collect::<Vec<_>>(),
            vec![1, 2]
        );
    }

    /// Source ports of the flows ended so far, with their `end_reason`.
    fn ended(a: &Analyzer) -> Vec<(u16, String)> {
        a.flows
            .finished
            .iter()
            .map(|r| {
                let why = r
                    .meta
                    .get("end_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                (r.src_port, why.to_string())
            })
            .collect()
    }

    /// One datagram from 10.0.0.1:`sport` to 10.0.0.2:`dport` (or back, `reply`).
    fn datagram(a: &mut Analyzer, ts: f64, sport: u16, dport: u16, reply: bool, payload: &[u8]) {
        let (c, s) = (([10, 0, 0, 1], sport), ([10, 0, 0, 2], dport));
        let (src, dst) = if reply { (s, c) } else { (c, s) };
        a.packet(ts, 1, &frame(UDP, src, dst, 0, 0, payload));
    }

    #[test]
    fn a_gtp_control_requests_head_stops_before_the_subscribers_imsi() {
        // gtp.toml's head_stop: a Create Session Request's first element is the IMSI (TS
        // 29.274 7.2.1); the kept head is the 12-byte header, the facts name no subscriber.
        let imsi = [
            0x01, 0x00, 0x08, 0x00, 0x89, 0x67, 0x45, 0x11, 0x22, 0x33, 0x44, 0xf5,
        ];
        let apn = [
            0x47, 0x00, 0x09, 0x00, 0x08, b'i', b'n', b't', b'e', b'r', b'n', b'e', b't',
        ];
        let mut request = vec![0x48, 32, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0];
        request.extend_from_slice(&imsi);
        request.extend_from_slice(&apn);
        let length = (request.len() - 4) as u16;
        request[2..4].copy_from_slice(&length.to_be_bytes());
        let mut a = analyzer();
        datagram(&mut a, 1.0, 2123, 2123, false, &request);
        a.drain();
        let r = &a.flows.finished[0];
        assert_eq!(&*r.protocol, "gtp");
        assert_eq!(r.meta["gtp_apn"], "internet");
        assert_eq!(r.meta["client_head"], "482000210000000000000700");
        assert!(!serde_json::to_string(&*r.meta)
            .unwrap()
            .contains("8967451122"));
    }

    #[test]
    fn idle_flows_end_at_the_sweep_their_timeout_falls_due_in_the_order_they_began() {
        let mut a = analyzer();
        for (i, ts) in [0.5, 0.6, 0.7].into_iter().enumerate() {
            datagram(&mut a, ts, 3000 + i as u16, 9999, false, b"x");
        }
        datagram(&mut a, 30.0, 3000, 9999, false, b"y"); // the first speaks again: due at 90
        datagram(&mut a, 60.9, 4000, 9999, false, b"t"); // before the sweep at 61
        assert!(a.flows.finished.is_empty());
        datagram(&mut a, 61.2, 4000, 9999, false, b"t");
        let idle = |ports: &[u16]| {
            ports
                .iter()
                .map(|&p| (p, "idle".to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(ended(&a), idle(&[3001, 3002]));
        datagram(&mut a, 89.5, 4001, 9999, false, b"t");
        assert_eq!(ended(&a).len(), 2);
        datagram(&mut a, 90.0, 4001, 9999, false, b"t"); // the sweep at 90: 90 - 30 >= 60
        assert_eq!(ended(&a), idle(&[3001, 3002, 3000]));
    }

    #[test]
    fn a_datagram_flow_found_to_be_dns_ends_after_the_dns_timeout() {
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
        let mut a = analyzer();
        datagram(&mut a, 0.5, 5353, 53, false, query);
        datagram(&mut a, 11.0, 4000, 9999, false, b"t");
        assert_eq!(ended(&a), vec![(5353, "idle".to_string())]);
    }

    #[test]
    fn capture_times_that_step_back_bring_a_timeout_forward() {
        let mut a = analyzer();
        let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80));
        a.packet(5.0, 1, &frame(TCP, c, s, ACK, 1, b""));
        a.packet(304.0, 1, &frame(TCP, s, c, ACK, 1, b""));
        // The sweep at 305 finds the flow active at 304: its next look is at 604.
        datagram(&mut a, 305.5, 4000, 9999, false, b"t");
        // The server's side steps back to 6: the flow's last packet is now at 6, due at 306.
        a.packet(6.0, 1, &frame(TCP, s, c, ACK, 1, b""));
        datagram(&mut a, 305.9, 4000, 9999, false, b"t");
        assert!(ended(&a).is_empty());
        datagram(&mut a, 306.5, 4000, 9999, false, b"t"); // the sweep at 306: 306 - 6 >= 300
        assert_eq!(ended(&a), vec![(40000, "idle".to_string())]);
    }

    #[test]
    fn capture_times_that_step_back_every_packet_keep_the_timer_queue_bounded() {
        let mut a = analyzer();
        for i in 0..20_000u32 {
            // Three flows; every other packet 1,000 s earlier than the one before.
            let ts = 1.0e9 + f64::from(i) * 0.001 - if i % 2 == 1 { 1000.0 } else { 0.0 };
            datagram(&mut a, ts, 3000 + (i % 3) as u16, 9999, i % 6 >= 3, b"x");
        }
        let live = a.flows.table.len();
        assert_eq!(live, 3);
        assert!(a.flows.table.timer_entries() <= 3 * live + 64 + 1);
    }

    type Endpoint = ([u8; 4], u16);

    /// An analyzer that has seen the SYN and SYN-ACK of 10.0.0.1:40000 -> 10.0.0.2:`port`
    /// (client ISN 1000, server 5000), and the two endpoints.
    fn syn_and_syn_ack(port: u16) -> (Analyzer, Endpoint, Endpoint) {
        let mut a = analyzer();
        let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], port));
        a.packet(1.0, 1, &frame(TCP, c, s, SYN, 1000, b""));
        a.packet(1.1, 1, &frame(TCP, s, c, SYN | ACK, 5000, b""));
        (a, c, s)
    }

    /// (inspecting, facts frozen, freezing would give memory back) of the first flow.
    fn facts_state(a: &Analyzer) -> (bool, bool, bool) {
        let (id, _) = a.flows.table.ids_in_order()[0];
        let f = a.flows.table.get(id);
        (f.inspecting, f.meta.is_frozen(), f.meta.would_shrink())
    }

    /// A classified flow still inspected keeps its facts frozen: what later bytes add goes on
    /// the end of the buffer, and no decoded copy is left behind.
    #[test]
    fn a_classified_flows_facts_stay_frozen_while_it_is_inspected() {
        let (mut a, c, s) = syn_and_syn_ack(80);
        let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        a.packet(1.2, 1, &frame(TCP, c, s, PSH | ACK, 1001, get));
        let (id, _) = a.flows.table.ids_in_order()[0];
        assert_eq!(
            facts_state(&a),
            (true, true, false),
            "frozen at the verdict"
        );
        // A second request is read against the frozen facts, a value at a time.
        let more = b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
        let seq = 1001 + get.len() as u32;
        a.packet(1.3, 1, &frame(TCP, c, s, PSH | ACK, seq, more));
        assert_eq!(facts_state(&a), (true, true, false));
        // The server's answer adds its facts and settles HTTP's: inspection ends.
        let ok = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 0\r\n\r\n";
        a.packet(1.4, 1, &frame(TCP, s, c, PSH | ACK, 5001, ok));
        assert_eq!(facts_state(&a), (false, true, false));
        let meta = a.flows.table.get(id).meta.to_meta();
        assert_eq!(meta.get("http_status"), Some(&Value::from(200)));
        assert_eq!(meta.get("http_host"), Some(&Value::from("x")));
        assert!(meta.contains_key("client_head") && meta.contains_key("server_head"));
    }

    /// A flow whose server spoke first: the client's facts, when they come, go on the end of
    /// the frozen facts without thawing them.
    #[test]
    fn the_other_sides_facts_join_the_frozen_ones() {
        let (mut a, c, s) = syn_and_syn_ack(22);
        a.packet(
            1.2,
            1,
            &frame(TCP, s, c, PSH | ACK, 5001, b"SSH-1.99-OpenSSH_3.9p1\r\n"),
        );
        let (id, _) = a.flows.table.ids_in_order()[0];
        assert_eq!(facts_state(&a), (true, true, false));
        let client = b"SSH-2.0-OpenSSH_9.2p1\r\n";
        a.packet(1.3, 1, &frame(TCP, c, s, PSH | ACK, 1001, client));
        assert_eq!(
            facts_state(&a),
            (true, true, false),
            "the client's facts frozen in"
        );
        let meta = a.flows.table.get(id).meta.to_meta();
        assert_eq!(meta.get("ssh_protoversion"), Some(&Value::from("2.0")));
        assert_eq!(
            meta.get("ssh_protoversion_server"),
            Some(&Value::from("1.99"))
        );
    }

    #[test]
    fn a_flow_holds_inspection_buffers_only_from_its_first_payload() {
        // Most open flows of a busy link are in their handshake or never carry data: they
        // hold no buffers. The SYN's sequence number still places the first data at offset 0.
        let mut a = analyzer();
        let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80));
        let held = |a: &Analyzer| {
            let (id, _) = a.flows.table.ids_in_order()[0];
            let f = a.flows.table.get(id);
            (f.inspecting, f.buffers.is_some(), f.units_of(0).concat())
        };
        a.packet(1.0, 1, &frame(TCP, c, s, SYN, 1000, b""));
        a.packet(1.1, 1, &frame(TCP, s, c, SYN | ACK, 5000, b""));
        a.packet(1.2, 1, &frame(TCP, c, s, ACK, 1001, b""));
        assert_eq!(held(&a), (true, false, vec![]));
        // The first segment arrives after the second: held out of order, then joined.
        a.packet(
            1.3,
            1,
            &frame(TCP, c, s, PSH | ACK, 1005, b"/ HTTP/1.1\r\n"),
        );
        assert_eq!(held(&a), (true, true, vec![]));
        a.packet(1.4, 1, &frame(TCP, c, s, PSH | ACK, 1001, b"GET "));
        assert_eq!(held(&a), (true, true, b"GET / HTTP/1.1\r\n".to_vec()));
        a.drain();
        let recs = std::mem::take(&mut a.flows.finished);
        assert_eq!(&*recs[0].protocol, "http");
    }

    #[test]
    fn a_reopened_flow_does_not_hold_up_the_release_of_others() {
        // Flow A: RST, then data (the RST was not honoured), then RST again at 2.5; flow B
        // closes at 1.5 behind A's first entry. B is due at 3.5 whatever A does.
        let mut a = analyzer();
        let (ca, cb, s) = (
            ([10, 0, 0, 1], 1000),
            ([10, 0, 0, 3], 1001),
            ([10, 0, 0, 2], 80),
        );
        a.packet(1.0, 1, &frame(TCP, ca, s, RST, 1, b""));
        a.packet(1.2, 1, &frame(TCP, ca, s, PSH | ACK, 1, b"x"));
        a.packet(1.5, 1, &frame(TCP, cb, s, RST, 1, b""));
        a.packet(2.5, 1, &frame(TCP, ca, s, RST, 2, b""));
        a.packet(3.6, 1, &frame(TCP, ([10, 0, 0, 9], 5), s, ACK, 1, b""));
        let ended: Vec<u16> = a.flows.finished.iter().map(|r| r.src_port).collect();
        assert_eq!(ended, vec![1001]);
    }
}
