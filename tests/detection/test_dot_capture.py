"""DNS over TLS from unbound and kdig (captures/dot-853.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "dot-853.pcap"


def test_both_queries_are_tls_on_domain_s_offering_alpn_dot() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.assigned, r.findings) for r in records] == [("tls", 853, ["domain-s"], [])] * 2
    for r in records:
        assert r.meta["alpn"] == ["dot"] and r.meta["tls_version_server"] == "1.3"
    # kdig's opportunistic profile names no server; the strict one sends the name it checks
    assert [r.meta.get("sni") for r in records] == [None, "pwsrv.example.test"]
