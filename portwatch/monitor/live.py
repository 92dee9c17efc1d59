"""Live capture for `portwatch monitor -i`: the core's rings and analyzers, events up to Python.

`_core.LiveMonitor` opens a TPACKET_V3 memory-mapped ring per interface (or `--workers N` rings
per interface in a PACKET_FANOUT hash group) and runs one analyzer thread per ring, without the
GIL. Frames never reach Python: `poll()` returns the records the threads produced since the last
call (flows just classified, flows that ended) and `stats` their counters (kernel packets and
drops per ring, truncated frames, the analyzers' counts). Expiry of idle flows and the active
timeout run in the threads, by the wall clock. A reload reaches every thread (`set_engine`).

The rings are opened as root in the constructor; `start()` starts the threads and is called
after privileges are dropped, so no frame is parsed with root's credentials and the threads
inherit the reduced ones.

Why not Python sockets: the previous `recv_into` loop paid a system call and a Python object per
frame; on the 2-core VM it kept up with about 8,000 frames/s under load and 80,000 idle. The
figures of the ring are in docs/monitor.md (benchmarks/monitor_rate.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from .. import _core
from ..model import FlowRecord
from ..pipeline import Config, Setup
from . import bpf
from .emit import ACTIVE_TIMEOUT

RING_BLOCK = 1 << 20  # bytes per ring block; a block is handed over whole (or after the timeout)
BLOCK_TIMEOUT_MS = 50  # a quiet link still delivers its frames this promptly
log = logging.getLogger("portwatch.monitor")


class LiveError(Exception):
    pass


@dataclass(slots=True)
class LiveStats:
    """Sums over the rings; `rings` keeps each ring's own counters."""

    packets: int = 0  # frames analysed
    kernel_seen: int = 0  # PACKET_STATISTICS tp_packets: frames that passed the filter (drops too)
    kernel_drops: int = 0  # tp_drops: the ring was full
    received: int = 0  # frames taken from the rings
    truncated: int = 0  # frames captured shorter than on the wire (longer than a ring block)
    socket_errors: int = 0
    malformed: int = 0
    fragments_dropped: int = 0
    flows_evicted: int = 0
    live_flows: int = 0
    stalls: int = 0  # times a thread waited for Python to take its records
    rings: list[dict[str, Any]] = field(default_factory=list)


_SUMMED = ("packets", "kernel_seen", "kernel_drops", "received", "truncated", "socket_errors", "malformed",
           "fragments_dropped", "flows_evicted", "live_flows", "stalls")


class LiveCapture:
    def __init__(
        self, interfaces: list[str], setup: Setup, config: Config, bpf_expr: str | None = None,
        promisc: bool = True, workers: int = 1, ring_mb: int = 64, active_timeout: float = 1800.0,
        expire_interval: float = 5.0,
    ) -> None:
        self.interfaces = list(interfaces)
        prog = bpf.compile_filter(bpf_expr) if bpf_expr else None
        block_count = max(1, (ring_mb << 20) // RING_BLOCK)
        try:
            self.core = _core.LiveMonitor(
                self.interfaces, setup.engine, setup.known_ports, config.core_settings(), workers=workers,
                block_size=RING_BLOCK, block_count=block_count, block_timeout_ms=BLOCK_TIMEOUT_MS, bpf=prog,
                promisc=promisc, expire_interval=expire_interval, active_timeout=active_timeout,
                active_reason=ACTIVE_TIMEOUT, record_type=FlowRecord,
            )
        except _core.CaptureError as exc:
            raise LiveError(str(exc)) from None
        self.workers = workers
        self.stats = LiveStats()
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.core.start()

    def poll(self, timeout: float) -> tuple[list[FlowRecord], list[FlowRecord]]:
        """(classified, finished) records from every ring as the core built them (see
        `pipeline.complete_record`), waiting up to `timeout` seconds."""
        return self.core.poll(timeout)

    def set_engine(self, setup: Setup) -> None:
        self.core.set_engine(setup.engine, setup.known_ports)

    def refresh(self) -> LiveStats:
        rings = self.core.stats()
        st = LiveStats(rings=rings)
        for r in rings:
            r["kernel_seen"] = r["kernel_packets"]
            for k in _SUMMED:
                setattr(st, k, getattr(st, k) + r[k])
        for i, r in enumerate(rings):
            before = self.stats.rings[i]["socket_errors"] if i < len(self.stats.rings) else 0
            if r["socket_errors"] > before:
                # The interface went down (ENETDOWN) or similar: capture resumes by itself.
                why = os.strerror(r["last_error"]) if r["last_error"] else "socket error"
                log.warning("%s: %s; capture goes on when the interface is back", r["iface"], why)
        self.stats = st
        return st

    def ring_lines(self) -> list[str]:
        """One line per ring, for the final summary."""
        out = []
        for i, r in enumerate(self.stats.rings):
            out.append(f"ring {i} ({r['iface']}): kernel packets {r['kernel_packets']}, kernel drops "
                       f"{r['kernel_drops']}, received {r['received']}, analysed {r['packets']}, truncated "
                       f"{r['truncated']}, evicted {r['flows_evicted']}, non-IP {r['non_ip']}, waited for the "
                       f"outputs {r['stalls']} times")
        return out

    def stop(self) -> None:
        """Stop the threads; each reports its open flows (a last `poll` returns them)."""
        self.core.stop()
        self.refresh()

    def close(self) -> None:
        self.core.stop()

