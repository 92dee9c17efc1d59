"""The detection engine: which protocol do a flow's first bytes speak?

Input is what reassembly kept of each direction: for TCP one stream prefix per direction, for UDP
the first few datagrams per direction ("units"). The engine scores every candidate signature,
and answers with a Decision, or None while the evidence is still too weak and more bytes may come.

Scoring. Each [[match]] carries a confidence (pattern 0.8, probe-confirmed 0.95 by default). A
signature's score combines its best client-side and best server-side match as independent
evidence, 1 - (1 - c)(1 - s), so agreement of both directions outranks either alone.

Ambiguity is resolved by a fixed order, never by file order: score, then probe-confirmed before
pattern-only, then the signature's `priority`, then whether the server port is one the protocol is
known to use, then the longer literal prefix, then the protocol name. One exception comes first: a
`prelude` signature (STUN, which opens WebRTC flows that DTLS or RTP then carry) gives way to any
other candidate that reaches the acceptance score, and while it is alone the engine asks for more
data until the evidence is final (the bounded packet count, both directions full, or the end).

Orientation: the caller says whether the client/server roles are only inferred (`may_swap`); then
the bytes are also scored the other way round, and a better fit flips the roles. UDP roles come
from the first datagram, which may be a reply: they are also tried reversed when, as given, no
candidate other than a prelude reaches the acceptance score.

Payload first, ports second: a [[match]] may carry `ports`, and then holds only when one endpoint
of the flow uses one of them. That is for protocols that share one wire format and differ only by
their well-known port (DNS, mDNS, LLMNR, NetBIOS name service share the DNS message layout), as
nDPI does; the payload must still be checked by the match's pattern or probe.

A probe whose function has `units = True` sees every unit of its direction at once (a list of
datagrams): for protocols recognised by consistency across packets (RTP sequence numbers and SSRC).

Cost. Most signatures cannot match a given flow, and scoring one costs microseconds, so each
candidate has a gate (_Gate): the first bytes its matches can start with (from a prefix, an
anchored regex, or a probe's declared `first_bytes`), a prefix byte at its offset, or a port-scoped
match's ports. Candidates are tried strongest first, and one that cannot outscore a firm verdict
already found is skipped. Gates and skips never change the answer (tests/detect/test_gates.py).
A probe's result may say `done`: that direction's facts are complete, and the pipeline stops
re-reading it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import ProbeResult, ProbeStatus
from .prefilter import match_first_bytes, regex_byte_at
from .probes import ProbeFn, get_probe
from .signature import Match, Signature

ACCEPT = 0.75  # decide at once at or above this score
FALLBACK = 0.3  # at the end of the evidence, accept a weaker best candidate down to this
PROBE_INPUT = 4096
_PATTERN_HIT = ProbeResult(ProbeStatus.MATCH)  # a pattern holds; it has no metadata of its own (never mutated)


@dataclass(slots=True)
class Decision:
    signature: Signature | None
    protocol: str
    confidence: float
    evidence: str
    meta: dict[str, Any] = field(default_factory=dict)
    swapped: bool = False  # the bytes matched with client and server the other way round
    done: int = 0  # bit 0: the client side's facts are all in (ProbeResult.done); bit 1: the server's


@dataclass(slots=True)
class _Score:
    sig: Signature
    score: float
    probed: bool
    port_hint: bool
    client_match: Match | None  # the matches that gave each side's confidence (the evidence)
    server_match: Match | None
    meta: dict[str, Any]
    swapped: bool
    done: int
    longest: int  # the signature's longest literal prefix (a tie-break)

    def rank(self) -> tuple:
        return (round(self.score, 6), self.probed, self.sig.priority, self.port_hint, self.longest)

    @property
    def evidence(self) -> str:
        parts = [f"{side} bytes {_describe(m)}" for side, m in (("client", self.client_match),
                                                                ("server", self.server_match)) if m is not None]
        return "; ".join(parts)


class Engine:
    def __init__(self, signatures: Sequence[Signature], port_protocols: dict[tuple[int, str], set[str]] | None = None):
        self.signatures = list(signatures)
        self.by_name = {s.protocol: s for s in self.signatures}
        self._probes: dict[str, ProbeFn] = {}
        for sig in self.signatures:
            for name in sig.probe_names:
                if name not in self._probes:
                    self._probes[name] = get_probe(name)
        # (port, transport) -> protocols whose services or ports name it: a tie-break hint only.
        self.port_protocols = port_protocols or {}
        for sig in self.signatures:
            for port in sig.ports:
                for t in sig.transports:
                    self.port_protocols.setdefault((port, t), set()).add(sig.protocol)
        # Per (signature, transport): its matches with what scoring needs resolved in advance:
        # (match, may hold on client bytes, on server bytes, probe function, probe takes all units).
        self._plans: dict[tuple[str, str], list[tuple[Match, bool, bool, ProbeFn | None, bool]]] = {}
        self._longest: dict[str, int] = {}
        self._evidence: dict[tuple[Match | None, Match | None], str] = {}  # bounded: pairs of matches
        for sig in self.signatures:
            self._longest[sig.protocol] = max((len(m.prefix) for m in sig.matches if m.prefix), default=0)
            for transport in sig.transports:
                plan = []
                for m in sig.matches:
                    if transport in m.transports:
                        fn = self._probes[m.probe] if m.probe is not None else None
                        plan.append((m, m.direction in ("either", "client"), m.direction in ("either", "server"),
                                     fn, bool(getattr(fn, "units", False))))
                self._plans[(sig.protocol, transport)] = plan
        # Per transport: (signature, first bytes it can match, best client-side and server-side
        # confidence), strongest first, so that a firm early verdict lets weaker candidates be skipped.
        self._candidates: dict[str, list[tuple[Signature, _Gate | None, float, float]]] = {}
        self._admission: dict[str, _Admission] = {}
        for transport in ("tcp", "udp"):
            cands = []
            for sig in self.signatures:
                if transport not in sig.transports:
                    continue
                side = {True: 0.0, False: 0.0}
                for m in sig.matches:
                    if transport in m.transports:
                        for from_client in (True, False):
                            if m.direction in ("either", "client" if from_client else "server"):
                                side[from_client] = max(side[from_client], m.confidence)
                cands.append((sig, _gate(sig, transport, self._probes), side[True], side[False]))
            cands.sort(key=lambda c: -(1.0 - (1.0 - c[2]) * (1.0 - c[3])))
            self._candidates[transport] = cands
            self._admission[transport] = _Admission.of([gate for _, gate, _, _ in cands])

    def classify(
        self,
        transport: str,
        client: Sequence[bytes],
        server: Sequence[bytes],
        server_port: int,
        *,
        may_swap: bool = False,
        final: bool = False,
        client_port: int | None = None,
    ) -> Decision | None:
        """Score the candidates; None means "need more data" (only when not `final`)."""
        hinted = self.port_protocols.get((server_port, transport), ())
        ports = frozenset((server_port,) if client_port is None else (server_port, client_port))
        scores = self._score_all(transport, client, server, hinted, ports, swapped=False)
        # A UDP flow's first datagram may be a reply (the capture began after the request, or only one
        # side is visible): when the bytes as oriented name nothing firmly, try them the other way round.
        udp_doubt = transport == "udp" and not any(not x.sig.prelude and x.score >= ACCEPT for x in scores)
        if may_swap or udp_doubt:
            hinted_rev = self.port_protocols.get((client_port, transport), ()) if client_port is not None else ()
            scores += self._score_all(transport, server, client, hinted_rev, ports, swapped=True)
        if not scores:
            return None if not final else Decision(None, "unknown", 0.0, "no signature matched")
        best = max(scores, key=_order)
        if best.sig.prelude:
            firm = [s for s in scores if not s.sig.prelude and s.score >= ACCEPT]
            if firm:
                best = max(firm, key=_order)
            elif not final:
                return None  # wait: what the prelude opens may show in the next packets
        if best.score >= ACCEPT or (final and best.score >= FALLBACK):
            return Decision(best.sig, best.sig.protocol, min(best.score, 1.0), self._evidence_of(best), best.meta,
                            best.swapped, best.done)
        if final:
            return Decision(None, "unknown", 0.0, f"only weak evidence for {best.sig.protocol} ({best.score:.2f})")
        return None

    def _evidence_of(self, best: _Score) -> str:
        # One string per pair of matches, shared by every flow they decide (tens of thousands live).
        key = (best.client_match, best.server_match)
        text = self._evidence.get(key)
        if text is None:
            text = self._evidence[key] = best.evidence
        return text

    def inner_protocol(self, client: bytes, server: bytes) -> str:
        """The protocol of TCP bytes carried inside another (an HTTP CONNECT tunnel), or "unknown"."""
        decision = self.classify("tcp", [client] if client else [], [server] if server else [], 0, final=True)
        return decision.protocol if decision is not None else "unknown"

    def metadata(self, sig: Signature, transport: str, client: Sequence[bytes], server: Sequence[bytes]) -> dict:
        """Run the protocol's probes on both directions and merge what they extract."""
        return self.extract(sig, transport, client, server)[0]

    def extract(
        self, sig: Signature, transport: str, client: Sequence[bytes], server: Sequence[bytes]
    ) -> tuple[dict[str, Any], bool]:
        """(merged metadata, whether every probe that matched said its direction is done)."""
        meta: dict[str, Any] = {}
        matched = done = 0
        ran: set[tuple[str, bool]] = set()  # several matches may name one probe: parse once per side
        for m, to_client, to_server, fn, multi in self._plans.get((sig.protocol, transport), ()):
            if fn is None:
                continue
            for from_client, units, wanted in ((True, client, to_client), (False, server, to_server)):
                if not wanted or not units or (m.probe, from_client) in ran:
                    continue
                ran.add((m.probe, from_client))  # type: ignore[arg-type]
                if multi:
                    results = [fn([bytes(u[:PROBE_INPUT]) for u in units], from_client)]  # type: ignore[arg-type]
                else:
                    results = [fn(bytes(unit[:PROBE_INPUT]), from_client) for unit in units]
                for result in results:
                    if result.status == ProbeStatus.MATCH:
                        matched += 1
                        done += result.done
                        for k, v in result.meta.items():
                            meta.setdefault(k, v)
        return meta, bool(matched) and done == matched

    def _score_all(
        self,
        transport: str,
        client: Sequence[bytes],
        server: Sequence[bytes],
        hinted: Any,
        ports: frozenset[int],
        swapped: bool,
    ) -> list[_Score]:
        candidates = self._candidates.get(transport)
        if not candidates:
            return []
        admitted = self._admission[transport].admitted(client, server, ports)
        out = []
        has_c, has_s = bool(client), bool(server)
        best = 0.0  # best firm (non-prelude) score so far: a candidate that cannot reach it cannot win
        while admitted:
            low = admitted & -admitted
            admitted ^= low
            sig, _gate, max_c, max_s = candidates[low.bit_length() - 1]
            if best and 1.0 - (1.0 - (max_c if has_c else 0.0)) * (1.0 - (max_s if has_s else 0.0)) < best:
                continue
            s = self._score(sig, transport, client, server, sig.protocol in hinted, ports, swapped)
            if s is not None:
                out.append(s)
                if not sig.prelude and s.score > best:
                    best = s.score
        return out

    def _score(
        self,
        sig: Signature,
        transport: str,
        client: Sequence[bytes],
        server: Sequence[bytes],
        hint: bool,
        ports: frozenset[int],
        swapped: bool,
    ) -> _Score | None:
        c = sv = 0.0
        cm = sm = None
        cprobed = sprobed = False
        meta: dict[str, Any] = {}
        done = 0
        for m, to_client, to_server, fn, multi in self._plans[(sig.protocol, transport)]:
            if m.ports and not (m.ports & ports):
                continue
            conf = m.confidence
            for from_client in (True, False):
                if from_client:
                    if not (to_client and client) or c >= conf:
                        continue
                    units = client
                elif not (to_server and server) or sv >= conf:
                    continue
                else:
                    units = server
                if multi:
                    hit = self._match_units(m, fn, units, from_client)
                else:
                    for unit in units:
                        hit = self._match(m, fn, unit, from_client)
                        if hit is not None:
                            break
                if hit is None:
                    continue
                if hit.meta:
                    if meta:
                        for k, v in hit.meta.items():
                            meta.setdefault(k, v)
                    else:
                        meta.update(hit.meta)
                if from_client:
                    c, cm, cprobed = conf, m, fn is not None
                    done |= hit.done
                else:
                    sv, sm, sprobed = conf, m, fn is not None
                    done |= hit.done << 1
        if sig.require_both_directions and not (c and sv):
            return None
        if not c and not sv:
            return None
        score = 1.0 - (1.0 - c) * (1.0 - sv)
        return _Score(sig, score, cprobed or sprobed, hint, cm, sm, meta, swapped, done, self._longest[sig.protocol])

    def _match_units(self, m: Match, fn: ProbeFn, units: Sequence[bytes], from_client: bool) -> ProbeResult | None:
        """A multi-unit probe: the pattern must hold on some unit, the probe judges them all."""
        if not any(self._match_pattern(m, u) for u in units):
            return None
        result = fn([bytes(u[:PROBE_INPUT]) for u in units], from_client)  # type: ignore[arg-type]
        return result if result.status == ProbeStatus.MATCH else None

    @staticmethod
    def _match_pattern(m: Match, unit: bytes) -> bool:
        if len(unit) < m.min_length:
            return False
        if m.prefix is not None and unit[m.offset : m.offset + len(m.prefix)] != m.prefix:
            return False
        return m.regex is None or m.regex.search(unit, 0, m.depth) is not None

    @staticmethod
    def _match(m: Match, fn: ProbeFn | None, unit: bytes, from_client: bool) -> ProbeResult | None:
        """None when the match fails; the probe's result (a bare match for a pattern) when it holds."""
        if len(unit) < m.min_length:
            return None
        if m.prefix is not None and unit[m.offset : m.offset + len(m.prefix)] != m.prefix:
            return None
        if m.regex is not None and m.regex.search(unit, 0, m.depth) is None:
            return None
        if fn is not None:
            result = fn(bytes(unit[:PROBE_INPUT]), from_client)
            return result if result.status == ProbeStatus.MATCH else None
        return _PATTERN_HIT


