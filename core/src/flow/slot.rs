//! What the table holds for each flow: its sides' counters, roles, verdict, detection buffers,
//! history and shape, in a 256-byte slot, with what few flows have boxed beside it.
#![forbid(unsafe_code)]

use std::ops::Deref;
use std::sync::Arc;

use regex::bytes::Regex;

use super::conn_state::ConnHistory;
use super::datagrams::Datagrams;
use super::key::Key;
use super::reassembly::StreamBuffer;
use super::shape::Shape;
use crate::decode::{Addr, Encap, TCP};
use crate::detect::engine::Decision;
use crate::meta::FlowMeta;
use crate::text::hex;

/// Datagrams kept per direction for detection.
pub const MAX_UDP_UNITS: usize = 4;

/// First bytes of each direction kept for the analyst (hex in meta).
pub const HEAD_BYTES: usize = 32;

/// One direction of a flow: the counters and last time a packet updates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Side {
    pub pkts: u64,
    pub bytes: u64,
    pub ts: f64,
}

/// Detection state: made when an inspected flow first carries payload, dropped when inspection
/// ends.
#[derive(Debug)]
pub struct Buffers {
    pub held: Held,
    /// A verdict reached on one side's bytes: the direction whose bytes may still confirm it
    /// (`Engine::confirm`), the decided side's match, and how many more of the other direction's
    /// segments or datagrams are tried.
    pub confirm_by: Option<u8>,
    pub confirm_known: (bool, u32),
    pub confirm_tries: u8,
    /// The last scoring of these bytes matched no signature (`Pending::NothingMatched`), and
    /// they have not grown since (a growth clears it): a final call on them names the flow
    /// unknown without scoring them again.
    pub scored_nothing: bool,
}

/// The bytes a flow holds for detection, by transport (a TCP flow has no datagrams to keep
/// room for, a UDP flow no streams).
#[derive(Debug)]
pub enum Held {
    /// TCP: one reassembly buffer per direction, made when the direction first carries data.
    Streams([Option<StreamBuffer>; 2]),
    /// UDP: the first datagrams of each direction.
    Datagrams([Datagrams; 2]),
}

impl Buffers {
    pub fn new(tcp: bool) -> Self {
        Buffers {
            held: if tcp {
                Held::Streams([None, None])
            } else {
                Held::Datagrams(Default::default())
            },
            confirm_by: None,
            confirm_known: (false, 0),
            confirm_tries: 0,
            scored_nothing: false,
        }
    }

    /// The reassembly buffers by direction (none for UDP).
    pub fn streams(&self) -> &[Option<StreamBuffer>] {
        match &self.held {
            Held::Streams(s) => s,
            Held::Datagrams(_) => &[],
        }
    }

    pub fn streams_mut(&mut self) -> &mut [Option<StreamBuffer>] {
        match &mut self.held {
            Held::Streams(s) => s,
            Held::Datagrams(_) => &mut [],
        }
    }

    /// The datagrams kept by direction (none for TCP).
    pub fn datagrams(&self) -> &[Datagrams] {
        match &self.held {
            Held::Datagrams(u) => u,
            Held::Streams(_) => &[],
        }
    }

    pub fn datagrams_mut(&mut self) -> &mut [Datagrams] {
        match &mut self.held {
            Held::Datagrams(u) => u,
            Held::Streams(_) => &mut [],
        }
    }

    /// Nothing more can be held: both streams at their depth, or both directions' datagrams
    /// kept.
    pub fn full(&self) -> bool {
        match &self.held {
            Held::Streams(s) => s.iter().all(|s| s.as_ref().is_some_and(StreamBuffer::full)),
            Held::Datagrams(u) => u.iter().all(Datagrams::is_full),
        }
    }

    /// Bytes held, both directions.
    pub fn held_bytes(&self) -> usize {
        match &self.held {
            Held::Streams(s) => s.iter().flatten().map(|s| s.data.len()).sum(),
            Held::Datagrams(u) => u.iter().map(Datagrams::held_bytes).sum(),
        }
    }
}

/// What a flow keeps of the engine's `Decision`: its facts moved into the flow's meta, and
/// `swapped`/`done` were applied when it came. Flows share equal ones (`flow::verdicts`).
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Index into the engine's signatures (`sig`); None for "unknown". 32 bits: every flow
    /// carries one, and a signature set never holds billions.
    sig: Option<u32>,
    pub protocol: Arc<str>,
    pub confidence: f64,
    pub evidence: Arc<str>,
}

