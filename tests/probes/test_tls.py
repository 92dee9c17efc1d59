"""TLS probe (through the core's engine): real OpenSSL handshakes (in memory), published JA3/JA4 vectors,
near-misses."""

from __future__ import annotations

import hashlib
import os
import ssl

import dpkt
import pytest
from _engine import MATCH, NO, probe
from _tlsbuild import (
    alpn_ext,
    client_hello_record,
    ext,
    handshake,
    ja4_spec_extensions,
    point_formats_ext,
    real_handshake,
    record,
    sni_ext,
    u16_list_ext,
)
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def tls13() -> tuple[bytes, bytes]:
    return real_handshake("example.com", ["h2", "http/1.1"])


@pytest.fixture(scope="module")
def tls12() -> tuple[bytes, bytes]:
    return real_handshake("www.example.org", ["http/1.1"], ssl.TLSVersion.TLSv1_2, cn="srv.example.org")


def _dpkt_ja3(hello: bytes) -> str:
    """Independent JA3 (salesforce/ja3's python uses dpkt the same way)."""
    grease = {0x0A0A + 0x1010 * i for i in range(16)}
    ch = dpkt.ssl.TLSHandshake(dpkt.ssl.TLSRecord(hello).data).data
    ciphers = [c.code for c in ch.ciphersuites if c.code not in grease]
    exts, groups, formats = [], [], []
    for etype, body in ch.extensions:
        if etype in grease:
            continue
        exts.append(etype)
        if etype == 10:
            groups = [int.from_bytes(body[i : i + 2], "big") for i in range(2, len(body), 2)]
        elif etype == 11:
            formats = list(body[1:])
    text = ",".join(
        [
            str(ch.version),
            "-".join(map(str, ciphers)),
            "-".join(map(str, exts)),
            "-".join(str(g) for g in groups if g not in grease),
            "-".join(map(str, formats)),
        ]
    )
    return hashlib.md5(text.encode()).hexdigest()


# ------------------------------------------------------------------ real bytes


def test_real_tls13_client_hello(tls13):
    hello, _ = tls13
    r = probe("tls", hello, True)
    assert r.status == MATCH
    assert r.meta["tls_version"] == "1.3"
    assert r.meta["sni"] == "example.com"
    assert r.meta["alpn"] == ["h2", "http/1.1"]
    assert r.meta["ja3"] == _dpkt_ja3(hello)
    assert r.meta["ja3"] == hashlib.md5(r.meta["ja3_string"].encode()).hexdigest()
    assert r.meta["ja4"].startswith("t13d") and r.meta["ja4"][8:10] == "h2"


def test_real_tls13_server_hello(tls13):
    _, flight = tls13
    r = probe("tls", flight, False)
    assert r.status == MATCH
    # What the ServerHello picked is the server's answer, named apart from the client's offer.
    assert r.meta["tls_version_server"] == "1.3" and "tls_version" not in r.meta
    assert r.meta["cipher"].startswith("0x13")
    assert len(r.meta["ja3s"]) == 32
    assert "cert_subject" not in r.meta  # encrypted in 1.3
    assert probe("tls", flight, True).status == NO  # a ServerHello is not a client's first bytes


def test_real_tls12_with_certificate(tls12):
    hello, flight = tls12
    c = probe("tls", hello, True)
    assert c.status == MATCH and c.meta["tls_version"] == "1.2" and c.meta["sni"] == "www.example.org"
    s = probe("tls", flight, False)
    assert s.status == MATCH
    assert s.meta["tls_version_server"] == "1.2"
    assert s.meta["cert_subject"] == "srv.example.org"
    assert s.meta["cert_issuer"] == "Portwatch Test CA"
    assert s.meta["alpn_server"] == ["http/1.1"]


def test_fingerprints_ignore_grease_and_tell_stacks_apart():
    exts = ja4_spec_extensions([0, 16, 10], [0x0403])
    a = probe("tls", client_hello_record([0x0A0A, 0x1301, 0x1302], exts), True).meta
    b = probe("tls", client_hello_record([0x7A7A, 0x1301, 0x1302], exts), True).meta
    c = probe("tls", client_hello_record([0x1302, 0x1301], exts), True).meta  # same set, other order
    assert a["ja3"] == b["ja3"] and a["ja4"] == b["ja4"] and "2570" not in a["ja3_string"]
    assert c["ja3"] != a["ja3"] and c["ja4"] == a["ja4"]  # JA4 sorts the ciphers, JA3 does not
    for i in range(300):  # many distinct stacks: the same hello still fingerprints the same
        probe("tls", client_hello_record([0x1301, 0x0100 + i], exts), True)
    assert probe("tls", client_hello_record([0x0A0A, 0x1301, 0x1302], exts), True).meta["ja3"] == a["ja3"]


