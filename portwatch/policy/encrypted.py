"""Is an unrecognised flow fully encrypted, and how much should that worry anyone?

The byte figures and the verdict `looks_encrypted` come from detection (the core's
`core/src/detect/entropy.rs`: Shannon entropy plus the exemptions Wu et al. found the Great Firewall
applies to fully encrypted traffic, USENIX Security 2023; their Ex5, "the bytes match a known
protocol", is every signature the engine tried and the framings too generic to be one, such as a TLS
record seen mid-stream or compressed data). This module only weighs the verdict.

How bad an encrypted unknown is depends on the port:
  - a port /etc/services assigns to a service portwatch has no signature for (kerberos, isakmp,
    ms-wbt-server...): the bytes are probably that service: info;
  - the middle of a flow on a port that expects an encrypted protocol (the handshake was not
    captured; for UDP, where no handshake marks a session start, any flow): info;
  - a port whose protocol portwatch recognises, handshake seen, nothing matched: an obfuscated
    proxy (Shadowsocks, VMess, obfs4) is the usual explanation: high on a port firewalls let
    out, medium elsewhere;
  - an unassigned port: medium;
  - a sample under MIN_CONFIDENT bytes cannot show entropy convincingly: one step lower.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import SEVERITIES, FlowRecord, peek

MIN_CONFIDENT = 64


@dataclass(slots=True, frozen=True)
class EncryptedVerdict:
    severity: str
    message: str


def _lower(severity: str) -> str:
    return SEVERITIES[max(SEVERITIES.index(severity) - 1, 0)]


def judge(
    rec: FlowRecord, server: str, where: str, *, expected: frozenset[str], expected_encrypted: bool, egress: bool
) -> EncryptedVerdict | None:
    meta = rec.meta
    # The first data a client sends is what the GFW measures; a server-first flow has only the server's.
    side, facts = "client", peek(meta, "entropy_client")
    if not isinstance(facts, dict):
        side, facts = "server", peek(meta, "entropy_server")
    if not isinstance(facts, dict) or not facts.get("looks_encrypted"):
        return None
    figures = (f"{side} bytes: entropy {facts.get('entropy', 0):.2f} bits/byte over {facts.get('length', 0)} "
               f"bytes, popcount {facts.get('popcount', 0):.2f}/byte, printable {facts.get('printable', 0):.0%}, "
               f"longest printable run {facts.get('longest_printable_run', 0)}; no GFW exemption "
               f"(Ex1-Ex5) applies")
    lead = f"unrecognised traffic to {server} on {where} looks fully encrypted ({figures})"
    if rec.assigned and not expected:
        return EncryptedVerdict("info", f"{lead}; the port's service has no signature here, so the bytes are "
                                "probably that service's")
    if expected and expected_encrypted and (rec.orientation == "inferred" or rec.transport == "udp"):
        # TCP: the capture began mid-flow; UDP: nothing says where a session began (QUIC short
        # headers, DTLS records after the handshake), so the assigned protocol is the likely one.
        return EncryptedVerdict("info", f"{lead}; consistent with {', '.join(sorted(expected))} seen "
                                "mid-session, whose handshake was not captured")
    if expected:
        severity = "high" if egress else "medium"
        note = (f"; {', '.join(sorted(expected))} was expected here and did not match: an obfuscated proxy "
                "(Shadowsocks, VMess, obfs4) looks like this")
    else:
        severity, note = "medium", "; no service is assigned to the port"
    if int(facts.get("length", 0)) < MIN_CONFIDENT:
        severity = _lower(severity)
        note += f" (short sample: under {MIN_CONFIDENT} bytes)"
    return EncryptedVerdict(severity, lead + note)
