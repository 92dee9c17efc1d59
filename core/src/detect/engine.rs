//! The detection engine: which protocol do a flow's first bytes speak?
//!
//! Input is what reassembly kept of each direction: TCP one stream prefix per direction, UDP the
//! first datagrams ("units"). Each [[match]] carries a confidence; a signature's score combines
//! its best client-side and server-side match as independent evidence, 1 - (1 - c)(1 - s).
//! Ties resolve in a fixed order, never file order: score, probe-confirmed, `priority`, the
//! protocol's own port, the longer literal prefix, then the name. A `prelude` signature (STUN),
//! or a candidate whose matched sides are all `prelude` matches (a NetBIOS session request),
//! gives way to any other candidate reaching ACCEPT and, alone, waits for the final call.
//!
//! Weak evidence (a match flagged `weak`, or a probe-less pattern on a direction shorter than
//! SHORT_TOKEN bytes: `QUIT`, `+OK`, `AUTH x`) never outranks firm evidence: a candidate whose
//! every matched side is weak ranks below any with a firm side whatever the scores, and off its
//! own port counts only when both directions matched it, on a port another protocol owns too
//! (an RTMP handshake both ways on X11's 6002 is RTMP when nothing firm matched). Its own port
//! accepts it like any other at the end of the evidence.
//!
//! Orientation: with `may_swap` the bytes are also scored the other way round; UDP is also tried
//! reversed when nothing but a prelude reaches ACCEPT as given (the first datagram may be a reply).
//!
//! Cost: each candidate has a gate (gates.rs) that spares scoring it when no unit can match, and
//! one that cannot outscore a firm verdict already found is skipped. Neither changes the answer.
#![forbid(unsafe_code)]

use super::gates::{Admission, Bits, Gate};
use super::probes::{self, Kind, Probe, ProbeResult, Status, MAX_INPUT};
pub use super::signature::Transport;
use super::signature::{Match, Signature};
use crate::meta::{Meta, Value};
use crate::tunnel::pyfmt::round_to;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// Decide at once at or above this score.
pub const ACCEPT: f64 = 0.75;
/// At the end of the evidence, accept a weaker best candidate down to this.
pub const FALLBACK: f64 = 0.3;
/// A pattern (no probe) that held on a direction shorter than this is a bare token (`+OK\r\n`,
/// `:1\r\n`): weak evidence, like a match flagged `weak`.
pub const SHORT_TOKEN: usize = 6;
/// A probe sees at most this much of a unit.
pub const PROBE_INPUT: usize = MAX_INPUT;

#[derive(Clone, Debug)]
pub struct Decision {
    /// Index into the engine's signatures; None for "unknown".
    pub sig: Option<usize>,
    /// The signature's protocol name, shared with the engine (a flow keeps it until its record).
    pub protocol: Arc<str>,
    pub confidence: f64,
    pub evidence: Arc<str>,
    pub meta: Meta,
    /// The bytes matched with client and server the other way round.
    pub swapped: bool,
    /// Bit 0: the client side's facts are all in (ProbeResult::done); bit 1: the server's.
    pub done: u8,
    /// The matches (indices into the signature's) the evidence names on each side.
    pub client_match: Option<usize>,
    pub server_match: Option<usize>,
}

/// One [[match]] of a signature on one transport, resolved for scoring.
struct Plan {
    m: usize,
    to_client: bool,
    to_server: bool,
    probe: Option<&'static Probe>,
    /// The match names a probe that is not registered: it can never hold.
    missing: bool,
}

struct Candidate {
    sig: usize,
    max_c: f64,
    max_s: f64,
}

struct Score {
    sig: usize,
    score: f64,
    /// Every side that matched matched only weakly (a `weak` match or a short bare token).
    weak: bool,
    /// Every side that matched did so with a `prelude` match: what it saw only opens the flow.
    prelude: bool,
    probed: bool,
    hint: bool,
    client_match: Option<usize>,
    server_match: Option<usize>,
    meta: Meta,
    swapped: bool,
    done: u8,
}

