"""Mail submission (captures/smtp-587.pcap), DNS over TCP (captures/dns-tcp-53.pcap), h2c
(captures/http2-80.pcap) and a WebSocket (captures/websocket-8080.pcap) from real servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_auth_plain_sent_in_clear_is_a_cleartext_login_even_when_refused() -> None:
    records, _ = analyze_path(CAPTURES / "smtp-587.pcap")
    assert [r.protocol for r in records] == ["smtp"] * 3
    starttls, no_auth, plain = records
    assert starttls.meta["upgraded_to"] == "tls" and not starttls.findings
    assert "cleartext_login" not in no_auth.meta and not no_auth.findings
    # RFC 4954 4: the initial response carries the credentials; OpenSMTPD answered 503
    assert plain.meta["cleartext_login"] is True
    assert [(f.kind, f.severity) for f in plain.findings] == [("insecure-protocol", "high")]


def test_dns_over_tcp_names_queries_zone_transfers_and_a_refusal() -> None:
    records, _ = analyze_path(CAPTURES / "dns-tcp-53.pcap")
    assert [(r.protocol, r.meta["dns_qtype"], r.meta["dns_rcode"]) for r in records] == [
        ("dns", "SOA", "NOERROR"), ("dns", "A", "NOERROR"), ("dns", "AXFR", "NOERROR"), ("dns", "AXFR", "NOTAUTH")]
    assert all(r.transport == "tcp" and not r.findings for r in records)


def test_h2c_with_prior_knowledge_is_http2() -> None:
    records, _ = analyze_path(CAPTURES / "http2-80.pcap")
    assert [(r.protocol, r.dst_port) for r in records] == [("http2", 80), ("http2", 80)]
    assert all(r.meta["client_head"].startswith("505249202a20485454502f322e30") for r in records)  # PRI * HTTP/2.0


def test_a_websocket_upgrade_and_a_refused_one() -> None:
    records, _ = analyze_path(CAPTURES / "websocket-8080.pcap")
    chat, forbidden = records
    assert (chat.protocol, chat.meta["http_status"], chat.meta["upgraded_to"]) == ("http", 101, "websocket")
    # RFC 6455 4.1: any status but 101 fails the handshake
    assert forbidden.meta["http_status"] == 403 and "upgraded_to" not in forbidden.meta
    assert not chat.findings and not forbidden.findings
