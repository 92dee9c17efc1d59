"""The /etc/services database: parse it, look up ports and names.

Format (services(5)): `name port/protocol [aliases ...] [# comment]`. A malformed line is kept as
a (line number, reason) pair in `errors` and otherwise skipped, as getservent(3) skips it.
A copy of Debian's netbase file ships in the package for systems that have no /etc/services.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

DEFAULT_PATH = "/etc/services"
TRANSPORTS = frozenset(("tcp", "udp", "sctp", "ddp", "dccp"))


@dataclass(slots=True, frozen=True)
class ServiceEntry:
    name: str
    port: int
    transport: str
    aliases: tuple[str, ...]
    line: int


@dataclass(slots=True)
class ServicesDB:
    source: str
    entries: list[ServiceEntry] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    _by_port: dict[tuple[int, str], list[ServiceEntry]] = field(default_factory=dict)
    _by_name: dict[str, list[ServiceEntry]] = field(default_factory=dict)

    def add(self, entry: ServiceEntry) -> None:
        self.entries.append(entry)
        self._by_port.setdefault((entry.port, entry.transport), []).append(entry)
        for n in (entry.name, *entry.aliases):
            self._by_name.setdefault(n.lower(), []).append(entry)

    def by_port(self, port: int, transport: str) -> list[ServiceEntry]:
        return self._by_port.get((port, transport), [])

    def names(self, port: int, transport: str) -> list[str]:
        """Primary service names for a port, in file order (the `assigned` field of a flow)."""
        out: list[str] = []
        for e in self._by_port.get((port, transport), ()):
            if e.name not in out:
                out.append(e.name)
        return out

    def all_names(self, port: int, transport: str) -> set[str]:
        """Primary names and aliases for a port."""
        return {n for e in self._by_port.get((port, transport), ()) for n in (e.name, *e.aliases)}

    def by_name(self, name: str, transport: str | None = None) -> list[ServiceEntry]:
        found = self._by_name.get(name.lower(), [])
        return [e for e in found if transport is None or e.transport == transport]

    def __len__(self) -> int:
        return len(self.entries)


def parse_services(text: str, source: str = "<string>") -> ServicesDB:
    db = ServicesDB(source)
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 2:
            db.errors.append((lineno, f"expected 'name port/protocol', got {line[:60]!r}"))
            continue
        name, portproto, *aliases = fields
        port_s, sep, proto = portproto.partition("/")
        if not sep or not port_s.isdigit():
            db.errors.append((lineno, f"bad port/protocol {portproto[:30]!r}"))
            continue
        port = int(port_s)
        if not 0 <= port <= 65535:
            db.errors.append((lineno, f"port {port} out of range"))
            continue
        proto = proto.lower()
        if proto not in TRANSPORTS:
            db.errors.append((lineno, f"unknown protocol {proto[:20]!r}"))
            continue
        db.add(ServiceEntry(name, port, proto, tuple(aliases), lineno))
    return db


def fallback_path() -> Path:
    return Path(str(resources.files("portwatch") / "data" / "services"))


def load_services(path: str | os.PathLike[str] | None = None) -> ServicesDB:
    """Load `path`, else /etc/services, else the copy shipped with portwatch.

    An explicitly named file that cannot be read raises OSError: silently using another database
    would change every finding.
    """
    if path is not None:
        p = Path(path)
        return parse_services(p.read_text(encoding="utf-8", errors="replace"), str(p))
    for candidate in (Path(DEFAULT_PATH), fallback_path()):
        try:
            return parse_services(candidate.read_text(encoding="utf-8", errors="replace"), str(candidate))
        except OSError:
            continue
    return ServicesDB("<empty>")
