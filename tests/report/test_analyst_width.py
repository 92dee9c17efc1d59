"""Issue 18 items 9 and 10: every console view fits 80 columns with each finding's kind, severity,
server and message readable; totals per kind and severity; the top N (--all for every one);
thousands separators; "1 flow"."""

from __future__ import annotations

import io

import pytest
from _kit import CAPTURES, SERVICES, record, run, squash
from rich.console import Console

from portwatch.model import CaptureStats, Finding
from portwatch.report.console import render
from portwatch.report.findings import render_findings
from portwatch.report.servers import ServerInventory, render_servers
from portwatch.report.summary import Summary

LONG = ("a message long enough to wrap more than once at eighty columns, quoting a banner "
        "[bold]not markup[/] and naming 2001:db8:ffff:ffff:ffff:ffff:ffff:1 as the server it saw")


def _summary() -> Summary:
    s = Summary()
    kinds = [("tunnel", "high"), ("port-mismatch", "medium"), ("unassigned-port", "info"),
             ("cleartext-on-secure-port", "low")]
    for i in range(40):
        kind, sev = kinds[i % 4]
        server = "2001:db8:ffff:ffff:ffff:ffff:ffff:1" if i % 5 == 0 else f"192.0.2.{i}"
        for j in range(1 + i % 3):
            s.add(record(i * 10 + j, server=server, port=40000 + i, findings=[Finding(kind, sev, f"{LONG} #{i}")]))
    return s


def _render(fn, width: int = 80) -> str:
    buf = io.StringIO()
    fn(Console(file=buf, width=width, highlight=False, soft_wrap=False, color_system=None))
    return buf.getvalue()


def _check(text: str, groups, width: int = 80) -> None:
    assert max(len(line) for line in text.splitlines()) <= width
    flat = squash(text)
    for g in groups:
        for part in (g.kind, g.severity.upper(), f"{g.server}/{g.transport}", squash(g.message)):
            assert part in flat, part


def test_console_report_fits_80_columns_with_all():
    s = _summary()
    text = _render(lambda c: render(c, s, CaptureStats(packets=1234567), ["a.pcap"], top=None))
    _check(text, s.sorted_groups())


def test_findings_only_console_fits_80_columns():
    s = _summary()
    text = _render(lambda c: render_findings(c, s.sorted_groups(), s.counts()))
    _check(text, s.sorted_groups())


def test_servers_console_fits_80_columns():
    inv = ServerInventory()
    for i in range(30):
        inv.add(record(i, server="2001:db8:ffff:ffff:ffff:ffff:ffff:1" if i % 3 == 0 else f"198.51.100.{i}",
                       port=1000 + i, assigned=["very-long-service-name", "alias"]))
    rows = inv.rows()
    text = _render(lambda c: render_servers(c, rows))
    assert max(len(line) for line in text.splitlines()) <= 80
    for r in rows:
        ip = f"[{r['dst_ip']}]" if ":" in r["dst_ip"] else r["dst_ip"]
        assert f"{ip}:{r['dst_port']}/tcp" in text  # never cut
    assert "2026-09-21 14:13:20 .. 14:13:50 UTC" in text  # the time range, above the table
    wide = _render(lambda c: render_servers(c, rows), width=160)
    assert "first seen" in wide and max(len(line) for line in wide.splitlines()) <= 160


@pytest.mark.parametrize("args", [[], ["--findings-only"], ["--servers"], ["--all"]])
def test_cli_views_fit_columns_80(args):
    res = run("analyze", *SERVICES, *args, str(CAPTURES))
    assert res.exit_code == 1
    assert max(len(line) for line in res.stdout.splitlines()) <= 80


def test_totals_per_kind_and_severity_and_top_n():
    s = _summary()
    text = _render(lambda c: render(c, s, CaptureStats(packets=1234567), ["a.pcap"]), width=100)
    assert "Findings per kind and severity" in text
    totals = text[text.index("Findings per kind and severity"):]
    total_line = next(line for line in totals.splitlines() if "total" in line and "│" in line and "kind" not in line)
    assert total_line.split("│")[-2].strip() == "79"  # 40 servers, 1-3 flows each: 79 flows with findings
    shown = text[:text.index("Findings per kind and severity")]
    assert shown.count("#") == 20  # the top 20 of 40
    assert "20 more findings" in text and "--all" in text
    every = _render(lambda c: render(c, s, CaptureStats(packets=1), ["a.pcap"], top=None), width=100)
    assert every[:every.index("Findings per kind")].count("#") == 40


def test_thousands_and_singular():
    s = Summary()
    s.add(record(1, findings=[Finding("tunnel", "high", "m")]))
    text = _render(lambda c: render(c, s, CaptureStats(packets=1234567), ["a.pcap"]))
    assert "1 flow " in text or "1 flow\n" in text
    assert "1 flows" not in text
    assert "1,234,567 packets, 1 flow from a.pcap" in text
