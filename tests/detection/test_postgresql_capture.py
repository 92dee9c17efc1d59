"""PostgreSQL from postgres and psql (captures/postgresql-5432.pcap): a session in clear, and one that
libpq opens with an SSLRequest the server accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path, ether, tcp_session, timed, write_pcap

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "postgresql-5432.pcap"
# The SSLRequest (protocol documentation 55.2.10): length 8, code 80877103.
SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
STARTUP = b"\x00\x00\x00\x21\x00\x03\x00\x00user\x00postgres\x00database\x00x\x00\x00"


def test_a_session_in_clear_and_one_that_upgrades_to_tls() -> None:
    records, _ = analyze_path(CAPTURE)
    clear, tls = sorted(records, key=lambda r: r.ts_start)
    assert (clear.protocol, tls.protocol) == ("postgresql", "postgresql")
    assert "upgraded_to" not in clear.meta
    assert bytes.fromhex(tls.meta["client_head"]).startswith(SSL_REQUEST)
    assert bytes.fromhex(tls.meta["server_head"]).startswith(b"S\x16\x03")
    assert tls.meta["upgraded_to"] == "tls"
    assert [f for r in records for f in r.findings] == []


def test_an_sslrequest_the_server_declines_is_no_upgrade(tmp_path: Path) -> None:
    # The server answers N and the client goes on in clear with its startup message.
    frames = tcp_session([SSL_REQUEST, STARTUP], [b"N", b"R\x00\x00\x00\x08\x00\x00\x00\x00"], dport=5432)
    (rec,), _ = analyze_path(write_pcap(tmp_path / "declined.pcap", timed([ether(f) for f in frames])))
    assert rec.protocol == "postgresql" and "upgraded_to" not in rec.meta
