"""MySQL / MariaDB client-server protocol: the server's initial handshake packet (protocol 10).

`probe(data, from_client)`: server side only. A 3-byte little-endian payload length that fits,
sequence id 0, protocol version 10, a NUL-terminated printable server version, a 4-byte
connection id and 8 bytes of auth-plugin data followed by a NUL filler. A server refusing the
host sends an ERR packet (0xFF, error code, message) with sequence 0 instead, which matches too.

Meta: ``mysql_version`` and ``banner`` (the server version string, sanitised).
"""

from __future__ import annotations

import re

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

_VERSION = re.compile(rb"[0-9]{1,2}\.[0-9][\x21-\x7e]{0,78}")


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if from_client or len(data) < 5:
        return NO_MATCH
    length = int.from_bytes(data[:3], "little")
    if data[3] != 0 or length < 3 or length > 1024:
        return NO_MATCH
    if data[4] == 0xFF:  # ERR before the handshake: error code, then text
        if length < 4 or 4 + length > len(data) + 512:
            return NO_MATCH
        text = data[7 : 4 + length]
        if not text or any(b < 0x20 or b > 0x7E for b in text[:64]):
            return NO_MATCH
        return ProbeResult(ProbeStatus.MATCH, {"mysql_error": clean_text(text, 128)})
    if data[4] != 10 or length < 40:
        return NO_MATCH
    end = data.find(b"\x00", 5, 5 + 80)
    if end < 0 or not _VERSION.fullmatch(data[5:end]) or len(data) < end + 14 or data[end + 13] != 0:
        return NO_MATCH
    version = clean_text(data[5:end], 80)
    return ProbeResult(ProbeStatus.MATCH, {"mysql_version": version, "banner": version})
