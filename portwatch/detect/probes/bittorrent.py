"""BitTorrent over UDP: the uTP transport header (BEP 29).

`probe_utp(data, from_client)`: one datagram. Version 1, type ST_DATA..ST_SYN, a well-formed
extension chain (selective ACK lengths a multiple of 4, extension bits of 8 bytes), and a
payload exactly where the type allows one (ST_DATA only). `probe_utp_units` (``units = True``)
demands more than one header: an ST_SYN, or two datagrams of one connection id whose sequence
numbers move forward by a little, since a lone data header is only two bytes of evidence.
The TCP handshake and the DHT's
bencoded KRPC messages are plain patterns in signatures/bittorrent.toml.

Meta: ``utp_type`` ("data", "fin", "state", "reset", "syn").
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence

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


def probe_utp_units(units: Sequence[bytes], from_client: bool) -> ProbeResult:
    heads = []
    for unit in units[:8]:
        result = probe_utp(unit, from_client)
        if result.status != ProbeStatus.MATCH:
            return NO_MATCH
        if result.meta["utp_type"] == "syn":
            return result
        conn, seq = struct.unpack_from("!H", unit, 2)[0], struct.unpack_from("!H", unit, 16)[0]
        heads.append((conn, seq, result))
    for (conn_a, seq_a, _), (conn_b, seq_b, result) in itertools.pairwise(heads):
        if conn_a == conn_b and (seq_b - seq_a) & 0xFFFF <= 16:
            return result
    return NO_MATCH


probe_utp_units.units = True  # type: ignore[attr-defined]
# Every datagram must be uTP (BEP 29): type 0-4 in the high nibble, version 1 in the low one.
probe_utp.first_bytes = frozenset(kind << 4 | 1 for kind in range(5))  # type: ignore[attr-defined]
probe_utp_units.first_bytes = probe_utp.first_bytes  # type: ignore[attr-defined]
