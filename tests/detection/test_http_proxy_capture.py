"""An HTTP forward proxy: tinyproxy in front of nginx, curl through it (captures/http-proxy-3128.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "http-proxy-3128.pcap"


def test_a_head_relayed_a_line_per_segment_still_names_the_server() -> None:
    records, _ = analyze_path(CAPTURE)
    get = records[0]
    assert (get.meta["http_method"], get.meta["http_path"]) == ("GET", "http://10.77.0.1/")
    # tinyproxy sends the status line, Via and Server in segments of their own
    assert get.meta["http_status"] == 200 and get.meta["http_server"] == "nginx/1.22.1"


def test_only_an_accepted_connect_is_a_tunnel() -> None:
    records, _ = analyze_path(CAPTURE)
    _, opened, refused = records
    assert (opened.meta["http_connect_target"], opened.meta["http_status"]) == ("10.77.0.1:443", 200)
    assert opened.meta["tunnel_protocol"] == "tls"
    assert [(f.kind, f.severity) for f in opened.findings if f.kind == "tunnel"] == [("tunnel", "info")]
    # RFC 9110 9.3.6: the 403 made no tunnel; an attempt at port 25 is noted, low
    assert (refused.meta["http_connect_target"], refused.meta["http_status"]) == ("10.77.0.1:25", 403)
    assert "tunnel_protocol" not in refused.meta
    (tunnel,) = [f for f in refused.findings if f.kind == "tunnel"]
    assert tunnel.severity == "low" and "refused CONNECT to 10.77.0.1:25 (status 403)" in tunnel.message
