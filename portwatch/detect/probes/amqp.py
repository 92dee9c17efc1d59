"""AMQP 0-9-1: the protocol header, or frames that chain (type, channel, size, payload, 0xCE).

`probe(data, from_client)`: TCP stream prefix. A client opens with "AMQP" 0 0 9 1 (or the 1.0
header "AMQP" id 1 0 0). Mid-connection, frames of type 1 (method), 2 (header), 3 (body) or 8
(heartbeat) each end with the frame-end octet 0xCE exactly where their size says; every whole
frame in the prefix must check, and at least one must be whole.

Meta: ``amqp_version`` ("0-9-1", "1.0") for a protocol header, ``amqp_class`` / ``amqp_method``
for a first method frame ("10.10" is connection.start).
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

FRAME_TYPES = (1, 2, 3, 8)
FRAME_END = 0xCE
MAX_FRAMES = 16
MAX_FRAME = 1 << 20


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if data[:4] == b"AMQP" and len(data) >= 8:
        if data[4:8] == b"\x00\x00\x09\x01":
            return ProbeResult(ProbeStatus.MATCH, {"amqp_version": "0-9-1"})
        if data[4] in (0, 1, 2, 3) and data[5:8] == b"\x01\x00\x00":
            return ProbeResult(ProbeStatus.MATCH, {"amqp_version": "1.0"})
        return NO_MATCH
    off, whole, meta = 0, 0, {}
    for _ in range(MAX_FRAMES):
        if off + 7 > len(data):
            break
        kind, channel, size = struct.unpack_from("!BHI", data, off)
        if kind not in FRAME_TYPES or size > MAX_FRAME or (kind == 8 and (size or channel)):
            return NO_MATCH
        end = off + 7 + size
        if end >= len(data):
            break
        if data[end] != FRAME_END:
            return NO_MATCH
        if whole == 0 and kind == 1 and size >= 4:
            cls, method = struct.unpack_from("!HH", data, off + 7)
            meta = {"amqp_method": f"{cls}.{method}"}
        whole += 1
        off = end + 1
    return ProbeResult(ProbeStatus.MATCH, meta) if whole else NO_MATCH
