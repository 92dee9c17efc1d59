"""Syslog over TCP into rsyslog on 514/tcp (captures/syslog-tcp-514.pcap) and IKEv2 with NAT
traversal between two strongSwan charons (captures/ipsec-4500.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_syslog_on_514_tcp_is_not_rsh() -> None:
    # /etc/services calls 514/tcp shell; the bytes are RFC 3164/5424 messages, LF-terminated or
    # octet-counted (RFC 6587), and the receiver never answers.
    records, _ = analyze_path(CAPTURES / "syslog-tcp-514.pcap")
    assert [(r.protocol, r.dst_port) for r in records] == [("syslog", 514)] * 4
    assert all(r.assigned == ["shell"] and r.bytes_s2c == 0 and not r.findings for r in records)
    facts = [(r.meta["syslog_facility"], r.meta["syslog_severity"], r.meta["syslog_format"],
              r.meta.get("syslog_framing")) for r in records]
    assert facts == [("auth", "notice", "rfc3164", None), ("user", "info", "rfc5424", None),
                     ("daemon", "warning", "rfc5424", "octet-counting"),
                     ("local0", "info", "rfc3164", "octet-counting")]
    assert records[1].meta["syslog_app"] == "portwatch"


def test_ike_on_500_then_esp_in_udp_on_4500_are_ipsec() -> None:
    records, _ = analyze_path(CAPTURES / "ipsec-4500.pcap")
    assert [(r.protocol, r.src_port, r.dst_port) for r in records] == [("ipsec", 1500, 500), ("ipsec", 4500, 4500)]
    init, nat_t = records
    assert (init.meta["ike_version"], init.meta["ike_exchange"]) == (2, "ike_sa_init")
    assert nat_t.meta["ike_exchange"] == "ike_auth" and "esp_spi" in nat_t.meta
    assert not init.findings and not nat_t.findings
