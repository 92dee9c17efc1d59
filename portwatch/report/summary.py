"""Aggregate flow records for the closing report: flows per protocol, findings per server and kind.

Findings are deduplicated per (server endpoint, transport, kind): 500 SSH-on-443 sessions to one
server are one line with a count and first/last seen, not 500 lines. Memory grows with the
number of distinct servers, never with the number of flows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..model import SEVERITY_RANK, FlowRecord


@dataclass(slots=True)
class FindingGroup:
    kind: str
    severity: str
    server: str
    transport: str
    protocol: str
    message: str
    count: int
    first_seen: float
    last_seen: float
    clients: set[str] = field(default_factory=set)

    MAX_CLIENTS = 1000  # enough to say "many"; bounded against floods


@dataclass(slots=True)
class Summary:
    flows: int = 0
    by_protocol: Counter[str] = field(default_factory=Counter)
    groups: dict[tuple[str, str, str], FindingGroup] = field(default_factory=dict)
    max_severity: str | None = None

    def add(self, rec: FlowRecord) -> None:
        self.flows += 1
        self.by_protocol[rec.protocol] += 1
        server = f"[{rec.dst_ip}]:{rec.dst_port}" if ":" in rec.dst_ip else f"{rec.dst_ip}:{rec.dst_port}"
        for f in rec.findings:
            key = (server, rec.transport, f.kind)
            g = self.groups.get(key)
            if g is None:
                g = self.groups[key] = FindingGroup(
                    f.kind, f.severity, server, rec.transport, rec.protocol, f.message, 0, rec.ts_start, rec.ts_end
                )
            g.count += 1
            g.first_seen = min(g.first_seen, rec.ts_start)
            g.last_seen = max(g.last_seen, rec.ts_end)
            if SEVERITY_RANK[f.severity] > SEVERITY_RANK[g.severity]:
                g.severity, g.message = f.severity, f.message
            if len(g.clients) < FindingGroup.MAX_CLIENTS:
                g.clients.add(rec.src_ip)
            if self.max_severity is None or SEVERITY_RANK[f.severity] > SEVERITY_RANK[self.max_severity]:
                self.max_severity = f.severity

    def sorted_groups(self) -> list[FindingGroup]:
        return sorted(self.groups.values(), key=lambda g: (-SEVERITY_RANK[g.severity], -g.count, g.server, g.kind))

    def reaches(self, severity: str) -> bool:
        return self.max_severity is not None and SEVERITY_RANK[self.max_severity] >= SEVERITY_RANK[severity]
