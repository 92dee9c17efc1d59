"""Microsoft SQL Server TDS (MS-TDS 2.2.3): 8-byte packet headers chained through the stream.

`probe(data, from_client)`: the first bytes of one TCP direction. Each packet header holds a
type the direction may send (client: SQL batch, pre-TDS7 login, RPC, attention, bulk load,
transaction manager, TDS7 login, SSPI, pre-login; server: tabular result, and pre-login answers
carried as type 4), a status of known bits, a length of at least 8, and a zero window byte. A
packet without the end-of-message bit must have at least the smallest negotiable packet size
(512), since only the last packet of a message may be short. When
the stream holds more than the first packet, the next header must check too.

Meta: ``tds_type`` ("prelogin", "login7", "sql-batch", "rpc", "result"...).
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

CLIENT_TYPES = {
    0x01: "sql-batch",
    0x02: "login",
    0x03: "rpc",
    0x06: "attention",
    0x07: "bulk-load",
    0x0E: "transaction-manager",
    0x10: "login7",
    0x11: "sspi",
    0x12: "prelogin",
}
SERVER_TYPES = {0x04: "result", 0x12: "prelogin"}
MAX_PACKET = 32768
MIN_PACKET_SIZE = 512  # the smallest packet size a client may negotiate
MAX_CHAIN = 4


def _header_ok(data: bytes, off: int, types: dict) -> int | None:
    if off + 8 > len(data):
        return None
    kind, status, length = struct.unpack_from("!BBH", data, off)
    if kind not in types or status & 0xE0 or not 8 <= length <= MAX_PACKET or data[off + 7] != 0:
        return None
    if status & 2 and not status & 1:
        return None  # "ignore this event" is only valid together with end-of-message
    if not status & 1 and length < MIN_PACKET_SIZE:
        return None  # only the last packet of a message (EOM) may be shorter than the packet size
    return length


def probe(data: bytes, from_client: bool) -> ProbeResult:
    types = CLIENT_TYPES if from_client else SERVER_TYPES
    first = _header_ok(data, 0, types)
    if first is None:
        return NO_MATCH
    off = first
    for _ in range(MAX_CHAIN):
        if off + 8 > len(data):
            break
        length = _header_ok(data, off, types)
        if length is None:
            return NO_MATCH
        off += length
    return ProbeResult(ProbeStatus.MATCH, {"tds_type": types[data[0]]})
