"""The /etc/services database: parse it, look up ports and names.

Format (services(5)): `name port/protocol [aliases ...] [# comment]`. A malformed line is kept as
a (line number, reason) pair in `errors` and otherwise skipped, as getservent(3) skips it.
A copy of Debian's netbase file ships in the package for systems that have no /etc/services.

`--services iana` (load_services("iana")) reads the other registry portwatch ships: IANA's Service
Name and Transport Protocol Port Number Registry (data/iana-services.gz, about 11,600 entries;
contrib/iana-services.py regenerates it, its header says from what, when and under which terms).
It goes through the same parser and bounds, is parsed once per process (cached: it cannot change
under us), and the database it gives names itself "IANA" in findings (`registry`), where the
others say "/etc/services" or the file they were read from.

Bounds (the file may come from an untrusted image, `audit --root`): at most MAX_SERVICES_BYTES are
read (a larger file is an error, not a truncated database); a line keeps at most MAX_ALIASES
aliases and a port/transport at most MAX_PER_PORT entries (the rest are reported in `errors`,
which keeps at most MAX_ERRORS); lookups are dictionary hits, so the cost is linear in the file.
Debian's file is 13 KiB, with at most 2 entries per port and 3 aliases per line.
"""

from __future__ import annotations

import errno
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from .packagedata import data_file
from .sanitize import clean_text
from .userfile import read_capped

DEFAULT_PATH = "/etc/services"
IANA = "iana"  # the --services value that selects the shipped IANA registry (a file so named: ./iana)
IANA_FILE = "iana-services.gz"
HELP = ("services(5) file, or 'iana' for IANA's full port registry shipped with portwatch "
        "[default: /etc/services].")
# an explicitly named database that cannot be opened for these reasons was probably a typo of either
_NOT_FOUND = frozenset((errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES))
TRANSPORTS = frozenset(("tcp", "udp", "sctp", "ddp", "dccp"))
MAX_SERVICES_BYTES = 16 << 20
MAX_ALIASES = 64
MAX_PER_PORT = 32
MAX_ERRORS = 1000


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
    # how findings name this database ("/etc/services: https", "unassigned by IANA"): "/etc/services"
    # for it and portwatch's copy of it, "IANA" for the shipped registry, else the file's path
    registry: str = "/etc/services"
    entries: list[ServiceEntry] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    _by_port: dict[tuple[int, str], list[ServiceEntry]] = field(default_factory=dict)
    _by_name: dict[str, list[ServiceEntry]] = field(default_factory=dict)
    errors_dropped: int = 0  # errors past MAX_ERRORS, counted only
    # names() per (port, transport): asked once per flow record, from a set of ports that
    # add() bounds (MAX_PER_PORT entries a port)
    _names: dict[tuple[int, str], tuple[str, ...]] = field(default_factory=dict)

    def add(self, entry: ServiceEntry) -> bool:
        """Index `entry`; False (and nothing indexed) when its port/transport is already full."""
        same_port = self._by_port.setdefault((entry.port, entry.transport), [])
        if len(same_port) >= MAX_PER_PORT:
            return False
        self.entries.append(entry)
        same_port.append(entry)
        self._names.pop((entry.port, entry.transport), None)
        for n in (entry.name, *entry.aliases):
            self._by_name.setdefault(n.lower(), []).append(entry)
        return True

    def error(self, line: int, reason: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((line, reason))
        else:
            self.errors_dropped += 1

    def by_port(self, port: int, transport: str) -> list[ServiceEntry]:
        return self._by_port.get((port, transport), [])

    def names(self, port: int, transport: str) -> list[str]:
        """Primary service names for a port, in file order (the `assigned` field of a flow)."""
        key = (port, transport)
        found = self._names.get(key)
        if found is None:
            entries = self._by_port.get(key)
            if not entries:
                return []  # most ports: nothing to remember
            found = self._names[key] = tuple(dict.fromkeys(e.name for e in entries))
        return list(found)

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
        fields = line.split(maxsplit=MAX_ALIASES + 2)
        if len(fields) < 2:
            db.error(lineno, f"expected 'name port/protocol', got {line[:60]!r}")
            continue
        name, portproto, *aliases = fields
        if len(aliases) > MAX_ALIASES:
            db.error(lineno, f"more than {MAX_ALIASES} aliases; the rest ignored")
            aliases = aliases[:MAX_ALIASES]
        port_s, sep, proto = portproto.partition("/")
        if not sep or not port_s.isdigit() or len(port_s) > 5:
            db.error(lineno, f"bad port/protocol {portproto[:30]!r}")
            continue
        port = int(port_s)
        if not 0 <= port <= 65535:
            db.error(lineno, f"port {port} out of range")
            continue
        proto = proto.lower()
        if proto not in TRANSPORTS:
            db.error(lineno, f"unknown protocol {proto[:20]!r}")
            continue
        if not db.add(ServiceEntry(name, port, proto, tuple(aliases), lineno)):
            db.error(lineno, f"more than {MAX_PER_PORT} entries for {port}/{proto}; ignored")
    return db


def read_services_file(path: Path) -> str:
    """The text of `path`, refusing (OSError EFBIG) a file over MAX_SERVICES_BYTES: read whole,
    a 158 MB file cost 3.4 GB and minutes, and no services database is near that size. A `.gz` file
    is decompressed under the same cap (a gzip bomb stops at the cap, it is not inflated whole)."""
    if path.suffix == ".gz":
        import gzip  # only for a .gz database (IANA's registry)
        import zlib

        try:
            with gzip.open(path, "rb") as fh:
                data = read_capped(fh, MAX_SERVICES_BYTES + 1)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # not gzip, cut short, corrupt stream
            raise OSError(errno.EINVAL, f"not a readable gzip file ({exc})", str(path)) from exc
    else:
        with open(path, "rb") as fh:
            data = read_capped(fh, MAX_SERVICES_BYTES + 1)
    if len(data) > MAX_SERVICES_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_SERVICES_BYTES >> 20} MiB, not a services file", str(path))
    return data.decode("utf-8", errors="replace")


