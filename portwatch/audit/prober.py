"""Connect to each local TCP listener on loopback and classify what it says.

One connection first waits a short while for a server-first banner (SSH, SMTP, FTP, telnet's
option negotiation...). A silent server is a client-first one: it is then sent one harmless client
hello, the one its port's assignment suggests first (a TLS ClientHello for https, an HTTP HEAD
otherwise), and at most one other on a fresh connection if the first drew nothing recognisable.
Every connect, wait and read is bounded in time and bytes. What came back is classified by the
signature engine with client bytes = what was sent and server bytes = what came back; a hello
only counts when the server's reply alone is recognisable, so that the bytes we sent ourselves
never classify a service.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .._core import Engine
from ..sanitize import clean_text
from .model import Listener

MAX_READ = 4096
QUIET_GAP = 0.2  # once bytes flow, a pause this long ends the reply
HTTP_HELLO = b"HEAD / HTTP/1.0\r\nUser-Agent: portwatch-audit\r\n\r\n"


@dataclass(frozen=True, slots=True)
class ProbeLimits:
    connect_timeout: float = 2.0
    banner_wait: float = 1.0  # how long a silent server counts as client-first
    read_timeout: float = 2.0  # for the whole reply to a hello
    max_bytes: int = MAX_READ
    workers: int = 16


def tls_client_hello() -> bytes:
    """A real ClientHello from the ssl module, produced in memory: no socket, no certificate check."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_side=False)
    with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the ServerHello that never comes
        tls.do_handshake()
    return outgoing.read()


HELLOS = {"http": lambda: HTTP_HELLO, "tls": tls_client_hello}


def connect_address(address: str) -> str:
    """Where to reach a listener from this host: a wildcard bind is reached on loopback."""
    if address == "0.0.0.0":
        return "127.0.0.1"
    if address == "::":
        return "::1"
    return address


def _read(sock: socket.socket, first_wait: float, total: float, limit: int) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + total
    wait = first_wait
    while len(data) < limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(min(wait, remaining))
        try:
            chunk = sock.recv(limit - len(data))
        except (TimeoutError, BlockingIOError):
            break
        except OSError:
            break  # reset by the peer: keep what came
        if not chunk:
            break
        data += chunk
        wait = QUIET_GAP
    return bytes(data)


def _banner_text(data: bytes) -> str | None:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not line:
        return None
    printable = sum(1 for b in line if 0x20 <= b < 0x7F)
    return clean_text(line, 160) if printable >= 0.9 * len(line) else None


def _classify(engine: Engine, port: int, sent: bytes, got: bytes) -> dict[str, Any] | None:
    """The core's verdict on what a listener answered (alone, then with what was sent), or None."""
    if not got:
        return None
    alone = engine.classify("tcp", [], [got], port, final_=True)
    if alone is None or not alone["known"]:
        return None
    both = engine.classify("tcp", [sent] if sent else [], [got], port, final_=True)
    if both is not None and both["known"] and both["protocol"] == alone["protocol"]:
        return both
    return alone


def _result(engine: Engine, port: int, step: str, sent: bytes, got: bytes) -> dict[str, object] | None:
    decision = _classify(engine, port, sent, got)
    if decision is None:
        return None
    meta: dict[str, object] = {"probe": step, "protocol": decision["protocol"], "confidence": decision["confidence"],
                               "bytes_c2s": len(sent), "bytes_s2c": len(got)}
    meta.update(decision["meta"])
    meta.update(engine.extract(decision["protocol"], "tcp", [sent] if sent else [], [got]))
    if decision["evidence"]:
        meta["evidence"] = decision["evidence"]
    banner = _banner_text(got)
    if banner and decision["protocol"] not in ("ssh", "tls"):
        meta.setdefault("banner", banner)
    return meta


def probe_endpoint(engine: Engine, address: str, port: int, hellos: list[str],
                   limits: ProbeLimits = ProbeLimits()) -> dict[str, object]:
    """Probe one TCP listener: protocol, confidence, bytes_c2s/bytes_s2c of the deciding exchange, and
    meta fields (probe step, banner, evidence, the probes' metadata, probe_error)."""
    host = connect_address(address)
    unknown: dict[str, object] = {"protocol": "unknown", "confidence": 0.0}
    try:
        sock = socket.create_connection((host, port), timeout=limits.connect_timeout)
    except OSError as exc:
        return {**unknown, "probe": "connect", "probe_error": clean_text(exc.strerror or str(exc), 120)}
    steps = list(hellos)
    try:
        with sock:
            got = _read(sock, limits.banner_wait, limits.read_timeout, limits.max_bytes)
            if got:
                found = _result(engine, port, "banner", b"", got)
                if found is not None:
                    return found
                banner = _banner_text(got)
                return {**unknown, "probe": "banner", "bytes_s2c": len(got), **({"banner": banner} if banner else {})}
            if not steps:
                return {**unknown, "probe": "banner"}
            first = steps.pop(0)
            found = _hello(engine, sock, port, first, limits)
            if found is not None:
                return found
    except OSError as exc:
        return {**unknown, "probe": "banner", "probe_error": clean_text(exc.strerror or str(exc), 120)}
    for name in steps:
        try:
            with socket.create_connection((host, port), timeout=limits.connect_timeout) as again:
                found = _hello(engine, again, port, name, limits)
        except OSError:
            continue
        if found is not None:
            return found
    return {**unknown, "probe": ("hello:" + ",".join(hellos)) if hellos else "banner"}


def _hello(engine: Engine, sock: socket.socket, port: int, name: str, limits: ProbeLimits) -> dict[str, object] | None:
    sent = HELLOS[name]()
    sock.settimeout(limits.read_timeout)
    try:
        sock.sendall(sent)
    except OSError:
        return None
    got = _read(sock, limits.read_timeout, limits.read_timeout, limits.max_bytes)
    return _result(engine, port, f"hello:{name}", sent, got)


def hello_order(expected: AbstractSet[str]) -> list[str]:
    return ["tls", "http"] if "tls" in expected else ["http", "tls"]


def probe_listeners(engine: Engine, listeners: Iterable[Listener], expected_of: Callable[[int, str], frozenset[str]],
                    limits: ProbeLimits = ProbeLimits()) -> dict[int, dict[str, object]]:
    """Probe every TCP listener in parallel (bounded); results keyed by socket inode."""
    targets = [lst for lst in listeners if lst.transport == "tcp"]
    if not targets:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(limits.workers, len(targets)))) as pool:
        futures = {
            lst.inode: pool.submit(probe_endpoint, engine, lst.address, lst.port,
                                   hello_order(expected_of(lst.port, "tcp")), limits)
            for lst in targets
        }
        return {inode: f.result() for inode, f in futures.items()}