impl Verdict {
    pub fn new(
        sig: Option<usize>,
        protocol: Arc<str>,
        confidence: f64,
        evidence: Arc<str>,
    ) -> Self {
        let mut v = Verdict {
            sig: None,
            protocol,
            confidence,
            evidence,
        };
        v.set_sig(sig);
        v
    }

    /// Index into the engine's signatures; None for "unknown".
    pub fn sig(&self) -> Option<usize> {
        self.sig.map(|i| i as usize)
    }

    /// The verdict's signature in a new set (a reload), or None when the set has none.
    pub fn set_sig(&mut self, sig: Option<usize>) {
        self.sig = sig.and_then(|i| u32::try_from(i).ok());
    }
}

impl From<Decision> for Verdict {
    fn from(d: Decision) -> Self {
        Verdict::new(d.sig, d.protocol, d.confidence, d.evidence)
    }
}

/// How the client was told from the server: by the TCP handshake, or inferred (ports, the
/// bytes' evidence) for a flow picked up without one or for a datagram flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orientation {
    Handshake,
    Inferred,
}

impl Orientation {
    /// The record's `orientation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Orientation::Handshake => "handshake",
            Orientation::Inferred => "inferred",
        }
    }
}

/// One flow. Every live flow of the table has one, so it is kept small (see the size test):
/// what only inspection needs is in the boxed `Buffers`, the shape is boxed and made only for
/// TCP flows that carry payload, and the metadata is frozen once inspection is over. Four
/// cache lines exactly, aligned to them: a packet's look-up asks for a slot's lines ahead
/// (`FlowTable::prefetch`), and a slot straddling a fifth line cost a miss more.
#[derive(Debug)]
#[repr(align(64))]
pub struct Flow {
    pub key: Key,
    pub ts_start: f64,
    pub sides: [Side; 2],
    /// Which direction is the client's: 0 when endpoint `a` is the client (`client_dir`).
    pub client: u8,
    pub orientation: Orientation,
    /// What few flows have: the layers of a tunnelled flow, the announcement a flow fulfils.
    pub rare: Option<Box<Rare>>,
    /// Bit d set when direction d sent FIN.
    pub fins: u8,
    pub rst: bool,
    /// When the flow closed (its FINs or a RST), meaningful only while `closed` is set: an
    /// `Option<f64>` took 16 bytes of every slot (`closed_at()`).
    closed_ts: f64,
    closed: bool,
    pub payload_pkts: u32,
    /// Shared with the flows that reached the same one (`flow::verdicts`); an unrecognised
    /// flow, the bulk of a scan or a busy link, carries none.
    pub decision: Option<Arc<Verdict>>,
    pub meta: FlowMeta,
    pub meta_left: i32,
    /// Bit d: direction d's probes have yielded metadata.
    pub meta_seen: u8,
    /// Bit d: direction d has nothing more to tell.
    pub meta_done: u8,
    /// The monitor has emitted this flow's classification.
    pub reported: bool,
    /// Bytes came since the upgrades were last worked out.
    pub upgrades_stale: bool,
    pub inspecting: bool,
    /// The timer queue holds an entry that brings this flow up once it has been quiet a sweep
    /// interval, to freeze its facts (`Tracker::watch_timers`).
    pub freeze_queued: bool,
    /// Each direction's initial sequence number, once its SYN was seen (`isn`).
    isn: [u32; 2],
    /// Bit d: direction d's SYN was seen.
    isn_seen: u8,
    /// Made by the first payload of an inspected flow, dropped when inspection ends: a flow
    /// still in its handshake, or one that never carries data, holds none.
    pub buffers: Option<Box<Buffers>>,
    /// Overlap conflicts counted before the buffers were released.
    pub anomalies: u32,
    /// Insertion stamp: tells a live flow from a recycled slot in the order queues.
    pub stamp: u64,
    /// The record's `flow_id`: the number of the packet that created the flow in the whole
    /// capture (1-based), unique as a packet creates at most one flow, and the same whichever
    /// shard tracks the flow (`created` is its 0-based index).
    pub number: u64,
    /// Zeek's conn_state and history.
    pub history: ConnHistory,
    /// Sizes and gaps of the payload packets (`meta.shape` of tunnel-capable flows).
    pub shape: Shape,
}

/// A direction's units as a slice, held in place: at most `MAX_UDP_UNITS` (a stream's prefix is
/// one), and asked for at every scoring and extraction, where a list of them was an allocation
/// each time.
#[derive(Debug, Default)]
pub struct Units<'a> {
    items: [&'a [u8]; MAX_UDP_UNITS],
    len: usize,
}

