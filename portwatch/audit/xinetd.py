"""Parse xinetd.conf(5) and the files of /etc/xinetd.d.

Pure: text in, blocks out. A file holds `defaults { ... }` and `service NAME { ... }` blocks of
`attribute = | += | -= value...` lines, and top-level `include FILE` / `includedir DIR` lines
(the caller follows those, since that is I/O). `build_services` turns the blocks of every file
into ServiceDefs, applying the `disabled` / `enabled` lists of `defaults`, as xinetd does once it
has read everything. A bad line is reported with its file and line and skipped; a block missing
what xinetd requires (socket_type, wait, user, server) is reported and left out, because xinetd
refuses to start it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sanitize import clean_text
from .model import ParseError, ServiceDef

ATTRIBUTES = frozenset((
    "id", "type", "flags", "socket_type", "protocol", "wait", "user", "group", "instances", "nice", "server",
    "server_args", "only_from", "no_access", "access_times", "log_type", "log_on_success", "log_on_failure",
    "rpc_version", "rpc_number", "env", "passenv", "port", "redirect", "bind", "interface", "banner",
    "banner_success", "banner_fail", "per_source", "cps", "max_load", "groups", "mdns", "umask", "rlimit_as",
    "rlimit_cpu", "rlimit_data", "rlimit_rss", "rlimit_stack", "rlimit_files", "deny_time", "disable",
    "libwrap", "v6only", "enabled", "disabled",
))
SOCKET_TYPES = frozenset(("stream", "dgram", "raw", "seqpacket"))
OPERATORS = ("+=", "-=", "=")


@dataclass(slots=True)
class Block:
    kind: str  # "service" or "defaults"
    name: str
    file: str
    line: int
    attrs: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True)
class XinetdFile:
    file: str
    blocks: list[Block] = field(default_factory=list)
    includes: list[tuple[str, str, int]] = field(default_factory=list)  # ("include"|"includedir", path, line)
    errors: list[ParseError] = field(default_factory=list)


def _q(text: str) -> str:
    return repr(clean_text(text, 60))


def _split_attr(line: str) -> tuple[str, str, list[str]] | None:
    for op in OPERATORS:
        name, sep, rest = line.partition(op)
        # An operator found inside the values leaves blanks in the name: try the next operator.
        if sep and name.strip() and " " not in name.strip():
            return name.strip(), op, rest.split()
    return None


def parse_xinetd(text: str, file: str = "xinetd.conf") -> XinetdFile:
    out = XinetdFile(file)
    block: Block | None = None
    pending: Block | None = None  # a header line seen, its `{` not yet
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if pending is not None:
            if line == "{":
                block, pending = pending, None
                continue
            out.errors.append(ParseError(file, pending.line, f"{pending.kind} {_q(pending.name)}: expected '{{' "
                                         f"on the next line, got {_q(line)}"))
            out.blocks.remove(pending)  # xinetd drops the whole block
            pending = None
        if block is None:
            words = line.split()
            head = words[0]
            opens = words[-1] == "{" and len(words) > 1
            if opens:
                words = words[:-1]
            if head == "defaults" and len(words) == 1:
                new = Block("defaults", "defaults", file, lineno)
            elif head == "service" and len(words) == 2:
                new = Block("service", words[1], file, lineno)
            elif head in ("include", "includedir") and len(words) == 2 and not opens:
                out.includes.append((head, words[1], lineno))
                continue
            elif line == "}":
                out.errors.append(ParseError(file, lineno, "'}' without an open block"))
                continue
            else:
                out.errors.append(ParseError(file, lineno, f"expected 'service NAME', 'defaults', 'include FILE' or "
                                             f"'includedir DIR', got {_q(line)}"))
                continue
            if opens:
                block = new
            else:
                pending = new
            out.blocks.append(new)
            continue
        if line == "}":
            block = None
            continue
        split = _split_attr(line)
        if split is None:
            out.errors.append(ParseError(file, lineno, f"expected 'attribute = value', got {_q(line)}"))
            continue
        name, op, values = split
        if name not in ATTRIBUTES:
            out.errors.append(ParseError(file, lineno, f"unknown attribute {_q(name)}"))
            continue
        current = block.attrs.get(name, [])
        if op == "=":
            block.attrs[name] = values
        elif op == "+=":
            block.attrs[name] = current + values
        else:
            block.attrs[name] = [v for v in current if v not in values]
    open_block = pending or block
    if open_block is not None:
        out.errors.append(ParseError(file, open_block.line, f"{open_block.kind} {_q(open_block.name)}: "
                                     "not closed with '}' before the end of the file"))
        out.blocks.remove(open_block)
    return out


def _one(attrs: dict[str, list[str]], key: str) -> str | None:
    values = attrs.get(key)
    return values[0] if values else None


def _service(block: Block) -> ServiceDef | str:
    a = block.attrs
    types = {t.upper() for t in a.get("type", [])}
    internal = "INTERNAL" in types
    socket_type = _one(a, "socket_type")
    if socket_type is None:
        return "missing socket_type"
    if socket_type not in SOCKET_TYPES:
        return f"unknown socket_type {_q(socket_type)}"
    wait = _one(a, "wait")
    if wait not in ("yes", "no"):
        return "missing wait" if wait is None else f"wait must be yes or no, got {_q(wait)}"
    protocol = _one(a, "protocol") or ("udp" if socket_type == "dgram" else "tcp")
    if protocol not in ("tcp", "udp", "tcp6", "udp6"):
        return f"unknown protocol {_q(protocol)}"
    redirect = _one(a, "redirect")
    server = "internal" if internal else _one(a, "server")
    if server is None:
        if redirect is None:
            return "missing server (required unless type = INTERNAL or redirect is set)"
        server = "(redirect)"
    user = _one(a, "user")
    if user is None and not internal:
        return "missing user (required for a non-internal service when xinetd runs as root)"
    port_s = _one(a, "port")
    port: int | None = None
    if port_s is not None:
        if not port_s.isdigit() or not 0 < int(port_s) < 65536:
            return f"bad port {_q(port_s)}"
        port = int(port_s)
    if "UNLISTED" in types and port is None:
        return "type = UNLISTED needs a port"
    args = tuple(a.get("server_args", []))
    extra = {k: " ".join(a[k]) for k in ("id", "flags", "only_from", "no_access", "redirect", "type") if a.get(k)}
    return ServiceDef(
        origin="xinetd", file=block.file, line=block.line, name=block.name, socket_type=socket_type,
        protocol=protocol, wait=wait == "yes", user=user or "root", group=_one(a, "group"), server=server,
        args=args, enabled=(_one(a, "disable") or "no") != "yes", address=_one(a, "bind") or _one(a, "interface"),
        port=port, rpc="RPC" in types, unlisted="UNLISTED" in types, extra=extra,
    )


def build_services(files: list[XinetdFile]) -> tuple[list[ServiceDef], list[ServiceDef], list[ParseError]]:
    """(enabled services, disabled services, errors) over every file xinetd would read."""
    disabled_names: set[str] = set()
    enabled_names: set[str] | None = None
    for f in files:
        for b in f.blocks:
            if b.kind == "defaults":
                disabled_names |= set(b.attrs.get("disabled", []))
                if "enabled" in b.attrs:
                    enabled_names = (enabled_names or set()) | set(b.attrs["enabled"])
    enabled: list[ServiceDef] = []
    disabled: list[ServiceDef] = []
    errors: list[ParseError] = []
    for f in files:
        for b in f.blocks:
            if b.kind != "service":
                continue
            svc = _service(b)
            if isinstance(svc, str):
                errors.append(ParseError(b.file, b.line, f"service {_q(b.name)}: {svc}"))
                continue
            ident = svc.extra.get("id", svc.name)
            if {svc.name, ident} & disabled_names:
                svc.enabled = False
            if enabled_names is not None and not {svc.name, ident} & enabled_names:
                svc.enabled = False
            (enabled if svc.enabled else disabled).append(svc)
    return enabled, disabled, errors
