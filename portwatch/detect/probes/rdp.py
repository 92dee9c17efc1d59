"""RDP connection start (MS-RDPBCGR 2.2.1.1): a TPKT (RFC 1006) carrying an X.224 Connection Request.

`probe(data, from_client)`: client side, TPKT version 3 with a length that the X.224 length
indicator matches (LI = TPKT length - 5), CR code 0xE0, and after the 7-byte X.224 header either a
"Cookie: mstshash=" line, a routing token, or an RDP_NEG_REQ (type 1, length 8). Server side, the
Connection Confirm (0xD0) with an RDP_NEG_RSP or RDP_NEG_FAILURE, or an empty confirm.

Meta: ``rdp_cookie`` (the mstshash user hint, sanitised), ``rdp_protocols`` (requested security
protocols bitmask: 0 standard RDP, 1 TLS, 2 CredSSP, 8 RDSTLS...).
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text


def x224(data: bytes) -> tuple[int, bytes] | None:
    """(X.224 code, variable part) of a TPKT-framed COTP PDU at the start of `data`."""
    if len(data) < 11 or data[0] != 3 or data[1] != 0:
        return None
    (length,) = struct.unpack_from("!H", data, 2)
    if length < 11 or length > len(data) or data[4] != length - 5:
        return None
    return data[5] & 0xF0, data[11:length]


def probe(data: bytes, from_client: bool) -> ProbeResult:
    pdu = x224(data)
    if pdu is None:
        return NO_MATCH
    code, rest = pdu
    meta: dict = {}
    if from_client and code == 0xE0:
        if rest.startswith(b"Cookie: mstshash="):
            end = rest.find(b"\r\n")
            meta["rdp_cookie"] = clean_text(rest[17 : end if end >= 0 else 17 + 64], 64)
            rest = rest[end + 2 :] if end >= 0 else b""
        elif rest.startswith(b"Cookie: msts="):
            end = rest.find(b"\r\n")
            rest = rest[end + 2 :] if end >= 0 else b""
        if len(rest) >= 8 and rest[0] == 1 and rest[2:4] == b"\x08\x00":
            meta["rdp_protocols"] = struct.unpack_from("<I", rest, 4)[0]
        elif rest or not meta:
            return NO_MATCH
        return ProbeResult(ProbeStatus.MATCH, meta)
    confirm_ok = not rest or (len(rest) >= 8 and rest[0] in (2, 3) and rest[2:4] == b"\x08\x00")
    if not from_client and code == 0xD0 and confirm_ok:
        return ProbeResult(ProbeStatus.MATCH, meta)
    return NO_MATCH
