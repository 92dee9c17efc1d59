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
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from ..model import Finding, FlowRecord
from ..report.jsonl import encode_line
from ..report.sqlite import SqliteWriter

ACTIVE_TIMEOUT = "active-timeout"


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


class Emitter:
    def __init__(self, jsonl: TextIO | None, db: SqliteWriter | None, view: View | None) -> None:
        self.jsonl = jsonl
        self.db = db
        self.view = view
        self.tally = Tally()
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

    def _line(self, kind: str, flow_id: str | None, now: float, body: dict[str, Any]) -> None:
        if self.jsonl is None:
            return
        head: dict[str, Any] = {"type": kind}
        if flow_id is not None:
            head["flow_id"] = flow_id
        head["time"] = round(now, 6)
        head.update(body)
        self.jsonl.write(encode_line(head) + "\n")
        self.jsonl.flush()

    def commit(self) -> None:
        if self.db is not None:
            self.db.commit()

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.flush()
        if self.db is not None:
            self.db.close()
