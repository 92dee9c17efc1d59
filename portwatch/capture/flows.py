"""The bidirectional flow table.

Each flow is stored under both directional keys, with the direction index as part of the value,
so one dictionary look-up finds the flow *and* the direction of a packet: the only work a packet
of an already-classified flow costs (DESIGN.md). A key is the bytes `src + dst + sport + dport`
(ports big-endian), one table per transport: for IPv4 without options those 12 bytes sit
contiguously in the packet, so the hot path builds its key with a single slice.

The value under each key is that direction's `Side`: the counters and the last timestamp a packet
updates live there, so a packet of a classified flow touches one object after the look-up.

Roles: endpoint A is whoever sent the first packet seen. `client_dir` says which side is the
client: 0 when A is the client, 1 when B is.
"""

from __future__ import annotations

import copy
import socket
from collections import OrderedDict, deque
from collections.abc import Callable

from .reassembly import StreamBuffer

TCP = 6
UDP = 17
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

MAX_UDP_UNITS = 4  # datagrams kept per direction for detection
HEAD_BYTES = 32  # first bytes of each direction kept for the analyst (hex in meta)


class Side:
    """One direction of a flow: packets, payload bytes, last packet time, and whether the flow is
    still inspected (mirrored from the Flow so the per-packet path need not load the Flow)."""

    __slots__ = ("bytes", "d", "flow", "inspecting", "pkts", "ts")

    def __init__(self, flow: Flow, d: int, ts: float) -> None:
        self.flow: Flow | None = flow  # None once the flow has left the table
        self.d = d
        self.pkts = 0
        self.bytes = 0
        self.ts = ts
        self.inspecting = True


def _per_side(name: str) -> property:
    """A read-only [direction 0, direction 1] list view of a Side attribute."""

    def get(flow: Flow) -> list[int]:
        return [getattr(flow.sides[0], name), getattr(flow.sides[1], name)]

    return property(get)


