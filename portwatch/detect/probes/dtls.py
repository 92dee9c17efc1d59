"""DTLS probe: DTLS 1.0/1.2 records (RFC 6347 §4.1) and the ClientHello inside them.

`probe(data, from_client)` takes one UDP datagram, which must be a whole number of records:
content type 20-23, version 0xfeff (1.0), 0xfefd (1.2) or 0xfefc, epoch, 48-bit sequence
number, length.

- client side: a ClientHello in epoch 0 (a first fragment is enough) gives the TLS probe's
  ClientHello meta with DTLS flavour: ``tls_version`` ("dtls1.2"), ``sni``, ``alpn``, ``ja3``,
  ``ja3_string`` and ``ja4`` with the "d" prefix (``tls_truncated`` for a fragment).
- server side: a HelloVerifyRequest gives ``dtls_hello_verify: True``; a
  ServerHello gives the TLS probe's ServerHello meta (``tls_version``, ``cipher``, ``ja3s``...).
- records of a later epoch (a capture started mid-session) match with ``tls_midstream: True``.
"""

from __future__ import annotations

import struct
from typing import Any

from portwatch.detect.probes import guarded, tls
from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

MAX_INPUT = 65536
MAX_RECORDS = 64
DTLS_VERSIONS = (0xFEFF, 0xFEFD, 0xFEFC)
HS_HELLO_VERIFY = 3


def _records(data: bytes) -> list[tuple[int, int, int, bytes]] | None:
    """[(content type, version, epoch, payload)] when `data` is exactly a run of records."""
    out = []
    off = 0
    while off < len(data):
        if len(out) >= MAX_RECORDS or off + 13 > len(data):
            return None
        ctype, version, epoch = struct.unpack_from("!BHH", data, off)
        (length,) = struct.unpack_from("!H", data, off + 11)
        if not tls.CT_CCS <= ctype <= tls.CT_APPDATA or version not in DTLS_VERSIONS:
            return None
        if length > tls.MAX_RECORD or off + 13 + length > len(data):
            return None
        out.append((ctype, version, epoch, data[off + 13 : off + 13 + length]))
        off += 13 + length
    return out or None


def _handshake(payload: bytes) -> tuple[int, int, int, bytes] | None:
    """(msg type, total length, fragment offset, fragment) of a DTLS handshake fragment."""
    if len(payload) < 12:
        return None
    msg_type = payload[0]
    length = int.from_bytes(payload[1:4], "big")
    frag_off = int.from_bytes(payload[6:9], "big")
    frag_len = int.from_bytes(payload[9:12], "big")
    if frag_off + frag_len > length or 12 + frag_len > len(payload):
        return None
    return msg_type, length, frag_off, payload[12 : 12 + frag_len]


def _probe(data: bytes, from_client: bool) -> ProbeResult:
    records = _records(data)
    if records is None:
        return NO_MATCH
    ctype, _version, epoch, payload = records[0]
    if epoch != 0 or ctype != tls.CT_HANDSHAKE:
        if epoch == 0 and ctype != tls.CT_ALERT:
            return NO_MATCH  # epoch 0 carries handshake (or alerts) in the clear
        return ProbeResult(ProbeStatus.MATCH, {"tls_midstream": True})
    hs = _handshake(payload)
    if hs is None:
        return NO_MATCH
    msg_type, length, frag_off, fragment = hs
    meta: dict[str, Any]
    if from_client:
        if msg_type != tls.HS_CLIENT_HELLO or frag_off != 0:
            return NO_MATCH
        ch = tls.parse_client_hello(fragment, dtls=True, total=length)
        if ch is None or (not ch.complete and len(fragment) >= length):
            return NO_MATCH
        meta = tls.client_hello_meta(ch, "d")
    elif msg_type == HS_HELLO_VERIFY:
        if len(fragment) < 3 or len(fragment) != 3 + fragment[2]:
            return NO_MATCH
        if struct.unpack_from("!H", fragment, 0)[0] not in DTLS_VERSIONS:
            return NO_MATCH
        # no tls_version: RFC 6347 §4.2.1 has servers put 1.0 here whatever they will negotiate
        meta = {"dtls_hello_verify": True}
    elif msg_type == tls.HS_SERVER_HELLO and frag_off == 0:
        sh = tls.parse_server_hello(fragment, dtls=True)
        if sh is None:
            return NO_MATCH
        meta = tls.server_hello_meta(sh)
    else:
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, meta)


probe = guarded(_probe, MAX_INPUT)  # Classify one DTLS datagram (see the module docstring).
probe.first_bytes = frozenset(range(tls.CT_CCS, tls.CT_APPDATA + 1))  # type: ignore[attr-defined]  # record type
