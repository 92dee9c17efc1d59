"""Issue 19 items 5 and 6 through portwatch.pipeline: cleartext-on-secure-port for an unrecognised
cleartext protocol on a TLS-only port, and privileged-source-port (trusted ports, rcmd(3))."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import ether, tcp_session, timed, write_pcap

pytest.importorskip("portwatch._core")

from portwatch.pipeline import Config, Setup, analyze_path


def run(tmp_path: Path, frames: list[bytes]):
    path = write_pcap(tmp_path / "x.pcap", timed([ether(f) for f in frames]))
    config = Config()
    records: list = []
    analyze_path(str(path), Setup.load(config), config, records.append)
    return records


def kinds(records) -> dict[str, str]:
    return {f.kind: f.severity for r in records for f in r.findings}


def messages(records, kind: str) -> list[str]:
    return [f.message for r in records for f in r.findings if f.kind == kind]


def test_netcat_chat_on_443_is_cleartext_on_secure_port(tmp_path: Path) -> None:
    chat = tcp_session([b"hello there, are you around tonight?\n", b"ok see you at eight then\n"],
                       [b"yes, what's up? the usual place?\n"], sport=40000, dport=443)
    recs = run(tmp_path, chat)
    assert recs[0].protocol == "unknown"
    found = kinds(recs)
    assert found.get("cleartext-on-secure-port") == "high", found
    assert "printable" in messages(recs, "cleartext-on-secure-port")[0]


def test_tls_like_random_bytes_on_443_are_not_cleartext(tmp_path: Path) -> None:
    noise = bytes((i * 197 + 89) % 256 for i in range(600))
    recs = run(tmp_path, tcp_session([noise], [noise[::-1]], sport=40001, dport=443))
    assert "cleartext-on-secure-port" not in kinds(recs)


def test_cleartext_on_an_unassigned_port_is_not_this_finding(tmp_path: Path) -> None:
    chat = tcp_session([b"hello there, are you around tonight?\n"], [b"yes, what's up?\n"], sport=40002, dport=40444)
    assert "cleartext-on-secure-port" not in kinds(run(tmp_path, chat))


def test_client_from_a_privileged_port_to_https(tmp_path: Path) -> None:
    # nc -p 1000 host 8080: root picked the source port for a service that trusts none
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    recs = run(tmp_path, tcp_session([req], [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], sport=1000, dport=8080))
    assert kinds(recs).get("privileged-source-port") == "medium"
    assert "privileged port 1000" in messages(recs, "privileged-source-port")[0]


def test_rsh_from_a_trusted_port_is_normal_and_from_a_high_port_is_not(tmp_path: Path) -> None:
    # rcmd(3): client port 1023 down to 512, "\0" stderr port, local user, remote user, command
    rsh = b"0\x00alice\x00alice\x00id\x00"
    ok = run(tmp_path, tcp_session([rsh], [b"\x00uid=1000(alice)\n"], sport=1022, dport=514))
    assert "privileged-source-port" not in kinds(ok)
    bad = run(tmp_path, tcp_session([rsh], [b"\x01permission denied\n"], sport=40100, dport=514))
    assert kinds(bad).get("privileged-source-port") == "low"
    assert "unprivileged port 40100" in messages(bad, "privileged-source-port")[0]


def test_ordinary_clients_and_peer_ports_are_quiet(tmp_path: Path) -> None:
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert "privileged-source-port" not in kinds(run(tmp_path, tcp_session([req], [], sport=45000, dport=80)))
    # BGP speakers may connect from 179 to 179; active FTP data comes from 20
    keepalive = b"\xff" * 16 + b"\x00\x13\x04"
    assert "privileged-source-port" not in kinds(run(tmp_path, tcp_session([keepalive], [keepalive], sport=179,
                                                                          dport=179)))
    assert "privileged-source-port" not in kinds(run(tmp_path, tcp_session([b"x" * 100], [], sport=20, dport=40500)))


def test_syslog_over_tcp_on_514_from_a_high_port_is_not_an_r_service(tmp_path: Path) -> None:
    # RFC 6587 octet counting to 514/tcp (rsyslog's habit): syslog trusts no source port
    msg = b"73 <34>1 2024-01-01T00:00:00Z host app - - - su root failed on /dev/pts/8"
    recs = run(tmp_path, tcp_session([msg], [], sport=40200, dport=514))
    assert "privileged-source-port" not in kinds(recs)
