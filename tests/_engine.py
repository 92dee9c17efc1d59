"""The core's detection engine (portwatch._core.Engine) as the engine-level tests use it.

`classify` returns the engine's decision as an object (or None while it waits for more). `probe`
asks whether one probe confirms one unit in one direction, the way the retired Python probes were
asked: the unit goes to the engine on a port no signature names, and the probe has confirmed it
when the decision names the probe's protocol with `<side> bytes confirmed by the <probe> probe`
for that side, roles not swapped. The engine cannot tell "needs more bytes" from "no", so both
are NO here; `meta` is what the decision carries (the probe's metadata when it confirmed).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from portwatch.signatures import build_engine

MATCH, NO = "match", "no"
NEUTRAL_PORT = 40999  # in no signature's `ports`

# probe name -> (its signature's protocol, transport)
SIGNATURE_OF = {
    "dns": ("dns", "udp"),
    "dns_tcp": ("dns", "tcp"),
    "dtls": ("dtls", "udp"),
    "quic": ("quic", "udp"),
    "http": ("http", "tcp"),
    "ssh": ("ssh", "tcp"),
    "tls": ("tls", "tcp"),
}


@dataclass(frozen=True, slots=True)
class Decision:
    known: bool
    protocol: str
    confidence: float
    evidence: str
    meta: dict[str, Any]
    swapped: bool


@dataclass(slots=True)
class ProbeAnswer:
    status: str
    meta: dict[str, Any] = field(default_factory=dict)


@cache
def engine(*dirs: str):
    """The shipped signature set, plus user folders `dirs` (cached per set of folders)."""
    return build_engine(dirs)


def classify(transport: str, client: Sequence[bytes], server: Sequence[bytes], port: int, *, final: bool = True,
             may_swap: bool = False, client_port: int | None = None, dirs: Iterable[str | Path] = ()
             ) -> Decision | None:
    d = engine(*(str(p) for p in dirs)).classify(transport, list(client), list(server), port, may_swap=may_swap,
                                                  final_=final, client_port=client_port)
    return None if d is None else Decision(**d)


@cache
def _probe_alone(name: str) -> str:
    """A folder with a user signature replacing the probe's protocol by the probe alone."""
    protocol, transport = SIGNATURE_OF[name]
    folder = Path(tempfile.mkdtemp(prefix=f"pw-probe-{name}-"))
    (folder / f"{protocol}.toml").write_text(
        f'protocol = "{protocol}"\ntransports = ["{transport}"]\n[[match]]\nprobe = "{name}"\n', encoding="utf-8")
    return str(folder)


def probe(name: str, data: bytes | None, from_client: bool, *, units: Sequence[bytes] | None = None,
          port: int = NEUTRAL_PORT, alone: bool = False) -> ProbeAnswer:
    """Does probe `name` confirm `data` (or the datagrams `units`) sent by the client/server?

    `alone`: ask the probe even where the shipped signature's prefix or pattern keeps it from
    running (a user signature with the probe as its only condition replaces the shipped one)."""
    protocol, transport = SIGNATURE_OF[name]
    sent = [data] if units is None else list(units)
    client, server = (sent, []) if from_client else ([], sent)
    d = classify(transport, client, server, port, dirs=[_probe_alone(name)] if alone else ())
    side = "client" if from_client else "server"
    confirmed = re.compile(rf"\b{side} bytes confirmed by the {re.escape(name)}(?:_units)? probe")
    if d is not None and d.protocol == protocol and not d.swapped and confirmed.search(d.evidence):
        return ProbeAnswer(MATCH, d.meta)
    return ProbeAnswer(NO, d.meta if d is not None else {})
