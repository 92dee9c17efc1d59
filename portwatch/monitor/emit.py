"""Where the monitor's events go: the JSONL file, the SQLite database, the view, the counters.

JSONL line types (one JSON object per line, appended and flushed line by line; `type` first):

- `classified`: a flow has just been classified (or given up on as unknown). The DESIGN.md flow
  record as it stands at that moment (counters so far), plus `flow_id` and `time` (wall clock of
  the report). Emitted once per flow, seconds or less after the flow starts.
- `finding`: one finding, the first time it is known for its flow: right after the flow's
  `classified` line, or with its `flow` line when it arose later. Fields: `flow_id`, `time`,
  `ts_start`, `transport`, `src_ip`, `src_port`, `dst_ip`, `dst_port`, `protocol`, `kind`,
  `severity`, `message` (the same columns as the SQLite `findings` table).
- `flow`: the final DESIGN.md flow record when the flow ends (FIN/RST, idle, evicted, shutdown,
  or a segment cut by the active timeout: `meta.end_reason` says which when not a normal end),
  plus `flow_id` and `time`.
- `reload`: a SIGHUP was handled: `ok` (bool), `changes` (list of text) or `error` (text).

A finding is reported once per flow even when the flow is split into several `flow` segments.

The sinks are independent: a JSONL file on a full disk, a database locked by another process or
a deleted directory does not stop the other sink or the capture. What a sink cannot take waits in
memory (bounded) and is retried with a back-off; what is finally dropped is counted per sink
(`Tally.lost`), logged, shown in the status line and the final summary, and makes the monitor
exit 2. A JSON line is written whole or not at all (`recordfile.append_whole`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from ..model import Finding, FlowRecord
from ..report.jsonl import encode_line
from ..report.recordfile import append_whole
from ..report.sqlite import BACKOFF_FIRST, BACKOFF_MAX, SqliteWriter

ACTIVE_TIMEOUT = "active-timeout"
MAX_PENDING_BYTES = 32 << 20  # JSON lines held in memory while the file cannot take them
LOSS_LOG_INTERVAL = 60.0
log = logging.getLogger("portwatch.monitor")


class StreamSink:
    """A text stream (a test's StringIO) behind the JsonlSink surface; its errors are raised."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.name = getattr(stream, "name", "<stream>")
        self.pending: deque[bytes] = deque()
        self.lost = 0
        self.failure: str | None = None

    def write(self, line: str) -> None:
        self.stream.write(line)
        self.stream.flush()

    def flush(self, force: bool = False) -> bool:
        self.stream.flush()
        return True

    def close(self) -> None:
        self.stream.flush()


class JsonlSink:
    """The `--jsonl` file (an O_APPEND descriptor): whole lines, and never a reason to stop."""

    def __init__(self, fd: int, name: str, max_pending_bytes: int = MAX_PENDING_BYTES, patience: float = 2.0) -> None:
        self.fd: int | None = fd
        self.name = name
        self.max_pending_bytes = max_pending_bytes
        self.patience = patience
        self.pending: deque[bytes] = deque()
        self.pending_bytes = 0
        self.lost = 0  # lines dropped
        self.failure: str | None = None
        self.failures = 0
        self._retry_at = 0.0

    def write(self, line: str) -> None:
        data = line.encode("utf-8", errors="surrogateescape")
        if not self.pending and self.fd is not None:
            try:
                append_whole(self.fd, data)
                return
            except OSError as exc:
                self._failed(exc)
        while self.pending and self.pending_bytes + len(data) > self.max_pending_bytes:
            self.pending_bytes -= len(self.pending.popleft())
            self.lost += 1
        self.pending.append(data)
        self.pending_bytes += len(data)

    def _failed(self, exc: OSError) -> None:
        self.failures += 1
        self.failure = exc.strerror or str(exc)
        self._retry_at = time.monotonic() + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 1))

    def flush(self, force: bool = False) -> bool:
        """Write what waits, oldest first; False if the file still does not take it."""
        if not self.pending:
            return True
        if self.fd is None or (not force and time.monotonic() < self._retry_at):
            return False
        while self.pending:
            try:
                append_whole(self.fd, self.pending[0])
            except OSError as exc:
                self._failed(exc)
                return False
            self.pending_bytes -= len(self.pending.popleft())
        self.failure, self.failures = None, 0
        return True

    def close(self) -> None:
        if self.fd is None:
            return
        deadline = time.monotonic() + self.patience
        while not self.flush(force=True) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.lost += len(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = None


class View(Protocol):
    def finding(self, rec: FlowRecord, finding: Finding, flow_id: str) -> None: ...


@dataclass(slots=True)
class Tally:
    """What the monitor has reported so far: bounded, whatever the run length."""

    classified: int = 0
    flows: int = 0
    findings: Counter[str] = field(default_factory=Counter)  # by severity
    by_kind: Counter[str] = field(default_factory=Counter)
    recent: deque[tuple[float, FlowRecord, Finding]] = field(default_factory=lambda: deque(maxlen=12))
    # Output that could not be written, finally dropped: "jsonl lines", "db flows", "db findings".
    lost: Counter[str] = field(default_factory=Counter)

    def lost_text(self) -> str:
        return ", ".join(f"{what} {n}" for what, n in sorted(self.lost.items()) if n)


class Emitter:
    def __init__(self, jsonl: JsonlSink | TextIO | None, db: SqliteWriter | None, view: View | None) -> None:
        self.jsonl = jsonl if jsonl is None or isinstance(jsonl, JsonlSink) else StreamSink(jsonl)
        self.db = db
        self.view = view
        self.tally = Tally()
        self._failing: dict[str, tuple[float, str]] = {}  # sink -> (since, error) while it fails
        self._next_loss_log = 0.0
        self._logged_lost = 0
        # Finding kinds already reported per live flow; an entry lives as long as its flow does.
        self.reported: dict[str, set[str]] = {}

    # ---- analyzer callbacks ------------------------------------------------------------------
    def on_classified(self, rec: FlowRecord) -> None:
        flow_id = rec.meta.pop("flow_id", "")
        now = time.time()
        self.tally.classified += 1
        self._line("classified", flow_id, now, rec.as_dict())
        self._new_findings(rec, flow_id, now, commit=True)

    def on_record(self, rec: FlowRecord) -> None:
        flow_id = rec.meta.pop("flow_id", "")
        now = time.time()
        self.tally.flows += 1
        self._new_findings(rec, flow_id, now, commit=False)
        if rec.meta.get("end_reason") != ACTIVE_TIMEOUT:
            self.reported.pop(flow_id, None)
        self._line("flow", flow_id, now, rec.as_dict())
        if self.db is not None:
            self.db.write_flow(rec, flow_id)
            self._health()

    def reload(self, ok: bool, detail: list[str] | str) -> None:
        extra: dict[str, Any] = {"ok": ok}
        extra["changes" if ok else "error"] = detail
        self._line("reload", None, time.time(), extra)

    # ---- helpers -----------------------------------------------------------------------------
    def _new_findings(self, rec: FlowRecord, flow_id: str, now: float, commit: bool) -> None:
        if not rec.findings:
            return
        seen = self.reported.setdefault(flow_id, set())
        fresh = [f for f in rec.findings if f.kind not in seen]
        if not fresh:
            return
        for f in fresh:
            seen.add(f.kind)
            self.tally.findings[f.severity] += 1
            self.tally.by_kind[f.kind] += 1
            self.tally.recent.append((now, rec, f))
            self._line("finding", flow_id, now, {
                "ts_start": rec.ts_start, "transport": rec.transport, "src_ip": rec.src_ip,
                "src_port": rec.src_port, "dst_ip": rec.dst_ip, "dst_port": rec.dst_port,
                "protocol": rec.protocol, **f.as_dict(),
            })
            if self.view is not None:
                self.view.finding(rec, f, flow_id)
        if self.db is not None:
            self.db.write_findings(rec, fresh, now, flow_id, commit=commit)
            self._health()

    def _line(self, kind: str, flow_id: str | None, now: float, body: dict[str, Any]) -> None:
        if self.jsonl is None:
            return
        head: dict[str, Any] = {"type": kind}
        if flow_id is not None:
            head["flow_id"] = flow_id
        head["time"] = round(now, 6)
        head.update(body)
        if flow_id is not None:  # the run-prefixed id, not the record's own per-capture number
            head["flow_id"] = flow_id
        self.jsonl.write(encode_line(head) + "\n")
        self._health()

    def _health(self) -> None:
        """Log a sink that starts or stops failing, and (at most once a minute) what was lost."""
        t = self.tally
        states = []
        if self.jsonl is not None:
            t.lost["jsonl lines"] = self.jsonl.lost
            states.append((f"jsonl {self.jsonl.name}", self.jsonl.failure, len(self.jsonl.pending), "lines"))
        if self.db is not None:
            t.lost["db flows"] = self.db.lost_flows
            t.lost["db findings"] = self.db.lost_findings
            states.append((f"database {self.db.path}", self.db.failure, self.db.pending, "rows"))
        now = time.monotonic()
        for name, failure, pending, unit in states:
            if failure is not None and name not in self._failing:
                self._failing[name] = (now, failure)
                log.error("%s: write failed (%s); keeping %d %s in memory and retrying", name, failure, pending, unit)
            elif failure is None and name in self._failing:
                since, _ = self._failing.pop(name)
                log.warning("%s: writing again after %.1fs", name, now - since)
        lost = sum(t.lost.values())
        if lost > self._logged_lost and now >= self._next_loss_log:
            self._next_loss_log = now + LOSS_LOG_INTERVAL
            self._logged_lost = lost
            log.error("output lost so far: %s", t.lost_text())

    @property
    def lost(self) -> int:
        return sum(self.tally.lost.values())

    def commit(self) -> None:
        if self.jsonl is not None:
            self.jsonl.flush()
        if self.db is not None:
            self.db.commit()
        self._health()

    def close(self) -> None:
        """Last attempts (bounded) for whatever still waits, then count the rest as lost."""
        if self.jsonl is not None:
            self.jsonl.close()
        if self.db is not None:
            self.db.close()
        self._next_loss_log = 0.0
        self._health()
