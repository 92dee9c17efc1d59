"""HTTP/1.x probe: request line (client) or status line (server), then the headers present.

`probe(data, from_client)`:

- client side: ``METHOD SP request-target SP HTTP/1.[01] CRLF`` with METHOD from `METHODS`
  (case-sensitive, includes CONNECT and the WebDAV verbs). Meta: ``http_method``, ``http_path``
  (the request target), ``http_version`` ("1.1"), ``http_host``, ``http_user_agent``,
  ``http_upgrade`` (e.g. "websocket", "h2c") and, for CONNECT, ``http_connect_target``.
- server side: ``HTTP/1.[01] SP 3DIGIT [SP reason] CRLF``. Meta: ``http_status`` (int),
  ``http_version``, ``http_server`` (Server header), ``http_upgrade``.
- MORE while the first line is incomplete but still a valid prefix; MATCH once it is complete,
  with whatever headers are complete in `data` (at most `MAX_HEADERS`).
"""

from __future__ import annotations

import re
from typing import Any

from portwatch.detect.probes import guarded
from portwatch.model import NEED_MORE, NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

MAX_INPUT = 65536
MAX_LINE = 8192
MAX_HEADERS = 64
PATH_LIMIT = 1024

METHODS = frozenset(
    b"GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH "
    b"PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK SEARCH REPORT MKCALENDAR "
    b"SUBSCRIBE UNSUBSCRIBE NOTIFY PURGE".split()
)
_MAX_METHOD = max(len(m) for m in METHODS)
_VERSIONS = (b"HTTP/1.0", b"HTTP/1.1")

_TARGET = re.compile(rb"[\x21-\x7e\x80-\xff]+")  # no SP, no CTL (obs-text tolerated)
_AUTHORITY = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]+):[0-9]{1,5}")
_STATUS = re.compile(rb"HTTP/1\.([01]) ([1-5][0-9][0-9])(?: [^\r\n]*)?")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*?)[ \t]*")
_WANTED = {
    b"host": "http_host",
    b"user-agent": "http_user_agent",
    b"upgrade": "http_upgrade",
    b"server": "http_server",
}


def _target_ok(method: bytes, target: bytes) -> bool:
    if not _TARGET.fullmatch(target):
        return False
    if method == b"CONNECT":
        return _AUTHORITY.fullmatch(target) is not None
    if target == b"*":
        return method == b"OPTIONS"
    return target[:1] == b"/" or target[:7].lower() in (b"http://", b"https:/") or b"://" in target[:16]


def _request_prefix_ok(line: bytes) -> bool:
    """An incomplete first line that can still become a request line."""
    sp = line.find(b" ")
    if sp < 0:
        return len(line) <= _MAX_METHOD and any(m.startswith(line) for m in METHODS)
    if line[:sp] not in METHODS:
        return False
    rest = line[sp + 1 :]
    sp2 = rest.find(b" ")
    if sp2 < 0:
        return rest == b"" or _TARGET.fullmatch(rest) is not None
    version = rest[sp2 + 1 :].rstrip(b"\r")
    return _target_ok(line[:sp], rest[:sp2]) and any(v.startswith(version) for v in _VERSIONS)


def _status_prefix_ok(line: bytes) -> bool:
    line = line.rstrip(b"\r")
    head = b"HTTP/1.x 000"
    for i, b in enumerate(line[: len(head)]):
        want = head[i]
        if want == ord("x"):
            if b not in b"01":
                return False
        elif want == ord("0"):
            if not 0x30 <= b <= 0x39 or (i == 9 and not 0x31 <= b <= 0x35):
                return False
        elif b != want:
            return False
    return len(line) <= len(head) or line[len(head)] == 0x20


def _headers(data: bytes, off: int, meta: dict[str, Any]) -> bool:
    """Collect the wanted headers; True when the blank line that ends them was reached."""
    for _ in range(MAX_HEADERS):
        nl = data.find(b"\n", off, off + MAX_LINE)
        if nl < 0:
            return False
        line = data[off:nl].rstrip(b"\r")
        if not line:
            return True
        m = _HEADER.fullmatch(line)
        if m is None:
            return False
        key = _WANTED.get(m.group(1).lower())
        if key is not None and key not in meta:
            meta[key] = clean_text(m.group(2))
        off = nl + 1
    return False


def _probe(data: bytes, from_client: bool) -> ProbeResult:
    nl = data.find(b"\n", 0, MAX_LINE)
    if nl < 0:
        if len(data) >= MAX_LINE:
            return NO_MATCH
        ok = _request_prefix_ok(data) if from_client else _status_prefix_ok(data)
        return NEED_MORE if ok else NO_MATCH
    line = data[:nl].rstrip(b"\r")
    meta: dict[str, Any] = {}
    if from_client:
        parts = line.split(b" ")
        if len(parts) != 3 or parts[0] not in METHODS or parts[2] not in _VERSIONS:
            return NO_MATCH
        method, target, version = parts
        if not _target_ok(method, target):
            return NO_MATCH
        meta["http_method"] = method.decode("ascii")
        meta["http_path"] = clean_text(target, PATH_LIMIT)
        meta["http_version"] = version[5:].decode("ascii")
        if method == b"CONNECT":
            meta["http_connect_target"] = clean_text(target)
    else:
        m = _STATUS.fullmatch(line)
        if m is None:
            return NO_MATCH
        meta["http_version"] = "1." + m.group(1).decode("ascii")
        meta["http_status"] = int(m.group(2))
    found: dict[str, Any] = {}
    complete = _headers(data, nl + 1, found)
    if not from_client:
        found.pop("http_host", None)
        found.pop("http_user_agent", None)
    else:
        found.pop("http_server", None)
    meta.update(found)
    return ProbeResult(ProbeStatus.MATCH, meta, done=complete)  # the body adds nothing to these facts


probe = guarded(_probe, MAX_INPUT)  # Classify the first bytes of one HTTP/1.x direction (see the module docstring).
