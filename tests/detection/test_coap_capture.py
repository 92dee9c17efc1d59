"""CoAP from libcoap's example server and client (captures/coap-5683.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "coap-5683.pcap"

def test_every_request_is_coap_with_its_method_and_response_code() -> None:
    records, _ = analyze_path(CAPTURE)
    assert {(r.protocol, r.transport, r.dst_port, r.orientation) for r in records} == {
        ("coap", "udp", 5683, "handshake")}
    assert len(records) == 7 and sum(":" in r.dst_ip for r in records) == 1
    exchanges = sorted((r.meta["coap_type"], r.meta["coap_code"], r.meta["coap_type_server"],
                        r.meta["coap_code_server"]) for r in records)
    # confirmable requests, piggybacked ACKs (RFC 7252 5.2.1): six GETs answered 2.05, a PUT 2.04
    assert exchanges == [("CON", "GET", "ACK", "2.05")] * 6 + [("CON", "PUT", "ACK", "2.04")]
    assert all(r.confidence > 0.95 for r in records)
