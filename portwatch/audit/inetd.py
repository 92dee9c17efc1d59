"""Parse inetd.conf(5): `service socket-type protocol wait[.max] user[.group] server [args...]`.

Pure: text in, (services, commented-out services, errors) out. The dialect is the union of what
Debian's openbsd-inetd and the BSD inetds accept: a line starting with blanks continues the
previous entry, a line holding only `address:` sets the bind address of the entries after it,
`address:service` binds one entry, `user:group` may stand for `user.group`, and `wait`/`nowait`
may carry limits (`nowait.400`, `nowait/40/10`). A bad line is reported with its line number and
skipped, as inetd skips it.

Commented-out entries (`#telnet stream ...`, and update-inetd's `#<off># telnet ...`) are kept
apart as disabled services: they are not findings, but they show the local conventions (tcpd).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..sanitize import clean_text
from .model import ParseError, ServiceDef

SOCKET_TYPES = frozenset(("stream", "dgram", "raw", "rdm", "seqpacket"))
INTERNAL_SERVICES = frozenset(("echo", "discard", "chargen", "daytime", "time", "tcpmux"))
_PROTOCOL = re.compile(r"^(?:rpc/)?(?:tcp|udp)(?:4|6|46)?$")
_WAIT = re.compile(r"^(wait|nowait)(?:[./]\d+)*$")
_USER = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*?)(?:[.:]([A-Za-z0-9_][A-Za-z0-9_-]*))?(?:/[A-Za-z0-9_-]+)?$")
_DISABLED_PREFIX = re.compile(r"^#\s*(?:<off>#\s*)?")


@dataclass(slots=True)
class InetdConf:
    services: list[ServiceDef] = field(default_factory=list)
    disabled: list[ServiceDef] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)


def _q(text: str) -> str:
    return repr(clean_text(text, 60))


def _logical_lines(text: str) -> list[tuple[int, str, bool]]:
    """(first line number, joined text, is-comment), joining blank-led continuation lines."""
    out: list[tuple[int, str, bool]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        comment = raw.lstrip().startswith("#")
        if raw[0] in " \t" and not comment and out and not out[-1][2]:
            first, joined, _ = out[-1]
            out[-1] = (first, f"{joined} {raw.strip()}", False)
            continue
        out.append((lineno, raw.strip(), comment))
    return out


def parse_entry(fields: list[str], file: str, line: int, address: str | None) -> ServiceDef | str:
    """One entry from its fields; a string is the reason it is unusable."""
    if len(fields) < 6:
        return (f"expected 'service socket-type protocol wait user server [args]', got {len(fields)} field(s)")
    name, socket_type, protocol, wait, user, server, *args = fields
    if ":" in name and "/" not in name:
        address, _, name = name.rpartition(":")
        address = address.strip("[]") or None
    if not name:
        return "empty service name"
    if socket_type not in SOCKET_TYPES:
        return f"unknown socket type {_q(socket_type)} (expected one of {', '.join(sorted(SOCKET_TYPES))})"
    if not _PROTOCOL.match(protocol):
        return f"unknown protocol {_q(protocol)} (expected tcp, udp, tcp6, udp6, rpc/tcp ...)"
    is_udp = "udp" in protocol
    if (socket_type == "stream" and is_udp) or (socket_type == "dgram" and not is_udp):
        return f"socket type {socket_type} does not go with protocol {_q(protocol)}"
    m = _WAIT.match(wait)
    if m is None:
        return f"expected wait or nowait[.max], got {_q(wait)}"
    u = _USER.match(user)
    if u is None:
        return f"bad user[.group] {_q(user)}"
    if server != "internal" and not server.startswith("/"):
        return f"server must be an absolute path or 'internal', got {_q(server)}"
    rpc = protocol.startswith("rpc/")
    if server == "internal" and name not in INTERNAL_SERVICES:
        return f"inetd has no internal service {_q(name)}"
    return ServiceDef(
        origin="inetd", file=file, line=line, name=name, socket_type=socket_type, protocol=protocol,
        wait=m.group(1) == "wait", user=u.group(1), group=u.group(2), server=server, args=tuple(args),
        address=None if address in (None, "*") else address, rpc=rpc,
    )


def parse_inetd(text: str, file: str = "inetd.conf") -> InetdConf:
    conf = InetdConf()
    address: str | None = None
    for lineno, line, comment in _logical_lines(text):
        if comment:
            # A commented-out entry is only a hint: a prose comment that fails to parse is no error.
            body = _DISABLED_PREFIX.sub("", line, count=1)
            entry = parse_entry(body.split(), file, lineno, address)
            if isinstance(entry, ServiceDef):
                entry.enabled = False
                conf.disabled.append(entry)
            continue
        fields = line.split()
        if len(fields) == 1 and fields[0].endswith(":"):
            address = fields[0][:-1].strip("[]") or None
            continue
        entry = parse_entry(fields, file, lineno, address)
        if isinstance(entry, str):
            conf.errors.append(ParseError(file, lineno, entry))
        else:
            conf.services.append(entry)
    return conf
