"""Wires the stages: source -> decode -> flows -> detect -> policy -> sinks.

The only module that knows every stage. `Analyzer.run` is the per-packet loop; it is written
for the common case, a packet of a flow that is already classified, which costs a decode by byte
indexing (Ethernet + IPv4/IPv6 fast paths), one dictionary look-up and counter updates on that
direction's `Side`. Everything else (new flows, detection, closing, expiry) is a method call taken
only when needed, and detection ends for a flow as soon as its probes say both sides are done.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from struct import unpack_from
from typing import TYPE_CHECKING

from .capture.decode import FRAGMENT, MALFORMED, SUPPORTED_LINKTYPES, decode, decode_ip_payload
from .capture.flows import ACK, MAX_UDP_UNITS, RST, SYN, TCP, Flow, FlowTable, flow_key, ip_text, shard_of
from .capture.fragments import Defragmenter
from .capture.sources import BATCH_CHUNK, CaptureSource, Record
from .detect.engine import Decision, Engine
from .detect.entropy import entropy_facts
from .detect.signature import Signature, load_signatures
from .detect.upgrades import upgrade_meta, upgrade_pending, upgrade_settles, upgrade_watch
from .model import TRANSPORT_NAMES, CaptureStats, FlowRecord
from .policy.config import Policy, load_policy
from .policy.rules import PolicyContext, evaluate
from .services import ServicesDB, load_services

if TYPE_CHECKING:
    from .capture.settled import SettledFlows

DEFAULT_MAX_FLOWS = 200_000


@dataclass(slots=True)
class Config:
    signature_dirs: tuple[str, ...] = ()
    services_path: str | None = None
    policy_path: str | None = None
    max_flows: int = DEFAULT_MAX_FLOWS
    idle_tcp: float = 300.0
    idle_udp: float = 60.0
    idle_dns: float = 10.0  # Zeek's dns_session_timeout: a DNS flow is over once answered
    linger: float = 2.0  # a closed TCP flow stays to absorb its last ACKs before it is reported
    sweep_interval: float = 1.0  # capture seconds between idle sweeps (each is O(live flows))
    max_payload_packets: int = 12  # give up classifying after this many payload packets (nDPI-like)
    meta_packets: int = 8  # payload packets inspected after classification, for metadata
    # Split one capture across processes: this analyzer keeps only flows whose direction-independent
    # hash falls in shard `shard_index` of `shard_count` (see flows.shard_of).
    shard_index: int = 0
    shard_count: int = 1
    # Count settled flows' packets a chunk at a time (portwatch.batch) in capture files of at
    # least this size; below it, importing numpy costs more than it saves.
    batch_min_bytes: int = 16 << 20
    batch_chunk: int = BATCH_CHUNK


@dataclass(slots=True)
class Setup:
    """Everything loaded from files: reloaded as one piece (the monitor's SIGHUP)."""

    signatures: list[Signature]
    services: ServicesDB
    policy: Policy
    ctx: PolicyContext
    engine: Engine

    @classmethod
    def load(cls, config: Config) -> Setup:
        signatures = load_signatures(config.signature_dirs)
        services = load_services(config.services_path)
        policy = load_policy(config.policy_path)
        ctx = PolicyContext.build(services, signatures, policy)
        hints: dict[tuple[int, str], set[str]] = {}
        for entry in services.entries:
            for name in (entry.name, *entry.aliases):
                protos = ctx.service_protocols.get((name.lower(), entry.transport))
                if protos:
                    hints.setdefault((entry.port, entry.transport), set()).update(protos)
        return cls(signatures, services, policy, ctx, Engine(signatures, hints))


UDP_UNIT_BYTES = 4096  # a datagram is kept up to this much for detection
MIN_EVIDENCE_BYTES = 256  # below this, the payload-packet budget stretches (1-byte segments)
TINY_SEGMENT_FACTOR = 8  # ... up to this many times the budget
FOREIGN_KEYS = 65536  # other shards' flow keys remembered by one shard

RecordSink = Callable[[FlowRecord], None]


class Analyzer:
    def __init__(
        self,
        config: Config | None = None,
        on_record: RecordSink | None = None,
        on_classified: RecordSink | None = None,
        setup: Setup | None = None,
        pcap_name: str | None = None,
    ) -> None:
        self.config = config or Config()
        self.setup = setup or Setup.load(self.config)
        self.on_record = on_record or (lambda r: None)
        self.on_classified = on_classified
        self.pcap_name = pcap_name
        self.stats = CaptureStats()
        self.table = FlowTable(self.config.max_flows, self._finish)
        self.defrag = Defragmenter()
        self.next_sweep = float("-inf")  # capture time of the next idle sweep (a multiple of the interval)
        self.swept = False
        self.started = time.monotonic()
        self.foreign: set[bytes] = set()  # directional keys of other shards' flows (Config.shard_count)
        self.release_due = math.inf  # capture time when the oldest closed flow is due (see _release_at)
        self.settled: SettledFlows | None = None  # flows counted a chunk at a time (records_of)

    def records_of(self, source: CaptureSource) -> Iterable[Record]:
        """What `run` should read from `source`: the source itself, or, for a capture file big
        enough to be worth it, only the records that are not settled flows' (portwatch.batch)."""
        size = source.size if source.size is not None else 0
        if size < self.config.batch_min_bytes:
            return source
        from .batch import batched_records
        from .capture.settled import SettledFlows

        self.settled = SettledFlows()
        return batched_records(self, source, self.config.batch_chunk)

    # ---- the per-packet loop -------------------------------------------------------------
    def run(self, records: Iterable[tuple[float, int, bytes, int, int]]) -> None:
        tcp_entries = self.table.tcp
        udp_entries = self.table.udp
        stats = self.stats
        packets = 0
        nbytes = 0
        next_sweep = self.next_sweep
        linger = self.config.linger
        release_at = self._release_at(float("-inf"))  # capture time when the oldest closed flow is due
        shards = self.config.shard_count
        foreign = self.foreign
        try:
            for ts, linktype, buf, off, length in records:
                packets += 1
                nbytes += length
                # Timers run before the packet and only from capture time, so a run that sees a
                # subset of the packets (one shard of --workers) ends and expires its flows exactly
                # as the whole run does.
                if ts >= next_sweep:
                    next_sweep = self._sweep(ts)
                if ts >= release_at:
                    self.table.release_closed(ts, linger)
                    release_at = self._release_at(ts)
                proto = 0
                # Fast paths: Ethernet II + IPv4 without options (not a fragment) or IPv6 without
                # extension headers, carrying TCP or UDP: most of any real capture. Byte indexing,
                # and one slice for the flow key (addresses and ports sit contiguously in both).
                # Everything else (VLANs, options, tunnels, oddities) takes the general decoder,
                # whose results these must equal (tests/capture/test_fast_path.py).
                if linktype == 1 and length >= 54:
                    if (
                        buf[off + 12] == 8
                        and buf[off + 13] == 0
                        and buf[off + 14] == 0x45
                        and not (buf[off + 20] & 0x3F or buf[off + 21])
                    ):
                        proto = buf[off + 23]
                        t = off + 34  # transport header
                        pend = off + 14 + ((buf[off + 16] << 8) | buf[off + 17])
                        if pend > off + length:
                            pend = off + length
                        key_at = off + 26
                    elif buf[off + 12] == 0x86 and buf[off + 13] == 0xDD and buf[off + 14] >> 4 == 6 and length >= 62:
                        proto = buf[off + 20]
                        t = off + 54
                        pend = t + ((buf[off + 18] << 8) | buf[off + 19])
                        if pend == t or pend > off + length:  # a jumbogram or a cut frame: what was captured
                            pend = off + length
                        key_at = off + 22
                    if proto == 6 and t + 20 <= off + length:
                        poff = t + ((buf[t + 12] >> 4) << 2)
                        if poff > pend or poff < t + 20:
                            stats.malformed += 1
                            continue
                        flags = buf[t + 13]
                        seq = -1  # read only if the flow is still inspected
                        seq_at = t + 4
                        entries = tcp_entries
                    elif proto == 17 and buf[t + 2] not in (0x12, 0x08):  # not 4789/2152 (VXLAN, GTP-U)
                        ulen = (buf[t + 4] << 8) | buf[t + 5]
                        poff = t + 8
                        if ulen < 8 or pend < poff:
                            stats.malformed += 1
                            continue
                        if t + ulen < pend:
                            pend = t + ulen
                        flags = 0
                        seq = 0
                        entries = udp_entries
                    else:
                        proto = 0
                    if proto:
                        key = buf[key_at : t + 4]
                        pbuf = buf
                        encap = None
                if not proto:
                    pkt = decode(linktype, buf, off, length)
                    if pkt is None:
                        if linktype in SUPPORTED_LINKTYPES:
                            stats.non_ip += 1
                        else:
                            stats.unsupported_link += 1
                        continue
                    if pkt is MALFORMED:
                        stats.malformed += 1
                        continue
                    if pkt[0] == FRAGMENT:
                        pkt = self._defragment(pkt, ts)
                        if pkt is None:
                            continue
                    proto, src, dst, sport, dport, flags, seq, pbuf, poff, pend, encap = pkt
                    key = flow_key(src, dst, sport, dport)
                    entries = tcp_entries if proto == TCP else udp_entries
                side = entries.get(key)
                if side is None:
                    if shards > 1 and (key in foreign or self._foreign(key)):
                        stats.other_shard += 1
                        continue
                    side = self._new_flow(ts, proto, key, flags, encap).sides[0]
                elif flags & SYN and not flags & ACK and side.flow.closed_at is not None:
                    self.table.remove(side.flow, "closed")
                    side = self._new_flow(ts, proto, key, flags, encap).sides[0]
                side.ts = ts
                n = pend - poff
                side.pkts += 1
                side.bytes += n
                if side.inspecting and (n or flags & SYN):
                    if seq < 0:
                        seq = unpack_from("!I", buf, seq_at)[0]  # a fast path left it unread
                    self._inspect(side.flow, side.d, flags, seq, pbuf[poff:pend] if n else b"")
                if flags & 5 and proto == TCP:  # FIN or RST
                    self._tcp_close(side.flow, side.d, flags, ts)
                    release_at = self._release_at(ts)
        finally:
            stats.packets += packets
            stats.bytes += nbytes
            self.next_sweep = next_sweep

    def _release_at(self, now: float) -> float:
        """When the oldest closed TCP flow is due for release: one comparison per packet instead of
        looking at the queue. A head reopened by data after its RST is simply released then."""
        closed = self.table.closed
        if not closed:
            due = math.inf
        else:
            closed_at = closed[0].closed_at
            due = now if closed_at is None else closed_at + self.config.linger
        self.release_due = due
        return due

    def _foreign(self, key: bytes) -> bool:
        """Whether a flow key belongs to another shard; remembered, since hashing costs a microsecond."""
        if shard_of(key, self.config.shard_count) == self.config.shard_index:
            return False
        foreign = self.foreign
        if len(foreign) >= FOREIGN_KEYS:
            foreign.clear()  # bounded: forgetting only costs recomputing the hash
        foreign.add(key)
        return True

    def _sweep(self, ts: float) -> float:
        """Expire idle flows as of the sweep boundary just crossed; return the next boundary."""
        interval = self.config.sweep_interval
        boundary = math.floor(ts / interval) * interval
        if self.settled is not None:
            self.settled.flush()  # the sweep reads last times
        if self.swept:
            self.table.expire(boundary, self.config.idle_tcp, self.config.idle_udp, self.config.linger,
                              self.config.idle_dns)
        self.swept = True
        self.next_sweep = boundary + interval
        return self.next_sweep

    # ---- flow life cycle -----------------------------------------------------------------
    def _defragment(self, frag: tuple, ts: float) -> tuple | None:
        _, src, dst, key, proto, offset, more, buf, doff, dend, encap = frag
        self.stats.fragments += 1
        data = self.defrag.add(key, offset, more, buf[doff:dend], ts)
        self.stats.fragments_dropped = self.defrag.dropped
        if data is None:
            return None
        pkt = decode_ip_payload(proto, src, dst, data, 0, len(data), encap)
        if pkt is None or pkt is MALFORMED or pkt[0] == FRAGMENT:
            if pkt is MALFORMED:
                self.stats.malformed += 1
            return None
        return pkt

    def _new_flow(self, ts: float, proto: int, key: bytes, flags: int, encap: tuple | None) -> Flow:
        if proto == TCP and flags & SYN:
            # SYN: the sender is the client; SYN-ACK first: the receiver is.
            client_dir, orientation = (1 if flags & ACK else 0), "handshake"
        else:
            a = len(key) - 4
            sport, dport = (key[a] << 8) | key[a + 1], (key[a + 2] << 8) | key[a + 3]
            client_dir, orientation = self._infer_client(proto, sport, dport)
        flow = Flow(key, proto, ts, client_dir, orientation, encap)
        self.table.add(flow)
        return flow

    def _infer_client(self, proto: int, sport: int, dport: int) -> tuple[int, str]:
        """Who is the client of a flow seen mid-stream? Evidence from ports, best first."""
        services = self.setup.services
        transport = TRANSPORT_NAMES[proto]
        s_known = bool(services.by_port(sport, transport))
        d_known = bool(services.by_port(dport, transport))
        if proto != TCP:
            # UDP: the first datagram's sender is the client (DESIGN.md), unless it plainly came
            # from a service port to an unassigned higher one (a reply seen before its request).
            if s_known and not d_known and sport < dport:
                return 1, "inferred"
            return 0, "handshake"
        if d_known and not s_known:
            return 0, "inferred"
        if s_known and not d_known:
            return 1, "inferred"
        return (0 if dport <= sport else 1), "inferred"

    def _tcp_close(self, flow: Flow, d: int, flags: int, ts: float) -> None:
        if flags & RST:
            flow.rst = True
        else:
            flow.fins |= 1 << d
        if flow.closed_at is None and (flow.rst or flow.fins == 3):
            if flow.slot is not None:
                self.settled.release(flow)  # type: ignore[union-attr]  # a closed flow's packets need the loop
            flow.closed_at = ts
            self.table.closed.append(flow)
            # After both FINs no data may follow: settle now. A RST is only the sender's word; an
            # end host ignores one with a bad sequence number (Ptacek & Newsham's insertion), so
            # the verdict waits for the linger time and data after it keeps the flow open.
            if flow.inspecting and not flow.rst:
                self._conclude(flow)

    # ---- detection -----------------------------------------------------------------------
    def _inspect(self, flow: Flow, d: int, flags: int, seq: int, payload: bytes) -> None:
        """Detection work for a flow still being inspected; bounded by payload packets, not bytes."""
        grew = False
        if flow.streams is not None:
            if flags & SYN:
                if flow.isn[d] is None:
                    flow.isn[d] = seq
                    if flow.streams[d] is not None:
                        flow.streams[d].syn(seq)  # type: ignore[union-attr]
                seq = (seq + 1) & 0xFFFFFFFF
            if not payload:
                return
            grew = flow.stream(d).add(seq, payload)
        elif payload:
            units = flow.units[d]  # type: ignore[index]
            if len(units) < MAX_UDP_UNITS:
                units.append(payload[:UDP_UNIT_BYTES])
                grew = True
        else:
            return
        if flow.rst and flow.closed_at is not None:
            flow.rst = False  # data after a RST: the RST was not honoured
            flow.closed_at = None
        # Every payload packet counts, grown or not: a flow that never shows classifiable bytes
        # (beyond the depth, out of order, one idle direction) still ends its inspection. Tiny
        # segments (a banner sent a byte at a time) get a longer budget, up to a hard cap.
        flow.payload_pkts += 1
        if flow.decision is None:
            budget = self.config.max_payload_packets
            final = self._full(flow) or (
                flow.payload_pkts >= budget
                and (flow.payload_pkts >= budget * TINY_SEGMENT_FACTOR or self._held(flow) >= MIN_EVIDENCE_BYTES)
            )
            if grew or final:
                self._classify(flow, final=final)
        else:
            flow.meta_left -= 1
            if grew:
                self._collect_meta(flow, d)
            if flow.inspecting and (flow.meta_left <= 0 or self._full(flow)):
                self._end_inspection(flow)

    def _held(self, flow: Flow) -> int:
        if flow.streams is not None:
            return sum(len(s.data) for s in flow.streams if s is not None)
        return sum(len(u) for units in flow.units for u in units)  # type: ignore[union-attr]

    def _full(self, flow: Flow) -> bool:
        if flow.streams is not None:
            return all(s is not None and s.full for s in flow.streams)
        return all(len(u) >= MAX_UDP_UNITS for u in flow.units)  # type: ignore[union-attr]

    def _classify(self, flow: Flow, final: bool) -> None:
        client, server = flow.units_by_role()
        decision = self.setup.engine.classify(
            TRANSPORT_NAMES[flow.proto], client, server, flow.server_port,
            may_swap=flow.orientation == "inferred", final=final, client_port=flow.client_port,
        )
        if decision is None:
            return
        if decision.swapped:
            flow.client_dir ^= 1
            client, server = server, client  # the units as the roles now stand
        flow.decision = decision
        flow.meta.update(decision.meta)
        had_meta = bool(decision.meta)
        decision.meta = {}  # merged into the flow: one copy per live flow is enough
        if decision.signature is None:
            self._give_up(flow)
            return
        flow.meta_left = self.config.meta_packets
        if had_meta:
            # Scoring already ran the probes on the bytes held: parse again only when a side grows,
            # and not at all when its probe said that side is done.
            for role, units in enumerate((client, server)):
                if units:
                    bit = 1 << (role if flow.client_dir == 0 else 1 - role)
                    flow.meta_seen |= bit
                    if decision.done >> role & 1:
                        flow.meta_done |= bit
            if flow.meta_done == 3 and not upgrade_watch(decision.protocol):
                self._end_inspection(flow)
        else:
            self._collect_meta(flow, None)
        if self.on_classified is not None:
            self.on_classified(self.record(flow))
            flow.reported = True

    def _collect_meta(self, flow: Flow, grown: int | None) -> None:
        """Let the protocol's probes read more of the direction that grew (both, right after the verdict).

        A direction is finished once its probes have said something and a further segment adds
        nothing new: re-parsing a ClientHello per bulk-data segment is what would make the
        classified flow expensive.
        """
        decision: Decision = flow.decision  # type: ignore[assignment]
        assert decision.signature is not None
        transport = TRANSPORT_NAMES[flow.proto]
        for d in (0, 1) if grown is None else (grown,):
            bit = 1 << d
            if flow.meta_done & bit:
                continue
            units = flow.units_of(d)
            is_client = d == flow.client_dir
            found, done = self.setup.engine.extract(decision.signature, transport, units if is_client else [],
                                                    [] if is_client else units)
            new = {k: v for k, v in found.items() if flow.meta.get(k) != v}
            if new:
                flow.meta.update(new)
                flow.meta_seen |= bit
            elif grown is not None and flow.meta_seen & bit:
                flow.meta_done |= bit
            if done:
                flow.meta_done |= bit
        watching = False
        if transport == "tcp" and upgrade_watch(decision.protocol):
            # Banners, logins in clear, STARTTLS, CONNECT, WebSocket (detect/upgrades.py). Where the
            # answer can only come from the whole conversation (the text protocols: STARTTLS or a
            # login may come at any point) it is worked out once, when inspection ends, rather
            # than over the growing buffers on every segment: the result is the same.
            if grown is None or upgrade_settles(decision.protocol):
                client, server = flow.units_by_role()
                flow.meta.update(upgrade_meta(decision.protocol, client, server, self.setup.engine.inner_protocol))
                flow.upgrades_stale = False
            else:
                flow.upgrades_stale = True
            watching = upgrade_pending(decision.protocol, flow.meta)
        if flow.meta_done == 3 and not watching:
            self._end_inspection(flow)

    def _end_inspection(self, flow: Flow) -> None:
        """Stop reading a flow (classified, or given up): settle what was deferred, keep the heads,
        free the buffers."""
        decision = flow.decision
        if flow.upgrades_stale and decision is not None:
            client, server = flow.units_by_role()
            flow.meta.update(upgrade_meta(decision.protocol, client, server, self.setup.engine.inner_protocol))
            flow.upgrades_stale = False
        flow.inspecting = False
        flow.release_buffers()
        # From now on the flow's packets only count: let the chunk counter take them.
        if self.settled is not None and flow.closed_at is None and flow.encap is None:
            self.settled.waiting.append(flow)

    def _give_up(self, flow: Flow) -> None:
        client, server = flow.units_by_role()
        if client:
            flow.meta["entropy_client"] = entropy_facts(client[0]).as_dict()
        if server:
            flow.meta["entropy_server"] = entropy_facts(server[0]).as_dict()
        self._end_inspection(flow)

    def _conclude(self, flow: Flow) -> None:
        """No more bytes will come: settle the verdict with whatever evidence there is."""
        if flow.decision is None:
            if flow.payload_pkts:
                self._classify(flow, final=True)
            else:
                flow.inspecting = False
                flow.release_buffers()
        elif flow.inspecting:
            self._end_inspection(flow)

    # ---- output --------------------------------------------------------------------------
    def record(self, flow: Flow) -> FlowRecord:
        c = flow.client_dir
        s = 1 - c
        transport = TRANSPORT_NAMES[flow.proto]
        server_port = flow.server_port
        decision = flow.decision
        rec = FlowRecord(
            ts_start=flow.ts_start,
            ts_end=flow.ts_end,
            transport=transport,
            src_ip=ip_text(flow.client_ip),
            src_port=flow.client_port,
            dst_ip=ip_text(flow.server_ip),
            dst_port=server_port,
            orientation=flow.orientation,
            protocol=decision.protocol if decision else "unknown",
            confidence=decision.confidence if decision else 0.0,
            assigned=self.setup.services.names(server_port, transport),
            packets_c2s=flow.pkts[c],
            packets_s2c=flow.pkts[s],
            bytes_c2s=flow.bytes[c],
            bytes_s2c=flow.bytes[s],
            meta=dict(flow.meta),
            pcap=self.pcap_name,
        )
        if decision is not None and decision.evidence:
            rec.meta.setdefault("evidence", decision.evidence)
        if flow.encap:
            rec.meta["encap"] = list(flow.encap)
        anomalies = flow.anomalies()
        if anomalies:
            rec.meta["tcp_overlap_conflicts"] = anomalies
        rec.findings = evaluate(rec, self.setup.ctx)
        return rec

    def _finish(self, flow: Flow, reason: str) -> None:
        if flow.slot is not None:
            self.settled.release(flow)  # type: ignore[union-attr]  # its pending counts go to the record
        if flow.inspecting:
            self._conclude(flow)
        rec = self.record(flow)
        if reason != "end":
            rec.meta.setdefault("end_reason", reason)
        self.on_record(rec)

    def close(self) -> CaptureStats:
        """Report every flow still open (end of capture or shutdown) and return the counters."""
        self.table.drain()
        self.stats.flows_evicted = self.table.evicted
        return self.stats
