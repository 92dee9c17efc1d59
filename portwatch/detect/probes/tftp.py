"""TFTP (RFC 1350, 2347 options): requests, data, acknowledgements, errors and option acks.

`probe(data, from_client)`: one datagram. RRQ/WRQ: opcode 1/2, a printable file name, a known
transfer mode (netascii, octet, mail) and NUL-terminated option pairs filling the datagram. DATA
(3): block number and at most 512 bytes unless an option said otherwise (up to 65464); ACK (4):
exactly 4 bytes; ERROR (5): code 0-8 and a NUL-terminated message; OACK (6): option pairs.

Meta: ``tftp_op`` ("read", "write", "data", "ack", "error", "oack"), ``tftp_file`` (sanitised).
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

MODES = (b"netascii", b"octet", b"mail")


def _strings(body: bytes) -> list[bytes] | None:
    if not body or body[-1] != 0:
        return None
    parts = body[:-1].split(b"\x00")
    if len(parts) > 32 or any(not p or any(b < 0x20 or b > 0x7E for b in p) for p in parts):
        return None
    return parts


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 4 or data[0] != 0:
        return NO_MATCH
    op = data[1]
    if op in (1, 2):
        parts = _strings(data[2:])
        if not parts or len(parts) < 2 or len(parts) % 2 or parts[1].lower() not in MODES:
            return NO_MATCH
        return ProbeResult(
            ProbeStatus.MATCH, {"tftp_op": "read" if op == 1 else "write", "tftp_file": clean_text(parts[0], 128)}
        )
    if op == 3:
        return ProbeResult(ProbeStatus.MATCH, {"tftp_op": "data"}) if len(data) <= 4 + 65464 else NO_MATCH
    if op == 4:
        return ProbeResult(ProbeStatus.MATCH, {"tftp_op": "ack"}) if len(data) == 4 else NO_MATCH
    if op == 5:
        (code,) = struct.unpack_from("!H", data, 2)
        if code > 8 or data[-1] != 0 or any(b < 0x20 or b > 0x7E for b in data[4:-1]):
            return NO_MATCH
        return ProbeResult(ProbeStatus.MATCH, {"tftp_op": "error"})
    if op == 6:
        parts = _strings(data[2:])
        if not parts or len(parts) % 2:
            return NO_MATCH
        return ProbeResult(ProbeStatus.MATCH, {"tftp_op": "oack"})
    return NO_MATCH


def probe_request(data: bytes, from_client: bool) -> ProbeResult:
    """Only the self-describing messages: requests, errors and option acks."""
    result = probe(data, from_client)
    return result if result.meta.get("tftp_op") not in (None, "data", "ack") else NO_MATCH


def probe_transfer(data: bytes, from_client: bool) -> ProbeResult:
    """DATA and ACK: four bytes of structure, weak alone, telling with the other direction."""
    result = probe(data, from_client)
    if result.meta.get("tftp_op") not in ("data", "ack") or struct.unpack_from("!H", data, 2)[0] == 0:
        return NO_MATCH
    return result
