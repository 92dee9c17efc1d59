"""QUIC probe (through the core's engine): RFC 9001 / RFC 9369 Appendix A packets and keys, crafted Initials,
near-misses."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from _engine import MATCH, NEUTRAL_PORT, NO, classify, probe
from _tlsbuild import client_hello_body, handshake, ja4_spec_extensions, record
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given, settings
from hypothesis import strategies as st

DATA = Path(__file__).parent / "data"
RFC9001_A2 = (DATA / "rfc9001_a2_client_initial.bin").read_bytes()
RFC9369_A2 = (DATA / "rfc9369_a2_client_initial.bin").read_bytes()
DCID = bytes.fromhex("8394c8f03e515708")
# RFC 9001 A.3: the server's Initial (its DCID is the client's SCID, so it cannot be decrypted here)
RFC9001_A3 = bytes.fromhex(
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee"
)
# RFC 9369 A.4: a QUIC v2 Retry
RFC9369_A4 = bytes.fromhex("cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6")
# RFC 9001 A.2: the CRYPTO frame's ClientHello (the start of the decrypted payload)
RFC9001_HELLO = bytes.fromhex(
    "010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c0000041301130201"
    "0000c000000010000e00000b6578616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fbabaf4559fedba753de171fa71f50f"
    "1ce15d43e994ec74d748002b0003020304000d0010000e0403050306030203080408050806002d00020101001c00"
    "02400100390032 0408ffffffffffffffff05048000ffff07048000ffff0801100104800075300901100f088394c8"
    "f03e51570806048000ffff".replace(" ", "")
)
V1, V2, DRAFT29 = 0x00000001, 0x6B3343CF, 0xFF00001D
# RFC 9001 5.2, RFC 9369 3.3.1, draft-ietf-quic-tls-29 5.2
INITIAL_SALTS = {
    V1: bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
    V2: bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
    DRAFT29: bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899"),
}


def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    full = b"tls13 " + label
    info = struct.pack("!H", length) + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def initial_keys(dcid: bytes, version: int, client: bool = True) -> tuple[bytes, bytes, bytes] | None:
    """(key, iv, hp) of an Initial packet (test-side, RFC 9001 5.2 / RFC 9369 3.3)."""
    salt = INITIAL_SALTS.get(version)
    if salt is None:
        return None
    h = hmac.HMAC(salt, hashes.SHA256())
    h.update(dcid)
    secret = _expand_label(h.finalize(), b"client in" if client else b"server in", 32)
    prefix = b"quicv2 " if version == V2 else b"quic "
    return (_expand_label(secret, prefix + b"key", 16), _expand_label(secret, prefix + b"iv", 12),
            _expand_label(secret, prefix + b"hp", 16))


def protect_initial(
    payload: bytes, dcid: bytes, version: int = V1, pn: int = 0, pad_to: int = 1200, scid: bytes = b"\x11" * 8
) -> bytes:
    """Seal a client Initial the way a client does (test-side encoder, RFC 9001 §5)."""
    key, iv, hp = initial_keys(dcid, version)
    type_bits = 1 if version == V2 else 0
    first = 0xC0 | (type_bits << 4) | 0x03  # 4-byte packet number
    pn_bytes = pn.to_bytes(4, "big")
    prefix = bytes([first]) + struct.pack("!I", version) + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    prefix += b"\x00"  # no token
    fixed = len(prefix) + 2 + 4 + 16
    payload = payload + bytes(max(0, pad_to - fixed - len(payload)))
    length = 4 + len(payload) + 16
    header = prefix + struct.pack("!H", 0x4000 | length) + pn_bytes
    nonce = bytes(a ^ b for a, b in zip(iv, pn.to_bytes(12, "big"), strict=True))
    sealed = AESGCM(key).encrypt(nonce, payload, header)
    pn_offset = len(header) - 4
    sample = sealed[:16]
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    out = bytearray(header + sealed)
    out[0] ^= mask[0] & 0x0F
    for i in range(4):
        out[pn_offset + i] ^= mask[1 + i]
    return bytes(out)


def crypto_frame(offset: int, data: bytes) -> bytes:
    def varint(v: int) -> bytes:
        return struct.pack("!H", 0x4000 | v) if v < 0x4000 else struct.pack("!I", 0x80000000 | v)

    return b"\x06" + varint(offset) + varint(len(data)) + data


def test_rfc9001_keys():
    """The test-side key schedule gives RFC 9001 A.1 and RFC 9369 A.1 keys (so the encoder below is sound)."""
    assert [k.hex() for k in initial_keys(DCID, V1)] == [
        "1f369613dd76d5467730efcbe3b1a22d",
        "fa044b2f42a3fd3b46fb255c",
        "9f50449e04a0e810283a1e9933adedd2",
    ]
    assert [k.hex() for k in initial_keys(DCID, V1, client=False)] == [
        "cf3a5331653c364c88f0f379b6067e37",
        "0ac1493ca1905853b0bba03e",
        "c206b8d9b9f0f37644430b490eeaa314",
    ]
    assert [k.hex() for k in initial_keys(DCID, V2)] == [
        "8b1a0bc121284290a29e0971b5cd045d",
        "91f73e2351d8fa91660e909f",
        "45b95e15235d6f45a6b19cbcb0294ba9",
    ]
    assert initial_keys(DCID, 0x12345678) is None


def test_rfc9001_client_initial():
    r = probe("quic", RFC9001_A2, True)
    assert r.status == MATCH
    assert r.meta["quic_version"] == "1" and r.meta["quic_packet"] == "initial" and r.meta["quic_decrypted"]
    assert r.meta["sni"] == "example.com" and r.meta["alpn"] == ["alpn"] and r.meta["tls_version"] == "1.3"
    # the same ClientHello over TCP fingerprints the same but for the transport letter
    over_tcp = probe("tls", record(22, RFC9001_HELLO), True)
    assert over_tcp.meta["ja4"] == "t" + r.meta["ja4"][1:] and r.meta["ja4"].startswith("q13d0211an_")
    assert over_tcp.meta["ja3"] == r.meta["ja3"]


def test_rfc9369_v2_client_initial():
    r = probe("quic", RFC9369_A2, True)
    assert r.status == MATCH and r.meta["quic_version"] == "2" and r.meta["sni"] == "example.com"
    assert r.meta["ja4"] == probe("quic", RFC9001_A2, True).meta["ja4"]


def test_test_encoder_reproduces_the_rfc_packets():
    """The sealing helper used below rebuilds both RFC packets byte for byte (so it is sound)."""
    payload = bytes.fromhex("060040f1") + RFC9001_HELLO
    assert protect_initial(payload, DCID, V1, pn=2, scid=b"") == RFC9001_A2
    assert protect_initial(payload, DCID, V2, pn=2, scid=b"") == RFC9369_A2


def test_server_packets():
    r = probe("quic", RFC9001_A3, False)
    assert r.status == MATCH and r.meta == {"quic_version_server": "1", "quic_packet_server": "initial"}
    retry = probe("quic", RFC9369_A4, False)
    assert retry.status == MATCH and retry.meta == {"quic_version_server": "2", "quic_packet_server": "retry"}
    assert probe("quic", RFC9369_A4, True).status == NO  # only servers send Retry
    vn = b"\x80\x00\x00\x00\x00\x08" + DCID + b"\x08" + DCID + struct.pack("!II", 1, 0x6B3343CF)
    assert probe("quic", vn, False).meta["quic_packet_server"] == "version_negotiation"
    assert probe("quic", vn, True).status == NO


def test_split_and_reordered_crypto_frames():
    hello = handshake(1, client_hello_body([0x1301, 0x1302], ja4_spec_extensions([0x0000, 0x0010, 0x002B], [0x0403])))
    payload = (
        b"\x01"
        + crypto_frame(60, hello[60:])
        + b"\x00\x00\x01"
        + crypto_frame(0, hello[:25])
        + crypto_frame(25, hello[25:60])
    )
    dcid = os.urandom(8)
    r = probe("quic", protect_initial(payload, dcid), True)
    assert r.status == MATCH and r.meta["sni"] == "example.com" and r.meta["alpn"] == ["h2", "http/1.1"]
    assert r.meta["ja4"].startswith("q13d0203h2_")
    # only the first part of the hello in this datagram: SNI still read, no fingerprint
    part = probe("quic", protect_initial(crypto_frame(0, hello[:60]), dcid), True)
    assert part.meta["tls_truncated"] is True and "ja4" not in part.meta
    # draft-29 uses its own salt
    d29 = probe("quic", protect_initial(crypto_frame(0, hello), dcid, DRAFT29), True)
    assert d29.meta["quic_version"] == "draft-29" and d29.meta["sni"] == "example.com"


def test_undecryptable_initial_still_matches():
    tampered = bytearray(RFC9001_A2)
    tampered[500] ^= 0x01
    r = probe("quic", bytes(tampered), True)
    assert r.status == MATCH and r.meta["quic_decrypted"] is False and "sni" not in r.meta
    grease = bytearray(RFC9001_A2)
    grease[1:5] = b"\x1a\x2a\x3a\x4a"
    assert probe("quic", bytes(grease), True).meta == {"quic_version": "0x1a2a3a4a", "quic_packet": "initial"}


@pytest.mark.parametrize(
    "data",
    [
        RFC9001_A2[:600],  # the Length field runs past the datagram
        bytes([RFC9001_A2[0] & ~0x40]) + RFC9001_A2[1:],  # fixed bit clear
        RFC9001_A2[:1] + b"\x12\x34\x56\x78" + RFC9001_A2[5:],  # unknown version
        RFC9001_A2[:5] + b"\x15" + bytes(21) + RFC9001_A2[14:],  # DCID longer than 20
        b"\x40" + os.urandom(40),  # short header
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
        b"\xc0\x00\x00\x00\x01",
        b"",
    ],
)
def test_near_misses(data):
    assert probe("quic", data, True).status == NO


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_never_raises(data, from_client):
    assert probe("quic", data, from_client).status in (MATCH, NO)
    assert probe("quic", RFC9001_A2[:30] + data, from_client).status in (MATCH, NO)


def test_hello_across_datagrams():
    """A ClientHello larger than one datagram (as Chrome's with ML-KEM key shares)."""
    exts = [*ja4_spec_extensions([0x0000, 0x0010, 0x002B], [0x0403]), ext_padding(1500)]
    hello = handshake(1, client_hello_body([0x1301], exts))
    dcid = os.urandom(8)
    first = protect_initial(crypto_frame(0, hello[:1000]), dcid, pad_to=1200)
    second = protect_initial(crypto_frame(1000, hello[1000:]), dcid, pn=1, pad_to=1200)
    alone = probe("quic", first, True)
    assert alone.meta["sni"] == "example.com" and alone.meta["tls_truncated"] is True
    both = probe("quic", None, True, units=[first, second])
    assert both.status == MATCH and "tls_truncated" not in both.meta and both.meta["ja4"].startswith("q13d0104h2_")
    assert probe("quic", None, True, units=[]).status == NO
    assert "by the quic_units probe" in classify("udp", [first, second], [], NEUTRAL_PORT).evidence
    # the first datagram decides for the datagrams together (the second alone is still a QUIC Initial)
    assert "by the quic_units probe" not in classify("udp", [b"\x00" * 50, first], [], NEUTRAL_PORT).evidence


def ext_padding(n: int) -> bytes:
    return struct.pack("!HH", 0x0015, n) + bytes(n)