class Flow:
    __slots__ = (
        "a_ip",
        "a_port",
        "b_ip",
        "b_port",
        "client_dir",
        "closed_at",
        "decision",
        "encap",
        "fins",
        "isn",
        "key_a",
        "key_b",
        "meta",
        "meta_done",
        "meta_left",
        "meta_seen",
        "orientation",
        "payload_pkts",
        "proto",
        "reported",
        "rst",
        "sides",
        "slot",
        "streams",
        "ts_start",
        "units",
        "upgrades_stale",
    )

    def __init__(
        self, key_a: bytes, proto: int, ts: float, client_dir: int, orientation: str, encap: tuple | None
    ) -> None:
        alen = (len(key_a) - 4) >> 1
        src, dst = key_a[:alen], key_a[alen : 2 * alen]
        sport = (key_a[2 * alen] << 8) | key_a[2 * alen + 1]
        dport = (key_a[2 * alen + 2] << 8) | key_a[2 * alen + 3]
        self.key_a = key_a
        self.key_b = reverse_key(key_a)
        self.a_ip, self.a_port, self.b_ip, self.b_port, self.proto = src, sport, dst, dport, proto
        self.ts_start = ts
        self.sides = (Side(self, 0, ts), Side(self, 1, ts))
        self.client_dir = client_dir
        self.orientation = orientation
        self.encap = encap
        self.fins = 0  # bit d set when direction d sent FIN
        self.rst = False
        self.closed_at: float | None = None
        self.payload_pkts = 0
        self.decision = None  # engine.Decision once classified
        self.meta: dict = {}
        self.meta_left = 0
        self.meta_seen = 0  # bit d: direction d's probes have yielded metadata
        self.meta_done = 0  # bit d: direction d has nothing more to tell
        self.reported = False  # the monitor has emitted this flow's classification
        self.upgrades_stale = False  # bytes came since detect/upgrades.py last read the buffers
        self.slot: int | None = None  # in capture.settled.SettledFlows while settled
        # Buffers are made when a direction first carries data: a SYN flood's flows never get one.
        self.isn: list[int | None] = [None, None] if proto == TCP else []
        if proto == TCP:
            self.streams: list[StreamBuffer | None] | None = [None, None]
            self.units: list[list[bytes]] | None = None
        else:
            self.streams = None
            self.units = [[], []]

    # Per-direction state lives in the sides; these views are for everything off the hot path.
    pkts = _per_side("pkts")
    bytes = _per_side("bytes")

    @property
    def ts_end(self) -> float:
        a, b = self.sides
        return a.ts if a.ts >= b.ts else b.ts

    @property
    def inspecting(self) -> bool:
        return self.sides[0].inspecting

    @inspecting.setter
    def inspecting(self, value: bool) -> None:
        self.sides[0].inspecting = self.sides[1].inspecting = value

    def fork(self, ts: float) -> Flow:
        """A copy that goes on as a new segment (the monitor's active timeout): same keys, roles,
        verdict and TCP state, counters from zero, no buffers."""
        cont = copy.copy(self)
        cont.ts_start = ts
        cont.sides = (Side(cont, 0, ts), Side(cont, 1, ts))
        cont.inspecting = False
        cont.streams = cont.units = None
        cont.slot = None
        return cont

    # Role-based views, used off the hot path only.
    @property
    def server_port(self) -> int:
        return self.b_port if self.client_dir == 0 else self.a_port

    @property
    def client_port(self) -> int:
        return self.a_port if self.client_dir == 0 else self.b_port

    @property
    def server_ip(self) -> bytes:
        return self.b_ip if self.client_dir == 0 else self.a_ip

    @property
    def client_ip(self) -> bytes:
        return self.a_ip if self.client_dir == 0 else self.b_ip

    def units_of(self, d: int) -> list[bytes]:
        """Direction d's units: its stream prefix for TCP, its first datagrams for UDP."""
        if self.streams is not None:
            s = self.streams[d]
            return [bytes(s.data)] if s is not None and s.data else []
        assert self.units is not None
        return self.units[d]

    def units_by_role(self) -> tuple[list[bytes], list[bytes]]:
        """(client units, server units): stream prefixes for TCP, first datagrams for UDP."""
        c = self.client_dir
        return self.units_of(c), self.units_of(1 - c)

    def anomalies(self) -> int:
        return sum(s.anomalies for s in self.streams if s is not None) if self.streams else 0

    def stream(self, d: int) -> StreamBuffer:
        """Direction d's reassembly buffer, made on first use (it starts at ISN + 1 if a SYN was seen)."""
        assert self.streams is not None
        buf = self.streams[d]
        if buf is None:
            buf = self.streams[d] = StreamBuffer()
            isn = self.isn[d]
            if isn is not None:
                buf.syn(isn)
        return buf

    def release_buffers(self) -> None:
        """Keep the first bytes for the analyst, free the rest: memory follows live flows only."""
        cu, su = self.units_by_role()
        if cu:
            self.meta.setdefault("client_head", cu[0][:HEAD_BYTES].hex())
        if su:
            self.meta.setdefault("server_head", su[0][:HEAD_BYTES].hex())
        anomalies = self.anomalies()
        if anomalies:
            self.meta["tcp_overlap_conflicts"] = anomalies
        self.streams = None
        self.units = None