pub struct Engine {
    sigs: Vec<Signature>,
    /// (port, transport) -> signatures whose services or ports name it (a tie-break hint only).
    /// Looked up for every flow classified: foldhash (keyed at random per process, as every
    /// map of the core), not std's SipHash.
    hints: hashbrown::HashMap<(u16, Transport), Vec<usize>>,
    /// Per signature, per transport (Tcp, Udp).
    plans: Vec<[Vec<Plan>; 2]>,
    longest: Vec<usize>,
    /// Per signature: evidence text for every (client match, server match) pair, built once and
    /// shared by every flow they decide. Index: (c + 1) * (n + 1) + (s + 1), None as 0.
    evidence: Vec<Vec<Arc<str>>>,
    /// Per transport: candidates strongest first, and their gates as look-ups.
    candidates: [Vec<Candidate>; 2],
    admission: [Admission; 2],
    /// Each signature's protocol name: the last tie-break's order key, and what a decision
    /// names (shared, not copied per flow).
    names: Vec<Arc<str>>,
    /// Per transport: the shortest idle timeout a signature gives for it (`Signature::idle`). A
    /// flow not yet classified may still turn out to be that protocol (flow timers file it by
    /// this).
    shortest_idle: [Option<f64>; 2],
}

impl Engine {
    pub fn new(
        sigs: Vec<Signature>,
        port_protocols: HashMap<(u16, Transport), Vec<String>>,
    ) -> Engine {
        let by_name: HashMap<&str, usize> = sigs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.protocol.as_str(), i))
            .collect();
        let mut hints: hashbrown::HashMap<(u16, Transport), Vec<usize>> = Default::default();
        for (key, protos) in &port_protocols {
            for p in protos {
                if let Some(&i) = by_name.get(p.as_str()) {
                    hints.entry(*key).or_default().push(i);
                }
            }
        }
        for (i, s) in sigs.iter().enumerate() {
            for &port in &s.ports {
                for &t in &s.transports {
                    hints.entry((port, t)).or_default().push(i);
                }
            }
        }
        for v in hints.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        let mut plans = Vec::with_capacity(sigs.len());
        let mut longest = Vec::with_capacity(sigs.len());
        let mut evidence = Vec::with_capacity(sigs.len());
        for s in &sigs {
            longest.push(
                s.matches
                    .iter()
                    .filter_map(|m| m.prefix.as_ref().map(Vec::len))
                    .max()
                    .unwrap_or(0),
            );
            let plan_for = |t: Transport| -> Vec<Plan> {
                s.matches
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.transports.contains(&t))
                    .map(|(i, m)| {
                        let probe = m.probe.as_deref().and_then(probes::lookup);
                        Plan {
                            m: i,
                            to_client: m.direction.client(),
                            to_server: m.direction.server(),
                            probe,
                            missing: m.probe.is_some() && probe.is_none(),
                        }
                    })
                    .collect()
            };
            plans.push([plan_for(Transport::Tcp), plan_for(Transport::Udp)]);
            let n = s.matches.len();
            let mut ev = Vec::with_capacity((n + 1) * (n + 1));
            for c in 0..=n {
                for sv in 0..=n {
                    let cm = c.checked_sub(1).and_then(|c| s.matches.get(c));
                    let sm = sv.checked_sub(1).and_then(|sv| s.matches.get(sv));
                    ev.push(Arc::from(evidence_text(cm, sm)));
                }
            }
            evidence.push(ev);
        }
        let mut candidates: [Vec<Candidate>; 2] = [Vec::new(), Vec::new()];
        let mut admission = [Admission::default(), Admission::default()];
        for t in Transport::ALL {
            let mut cands = Vec::new();
            let mut gates = Vec::new();
            for (i, s) in sigs.iter().enumerate() {
                if !s.transports.contains(&t) {
                    continue;
                }
                let (mut c, mut sv) = (0.0f64, 0.0f64);
                for m in s.matches.iter().filter(|m| m.transports.contains(&t)) {
                    if m.direction.client() {
                        c = c.max(m.confidence);
                    }
                    if m.direction.server() {
                        sv = sv.max(m.confidence);
                    }
                }
                cands.push((
                    Candidate {
                        sig: i,
                        max_c: c,
                        max_s: sv,
                    },
                    Gate::of(s, t),
                ));
            }
            // Stable, like Python's sort: equal bounds keep the signatures' (name) order.
            cands.sort_by(|a, b| {
                let ka = -(1.0 - (1.0 - a.0.max_c) * (1.0 - a.0.max_s));
                let kb = -(1.0 - (1.0 - b.0.max_c) * (1.0 - b.0.max_s));
                ka.partial_cmp(&kb).unwrap_or(std::cmp::Ordering::Equal)
            });
            for (c, g) in cands {
                candidates[t.index()].push(c);
                gates.push(g);
            }
            admission[t.index()] = Admission::of(&gates);
        }
        let names = sigs
            .iter()
            .map(|s| Arc::from(s.protocol.as_str()))
            .collect();
        let shortest_idle = Transport::ALL.map(|t| {
            sigs.iter()
                .filter_map(|s| s.idle[t.index()])
                .reduce(f64::min)
        });
        Engine {
            sigs,
            hints,
            plans,
            longest,
            evidence,
            candidates,
            admission,
            names,
            shortest_idle,
        }
    }

    /// The shortest idle timeout a signature gives for `t` (see `Signature::idle`).
    pub fn shortest_idle(&self, t: Transport) -> Option<f64> {
        self.shortest_idle[t.index()]
    }

    /// The same signatures with other port hints: the compiled patterns are shared, not built
    /// again (compiling the shipped set is most of an engine's cost).
    pub fn with_port_hints(
        &self,
        port_protocols: HashMap<(u16, Transport), Vec<String>>,
    ) -> Engine {
        Engine::new(self.sigs.clone(), port_protocols)
    }

    pub fn signature(&self, i: usize) -> &Signature {
        &self.sigs[i]
    }

    pub fn len(&self) -> usize {
        self.sigs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sigs.is_empty()
    }

    pub fn signatures(&self) -> &[Signature] {
        &self.sigs
    }

    /// Score the candidates: a decision, or why there is none yet ("need more data": `Pending`,
    /// only when not `final_`).
    #[allow(clippy::too_many_arguments)]
    pub fn classify(
        &self,
        transport: Transport,
        client: &[&[u8]],
        server: &[&[u8]],
        server_port: u16,
        may_swap: bool,
        final_: bool,
        client_port: Option<u16>,
    ) -> Result<Decision, Pending> {
        // The server's port, and the client's when it differs: in place, not a list per call.
        let both = [server_port, client_port.unwrap_or(server_port)];
        let ports = if both[1] == server_port {
            &both[..1]
        } else {
            &both[..]
        };
        let hinted = self
            .hints
            .get(&(server_port, transport))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut scores = self.score_all(transport, client, server, hinted, ports, false);
        let udp_doubt =
            transport == Transport::Udp && !scores.iter().any(|x| !x.prelude && x.score >= ACCEPT);
        if may_swap || udp_doubt {
            let hinted_rev = client_port
                .and_then(|p| self.hints.get(&(p, transport)))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            scores.extend(self.score_all(transport, server, client, hinted_rev, ports, true));
        }
        if scores.is_empty() {
            return if final_ {
                Ok(nothing_matched())
            } else {
                Err(Pending::NothingMatched)
            };
        }
        let mut best = self.best(scores.iter()).ok_or(Pending::Waiting)?;
        if best.prelude {
            let firm = self.best(scores.iter().filter(|s| !s.prelude && s.score >= ACCEPT));
            match firm {
                Some(f) => best = f,
                // What the prelude opens may show in the next packets.
                None if !final_ => return Err(Pending::Waiting),
                None => {}
            }
        }
        if best.score >= ACCEPT || (final_ && best.score >= FALLBACK) {
            let evidence = self.evidence_of(best.sig, best.client_match, best.server_match);
            let best = scores.swap_remove(
                scores
                    .iter()
                    .position(|s| std::ptr::eq(s, best))
                    .unwrap_or(0),
            );
            return Ok(Decision {
                sig: Some(best.sig),
                protocol: Arc::clone(&self.names[best.sig]),
                confidence: best.score.min(1.0),
                evidence,
                client_match: best.client_match,
                server_match: best.server_match,
                meta: best.meta,
                swapped: best.swapped,
                done: best.done,
            });
        }
        if final_ {
            let why = format!(
                "only weak evidence for {} ({:.2})",
                self.sigs[best.sig].protocol, best.score
            );
            return Ok(unknown(why));
        }
        Err(Pending::Waiting)
    }

    /// Python's `max(scores, key=_order)`: the first of the highest.
    fn best<'a>(&self, scores: impl Iterator<Item = &'a Score>) -> Option<&'a Score> {
        let mut best: Option<&Score> = None;
        for s in scores {
            if best.is_none_or(|b| self.outranks(s, b)) {
                best = Some(s);
            }
        }
        best
    }

    fn outranks(&self, a: &Score, b: &Score) -> bool {
        let (sa, sb) = (&self.sigs[a.sig], &self.sigs[b.sig]);
        let ka = (
            !a.weak,
            round_to(a.score, 6),
            a.probed,
            sa.priority,
            a.hint,
            self.longest[a.sig],
        );
        let kb = (
            !b.weak,
            round_to(b.score, 6),
            b.probed,
            sb.priority,
            b.hint,
            self.longest[b.sig],
        );
        match ka.partial_cmp(&kb) {
            Some(std::cmp::Ordering::Greater) => true,
            Some(std::cmp::Ordering::Equal) => {
                // Python's max over (-ord(c) for c in name): the alphabetically first name wins,
                // except that a name wins over its own prefix (the longer tuple is greater).
                let (na, nb) = (&self.names[a.sig], &self.names[b.sig]);
                match na.chars().zip(nb.chars()).find(|(x, y)| x != y) {
                    Some((x, y)) => x < y,
                    None => na.chars().count() > nb.chars().count(),
                }
            }
            _ => false,
        }
    }

    /// The protocol of TCP bytes carried inside another (an HTTP CONNECT tunnel), or "unknown".
    pub fn inner_protocol(&self, client: &[u8], server: &[u8]) -> String {
        let c: Vec<&[u8]> = if client.is_empty() {
            vec![]
        } else {
            vec![client]
        };
        let s: Vec<&[u8]> = if server.is_empty() {
            vec![]
        } else {
            vec![server]
        };
        self.classify(Transport::Tcp, &c, &s, 0, false, true, None)
            .ok()
            .map_or_else(|| "unknown".to_owned(), |d| d.protocol.to_string())
    }

    /// Run the protocol's probes on both directions and merge what they extract: (metadata,
    /// whether every probe that matched said its direction is done, whether one read a message
    /// cut short).
    pub fn extract(
        &self,
        sig: usize,
        transport: Transport,
        client: &[&[u8]],
        server: &[&[u8]],
    ) -> (Meta, bool, bool) {
        // Each side's facts apart, the client's first (`client_first`).
        let mut sides = [Meta::new(), Meta::new()];
        let (mut matched, mut done, mut partial) = (0usize, 0usize, false);
        let mut ran: Vec<(&str, bool)> = Vec::new(); // several matches may name one probe: once per side
        let Some(plans) = self.plans.get(sig) else {
            return (Meta::new(), false, false);
        };
        for p in &plans[transport.index()] {
            let Some(probe) = p.probe else { continue };
            for (from_client, units, wanted) in
                [(true, client, p.to_client), (false, server, p.to_server)]
            {
                if !wanted || units.is_empty() || ran.contains(&(probe.name, from_client)) {
                    continue;
                }
                ran.push((probe.name, from_client));
                let results: Vec<ProbeResult> = match probe.kind {
                    Kind::Units(f) => vec![f(&cut_all(units), from_client)],
                    Kind::Single(f) => units.iter().map(|u| f(cut(u), from_client)).collect(),
                };
                for r in results {
                    if r.status == Status::Match {
                        matched += 1;
                        done += usize::from(r.done);
                        partial |= r.partial;
                        let side = &mut sides[usize::from(!from_client)];
                        merge(side, probe.side_facts(r.meta, from_client));
                    }
                }
            }
        }
        let [client_facts, server_facts] = sides;
        (
            client_first(client_facts, server_facts),
            matched > 0 && done == matched,
            partial,
        )
    }

    /// A verdict one side's bytes reached alone (its match `known` on the client's side when
    /// `known_is_client`), once the other side has spoken: when a match of that other side holds
    /// on `other`, the score both give and the evidence naming both (a server's answer
    /// confirming what its client asked). Only the other side is parsed.
    pub fn confirm(
        &self,
        sig: usize,
        transport: Transport,
        known: (bool, usize),
        other: &[&[u8]],
        ports: &[u16],
    ) -> Option<(f64, Arc<str>)> {
        let (known_is_client, known_match) = known;
        let (client, server): (&[&[u8]], &[&[u8]]) = if known_is_client {
            (&[], other)
        } else {
            (other, &[])
        };
        let s = self.score(sig, transport, client, server, false, ports, false)?;
        let (c, sv) = if known_is_client {
            (known_match, s.server_match?)
        } else {
            (s.client_match?, known_match)
        };
        let matches = &self.sigs[sig].matches;
        let score = 1.0 - (1.0 - matches.get(c)?.confidence) * (1.0 - matches.get(sv)?.confidence);
        Some((score.min(1.0), self.evidence_of(sig, Some(c), Some(sv))))
    }

    /// The evidence text, built once per signature, naming client match `cm` and server match `sm`.
    fn evidence_of(&self, sig: usize, cm: Option<usize>, sm: Option<usize>) -> Arc<str> {
        let n = self.sigs[sig].matches.len() + 1;
        let key = cm.map_or(0, |c| c + 1) * n + sm.map_or(0, |s| s + 1);
        self.evidence[sig]
            .get(key)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    fn score_all(
        &self,
        t: Transport,
        client: &[&[u8]],
        server: &[&[u8]],
        hinted: &[usize],
        ports: &[u16],
        swapped: bool,
    ) -> Vec<Score> {
        let cands = &self.candidates[t.index()];
        let mut out = Vec::new();
        if cands.is_empty() {
            return out;
        }
        let admitted: Bits = self.admission[t.index()].admitted(client, server, ports);
        let (has_c, has_s) = (!client.is_empty(), !server.is_empty());
        let mut best = 0.0f64; // best firm (non-prelude) score so far
        for i in admitted.iter() {
            let Some(c) = cands.get(i) else { continue };
            let bound = 1.0
                - (1.0 - if has_c { c.max_c } else { 0.0 })
                    * (1.0 - if has_s { c.max_s } else { 0.0 });
            if best != 0.0 && bound < best {
                continue;
            }
            let hint = hinted.contains(&c.sig);
            if let Some(s) = self.score(c.sig, t, client, server, hint, ports, swapped) {
                // A bare token never outranks the port's assignment: off its own port, weak
                // evidence counts only when both sides agree (and then below any firm one).
                let one_sided = s.client_match.is_none() || s.server_match.is_none();
                if s.weak && !hint && one_sided {
                    continue;
                }
                if !s.prelude && !s.weak && s.score > best {
                    best = s.score;
                }
                out.push(s);
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn score(
        &self,
        sig: usize,
        t: Transport,
        client: &[&[u8]],
        server: &[&[u8]],
        hint: bool,
        ports: &[u16],
        swapped: bool,
    ) -> Option<Score> {
        let s = &self.sigs[sig];
        let (mut c, mut sv) = (0.0f64, 0.0f64);
        let (mut cm, mut sm) = (None, None);
        let (mut cprobed, mut sprobed) = (false, false);
        let mut sides = [Meta::new(), Meta::new()];
        let mut done = 0u8;
        let (mut cweak, mut sweak) = (false, false);
        for p in &self.plans[sig][t.index()] {
            let Some(m) = s.matches.get(p.m) else {
                continue;
            };
            if p.missing
                || (!m.ports.is_empty() && !ports.iter().any(|x| m.ports.binary_search(x).is_ok()))
            {
                continue;
            }
            let conf = m.confidence;
            for from_client in [true, false] {
                let units = if from_client {
                    if !p.to_client || client.is_empty() || c >= conf {
                        continue;
                    }
                    client
                } else {
                    if !p.to_server || server.is_empty() || sv >= conf {
                        continue;
                    }
                    server
                };
                let hit = match p.probe {
                    Some(probe) if probe.is_units() => {
                        match_units(m, probe, units, from_client).map(|h| (h, usize::MAX))
                    }
                    probe => {
                        let units = if m.first_datagram {
                            &units[..units.len().min(1)]
                        } else {
                            units
                        };
                        units
                            .iter()
                            .find_map(|u| match_one(m, probe, u, from_client).map(|h| (h, u.len())))
                    }
                };
                let Some((hit, len)) = hit else { continue };
                let weak = m.weak || (p.probe.is_none() && len < SHORT_TOKEN);
                // Weak evidence never replaces firm evidence of the same side.
                if weak
                    && ((from_client && c > 0.0 && !cweak) || (!from_client && sv > 0.0 && !sweak))
                {
                    continue;
                }
                let facts = match p.probe {
                    Some(probe) => probe.side_facts(hit.meta, from_client),
                    None => hit.meta,
                };
                merge(&mut sides[usize::from(!from_client)], facts);
                if from_client {
                    (c, cm, cprobed, cweak) = (conf, Some(p.m), p.probe.is_some(), weak);
                    done |= u8::from(hit.done);
                } else {
                    (sv, sm, sprobed, sweak) = (conf, Some(p.m), p.probe.is_some(), weak);
                    done |= u8::from(hit.done) << 1;
                }
            }
        }
        if s.require_both_directions && !(c != 0.0 && sv != 0.0) {
            return None;
        }
        if c == 0.0 && sv == 0.0 {
            return None;
        }
        let weak = (c == 0.0 || cweak) && (sv == 0.0 || sweak);
        let prelude_side =
            |m: Option<usize>| m.is_none_or(|m| s.matches.get(m).is_some_and(|m| m.prelude));
        let prelude = prelude_side(cm) && prelude_side(sm);
        let [client_facts, server_facts] = sides;
        let meta = client_first(client_facts, server_facts);
        Some(Score {
            sig,
            score: 1.0 - (1.0 - c) * (1.0 - sv),
            weak,
            prelude,
            probed: cprobed || sprobed,
            hint,
            client_match: cm,
            server_match: sm,
            meta,
            swapped,
            done,
        })
    }
}

/// Why `Engine::classify` decided nothing yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// No signature matched the bytes at all: a final call on the same bytes would give
    /// `nothing_matched()`.
    NothingMatched,
    /// Evidence so far (weak, or a prelude) that more bytes may firm up.
    Waiting,
}

/// The final verdict on bytes no signature matched.
pub fn nothing_matched() -> Decision {
    unknown("no signature matched".into())
}

/// The protocol of a flow no signature names.
static UNKNOWN: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("unknown"));

fn unknown(evidence: String) -> Decision {
    Decision {
        sig: None,
        protocol: Arc::clone(&UNKNOWN),
        confidence: 0.0,
        evidence: Arc::from(evidence),
        meta: Meta::new(),
        swapped: false,
        done: 0,
        client_match: None,
        server_match: None,
    }
}

/// One flow's facts from its two sides: where both state a fact under one name, the client's
/// (a server's own answers are named apart already: `Probe::side_facts`). Whichever side spoke
/// first, the record then says the same.
pub(crate) fn client_first(client: Meta, server: Meta) -> Meta {
    let mut meta = client;
    merge(&mut meta, server);
    meta
}

/// `setdefault` of every key: the first probe to say a fact wins.
fn merge(meta: &mut Meta, add: Meta) {
    if meta.is_empty() {
        *meta = add;
        return;
    }
    for (k, v) in add {
        if !meta.contains_key(&k) {
            meta.insert(k, v);
        }
    }
}

fn cut(u: &[u8]) -> &[u8] {
    u.get(..PROBE_INPUT).unwrap_or(u)
}

fn cut_all<'a>(units: &[&'a [u8]]) -> Vec<&'a [u8]> {
    units
        .iter()
        .map(|u| u.get(..PROBE_INPUT).unwrap_or(u))
        .collect()
}

