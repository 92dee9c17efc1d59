"""AMQP 0-9-1 from RabbitMQ and amqp-tools (captures/amqp-5672.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "amqp-5672.pcap"

def test_every_connection_is_amqp_with_its_plain_login_in_clear() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.assigned) for r in records] == [("amqp", 5672, ["amqp"])] * 4
    for r in records:
        assert bytes.fromhex(r.meta["client_head"]).startswith(b"AMQP\x00\x00\x09\x01")
        assert (r.meta["amqp_version"], r.meta["amqp_method_server"]) == ("0-9-1", "10.10")  # Connection.Start
        # Start-Ok's PLAIN response (\0guest\0guest) crossed without TLS; it is not kept
        assert r.meta["cleartext_login"] is True
        assert b"guest" not in bytes.fromhex(r.meta["client_head"])
        assert [(f.kind, f.severity) for f in r.findings] == [("insecure-protocol", "high")]
        # RabbitMQ resets the connection after the client's FIN (its default linger)
        assert r.state == "RSTR"
