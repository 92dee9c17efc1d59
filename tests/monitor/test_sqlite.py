"""The SQLite sink: schema version, WAL, live readers, what `write_findings` commits."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from portwatch.model import Finding, FlowRecord
from portwatch.report.sqlite import SCHEMA_VERSION, SchemaError, SqliteWriter


def record(port: int = 443, ts: float = 1000.0) -> FlowRecord:
    return FlowRecord(
        ts_start=ts, ts_end=ts + 2, transport="tcp", src_ip="10.0.0.2", src_port=40000, dst_ip="10.0.0.1",
        dst_port=port, orientation="handshake", protocol="ssh", confidence=0.95, assigned=["https"],
        packets_c2s=3, packets_s2c=2, bytes_c2s=100, bytes_s2c=200, meta={"ssh_client": "SSH-2.0-x"},
        findings=[Finding("tunnel", "high", "SSH on 443")],
    )


def reader(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def test_schema_is_versioned_and_in_wal_mode(tmp_path: Path) -> None:
    w = SqliteWriter(tmp_path / "a.db")
    w.close()
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    flows = [r[1] for r in db.execute("PRAGMA table_info(flows)")]
    for col in ("flow_id", "ts_start", "ts_end", "transport", "src_ip", "src_port", "dst_ip", "dst_port",
                "orientation", "protocol", "confidence", "assigned", "packets_c2s", "packets_s2c", "bytes_c2s",
                "bytes_s2c", "meta", "findings", "pcap"):
        assert col in flows
    indexes = {r[1] for r in db.execute("SELECT * FROM sqlite_master WHERE type = 'index'")}
    assert {"flows_ts_start", "findings_ts", "findings_ts_start"} <= indexes


def test_finding_visible_to_another_reader_at_once_flows_after_commit(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    w = SqliteWriter(path)
    rec = record()
    w.write_findings(rec, rec.findings, ts=1001.0, flow_id="f1")
    r = reader(path)
    assert r.execute("SELECT flow_id, ts, ts_start, dst_port, protocol, kind, severity FROM findings").fetchall() == [
        ("f1", 1001.0, 1000.0, 443, "ssh", "tunnel", "high")
    ]
    w.write_flow(rec, "f1")
    assert r.execute("SELECT count(*) FROM flows").fetchone() == (0,), "not committed yet"
    w.commit()
    row = r.execute("SELECT flow_id, assigned, meta, findings FROM flows").fetchone()
    assert row[0] == "f1"
    assert json.loads(row[1]) == ["https"]
    assert json.loads(row[2]) == {"ssh_client": "SSH-2.0-x"}
    assert json.loads(row[3]) == [{"kind": "tunnel", "severity": "high", "message": "SSH on 443"}]
    r.close()
    w.close()


def test_write_stores_flow_and_its_findings_and_reopen_appends(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    w = SqliteWriter(path)
    w.write(record(ts=5.0))
    w.close()
    w = SqliteWriter(path)
    w.write(record(ts=6.0))
    w.close()
    r = reader(path)
    assert r.execute("SELECT ts_start FROM flows ORDER BY ts_start").fetchall() == [(5.0,), (6.0,)]
    assert r.execute("SELECT ts, kind FROM findings ORDER BY ts").fetchall() == [(7.0, "tunnel"), (8.0, "tunnel")]
    assert r.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SqliteWriter(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(SchemaError, match="schema version 99"):
        SqliteWriter(path)


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SchemaError):
        SqliteWriter(path)


def test_unopenable_path_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="unable to open"):
        SqliteWriter(tmp_path / "no" / "such" / "dir.db")


def test_rows_the_core_made_are_queued_as_flows_within_the_bound(tmp_path: Path) -> None:
    """`write_lines` takes `write_flow`'s rows (the core's, for records no finding came of) into the
    same bounded queue: past `max_pending`, the oldest flows are dropped and counted."""
    w = SqliteWriter(tmp_path / "c.db", max_pending=3)
    rows = []
    for i in range(5):
        w.write_flow(record(ts=float(i)))
        rows.append(w._flows.pop())  # the row write_flow queues, as the core writes it
    w.write(record(ts=9.0))  # a flow and its finding: 2 pending
    w.write_lines(rows[:2], 2)
    assert (w.pending, w.lost_flows) == (3, 1)  # the written flow went first
    w.write_lines(rows[2:], 3)
    assert (w.pending, w.lost_flows, w.lost_findings) == (3, 4, 0)
    w.close()
    r = reader(tmp_path / "c.db")
    assert r.execute("SELECT ts_start FROM flows ORDER BY id").fetchall() == [(3.0,), (4.0,)]
    assert r.execute("SELECT kind FROM findings").fetchall() == [("tunnel",)]


def test_a_batch_run_commits_as_it_goes(tmp_path: Path) -> None:
    """`write` and `write_lines` (analyze's use) commit once `batch_rows` rows wait: memory stays
    bounded and no row waits for `max_pending` to push it out."""
    w = SqliteWriter(tmp_path / "d.db", max_pending=10, batch_rows=4)
    for i in range(30):
        w.write(record(ts=float(i)))  # a flow and its finding: 2 rows each
        assert w.pending < 4
    w.write_flow(record(ts=100.0))
    rows = [w._flows.pop()] * 25
    w.write_lines(rows, 25)
    assert w.pending < 4
    w.close()
    assert (w.lost_flows, w.lost_findings) == (0, 0)
    r = reader(tmp_path / "d.db")
    assert r.execute("SELECT count(*) FROM flows").fetchone() == (55,)
    assert r.execute("SELECT count(*) FROM findings").fetchone() == (30,)


def test_analyze_says_when_rows_were_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database locked through the run: the rows past the bound are dropped, and the run ends
    with one line and exit 2, not a quietly shorter table."""
    import dataclasses

    from click.testing import CliRunner

    from portwatch.cli import main as cli
    from portwatch.report import sinks

    def small(path: str) -> SqliteWriter:
        return SqliteWriter(path, safe=True, check_parent=False, max_pending=50, patience=0.2)

    monkeypatch.setitem(sinks.SINKS, "sqlite", dataclasses.replace(sinks.SINKS["sqlite"], open_path=small))
    path = tmp_path / "locked.db"
    SqliteWriter(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    capture = Path(__file__).resolve().parent.parent.parent / "captures" / "ssh-443.pcap"
    result = CliRunner().invoke(cli, ["analyze", "--format", "sqlite", "-o", str(path), "--quiet", str(capture)])
    other.rollback()
    assert result.exit_code == 2, result.output
    assert "rows not written: database is locked" in result.output
