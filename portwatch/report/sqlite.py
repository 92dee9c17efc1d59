"""SQLite sink: flow records and findings in one file that other processes can read while it grows.

The database is in WAL mode, so a notebook or a second process reads a consistent snapshot while
the monitor writes; readers never block the writer. Schema version 2 (`PRAGMA user_version`; a
version 1 file is upgraded in place):

    flows                       one row per finished flow (or per active-timeout segment of one)
      id          INTEGER PRIMARY KEY
      flow_id     TEXT          stable id of the flow; joins findings.flow_id (may be NULL)
      community_id TEXT         Community ID v1
      pcap        TEXT          basename of the source file; NULL for live capture
      ts_start    REAL          epoch seconds                       (indexed: flows_ts_start)
      ts_end      REAL          epoch seconds
      duration    REAL          seconds
      transport   TEXT          'tcp' | 'udp'
      src_ip      TEXT          the client
      src_port    INTEGER
      dst_ip      TEXT          the server
      dst_port    INTEGER
      orientation TEXT          'handshake' | 'inferred'
      protocol    TEXT          canonical name or 'unknown'
      confidence  REAL          0..1
      assigned    TEXT          JSON array of service names for dst_port/transport
      packets_c2s, packets_s2c, bytes_c2s, bytes_s2c   INTEGER (bytes: transport payload)
      state, history  TEXT      Zeek's conn_state and history
      meta        TEXT          JSON object (sanitised text; end_reason when not a normal end)
      findings    TEXT          JSON array of {kind, severity, message}

    findings                    one row per finding, written the moment it is known
      id          INTEGER PRIMARY KEY
      flow_id     TEXT          the flow it belongs to (flows.flow_id); may be NULL
      ts          REAL          epoch seconds when it was reported  (indexed: findings_ts)
      ts_start    REAL          the flow's start                    (indexed: findings_ts_start)
      transport, src_ip, src_port, dst_ip, dst_port, protocol      the flow's columns
      kind        TEXT          stable finding kind (docs/architecture.md)
      severity    TEXT          'info' | 'low' | 'medium' | 'high'
      message     TEXT

Column names follow report/schema.py (docs/schema.md), so `SELECT * FROM flows` has the DataFrame's
columns plus `id`. A finding reported live (as soon as its flow is classified)
is committed at once; flow rows are committed by `commit()` (the monitor does so a few times
a second) and by `close()`.

A database that cannot take a write for a while (locked by another process, a full disk) does not
stop the caller: rows wait in memory (at most `max_pending`; beyond it the oldest are dropped and
counted in `lost`), each attempt waits at most `busy_timeout` seconds for a lock, and after a
failure the next attempt comes after a back-off (0.25 s doubling to 8 s). `failure` says what is
wrong while it is; `close()` keeps trying for up to `patience` seconds, then counts what is left as
lost.

`safe=True` (the monitor, as root, and `analyze -o`): the database and its -wal/-shm files are
opened by `safeopen.open_output` first (no symbolic link followed; with `check_parent`, the
monitor's, no directory writable by others), SQLite is then opened on the path, and every file
SQLite opened is checked to be one of those (same device and inode); `owner` receives the files
portwatch created.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from .. import _core
from ..model import Finding, FlowRecord
from .jsonl import plain
from .safeopen import OpenedFile, OutputPathError, open_output
from .schema import FLOW_COLUMNS

SCHEMA_VERSION = 2  # 2: flows gained community_id, duration, state, history (a version 1 file is upgraded)
MAX_PENDING = 200_000  # rows held in memory while the database cannot take them
# A batch run (`write`, `write_lines`) commits once this many rows wait: its memory stays bounded,
# and no row waits for MAX_PENDING to push it out.
BATCH_ROWS = 8192
BACKOFF_FIRST, BACKOFF_MAX = 0.25, 8.0

_FLOW_COLUMNS = FLOW_COLUMNS  # schema.py: the same names as every other output
_ADDED_IN_2 = ("community_id TEXT", "duration REAL", "state TEXT", "history TEXT")
_FINDING_COLUMNS = (
    "flow_id", "ts", "ts_start", "transport", "src_ip", "src_port", "dst_ip", "dst_port", "protocol",
    "kind", "severity", "message",
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS flows (
    id INTEGER PRIMARY KEY,
    flow_id TEXT, community_id TEXT, pcap TEXT, ts_start REAL NOT NULL, ts_end REAL NOT NULL,
    duration REAL, transport TEXT NOT NULL,
    src_ip TEXT NOT NULL, src_port INTEGER NOT NULL, dst_ip TEXT NOT NULL, dst_port INTEGER NOT NULL,
    orientation TEXT NOT NULL, protocol TEXT NOT NULL, confidence REAL NOT NULL, assigned TEXT NOT NULL,
    packets_c2s INTEGER NOT NULL, packets_s2c INTEGER NOT NULL, bytes_c2s INTEGER NOT NULL,
    bytes_s2c INTEGER NOT NULL, state TEXT, history TEXT, meta TEXT NOT NULL, findings TEXT NOT NULL
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


# One encoder for every cell: `json.dumps` with these options builds a new one per call, which
# was a fifth of a flow row's cost.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=plain)


def _json(value: object) -> str:
    return _ENCODER.encode(value)


def _meta_json(meta: object) -> str:
    """`_json(meta)`; a core `Meta` written by the core (`Meta.json_compact`, the same text)
    without becoming a dict."""
    if type(meta) is _core.Meta:
        text = meta.json_compact()
        if text is not None:
            return text
    return _json(meta)


def _busy(exc: sqlite3.Error) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class SqliteWriter:
    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout: float = 0.25, patience: float = 30.0,
        max_pending: int = MAX_PENDING, safe: bool = False, owner: tuple[int, int] | None = None,
        open_timeout: float = 10.0, check_parent: bool = True, batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        self.patience = patience
        self.max_pending = max_pending
        self.batch_rows = batch_rows
        self._held: list[OpenedFile] = []  # our own descriptors: kept open until SQLite closes
        self._flows: deque[tuple] = deque()
        self._findings: deque[tuple] = deque()
        self.lost_flows = 0
        self.lost_findings = 0
        self.failure: str | None = None  # what is wrong while writes fail; None when they succeed
        self.failures = 0  # failed attempts, in a row
        self._retry_at = 0.0
        self._busy = False  # the last failure was a lock held by another connection
        before = _open_fds() if safe else set()
        if safe:
            try:
                for suffix in ("", "-wal", "-shm"):
                    self._held.append(open_output(self.path + suffix, read=True, append=False, owner=owner,
                                                  check_parent=check_parent))
            except OutputPathError:
                self._release()
                raise
        # isolation_level=None: transactions are explicit, so a finding can be committed alone.
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                      timeout=open_timeout)
        except sqlite3.Error as exc:
            self._release()
            raise SchemaError(f"{self.path}: {exc}") from None
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            has_tables = self.db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'flows'").fetchone()[0]
            if has_tables and version == 1:  # add the columns version 2 has; old rows hold NULL there
                for col in _ADDED_IN_2:
                    self.db.execute(f"ALTER TABLE flows ADD COLUMN {col}")
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                version = SCHEMA_VERSION
            if has_tables and version != SCHEMA_VERSION:
                raise SchemaError(f"{self.path}: schema version {version}, this portwatch writes {SCHEMA_VERSION}")
            mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise SchemaError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            # NORMAL in WAL mode: a commit survives a process kill; only a power loss may lose the last ones.
            self.db.execute("PRAGMA synchronous = NORMAL")
            if not has_tables:  # an existing database needs no write (and no lock) to start
                self.db.executescript(SCHEMA)
            if safe:
                self._check_opened(before)
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        except sqlite3.DatabaseError as exc:
            self.db.close()
            self._release()
            raise SchemaError(f"{self.path}: {exc}") from None
        except (SchemaError, OutputPathError):
            self.db.close()
            self._release()
            raise

    # ---- safety --------------------------------------------------------------------------------
    def _check_opened(self, before: set[int]) -> None:
        """Every file SQLite opened is the database, or its -wal/-shm as they stand (not links)."""
        allowed = {(self._held[0].dev, self._held[0].ino)}
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(self.path + suffix)
                if stat.S_ISREG(st.st_mode):
                    allowed.add((st.st_dev, st.st_ino))
        ours = {f.fd for f in self._held}
        for fd in _open_fds() - before - ours:
            try:
                st = os.stat(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and ((st.st_dev, st.st_ino) not in allowed or st.st_nlink != 1):
                raise OutputPathError(1, "SQLite opened a file other than the one checked; refusing it", self.path)

    def _release(self) -> None:
        for f in self._held:
            with contextlib.suppress(OSError):
                os.close(f.fd)
        self._held = []

    # ---- rows ----------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._flows) + len(self._findings)

    @property
    def lost(self) -> int:
        return self.lost_flows + self.lost_findings

    def _make_room(self) -> None:
        while self.pending >= self.max_pending:
            if self._flows:
                self._flows.popleft()
                self.lost_flows += 1
            else:
                self._findings.popleft()
                self.lost_findings += 1

    def _queue_flow(self, row: tuple[Any, ...]) -> None:
        self._make_room()
        self._flows.append(row)

    def write_flow(self, rec: FlowRecord, flow_id: str | None = None) -> None:
        """Queue one flow row; it is durable after the next successful `commit()`."""
        if flow_id is None and rec.flow_id is not None:
            flow_id = str(rec.flow_id)
        self._queue_flow((
            flow_id, rec.community_id, rec.pcap, rec.ts_start, rec.ts_end, rec.duration, rec.transport, rec.src_ip,
            rec.src_port, rec.dst_ip, rec.dst_port, rec.orientation, rec.protocol, round(rec.confidence, 3),
            _json(list(rec.assigned)), rec.packets_c2s, rec.packets_s2c, rec.bytes_c2s, rec.bytes_s2c, rec.state,
            rec.history, _meta_json(rec.meta), _json([f.as_dict() for f in rec.findings]) if rec.findings else "[]",
        ))

    def write_lines(self, rows: list[tuple[Any, ...]], records: int) -> None:
        """Flow rows the core made of records no finding came of (`_core.QuietLines` in the
        "sqlite" form: `write_flow`'s rows), queued as `write_flow` queues one (a batch run)."""
        for row in rows:
            self._queue_flow(row)
            self._batch_done()

    def _batch_done(self) -> None:
        """A batch run's rows reached `batch_rows`: a transaction of them (left queued, and tried
        again later, if the database cannot take them now)."""
        if self.pending >= self.batch_rows:
            self.commit()

    def write_findings(
        self, rec: FlowRecord, findings: Iterable[Finding], ts: float, flow_id: str | None = None,
        commit: bool = True,
    ) -> None:
        """Store findings of `rec` reported at `ts`; committed at once unless `commit` is False."""
        for f in findings:
            self._make_room()
            self._findings.append((flow_id, ts, rec.ts_start, rec.transport, rec.src_ip, rec.src_port, rec.dst_ip,
                                   rec.dst_port, rec.protocol, f.kind, f.severity, f.message))
        if commit:
            self.commit()

    def write(self, rec: FlowRecord) -> None:
        """A finished flow and all its findings (the batch `analyze` use)."""
        self.write_flow(rec)
        fid = None if rec.flow_id is None else str(rec.flow_id)
        self.write_findings(rec, rec.findings, rec.ts_end, fid, commit=False)
        self._batch_done()

    def commit(self, force: bool = False) -> bool:
        """Write every queued row in one transaction. False if the database did not take them
        (they stay queued; the next attempt waits for the back-off unless `force`)."""
        if not self.pending:
            return True
        if not force and time.monotonic() < self._retry_at:
            return False
        flows, findings = list(self._flows), list(self._findings)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            if flows:
                self.db.executemany(
                    f"INSERT INTO flows ({', '.join(_FLOW_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_FLOW_COLUMNS))})", flows)
            if findings:
                self.db.executemany(
                    f"INSERT INTO findings ({', '.join(_FINDING_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_FINDING_COLUMNS))})", findings)
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
            self.failures += 1
            self.failure = str(exc) or type(exc).__name__
            self._busy = _busy(exc)
            self._retry_at = time.monotonic() + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 1))
            return False
        for _ in flows:
            self._flows.popleft()
        for _ in findings:
            self._findings.popleft()
        self.failure, self.failures, self._retry_at = None, 0, 0.0
        return True

    def close(self) -> None:
        """Commit what is queued (trying for up to `patience` seconds), then close. Rows still not
        written are counted in `lost`. Closing again is a no-op."""
        if self.db is None:
            return
        deadline = time.monotonic() + self.patience
        tries = 0
        while not self.commit(force=True):
            tries += 1
            # A lock is worth waiting for; a full disk or a read-only database gets a few tries.
            if time.monotonic() >= deadline or (not self._busy and tries >= 3):
                break
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic()), BACKOFF_FIRST * 2 ** tries))
        self.lost_flows += len(self._flows)
        self.lost_findings += len(self._findings)
        self._flows.clear()
        self._findings.clear()
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        self.db = None  # type: ignore[assignment]
        self._release()


def _open_fds() -> set[int]:
    try:
        return {int(n) for n in os.listdir("/proc/self/fd")}
    except OSError:
        return set()
