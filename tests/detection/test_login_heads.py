"""A login in clear is reported, and its credentials never reach a record: the client's kept head
(`meta.client_head`, the stream's first 32 bytes) stops at the login, for the binary and RESP
logins whose credentials sit inside those bytes."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.pcapkit import analyze_path, ether, tcp_session, timed, write_pcap

pytest.importorskip("portwatch._core")

SECRET = b"Secr3tPw"


def mqtt_connect(flags: int, *fields: bytes) -> bytes:
    def s(b: bytes) -> bytes:
        return struct.pack(">H", len(b)) + b
    body = s(b"MQTT") + bytes([4, flags]) + b"\x00\x3c" + b"".join(s(f) for f in fields)
    return bytes([0x10, len(body)]) + body


def analyze(tmp_path: Path, client: list[bytes], server: list[bytes], dport: int):
    frames = tcp_session(client, server, dport=dport)
    (rec,) = analyze_path(write_pcap(tmp_path / "login.pcap", timed([ether(f) for f in frames])))[0]
    return rec


def no_secret(rec) -> bool:
    text = repr(rec.as_dict())
    return SECRET.hex() not in text and SECRET.decode() not in text


@pytest.mark.parametrize("command", [
    b"*2\r\n$4\r\nAUTH\r\n$8\r\n" + SECRET + b"\r\n",
    b"*3\r\n$4\r\nauth\r\n$1\r\nu\r\n$8\r\n" + SECRET + b"\r\n",
    b"AUTH " + SECRET + b"\r\n",
    b"*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$8\r\n" + SECRET + b"\r\n",
], ids=["resp", "resp-user", "inline", "hello"])
def test_a_redis_auth_is_a_login_in_clear_without_its_password(tmp_path: Path, command: bytes) -> None:
    rec = analyze(tmp_path, [command], [b"+OK\r\n"], 6379)
    assert rec.protocol == "redis" and rec.meta["cleartext_login"] is True
    assert [(f.kind, f.severity) for f in rec.findings] == [("insecure-protocol", "high")]
    assert no_secret(rec)


def test_redis_without_auth_is_no_login(tmp_path: Path) -> None:
    rec = analyze(tmp_path, [b"*1\r\n$4\r\nPING\r\n"], [b"+PONG\r\n"], 6379)
    assert rec.protocol == "redis" and "cleartext_login" not in rec.meta and rec.findings == []


def test_an_mqtt_connect_with_a_password_is_a_login_in_clear_without_it(tmp_path: Path) -> None:
    rec = analyze(tmp_path, [mqtt_connect(0xC2, b"c", b"u", SECRET)], [b"\x20\x02\x00\x00"], 1883)
    assert rec.protocol == "mqtt" and rec.meta["cleartext_login"] is True
    assert ("insecure-protocol", "high") in [(f.kind, f.severity) for f in rec.findings]
    # The kept head ends at the connect flags.
    assert rec.meta["client_head"] == mqtt_connect(0xC2, b"c", b"u", SECRET)[:10].hex()
    assert no_secret(rec)


def test_an_mqtt_connect_without_a_password_is_no_login(tmp_path: Path) -> None:
    rec = analyze(tmp_path, [mqtt_connect(0x02, b"client-id-1")], [b"\x20\x02\x00\x00"], 1883)
    assert rec.protocol == "mqtt" and "cleartext_login" not in rec.meta
    assert "insecure-protocol" not in {f.kind for f in rec.findings}


def test_a_socks5_password_login_is_in_clear_and_not_kept(tmp_path: Path) -> None:
    # RFC 1929: greeting offering username/password, the server picks it, the login, the request.
    login = b"\x01\x01u\x08" + SECRET
    request = b"\x05\x01\x00\x01\x0a\x00\x00\x01\x00\x50"
    rec = analyze(tmp_path, [b"\x05\x02\x00\x02", login, request],
                  [b"\x05\x02", b"\x01\x00", b"\x05\x00\x00\x01\x0a\x00\x00\x01\x00\x50"], 1080)
    assert rec.protocol == "socks" and rec.meta["cleartext_login"] is True
    assert rec.meta["socks_target"] == "10.0.0.1:80" and rec.meta["client_head"] == "05020002"
    assert ("insecure-protocol", "high") in [(f.kind, f.severity) for f in rec.findings]
    assert no_secret(rec)
