"""STUN probe (RFC 5389/8489, classic RFC 3489): one message header and its attribute list.

`probe(data, from_client)`: one UDP datagram, or the first bytes of a TCP stream (messages back to
back). The header's two top bits are zero, the length is a multiple of 4; with the magic cookie
0x2112A442 any method is accepted, without it (RFC 3489) only Binding and Shared Secret. The
attributes must tile the message body exactly (type, length, padding to 4), which random bytes
almost never do.

Meta: ``stun_method`` ("binding", "allocate"...), ``stun_class`` ("request", "success"...),
``stun_software`` (attribute SOFTWARE, sanitised).
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

MAGIC = 0x2112A442
MAX_ATTRIBUTES = 64
METHODS = {
    0x001: "binding", 0x002: "shared-secret", 0x003: "allocate", 0x004: "refresh", 0x006: "send",
    0x007: "data", 0x008: "create-permission", 0x009: "channel-bind", 0x00A: "connect",
    0x00B: "connection-bind", 0x00C: "connection-attempt",
}  # fmt: skip
CLASSES = ("request", "indication", "success", "error")
ATTR_SOFTWARE = 0x8022


def parse(data: bytes) -> dict | None:
    """Header and attributes of the STUN message at the start of `data`, or None."""
    if len(data) < 20:
        return None
    mtype, length, cookie = struct.unpack_from("!HHI", data, 0)
    if mtype & 0xC000 or length & 3 or 20 + length > len(data):
        return None
    method = (mtype & 0x000F) | ((mtype & 0x00E0) >> 1) | ((mtype & 0x3E00) >> 2)
    cls = ((mtype & 0x0010) >> 4) | ((mtype & 0x0100) >> 7)
    if cookie != MAGIC and (method not in (1, 2) or cls == 1):
        return None
    if method not in METHODS:
        return None
    off, end, count = 20, 20 + length, 0
    software = None
    while off < end:
        if off + 4 > end or count == MAX_ATTRIBUTES:
            return None
        atype, alen = struct.unpack_from("!HH", data, off)
        if atype == ATTR_SOFTWARE and software is None:
            software = data[off + 4 : off + 4 + min(alen, 128)]
        off += 4 + ((alen + 3) & ~3)
        count += 1
    if off != end:
        return None
    return {
        "method": METHODS[method],
        "class": CLASSES[cls],
        "length": end,
        "software": software,
        "classic": cookie != MAGIC,
    }


def probe(data: bytes, from_client: bool) -> ProbeResult:
    msg = parse(data)
    if msg is None:
        return NO_MATCH
    # Classic STUN has no cookie to vouch for it: demand a non-empty, exactly tiled body.
    if msg["classic"] and msg["length"] == 20:
        return NO_MATCH
    meta = {"stun_method": msg["method"], "stun_class": msg["class"]}
    if msg["software"]:
        meta["stun_software"] = clean_text(msg["software"], 128)
    return ProbeResult(ProbeStatus.MATCH, meta)


# A STUN message type has its two top bits clear (RFC 8489 6): the engine skips other units.
probe.first_bytes = frozenset(range(0x40))  # type: ignore[attr-defined]
