"""memcached from memcached and libmemcached-tools (captures/memcached-11211.pcap): the text
protocol, and the binary protocol whose response header a CQL (Cassandra) header pattern also fits."""

from __future__ import annotations

from pathlib import Path

import pytest
from _engine import classify

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "memcached-11211.pcap"


def heads() -> list[tuple[bytes, bytes, str]]:
    records, _ = analyze_path(CAPTURE)
    return [(bytes.fromhex(r.meta["client_head"]), bytes.fromhex(r.meta["server_head"]), r.protocol)
            for r in records]


def test_every_session_text_or_binary_is_memcached() -> None:
    sessions = heads()
    assert [p for _, _, p in sessions] == ["memcached"] * 6
    # flush_all with an empty argument (libmemcached writes a space before CRLF), answered OK
    assert any(c.startswith(b"flush_all \r\n") and s == b"OK\r\n" for c, s, _ in sessions)
    binary = [(c, s) for c, s, _ in sessions if c[:1] == b"\x80"]
    assert len(binary) == 2 and all(s[:1] == b"\x81" for _, s in binary)


def test_a_binary_response_header_alone_is_not_cassandra_on_memcacheds_port() -> None:
    # A Set response (magic 0x81, opcode 0x01, status 0): CQL v1 "response, ERROR" by its first bytes.
    response = bytes.fromhex("8101000000000000" + "00000000" + "00000000" + "0000000000000001")
    d = classify("tcp", [], [response], 11211)
    assert d is not None and d.protocol == "memcached", d
    # Off both protocols' ports a header alone says nothing; request and response together do.
    assert classify("tcp", [], [response], 40123).protocol == "unknown"
    request = bytes.fromhex("8001000508000000" + "00000010" + "00000000" + "0000000000000000") + bytes(8) + b"pwkey"
    assert classify("tcp", [request], [response], 40123).protocol == "memcached"
    # A CQL exchange on 9042 stays Cassandra.
    startup = b"\x04\x00\x00\x01\x01\x00\x00\x00\x16" + b"\x00\x01\x00\x0bCQL_VERSION\x00\x053.0.0"
    ready = b"\x84\x00\x00\x01\x02\x00\x00\x00\x00"
    assert classify("tcp", [startup], [ready], 9042).protocol == "cassandra"


def test_a_command_with_an_empty_argument_and_a_bare_reply_are_memcached() -> None:
    # libmemcached writes "flush_all \r\n" and "stats \r\n"; the server answers OK or STAT lines.
    d = classify("tcp", [b"flush_all \r\n"], [b"OK\r\n"], 11211)
    assert d.protocol == "memcached" and "server bytes" in d.evidence
    assert classify("tcp", [b"stats \r\n"], [], 11211).protocol == "memcached"
