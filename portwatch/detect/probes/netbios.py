"""NetBIOS over TCP/IP (RFC 1001/1002): name service, datagram service, session service.

- `probe_ns`: a name-service packet is DNS-shaped, but its question name is a NetBIOS name: one
  32-character label of the letters A-P (first-level encoding), type NB (0x20) or NBSTAT (0x21).
- `probe_dgm`: a datagram-service header (types 0x10-0x16) whose length holds, followed for
  direct/broadcast datagrams by two encoded names. `datagram_data` returns the user data (an
  SMB mailslot message, for the smb probe).
- `probe_ssn`: a session request (0x81) carrying the called and calling encoded names, or a
  positive/negative response or keepalive of the exact length.

Meta: ``netbios_name`` (decoded, sanitised), ``netbios_type`` ("ns", "dgm", "ssn").
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

ENCODED_LEN = 32


def decode_name(encoded: bytes) -> str | None:
    """First-level decoding of a 32-letter name ("EOEBFDEGEJEMEFCACACACACACACACAAA" -> "NASFILE")."""
    if len(encoded) != ENCODED_LEN or any(not 0x41 <= b <= 0x50 for b in encoded):
        return None
    raw = bytes(((encoded[i] - 0x41) << 4) | (encoded[i + 1] - 0x41) for i in range(0, ENCODED_LEN, 2))
    return raw[:15].decode("latin-1").rstrip(" ")


def _encoded_name(data: bytes, off: int) -> tuple[str, int] | None:
    """An encoded name as a label sequence (with an optional scope) at `off`: (name, offset after)."""
    if off + 1 + ENCODED_LEN > len(data) or data[off] != ENCODED_LEN:
        return None
    name = decode_name(data[off + 1 : off + 1 + ENCODED_LEN])
    if name is None:
        return None
    off += 1 + ENCODED_LEN
    for _ in range(16):  # scope labels
        if off >= len(data):
            return None
        length = data[off]
        if length == 0:
            return name, off + 1
        if length > 63:
            return None
        off += 1 + length
    return None


def probe_ns(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 12 + 1 + ENCODED_LEN + 1 + 4:
        return NO_MATCH
    _, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", data, 0)
    opcode = (flags >> 11) & 0xF
    if opcode not in (0, 5, 6, 7, 8) or qd + an > 4 or ns > 4 or ar > 4 or qd + an == 0:
        return NO_MATCH
    name = _encoded_name(data, 12)
    if name is None or name[1] + 4 > len(data):
        return NO_MATCH
    qtype, qclass = struct.unpack_from("!HH", data, name[1])
    if qtype not in (0x20, 0x21) or qclass != 1:
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, {"netbios_type": "ns", "netbios_name": clean_text(name[0], 16)})


def datagram_data(data: bytes) -> tuple[str, bytes] | None:
    """(source name, user data) of a direct/broadcast datagram-service packet, else None."""
    if len(data) < 14 or data[0] not in (0x10, 0x11, 0x12):
        return None
    length = struct.unpack_from("!H", data, 10)[0]
    if 14 + length != len(data):
        return None
    src = _encoded_name(data, 14)
    if src is None:
        return None
    dst = _encoded_name(data, src[1])
    if dst is None:
        return None
    return src[0], data[dst[1] :]


def probe_dgm(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) >= 11 and data[0] in (0x13, 0x14, 0x15, 0x16):  # error / query datagrams
        ok = (data[0] == 0x13 and len(data) == 11) or (data[0] != 0x13 and _encoded_name(data, 10) is not None)
        return ProbeResult(ProbeStatus.MATCH, {"netbios_type": "dgm"}) if ok else NO_MATCH
    parsed = datagram_data(data)
    if parsed is None:
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, {"netbios_type": "dgm", "netbios_name": clean_text(parsed[0], 16)})


def probe_ssn(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 4:
        return NO_MATCH
    kind, flags, length = data[0], data[1], struct.unpack_from("!H", data, 2)[0]
    if flags & 0xFE:
        return NO_MATCH
    if kind == 0x81 and from_client:
        called = _encoded_name(data, 4)
        if called is None or _encoded_name(data, called[1]) is None or length < 68:
            return NO_MATCH
        return ProbeResult(ProbeStatus.MATCH, {"netbios_type": "ssn", "netbios_name": clean_text(called[0], 16)})
    if not from_client and (
        (kind == 0x82 and length == 0) or (kind == 0x83 and length == 1) or (kind == 0x84 and length == 6)
    ):
        return ProbeResult(ProbeStatus.MATCH, {"netbios_type": "ssn"})
    return NO_MATCH


# The engine skips these probes for units that cannot start this way (engine._Gate).
probe_dgm.first_bytes = frozenset(range(0x10, 0x17))  # type: ignore[attr-defined]  # datagram message types
probe_ssn.first_bytes = frozenset((0x81, 0x82, 0x83, 0x84))  # type: ignore[attr-defined]  # session packet types
