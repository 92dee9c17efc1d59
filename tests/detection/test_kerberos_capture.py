"""Kerberos from an MIT KDC and kinit/kvno (captures/kerberos-88.pcap), over UDP and TCP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "kerberos-88.pcap"


def test_kinit_kvno_and_a_wrong_password_over_udp_and_tcp() -> None:
    records, _ = analyze_path(CAPTURE)
    flows = sorted(records, key=lambda r: r.ts_start)
    assert {r.protocol for r in flows} == {"kerberos"}
    assert [r.transport for r in flows] == ["udp"] * 5 + ["tcp"] * 2
    # Each UDP exchange is one request and one reply: pre-authentication required (an error), the
    # AS-REP, the TGS-REP for kvno, then the wrong password (required again, then refused).
    udp = flows[:5]
    assert all((r.packets_c2s, r.packets_s2c) == (1, 1) for r in udp)
    # The request's type is `krb_msg`, the KDC's reply `krb_msg_server`: a reply does not hide what
    # was asked.
    assert [r.meta["krb_msg"] for r in udp] == ["as-req", "as-req", "tgs-req", "as-req", "as-req"]
    assert [r.meta["krb_msg_server"] for r in udp] == ["krb-error", "as-rep", "tgs-rep", "krb-error", "krb-error"]
    # Over TCP each message has its 4-byte length first (RFC 4120 7.2.2): the same two steps.
    assert [(r.meta["krb_msg"], r.meta["krb_msg_server"]) for r in flows[5:]] == [
        ("as-req", "krb-error"), ("as-req", "as-rep")]
    assert not [f for r in flows for f in r.findings]
