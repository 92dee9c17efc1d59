"""Wires the stages: the core (source -> decode -> flows -> detect) and Python's policy -> sinks.

The core (`portwatch._core`, Rust) reads the capture, decodes, tracks flows, reassembles and
classifies; it hands each finished flow over as a dict, never a packet. Here each one becomes a
`FlowRecord` with what the services database and the site policy say (`assigned`, `findings`)
and goes to the caller's sink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import _core, bpf
from .model import CaptureStats, FlowRecord
from .policy.config import Policy, load_policy
from .policy.rules import PolicyContext, evaluate, quiet_key, quiet_setup
from .services import ServicesDB, load_services
from .signatures import SignatureInfo, build_engine, with_port_hints

DEFAULT_MAX_FLOWS = 200_000
# Threads of the core a run may ask for (`--workers`, `Analyzer(workers=)`): the core's own bound.
MAX_WORKERS = _core.MAX_WORKERS
# Packets the core reads per batch: long enough that a batch costs nothing, short enough that
# the records waiting in the batches read ahead stay few (on a slow link's capture, 65,536
# packets end ~5,000 flows and the batches held ~60 MB) and a progress bar moves.
BATCH_PACKETS = 8_192
# A batch also ends once this many flows ended in it (the idle sweeps of a slow link end them
# by the thousand, whatever the packets), and carries no more: with one worker it goes at its
# last record even in the middle of a sweep, which waits for Python to take it; with several,
# the flows one packet's sweep ends go on in batches of this many (`core/src/ahead.rs`).
BATCH_RECORDS = 64
# Records the core hands over per call at the end of a capture. Each record on its way (its
# decoded facts, their JSON, its Python object) costs ~5 KB and up to AHEAD_BATCHES + 2 slices
# are on their way at once: slices of 256 raised the CLI's peak RSS at the end of mix-2m by
# 12 MB over the read's, slices of 64 (and batches of 64 records) by 5-7 MB, at the same speed.
DRAIN_RECORDS = 64
# Batches the core may read ahead of the records' policy and output: enough to keep both
# busy when one batch takes longer than another, few enough to bound the records waiting.
AHEAD_BATCHES = 2
# Fields the core gives for joining with Zeek and Suricata logs.
JOIN_FIELDS = ("flow_id", "community_id", "duration", "state", "history")

CaptureError = _core.CaptureError
RecordSink = Callable[[FlowRecord], None]
LineSink = Callable[[Any, int], None]  # a run of the core's lines (or rows), and the records they are
TallySink = Callable[[_core.QuietTally], None]


@dataclass(slots=True)
class Config:
    signature_dirs: tuple[str, ...] = ()
    services_path: str | None = None
    policy_path: str | None = None
    max_flows: int = DEFAULT_MAX_FLOWS
    # Seconds of silence that end a flow; a signature may give its protocol's own (dns.toml's
    # idle_udp: a DNS exchange is over once answered).
    idle_tcp: float = 300.0
    idle_udp: float = 60.0
    linger: float = 2.0  # a closed TCP flow stays to absorb its last ACKs before it is reported
    sweep_interval: float = 1.0  # capture seconds between idle sweeps
    max_payload_packets: int = 12  # give up classifying after this many payload packets (nDPI-like)
    meta_packets: int = 8  # payload packets inspected after classification, for metadata
    # This analyzer keeps only flows whose direction-independent hash falls in shard
    # `shard_index` of `shard_count` (a Dask task's share of one capture).
    shard_index: int = 0
    shard_count: int = 1
    # A capture filter (pcap-filter(7), as tcpdump's): the core drops every other frame of a
    # file before decoding it (`analyze -f`). Live capture filters in the kernel instead.
    bpf: str | None = None

    def core_settings(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in (
            "max_flows", "idle_tcp", "idle_udp", "linger", "sweep_interval",
            "max_payload_packets", "meta_packets", "shard_index", "shard_count")}


@dataclass(slots=True)
class Setup:
    """Everything loaded from files: reloaded as one piece (the monitor's SIGHUP)."""

    signatures: list[SignatureInfo]
    services: ServicesDB
    policy: Policy
    ctx: PolicyContext
    engine: _core.Engine
    known_ports: list[tuple[int, str]] = field(default_factory=list)
    # `Config.bpf` compiled for every link type the core decodes (portwatch.bpf).
    bpf_programs: dict[int, bpf.Program | None] | None = None

    @classmethod
    def load(cls, config: Config) -> Setup:
        services = load_services(config.services_path)
        policy = load_policy(config.policy_path)
        plain = build_engine(config.signature_dirs)
        signatures = sorted((SignatureInfo.of(d) for d in plain.signatures()), key=lambda s: s.protocol)
        ctx = PolicyContext.build(services, signatures, policy)
        # Port hints for the engine's tie-breaks: what /etc/services says a port is, through the
        # signatures' service names.
        hints: dict[tuple[int, str], set[str]] = {}
        for entry in services.entries:
            if entry.transport not in ("tcp", "udp"):
                continue
            for name in (entry.name, *entry.aliases):
                protos = ctx.service_protocols.get((name.lower(), entry.transport))
                if protos:
                    hints.setdefault((entry.port, entry.transport), set()).update(protos)
        engine = with_port_hints(plain, hints) if hints else plain
        known = sorted({(e.port, e.transport) for e in services.entries if e.transport in ("tcp", "udp")})
        programs = bpf.compile_for_capture(config.bpf) if config.bpf is not None else None
        return cls(signatures, services, policy, ctx, engine, known, programs)


def complete_record(rec: FlowRecord, setup: Setup, dns_counted: tuple[tuple | None] | None = None) -> FlowRecord:
    """A record as the core built it (`record_type=FlowRecord`: `assigned` and `findings` empty)
    with `assigned` as the services database says, and findings (`dns_counted`: see `evaluate`)."""
    rec.assigned = setup.services.names(rec.dst_port, rec.transport)
    rec.findings = evaluate(rec, setup.ctx, dns_counted)
    return rec


class Analyzer:
    """One capture (or a stream of frames) through the core, records to `on_record`.

    `run_capture(path)` lets the core read the file itself (the fast path of every command);
    `run(frames)` feeds frames from Python (tests, replays, the monitor's live sockets).
    """

    def __init__(
        self,
        config: Config | None = None,
        on_record: RecordSink | None = None,
        on_classified: RecordSink | None = None,
        setup: Setup | None = None,
        pcap_name: str | None = None,
        workers: int = 1,
        meta_json: bool = False,
        on_line: LineSink | None = None,
        on_tally: TallySink | None = None,
        line_format: str = "jsonl",
    ) -> None:
        self.config = config or Config()
        self.setup = setup or Setup.load(self.config)
        self.on_record = on_record or (lambda r: None)
        self.on_classified = on_classified
        self.pcap_name = pcap_name
        # `on_record` writes each record's meta as JSON (jsonl, eve): `run_capture` has the core
        # serialize it on its own thread while this one has batches to take (the busier of the
        # two, as at a capture's end), and leaves it to this one when it waits.
        self.meta_json = meta_json
        if workers > MAX_WORKERS:  # checked here too: past 64 bits the core's own check is an OverflowError
            raise ValueError(f"workers: at most {MAX_WORKERS} threads, not {workers}")
        self.core = _core.Analyzer(self.setup.engine, self.setup.known_ports, pcap_name,
                                   self.config.core_settings(), report_classified=on_classified is not None,
                                   workers=max(1, workers), record_type=FlowRecord)
        if self.setup.bpf_programs is not None:
            self.core.set_filter(self.setup.bpf_programs)
        self.error: str | None = None
        # The records no finding can come of never become Python records (`rules.quiet_setup`):
        # `on_line` takes runs of them as the lines the core wrote in `line_format` ("jsonl",
        # "eve", "csv"; rows for "sqlite", "parquet" and a notebook's "frame":
        # `SinkFormat.quiet_lines`), or else `on_tally` as the core counted them for the closing
        # report. Each Python record teaches the core its key (`_emit`).
        if on_line is not None and on_tally is not None:
            raise ValueError("quiet records go to on_line or to on_tally, not both")
        self.on_line = on_line
        self.on_tally = on_tally
        wanted = (on_line or on_tally) and on_classified is None
        quiet = quiet_setup(self.setup.ctx, self.setup.known_ports) if wanted else None
        if quiet is not None:
            self.core.quiet_records(*quiet, lines=line_format if on_line is not None else None)
        self._teaching = quiet is not None

    # ---- input ---------------------------------------------------------------------------
    def run_capture(self, capture: _core.Capture, tick: Callable[[], None] | None = None) -> None:
        """Read `capture` to its end (or first error); `tick()` after every batch.

        The core reads on a thread of its own, up to `AHEAD_BATCHES` batches ahead, while this
        one turns records into findings and output; at the end of input it goes on to drain the
        flows still open, which `close()` then hands over."""
        self.core.start(capture, BATCH_PACKETS, DRAIN_RECORDS, AHEAD_BATCHES, meta_json=self.meta_json,
                        max_records=BATCH_RECORDS)
        while (records := self.core.next_batch()) is not None:
            self._emit(records)
            if tick is not None:
                tick()
        self.error = capture.error

    def run(self, frames: Iterable[tuple]) -> None:
        """Frames as (ts, linktype, data) or (ts, linktype, buf, offset, length)."""
        batch: list[tuple[float, int, bytes]] = []
        for fr in frames:
            if len(fr) == 5:
                ts, linktype, buf, off, length = fr
                batch.append((ts, linktype, bytes(buf[off : off + length])))
            else:
                batch.append((fr[0], fr[1], bytes(fr[2])))
            if len(batch) >= 4096:
                self._emit(self.core.feed(batch))
                batch = []
        if batch:
            self._emit(self.core.feed(batch))

    def _record(self, rec: FlowRecord, dns_counted: tuple[tuple | None] | None = None) -> FlowRecord:
        return complete_record(rec, self.setup, dns_counted)

    def _emit(self, records: list[FlowRecord | _core.QuietLines | _core.QuietTally | tuple[FlowRecord, tuple | None]],
              ) -> None:
        if self.on_classified is not None:
            for rec in self.core.classified():
                self.on_classified(self._record(rec))
        teaching = self._teaching
        ctx = self.setup.ctx
        for item in records:
            if type(item) is _core.QuietLines:
                self.on_line(item.data, item.records)  # type: ignore[misc]
                continue
            if type(item) is _core.QuietTally:
                self.on_tally(item)  # type: ignore[misc]
                continue
            if isinstance(item, tuple):  # a DNS record the core's tracker counted, and its answer
                rec, found = item
                self.on_record(self._record(rec, (found,)))
            else:
                rec = item
                self.on_record(self._record(rec))
            if teaching and quiet_key(rec, ctx):  # the core keeps what it is taught, bounded
                self.core.teach_quiet(rec.protocol, rec.dst_port, rec.transport)

    # ---- state ---------------------------------------------------------------------------
    @property
    def stats(self) -> CaptureStats:
        counters: dict[str, Any] = {k: v for k, v in self.core.stats().items() if k in CaptureStats.__slots__}
        stats = CaptureStats(**counters)
        stats.error = self.error
        return stats

    @property
    def live_flows(self) -> int:
        return self.core.live_flows()

    def close(self) -> CaptureStats:
        """Report every flow still open (end of capture or shutdown) and return the counters.

        A slice at a time: the records of a full table never exist all at once."""
        while True:
            records = self.core.drain(DRAIN_RECORDS)
            if not records:
                break
            self._emit(records)
        return self.stats


def open_capture(path: str) -> _core.Capture:
    """A capture file ("-": standard input) opened by the core; CaptureError (one line) if it
    cannot be read as pcap or pcapng."""
    return _core.Capture(path)


def analyze_path(path: str, setup: Setup, config: Config, on_record: RecordSink, workers: int = 1,
                 tick: Callable[[_core.Capture, Analyzer], None] | None = None) -> CaptureStats:
    """One capture file ("-": standard input) through the core. Raises CaptureError when it cannot
    be opened; a read error later is `stats.error`, after every flow read so far was reported."""
    capture = open_capture(path)
    analyzer = Analyzer(config, on_record, setup=setup, pcap_name=None if path == "-" else capture.name,
                        workers=workers)
    analyzer.run_capture(capture, (lambda: tick(capture, analyzer)) if tick else None)
    return analyzer.close()