/// The match's byte conditions (length, prefix, regex within depth).
fn pattern_holds(m: &Match, unit: &[u8]) -> bool {
    if unit.len() < m.min_length {
        return false;
    }
    if let Some(p) = &m.prefix {
        if m.offset
            .checked_add(p.len())
            .and_then(|end| unit.get(m.offset..end))
            != Some(p.as_slice())
        {
            return false;
        }
    }
    m.regex.as_ref().is_none_or(|r| r.search(unit, m.depth))
}

/// None when the match fails; the probe's result (a bare hit for a pattern) when it holds.
fn match_one(
    m: &Match,
    probe: Option<&Probe>,
    unit: &[u8],
    from_client: bool,
) -> Option<ProbeResult> {
    if !pattern_holds(m, unit) {
        return None;
    }
    match probe.map(|p| p.kind) {
        None => Some(ProbeResult::hit(Meta::new())),
        Some(Kind::Single(f)) => Some(f(cut(unit), from_client)).filter(ProbeResult::is_match),
        Some(Kind::Units(f)) => Some(f(&[cut(unit)], from_client)).filter(ProbeResult::is_match),
    }
}

/// A multi-unit probe: the pattern must hold on some unit, the probe judges them all.
fn match_units(
    m: &Match,
    probe: &Probe,
    units: &[&[u8]],
    from_client: bool,
) -> Option<ProbeResult> {
    if !units.iter().any(|u| pattern_holds(m, u)) {
        return None;
    }
    let r = match probe.kind {
        Kind::Units(f) => f(&cut_all(units), from_client),
        Kind::Single(f) => f(units.first().map_or(&[][..], |u| cut(u)), from_client),
    };
    r.is_match().then_some(r)
}

