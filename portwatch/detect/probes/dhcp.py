"""DHCP (RFC 2131) over BOOTP, and DHCPv6 (RFC 8415).

- `probe(data, from_client)`: BOOTP op 1 (request) or 2 (reply), hardware length <= 16, hops <= 16,
  the magic cookie 99.130.83.99 at offset 236 and an option list that ends (END or the datagram).
- `probe_v6(data, from_client)`: message type 1-13; client/server messages carry a 3-byte
  transaction id then options that must tile the datagram exactly; relay messages a hop count
  and two addresses first.

Meta: ``dhcp_type`` ("discover", "request", "ack"... / v6 "solicit", "reply"...),
``dhcp_hostname`` (option 12) and ``dhcp_vendor`` (option 60), sanitised.
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

COOKIE = b"\x63\x82\x53\x63"
TYPES = {
    1: "discover",
    2: "offer",
    3: "request",
    4: "decline",
    5: "ack",
    6: "nak",
    7: "release",
    8: "inform",
    9: "forcerenew",
    10: "leasequery",
    13: "leaseactive",
}
V6_TYPES = {
    1: "solicit",
    2: "advertise",
    3: "request",
    4: "confirm",
    5: "renew",
    6: "rebind",
    7: "reply",
    8: "release",
    9: "decline",
    10: "reconfigure",
    11: "information-request",
    12: "relay-forw",
    13: "relay-repl",
}
MAX_OPTIONS = 128


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 240 or data[0] not in (1, 2) or data[2] > 16 or data[3] > 16 or data[236:240] != COOKIE:
        return NO_MATCH
    meta: dict = {}
    off = 240
    for _ in range(MAX_OPTIONS):
        if off >= len(data):
            break
        code = data[off]
        if code == 255:
            break
        if code == 0:
            off += 1
            continue
        if off + 2 > len(data) or off + 2 + data[off + 1] > len(data):
            return NO_MATCH
        value = data[off + 2 : off + 2 + data[off + 1]]
        if code == 53 and len(value) == 1:
            meta["dhcp_type"] = TYPES.get(value[0], str(value[0]))
        elif code == 12 and value:
            meta["dhcp_hostname"] = clean_text(value, 64)
        elif code == 60 and value:
            meta["dhcp_vendor"] = clean_text(value, 128)
        off += 2 + len(value)
    return ProbeResult(ProbeStatus.MATCH, meta)


def probe_v6(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 4 or data[0] not in V6_TYPES:
        return NO_MATCH
    off = 34 if data[0] in (12, 13) else 4
    if data[0] in (12, 13) and (len(data) < 34 or data[1] > 32):
        return NO_MATCH
    count = 0
    while off < len(data):
        if off + 4 > len(data) or count == MAX_OPTIONS:
            return NO_MATCH
        code, length = struct.unpack_from("!HH", data, off)
        if code == 0 or code > 200:
            return NO_MATCH
        off += 4 + length
        count += 1
    if off != len(data) or count == 0:
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, {"dhcp_type": V6_TYPES[data[0]]})
