"""DTLS probe (through the core's engine): an OpenSSL DTLS 1.2 ClientHello and HelloVerifyRequest (recorded),
crafted records."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from _engine import MATCH, NO, probe
from _tlsbuild import client_hello_record
from hypothesis import given, settings
from hypothesis import strategies as st

DATA = Path(__file__).parent / "data"
HELLO = (DATA / "dtls12_client_hello.bin").read_bytes()
HVR = (DATA / "dtls12_server_reply.bin").read_bytes()


def drecord(ctype: int, payload: bytes, epoch: int = 0, version: int = 0xFEFD) -> bytes:
    return (
        struct.pack("!BHH", ctype, version, epoch) + (1).to_bytes(6, "big") + struct.pack("!H", len(payload)) + payload
    )


def dhandshake(msg_type: int, body: bytes, total: int | None = None, frag_off: int = 0) -> bytes:
    total = len(body) if total is None else total
    return (
        bytes([msg_type]) + total.to_bytes(3, "big") + b"\x00\x00" + frag_off.to_bytes(3, "big")
        + len(body).to_bytes(3, "big") + body
    )  # fmt: skip


def test_openssl_client_hello():
    r = probe("dtls", HELLO, True)
    assert r.status == MATCH
    assert r.meta["tls_version"] == "dtls1.2"
    assert r.meta["sni"] == "dtls.example.com"
    assert r.meta["alpn"] == ["webrtc", "c-webrtc"]
    assert r.meta["ja4"].startswith("dd2d") and r.meta["ja4"][8:10] == "wc"
    assert r.meta["ja3_string"].startswith("65277,")
    assert probe("dtls", HELLO, False).status == NO
    assert probe("tls", HELLO, True).status == NO  # DTLS is not TLS


def test_openssl_hello_verify_request():
    r = probe("dtls", HVR, False)
    assert r.status == MATCH and r.meta == {"dtls_hello_verify": True}
    assert probe("dtls", HVR, True).status == NO


def test_fragmented_hello_and_server_hello():
    body = HELLO[13 + 12 :]
    first = probe("dtls", drecord(22, dhandshake(1, body[:80], total=len(body))), True)
    assert first.status == MATCH and first.meta["tls_truncated"] is True
    assert probe("dtls", drecord(22, dhandshake(1, body[80:], total=len(body), frag_off=80)), True).status == NO
    sh = b"\xfe\xfd" + bytes(32) + b"\x00" + b"\xc0\x2b" + b"\x00" + b"\x00\x00"
    r = probe("dtls", drecord(22, dhandshake(2, sh)) + drecord(22, dhandshake(11, b"\x00\x00\x00")), False)
    assert r.status == MATCH and r.meta["tls_version_server"] == "dtls1.2" and r.meta["cipher"] == "0xc02b"


def test_midstream():
    data = drecord(23, bytes(40), epoch=1) + drecord(23, bytes(60), epoch=1)
    assert probe("dtls", data, True).meta == {"tls_midstream": True}
    assert probe("dtls", drecord(23, bytes(40), epoch=0), True).status == NO  # app data needs keys


@pytest.mark.parametrize(
    "data",
    [
        HELLO[:-1],  # the datagram is not a whole number of records
        HELLO + b"\x00",
        HELLO[:1] + b"\xfe\xfe" + HELLO[3:],  # bad version
        HELLO[:1] + b"\x03\x03" + HELLO[3:],  # a TLS version
        client_hello_record([0x1301], None),
        b"\x16\xfe\xfd" + bytes(10),
        b"\x17" + bytes(12),
        b"",
    ],
)
def test_near_misses(data):
    assert probe("dtls", data, True).status == NO


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_never_raises(data, from_client):
    assert probe("dtls", data, from_client).status in (MATCH, NO)
    wrapped = drecord(22, data)
    assert probe("dtls", wrapped, from_client).status in (MATCH, NO)
