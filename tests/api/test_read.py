"""portwatch.read() gives back, from every output format, the DataFrame analyze() built."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import portwatch
from portwatch.model import FlowRecord
from portwatch.pipeline import Config, Setup, analyze_path
from portwatch.report.csvout import CsvWriter
from portwatch.report.jsonl import JsonlWriter
from portwatch.report.parquet import ParquetWriter


def _records(pcap: Path) -> list[FlowRecord]:
    out: list[FlowRecord] = []
    config = Config()
    analyze_path(str(pcap), Setup.load(config), config, out.append)
    return sorted(out, key=lambda r: r.ts_start)


def _write(fmt: str, records: list[FlowRecord], path: Path) -> None:
    if fmt in ("jsonl", "csv"):
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = JsonlWriter(fh) if fmt == "jsonl" else CsvWriter(fh)
            for r in records:
                writer.write(r)
            writer.close()
    elif fmt == "parquet":
        with ParquetWriter(path) as writer:
            for r in records:
                writer.write(r)
    else:
        from portwatch.report.sqlite import SqliteWriter

        writer = SqliteWriter(path)
        for r in records:
            writer.write(r)
        writer.close()


@pytest.fixture(scope="module")
def analysed(mixed_pcap: Path) -> portwatch.Analysis:
    return portwatch.analyze(mixed_pcap, progress=False)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "sqlite"])
def test_round_trip_every_format(fmt: str, mixed_pcap: Path, analysed: portwatch.Analysis, tmp_path: Path) -> None:
    if fmt == "sqlite":
        pytest.importorskip("portwatch.report.sqlite")
    path = tmp_path / f"flows.{fmt}"
    _write(fmt, _records(mixed_pcap), path)
    back = portwatch.read(path)
    pd.testing.assert_frame_equal(back.flows, analysed.flows)
    pd.testing.assert_frame_equal(back.findings, analysed.findings)
    pd.testing.assert_frame_equal(back.servers, analysed.servers)


def test_to_parquet_directory_round_trip(analysed: portwatch.Analysis, tmp_path: Path) -> None:
    path = analysed.to_parquet(tmp_path / "out")
    assert path == tmp_path / "out" / "flows.parquet"
    pd.testing.assert_frame_equal(portwatch.read(tmp_path / "out").flows, analysed.flows)
    pd.testing.assert_frame_equal(portwatch.read(path).flows, analysed.flows)


def test_parquet_is_typed_for_other_tools(analysed: portwatch.Analysis, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    schema = pq.read_schema(analysed.to_parquet(tmp_path))
    assert str(schema.field("ts_start").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("dst_port").type) == "int32"
    assert str(schema.field("findings").type).startswith("list<element: struct<kind: string")


def test_csv_formula_guard_is_undone(tmp_path: Path) -> None:
    """csvout prefixes cells a spreadsheet would evaluate with a quote; read() strips it again."""
    from _api_pcap import build_mixed

    pcap = build_mixed(tmp_path / "=HYPERLINK(x).pcap")
    path = tmp_path / "f.csv"
    _write("csv", _records(pcap), path)
    assert "'=HYPERLINK(x).pcap" in path.read_text()
    back = portwatch.read(path)
    assert set(back.flows["pcap"]) == {"=HYPERLINK(x).pcap"}
    pd.testing.assert_frame_equal(back.flows, portwatch.analyze(pcap, progress=False).flows)


def test_live_records_without_pcap_read_as_na(tmp_path: Path) -> None:
    rec = FlowRecord(1.5, 2.5, "udp", "10.0.0.2", 5353, "10.0.0.1", 53, "handshake", "dns", 0.9, ["domain"],
                     1, 1, 40, 80)
    for fmt in ("jsonl", "csv", "parquet"):
        path = tmp_path / f"live.{fmt}"
        _write(fmt, [rec], path)
        flows = portwatch.read(path).flows
        assert flows["pcap"].isna().all(), fmt
        assert flows["ts_start"].iloc[0] == pd.Timestamp("1970-01-01 00:00:01.5", tz="UTC")


def test_read_rejects_foreign_csv(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a portwatch csv"):
        portwatch.read(path)


def test_monitor_jsonl_keeps_only_flow_events(analysed: portwatch.Analysis, mixed_pcap: Path, tmp_path: Path) -> None:
    import json

    path = tmp_path / "monitor.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i, rec in enumerate(_records(mixed_pcap)):
            d = rec.as_dict()
            fh.write(json.dumps({"type": "classified", "flow_id": f"f{i}", "time": 1.0, **d,
                                 "packets_c2s": 1}) + "\n")
            for f in d["findings"]:
                fh.write(json.dumps({"type": "finding", "flow_id": f"f{i}", "time": 1.0, **f}) + "\n")
            fh.write(json.dumps({"type": "flow", "flow_id": f"f{i}", "time": 2.0, **d}) + "\n")
        fh.write(json.dumps({"type": "reload", "time": 3.0, "ok": True, "changes": []}) + "\n")
    pd.testing.assert_frame_equal(portwatch.read(path).flows, analysed.flows)


def monitor_user_args() -> list[str]:
    """The monitor refuses to parse packets as root without --user; nobody is the usual account."""
    import os
    import pwd

    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return ["--user", "root"]
    return ["--user", "nobody"]


def test_monitor_database_reads_like_analyze(analysed: portwatch.Analysis, mixed_pcap: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "monitor.db"
    done = subprocess.run([sys.executable, "-m", "portwatch", "monitor", "-r", str(mixed_pcap), "--db", str(db),
                           "--no-view", *monitor_user_args()], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    flows = portwatch.read(db).flows.sort_values("ts_start", kind="stable").reset_index(drop=True)
    # The monitor numbers its flows as analyze does, behind its run id ("<run>-1" where analyze says 1).
    pd.testing.assert_frame_equal(flows.drop(columns=["flow_id"]), analysed.flows.drop(columns=["flow_id"]))
    runs, numbers = zip(*(str(v).rsplit("-", 1) for v in flows["flow_id"]), strict=True)
    assert len(set(runs)) == 1 and runs[0]
    assert list(numbers) == [str(v) for v in analysed.flows["flow_id"]]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_files_written_by_the_cli_read_back(fmt: str, analysed: portwatch.Analysis, mixed_pcap: Path,
                                            tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / f"cli.{fmt}"
    done = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", fmt, "-o", str(out),
                           str(mixed_pcap)], capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr  # 1: a finding reached --fail-on
    flows = portwatch.read(out).flows.sort_values("ts_start", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(flows, analysed.flows)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "eve", "parquet", "sqlite"])
def test_the_cores_json_parsing_reads_what_pythons_parser_reads(fmt: str, mixed_pcap: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`read()` takes each record's JSON (a line, or a `meta` column) from the core's parser; with it
    refusing everything (so that `json.loads` reads it all) the frames are the same, meta included."""
    import subprocess
    import sys
    from types import SimpleNamespace

    from portwatch import _core, api
    from portwatch.report import meta_json

    out = tmp_path / f"cli.{fmt}"
    done = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", fmt, "-o", str(out),
                           str(mixed_pcap)], capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    taken = []
    real_records, real_from_json = _core.json_records, _core.Meta.from_json

    def counted(lines: list[str], meta_at: list[str]) -> list[object]:
        got = real_records(lines, meta_at)
        taken.extend(r for r in got if r is not None)
        return got

    def counted_meta(text: str) -> object:
        got = real_from_json(text)
        taken.extend([got] if got is not None else [])
        return got

    monkeypatch.setattr(api, "_core", SimpleNamespace(json_records=counted))
    monkeypatch.setattr(meta_json, "_core", SimpleNamespace(Meta=SimpleNamespace(from_json=counted_meta)))
    fast = portwatch.read(out)
    assert len(taken) >= len(fast.flows) > 0  # the core read them
    monkeypatch.setattr(api, "_core", SimpleNamespace(json_records=lambda lines, meta_at: [None] * len(lines)))
    monkeypatch.setattr(meta_json, "_core", SimpleNamespace(Meta=SimpleNamespace(from_json=lambda text: None)))
    slow = portwatch.read(out)
    pd.testing.assert_frame_equal(fast.flows, slow.flows)
    assert fast.flows["meta"].tolist() == slow.flows["meta"].tolist()
    pd.testing.assert_frame_equal(fast.servers, slow.servers)


