"""Helpers for the policy tests: a context over the real signature set and crafted flow records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portwatch import _core
from portwatch.model import SEVERITY_RANK, Finding, FlowRecord
from portwatch.policy.config import load_policy
from portwatch.policy.rules import PolicyContext, evaluate
from portwatch.services import fallback_path, load_services
from portwatch.signatures import load_signatures

SIGNATURES = load_signatures()
# The services file shipped with portwatch (Debian netbase): the tests must not depend on the host's.
SERVICES = load_services(fallback_path())


def context(policy_path: str | Path | None = None) -> PolicyContext:
    return PolicyContext.build(SERVICES, SIGNATURES, load_policy(policy_path))


def record(
    protocol: str = "unknown",
    port: int = 80,
    transport: str = "tcp",
    *,
    server: str = "192.0.2.10",
    client: str = "198.51.100.7",
    cport: int = 50000,
    confidence: float | None = None,
    c2s: int = 100,
    s2c: int = 100,
    orientation: str = "handshake",
    meta: dict[str, Any] | None = None,
    evidence: str = "client bytes confirmed by a probe; server bytes confirmed by a probe",
    packets: tuple[int, int] = (5, 5),
    ts: float = 1_700_000_000.0,
) -> FlowRecord:
    m = dict(meta or {})
    if protocol != "unknown":
        m.setdefault("evidence", evidence)
    return FlowRecord(
        ts_start=ts, ts_end=ts + 1, transport=transport, src_ip=client, src_port=cport, dst_ip=server,
        dst_port=port, orientation=orientation, protocol=protocol,
        confidence=(0.95 if protocol != "unknown" else 0.0) if confidence is None else confidence,
        assigned=SERVICES.names(port, transport), packets_c2s=packets[0], packets_s2c=packets[1],
        bytes_c2s=c2s, bytes_s2c=s2c, meta=m,
    )


def unknown_with(first_client: bytes, port: int, transport: str = "tcp", **kw: Any) -> FlowRecord:
    """An unrecognised flow whose client opened with `first_client` (entropy facts as the pipeline stores them)."""
    meta = {"entropy_client": _core.entropy_facts(first_client), "client_head": first_client[:32].hex()}
    return record("unknown", port, transport, meta=meta, **kw)


def findings(rec: FlowRecord, ctx: PolicyContext | None = None) -> list[Finding]:
    return evaluate(rec, ctx or context())


def kinds(fs: list[Finding], floor: str = "info") -> dict[str, str]:
    """kind -> worst severity, for findings at or above `floor`."""
    out: dict[str, str] = {}
    for f in fs:
        worse = f.kind not in out or SEVERITY_RANK[f.severity] > SEVERITY_RANK[out[f.kind]]
        if SEVERITY_RANK[f.severity] >= SEVERITY_RANK[floor] and worse:
            out[f.kind] = f.severity
    return out
