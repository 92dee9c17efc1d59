"""Issue 18 items 4-6: one set of columns in every output, read() reads every output portwatch
writes (and refuses anything else clearly), flat CSV columns for the facts analysts filter on."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from _kit import CAPTURES, SERVICES, record, run

import portwatch
from portwatch.api import ReadError
from portwatch.model import Finding
from portwatch.report import schema
from portwatch.report.csvout import CsvWriter

JOIN_KEYS = ("flow_id", "community_id", "duration", "state", "history")


def _out(tmp_path, *args) -> str:
    path = tmp_path / "out"
    res = run("analyze", *SERVICES, *args, "-o", str(path), str(CAPTURES))
    assert res.exit_code in (0, 1), res.stderr
    return str(path)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "sqlite", "eve"])
def test_every_flow_format_reads_back_to_the_same_frame(tmp_path, fmt):
    direct = portwatch.analyze(CAPTURES, services=SERVICES[1], progress=False)
    back = portwatch.read(_out(tmp_path, "--format", fmt))
    assert list(back.flows.columns) == list(schema.FLOW_COLUMNS)
    assert dict(back.flows.dtypes) == dict(direct.flows.dtypes)
    key = ["pcap", "flow_id"]
    a = direct.flows.sort_values(key).reset_index(drop=True)
    b = back.flows.sort_values(key).reset_index(drop=True)
    for col in (*JOIN_KEYS, "dst_ip", "dst_port", "protocol", "bytes_s2c", "ts_start", "ts_end"):
        assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
    assert [list(x) for x in a["assigned"]] == [list(x) for x in b["assigned"]]


def test_jsonl_records_carry_the_join_keys(tmp_path):
    for line in Path(_out(tmp_path, "--format", "jsonl")).read_text().splitlines():
        rec = json.loads(line)
        assert list(rec) == [c for c in schema.FLOW_COLUMNS if c in rec]
        assert all(rec[k] is not None for k in JOIN_KEYS)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_findings_only_output_uses_the_schema_and_reads_back(tmp_path, fmt):
    path = _out(tmp_path, "--findings-only", "--format", fmt)
    frame = portwatch.read(path)
    summary = portwatch.analyze(CAPTURES, services=SERVICES[1], progress=False).summary()
    assert list(frame.columns) == list(summary.columns)
    assert list(frame.columns[:len(schema.FINDING_COLUMNS)]) == list(schema.FINDING_COLUMNS)
    assert frame[["kind", "dst_ip", "dst_port", "protocol", "flows"]].astype(str).values.tolist() == \
        summary[["kind", "dst_ip", "dst_port", "protocol", "flows"]].astype(str).values.tolist()
    assert dict(frame.dtypes) == dict(summary.dtypes)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_servers_output_uses_the_schema_and_reads_back(tmp_path, fmt):
    path = _out(tmp_path, "--servers", "--format", fmt)
    if fmt == "jsonl":
        first = json.loads(Path(path).read_text().splitlines()[0])
        assert list(first) == list(schema.SERVER_COLUMNS)
        assert isinstance(first["assigned"], list)
    else:
        assert next(csv.reader(io.StringIO(Path(path).read_text()))) == list(schema.SERVER_COLUMNS)
    frame = portwatch.read(path)
    servers = portwatch.analyze(CAPTURES, services=SERVICES[1], progress=False).servers
    assert list(frame.columns) == list(servers.columns)
    assert frame.dst_port.tolist() == servers.dst_port.tolist()
    assert [list(x) for x in frame.assigned] == [list(x) for x in servers.assigned]
    assert [list(x) for x in frame.protocols] == [list(x) for x in servers.protocols]


def test_baseline_reads_as_the_servers_table(tmp_path):
    path = tmp_path / "base.json"
    res = run("baseline", "save", *SERVICES, str(CAPTURES / "ssh-443.pcap"), "-o", str(path))
    assert res.exit_code == 0, res.stderr
    frame = portwatch.read(path)
    assert frame.dst_port.tolist() == [443]
    assert frame.protocols[0] == ["ssh"]


def test_old_baseline_column_names_still_load(tmp_path):
    from portwatch.baseline import load_baseline

    path = tmp_path / "old.json"
    path.write_text(json.dumps({"portwatch_baseline": 1, "servers": [
        {"server_ip": "10.0.0.1", "port": 22, "transport": "tcp", "protocols": ["ssh"]}]}))
    assert load_baseline(path).servers == {("10.0.0.1", 22, "tcp"): frozenset({"ssh"})}
    assert portwatch.read(path).dst_port.tolist() == [22]


@pytest.mark.parametrize("content", [b"\xd4\xc3\xb2\xa1" + bytes(20), b"name,age\nx,1\n", b'{"a": 1}\n',
                                     b"\x00\x01\x02garbage"])
def test_read_refuses_anything_else_clearly(tmp_path, content):
    path = tmp_path / "thing"
    path.write_bytes(content)
    with pytest.raises(ReadError, match="not an output of portwatch"):
        portwatch.read(path)


def test_csv_has_flat_metadata_columns_and_meta_last():
    buf = io.StringIO()
    meta = {"sni": "a.example", "alpn": ["h2", "http/1.1"], "ja3": "j3", "ja4": "j4", "ja3s": "j3s",
            "hassh": "h", "hassh_server": "hs", "ssh_client": "SSH-2.0-c", "ssh_server": "SSH-2.0-s",
            "http_host": "host", "http_user_agent": "curl/8", "dns_query": "q.example."}
    w = CsvWriter(buf)
    w.write(record(meta=meta, findings=[Finding("tunnel", "high", "m")]))
    w.write(record(2))
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    header = next(csv.reader(io.StringIO(buf.getvalue())))
    assert header[-1] == "meta"
    assert set(schema.META_COLUMNS) <= set(header)
    assert rows[0]["sni"] == "a.example" and rows[0]["alpn"] == "h2,http/1.1"
    assert rows[0]["http_user_agent"] == "curl/8" and rows[0]["ssh_server"] == "SSH-2.0-s"
    assert rows[1]["sni"] == ""
    assert all(rows[0][k] for k in JOIN_KEYS)


def test_assigned_is_a_list_after_reading_csv(tmp_path):
    buf = tmp_path / "f.csv"
    with open(buf, "w", newline="") as fh:
        w = CsvWriter(fh)
        w.write(record(assigned=["http", "www"]))
    a = portwatch.read(buf)
    assert a.flows.assigned[0] == ["http", "www"]
