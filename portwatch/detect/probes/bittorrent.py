"""BitTorrent over UDP: the uTP transport header (BEP 29).

`probe_utp(data, from_client)`: one datagram. Version 1, type ST_DATA..ST_SYN, a well-formed
extension chain (selective ACK lengths a multiple of 4, extension bits of 8 bytes), and a
payload exactly where the type allows one (ST_DATA only). The TCP handshake and the DHT's
bencoded KRPC messages are plain patterns in signatures/bittorrent.toml.

Meta: ``utp_type`` ("data", "fin", "state", "reset", "syn").
"""

from __future__ import annotations

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

TYPES = ("data", "fin", "state", "reset", "syn")
MAX_EXTENSIONS = 4


def probe_utp(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 20 or data[0] & 0x0F != 1 or data[0] >> 4 > 4:
        return NO_MATCH
    kind = data[0] >> 4
    ext, off = data[1], 20
    for _ in range(MAX_EXTENSIONS + 1):
        if ext == 0:
            break
        if ext not in (1, 2) or off + 2 > len(data):
            return NO_MATCH
        nxt, length = data[off], data[off + 1]
        if (ext == 1 and (length == 0 or length % 4)) or (ext == 2 and length != 8):
            return NO_MATCH
        off += 2 + length
        ext = nxt
    else:
        return NO_MATCH
    if off > len(data):
        return NO_MATCH
    has_payload = off < len(data)
    if has_payload != (kind == 0):
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, {"utp_type": TYPES[kind]})