def _describe(m: Match) -> str:
    if m.probe:
        return f"confirmed by the {m.probe} probe"
    if m.prefix is not None:
        shown = m.prefix.decode("latin-1").encode("unicode_escape").decode("ascii")
        return f"start with {shown!r}" if m.offset == 0 else f"hold {shown!r} at offset {m.offset}"
    assert m.regex is not None
    return "match /" + m.regex.pattern.decode("latin-1").encode("unicode_escape").decode("ascii")[:60] + "/"


@dataclass(slots=True, frozen=True)
class _Gate:
    """What must hold for any match of a signature to hold: a cheap test that spares scoring it.

    A match passes the gate when a unit starts with one of its possible first bytes (from its
    prefix, its anchored regex, or the `first_bytes` its probe declares), holds its prefix's first
    byte at the prefix's offset, or, for a port-scoped match whose bytes are not bounded, when the
    flow uses one of its ports.
    """

    first: frozenset[int]
    at: tuple[tuple[int, frozenset[int]], ...]  # (offset, bytes) of matches that fix a later byte
    ports: frozenset[int]

    def admits_later(self, client: Sequence[bytes], server: Sequence[bytes]) -> bool:
        """Whether a unit holds an allowed byte at one of the later offsets."""
        for off, allowed in self.at:
            for units in (client, server):
                for u in units:
                    if len(u) > off and u[off] in allowed:
                        return True
        return False


