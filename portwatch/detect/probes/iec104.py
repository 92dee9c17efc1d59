"""IEC 60870-5-104: APDUs of start byte 0x68 and a length, chained through the stream.

`probe(data, from_client)`: TCP stream prefix. Each APDU starts with 0x68 and a length of 4..253;
a U-format frame (control field ending in binary 11) is exactly 4 bytes with one function bit set
(STARTDT/STOPDT/TESTFR act or con) and zeros after; an S-format frame is 4 bytes with its second
byte zero; an I-format frame carries an ASDU. Every APDU wholly present must check, and at least
one must be present.

Meta: ``iec104_first`` ("startdt-act", "testfr-con", "i-frame"...).
"""

from __future__ import annotations

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

U_FUNCTIONS = {
    0x07: "startdt-act",
    0x0B: "startdt-con",
    0x13: "stopdt-act",
    0x23: "stopdt-con",
    0x43: "testfr-act",
    0x83: "testfr-con",
}
MAX_APDUS = 16


def _apdu(data: bytes, off: int) -> tuple[str, int] | None:
    if data[off] != 0x68 or off + 2 > len(data):
        return None
    length = data[off + 1]
    if not 4 <= length <= 253:
        return None
    end = off + 2 + length
    if end > len(data):
        return ("partial", end)
    ctrl = data[off + 2 : off + 6]
    if ctrl[0] & 3 == 3:
        if length != 4 or ctrl[0] not in U_FUNCTIONS or ctrl[1:] != b"\x00\x00\x00":
            return None
        return U_FUNCTIONS[ctrl[0]], end
    if ctrl[0] & 3 == 1:
        return ("s-frame", end) if length == 4 and ctrl[1] == 0 and not ctrl[2] & 1 else None
    return ("i-frame", end) if length > 4 and not ctrl[2] & 1 else None


def probe(data: bytes, from_client: bool) -> ProbeResult:
    off, first = 0, None
    for _ in range(MAX_APDUS):
        if off >= len(data):
            break
        apdu = _apdu(data, off)
        if apdu is None:
            return NO_MATCH
        if apdu[0] == "partial":
            break
        first = first or apdu[0]
        off = apdu[1]
    if first is None:
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, {"iec104_first": first})
