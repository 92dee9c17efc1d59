"""XMPP from prosody and sendxmpp (captures/xmpp-5222.pcap): a session that upgrades with STARTTLS and
one whose SASL PLAIN login crosses in clear."""

from __future__ import annotations

import base64
from pathlib import Path

import dpkt
import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "xmpp-5222.pcap"
# SASL PLAIN's message (RFC 4616) for captures/record.sh's throwaway account on 10.77.0.1.
CREDENTIALS = base64.b64encode(b"pwcap@10.77.0.1\0pwcap\0pwcap-secret")


def client_bytes() -> bytes:
    """Every client payload to 5222, read by dpkt (the oracle)."""
    out = b""
    with CAPTURE.open("rb") as fh:
        for _, frame in dpkt.pcap.Reader(fh):
            tcp = dpkt.ethernet.Ethernet(frame).data.data
            if isinstance(tcp, dpkt.tcp.TCP) and tcp.dport == 5222:
                out += bytes(tcp.data)
    return out


def test_starttls_and_a_login_in_clear() -> None:
    assert CREDENTIALS in client_bytes()  # it did cross, in clear
    records, _ = analyze_path(CAPTURE)
    tls, clear = sorted(records, key=lambda r: r.ts_start)
    assert (tls.protocol, clear.protocol) == ("xmpp", "xmpp")
    assert tls.meta["upgraded_to"] == "tls" and "cleartext_login" not in tls.meta
    assert tls.findings == []  # 5222 is xmpp-client's
    assert "upgraded_to" not in clear.meta and clear.meta["cleartext_login"] is True
    assert [(f.kind, f.severity) for f in clear.findings] == [("insecure-protocol", "high")]
    text = repr(clear.as_dict())
    assert CREDENTIALS.decode() not in text and CREDENTIALS.hex() not in text