fn evidence_text(cm: Option<&Match>, sm: Option<&Match>) -> String {
    let mut parts = Vec::new();
    for (side, m) in [("client", cm), ("server", sm)] {
        if let Some(m) = m {
            parts.push(format!("{side} bytes {}", describe(m)));
        }
    }
    parts.join("; ")
}

fn describe(m: &Match) -> String {
    if let Some(p) = &m.probe {
        return format!("confirmed by the {p} probe");
    }
    if let Some(p) = &m.prefix {
        let shown = crate::text::quoted_bytes(p);
        return if m.offset == 0 {
            format!("start with {shown}")
        } else {
            format!("hold {shown} at offset {}", m.offset)
        };
    }
    let src = m
        .regex
        .as_ref()
        .map(|r| crate::text::pattern_text(&r.source))
        .unwrap_or_default();
    format!("match /{}/", shortened(&src, EVIDENCE_PATTERN_CHARS))
}

/// How much of a regex the evidence quotes.
const EVIDENCE_PATTERN_CHARS: usize = 60;

/// `text` (ASCII: `pattern_text`'s) cut to `max` characters, ending in an ellipsis when cut and
/// never inside a `\xNN` escape.
fn shortened(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut short = text[..max].to_string();
    if let Some(i) = short.rfind('\\').filter(|&i| short.len() - i < 4) {
        short.truncate(i);
    }
    short.push('\u{2026}');
    short
}

/// For tests and the Python side: a Decision as JSON.
pub fn decision_json(d: &Decision) -> Value {
    serde_json::json!({
        "protocol": &*d.protocol,
        "confidence": d.confidence,
        "evidence": &*d.evidence,
        "meta": d.meta,
        "swapped": d.swapped,
        "done": d.done,
    })
}

#[cfg(test)]
mod tests;