def test_a_record_the_core_leaves_to_python_reads_as_before(tmp_path: Path) -> None:
    """Facts JSON can hold but the core cannot (an integer past 64 bits, NaN) come through `json.loads`,
    in their place among the records the core read."""
    records = [{"flow_id": i, "ts_start": 1.0 + i, "ts_end": 2.0 + i, "transport": "tcp", "src_ip": "10.0.0.1",
                "src_port": 40000 + i, "dst_ip": "10.0.0.2", "dst_port": 443, "orientation": "handshake",
                "protocol": "tls", "confidence": 0.9, "assigned": ["https"], "packets_c2s": 1, "packets_s2c": 1,
                "bytes_c2s": 10, "bytes_s2c": 20, "meta": meta, "findings": []}
               for i, meta in enumerate([{"sni": "a"}, {"big": 2**70}, {"x": float("nan")}, {"sni": "d\u2028"}])]
    path = tmp_path / "mixed.jsonl"
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    metas = portwatch.read(path).flows["meta"].tolist()
    assert metas[0] == {"sni": "a"} and metas[1] == {"big": 2**70} and metas[3] == {"sni": "d\\u2028"}
    assert list(metas[2]) == ["x"] and metas[2]["x"] != metas[2]["x"]  # NaN


def _read_csv_by_rows(path: Path) -> list[dict]:
    """What read() did with a flows CSV before it read it by columns: the oracle of the test below."""
    import csv
    import json

    from portwatch.api import _unformula
    from portwatch.report.schema import split_list

    with open(path, encoding="utf-8", newline="") as fh:
        rows = [{k: _unformula(v or "") for k, v in row.items() if k is not None} for row in csv.DictReader(fh)]
    out = []
    for r in rows:
        fid = r.get("flow_id") or None
        out.append({
            **{k: r.get(k) or None for k in ("community_id", "pcap", "state", "history")},
            "flow_id": int(fid) if fid and fid.isdigit() else fid, "ts_start": float(r["ts_start"]),
            "ts_end": float(r["ts_end"]), "duration": float(r["duration"]) if r.get("duration") else None,
            "transport": r["transport"], "src_ip": r["src_ip"], "dst_ip": r["dst_ip"], "orientation": r["orientation"],
            "protocol": r["protocol"], "src_port": int(r["src_port"]), "dst_port": int(r["dst_port"]),
            "confidence": float(r["confidence"]), "assigned": split_list(r["assigned"]),
            **{k: int(r[k]) for k in ("packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c")},
            "meta": json.loads(r.get("meta") or "{}"), "findings": json.loads(r.get("findings") or "[]"),
        })
    return out


