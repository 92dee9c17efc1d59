"""Issue 18 item 2: Analysis.summary() (and the HTML view) agrees with the console: SSH and HTTP on
one server are two rows with their own flow counts, from one aggregation."""

from __future__ import annotations

import json

from _kit import CAPTURES, SERVICES, run, squash

import portwatch
import portwatch.api
import portwatch.frames
from portwatch.report.findings import plural


def test_summary_keeps_two_protocols_on_one_server_apart():
    a = portwatch.analyze(CAPTURES, services=SERVICES[1], progress=False)
    s = a.summary()
    pm = s[(s.kind == "port-mismatch") & (s.dst_port == 443) & (s.dst_ip == "10.77.0.1")]
    assert dict(zip(pm.protocol.astype(str), pm.flows, strict=True)) == {"ssh": 1, "http": 2}


def test_summary_equals_the_console_and_findings_only():
    a = portwatch.analyze(CAPTURES, services=SERVICES[1], progress=False)
    console = squash(run("analyze", *SERVICES, "--all", str(CAPTURES)).stdout)
    for row in a.summary().itertuples():
        head = f"{row.kind} {row.server}/{row.transport} {row.protocol} {plural(row.flows, 'flow')}"
        assert head in console
    table = run("analyze", *SERVICES, "--findings-only", "--format", "jsonl", str(CAPTURES)).stdout
    rows = [json.loads(line) for line in table.splitlines()]
    assert [(r["kind"], r["dst_port"], r["protocol"], r["flows"]) for r in rows] == [
        (r.kind, r.dst_port, r.protocol, r.flows) for r in a.summary().itertuples()]


def test_html_view_has_the_separate_rows():
    a = portwatch.analyze(CAPTURES / "ssh-443.pcap", services=SERVICES[1], progress=False)
    a2 = portwatch.analyze(CAPTURES / "http-on-443.pcap", services=SERVICES[1], progress=False)
    both = portwatch.api.Analysis(portwatch.frames.flows_frame(
        portwatch.frames.frame_records(a.flows) + portwatch.frames.frame_records(a2.flows)))
    html = both._repr_html_()
    assert "<td>ssh</td>" in html and "<td>http</td>" in html