@dataclass(slots=True, frozen=True)
class _Admission:
    """Every gate of one transport's candidate list as look-ups: a flow's first bytes and ports
    give, by a few ORs, the bit set of the candidates worth scoring (bit i: `_candidates[i]`).
    The same answer as asking each gate as its docstring says, without calling ~70 of them per flow."""

    by_first: tuple[int, ...]  # per first byte value: the candidates whose gate lets it in
    by_port: dict[int, int]
    always: int  # ungated candidates
    later: tuple[tuple[int, _Gate], ...]  # (bit, gate) of gates that also look further into the bytes

    @classmethod
    def of(cls, gates: Sequence[_Gate | None]) -> _Admission:
        by_first = [0] * 256
        by_port: dict[int, int] = {}
        always = 0
        later = []
        for i, gate in enumerate(gates):
            bit = 1 << i
            if gate is None:
                always |= bit
                continue
            for b in gate.first:
                by_first[b] |= bit
            for port in gate.ports:
                by_port[port] = by_port.get(port, 0) | bit
            if gate.at:
                later.append((bit, gate))
        return cls(tuple(by_first), by_port, always, tuple(later))

    def admitted(self, client: Sequence[bytes], server: Sequence[bytes], ports: frozenset[int]) -> int:
        mask = self.always
        by_first = self.by_first
        for units in (client, server):
            for u in units:
                if u:
                    mask |= by_first[u[0]]
        for port in ports:
            mask |= self.by_port.get(port, 0)
        for bit, gate in self.later:
            if not mask & bit and gate.admits_later(client, server):
                mask |= bit
        return mask


