"""SQLite sink: flow records and findings in one file that other processes can read while it grows.

The database is in WAL mode, so a notebook or a second process reads a consistent snapshot while
the monitor writes; readers never block the writer. Schema version 1 (`PRAGMA user_version`):

    flows                       one row per finished flow (or per active-timeout segment of one)
      id          INTEGER PRIMARY KEY
      flow_id     TEXT          stable id of the flow; joins findings.flow_id (may be NULL)
      pcap        TEXT          basename of the source file; NULL for live capture
      ts_start    REAL          epoch seconds                       (indexed: flows_ts_start)
      ts_end      REAL          epoch seconds
      transport   TEXT          'tcp' | 'udp'
      src_ip      TEXT          the client
      src_port    INTEGER
      dst_ip      TEXT          the server
      dst_port    INTEGER
      orientation TEXT          'handshake' | 'inferred'
      protocol    TEXT          canonical name or 'unknown'
      confidence  REAL          0..1
      assigned    TEXT          JSON array of service names for dst_port/transport
      packets_c2s, packets_s2c, bytes_c2s, bytes_s2c   INTEGER
      meta        TEXT          JSON object (sanitised text; end_reason when not a normal end)
      findings    TEXT          JSON array of {kind, severity, message}

    findings                    one row per finding, written the moment it is known
      id          INTEGER PRIMARY KEY
      flow_id     TEXT          the flow it belongs to (flows.flow_id); may be NULL
      ts          REAL          epoch seconds when it was reported  (indexed: findings_ts)
      ts_start    REAL          the flow's start                    (indexed: findings_ts_start)
      transport, src_ip, src_port, dst_ip, dst_port, protocol      the flow's columns
      kind        TEXT          stable finding kind (DESIGN.md)
      severity    TEXT          'info' | 'low' | 'medium' | 'high'
      message     TEXT

Column names follow DESIGN.md's output schema, so `SELECT * FROM flows` has the DataFrame's
columns plus `id` and `flow_id`. A finding reported live (as soon as its flow is classified)
is committed at once; flow rows are committed by `commit()` (the monitor does so a few times
a second) and by `close()`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable

from ..model import Finding, FlowRecord

SCHEMA_VERSION = 1

_FLOW_COLUMNS = (
    "flow_id", "pcap", "ts_start", "ts_end", "transport", "src_ip", "src_port", "dst_ip", "dst_port",
    "orientation", "protocol", "confidence", "assigned", "packets_c2s", "packets_s2c", "bytes_c2s",
    "bytes_s2c", "meta", "findings",
)
_FINDING_COLUMNS = (
    "flow_id", "ts", "ts_start", "transport", "src_ip", "src_port", "dst_ip", "dst_port", "protocol",
    "kind", "severity", "message",
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS flows (
    id INTEGER PRIMARY KEY,
    flow_id TEXT, pcap TEXT, ts_start REAL NOT NULL, ts_end REAL NOT NULL, transport TEXT NOT NULL,
    src_ip TEXT NOT NULL, src_port INTEGER NOT NULL, dst_ip TEXT NOT NULL, dst_port INTEGER NOT NULL,
    orientation TEXT NOT NULL, protocol TEXT NOT NULL, confidence REAL NOT NULL, assigned TEXT NOT NULL,
    packets_c2s INTEGER NOT NULL, packets_s2c INTEGER NOT NULL, bytes_c2s INTEGER NOT NULL,
    bytes_s2c INTEGER NOT NULL, meta TEXT NOT NULL, findings TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS flows_ts_start ON flows(ts_start);
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY,
    flow_id TEXT, ts REAL NOT NULL, ts_start REAL NOT NULL, transport TEXT NOT NULL,
    src_ip TEXT NOT NULL, src_port INTEGER NOT NULL, dst_ip TEXT NOT NULL, dst_port INTEGER NOT NULL,
    protocol TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_ts ON findings(ts);
CREATE INDEX IF NOT EXISTS findings_ts_start ON findings(ts_start);
PRAGMA user_version = {SCHEMA_VERSION};
"""


class SchemaError(Exception):
    """The database cannot be used: unopenable, not SQLite, or another schema version."""


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class SqliteWriter:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        # isolation_level=None: transactions are explicit, so a finding can be committed alone.
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise SchemaError(f"{self.path}: {exc}") from None
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            has_tables = self.db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'flows'").fetchone()[0]
            if has_tables and version != SCHEMA_VERSION:
                raise SchemaError(f"{self.path}: schema version {version}, this portwatch writes {SCHEMA_VERSION}")
            mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise SchemaError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            # NORMAL in WAL mode: a commit survives a process kill; only a power loss may lose the last ones.
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise SchemaError(f"{self.path}: {exc}") from None
        except SchemaError:
            self.db.close()
            raise
        self._in_tx = False

    def _begin(self) -> None:
        if not self._in_tx:
            self.db.execute("BEGIN")
            self._in_tx = True

    def write_flow(self, rec: FlowRecord, flow_id: str | None = None) -> None:
        """Queue one flow row; it is durable after the next `commit()`."""
        self._begin()
        self.db.execute(
            f"INSERT INTO flows ({', '.join(_FLOW_COLUMNS)}) VALUES ({', '.join('?' * len(_FLOW_COLUMNS))})",
            (
                flow_id, rec.pcap, rec.ts_start, rec.ts_end, rec.transport, rec.src_ip, rec.src_port, rec.dst_ip,
                rec.dst_port, rec.orientation, rec.protocol, round(rec.confidence, 3), _json(list(rec.assigned)),
                rec.packets_c2s, rec.packets_s2c, rec.bytes_c2s, rec.bytes_s2c, _json(rec.meta),
                _json([f.as_dict() for f in rec.findings]),
            ),
        )

    def write_findings(
        self, rec: FlowRecord, findings: Iterable[Finding], ts: float, flow_id: str | None = None,
        commit: bool = True,
    ) -> None:
        """Store findings of `rec` reported at `ts`; committed at once unless `commit` is False."""
        rows = [
            (flow_id, ts, rec.ts_start, rec.transport, rec.src_ip, rec.src_port, rec.dst_ip, rec.dst_port,
             rec.protocol, f.kind, f.severity, f.message)
            for f in findings
        ]
        if not rows:
            return
        self._begin()
        self.db.executemany(
            f"INSERT INTO findings ({', '.join(_FINDING_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_FINDING_COLUMNS))})",
            rows,
        )
        if commit:
            self.commit()

    def write(self, rec: FlowRecord) -> None:
        """A finished flow and all its findings (the batch `analyze` use)."""
        self.write_flow(rec)
        self.write_findings(rec, rec.findings, rec.ts_end, commit=False)

    def commit(self) -> None:
        if self._in_tx:
            self.db.execute("COMMIT")
            self._in_tx = False

    def close(self) -> None:
        self.commit()
        self.db.close()
