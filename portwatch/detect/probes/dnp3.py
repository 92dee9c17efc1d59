"""DNP3 (IEEE 1815) data link frames: start bytes 0x05 0x64 and a header CRC that must check.

`probe(data, from_client)`: TCP stream prefix or UDP datagram. The 10-byte link header (start,
length >= 5, control, destination, source, CRC-16/DNP over the first 8 bytes) is verified with
its CRC: two bytes of a random stream cannot pass this by accident.

Meta: ``dnp3_src``, ``dnp3_dst`` (link addresses), ``dnp3_function`` (link function code).
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc_dnp(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return ~crc & 0xFFFF


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 10 or data[0] != 0x05 or data[1] != 0x64 or data[2] < 5:
        return NO_MATCH
    if struct.unpack_from("<H", data, 8)[0] != crc_dnp(data[:8]):
        return NO_MATCH
    dst, src = struct.unpack_from("<HH", data, 4)
    return ProbeResult(ProbeStatus.MATCH, {"dnp3_src": src, "dnp3_dst": dst, "dnp3_function": data[3] & 0x0F})
