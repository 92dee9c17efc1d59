"""Make attacker-controlled bytes safe to show.

Every piece of text taken from a packet (banners, SNI, hosts, DNS names...) passes through
`clean_text` before it enters a flow record, so that no sink ever sees a control character,
an ANSI/OSC escape sequence, invalid UTF-8 or an unbounded string.
"""

from __future__ import annotations

import re

MAX_TEXT = 256
_ELLIPSIS = "…"

# C0 and C1 controls, DEL, and the Unicode format/separator characters that reorder or hide text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_text(value: bytes | str, limit: int = MAX_TEXT) -> str:
    """Decode (invalid UTF-8 becomes U+FFFD), escape every control character, truncate to `limit`."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        # Cut before decoding so a megabyte of input costs no more than `limit` characters.
        raw = bytes(value[: limit * 4 + 4])
        text = raw.decode("utf-8", errors="replace")
        truncated = len(value) > len(raw)
    else:
        text = value[: limit * 4 + 4]
        truncated = len(value) > len(text)
    if not text.isprintable():  # every _UNSAFE character is unprintable: most text skips the regex
        text = _UNSAFE.sub(_escape, text)
    if len(text) > limit or truncated:
        text = text[: max(limit - 1, 0)] + _ELLIPSIS
    return text


def hexdump(data: bytes, width: int = 16, limit: int = 256) -> str:
    """A classic offset/hex/ASCII dump whose ASCII column shows only printable ASCII."""
    lines = []
    data = bytes(data[:limit])
    for off in range(0, len(data), width):
        chunk = data[off : off + width]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{off:08x}  {hexpart:<{width * 3}} {text}")
    return "\n".join(lines)
