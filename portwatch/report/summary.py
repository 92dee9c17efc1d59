"""Aggregate flow records for the closing report: flows per protocol, findings per server and kind.

Findings are deduplicated per (server endpoint, transport, kind): 500 SSH-on-443 sessions to one
server are one line with a count and first/last seen, not 500 lines. The line keeps the message
of its worst (then first) finding. Memory is bounded whatever the capture holds: at most
MAX_GROUPS lines (a finding at a server past them is counted in the totals per kind and severity,
`unlisted`, and not listed: every record still carries it), at most MAX_CLIENTS client addresses
a line and MAX_CLIENT_ADDRESSES over all lines (past either, a line's client count is shown as a
lower bound), at most MAX_PROTOCOLS protocols a line. A banner-grabbing scan's capture has a
finding at every server it reached.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model import SEVERITY_RANK, FlowRecord
from .clients import keep_client
from .schema import server_label

if TYPE_CHECKING:
    from .. import _core

MAX_CLIENTS = 1000  # enough to say "many"; bounded against floods
MAX_GROUPS = 50_000  # ~1 KB each with its message
MAX_CLIENT_ADDRESSES = 500_000  # ~90 bytes each
MAX_PROTOCOLS = 8
TOP_FINDINGS = 20  # findings the console report shows unless --all


@dataclass(slots=True)
class FindingGroup:
    kind: str
    severity: str
    dst_ip: str
    dst_port: int
    transport: str
    protocol: str
    message: str
    count: int
    first_seen: float
    last_seen: float
    clients: set[str] = field(default_factory=set)
    clients_capped: bool = False
    protocols: list[str] = field(default_factory=list)
    # A dict, not a Counter: a group is made for every new server with a finding, and a Counter
    # takes ten times a dict's time to make.
    by_severity: dict[str, int] = field(default_factory=dict)

    MAX_CLIENTS = MAX_CLIENTS

    @property
    def server(self) -> str:
        return server_label(self.dst_ip, self.dst_port)

    @property
    def client_count(self) -> str:
        return f"{len(self.clients)}+" if self.clients_capped else str(len(self.clients))

    def as_row(self) -> dict[str, Any]:
        """The findings table's row (`schema.FINDING_COLUMNS`)."""
        return {
            "severity": self.severity,
            "kind": self.kind,
            "dst_ip": self.dst_ip,
            "dst_port": self.dst_port,
            "transport": self.transport,
            "protocol": self.protocol,
            "flows": self.count,
            "clients": len(self.clients),
            "clients_capped": self.clients_capped,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "message": self.message,
        }


def server_of(rec: FlowRecord) -> str:
    return server_label(rec.dst_ip, rec.dst_port)


@dataclass(slots=True)
class Summary:
    flows: int = 0
    by_protocol: Counter[str] = field(default_factory=Counter)
    groups: dict[tuple[str, int, str, str, str], FindingGroup] = field(default_factory=dict)
    max_severity: str | None = None
    first_seen: float = float("inf")
    last_seen: float = float("-inf")
    # Findings at servers past MAX_GROUPS lines, per (kind, severity): in the totals, not listed.
    unlisted: dict[tuple[str, str], int] = field(default_factory=dict)
    # Client addresses held over every line's `clients` (at most MAX_CLIENT_ADDRESSES).
    client_addresses: int = 0

    def _count(self, flows: int, first_seen: float, last_seen: float) -> None:
        self.flows += flows
        # what min() and max() decide (a NaN never replaces a bound), without their calls
        if first_seen < self.first_seen:
            self.first_seen = first_seen
        if last_seen > self.last_seen:
            self.last_seen = last_seen

    def add(self, rec: FlowRecord) -> None:
        self._count(1, rec.ts_start, rec.ts_end)
        self.by_protocol[rec.protocol] += 1
        if not rec.findings:
            return
        self.add_worst(rec)
        for f in rec.findings:
            # SSH and HTTP on one port: two lines (the console, --findings-only and Analysis.summary())
            key = (rec.dst_ip, rec.dst_port, rec.transport, f.kind, rec.protocol)
            g = self.groups.get(key)
            if g is None:
                if len(self.groups) >= MAX_GROUPS:
                    tally = (f.kind, f.severity)
                    self.unlisted[tally] = self.unlisted.get(tally, 0) + 1
                    continue
                g = self.groups[key] = FindingGroup(
                    f.kind, f.severity, rec.dst_ip, rec.dst_port, rec.transport, rec.protocol, f.message, 0,
                    rec.ts_start, rec.ts_end,
                )
            g.count += 1
            g.by_severity[f.severity] = g.by_severity.get(f.severity, 0) + 1
            if rec.ts_start < g.first_seen:
                g.first_seen = rec.ts_start
            if rec.ts_end > g.last_seen:
                g.last_seen = rec.ts_end
            if SEVERITY_RANK[f.severity] > SEVERITY_RANK[g.severity]:
                g.severity, g.message = f.severity, f.message
            if rec.protocol not in g.protocols and len(g.protocols) < MAX_PROTOCOLS:
                g.protocols.append(rec.protocol)
            held = keep_client(g.clients, rec.src_ip, self.client_addresses, MAX_CLIENTS, MAX_CLIENT_ADDRESSES)
            if held is None:
                g.clients_capped = True
            else:
                self.client_addresses = held

    def add_tally(self, tally: _core.QuietTally) -> None:
        """Records no finding came of, as `add` counts each: a run of them the core counted
        (flows, first and last seen, flows per protocol in the order each first came)."""
        self._count(tally.flows, tally.first_seen, tally.last_seen)
        for protocol, flows in tally.by_protocol:
            self.by_protocol[protocol] += flows

    def add_worst(self, rec: FlowRecord) -> None:
        """Only what `reaches` asks of a record: the worst severity among its findings. For a run
        that writes records and no closing report (jsonl, eve, csv, sqlite, parquet), whose summary
        decides the exit status alone: `add`, grouping every finding by server, took ~1 us a
        record of Python's thread on a slow link's capture (0.2 us this), and its groups, one
        with its message for each of 20,000 servers with a finding there, ~10 MB of the run's
        peak RSS."""
        for f in rec.findings:
            if self.max_severity is None or SEVERITY_RANK[f.severity] > SEVERITY_RANK[self.max_severity]:
                self.max_severity = f.severity

    @property
    def unlisted_findings(self) -> int:
        return sum(self.unlisted.values())

    def unlisted_note(self) -> str | None:
        """What a report of the listed lines says about the rest, or None when every finding is listed."""
        n = self.unlisted_findings
        if not n:
            return None
        return (f"{n:,} more finding{'' if n == 1 else 's'} at servers past the first {MAX_GROUPS:,} lines are "
                "in the totals but not listed (each flow's record carries its findings)")

    def sorted_groups(self) -> list[FindingGroup]:
        return sorted(self.groups.values(), key=lambda g: (-SEVERITY_RANK[g.severity], -g.count, g.dst_ip,
                                                             g.dst_port, g.transport, g.kind, g.protocol))

    def counts(self) -> Counter[tuple[str, str]]:
        """Flows per (kind, severity), for a one-line tally."""
        out: Counter[tuple[str, str]] = Counter()
        for g in self.groups.values():
            for sev, n in g.by_severity.items():
                out[(g.kind, sev)] += n
        out.update(self.unlisted)
        return out

    def reaches(self, severity: str) -> bool:
        return self.max_severity is not None and SEVERITY_RANK[self.max_severity] >= SEVERITY_RANK[severity]
