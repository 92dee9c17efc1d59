"""BACnet/IP (ASHRAE 135 Annex J): a BVLC header whose length is the datagram's, then an NPDU.

`probe(data, from_client)`: type 0x81, a known BVLC function, a 2-byte length equal to the datagram
length; functions that carry an NPDU (original unicast/broadcast, forwarded, distribute) must show
NPDU version 1 where it belongs.

Meta: ``bvlc_function`` ("original-unicast", "original-broadcast", "forwarded"...).
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

FUNCTIONS = {
    0x00: "result",
    0x01: "write-bdt",
    0x02: "read-bdt",
    0x03: "read-bdt-ack",
    0x04: "forwarded",
    0x05: "register-foreign-device",
    0x06: "read-fdt",
    0x07: "read-fdt-ack",
    0x08: "delete-fdt-entry",
    0x09: "distribute-broadcast",
    0x0A: "original-unicast",
    0x0B: "original-broadcast",
    0x0C: "secure-bvll",
}
NPDU_AT = {0x04: 10, 0x09: 4, 0x0A: 4, 0x0B: 4}


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 4 or data[0] != 0x81 or data[1] not in FUNCTIONS:
        return NO_MATCH
    if struct.unpack_from("!H", data, 2)[0] != len(data):
        return NO_MATCH
    at = NPDU_AT.get(data[1])
    if at is not None and (len(data) < at + 2 or data[at] != 1):
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, {"bvlc_function": FUNCTIONS[data[1]]})
