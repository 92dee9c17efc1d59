"""Structural parsers: bytes in, facts out, no I/O.

Each probe is `probe(data: bytes, from_client: bool) -> ProbeResult`, where `data` is the first
bytes of one direction (TCP: the reassembled prefix; UDP: one datagram). A signature names a probe
when a byte pattern cannot check the structure (record lengths, header fields, binary packets).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ...model import ProbeResult

ProbeFn = Callable[[bytes, bool], ProbeResult]

# name -> "module:function". Modules are imported on first use so loading signatures stays cheap.
PROBES: dict[str, str] = {
    "tls": "tls:probe",
    "dtls": "dtls:probe",
    "ssh": "ssh:probe",
    "http": "http:probe",
    "dns": "dns:probe",
    "dns_tcp": "dns:probe_tcp",
    "quic": "quic:probe",
}


def get_probe(name: str) -> ProbeFn:
    module, _, func = PROBES[name].partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), func)
