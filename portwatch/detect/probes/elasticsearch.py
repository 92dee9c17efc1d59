"""Elasticsearch transport protocol (node-to-node and transport clients, TCP 9300).

`probe(data, from_client)`: messages start with "ES", a 4-byte big-endian length of the rest, then
a request id and a status byte. The length must be positive and fit the stream (or be cut by the
detection depth); when a second message begins inside what was seen, its "ES" marker must be
where the first length says. A ping is "ES" and length -1 (0xFFFFFFFF).

Meta: ``es_ping: True`` for a keepalive ping.
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

MAX_MESSAGE = 512 * 1024 * 1024


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 6 or data[:2] != b"ES":
        return NO_MATCH
    (length,) = struct.unpack_from("!i", data, 2)
    if length == -1:
        return ProbeResult(ProbeStatus.MATCH, {"es_ping": True})
    if not 13 <= length <= MAX_MESSAGE or len(data) < 15:
        return NO_MATCH
    nxt = 6 + length
    if nxt + 2 <= len(data) and data[nxt : nxt + 2] != b"ES":
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, {})
