"""Turn a classified flow record into findings. Pure: the record and the context in, findings out.

The question each rule answers is the same: is the protocol seen on this server port the one
/etc/services assigns to it, and if not, how bad is it? The mapping from service names to
protocols is data (each signature's `services` list), so `https` means tls and `domain` means dns
without a line of code per protocol.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..detect.signature import Signature
from ..model import SEVERITY_RANK, Finding, FlowRecord
from ..services import ServicesDB
from .config import Policy

TRUSTED_PORT_LIMIT = 1024  # ports below this need root to bind: a listener there was put there on purpose


@dataclass(slots=True)
class PolicyContext:
    services: ServicesDB
    signatures: dict[str, Signature]
    policy: Policy
    # (service name, transport) -> protocols that the name means
    service_protocols: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, services: ServicesDB, signatures: list[Signature], policy: Policy) -> PolicyContext:
        ctx = cls(services, {s.protocol: s for s in signatures}, policy)
        for sig in signatures:
            for name in sig.services:
                for t in sig.transports:
                    ctx.service_protocols.setdefault((name.lower(), t), set()).add(sig.protocol)
        return ctx

    def expected_protocols(self, port: int, transport: str) -> set[str]:
        """Protocols the services database (via signature service names) expects on a port."""
        out: set[str] = set()
        for name in self.services.all_names(port, transport):
            out |= self.service_protocols.get((name.lower(), transport), set())
        return out

    def port_fits(self, protocol: str, port: int, transport: str) -> bool:
        sig = self.signatures.get(protocol)
        if sig is not None and port in sig.ports:
            return True
        return protocol in self.expected_protocols(port, transport)


def _assigned_text(names: list[str], port: int, transport: str) -> str:
    where = f"{port}/{transport}"
    return f"{where} ({', '.join(names)})" if names else f"{where} (unassigned in /etc/services)"


def evaluate(record: FlowRecord, ctx: PolicyContext) -> list[Finding]:
    policy = ctx.policy
    proto = record.protocol
    port = record.dst_port
    transport = record.transport
    names = list(record.assigned)
    where = _assigned_text(names, port, transport)
    server = f"{record.dst_ip}:{port}" if ":" not in record.dst_ip else f"[{record.dst_ip}]:{port}"
    sig = ctx.signatures.get(proto)
    out: list[Finding] = []

    def add(kind: str, message: str, severity: str | None = None) -> None:
        out.append(Finding(kind, severity or policy.severity.get(kind, "medium"), message))

    evidence = _evidence(record)
    if proto != "unknown" and sig is not None:
        fits = ctx.port_fits(proto, port, transport)
        expected = ctx.expected_protocols(port, transport)
        if not fits:
            if sig.tunnel and policy.is_egress(port, transport):
                add("tunnel", f"{proto.upper()} server {server} on {where}, a port firewalls let out: "
                    f"{proto} can carry other traffic through it{evidence}")
            if not sig.encrypted and any(_is_encrypted(ctx, p) for p in expected):
                add("cleartext-on-secure-port",
                    f"cleartext {proto.upper()} on {server}, {where} expects an encrypted protocol "
                    f"({', '.join(sorted(expected))}){evidence}")
            elif names:
                others = ", ".join(sorted(expected)) or "another service"
                sev = "high" if port < TRUSTED_PORT_LIMIT else "medium" if expected else "low"
                add("port-mismatch", f"{proto.upper()} on {server}, but {where} is assigned to {others}{evidence}",
                    sev)
            elif port < TRUSTED_PORT_LIMIT:
                add("unassigned-port", f"{proto.upper()} server {server} on trusted port {where}{evidence}")
            elif not sig.encrypted and not sig.any_port:
                add("port-mismatch", f"cleartext {proto.upper()} on {server}, {where}{evidence}", "low")
        if sig.insecure:
            add("insecure-protocol", f"{proto.upper()} on {server} ({where}) is an insecure protocol"
                f"{': credentials cross in clear' if sig.cleartext_auth else ''}{evidence}")
        elif sig.cleartext_auth and record.meta.get("cleartext_login"):
            add("insecure-protocol", f"{proto.upper()} login on {server} ({where}) without TLS: "
                f"credentials crossed in clear{evidence}", "high")
    elif proto == "unknown":
        facts = record.meta.get("entropy_client") or record.meta.get("entropy_server")
        if facts and facts.get("looks_encrypted"):
            add("encrypted-unknown",
                f"unrecognised traffic to {server} on {where} looks fully encrypted: "
                f"entropy {facts['entropy']:.2f} bits/byte over {facts['length']} bytes, popcount "
                f"{facts['popcount']:.2f}, printable {facts['printable']:.0%}, no GFW exemption applies")
        elif port < TRUSTED_PORT_LIMIT and not names and record.bytes_c2s + record.bytes_s2c > 0:
            add("unassigned-port", f"unrecognised server {server} on trusted port {where}")
    conflicts = record.meta.get("tcp_overlap_conflicts")
    if conflicts:
        add("stream-anomaly", f"{conflicts} overlapping TCP segment(s) to or from {server} carried different "
            "bytes than the first copy (insertion/evasion attempt or broken stack); the first copy was analysed")
    return _apply_policy(out, record, policy)


def _is_encrypted(ctx: PolicyContext, protocol: str) -> bool:
    sig = ctx.signatures.get(protocol)
    return bool(sig and sig.encrypted)


def _evidence(record: FlowRecord) -> str:
    meta = record.meta
    for key, label in (("ssh_server", "banner"), ("ssh_client", "client banner"), ("sni", "SNI"),
                       ("http_host", "Host"), ("banner", "banner"), ("dns_query", "query")):
        value = meta.get(key)
        if value:
            return f" [{label}: {value}]"
    return ""


def _apply_policy(findings: list[Finding], record: FlowRecord, policy: Policy) -> list[Finding]:
    if not findings:
        return findings
    floor = SEVERITY_RANK[policy.min_severity]
    kept = []
    for f in findings:
        if f.kind in policy.disabled or _allowed(f.kind, record, policy):
            continue
        if f.kind in policy.severity_overrides:
            f.severity = policy.severity_overrides[f.kind]
        if SEVERITY_RANK[f.severity] >= floor:
            kept.append(f)
    return kept


def _allowed(kind: str, record: FlowRecord, policy: Policy) -> bool:
    if not policy.allow:
        return False
    try:
        addr = ipaddress.ip_address(record.dst_ip)
    except ValueError:
        addr = None
    for rule in policy.allow:
        if rule.protocol is not None and rule.protocol != record.protocol:
            continue
        if rule.port is not None and rule.port != record.dst_port:
            continue
        if rule.transport is not None and rule.transport != record.transport:
            continue
        if rule.kinds and kind not in rule.kinds:
            continue
        if rule.networks and (addr is None or not any(addr in n for n in rule.networks)):
            continue
        return True
    return False