impl<'a> Units<'a> {
    /// `unit` after the others; past `MAX_UDP_UNITS` (which no flow holds) it is left out.
    pub(super) fn push(&mut self, unit: &'a [u8]) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = unit;
            self.len += 1;
        }
    }
}

impl<'a> Deref for Units<'a> {
    type Target = [&'a [u8]];

    fn deref(&self) -> &[&'a [u8]] {
        &self.items[..self.len]
    }
}

/// A flow's state that few flows have, out of the slot every flow takes.
#[derive(Debug, Default)]
pub struct Rare {
    /// The layers the flow's first packet came through.
    pub encap: Option<Box<[&'static str]>>,
    /// The announcement this flow fulfils (`flow::expect`), found when it began; boxed, as
    /// every flow of a tunnel has a `Rare` and few have one.
    pub expected: Option<Box<super::expect::Expectation>>,
}

impl Flow {
    pub fn new(
        key: Key,
        ts: f64,
        client_dir: usize,
        orientation: Orientation,
        encap: Option<Encap>,
    ) -> Self {
        Flow {
            key,
            ts_start: ts,
            sides: [
                Side {
                    ts,
                    ..Side::default()
                },
                Side {
                    ts,
                    ..Side::default()
                },
            ],
            client: u8::from(client_dir != 0),
            orientation,
            rare: encap.map(|encap| {
                Box::new(Rare {
                    encap: Some(encap.into_boxed_slice()),
                    expected: None,
                })
            }),
            fins: 0,
            rst: false,
            closed_ts: 0.0,
            closed: false,
            payload_pkts: 0,
            decision: None,
            meta: FlowMeta::new(),
            meta_left: 0,
            meta_seen: 0,
            meta_done: 0,
            reported: false,
            upgrades_stale: false,
            inspecting: true,
            freeze_queued: false,
            isn: [0, 0],
            isn_seen: 0,
            buffers: None,
            anomalies: 0,
            stamp: 0,
            number: 0,
            history: ConnHistory::new(key.proto == TCP),
            shape: Shape::default(),
        }
    }

    /// When the flow closed (both FINs, or a RST), if it did.
    pub fn closed_at(&self) -> Option<f64> {
        self.closed.then_some(self.closed_ts)
    }

    pub fn set_closed_at(&mut self, at: Option<f64>) {
        self.closed = at.is_some();
        self.closed_ts = at.unwrap_or(0.0);
    }

    /// The layers the flow's first packet came through, when it was tunnelled.
    pub fn encap(&self) -> Option<&[&'static str]> {
        self.rare.as_ref()?.encap.as_deref()
    }

    /// The announcement this flow fulfils, if one was found when it began.
    pub fn expected(&self) -> Option<&super::expect::Expectation> {
        self.rare.as_ref()?.expected.as_deref()
    }

    pub fn set_expected(&mut self, expected: Option<super::expect::Expectation>) {
        match expected {
            Some(e) => self.rare.get_or_insert_with(Box::default).expected = Some(Box::new(e)),
            None => {
                if let Some(rare) = &mut self.rare {
                    rare.expected = None;
                }
            }
        }
    }

    /// Which direction is the client's: 0 when endpoint `a` is the client.
    pub fn client_dir(&self) -> usize {
        usize::from(self.client)
    }

    /// Index of the packet that created the flow in the whole capture (0-based).
    pub fn created(&self) -> u64 {
        self.number.saturating_sub(1)
    }

    /// Direction d's initial sequence number, once its SYN was seen.
    pub fn isn(&self, d: usize) -> Option<u32> {
        (self.isn_seen >> d & 1 != 0).then(|| self.isn[d])
    }

    /// Record direction d's SYN (the first one counts); false if one was seen already.
    pub fn set_isn(&mut self, d: usize, seq: u32) -> bool {
        if self.isn(d).is_some() {
            return false;
        }
        self.isn[d] = seq;
        self.isn_seen |= 1 << d;
        true
    }

    /// The detection buffers, made (for the flow's transport) when its first payload comes.
    pub fn buffers_for_data(&mut self) -> &mut Buffers {
        let tcp = self.is_tcp();
        self.buffers
            .get_or_insert_with(|| Box::new(Buffers::new(tcp)))
    }

    /// Neither direction's SYN was seen: the capture picked the flow up in its middle.
    pub fn midstream(&self) -> bool {
        self.isn_seen == 0
    }

