//! The flow table's clocks: the sweep at each interval, idle and linger timeouts, the
//! active timeout of long flows, and when the sweep next looks at each flow.
use super::records::{shape_view, EndReason};
use super::{transport_of, Tracker, OWN, RELEASE, SWEEP};
use crate::flow::slot::{Flow, Side, Verdict};
use crate::flow::table::FlowId;
use crate::meta::Value;
use crate::tunnel;

/// A timer entry's time brought forward by a margin: the sweep checks the flow itself with
/// `now - a >= b`, and an entry at `a + b` as rounded could otherwise come up a sweep late.
/// An early entry only costs a look.
pub(super) fn early(at: f64) -> f64 {
    at - (1e-3 + at.abs() * 1e-12)
}

impl Tracker {
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

    /// After a packet of flow (`id`, `stamp`): schedule the flow again if its timeout may have
    /// moved earlier, or if it is inspected and its facts, which the sweep freezes once the flow
    /// is quiet, could shrink while no entry is queued to bring it up for that.
    pub(super) fn watch_timers(&mut self, id: FlowId, stamp: u64, stepped_back: bool) {
        let Some(flow) = self.table.current(id, stamp) else {
            return;
        };
        if stepped_back || (flow.inspecting && !flow.freeze_queued && flow.meta.would_shrink()) {
            self.reschedule(id);
        }
    }

    /// Queue flow `id` for the sweep at `next_check`.
    pub(super) fn reschedule(&mut self, id: FlowId) {
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
    fn timed_out(&self, flow: &Flow, now: f64) -> Option<EndReason> {
        let c = &self.config;
        if let Some(at) = flow.closed_at() {
            return (now - at >= c.linger).then_some(EndReason::Closed);
        }
        (now - flow.ts_end() >= self.idle(flow)).then_some(EndReason::Idle)
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

    /// Report the TCP flows closed at least `linger` ago, earliest close first. (A flow reopened
    /// by data after its RST has left the queue; closing again queues it again.)
    fn release_closed(&mut self, now: f64) {
        let linger = self.config.linger;
        while let Some(c) = self.table.next_closed() {
            if now - c.at < linger {
                return;
            }
            self.table.pop_closed();
            self.remove(c.id, EndReason::Closed, (c.at, c.seq));
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
}
