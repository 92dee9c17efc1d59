"""The closing summary and the servers inventory stay bounded whatever the capture holds: a
banner-grabbing scan has a finding at every server it reached, a busy server a client per flow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _kit import SERVICES, record, run
from pcapkit import ether, tcp_session, timed, write_pcap

from portwatch.model import Finding
from portwatch.report import servers, summary
from portwatch.report.servers import ServerInventory
from portwatch.report.summary import Summary


def finding(kind: str = "port-mismatch", severity: str = "high") -> Finding:
    return Finding(kind, severity, f"{kind} message")


def test_findings_past_the_last_line_are_counted_not_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary, "MAX_GROUPS", 3)
    s = Summary()
    for i in range(5):
        s.add(record(i, server=f"192.0.2.{i + 1}", findings=[finding(severity="medium")]))
    s.add(record(9, server="192.0.2.5", findings=[finding("tunnel", "high")]))  # unlisted, and the worst
    s.add(record(10, server="192.0.2.1", findings=[finding(severity="medium")]))  # a listed line goes on
    assert len(s.groups) == 3
    assert s.groups[("192.0.2.1", 443, "tcp", "port-mismatch", "ssh")].count == 2
    assert s.unlisted == {("port-mismatch", "medium"): 2, ("tunnel", "high"): 1}
    assert s.counts() == {("port-mismatch", "medium"): 6, ("tunnel", "high"): 1}
    assert s.reaches("high")
    assert s.unlisted_note() == ("3 more findings at servers past the first 3 lines are in the totals but not "
                                 "listed (each flow's record carries its findings)")
    assert Summary().unlisted_note() is None


def test_client_addresses_are_bounded_over_every_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary, "MAX_CLIENT_ADDRESSES", 4)
    s = Summary()
    for i in range(3):  # three clients at each of two servers: the budget runs out at the second
        for server in ("192.0.2.1", "192.0.2.2"):
            s.add(record(i, server=server, findings=[finding()]))
    s.add(record(0, server="192.0.2.2", findings=[finding()]))  # a client already held
    first, second = s.groups.values()
    assert s.client_addresses == 4
    assert len(first.clients) + len(second.clients) == 4
    assert first.clients_capped and second.clients_capped
    assert (first.count, second.count) == (3, 4)


def test_inventory_client_addresses_are_bounded_over_every_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "MAX_CLIENT_ADDRESSES", 3)
    inv = ServerInventory()
    for i in range(4):
        inv.add(record(i, server="192.0.2.1"))
    inv.add(record(0, server="192.0.2.2"))
    rows = {r["dst_ip"]: r for r in inv.rows()}
    assert inv.client_addresses == 3
    assert (rows["192.0.2.1"]["clients"], rows["192.0.2.1"]["clients_capped"]) == (3, True)
    assert (rows["192.0.2.2"]["clients"], rows["192.0.2.2"]["clients_capped"]) == (0, True)
    assert rows["192.0.2.1"]["flows"] == 4


def ssh_servers_on_443(tmp_path: Path, n: int) -> Path:
    """n SSH servers on 443 (each two findings: port-mismatch and tunnel)."""
    frames: list[bytes] = []
    for i in range(n):
        frames += tcp_session([b"SSH-2.0-OpenSSH_9.6\r\n"], [b"SSH-2.0-OpenSSH_8.4p1 Debian-5\r\n"],
                              sport=40000 + i, dport=443, server_first=True, server=f"10.1.1.{i + 1}")
    return write_pcap(tmp_path / "scan.pcap", timed([ether(f) for f in frames]))


def test_the_reports_say_what_they_did_not_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary, "MAX_GROUPS", 3)
    cap = ssh_servers_on_443(tmp_path, 4)
    note = "5 more findings at servers past the first 3 lines are in the totals but not listed"

    console = run("analyze", *SERVICES, str(cap))
    assert console.exit_code == 1, console.output  # high findings: --fail-on high
    assert note in " ".join(console.output.split())

    table = run("analyze", *SERVICES, "--findings-only", "--format", "jsonl", str(cap))
    assert table.exit_code == 1, table.output
    rows = [json.loads(line) for line in table.stdout.splitlines()]
    assert len(rows) == 3
    assert f"portwatch: note: {note}" in table.stderr

    records = run("analyze", *SERVICES, "--format", "jsonl", str(cap))
    kinds = [f["kind"] for line in records.stdout.splitlines() for f in json.loads(line)["findings"]]
    assert sorted(kinds) == ["port-mismatch"] * 4 + ["tunnel"] * 4  # every record keeps its findings


def test_the_notebook_summary_warns_of_what_it_did_not_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import portwatch

    monkeypatch.setattr(summary, "MAX_GROUPS", 2)
    analysis = portwatch.analyze(str(ssh_servers_on_443(tmp_path, 2)), services=SERVICES[1])
    with pytest.warns(UserWarning, match="2 more findings at servers past the first 2 lines"):
        table = analysis.summary()
    assert len(table) == 2
