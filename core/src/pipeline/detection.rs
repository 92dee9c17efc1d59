//! Detection on a flow's bytes: its inspection, classification, the other side's
//! confirmation, its metadata, and the end of its inspection.
use std::sync::Arc;

use super::records::shape_view;
use super::{
    head_stop_of, transport_of, Tracker, CONFIRM_TRIES, MIN_EVIDENCE_BYTES, TINY_SEGMENT_FACTOR,
};
use crate::decode::TCP;
use crate::detect::engine::{nothing_matched, Engine, Pending, Transport};
use crate::detect::entropy::entropy_facts;
use crate::detect::signature::Signature;
use crate::detect::upgrades::{upgrade_meta, upgrade_pending, upgrade_settles, upgrade_watch};
use crate::flow::reassembly::{StreamBuffer, DEFAULT_DEPTH, MIDSTREAM_DEPTH};
use crate::flow::slot::{Flow, Orientation, Verdict};
use crate::flow::table::FlowId;
use crate::flow::SYN;
use crate::meta::Value;
use crate::tunnel;

impl Tracker {
    pub(super) fn inspect(&mut self, id: FlowId, d: usize, flags: u8, seq: u32, payload: &[u8]) {
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
    pub(super) fn report_early(&mut self, id: FlowId) {
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
                take_upgrades(flow, signature, &engine);
                flow.upgrades_stale = false;
            } else {
                flow.upgrades_stale = true;
            }
            watching = upgrade_pending(signature, &flow.meta);
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
                take_upgrades(flow, signature, &engine);
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
    pub(super) fn conclude(&mut self, id: FlowId) {
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
}

/// What the conversation says of an upgrade (a banner, a login in clear, STARTTLS, CONNECT, a
/// WebSocket), read from the flow's units by role, into its facts.
fn take_upgrades(flow: &mut Flow, signature: &Signature, engine: &Engine) {
    let found = {
        let (client, server) = flow.units_by_role();
        upgrade_meta(signature, &client, &server, engine)
    };
    for (k, v) in found {
        flow.meta.insert(k, v);
    }
}

pub(super) fn full(flow: &Flow) -> bool {
    flow.buffers.as_ref().is_none_or(|b| b.full())
}

pub(super) fn held(flow: &Flow) -> usize {
    flow.buffers.as_ref().map_or(0, |b| b.held_bytes())
}
