"""SSH probe: the identification banner (RFC 4253 §4.2) and the first SSH_MSG_KEXINIT (HASSH).

`probe(data, from_client)` looks at the first bytes of one direction of a TCP stream:

- client side, the banner must be the first line; server side, up to `MAX_PRE_LINES` printable
  lines may come before it (RFC 4253 §4.2 allows them), and while only such lines are present the
  answer is MORE.
- MATCH as soon as the banner line is complete: meta ``ssh_client`` or ``ssh_server`` (the
  banner without CR LF, sanitised) and ``ssh_protoversion`` ("2.0", "1.99", "1.5").
- If the binary KEXINIT packet (message 20) that follows is complete in `data`, add HASSH per
  salesforce/hassh: client ``hassh`` = md5("kex;enc_c2s;mac_c2s;comp_c2s") and
  ``hassh_algorithms``; server ``hassh_server`` = md5("kex;enc_s2c;mac_s2c;comp_s2c") and
  ``hassh_server_algorithms``.
"""

from __future__ import annotations

import hashlib
import re
import struct
from typing import Any

from portwatch.detect.probes import guarded
from portwatch.model import NEED_MORE, NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

MAX_INPUT = 65536
MAX_BANNER = 255  # including CR LF (RFC 4253 §4.2)
MAX_PRE_LINE = 1024
MAX_PRE_LINES = 16
MAX_PACKET = 35000  # RFC 4253 §6.1
MSG_KEXINIT = 20
ALGORITHMS_LIMIT = 4096

_PREFIX = b"SSH-"
_BANNER = re.compile(rb"SSH-([0-9]+\.[0-9]+)-([\x21-\x7e]+)(?:[ \t]([^\r\n\x00]*))?\r?")
_PRE_LINE_BAD = re.compile(rb"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")


def _name_lists(payload: bytes, count: int) -> list[bytes] | None:
    """The first `count` name-lists after message byte + 16-byte cookie, or None if cut/malformed."""
    off = 17
    out = []
    for _ in range(count):
        if off + 4 > len(payload):
            return None
        (length,) = struct.unpack_from("!I", payload, off)
        off += 4
        if off + length > len(payload):
            return None
        out.append(payload[off : off + length])
        off += length
    return out


def parse_kexinit(data: bytes) -> list[bytes] | None:
    """The ten name-lists of an unencrypted binary packet carrying SSH_MSG_KEXINIT, else None."""
    if len(data) < 6:
        return None
    packet_length, padding = struct.unpack_from("!IB", data, 0)
    if not 12 <= packet_length <= MAX_PACKET or padding < 4 or padding + 1 >= packet_length:
        return None
    if len(data) < 4 + packet_length:
        return None
    payload = data[5 : 4 + packet_length - padding]
    if not payload or payload[0] != MSG_KEXINIT:
        return None
    return _name_lists(payload, 10)


def hassh_meta(lists: list[bytes], from_client: bool) -> dict[str, Any]:
    """HASSH (client) or HASSH-server from KEXINIT name-lists, per salesforce/hassh."""
    kex, _hostkey, enc_cs, enc_sc, mac_cs, mac_sc, comp_cs, comp_sc = lists[:8]
    chosen = (kex, enc_cs, mac_cs, comp_cs) if from_client else (kex, enc_sc, mac_sc, comp_sc)
    raw = b";".join(chosen)
    digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    text = clean_text(raw, ALGORITHMS_LIMIT)
    if from_client:
        return {"hassh": digest, "hassh_algorithms": text}
    return {"hassh_server": digest, "hassh_server_algorithms": text}


def _could_be_banner(rest: bytes) -> bool:
    """An incomplete last line that can still become a banner."""
    if len(rest) < len(_PREFIX):
        return _PREFIX.startswith(rest)
    return rest.startswith(_PREFIX) and len(rest) < MAX_BANNER and b"\x00" not in rest


def _probe(data: bytes, from_client: bool) -> ProbeResult:
    off = 0
    for lineno in range(MAX_PRE_LINES + 1):
        nl = data.find(b"\n", off, off + max(MAX_BANNER, MAX_PRE_LINE))
        if nl < 0:
            rest = data[off:]
            if _could_be_banner(rest):
                return NEED_MORE
            if (
                not from_client
                and lineno < MAX_PRE_LINES
                and len(rest) < MAX_PRE_LINE
                and not rest.startswith(_PREFIX)
                and not _PRE_LINE_BAD.search(rest)
            ):
                return NEED_MORE
            return NO_MATCH
        line = data[off:nl]
        if line.startswith(_PREFIX):
            if nl + 1 - off > MAX_BANNER:
                return NO_MATCH
            m = _BANNER.fullmatch(line)
            if m is None:
                return NO_MATCH
            banner = line[:-1] if line.endswith(b"\r") else line
            meta: dict[str, Any] = {
                "ssh_client" if from_client else "ssh_server": clean_text(banner),
                "ssh_protoversion": m.group(1).decode("ascii"),
            }
            done = False
            if m.group(1) in (b"2.0", b"1.99"):
                lists = parse_kexinit(data[nl + 1 :])
                if lists is not None:
                    meta.update(hassh_meta(lists, from_client))
                    done = True
            return ProbeResult(ProbeStatus.MATCH, meta, done)
        if from_client or _PRE_LINE_BAD.search(line):
            return NO_MATCH
        off = nl + 1
    return NO_MATCH


probe = guarded(_probe, MAX_INPUT)  # Classify the first bytes of one SSH direction (see the module docstring).
