"""NTP (RFC 5905) and its control (mode 6, RFC 1305 App. B) and private (mode 7, ntpdc) messages.

`probe(data, from_client)`: one UDP datagram.
- modes 1-5: at least 48 bytes, then only whole 32-bit words (extension fields, key ID and MAC);
  version 1-4, stratum 0-16, poll interval 0-17 (clients may send 0), precision -32..0 when set.
- mode 6: 12-byte header, opcode 1-31, the count of data bytes padded to 4, then nothing or a
  key id and MAC: the datagram length must be exactly that.
- mode 7: version 1-4, implementation 0, 2 or 3, request code below 64; a response is exactly its
  header plus items x item size, a request has no sequence number and few items.

Meta: ``ntp_version``, ``ntp_mode`` ("client", "server", "symmetric-active", "broadcast",
"control", "private"), ``ntp_stratum`` (server replies).
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

MODES = {
    1: "symmetric-active",
    2: "symmetric-passive",
    3: "client",
    4: "server",
    5: "broadcast",
    6: "control",
    7: "private",
}


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 8:
        return NO_MATCH
    version, mode = (data[0] >> 3) & 7, data[0] & 7
    if not 1 <= version <= 4 or mode == 0:
        return NO_MATCH
    meta: dict = {"ntp_version": version, "ntp_mode": MODES[mode]}
    if mode == 6:
        if len(data) < 12 or not data[1] & 0x1F:
            return NO_MATCH
        (count,) = struct.unpack_from("!H", data, 10)
        body = 12 + ((count + 3) & ~3)
        if len(data) not in (body, body + 20, body + 24):  # padded data, then an optional key id + MAC
            return NO_MATCH
        return ProbeResult(ProbeStatus.MATCH, meta)
    if mode == 7:
        if data[2] not in (0, 2, 3) or data[3] >= 64:
            return NO_MATCH
        err_items, mbz_size = struct.unpack_from("!HH", data, 4)
        nitems, itemsize = err_items & 0x0FFF, mbz_size & 0x0FFF
        if err_items >> 12 > 7 or mbz_size >> 12:
            return NO_MATCH
        if data[0] & 0x80:  # response: exactly the items it announces
            ok = len(data) == 8 + nitems * itemsize
        else:  # request: no sequence number, at most a few small items
            ok = not data[1] & 0x7F and nitems <= 8 and 8 + nitems * itemsize <= len(data)
        return ProbeResult(ProbeStatus.MATCH, meta) if ok else NO_MATCH
    if len(data) < 48 or len(data) % 4 or len(data) > 1024:
        return NO_MATCH
    stratum, poll, precision = data[1], data[2], struct.unpack_from("!b", data, 3)[0]
    if stratum > 16 or 17 < poll < 0xF8 or not -32 <= precision <= 0:
        return NO_MATCH
    if mode == 4:
        meta["ntp_stratum"] = stratum
    return ProbeResult(ProbeStatus.MATCH, meta)
