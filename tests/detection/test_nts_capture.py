"""Network Time Security between two chronyd (captures/nts-4460.pcap): NTS-KE over TLS 1.3 on
4460, then NTP with NTS extension fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "nts-4460.pcap"


def test_nts_ke_is_tls_on_its_own_port_and_no_tunnel_shape() -> None:
    records, _ = analyze_path(CAPTURE)
    (ke,) = [r for r in records if r.transport == "tcp"]
    assert (ke.protocol, ke.dst_port, ke.meta["alpn"]) == ("tls", 4460, ["ntske/1"])
    assert not ke.findings  # /etc/services: 4460/tcp ntske, which tls.toml lists
    inside = ke.meta["tunnel_contents"]
    assert inside["kind"] == "unknown" and "ALPN" in inside["evidence"]


def test_chronys_data_minimised_requests_are_ntp_with_nts_fields() -> None:
    records, _ = analyze_path(CAPTURE)
    ntp = [r for r in records if r.transport == "udp"]
    assert len(ntp) == 3
    for r in ntp:
        assert (r.protocol, r.meta["ntp_mode"], r.meta["ntp_mode_server"]) == ("ntp", "client", "server")
        assert r.meta["ntp_nts"] is True
        assert "client bytes" in r.meta["evidence"] and "server bytes" in r.meta["evidence"]
