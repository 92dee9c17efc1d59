//! Ending flows (a timeout, eviction or the end of input) and the record each one leaves.
use std::sync::Arc;

use super::{Order, Tracker, SWEEP, UNKNOWN};
use crate::flow::community_id::community_id;
use crate::flow::expect;
use crate::flow::resume::Ended;
use crate::flow::shape::{tunnel_capable, ShapeView};
use crate::flow::slot::{Flow, Verdict};
use crate::flow::table::FlowId;
use crate::meta::{FlowMeta, Value};
use crate::record::FlowRecord;
use crate::tunnel;

/// Why a flow ended: its record's `end_reason`, and whether its connection may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EndReason {
    /// The input ended with the flow still open.
    EndOfInput,
    /// Its FINs or RST, and the linger after them.
    Closed,
    /// Silent past its idle timeout.
    Idle,
    /// The oldest flow of a full table.
    Evicted,
}

impl EndReason {
    /// `meta.end_reason`: none at the end of input, where every open flow ends.
    fn meta_text(self) -> Option<&'static str> {
        match self {
            EndReason::EndOfInput => None,
            EndReason::Closed => Some("closed"),
            EndReason::Idle => Some("idle"),
            EndReason::Evicted => Some("evicted"),
        }
    }

    /// The table ended the flow, not its connection, which may speak again (`flow::resume`).
    fn by_table(self) -> bool {
        matches!(self, EndReason::Idle | EndReason::Evicted)
    }
}

impl Tracker {
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
            self.remove(id, EndReason::EndOfInput, (0.0, created));
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
    pub(super) fn remove(&mut self, id: FlowId, reason: EndReason, tie: (f64, u64)) {
        if self.table.get(id).inspecting {
            self.leaving = true;
            self.conclude(id);
            self.leaving = false;
        }
        let mut flow = self.table.take(id);
        if reason.by_table() && flow.is_tcp() {
            self.remember_ended(&flow);
        }
        // The flow is gone: its metadata moves into the record as it is (a frozen buffer stays
        // one), rather than being copied or decoded.
        let meta = std::mem::take(&mut flow.meta);
        let mut rec = self.record_with(&flow, meta);
        if let Some(text) = reason.meta_text() {
            rec.meta.set_default("end_reason", text.into());
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
        self.spill_if_full();
    }

    /// A classified TCP flow ended by the table (idle, or evicted when it was full), not by its
    /// connection, which may speak again (`flow::resume`).
    fn remember_ended(&mut self, flow: &Flow) {
        if let Some(verdict) = flow.decision.as_ref().filter(|d| d.sig().is_some()) {
            let ended = Ended::new(
                Arc::clone(verdict),
                flow.number,
                flow.ts_end(),
                &flow.key,
                flow.client_dir(),
            );
            self.resumable.remember(&flow.key, ended);
        }
    }

    /// Hand `finished` to `spill` once it holds a batch's worth (see `Tracker::spill`).
    fn spill_if_full(&mut self) {
        let Tracker {
            spill,
            finished,
            classified,
            stats,
            table,
            keyed,
            ..
        } = self;
        if let Some((at, spill)) = spill.as_mut() {
            if !*keyed && finished.len() >= *at {
                spill(
                    std::mem::take(finished),
                    std::mem::take(classified),
                    stats,
                    table.len(),
                );
            }
        }
    }

    pub(super) fn record(&self, flow: &Flow) -> FlowRecord {
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
pub(super) fn shaped(flow: &Flow) -> bool {
    let protocol = flow.decision.as_deref().map_or("unknown", |d| &*d.protocol);
    flow.is_tcp() && tunnel_capable(protocol) && !flow.shape.is_empty()
}

/// The flow's shape as the tunnel classifier reads it, when its record carries one: the numbers
/// `meta.shape` was written from, not the record's map decoded again.
pub(super) fn shape_view(flow: &Flow) -> Option<ShapeView<'_>> {
    shaped(flow).then(|| flow.shape.view(flow.client_dir()))
}
