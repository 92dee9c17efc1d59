"""What happened after the first bytes: banners, logins in clear, STARTTLS, CONNECT and WebSocket.

A classified flow keeps its protocol (SMTP that upgrades with STARTTLS stays smtp, DESIGN.md);
this module adds the facts analysts ask about, from the reassembled stream prefixes of both
directions. Pure: bytes in, a dict out; credentials are never copied, only the fact that they
crossed in clear.

Keys:
- ``banner`` (SMTP/FTP/NNTP 220/200/201 greeting, POP3 +OK, IMAP * OK), ``smtp_helo`` (EHLO/HELO
  name), all sanitised and bounded.
- ``cleartext_login: True`` when USER/PASS, LOGIN, AUTH PLAIN/LOGIN, AUTHINFO crossed before any
  STARTTLS (anonymous FTP excepted: its "password" is a courtesy, not a secret).
- ``upgraded_to: "tls"`` when the client asked for STARTTLS/STLS/AUTH TLS (LDAP's StartTLS
  extended operation comes from the ldap probe) and the server agreed; ``"websocket"`` or
  ``"http2"`` for an HTTP/1.1 Upgrade answered with 101.
- ``connect_target`` and ``tunnel_protocol`` for an HTTP CONNECT answered with 2xx: the target,
  and the protocol the engine recognises in the bytes that follow both headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..sanitize import clean_text

BANNER_LIMIT = 256
Classifier = Callable[[bytes, bytes], str]

_LINE = re.compile(rb"[^\r\n]{0,1024}\r?\n")
_GREETING = {
    "smtp": re.compile(rb"220[ -]([\x20-\x7e]{0,512})\r?\n"),
    "ftp": re.compile(rb"220[ -]([\x20-\x7e]{0,512})\r?\n"),
    "nntp": re.compile(rb"20[01] ([\x20-\x7e]{0,512})\r?\n"),
    "pop3": re.compile(rb"\+OK ?([\x20-\x7e]{0,512})\r?\n"),
    "imap": re.compile(rb"\* (?:OK|PREAUTH) ?([\x20-\x7e]{0,512})\r?\n", re.IGNORECASE),
}
_HELO = re.compile(rb"(?im)^(?:EHLO|HELO|LHLO) ([\x21-\x7e]{1,255})\r?$")
# The command asking for TLS, and the server's positive answer, per protocol.
_STARTTLS = {
    "smtp": (re.compile(rb"(?im)^STARTTLS\r?$"), re.compile(rb"(?m)^220[ -]")),
    "ftp": (re.compile(rb"(?im)^AUTH (?:TLS|SSL|TLS-C)\r?$"), re.compile(rb"(?m)^234[ -]")),
    "pop3": (re.compile(rb"(?im)^STLS\r?$"), re.compile(rb"(?m)^\+OK")),
    "imap": (re.compile(rb"(?im)^[a-z0-9.]{1,20} STARTTLS\r?$"), re.compile(rb"(?im)^[a-z0-9.]{1,20} OK")),
    "nntp": (re.compile(rb"(?im)^STARTTLS\r?$"), re.compile(rb"(?m)^382[ -]")),
    "xmpp": (re.compile(rb"<starttls[\s/>]"), re.compile(rb"<proceed[\s/>]")),
}
_LOGIN = {
    "smtp": re.compile(rb"(?im)^AUTH (?:PLAIN|LOGIN)\b"),
    "ftp": re.compile(rb"(?im)^PASS\b"),
    "pop3": re.compile(rb"(?im)^(?:PASS\b|AUTH (?:PLAIN|LOGIN)\b)"),
    "imap": re.compile(rb"(?im)^[a-z0-9.]{1,20} (?:LOGIN\b|AUTHENTICATE (?:PLAIN|LOGIN)\b)"),
    "nntp": re.compile(rb"(?im)^AUTHINFO PASS\b"),
    "xmpp": re.compile(rb"<auth[^>]{0,200}mechanism=['\"]PLAIN['\"]"),
}
_FTP_ANONYMOUS = re.compile(rb"(?im)^USER (?:anonymous|ftp)\r?$")
_HTTP_REQUEST_END = b"\r\n\r\n"
_CONNECT = re.compile(rb"CONNECT ([\x21-\x7e]{1,512}) HTTP/1\.[01]\r\n")
_STATUS = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])[ \r]")
_UPGRADE = re.compile(rb"(?im)^Upgrade: *([\x21-\x7e]{1,64})")


def _before_tls(data: bytes) -> bytes:
    """The clear-text part of a direction: everything before the first TLS handshake record."""
    cut = data.find(b"\x16\x03")
    return data if cut < 0 else data[:cut]


def _text_meta(protocol: str, client: bytes, server: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    client_clear, server_clear = _before_tls(client), _before_tls(server)
    greeting = _GREETING.get(protocol)
    if greeting is not None:
        m = greeting.match(server_clear)
        if m:
            meta["banner"] = clean_text(m.group(1), BANNER_LIMIT)
    if protocol == "smtp":
        m = _HELO.search(client_clear)
        if m:
            meta["smtp_helo"] = clean_text(m.group(1), BANNER_LIMIT)
    starttls = _STARTTLS.get(protocol)
    asked_at = -1
    if starttls is not None:
        ask, agree = starttls
        m = ask.search(client_clear)
        if m:
            asked_at = m.start()
            # The server's yes comes after its greeting; TLS right after the command also proves it.
            first_line = _LINE.match(server_clear)
            after_greeting = server_clear[first_line.end() :] if first_line and protocol != "xmpp" else server_clear
            if agree.search(after_greeting) or client[m.end() :].lstrip(b"\r\n").startswith(b"\x16\x03"):
                meta["upgraded_to"] = "tls"
    login = _LOGIN.get(protocol)
    if login is not None:
        clear_part = client_clear if asked_at < 0 else client_clear[:asked_at]
        m = login.search(clear_part)
        if m and not (protocol == "ftp" and _FTP_ANONYMOUS.search(clear_part)):
            meta["cleartext_login"] = True
    return meta


def _http_meta(client: bytes, server: bytes, classify: Classifier | None) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    status = _STATUS.match(server)
    code = int(status.group(1)) if status else None
    connect = _CONNECT.match(client)
    if connect:
        meta["connect_target"] = clean_text(connect.group(1), BANNER_LIMIT)
        c_end, s_end = client.find(_HTTP_REQUEST_END), server.find(_HTTP_REQUEST_END)
        if code is not None and 200 <= code < 300 and c_end >= 0 and s_end >= 0:
            inner_c, inner_s = client[c_end + 4 :], server[s_end + 4 :]
            if classify is not None and (inner_c or inner_s):
                inner = classify(inner_c, inner_s)
                if inner != "unknown":
                    meta["tunnel_protocol"] = inner
        return meta
    head_end = client.find(_HTTP_REQUEST_END)
    asked = _UPGRADE.search(client, 0, head_end if head_end >= 0 else len(client))
    if asked and code == 101:
        token = asked.group(1).lower()
        if token == b"websocket":
            meta["upgraded_to"] = "websocket"
            meta["websocket"] = True
        elif token == b"h2c":
            meta["upgraded_to"] = "http2"
        else:
            meta["upgraded_to"] = clean_text(token, 64)
    return meta


_HTTP = ("http", "http2")  # CONNECT and Upgrade: settled by the first exchange


def upgrade_watch(protocol: str) -> bool:
    """Whether `protocol`'s later bytes may hold these facts (STARTTLS, CONNECT, a login)."""
    return protocol in _HTTP or protocol in _GREETING or protocol in _STARTTLS


