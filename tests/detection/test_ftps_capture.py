"""Explicit FTPS from vsftpd, curl and openssl s_client, and a refused AUTH (captures/ftps-21.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "ftps-21.pcap"


def test_a_login_inside_tls_is_none_and_one_after_a_refused_auth_is_in_clear() -> None:
    records, _ = analyze_path(CAPTURE)
    control = [r for r in records if r.dst_port == 21]
    assert len(control) == 3
    for r in control:
        # AUTH SSL (curl) or AUTH TLS (openssl) answered 234: USER and PASS went inside TLS
        assert (r.protocol, r.meta["upgraded_to"], r.findings) == ("ftp", "tls", [])
        assert "cleartext_login" not in r.meta
    # PROT P: the data connections are TLS; their EPSV replies were inside TLS, so nothing names them
    assert {r.protocol for r in records if r.dst_port == 50000} == {"tls"}
    # The server without TLS refuses both AUTHs (530): the client logs in in clear (RFC 4217 4)
    (plain,) = [r for r in records if r.dst_port == 2121]
    assert bytes.fromhex(plain.meta["client_head"]).startswith(b"AUTH SSL\r\nAUTH TLS\r\nUSER")
    assert plain.meta["cleartext_login"] is True and "upgraded_to" not in plain.meta
    assert ("insecure-protocol", "high") in {(f.kind, f.severity) for f in plain.findings}
    (data,) = [r for r in records if r.dst_port == 50001]
    assert data.protocol == "ftp-data" and data.meta["control_flow_id"] == plain.flow_id
