"""SOCKS 4/4a (the de-facto spec) and SOCKS 5 (RFC 1928): the greeting and the connect request.

`probe(data, from_client)`: TCP stream prefix.
- client, SOCKS 5: version 5, 1-16 methods (all known or private), and when more bytes follow, a
  request (version 5, command 1-3, reserved 0, address type 1, 3 or 4) that must parse whole.
- client, SOCKS 4: version 4, command 1-2, port, IPv4 address, NUL-terminated user id (and for
  4a, address 0.0.0.x with x != 0, a NUL-terminated host name).
- server: SOCKS 5 method selection (5, method) or SOCKS 4 reply (0, status 90-93, 6 bytes).

Meta: ``socks_version`` (4, 5), ``socks_target`` ("host:port", sanitised), ``socks_auth`` (the
method the server chose: "none", "gssapi", "password"...).
"""

from __future__ import annotations

import ipaddress
import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

METHODS = {0: "none", 1: "gssapi", 2: "password", 3: "chap", 0xFF: "no-acceptable"}


def _request5(data: bytes) -> str | None:
    if len(data) < 7 or data[0] != 5 or not 1 <= data[1] <= 3 or data[2] != 0:
        return None
    atyp = data[3]
    if atyp == 1 and len(data) >= 10:
        host, end = str(ipaddress.IPv4Address(data[4:8])), 8
    elif atyp == 4 and len(data) >= 22:
        host, end = f"[{ipaddress.IPv6Address(data[4:20])}]", 20
    elif atyp == 3 and data[4] and len(data) >= 5 + data[4] + 2:
        name = data[5 : 5 + data[4]]
        if any(b < 0x21 or b > 0x7E for b in name):
            return None
        host, end = name.decode("ascii"), 5 + data[4]
    else:
        return None
    return f"{host}:{struct.unpack_from('!H', data, end)[0]}"


def _client(data: bytes) -> dict | None:
    if data[0] == 5:
        n = data[1]
        if not 1 <= n <= 16 or len(data) < 2 + n:
            return None
        if any(m not in METHODS and not 0x80 <= m <= 0xFE for m in data[2 : 2 + n]) or 0xFF in data[2 : 2 + n]:
            return None
        meta: dict = {"socks_version": 5}
        rest = data[2 + n :]
        if rest:
            target = _request5(rest)
            if target is None:
                return None
            meta["socks_target"] = clean_text(target, 300)
        return meta
    if data[0] == 4 and data[1] in (1, 2) and len(data) >= 9:
        end = data.find(b"\x00", 8, 8 + 256)
        if end < 0:
            return None
        (port,) = struct.unpack_from("!H", data, 2)
        if data[4:7] == b"\x00\x00\x00" and data[7]:
            host_end = data.find(b"\x00", end + 1, end + 1 + 256)
            if host_end <= end + 1:
                return None
            host = clean_text(data[end + 1 : host_end], 255)
        else:
            host = str(ipaddress.IPv4Address(data[4:8]))
        return {"socks_version": 4, "socks_target": clean_text(f"{host}:{port}", 300)}
    return None


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 2:
        return NO_MATCH
    if from_client:
        meta = _client(data)
        return NO_MATCH if meta is None else ProbeResult(ProbeStatus.MATCH, meta)
    if data[0] == 5 and (data[1] in METHODS or 0x80 <= data[1] <= 0xFE):
        if len(data) > 2 and (len(data) < 4 or data[2] not in (1, 5)):
            return NO_MATCH  # after the method: a password sub-negotiation (1) or a reply (5)
        return ProbeResult(ProbeStatus.MATCH, {"socks_version": 5, "socks_auth": METHODS.get(data[1], "private")})
    if data[0] == 0 and 90 <= data[1] <= 93 and len(data) >= 8:
        return ProbeResult(ProbeStatus.MATCH, {"socks_version": 4})
    return NO_MATCH
