"""Teredo (RFC 4380): IPv6 carried in UDP, optionally behind authentication and origin indicators.

`probe(data, from_client)`: one datagram. An authentication indicator (0x0001, id length, auth
length, 8-byte nonce, confirmation byte) and/or an origin indication (0x0000, obfuscated port and
address, 8 bytes) may precede an IPv6 header whose version is 6 and whose payload length plus 40
is exactly what remains. A bare authentication indicator (a qualification bubble) also matches.

Meta: ``teredo_inner`` (the inner next-header number: 58 ICMPv6, 59 none, 6, 17...).
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus


def probe(data: bytes, from_client: bool) -> ProbeResult:
    off = 0
    if data[:2] == b"\x00\x01":
        if len(data) < 13:
            return NO_MATCH
        off = 4 + data[2] + data[3] + 9
        if off == len(data):
            return ProbeResult(ProbeStatus.MATCH, {"teredo_inner": "none"})
    if data[off : off + 2] == b"\x00\x00":
        off += 8
    if len(data) < off + 40 or data[off] >> 4 != 6:
        return NO_MATCH
    plen, nxt = struct.unpack_from("!HB", data, off + 4)
    if off + 40 + plen != len(data):
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, {"teredo_inner": nxt})
