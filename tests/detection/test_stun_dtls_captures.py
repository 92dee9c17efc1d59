"""STUN/TURN from coturn and DTLS from OpenSSL (captures/stun-3478.pcap, captures/dtls-4433.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_coturn_binding_and_allocations_over_udp_and_tcp_are_stun() -> None:
    records, _ = analyze_path(CAPTURES / "stun-3478.pcap")
    assert {r.protocol for r in records} == {"stun"}
    assert sorted(r.transport for r in records) == ["tcp"] * 3 + ["udp"] * 4
    methods = sorted(str(r.meta["stun_method"]) for r in records)
    assert methods == ["allocate"] * 6 + ["binding"]
    # Every exchange was answered by the server, which names its software.
    assert all(r.packets_s2c > 0 and r.meta["stun_software_server"].startswith("Coturn-") for r in records)
    # A request's class is `stun_class`, the server's answer's `stun_class_server`: the binding
    # succeeded, each allocation's first answer asked for credentials (401).
    answers = sorted((str(r.meta["stun_method"]), r.meta["stun_class"], r.meta["stun_class_server"]) for r in records)
    assert answers == [("allocate", "request", "error")] * 6 + [("binding", "request", "success")]
    # Both sides matched the STUN header (magic cookie, length, type), not one alone.
    assert all("client bytes" in r.meta["evidence"] and "server bytes" in r.meta["evidence"] for r in records)
    # Debian's /etc/services does not list 3478: a STUN server there is only an inventory note.
    assert {(f.kind, f.severity) for r in records for f in r.findings} == {("unassigned-port", "info")}


def test_openssl_dtls_handshake_with_a_cookie() -> None:
    (rec,), _ = analyze_path(CAPTURES / "dtls-4433.pcap")
    assert (rec.protocol, rec.transport, rec.dst_port) == ("dtls", "udp", 4433)
    assert rec.meta["tls_version"] == "dtls1.2" and rec.meta["sni"] == "dtls.example.test"
    assert rec.meta["tls_version_server"] == "dtls1.2"
    # The server answered the first ClientHello with a HelloVerifyRequest (RFC 6347 4.2.1).
    assert rec.meta["dtls_hello_verify"] is True
    # JA4 for DTLS starts with "d"; JA3 and JA3S are MD5 hex digests.
    assert rec.meta["ja4"].startswith("dd2d") and len(rec.meta["ja3"]) == 32 and len(rec.meta["ja3s"]) == 32
    assert rec.meta["cipher_name"].startswith("TLS_ECDHE_ECDSA_")
