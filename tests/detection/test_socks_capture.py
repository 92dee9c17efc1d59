"""SOCKS from dante and curl (captures/socks-1080.pcap): SOCKS 5 with and without an RFC 1929 login,
and SOCKS 4, each carrying HTTP to a server behind the proxy."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "socks-1080.pcap"
PASSWORD = b"pwcap-secret"  # captures/record.sh's throwaway account


def client_payloads() -> list[bytes]:
    """The client's TCP payloads, read by dpkt (the oracle)."""
    out = []
    with CAPTURE.open("rb") as fh:
        for _, frame in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(frame).data
            if isinstance(ip.data, dpkt.tcp.TCP) and ip.data.dport == 1080 and ip.data.data:
                out.append(bytes(ip.data.data))
    return out


def test_dante_sessions_name_their_version_login_target_and_what_they_carry() -> None:
    records, _ = analyze_path(CAPTURE)
    flows = sorted(records, key=lambda r: r.ts_start)
    assert [(r.protocol, r.meta["socks_version"]) for r in flows] == [("socks", 5), ("socks", 5), ("socks", 4)]
    assert [r.meta.get("socks_auth") for r in flows] == ["none", "password", None]
    assert {r.meta["socks_target"] for r in flows} == {"10.77.0.1:8080"}
    # What rode inside, from the bytes after both sides' handshakes: curl's GET and the answer.
    assert [r.meta["tunnel_protocol"] for r in flows] == ["http"] * 3
    assert [f for r in (flows[0], flows[2]) for f in r.findings] == []


def test_an_rfc1929_login_is_reported_and_its_password_kept_nowhere() -> None:
    assert any(PASSWORD in p for p in client_payloads())  # it did cross, in clear
    records, _ = analyze_path(CAPTURE)
    login = next(r for r in records if r.meta.get("socks_auth") == "password")
    assert login.meta["cleartext_login"] is True
    assert [(f.kind, f.severity) for f in login.findings] == [("insecure-protocol", "high")]
    # The head is the greeting alone (version 5, three methods: none, GSSAPI, password).
    assert login.meta["client_head"] == "0503000102"
    text = repr(login.as_dict())
    assert "pwcap-secret" not in text and PASSWORD.hex() not in text
