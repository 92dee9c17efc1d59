"""WireGuard: four message types, each with three reserved zero bytes and a fixed or aligned size.

`probe(data, from_client)`: one UDP datagram. Handshake initiation (1) is 148 bytes, response
(2) 92, cookie reply (3) 64; transport data (4) is 32 bytes of header and tag plus a payload
padded to 16 bytes. The sender index of types 1 and 2 is non-zero.

Meta: ``wireguard_message`` ("initiation", "response", "cookie", "data").
"""

from __future__ import annotations

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

SIZES = {1: (148, "initiation"), 2: (92, "response"), 3: (64, "cookie")}


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 32 or data[1:4] != b"\x00\x00\x00":
        return NO_MATCH
    kind = data[0]
    if kind in SIZES:
        size, name = SIZES[kind]
        if len(data) != size or (kind != 3 and data[4:8] == b"\x00\x00\x00\x00"):
            return NO_MATCH
        return ProbeResult(ProbeStatus.MATCH, {"wireguard_message": name})
    if kind == 4 and (len(data) - 32) % 16 == 0:
        return ProbeResult(ProbeStatus.MATCH, {"wireguard_message": "data"})
    return NO_MATCH
