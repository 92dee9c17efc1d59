"""CoAP (RFC 7252): the 4-byte header, token, and an option list that must decode to the end.

`probe(data, from_client)`: one UDP datagram. Version 1, token length 0-8, a code of a known class
(0.xx requests and empty, 2.xx, 4.xx, 5.xx responses, 7.xx signalling); an empty message (0.00)
is exactly 4 bytes. Options use the delta/length nibbles (13 and 14 extend, 15 is reserved except
as the 0xFF payload marker), and a payload marker must be followed by a payload.

Meta: ``coap_code`` ("GET", "2.05"...), ``coap_type`` ("CON", "NON", "ACK", "RST").
"""

from __future__ import annotations

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

METHODS = {1: "GET", 2: "POST", 3: "PUT", 4: "DELETE", 5: "FETCH", 6: "PATCH", 7: "iPATCH"}
TYPES = ("CON", "NON", "ACK", "RST")
MAX_OPTIONS = 64


def _extended(nibble: int, data: bytes, off: int) -> tuple[int, int] | None:
    if nibble < 13:
        return nibble, off
    if nibble == 13:
        return (data[off] + 13, off + 1) if off < len(data) else None
    if nibble == 14:
        return ((data[off] << 8 | data[off + 1]) + 269, off + 2) if off + 1 < len(data) else None
    return None


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 4 or data[0] >> 6 != 1:
        return NO_MATCH
    tkl, code = data[0] & 0x0F, data[1]
    cls, detail = code >> 5, code & 0x1F
    if tkl > 8 or cls not in (0, 2, 4, 5, 7) or (cls == 0 and detail > 7):
        return NO_MATCH
    if code == 0:
        return (
            ProbeResult(ProbeStatus.MATCH, {"coap_code": "empty", "coap_type": TYPES[data[0] >> 4 & 3]})
            if len(data) == 4 and tkl == 0
            else NO_MATCH
        )
    off = 4 + tkl
    if off > len(data):
        return NO_MATCH
    for _ in range(MAX_OPTIONS):
        if off >= len(data):
            break
        byte = data[off]
        if byte == 0xFF:
            if off + 1 >= len(data):
                return NO_MATCH
            break
        delta = _extended(byte >> 4, data, off + 1)
        if delta is None:
            return NO_MATCH
        length = _extended(byte & 0x0F, data, delta[1])
        if length is None or length[1] + length[0] > len(data):
            return NO_MATCH
        off = length[1] + length[0]
    else:
        return NO_MATCH
    name = METHODS.get(detail, "?") if cls == 0 else f"{cls}.{detail:02d}"
    return ProbeResult(ProbeStatus.MATCH, {"coap_code": name, "coap_type": TYPES[data[0] >> 4 & 3]})