def fallback_path() -> Path:
    return data_file("services")


def iana_path() -> Path:
    return data_file(IANA_FILE)


@functools.cache
def load_iana() -> ServicesDB:
    """The shipped IANA registry, parsed once per process (shared: callers must not add to it)."""
    path = iana_path()
    db = parse_services(read_services_file(path), f"{IANA} ({path})")
    db.registry = "IANA"
    return db


def with_hint(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """`exc` saying what --services accepts: an unopenable name was probably a typo of either."""
    return OSError(exc.errno, f"{exc.strerror}: --services takes '{IANA}' or a readable services(5) file",
                   os.fspath(path))


def registry_of(path: Path) -> str:
    """How findings name a services file: the system's and portwatch's copy of it are /etc/services."""
    if str(path) == DEFAULT_PATH or path.resolve() == fallback_path().resolve():
        return DEFAULT_PATH
    return clean_text(str(path), 200)  # it reaches every message: escaped like any name from outside


def load_services(path: str | os.PathLike[str] | None = None) -> ServicesDB:
    """Load `path` ("iana": the shipped IANA registry), else /etc/services, else the copy shipped
    with portwatch.

    An explicitly named file that cannot be read raises OSError: silently using another database
    would change every finding.
    """
    if path is not None:
        if os.fspath(path) == IANA:
            return load_iana()
        p = Path(path)
        try:
            text = read_services_file(p)
        except OSError as exc:
            if exc.errno in _NOT_FOUND:
                raise with_hint(exc, p) from None
            raise
        db = parse_services(text, str(p))
        db.registry = registry_of(p)
        return db
    for candidate in (Path(DEFAULT_PATH), fallback_path()):
        try:
            return parse_services(read_services_file(candidate), str(candidate))
        except OSError:
            continue
    return ServicesDB("<empty>")
