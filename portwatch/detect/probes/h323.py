"""H.323 call signalling (H.225.0 / Q.931) and control (H.245), both framed in TPKT (RFC 1006).

`probe(data, from_client)`: a TPKT (version 3, length >= 8) whose payload is either a Q.931
message (protocol discriminator 8, call reference of at most 2 bytes, a known message type), or -
when it is not an X.224 PDU (RDP, ISO-TSAP) - an H.245 message whose TPKT framing holds for a
second PDU right after the first.

Meta: ``q931_message`` ("setup", "connect", "release-complete"...) or ``h245: True``.
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

Q931 = {
    0x01: "alerting",
    0x02: "call-proceeding",
    0x03: "progress",
    0x05: "setup",
    0x07: "connect",
    0x0D: "setup-ack",
    0x0F: "connect-ack",
    0x45: "disconnect",
    0x4D: "release",
    0x5A: "release-complete",
    0x62: "facility",
    0x6E: "notify",
    0x7B: "information",
    0x7D: "status",
    0x75: "status-enquiry",
}


def _tpkt(data: bytes, off: int) -> int | None:
    if off + 4 > len(data) or data[off] != 3 or data[off + 1] != 0:
        return None
    (length,) = struct.unpack_from("!H", data, off + 2)
    return length if length >= 8 else None


def probe(data: bytes, from_client: bool) -> ProbeResult:
    length = _tpkt(data, 0)
    if length is None or len(data) < 8:
        return NO_MATCH
    if data[4] == 0x08:
        crl = data[5]
        if crl <= 2 and len(data) > 6 + crl and data[6 + crl] in Q931:
            return ProbeResult(ProbeStatus.MATCH, {"q931_message": Q931[data[6 + crl]]})
        return NO_MATCH
    if data[4] == length - 5 and data[5] & 0xF0 in (0xE0, 0xD0, 0xF0, 0x80, 0x70):
        return NO_MATCH  # an X.224/COTP PDU: RDP or ISO-TSAP, not H.245
    nxt = _tpkt(data, length)
    if nxt is None:
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, {"h245": True})
