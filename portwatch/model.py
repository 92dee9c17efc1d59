"""Types shared by every stage of the pipeline.

Only plain data lives here: the stages import it, it imports nothing of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TCP = 6
UDP = 17
TRANSPORT_NAMES = {TCP: "tcp", UDP: "udp"}

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
    """One finished (or still open, for the monitor) flow, as docs/schema.md names it."""

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
    meta: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    pcap: str | None = None
    # For joining with Zeek's conn.log and Suricata's EVE: the flow's number within its source
    # (the number of its first packet, 1-based), Community ID v1, and Zeek's conn_state and history.
    flow_id: int | None = None
    community_id: str | None = None
    duration: float = 0.0
    state: str | None = None
    history: str | None = None

    @classmethod
    def from_core(cls, raw: dict[str, Any], assigned: list[str]) -> FlowRecord:
        """A record from the core's dict (`portwatch._core`; optional keys may be absent), with
        `assigned` as the services database says. Positional, in the fields' order: the
        per-record path of every run, where keywords cost a third more."""
        get = raw.get
        ts_start, ts_end, duration = raw["ts_start"], raw["ts_end"], get("duration")
        return cls(
            ts_start, ts_end, raw["transport"], raw["src_ip"], raw["src_port"], raw["dst_ip"], raw["dst_port"],
            raw["orientation"], raw["protocol"], raw["confidence"], assigned, raw["packets_c2s"],
            raw["packets_s2c"], raw["bytes_c2s"], raw["bytes_s2c"], raw["meta"], [], get("pcap"), get("flow_id"),
            get("community_id"), round(ts_end - ts_start if duration is None else duration, 6), get("state"),
            get("history"),
        )

    def as_dict(self, copy: bool = True) -> dict[str, Any]:
        """The record as docs/schema.md lists it (`pcap` after the ids, only when known). With
        `copy=False`, `assigned` and `meta` are the record's own (for a writer that encodes the
        dict at once and keeps nothing)."""
        out: dict[str, Any] = {"flow_id": self.flow_id, "community_id": self.community_id}
        if self.pcap is not None:
            out["pcap"] = self.pcap
        out.update({
            "ts_start": self.ts_start,
            "ts_end": self.ts_end,
            "duration": self.duration,
            "transport": self.transport,
            "src_ip": self.src_ip,
            "src_port": self.src_port,
            "dst_ip": self.dst_ip,
            "dst_port": self.dst_port,
            "orientation": self.orientation,
            "protocol": self.protocol,
            "confidence": round(self.confidence, 3),
            "assigned": list(self.assigned) if copy else self.assigned,
            "packets_c2s": self.packets_c2s,
            "packets_s2c": self.packets_s2c,
            "bytes_c2s": self.bytes_c2s,
            "bytes_s2c": self.bytes_s2c,
            "state": self.state,
            "history": self.history,
            "meta": dict(self.meta) if copy else self.meta,
            "findings": [f.as_dict() for f in self.findings],
        })
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
