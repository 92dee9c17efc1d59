"""WireGuard between two wireguard-go peers (captures/wireguard-51820.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "wireguard-51820.pcap"

def test_each_session_is_wireguard_from_its_handshake_messages() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.transport, r.dst_port, r.orientation) for r in records] == [
        ("wireguard", "udp", 51820, "handshake")] * 2
    for r in records:
        # the initiator is the client, the responder answers (message types 1 and 2)
        assert (r.meta["wireguard_message"], r.meta["wireguard_message_server"]) == ("initiation", "response")
        assert bytes.fromhex(r.meta["client_head"])[:4] == b"\x01\x00\x00\x00"
        assert [(f.kind, f.severity) for f in r.findings] == [("unassigned-port", "info")]
    # the keepalive session's client sends more than it receives: empty transport data messages
    assert max(r.packets_c2s - r.packets_s2c for r in records) >= 3