def test_no_sni_no_alpn():
    hello, _ = real_handshake(None, None)
    r = probe("tls", hello, True)
    assert r.status == MATCH and "sni" not in r.meta and "alpn" not in r.meta
    assert r.meta["ja4"][3] == "i" and r.meta["ja4"][8:10] == "00"


def test_no_prefix_is_confirmed(tls13):
    hello, flight = tls13
    for i in range(len(hello)):
        assert probe("tls", hello[:i], True).status == NO, i
    # the server's flight: not confirmed until the ServerHello message is complete
    sh_len = int.from_bytes(flight[6:9], "big")
    for i in range(9 + sh_len):
        assert probe("tls", flight[:i], False).status == NO, i


def test_hello_split_across_records(tls13):
    hello, _ = tls13
    body = hello[5:]
    split = record(22, body[:100]) + record(22, body[100:300]) + record(22, body[300:])
    assert probe("tls", split, True).meta == probe("tls", hello, True).meta


def test_truncated_at_depth_matches_partially():
    big = [*ja4_spec_extensions([0, 16], []), ext(21, bytes(6000))]
    data = client_hello_record([0x1301], big)[:4096]
    r = probe("tls", data, True)
    assert r.status == MATCH and r.meta["sni"] == "example.com" and r.meta["tls_truncated"] is True
    assert "ja4" not in r.meta
    assert probe("tls", data[:2000], True).status == NO


# ------------------------------------------------------------------ published vectors


JA4_SPEC_CIPHERS = [
    0x1301,
    0x1302,
    0x1303,
    0xC02B,
    0xC02F,
    0xC02C,
    0xC030,
    0xCCA9,
    0xCCA8,
    0xC013,
    0xC014,
    0x009C,
    0x009D,
    0x002F,
    0x0035,
]
SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def test_ja4_spec_example():
    """FoxIO-LLC/ja4 technical_details/JA4.md worked example."""
    order = [
        0x001B,
        0x0000,
        0x0033,
        0x0010,
        0x4469,
        0x0017,
        0x002D,
        0x000D,
        0x0005,
        0x0023,
        0x0012,
        0x002B,
        0xFF01,
        0x000B,
        0x000A,
        0x0015,
    ]
    data = client_hello_record(JA4_SPEC_CIPHERS, ja4_spec_extensions(order, SIGALGS))
    r = probe("tls", data, True)
    assert r.meta["ja4"] == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    raw_c = ("0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"
             "_0403,0804,0401,0503,0805,0501,0806,0601")
    assert hashlib.sha256(raw_c.encode()).hexdigest()[:12] == "e5627efa2ab1"
    # GREASE anywhere changes nothing
    greased = client_hello_record(
        [0x2A2A, *JA4_SPEC_CIPHERS], [ext(0x0A0A), *ja4_spec_extensions(order, [0x1A1A, *SIGALGS])]
    )
    assert probe("tls", greased, True).meta["ja4"] == "t13d1516h2_8daaf6152771_e5627efa2ab1"


def test_ja4_spec_hash_strings():
    """The raw strings and truncated hashes printed in JA4.md."""
    assert (
        hashlib.sha256(b"002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9").hexdigest()[:12]
        == "8daaf6152771"
    )
    exts = b"0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"
    assert hashlib.sha256(exts).hexdigest()[:12] == "6d807ffa2a79"


def test_ja4_alpn_rules():
    def a(proto: bytes) -> str:
        data = client_hello_record([0x1301], [alpn_ext(proto)])
        return probe("tls", data, True).meta["ja4"][8:10]

    assert a(b"http/1.1") == "h1"
    assert a(b"h") == "hh"
    assert a(b"\xab") == "ab"
    assert a(b"\xab\xcd") == "ad"
    assert a(b"\x30\xab") == "3b"
    assert a(b"\x30\x31\xab\xcd") == "3d"
    assert a(b"\x30\xab\xcd\x31") == "01"


def test_chrome_ja3_and_ja4_pair():
    """A Chrome 143 hello as reported by browserleaks (ja3_text, ja3_hash, ja4 and ja4_ro agree)."""
    order = [
        0x002D,
        0x0033,
        0x0010,
        0xFE0D,
        0x0017,
        0x44CD,
        0x0000,
        0x000B,
        0x000A,
        0x002B,
        0xFF01,
        0x0023,
        0x0012,
        0x0005,
        0x000D,
        0x001B,
    ]
    exts = []
    for e in order:
        if e == 0x000A:
            exts.append(u16_list_ext(0x000A, [4588, 29, 23, 24]))
        elif e == 0x000B:
            exts.append(point_formats_ext([0]))
        else:
            exts.extend(ja4_spec_extensions([e], SIGALGS))
    data = client_hello_record(JA4_SPEC_CIPHERS, exts)
    r = probe("tls", data, True)
    assert r.meta["ja3_string"] == (
        "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,"
        "45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0"
    )
    assert r.meta["ja3"] == "98487aa16281980e7d1120d399efb6a4"
    assert r.meta["ja4"] == "t13d1516h2_8daaf6152771_d8a2da3f94cd"