def upgrade_settles(protocol: str) -> bool:
    """Whether `protocol`'s facts can settle before the conversation's end (HTTP's first exchange
    decides CONNECT and Upgrade); the text protocols' STARTTLS and logins may come at any point."""
    return protocol in _HTTP


def upgrade_pending(protocol: str, meta: Mapping[str, Any]) -> bool:
    """Whether, given what is known of the flow, later bytes may still add one of these facts.

    HTTP settles with the first response: a 101 answers an Upgrade, a CONNECT's tunnel needs the
    bytes after both headers. The text protocols' STARTTLS and logins may come at any point.
    """
    if protocol in _HTTP:
        return "http_status" not in meta or ("http_connect_target" in meta and "tunnel_protocol" not in meta)
    return protocol in _GREETING or protocol in _STARTTLS


def upgrade_meta(
    protocol: str, client: Sequence[bytes], server: Sequence[bytes], classify: Classifier | None = None
) -> dict[str, Any]:
    """Facts about the rest of a TCP conversation; `client`/`server` are the stream prefixes."""
    c = bytes(client[0]) if client else b""
    s = bytes(server[0]) if server else b""
    if protocol in _HTTP:
        return _http_meta(c, s, classify)
    if protocol in _GREETING or protocol in _STARTTLS:
        return _text_meta(protocol, c, s)
    return {}
