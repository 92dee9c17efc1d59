"""Types shared by every stage of the pipeline.

Only plain data lives here: the stages import it, it imports nothing of theirs.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from . import _core

# A record's `meta` from the core is a `_core.Meta`: a mapping over the core's map that becomes a
# real dict at the first iteration, nested value or change (see core/src/py/meta.rs). Registered
# so that isinstance(meta, Mapping) holds, as for the dicts of records made in Python.
MutableMapping.register(_core.Meta)


def peek(meta: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """`meta.get(key, default)` for code that reads the value and changes nothing: from a core
    `Meta` a list or an object comes as a copy, and the meta is not made a dict for it (its JSON
    stays the core's). The policy reads records' nested facts (DNS answers, entropy, tunnel
    verdicts) this way."""
    if type(meta) is _core.Meta:
        return meta.peek(key, default)
    return meta.get(key, default)


def listed_reason(meta: Mapping[str, Any], listing: Mapping[str, Mapping[str, Any]]) -> Any:
    """The first reason `listing` (fact -> value -> reason) gives for one of `meta`'s values, their
    value read as text (`str`); None when none does. A core `Meta` answers in one call: the policy
    asks this of every record, and most hold none of the facts."""
    if type(meta) is _core.Meta and type(listing) is dict:
        return meta.listed_reason(listing)
    for fact, reasons in listing.items():
        value = meta.get(fact)
        if value is not None:
            why = reasons.get(str(value))
            if why:
                return why
    return None


SEVERITIES = ("info", "low", "medium", "high")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

FINDING_KINDS = (
    "port-mismatch",
    "tunnel",
    "encrypted-unknown",
    "cleartext-on-secure-port",
    "insecure-protocol",
    "unassigned-port",
    "dns-tunnel",
    "new-service",
    "stream-anomaly",
    "privileged-source-port",
    "ftp-bounce",
    # host audit (portwatch audit)
    "root-service",
    "unwrapped-service",
    "unknown-service",
)




@dataclass(slots=True)
class Finding:
    kind: str
    severity: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "severity": self.severity, "message": self.message}


@dataclass(slots=True)
class FlowRecord:
    """One finished (or still open, for the monitor) flow, as docs/schema.md names it.

    `meta` is a dict for records made in Python; for the core's a `_core.Meta`, which behaves as
    one (a `MutableMapping`; `copy()` and `as_dict()` give real dicts, pickling gives a dict)."""

    ts_start: float
    ts_end: float
    transport: str
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    orientation: str
    protocol: str = "unknown"
    confidence: float = 0.0
    assigned: list[str] = field(default_factory=list)
    packets_c2s: int = 0
    packets_s2c: int = 0
    bytes_c2s: int = 0
    bytes_s2c: int = 0
    # The core's map (`_core.Meta`) as records come, a dict where Python made one.
    meta: dict[str, Any] | _core.Meta = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    pcap: str | None = None
    # For joining with Zeek's conn.log and Suricata's EVE: the flow's number within its source
    # (the number of its first packet, 1-based), Community ID v1, and Zeek's conn_state and history.
    flow_id: int | None = None
    community_id: str | None = None
    duration: float = 0.0
    state: str | None = None
    history: str | None = None

    def as_dict(self, copy: bool = True) -> dict[str, Any]:
        """The record as docs/schema.md lists it (`pcap` after the ids, only when known), `meta` a
        dict of its own. With `copy=False`, `assigned` and `meta` are the record's own (for a writer
        that encodes the dict at once and keeps nothing: `meta` may be a `_core.Meta`, which
        `report.jsonl` encodes as the core's JSON)."""
        # Key by key into one dict: a literal merged in by update() built a second dict per record,
        # and the findings comprehension ran even for the many records that have none.
        out: dict[str, Any] = {"flow_id": self.flow_id, "community_id": self.community_id}
        if self.pcap is not None:
            out["pcap"] = self.pcap
        out["ts_start"] = self.ts_start
        out["ts_end"] = self.ts_end
        out["duration"] = self.duration
        out["transport"] = self.transport
        out["src_ip"] = self.src_ip
        out["src_port"] = self.src_port
        out["dst_ip"] = self.dst_ip
        out["dst_port"] = self.dst_port
        out["orientation"] = self.orientation
        out["protocol"] = self.protocol
        out["confidence"] = round(self.confidence, 3)
        out["assigned"] = list(self.assigned) if copy else self.assigned
        out["packets_c2s"] = self.packets_c2s
        out["packets_s2c"] = self.packets_s2c
        out["bytes_c2s"] = self.bytes_c2s
        out["bytes_s2c"] = self.bytes_s2c
        out["state"] = self.state
        out["history"] = self.history
        out["meta"] = self.meta.copy() if copy else self.meta
        findings = self.findings
        out["findings"] = [f.as_dict() for f in findings] if findings else []
        return out


@dataclass(slots=True)
class CaptureStats:
    """Counters a source and the decoder keep, reported in the summary."""

    packets: int = 0
    bytes: int = 0
    malformed: int = 0
    non_ip: int = 0
    fragments: int = 0
    fragments_dropped: int = 0
    unsupported_link: int = 0
    encrypted_frames: int = 0  # 802.11 data frames whose body is encrypted (WEP/WPA), also in non_ip
    flows_evicted: int = 0
    other_shard: int = 0  # packets left to another process when one capture is split (--workers)
    filtered: int = 0  # packets the capture filter (-f) left out: not in `packets` or `bytes`
    error: str | None = None  # the one-line reason reading stopped early

    COUNTERS = ("packets", "bytes", "malformed", "non_ip", "fragments", "fragments_dropped", "unsupported_link",
                "encrypted_frames", "flows_evicted", "filtered")

    def add(self, other: CaptureStats) -> None:
        """Sum another capture's counters into these (the report over several captures)."""
        for name in self.COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
