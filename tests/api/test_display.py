"""A hostile banner (HTML and ANSI escapes) stays inert in every view of an Analysis."""

from __future__ import annotations

from pathlib import Path

import pytest

import portwatch
from portwatch.frames import flows_frame

SANITISED_BANNER = r"SSH-2.0-OpenSSH_9.2 <script>alert(1)</script>\x1b[31mred\x1b]0;pwned\x07"


@pytest.fixture(scope="module")
def analysed(mixed_pcap: Path) -> portwatch.Analysis:
    return portwatch.analyze(mixed_pcap, progress=False)


def test_html_repr_escapes_every_value(analysed: portwatch.Analysis) -> None:
    page = analysed._repr_html_()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
    assert "\x1b" not in page and "\x07" not in page
    assert "tunnel" in page and "10.9.0.1:443" in page


def test_dataframe_text_stays_sanitised(analysed: portwatch.Analysis) -> None:
    ssh = analysed.flows[analysed.flows["dst_port"] == 443].iloc[0]
    assert ssh["meta"]["ssh_server"] == SANITISED_BANNER
    messages = analysed.findings.loc[analysed.findings["dst_port"] == 443, "message"]
    assert all(SANITISED_BANNER in m for m in messages)
    assert analysed.servers.set_index("server").loc["10.9.0.1:443", "identity"] == SANITISED_BANNER
    for frame in (analysed.flows, analysed.findings, analysed.servers, analysed.summary()):
        text = frame.to_string()
        assert "\x1b" not in text and "\x07" not in text


def test_plain_repr(analysed: portwatch.Analysis) -> None:
    counts = analysed.findings["severity"].value_counts()
    sev = ", ".join(f"{s} {counts[s]}" for s in ("high", "medium", "low", "info") if counts[s])
    expected = f"<Analysis: 5 flows from mixed.pcap, {len(analysed.findings)} findings ({sev}), 5 servers>"
    assert counts["high"] >= 3 and counts["medium"] >= 1
    assert repr(analysed) == expected


def test_foreign_records_are_sanitised_on_the_way_in() -> None:
    """A jsonl file not written by portwatch cannot put raw control characters into a notebook."""
    rec = {"pcap": "x\x1b[2J.pcap", "ts_start": 1.0, "ts_end": 2.0, "transport": "tcp", "src_ip": "10.0.0.2",
           "src_port": 1, "dst_ip": "10.0.0.1", "dst_port": 443, "orientation": "handshake", "protocol": "ssh",
           "confidence": 1.0, "assigned": ["https"], "packets_c2s": 1, "packets_s2c": 1, "bytes_c2s": 1,
           "bytes_s2c": 1, "meta": {"banner": "<b>\x1b[5mhi\u202e"},
           "findings": [{"kind": "tunnel", "severity": "high", "message": "<img src=x onerror=alert(1)>\x1b[0m"}]}
    a = portwatch.Analysis(flows_frame([rec]))
    assert a.flows["pcap"].iloc[0] == r"x\x1b[2J.pcap"
    assert a.flows["meta"].iloc[0]["banner"] == r"<b>\x1b[5mhi\u202e"
    assert a.findings["message"].iloc[0] == r"<img src=x onerror=alert(1)>\x1b[0m"
    page = a._repr_html_()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
