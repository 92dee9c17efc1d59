"""The record writers' fast paths write what the plain ones write: bytes straight into a
`RecordFile` (-o) equal the text path's, and `as_dict(copy=False)` equals `as_dict()`."""

from __future__ import annotations

import io
from pathlib import Path

from _kit import CAPTURES

from portwatch.model import Finding, FlowRecord
from portwatch.report.eve import EveWriter
from portwatch.report.jsonl import JsonlWriter, encode_line
from portwatch.report.recordfile import RecordFile


def _record(meta: dict, pcap: str | None = "a.pcap", findings: int = 1) -> FlowRecord:
    return FlowRecord(
        ts_start=1_700_000_000.123456, ts_end=1_700_000_001.5, transport="tcp", src_ip="192.0.2.1", src_port=50000,
        dst_ip="2001:db8::1", dst_port=443, orientation="handshake", protocol="ssh", confidence=0.95123,
        assigned=["https"], packets_c2s=5, packets_s2c=4, bytes_c2s=900, bytes_s2c=1200, meta=meta,
        findings=[Finding("port-mismatch", "high", f"ssh on 443 \u00e4 {n}") for n in range(findings)],
        pcap=pcap, flow_id=7, community_id="1:abc=", duration=1.376544, state="SF", history="ShADadFf",
    )


RECORDS = [
    _record({"ssh_server": "SSH-2.0-OpenSSH_9.2p1", "alpn": ["h2"], "entropy_client": {"entropy": 7.9}}),
    _record({"banner": "caf\u00e9 \u2603"}, pcap=None, findings=0),
    _record({"n": 2**70}),  # past 64 bits: the standard library writes it
    _record({"t": "a\udcffb"}, findings=2),  # a lone surrogate (surrogateescape'd bytes)
]


def _both(writer_class: type, tmp_path: Path) -> tuple[bytes, bytes]:
    text = io.StringIO()
    w = writer_class(text)
    for rec in RECORDS:
        w.write(rec)
    path = tmp_path / "out"
    with RecordFile(str(path)) as f:
        w = writer_class(f)
        for rec in RECORDS:
            w.write(rec)
        w.close()
    return text.getvalue().encode("utf-8", errors="surrogateescape"), path.read_bytes()


def test_jsonl_bytes_into_a_record_file_equal_the_text_path(tmp_path: Path) -> None:
    text, direct = _both(JsonlWriter, tmp_path)
    assert direct == text
    lines = direct.split(b"\n")
    assert len(lines) == len(RECORDS) + 1 and lines[-1] == b""
    assert lines[0].decode() == encode_line(RECORDS[0].as_dict())


def test_eve_bytes_into_a_record_file_equal_the_text_path(tmp_path: Path) -> None:
    text, direct = _both(EveWriter, tmp_path)
    assert direct == text
    assert direct.count(b'"event_type":"alert"') == 1 + 0 + 1 + 2


def test_as_dict_without_copies_is_the_same_dict_in_the_same_order() -> None:
    for rec in RECORDS:
        shared, copied = rec.as_dict(copy=False), rec.as_dict()
        assert list(shared.items()) == list(copied.items())
        assert shared["meta"] is rec.meta and copied["meta"] is not rec.meta
        assert copied["assigned"] is not rec.assigned
        third = "pcap" if rec.pcap else "ts_start"
        assert list(copied)[:3] == ["flow_id", "community_id", third]


def test_parquet_rows_hold_the_cores_meta_as_its_json_text(tmp_path: Path) -> None:
    """A record waiting for its row group is held as its column values, its core `Meta` already
    the JSON text `json.dumps(..., sort_keys=True)` writes of its dict: the file is the one the
    records' dicts make, and no buffered row keeps a record's facts alive."""
    import pyarrow.parquet as pq

    from portwatch import _core
    from portwatch.pipeline import Config, Setup, analyze_path
    from portwatch.report.parquet import SCHEMA, ParquetWriter, to_table

    config = Config()
    setup = Setup.load(config)
    records: list[FlowRecord] = []
    for name in ("ssh-443.pcap", "https-443.pcap", "dns-53.pcap", "quic-443.pcap"):
        analyze_path(str(CAPTURES / name), setup, config, records.append)
    assert records and all(type(r.meta) is _core.Meta for r in records)
    path = tmp_path / "flows.parquet"
    writer = ParquetWriter(path)
    for rec in records:
        writer.write(rec)
    meta = SCHEMA.names.index("meta")
    assert all(type(row) is tuple and type(row[meta]) is str for row in writer._buffer)
    writer.close()
    assert pq.read_table(path).equals(to_table([r.as_dict() for r in records]))


def test_sqlite_meta_is_the_json_of_the_records_facts(tmp_path: Path) -> None:
    """The `meta` column of a core record is the core's text of its map (`Meta.json_compact`):
    the text `json.dumps` writes of its dict, in the same key order."""
    import json
    import sqlite3

    from portwatch import _core
    from portwatch.pipeline import Config, Setup, analyze_path
    from portwatch.report.sqlite import SqliteWriter

    config = Config()
    setup = Setup.load(config)
    records: list[FlowRecord] = []
    for name in ("ssh-443.pcap", "https-443.pcap", "dns-53.pcap", "quic-443.pcap", "smb-445.pcap"):
        analyze_path(str(CAPTURES / name), setup, config, records.append)
    path = tmp_path / "flows.sqlite"
    writer = SqliteWriter(str(path))
    for rec in records:
        writer.write(rec)
    writer.close()
    assert all(type(r.meta) is _core.Meta and r.meta.json_compact() is not None for r in records)
    with sqlite3.connect(path) as db:
        stored = [row[0] for row in db.execute("SELECT meta FROM flows ORDER BY rowid")]
    want = [json.dumps(r.meta.to_dict(), ensure_ascii=False, separators=(",", ":")) for r in records]
    assert stored == want


def test_a_run_of_the_cores_lines_counts_as_its_records(tmp_path: Path, monkeypatch) -> None:
    """A full disk cuts the file back to the last piece it took whole; the error names the records
    on disk, a run of the core's lines counting as the records it holds."""
    import errno
    import os

    import pytest

    from portwatch.report import recordfile
    from portwatch.report.recordfile import OutputError

    out = RecordFile(str(tmp_path / "o"), batch_bytes=1 << 30)
    out.write("a\n")
    out.write_bytes(b"b\nc\nd\n", 3)
    out.write("e\n")
    room = [8]  # "a\n" and the run
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        n = min(len(data), room[0])
        if n == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        room[0] -= n
        return real_write(fd, bytes(data[:n]))

    monkeypatch.setattr(recordfile.os, "write", write)
    with pytest.raises(OutputError, match="after 4 complete record"):
        out.flush()
    assert (tmp_path / "o").read_bytes() == b"a\nb\nc\nd\n"
