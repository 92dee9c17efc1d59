"""The Rust core (`portwatch._core`) behind the calls the commands make of the Python engine.

The core reads the capture, decodes, tracks flows, reassembles and classifies; Python receives
each finished flow as a dict, adds what the services database and the policy say (`assigned`,
`findings`) and hands it to the sinks, exactly as the Python engine's `Analyzer` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import _core
from .model import CaptureStats, FlowRecord
from .pipeline import Config, Setup
from .policy.rules import evaluate

# Packets the core reads per call: long enough that the call costs nothing, short enough that a
# progress bar moves and Ctrl-C is noticed within a fraction of a second.
BATCH_PACKETS = 65_536

CaptureError = _core.CaptureError


@dataclass(slots=True)
class CoreSetup:
    """The core's engine over a Setup's signatures and services (built once, shared by runs)."""

    engine: _core.Engine
    known_ports: list[tuple[int, str]]

    @classmethod
    def of(cls, setup: Setup, config: Config) -> CoreSetup:
        hints: dict[tuple[int, str], set[str]] = {}
        for entry in setup.services.entries:
            for name in (entry.name, *entry.aliases):
                protos = setup.ctx.service_protocols.get((name.lower(), entry.transport))
                if protos and entry.transport in ("tcp", "udp"):
                    hints.setdefault((entry.port, entry.transport), set()).update(protos)
        engine = _core.Engine(list(config.signature_dirs), [(k, sorted(v)) for k, v in hints.items()])
        known = sorted({(e.port, e.transport) for e in setup.services.entries if e.transport in ("tcp", "udp")})
        return cls(engine, known)


def _settings(config: Config) -> dict[str, float | int]:
    return {
        "max_flows": config.max_flows,
        "idle_tcp": config.idle_tcp,
        "idle_udp": config.idle_udp,
        "idle_dns": config.idle_dns,
        "linger": config.linger,
        "sweep_interval": config.sweep_interval,
        "max_payload_packets": config.max_payload_packets,
        "meta_packets": config.meta_packets,
        "shard_index": config.shard_index,
        "shard_count": config.shard_count,
    }


def to_record(raw: dict, setup: Setup) -> FlowRecord:
    """A core record as the schema's FlowRecord, with `assigned` and `findings` filled in."""
    rec = FlowRecord(
        ts_start=raw["ts_start"],
        ts_end=raw["ts_end"],
        transport=raw["transport"],
        src_ip=raw["src_ip"],
        src_port=raw["src_port"],
        dst_ip=raw["dst_ip"],
        dst_port=raw["dst_port"],
        orientation=raw["orientation"],
        protocol=raw["protocol"],
        confidence=raw["confidence"],
        assigned=setup.services.names(raw["dst_port"], raw["transport"]),
        packets_c2s=raw["packets_c2s"],
        packets_s2c=raw["packets_s2c"],
        bytes_c2s=raw["bytes_c2s"],
        bytes_s2c=raw["bytes_s2c"],
        meta=raw["meta"],
        pcap=raw.get("pcap"),
    )
    rec.findings = evaluate(rec, setup.ctx)
    return rec


def analyze_path(
    path: str,
    setup: Setup,
    config: Config,
    on_record: Callable[[FlowRecord], None],
    core: CoreSetup | None = None,
    tick: Callable[[_core.Capture, _core.Analyzer], None] | None = None,
) -> CaptureStats:
    """Run one capture through the core; every finished flow goes to `on_record`. Raises
    CaptureError when the file cannot be opened; a read error later is `stats.error`, after
    every flow read so far was reported."""
    core = core or CoreSetup.of(setup, config)
    capture = _core.Capture(path)
    name = None if path == "-" else capture.name
    analyzer = _core.Analyzer(core.engine, core.known_ports, name, _settings(config))
    while not capture.done:
        for raw in analyzer.run(capture, BATCH_PACKETS):
            on_record(to_record(raw, setup))
        if tick is not None:
            tick(capture, analyzer)
    for raw in analyzer.drain():
        on_record(to_record(raw, setup))
    stats = CaptureStats(**{k: v for k, v in analyzer.stats().items() if k in CaptureStats.__slots__})
    stats.error = capture.error
    return stats