def _gate(sig: Signature, transport: str, probes: dict[str, ProbeFn]) -> _Gate | None:
    """The gate of `sig` on `transport`; None when some match may hold on any bytes."""
    first: set[int] = set()
    at: list[tuple[int, frozenset[int]]] = []
    ports: set[int] = set()
    for m in sig.matches:
        if transport not in m.transports:
            continue
        known = match_first_bytes(m.prefix, m.offset, m.regex)
        if known is not None and len(known) == 256:
            known = None  # a length field first: any byte, so look further in (regex_byte_at)
        if known is None and m.prefix is not None:
            at.append((m.offset, frozenset((m.prefix[0],))))
            continue
        later = regex_byte_at(m.regex) if known is None and m.regex is not None else None
        if later is not None:
            at.append(later)
            continue
        if known is None and m.regex is None and m.probe is not None:
            declared = getattr(probes[m.probe], "first_bytes", None)
            known = frozenset(declared) if declared is not None else None
        if known is not None:
            first |= known
        elif m.ports:
            ports |= m.ports
        else:
            return None
    return _Gate(frozenset(first), tuple(at), frozenset(ports))


def _order(s: _Score) -> tuple:
    return (s.rank(), _neg_name(s.sig.protocol))


def _neg_name(name: str) -> tuple[int, ...]:
    # max() picks the highest rank; among equals the alphabetically first name wins.
    return tuple(-ord(c) for c in name)
