"""Facts the audit collects: configured services, listening sockets, parse errors."""

from __future__ import annotations

from dataclasses import dataclass, field

# Kinds the audit adds to DESIGN.md's catalogue; the shared ones (insecure-protocol, unassigned-port,
# port-mismatch, ...) keep their meaning and their severity from the site policy.
AUDIT_KINDS = ("root-service", "unwrapped-service", "unknown-service")
AUDIT_SEVERITY = {"root-service": "medium", "unwrapped-service": "low", "unknown-service": "low"}


@dataclass(slots=True, frozen=True)
class ParseError:
    """A line a parser could not use; the daemon itself would skip (or refuse) it too."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(slots=True)
class ServiceDef:
    """One service entry of inetd.conf or of an xinetd service block."""

    origin: str  # "inetd" or "xinetd"
    file: str
    line: int
    name: str
    socket_type: str
    protocol: str  # as written: tcp, udp, tcp6, rpc/tcp ...
    wait: bool
    user: str
    group: str | None
    server: str  # program path, or "internal"
    args: tuple[str, ...] = ()
    enabled: bool = True
    address: str | None = None  # bind address when the entry names one
    port: int | None = None  # xinetd `port =`; inetd takes the port from /etc/services
    rpc: bool = False
    unlisted: bool = False  # xinetd `type = UNLISTED`: deliberately absent from /etc/services
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def internal(self) -> bool:
        return self.server == "internal"

    @property
    def transport(self) -> str:
        proto = self.protocol.removeprefix("rpc/")
        return "udp" if proto.startswith("udp") else "tcp"

    @property
    def wrapped(self) -> bool:
        """Run through tcpd (TCP wrappers): the real daemon is then the first argument."""
        return _base(self.server) == "tcpd"

    @property
    def daemon(self) -> str:
        """Basename of the program that actually serves the connection."""
        if self.internal:
            return "internal"
        if self.wrapped and self.args:
            return _base(self.args[0])
        return _base(self.server)


def _base(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(slots=True)
class Listener:
    """A listening TCP socket or a bound, unconnected UDP socket, from /proc/net/*."""

    transport: str
    family: int  # 4 or 6
    address: str
    port: int
    inode: int
    uid: int
    pids: list[int] = field(default_factory=list)
    process: str | None = None  # comm of the lowest pid holding the socket
    user: str | None = None
    proc_uid: int | None = None  # effective uid of that process


@dataclass(slots=True)
class HostFacts:
    services: list[ServiceDef] = field(default_factory=list)
    disabled: list[ServiceDef] = field(default_factory=list)  # commented out or `disable = yes`
    listeners: list[Listener] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # files and /proc tables actually read
    sockets_read: bool = False  # listeners come from /proc (not for an image)