def test_ja3_readme_vectors():
    """salesforce/ja3 README: the two example strings and their md5."""
    ciphers = [47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4]
    data = client_hello_record(
        ciphers,
        [sni_ext("a.example"), u16_list_ext(10, [23, 24, 25]), point_formats_ext([0])],
        version=0x0301,
    )
    r = probe("tls", data, True)
    assert r.meta["ja3_string"] == "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
    assert r.meta["ja3"] == "ada70206e40642a3e4461f35503241d5"
    r = probe("tls", client_hello_record([4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99], None, 0x0301), True)
    assert r.meta["ja3_string"] == "769,4-5-10-9-100-98-3-6-19-18-99,,,"
    assert r.meta["ja3"] == "de350869b8c85de67a350c8d186f11e6"
    assert r.meta["tls_version"] == "1.0"


# ------------------------------------------------------------------ other record shapes


def test_sslv2_compatible_hello():
    ciphers = bytes.fromhex("0100800700c000003500002f")
    body = b"\x01\x03\x01" + len(ciphers).to_bytes(2, "big") + b"\x00\x00" + b"\x00\x10" + ciphers + bytes(16)
    data = bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body
    # The shipped signature looks for a TLS record; the probe alone reads an SSLv2-framed hello.
    r = probe("tls", data, True, alone=True)
    assert r.status == MATCH and r.meta["tls_sslv2_hello"] and r.meta["tls_version"] == "1.0"
    assert probe("tls", data[:1] + b"\x00" + data[2:], True, alone=True).status == NO


def test_midstream_records():
    app = record(23, os.urandom(40), 0x0303) + record(23, os.urandom(100), 0x0303)
    r = probe("tls", app, True)
    assert r.status == MATCH and r.meta["tls_midstream"]
    assert probe("tls", app[:30], False).status == NO
    alert = record(21, b"\x02\x28", 0x0303)
    assert probe("tls", alert, False).meta["tls_alert"] == 40
    assert probe("tls", record(21, b"\x07\x28", 0x0303), False).status == NO


# ------------------------------------------------------------------ near misses


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"\x16\x03\x05\x00\x10" + bytes(16),  # bad version
        b"\x16\x02\x01\x00\x10" + bytes(16),  # bad major
        b"\x18\x03\x03\x00\x02ab",  # content type 24
        b"\x16\x03\x01\x50\x00",  # record longer than 2^14 + 2048
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",  # ClientHello too short to be one
        record(22, handshake(2, bytes(40))),  # ServerHello from the client
        record(22, handshake(1, b"\x03\x03" + bytes(32) + b"\x21")),  # session id > 32
        b"\x00" * 64,
    ],
)
def test_near_misses(data):
    assert probe("tls", data, True).status == NO


def test_extension_overrun_is_no():
    data = bytearray(client_hello_record([0x1301], [sni_ext("example.com")]))
    data[-len(sni_ext("example.com")) + 3] = 0xFF  # extension length points past the block
    assert probe("tls", bytes(data), True).status == NO


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_never_raises(data, from_client):
    assert probe("tls", data, from_client).status in (MATCH, NO)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_never_raises_with_tls_prefix(tail, from_client):
    data = b"\x16\x03\x01" + len(tail).to_bytes(2, "big") + tail
    assert probe("tls", data, from_client).status in (MATCH, NO)
    assert probe("tls", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + tail, from_client).status in (MATCH, NO)


def test_swapped_roles_read_the_server_flight(tls13):
    # Mid-stream, both ports unassigned: the first packet is taken as the client's, but it is a
    # ServerHello, so the engine swaps the roles: 10.0.0.2 is the client, and the ServerHello's
    # facts are the server's.
    from scapy.layers.inet import IP, TCP

    from portwatch.pipeline import Analyzer, Config

    _, flight = tls13
    pkt = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=50000, dport=40000, flags="PA", seq=1) / flight)
    records = []
    analyzer = Analyzer(Config(), records.append)
    analyzer.run([(1.0, 101, pkt)])  # LINKTYPE_RAW
    analyzer.close()
    (rec,) = records
    assert rec.protocol == "tls"
    assert (rec.src_ip, rec.src_port, rec.dst_ip, rec.dst_port) == ("10.0.0.2", 40000, "10.0.0.1", 50000)
    assert rec.meta["tls_version_server"] == "1.3" and rec.meta["cipher"].startswith("0x13")
    assert (rec.packets_c2s, rec.packets_s2c) == (0, 1)