    pub fn is_tcp(&self) -> bool {
        self.key.proto == TCP
    }

    pub fn ts_end(&self) -> f64 {
        let (a, b) = (self.sides[0].ts, self.sides[1].ts);
        if a >= b {
            a
        } else {
            b
        }
    }

    pub fn server_port(&self) -> u16 {
        if self.client == 0 {
            self.key.b_port
        } else {
            self.key.a_port
        }
    }

    pub fn client_port(&self) -> u16 {
        if self.client == 0 {
            self.key.a_port
        } else {
            self.key.b_port
        }
    }

    pub fn server_ip(&self) -> Addr {
        if self.client == 0 {
            self.key.b
        } else {
            self.key.a
        }
    }

    pub fn client_ip(&self) -> Addr {
        if self.client == 0 {
            self.key.a
        } else {
            self.key.b
        }
    }

    /// Direction d's units: its stream prefix for TCP, its first datagrams for UDP.
    pub fn units_of(&self, d: usize) -> Units<'_> {
        let mut units = Units::default();
        let Some(buf) = &self.buffers else {
            return units;
        };
        match &buf.held {
            Held::Streams(s) => {
                if let Some(s) = s[d].as_ref().filter(|s| !s.data.is_empty()) {
                    units.push(s.data.as_slice());
                }
            }
            Held::Datagrams(u) => u[d].iter().for_each(|unit| units.push(unit)),
        }
        units
    }

    /// (client units, server units).
    pub fn units_by_role(&self) -> (Units<'_>, Units<'_>) {
        let c = self.client_dir();
        (self.units_of(c), self.units_of(1 - c))
    }

    pub fn live_anomalies(&self) -> u32 {
        match &self.buffers {
            Some(b) => b.streams().iter().flatten().map(|s| s.anomalies).sum(),
            None => 0,
        }
    }

    /// Keep the first bytes for the analyst, free the rest: memory follows live flows only.
    /// The metadata stops growing here; a flow that stays in the table then has it frozen
    /// (`FlowMeta::freeze`) until its record.
    ///
    /// `login`: where the protocol's client head must stop (its signature's `head_stop`, else its
    /// `[conversation] login`, where credentials are sent). The client's head stops at the end of
    /// the first such match, so a password, a SASL response or a subscriber's identity that
    /// follows is never in a record.
    pub fn release_buffers(&mut self, login: Option<&Regex>) {
        let (cu, su) = self.units_by_role();
        let client_head = cu.first().map(|u| {
            let head = &u[..u.len().min(HEAD_BYTES)];
            match login.and_then(|r| r.find(head)) {
                Some(m) => hex(&head[..m.end()]),
                None => hex(head),
            }
        });
        let server_head = su.first().map(|u| hex(&u[..u.len().min(HEAD_BYTES)]));
        if let Some(h) = client_head {
            self.meta.set_default("client_head", h.into());
        }
        if let Some(h) = server_head {
            self.meta.set_default("server_head", h.into());
        }
        let anomalies = self.live_anomalies();
        if anomalies > 0 {
            self.meta
                .insert("tcp_overlap_conflicts".into(), anomalies.into());
            self.anomalies = anomalies;
        }
        self.buffers = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_stays_small() {
        // Every live flow takes a slot of this size until it is reported, and a capture holds
        // tens of thousands at once (issue 15: peak RSS within 100 MB on the 2M-packet mix with
        // ~30,000 live flows). Was 664 bytes before the metadata was frozen and the verdict,
        // shape and history were slimmed, 376 before the client side, orientation and SYN
        // numbers took a byte or a bit each and the verdict shared its protocol name, 320 before
        // the verdict, the tunnel layers and the announcement were boxed; grow it only for state
        // every flow needs, and box what only some flows or only inspection need.
        assert_size_at_most!(Flow, 256);
    }

    /// A direction's units come as a slice held in place, in order, bounded at
    /// `MAX_UDP_UNITS` (one more is left out, never a panic).
    #[test]
    fn units_are_a_bounded_slice_in_order() {
        let data: Vec<Vec<u8>> = (0..=MAX_UDP_UNITS as u8).map(|i| vec![i; 3]).collect();
        let mut units = Units::default();
        assert!(units.is_empty());
        for d in &data {
            units.push(d);
        }
        assert_eq!(units.len(), MAX_UDP_UNITS);
        assert_eq!(units.concat(), data[..MAX_UDP_UNITS].concat());
    }
}
