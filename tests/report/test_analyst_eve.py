"""Issue 18 item 7: --format eve writes Suricata-EVE-compatible lines (checked against a JSON schema
of EVE's fields), --format parquet and sqlite work for analyze, and formats live in one registry."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import jsonschema
import pytest
from _kit import CAPTURES, SERVICES, record, run

import portwatch
import portwatch.cli
from portwatch.model import Finding
from portwatch.report import eve, sinks

SCHEMA = json.loads((Path(__file__).parent / "eve-schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def _events(*paths: str) -> list[dict]:
    res = run("analyze", *SERVICES, "--format", "eve", *paths)
    assert res.exit_code in (0, 1), res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_every_line_of_every_capture_validates():
    events = _events(str(CAPTURES))
    assert events
    for e in events:
        VALIDATOR.validate(e)
    assert {e["event_type"] for e in events} == {"alert", "flow"}


def test_alerts_and_flows_carry_the_findings_and_records():
    events = _events(str(CAPTURES / "ssh-443.pcap"))
    flows = [e for e in events if e["event_type"] == "flow"]
    alerts = [e for e in events if e["event_type"] == "alert"]
    recs = [json.loads(x) for x in run("analyze", *SERVICES, "--format", "jsonl",
                                       str(CAPTURES / "ssh-443.pcap")).stdout.splitlines()]
    assert len(flows) == len(recs)
    assert sum(len(r["findings"]) for r in recs) == len(alerts)
    by_id = {r["flow_id"]: r for r in recs}
    for f in flows:
        r = by_id[f["flow_id"]]
        assert (f["src_ip"], f["src_port"], f["dest_ip"], f["dest_port"]) == (
            r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"])
        assert f["community_id"] == r["community_id"]
        assert f["flow"]["bytes_toserver"] == r["bytes_c2s"] and f["flow"]["pkts_toclient"] == r["packets_s2c"]
    tunnel = next(a for a in alerts if a["alert"]["category"] == "tunnel")
    assert tunnel["alert"]["severity"] == 1 and tunnel["alert"]["action"] == "allowed"
    assert tunnel["app_proto"] == "ssh" and tunnel["dest_port"] == 443 and tunnel["proto"] == "TCP"


@pytest.mark.parametrize(("severity", "eve_severity"), [("high", 1), ("medium", 2), ("low", 3), ("info", 3)])
def test_severity_mapping(severity, eve_severity):
    (alert, _flow) = eve.events(record(findings=[Finding("port-mismatch", severity, "m")]))
    assert alert["alert"]["severity"] == eve_severity
    VALIDATOR.validate(alert)


def test_timestamp_has_microseconds_and_offset():
    assert eve.timestamp(1_790_000_000.25) == "2026-09-21T14:13:20.250000+0000"


def test_read_turns_eve_back_into_the_records(tmp_path):
    out = tmp_path / "eve.json"
    run("analyze", *SERVICES, "--format", "eve", "-o", str(out), str(CAPTURES / "ssh-443.pcap"))
    back = portwatch.read(out)
    direct = portwatch.analyze(CAPTURES / "ssh-443.pcap", services=SERVICES[1], progress=False)
    cols = ["flow_id", "community_id", "src_ip", "dst_port", "protocol", "bytes_c2s", "state", "history"]
    assert back.flows[cols].equals(direct.flows[cols])
    assert list(back.findings.kind) == list(direct.findings.kind)


@pytest.mark.parametrize("fmt", ["parquet", "sqlite"])
def test_parquet_and_sqlite_for_analyze(tmp_path, fmt):
    out = tmp_path / f"flows.{fmt}"
    res = run("analyze", *SERVICES, "--format", fmt, "-o", str(out), str(CAPTURES / "ssh-443.pcap"))
    assert res.exit_code == 1, res.stderr
    a = portwatch.read(out)
    direct = portwatch.analyze(CAPTURES / "ssh-443.pcap", services=SERVICES[1], progress=False)
    assert list(a.flows.columns) == list(direct.flows.columns)
    assert list(a.flows.community_id) == list(direct.flows.community_id)
    if fmt == "sqlite":
        db = sqlite3.connect(out)
        assert db.execute("SELECT count(*) FROM findings").fetchone()[0] == len(direct.findings)


def test_binary_formats_need_a_file():
    res = run("analyze", *SERVICES, "--format", "parquet", str(CAPTURES / "ssh-443.pcap"))
    assert res.exit_code == 2 and "-o" in res.stderr


def test_one_registry_drives_the_cli_choices():
    choices = next(p for p in portwatch.cli.analyze.params if p.name == "fmt").type.choices
    assert tuple(choices) == ("console", *sinks.SINKS)
    assert {"jsonl", "csv", "eve", "parquet", "sqlite"} <= set(sinks.SINKS)


def test_every_finding_kind_has_its_own_fixed_signature_id():
    from portwatch.model import FINDING_KINDS

    ids = [eve.signature_id(k) for k in FINDING_KINDS]
    assert len(set(ids)) == len(ids)
    assert eve.signature_id("port-mismatch") == 9_100_001 and eve.signature_id("tunnel") == 9_100_002


def test_a_flow_event_time_is_read_with_its_offset_and_refused_without() -> None:
    from portwatch.report.eve import from_event

    def event(start: str) -> dict:
        return {"event_type": "flow", "portwatch": {}, "proto": "TCP", "src_ip": "10.0.0.1", "src_port": 1,
                "dest_ip": "10.0.0.2", "dest_port": 2, "flow": {"start": start, "end": "2024-05-14T10:00:01.5+0000"}}

    rec = from_event(event("2024-05-14T12:00:00.000001+0200"))
    assert rec is not None and rec["ts_start"] == 1715680800.000001 and rec["ts_end"] == 1715680801.5
    with pytest.raises(ValueError, match="offset"):
        from_event(event("2024-05-14T10:00:00.000001"))  # no zone: not this machine's to guess
