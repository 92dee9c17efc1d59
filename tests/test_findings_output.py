"""Findings table, servers inventory and baselines: the CLI and the functions behind it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from portwatch.baseline import BaselineError, inventory, load_baseline
from portwatch.cli import main
from portwatch.model import Finding, FlowRecord
from portwatch.report.findings import write_findings
from portwatch.report.servers import MAX_CLIENTS, ServerInventory
from portwatch.report.summary import Summary
from portwatch.services import fallback_path

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
SERVICES = ["--services", str(fallback_path())]


def need(*names: str) -> list[str]:
    paths = [CAPTURES / n for n in names]
    for p in paths:
        if not p.exists():
            pytest.skip(f"{p.name} not recorded yet")
    return [str(p) for p in paths]


def flow(i: int, *, server: str = "192.0.2.1", port: int = 443, client: str | None = None,
         findings: list[Finding] | None = None, protocol: str = "ssh") -> FlowRecord:
    return FlowRecord(
        ts_start=1000.0 + i, ts_end=1001.0 + i, transport="tcp", src_ip=client or f"10.0.{i // 250}.{i % 250}",
        src_port=40000 + i % 20000, dst_ip=server, dst_port=port, orientation="handshake", protocol=protocol,
        confidence=0.95, assigned=["https"], packets_c2s=5, packets_s2c=5, bytes_c2s=100, bytes_s2c=200,
        findings=list(findings or []),
    )


# ---- deduplicated findings ------------------------------------------------------------------

def test_500_sessions_to_one_server_are_one_line_with_count_and_first_last_seen() -> None:
    s = Summary()
    for i in range(500):
        s.add(flow(i, findings=[Finding("tunnel", "high", "SSH on 443"), Finding("port-mismatch", "high", "x")]))
    s.add(flow(0, server="192.0.2.2", findings=[Finding("port-mismatch", "low", "y")]))
    groups = s.sorted_groups()
    assert [(g.server, g.kind, g.count) for g in groups][:2] in (
        [("192.0.2.1:443", "port-mismatch", 500), ("192.0.2.1:443", "tunnel", 500)],
        [("192.0.2.1:443", "tunnel", 500), ("192.0.2.1:443", "port-mismatch", 500)],
    )
    assert groups[-1].severity == "low"  # sorted by severity, worst first
    top = groups[0]
    assert (top.first_seen, top.last_seen) == (1000.0, 1500.0)
    assert len(top.clients) == 500


def test_findings_table_as_jsonl_and_csv() -> None:
    s = Summary()
    s.add(flow(1, findings=[Finding("tunnel", "high", "=HYPERLINK(evil)")]))
    out = io.StringIO()
    write_findings(s.sorted_groups(), "jsonl", out)
    row = json.loads(out.getvalue())
    assert row["kind"] == "tunnel" and row["flows"] == 1 and (row["dst_ip"], row["dst_port"]) == ("192.0.2.1", 443)
    assert row["clients"] == 1 and row["clients_capped"] is False
    out = io.StringIO()
    write_findings(s.sorted_groups(), "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["message"].startswith("'=")  # formula injection neutralised


# ---- servers inventory ----------------------------------------------------------------------

def test_inventory_is_bounded_by_servers_not_flows() -> None:
    inv = ServerInventory()
    for i in range(MAX_CLIENTS + 50):
        inv.add(flow(i))
    inv.add(flow(1, protocol="unknown"))
    inv.add(flow(2, port=8443))
    rows = inv.rows()
    assert len(rows) == 2
    big = next(r for r in rows if r["dst_port"] == 443)
    assert big["flows"] == MAX_CLIENTS + 51 and big["clients"] == MAX_CLIENTS and big["clients_capped"]
    assert big["protocols"] == ["ssh", "unknown"] and big["assigned"] == ["https"]
    assert big["bytes_s2c"] == 200 * (MAX_CLIENTS + 51)


def test_a_flow_the_server_never_answered_makes_no_server() -> None:
    inv = ServerInventory()
    rec = flow(1)
    rec.bytes_s2c = rec.bytes_c2s = 0  # SYN answered by RST
    inv.add(rec)
    assert inv.rows() == []


def test_inventory_api_and_cli_on_real_captures() -> None:
    paths = need("ssh-443.pcap", "ftp-21.pcap")
    rows = inventory(paths)
    by_port = {(r["dst_ip"], r["dst_port"]): r for r in rows}
    assert by_port[("10.77.0.1", 443)]["protocols"] == ["ssh"]
    assert by_port[("10.77.0.1", 443)]["assigned"] == ["https"]
    assert by_port[("10.77.0.1", 21)]["protocols"] == ["ftp"] and by_port[("10.77.0.1", 21)]["clients"] == 1
    assert ("10.77.0.1", 50000) in by_port
    res = CliRunner().invoke(main, ["analyze", "--servers", "--format", "jsonl", *SERVICES, *paths])
    assert res.exit_code == 1, res.output  # ssh on 443 reaches --fail-on high
    lines = [json.loads(x) for x in res.output.splitlines()]
    assert {(r["dst_ip"], r["dst_port"]) for r in lines} == set(by_port)
    res = CliRunner().invoke(main, ["analyze", "--servers", *SERVICES, *paths])
    assert "10.77.0.1:443/tcp" in res.output and "https" in res.output


# ---- CLI: --findings-only, --format jsonl stays per flow ---------------------------------------

def test_findings_only_writes_the_deduplicated_table() -> None:
    paths = need("ssh-443.pcap", "tls-22.pcap")
    res = CliRunner().invoke(main, ["analyze", "--findings-only", "--format", "jsonl", *SERVICES, *paths])
    rows = [json.loads(x) for x in res.output.splitlines()]
    assert {(r["dst_ip"], r["dst_port"], r["kind"]) for r in rows} == {
        ("10.77.0.1", 443, "tunnel"), ("10.77.0.1", 443, "port-mismatch"), ("10.77.0.1", 22, "port-mismatch")}
    assert all(r["severity"] == "high" for r in rows)
    tls = next(r for r in rows if (r["dst_ip"], r["dst_port"]) == ("10.77.0.1", 22))
    assert tls["flows"] == 2  # two TLS sessions to 22, one line
    res = CliRunner().invoke(main, ["analyze", "--findings-only", "--format", "csv", *SERVICES, *paths])
    assert res.output.splitlines()[0].startswith("severity,kind,dst_ip,dst_port,transport,protocol,flows")
    res = CliRunner().invoke(main, ["analyze", "--findings-only", *SERVICES, *paths])
    assert "tunnel" in res.output and "10.77.0.1:443/tcp" in res.output


def test_jsonl_stays_one_record_per_flow() -> None:
    paths = need("tls-22.pcap")
    res = CliRunner().invoke(main, ["analyze", "--format", "jsonl", *SERVICES, *paths])
    recs = [json.loads(x) for x in res.output.splitlines()]
    assert len(recs) == 2 and all(r["findings"][0]["kind"] == "port-mismatch" for r in recs)


def test_servers_and_findings_only_are_exclusive() -> None:
    res = CliRunner().invoke(main, ["analyze", "--servers", "--findings-only", *need("ssh-22.pcap")])
    assert res.exit_code == 2 and "give one" in res.output


def test_bad_policy_file_is_a_one_line_error_with_exit_2(tmp_path: Path) -> None:
    pol = tmp_path / "p.toml"
    pol.write_text('[severity]\ntunel = "high"\n')
    res = CliRunner().invoke(main, ["analyze", "--policy", str(pol), *need("ssh-22.pcap")])
    assert res.exit_code == 2
    assert f"{pol}:2: severity.tunel: unknown finding kind" in res.output


def test_policy_allow_silences_a_finding_from_the_cli(tmp_path: Path) -> None:
    pol = tmp_path / "p.toml"
    pol.write_text('[[allow]]\nprotocol = "ssh"\nport = 443\nhosts = ["10.77.0.1"]\n')
    res = CliRunner().invoke(main, ["analyze", "--findings-only", "--format", "jsonl", "--policy", str(pol),
                                    *SERVICES, *need("ssh-443.pcap")])
    assert res.exit_code == 0 and res.output == ""


# ---- baselines ------------------------------------------------------------------------------

def test_baseline_save_then_new_service_for_what_it_lacks(tmp_path: Path) -> None:
    base = tmp_path / "baseline.json"
    known = need("ssh-22.pcap", "http-80.pcap")
    res = CliRunner().invoke(main, ["baseline", "save", *SERVICES, *known, "-o", str(base)])
    assert res.exit_code == 0, res.output
    doc = json.loads(base.read_text())
    assert doc["portwatch_baseline"] == 1
    assert {(s["dst_port"], tuple(s["protocols"])) for s in doc["servers"]} >= {(22, ("ssh",)), (80, ("http",))}

    # the same traffic again: nothing new
    res = CliRunner().invoke(main, ["analyze", "--findings-only", "--format", "jsonl", "--baseline", str(base),
                                    *SERVICES, *known])
    assert res.exit_code == 0 and res.output == ""

    # a server that appeared since: sshd on 443
    res = CliRunner().invoke(main, ["analyze", "--findings-only", "--format", "jsonl", "--baseline", str(base),
                                    *SERVICES, *need("ssh-443.pcap")])
    rows = [json.loads(x) for x in res.output.splitlines()]
    new = [r for r in rows if r["kind"] == "new-service"]
    assert len(new) == 1 and (new[0]["dst_ip"], new[0]["dst_port"]) == ("10.77.0.1", 443)
    assert "baseline.json" in new[0]["message"]


def test_announced_data_connections_are_not_new_services(tmp_path: Path) -> None:
    # the FTP server is in the baseline; its data connections (ftp-data on negotiated ports) are not servers
    base = tmp_path / "b.json"
    base.write_text(json.dumps({"portwatch_baseline": 1, "servers": [
        {"server_ip": "10.77.0.1", "port": 21, "transport": "tcp", "protocols": ["ftp"]}]}))
    res = CliRunner().invoke(main, ["analyze", "--findings-only", "--format", "jsonl", "--baseline", str(base),
                                    *SERVICES, *need("ftp-pasv-21.pcap", "ftp-active-21.pcap")])
    assert "new-service" not in {json.loads(x)["kind"] for x in res.output.splitlines()}


def test_new_protocol_on_a_known_endpoint_is_new_service(tmp_path: Path) -> None:
    base = tmp_path / "b.json"
    base.write_text(json.dumps({"portwatch_baseline": 1, "servers": [
        {"server_ip": "10.77.0.1", "port": 22, "transport": "tcp", "protocols": ["ssh"]}]}))
    res = CliRunner().invoke(main, ["analyze", "--findings-only", "--format", "jsonl", "--baseline", str(base),
                                    *SERVICES, *need("tls-22.pcap")])
    rows = {json.loads(x)["kind"]: json.loads(x) for x in res.output.splitlines()}
    assert "now speaks tls" in rows["new-service"]["message"]


def test_bad_baseline_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(BaselineError, match="not a portwatch baseline"):
        load_baseline(bad)
    res = CliRunner().invoke(main, ["analyze", "--baseline", str(bad), *need("ssh-22.pcap")])
    assert res.exit_code == 2 and "bad.json" in res.output


@pytest.mark.parametrize("fmt", ["console", "jsonl", "csv", "eve"])
def test_exit_status_follows_the_worst_finding_in_every_format(fmt: str, tmp_path: Path) -> None:
    # A record format writes no closing report and its summary keeps only the worst severity
    # (`Summary.add_worst`); the exit status must not tell the difference.
    capture = need("telnet-23.pcap")  # worst finding: medium (cleartext login service)
    out = tmp_path / f"out.{fmt}"
    for fail_on, status in (("low", 1), ("medium", 1), ("high", 0)):
        res = CliRunner().invoke(main, ["analyze", "--format", fmt, "--fail-on", fail_on, "-o", str(out), "--quiet",
                                        *SERVICES, *capture])
        assert res.exit_code == status, (fail_on, res.output)


def test_summary_add_worst_keeps_the_worst_severity_only() -> None:
    full, worst = Summary(), Summary()
    recs = [flow(1, findings=[Finding("tunnel", "low", "a")]), flow(2),
            flow(3, findings=[Finding("port-mismatch", "high", "b"), Finding("unassigned-port", "info", "c")]),
            flow(4, findings=[Finding("tunnel", "medium", "d")])]
    for rec in recs:
        full.add(rec)
        worst.add_worst(rec)
    assert worst.max_severity == full.max_severity == "high"
    assert all(worst.reaches(s) == full.reaches(s) for s in ("info", "low", "medium", "high"))
    assert worst.groups == {} and Summary().max_severity is None