def flow_key(src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    return src + dst + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")


def reverse_key(key: bytes) -> bytes:
    alen = (len(key) - 4) >> 1
    a = 2 * alen
    return key[alen:a] + key[:alen] + key[a + 2 : a + 4] + key[a : a + 2]


def shard_of(key: bytes, shards: int) -> int:
    """A shard number that both directions of a flow agree on (XOR is symmetric in the endpoints)."""
    alen = (len(key) - 4) >> 1
    a = 2 * alen
    mixed = (int.from_bytes(key[:alen], "big") ^ int.from_bytes(key[alen:a], "big")
             ^ int.from_bytes(key[a : a + 2], "big") ^ int.from_bytes(key[a + 2 : a + 4], "big"))
    mixed ^= mixed >> 64
    mixed ^= mixed >> 32
    return ((mixed & 0xFFFFFFFF) * 0x9E3779B1 >> 16) % shards


def ip_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


class FlowTable:
    """Flows by directional key (one dict per transport), a cap (oldest evicted first), idle expiry."""

    def __init__(self, max_flows: int, on_remove: Callable[[Flow, str], None]) -> None:
        self.max_flows = max_flows
        self.tcp: dict[bytes, Side] = {}
        self.udp: dict[bytes, Side] = {}
        self.by_proto = {TCP: self.tcp, UDP: self.udp}
        # Insertion order: the first flow is the oldest. An OrderedDict, not a dict: a dict leaves a
        # dummy slot per deleted key at its front, so next(iter()) after many evictions scans them
        # all (300 us per eviction at 200k flows, a SYN flood's throughput collapse).
        self.order: OrderedDict[Flow, None] = OrderedDict()
        self.closed: deque[Flow] = deque()  # TCP flows in the order they closed (see release_closed)
        self.on_remove = on_remove
        self.evicted = 0

    @property
    def count(self) -> int:
        return len(self.order)

    def add(self, flow: Flow) -> None:
        if len(self.order) >= self.max_flows:
            self.evict_oldest()
        entries = self.by_proto[flow.proto]
        entries[flow.key_a], entries[flow.key_b] = flow.sides
        self.order[flow] = None

    def remove(self, flow: Flow, reason: str) -> None:
        if flow not in self.order:
            return  # already reported
        del self.order[flow]
        entries = self.by_proto[flow.proto]
        entries.pop(flow.key_a, None)
        entries.pop(flow.key_b, None)
        self.on_remove(flow, reason)
        # A Side points back at its Flow: break the cycle, or every ended flow waits for the cyclic
        # garbage collector (12 MB more peak memory on the 2M-packet benchmark, and its CPU).
        for side in flow.sides:
            side.flow = None

    def evict_oldest(self) -> None:
        flow = next(iter(self.order))
        self.evicted += 1
        flow.meta["evicted"] = True
        self.remove(flow, "evicted")

    def flows(self) -> list[Flow]:
        return list(self.order)

    def release_closed(self, now: float, linger: float) -> None:
        """Report the TCP flows closed more than `linger` seconds ago, oldest first.

        Closed flows queue in closing order, so this costs nothing while none is due: memory then
        follows the live flows even in a capture shorter than one idle sweep.
        """
        closed = self.closed
        while closed:
            flow = closed[0]
            if flow.closed_at is not None and now - flow.closed_at < linger:
                return
            closed.popleft()
            if flow.closed_at is not None and flow in self.order:
                self.remove(flow, "closed")

    def expire(self, now: float, idle_tcp: float, idle_udp: float, linger: float, idle_dns: float | None = None) -> int:
        """Remove flows idle too long, and closed flows past their linger time.

        A DNS exchange is over once answered: like Zeek's dns_session_timeout, DNS flows get the
        shorter `idle_dns`, so a resolver's thousands of one-shot flows do not pile up for a minute.
        """
        expired = 0
        for flow in self.flows():
            if flow.closed_at is not None:
                if now - flow.closed_at >= linger:
                    self.remove(flow, "closed")
                    expired += 1
                continue
            if flow.proto == TCP:
                idle = idle_tcp
            elif idle_dns is not None and flow.decision is not None and flow.decision.protocol == "dns":
                idle = idle_dns
            else:
                idle = idle_udp
            if now - flow.ts_end >= idle:
                self.remove(flow, "idle")
                expired += 1
        return expired

    def drain(self) -> None:
        for flow in self.flows():
            self.remove(flow, "end")
        self.closed.clear()
