"""NATS from nats-server and a client speaking the NATS text protocol (captures/nats-4222.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "nats-4222.pcap"

def test_subscriber_and_publisher_are_nats_from_the_servers_info() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.state) for r in records] == [("nats", 4222, "SF")] * 2
    for r in records:
        # the server speaks first (INFO), the client answers CONNECT
        assert bytes.fromhex(r.meta["server_head"]).startswith(b"INFO {")
        assert bytes.fromhex(r.meta["client_head"]).startswith(b"CONNECT {")
        # Debian's /etc/services has no 4222: the inventory note, nothing above info
        assert [(f.kind, f.severity) for f in r.findings] == [("unassigned-port", "info")]
