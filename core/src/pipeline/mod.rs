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
use crate::detect::engine::{Engine, Transport};
use crate::detect::signature::Signature;
use crate::flow::community_id::community_id;
use crate::flow::expect::{self, Event, ExpectTable};
use crate::flow::key::Key;
use crate::flow::resume::Resumable;
use crate::flow::shape::DEFAULT_SHAPE_PACKETS;
use crate::flow::slot::{Flow, Orientation, Verdict};
use crate::flow::table::{FlowId, FlowTable};
use crate::flow::verdicts::Verdicts;
use crate::flow::{ACK, RST, SYN};
use crate::meta::Value;
use crate::record::FlowRecord;
use crate::source::Record;
use records::EndReason;

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
/// Verdicts of ended flows remembered for resumption, one per this many flows of `max_flows`
/// (72 bytes each and the hash tables' slack: at most some 5 MB at the default table size).
const FLOWS_PER_RESUMABLE: usize = 4;

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

/// Where a tracker hands finished records in the middle of a frame (`Tracker::spill`), with the
/// records of flows classified since the last hand-over (`Tracker::classified`), the counters
/// and the open flows as they stand.
pub type Spill = Box<dyn FnMut(Vec<FlowRecord>, Vec<FlowRecord>, &Stats, usize) + Send + Sync>;

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
    /// Set while an analysis reads ahead (`ahead`): once `finished` holds this many records,
    /// they go to the caller at once, even in the middle of a frame. One sweep can end
    /// thousands of flows at one packet (a capture's first lookups reaching their idle timeout
    /// together), and their records would otherwise all exist before the first is handed on.
    /// Records and their order are unchanged. Not for a keyed shard, whose records go with
    /// their `order`.
    pub spill: Option<(usize, Spill)>,
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
    /// The verdicts of TCP flows that ended idle or evicted, for the flows that continue them
    /// (`flow::resume`).
    resumable: Resumable,
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
        let flows = Tracker::new(config, engine, known, pcap_name);
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
    /// New, without a decoder: a shard of `parallel` (whose reader decodes), or an `Analyzer`'s.
    pub fn new(
        config: Config,
        engine: Arc<Engine>,
        known: Arc<KnownPorts>,
        pcap_name: Option<String>,
    ) -> Self {
        Tracker {
            resumable: Resumable::new(config.max_flows / FLOWS_PER_RESUMABLE),
            table: FlowTable::new(config.max_flows),
            config,
            engine,
            known,
            pcap_name: pcap_name.map(Arc::from),
            stats: Stats::default(),
            next_sweep: f64::NEG_INFINITY,
            swept: false,
            leaving: false,
            finished: Vec::new(),
            spill: None,
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
        }
    }

    pub fn live_flows(&self) -> usize {
        self.table.len()
    }

    /// Entries in the flow table's timer queue (for the fuzz harness's bound).
    pub fn timer_entries(&self) -> usize {
        self.table.timer_entries()
    }

    /// Verdicts remembered for connections that speak again (for the fuzz harness's bound).
    pub fn resumable_entries(&self) -> usize {
        self.resumable.len()
    }

    /// A frame left out by the capture filter: it keeps its number, and nothing else happens
    /// (no timer runs at its time, as none would if a kernel filter had dropped it).
    pub fn skip_packet(&mut self) {
        self.next_pkt += 1;
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
                    self.remove(id, EndReason::Closed, (0.0, 0));
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

    fn new_flow(&mut self, ts: f64, key: Key, flags: u8, encap: Option<Encap>) -> FlowId {
        // A SYN starts a new connection on the 5-tuple; anything else continues the one the
        // table ended there, if any (`flow::resume`).
        let resumed = if key.proto == TCP {
            self.resumable.take(&key, ts).filter(|_| flags & SYN == 0)
        } else {
            None
        };
        let (client_dir, orientation) = if key.proto == TCP && flags & SYN != 0 {
            // SYN: the sender is the client; SYN-ACK first: the receiver is.
            (usize::from(flags & ACK != 0), Orientation::Handshake)
        } else if let Some(ended) = &resumed {
            (ended.client_dir(&key), Orientation::Inferred)
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
                self.remove(old, EndReason::Evicted, (0.0, 0));
            }
        }
        let mut flow = Flow::new(key, ts, client_dir, orientation, encap);
        // The flow's id: the number of its first packet in the capture (1-based, tshark's
        // frame.number), the same whatever the worker count or shard.
        flow.number = self.pkt + 1;
        let resuming = resumed.is_some();
        if let Some(ended) = resumed {
            // Mid-stream bytes cannot confirm or refute the verdict: nothing to inspect.
            flow.shape.resumed(&ended.verdict.protocol);
            flow.inspecting = false;
            let evidence = format!(
                "resumes flow {} after {:.0} s of silence ({})",
                ended.flow_id,
                ts - ended.ts_end,
                ended.verdict.evidence
            );
            flow.meta.insert("resumes".into(), ended.flow_id.into());
            flow.meta.insert("evidence".into(), evidence.into());
            flow.decision = Some(ended.verdict);
        }
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
        if resuming {
            // Decided at its first packet: the monitor hears of it now, as of any verdict.
            self.report_early(id);
        }
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

    /// New signatures (a reload): live flows keep their state; a verdict's signature is found
    /// again by protocol name in the new set (inspection ends if it is gone). Every flow is
    /// filed again for the sweep: the new set may give its protocol a shorter idle timeout.
    pub fn set_engine(&mut self, engine: Arc<Engine>, known: Arc<KnownPorts>) {
        // The old set's verdicts name its signatures' numbers: shared no more; the flows'
        // renumbered verdicts are shared anew.
        self.verdicts.clear();
        let (verdicts, signatures) = (&mut self.verdicts, engine.signatures());
        self.resumable.renumber(|d| {
            let renumbered = renumbered_in(d, signatures);
            renumbered
                .sig()
                .is_some()
                .then(|| verdicts.share(renumbered))
        });
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
            let renumbered = renumbered_in(d, engine.signatures());
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
}

/// `verdict` in a new signature set's numbers: its signature found again by protocol name, or
/// none when the set has no signature for it.
fn renumbered_in(verdict: &Verdict, signatures: &[Signature]) -> Verdict {
    let mut renumbered = verdict.clone();
    renumbered.set_sig(
        signatures
            .iter()
            .position(|s| *s.protocol == *verdict.protocol),
    );
    renumbered
}

mod detection;
mod records;
mod timers;

#[cfg(test)]
mod tests;
