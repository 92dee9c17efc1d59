"""OpenVPN 2.6 between two real peers (captures/openvpn-1194.pcap): every way a session opens."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "openvpn-1194.pcap"


def test_every_session_is_openvpn_whatever_wraps_its_control_channel() -> None:
    records, _ = analyze_path(CAPTURE)
    # In capture order: UDP plain, tls-crypt, tls-auth (HMAC-SHA256); TCP plain, tls-crypt.
    sessions = sorted(records, key=lambda r: r.ts_start)
    assert [(r.protocol, r.transport, r.dst_port) for r in sessions] == [("openvpn", "udp", 1194)] * 3 + [
        ("openvpn", "tcp", 1194)] * 2
    assert [r.meta["openvpn_tls_auth"] for r in sessions] == [False, True, True, False, True]
    assert {r.meta["openvpn_opcode"] for r in sessions} == {"hard-reset-client-v2"}
    # Each session's control channel was answered and its data channel carried keepalives.
    assert all(r.packets_s2c >= 8 and r.packets_c2s >= 8 for r in sessions)
    # 1194 is openvpn's in /etc/services: nothing to say about the ports.
    assert not [f for r in sessions for f in r.findings]
