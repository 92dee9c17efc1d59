"""STOMP 1.2 from RabbitMQ's rabbitmq_stomp and a STOMP client (captures/stomp-61613.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "stomp-61613.pcap"

def test_connects_are_stomp_logins_in_clear_and_a_refusal_is_stomp_too() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.state) for r in records] == [("stomp", 61613, "SF")] * 3
    heads = [bytes.fromhex(r.meta["server_head"]) for r in records]
    assert [h.split(b"\n", 1)[0] for h in heads] == [b"CONNECTED", b"CONNECTED", b"ERROR"]
    for r in records:
        # the ERROR frame answering a wrong passcode is the server's evidence as CONNECTED is
        assert "server bytes" in r.meta["evidence"]
        assert r.meta["cleartext_login"] is True
        kinds = {(f.kind, f.severity) for f in r.findings}
        assert kinds == {("insecure-protocol", "high"), ("unassigned-port", "info")}
