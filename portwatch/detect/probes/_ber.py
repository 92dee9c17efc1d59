"""Minimal ASN.1 BER reading for the probes that need it (Kerberos, SNMP, LDAP). Pure, bounded."""

from __future__ import annotations

MAX_LENGTH_BYTES = 4


def read_tlv(data: bytes, off: int) -> tuple[int, int, int] | None:
    """(tag, content offset, content length) of the element at `off`; None when malformed.

    Only single-byte tags and definite lengths: every protocol read here uses DER-like encodings.
    The content may extend past the end of `data` (a cut prefix); callers decide.
    """
    if off + 2 > len(data):
        return None
    tag = data[off]
    if tag & 0x1F == 0x1F:
        return None
    first = data[off + 1]
    if first < 0x80:
        return tag, off + 2, first
    n = first & 0x7F
    if n == 0 or n > MAX_LENGTH_BYTES or off + 2 + n > len(data):
        return None
    length = int.from_bytes(data[off + 2 : off + 2 + n], "big")
    return tag, off + 2 + n, length


def read_int(data: bytes, off: int) -> tuple[int, int] | None:
    """(value, offset after) of an INTEGER at `off` of at most 8 bytes; None otherwise."""
    tlv = read_tlv(data, off)
    if tlv is None or tlv[0] != 0x02 or not 1 <= tlv[2] <= 8 or tlv[1] + tlv[2] > len(data):
        return None
    _, start, length = tlv
    return int.from_bytes(data[start : start + length], "big", signed=True), start + length


def read_octets(data: bytes, off: int, tag: int = 0x04) -> tuple[bytes, int] | None:
    tlv = read_tlv(data, off)
    if tlv is None or tlv[0] != tag or tlv[1] + tlv[2] > len(data):
        return None
    _, start, length = tlv
    return data[start : start + length], start + length
