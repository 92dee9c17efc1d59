"""Is an unrecognised flow fully encrypted, and how much should that worry anyone?

The byte figures come from detection (the core's `core/src/detect/entropy.rs`: Shannon entropy plus the exemptions
Wu et al. found the Great Firewall applies to fully encrypted traffic, USENIX Security 2023).
Their Ex5, "the bytes match a known protocol", is partly decided here: the engine already tried
every signature, but some framings are too generic to be a signature and yet prove the bytes are
not a bespoke cipher stream: a TLS record seen mid-stream, compressed data, a short ASCII protocol
tag ahead of binary fields.

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
from typing import Any

from ..model import SEVERITIES, FlowRecord, peek

MIN_CONFIDENT = 64

# Ex5 extension: first bytes of framings that are structured, not a cipher stream.
_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"PK\x03\x04", "zip"),
)
_ZLIB_SECOND = frozenset((0x01, 0x5E, 0x9C, 0xDA))


@dataclass(slots=True, frozen=True)
class EncryptedVerdict:
    severity: str
    message: str


def known_framing(head: bytes) -> str | None:
    """Why these first bytes are a known structure (Ex5), or None."""
    if len(head) >= 5 and 0x14 <= head[0] <= 0x18 and head[1] == 0x03 and head[2] <= 0x04:
        length = int.from_bytes(head[3:5], "big")
        if 0 < length <= 18432:  # TLS 1.2 ciphertext limit 2^14 + 2048
            return "TLS record framing (handshake not captured)"
    for magic, name in _COMPRESSED:
        if head.startswith(magic):
            return f"{name}-compressed data"
    if len(head) >= 2 and head[0] == 0x78 and head[1] in _ZLIB_SECOND:
        return "zlib-compressed data"
    # A protocol tag of at least four ASCII letters/digits (ZBXD, RFB, MQTT...): Ex2 needs six
    # printable bytes, but a four-character alphanumeric tag is already 1 in 300 for random bytes.
    if len(head) >= 4 and head[:4].isalnum():  # bytes.isalnum: ASCII letters and digits only
        return f"ASCII protocol tag {head[:4].decode('ascii')!r}"
    # the same within a typical 4-byte length prefix: length-framed protocols with an ASCII tag
    if len(head) >= 8 and head[:2] == b"\x00\x00" and head[4:8].isalpha():
        return f"length-prefixed ASCII tag {head[4:8].decode('ascii')!r}"
    return None


def _head(meta: dict[str, Any], key: str) -> bytes:
    value = meta.get(key)
    if not isinstance(value, str):
        return b""
    try:
        return bytes.fromhex(value)
    except ValueError:
        return b""


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
    if known_framing(_head(meta, f"{side}_head")) is not None:
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
