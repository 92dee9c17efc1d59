"""The signature set as the core loads it: one `SignatureInfo` per protocol, for the policy,
`signatures list` and `signatures check`.

Signatures are data (signatures/*.toml, embedded in the core at build time); the core parses
and validates them, and every problem is one line `file:line: field: problem`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _core
from .tomlguard import check_signature_dirs


class SignatureError(Exception):
    """A signature file is invalid; str() is one line: file:line: field: problem."""

    def __init__(self, path: str, line: int | None, fieldname: str, problem: str) -> None:
        self.path, self.line, self.field, self.problem = path, line, fieldname, problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {fieldname}: {problem}" if fieldname else f"{where}: {problem}")

    @classmethod
    def from_line(cls, text: str) -> SignatureError:
        """One of the core's `file:line: field: problem` lines as an error."""
        path, _, rest = text.partition(": ")
        line = None
        if ":" in path:
            head, _, tail = path.rpartition(":")
            if tail.isdigit():
                path, line = head, int(tail)
        return cls(path, line, "", rest or text)


@dataclass(slots=True, frozen=True)
class SignatureInfo:
    """What the policy and the listings need of a signature (the matches stay in the core)."""

    protocol: str
    description: str
    transports: tuple[str, ...]
    services: tuple[str, ...]
    ports: frozenset[int]
    tunnel: bool
    encrypted: bool
    insecure: bool
    cleartext_auth: bool
    any_port: bool
    priority: int
    prelude: bool
    require_both_directions: bool
    matches: int
    probe_names: tuple[str, ...]
    source: str
    origin: str
    announces: str | None = None  # the core's parser of announced connections (ftp, sdp, rtsp, epm)
    expected: bool = False  # named only by a control connection's announcement (ftp-data)
    idle_tcp: float | None = None  # the protocol's own idle timeouts, in place of the analyzer's
    idle_udp: float | None = None
    reserved_source_port: bool = False  # clients bind a port below 1024 by design (AUTH_SYS, rcmd(3))
    # facts whose values lift `insecure` for one flow (snmp_security = authPriv): fact -> values
    secure_when: tuple[tuple[str, frozenset[str]], ...] = ()

    @classmethod
    def of(cls, d: dict[str, Any]) -> SignatureInfo:
        return cls(
            protocol=d["protocol"],
            description=d.get("description", ""),
            transports=tuple(d.get("transports", ())),
            services=tuple(d.get("services", ())),
            ports=frozenset(d.get("ports", ())),
            tunnel=bool(d.get("tunnel")),
            encrypted=bool(d.get("encrypted")),
            insecure=bool(d.get("insecure")),
            cleartext_auth=bool(d.get("cleartext_auth")),
            any_port=bool(d.get("any_port")),
            priority=int(d.get("priority", 0)),
            prelude=bool(d.get("prelude")),
            require_both_directions=bool(d.get("require_both_directions")),
            matches=int(d.get("matches", 0)),
            probe_names=tuple(d.get("probe_names", ())),
            source=d.get("source", ""),
            origin=d.get("origin", "builtin"),
            announces=d.get("announces") or None,
            reserved_source_port=bool(d.get("reserved_source_port")),
            secure_when=tuple((k, frozenset(v)) for k, v in (d.get("secure_when") or {}).items()),
            expected=bool(d.get("expected")),
            idle_tcp=d.get("idle_tcp"),
            idle_udp=d.get("idle_udp"),
        )


def _user_paths(extra_dirs: Iterable[str]) -> list[str]:
    out = []
    for d in extra_dirs:
        p = Path(d)
        if not p.exists():
            raise SignatureError(str(p), None, "", "no such signature directory")
        out.append(str(p))
    return out


def _hint_list(port_hints: dict[tuple[int, str], set[str]] | None) -> list[tuple[tuple[int, str], list[str]]]:
    return [(k, sorted(v)) for k, v in (port_hints or {}).items()]


def build_engine(extra_dirs: Iterable[str] = (), port_hints: dict[tuple[int, str], set[str]] | None = None
                 ) -> _core.Engine:
    """The core's engine over the shipped set plus `extra_dirs` (a same-named protocol replaces
    the shipped one). Raises SignatureError (the first problem) for an invalid file."""
    dirs = _user_paths(extra_dirs)
    check_signature_dirs(dirs)
    try:
        return _core.Engine(dirs, _hint_list(port_hints))
    except ValueError as exc:
        raise SignatureError.from_line(str(exc).splitlines()[0]) from None


def with_port_hints(engine: _core.Engine, port_hints: dict[tuple[int, str], set[str]]) -> _core.Engine:
    """`engine`'s signatures with `port_hints` (see `build_engine`), sharing its compiled patterns."""
    return engine.with_port_hints(_hint_list(port_hints))


def load_signatures(extra_dirs: Iterable[str] = ()) -> list[SignatureInfo]:
    """The shipped set, then each user directory in order, sorted by protocol."""
    engine = build_engine(extra_dirs)
    return sorted((SignatureInfo.of(d) for d in engine.signatures()), key=lambda s: s.protocol)


def check_files(paths: Iterable[str]) -> list[str]:
    """Every problem of every file (file:line: field: problem); warnings say `warning:`."""
    paths = [str(p) for p in paths]
    deep = []
    for p in paths:
        try:
            check_signature_dirs([p])
        except SignatureError as exc:
            deep.append(str(exc))
    nested = {e.split(":", 1)[0] for e in deep}
    return deep + list(_core.check_signatures([p for p in paths if p not in nested]))