def test_a_csv_read_by_columns_reads_as_a_dict_per_row_did(mixed_pcap: Path, tmp_path: Path) -> None:
    """Blank lines, a repeated column (its last copy counts), cells behind the formula guard, rows short
    of their last cells, a file of a header only: as `csv.DictReader` gives them."""
    import subprocess
    import sys

    from portwatch.frames import flows_frame

    out = tmp_path / "cli.csv"
    done = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "csv", "-o", str(out),
                           str(mixed_pcap)], capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    import csv
    import io

    header, *lines = out.read_text(encoding="utf-8").splitlines()

    def short(line: str) -> str:  # the row without its last cell (meta)
        text = io.StringIO()
        csv.writer(text, lineterminator="").writerow(next(csv.reader([line]))[:-1])
        return text.getvalue()

    variants = {
        "as written": [header, *lines],
        "blank lines": [header, "", *lines[:3], "", *lines[3:]],
        "repeated column": [header + ",protocol", *(line + ",'=x" for line in lines)],
        "short rows": [header, *(short(line) if i % 2 else line for i, line in enumerate(lines))],
        "header only": [header],
    }
    for name, rows in variants.items():
        path = tmp_path / f"{name}.csv"
        path.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
        pd.testing.assert_frame_equal(portwatch.read(path).flows, flows_frame(_read_csv_by_rows(path)), obj=name)
    assert set(portwatch.read(tmp_path / "repeated column.csv").flows["protocol"]) == {"=x"}
    assert (portwatch.read(tmp_path / "short rows.csv").flows["meta"].iloc[1::2] == {}).all()
